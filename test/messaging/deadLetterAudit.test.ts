// A dead letter replayed through the HTTP API is in the audit trail as the caller's, like one replayed in
// the portal: a Security Alert (Use of Restricted Function) naming the MESH message id and the client that
// asked; a replay of a message that is no longer a dead letter, and one asked for by a client whose access
// does not cover every record, are audited as refused. Listing the queue is audited too (a dead letter's
// reason can name a person): one AuditEvent per listing, as the caller's, naming every dead letter listed.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { addMailbox, inboxState, PermanentFailure } from '../../src/messaging/index.ts';
import { ENGINES, TEST_ADMIN, clientToken, testDatabase } from '../support/server.ts';
import { stopOwnPostgres } from '../support/postgres.ts';
import { MESH_KEY, meshCall, startServerOn, waitFor, type RunningServer } from '../support/mesh.ts';
import { storedJournalTexts } from '../support/auditJournal.ts';

after(stopOwnPostgres);

const TRUST = { id: 'TRUST03', password: 'trust-password-3' };
const COUNCIL = 'COUNCIL03';

for (const engine of ENGINES) {
  describe(`dead letters replayed over the HTTP API are audited (${engine})`, () => {
    let s: RunningServer;
    let cleanup: () => void;
    let fixed = false;

    before(async () => {
      const db = await testDatabase(engine);
      cleanup = db.cleanup;
      s = await startServerOn(db.database);
      await addMailbox(s.server.driver, { mailboxId: TRUST.id, ods: 'RX9', password: TRUST.password }, MESH_KEY);
      await addMailbox(s.server.driver, { mailboxId: COUNCIL, ods: 'LA918', password: 'council-password-3' }, MESH_KEY);
      s.server.messaging.onInbound(['AUDIT_TEST'], async () => {
        if (!fixed) throw new PermanentFailure('not yet');
      });
    });
    after(async () => {
      await s?.close();
      cleanup?.();
    });

    it('names the message and the client for a replay made, and audits refused ones', async () => {
      const sent = await meshCall(s.url, TRUST.id, TRUST.password, 'POST', '/outbox', { body: 'Patient Jane Secretname', headers: { 'mex-To': COUNCIL, 'mex-WorkflowID': 'AUDIT_TEST' } });
      assert.equal(sent.status, 202, sent.body.toString());
      const id = sent.json().message_id as string;
      await waitFor('dead-lettered', async () => (await inboxState(s.server.driver, id))?.status === 'dead', 30_000);

      // A client allowed to read patients only may not replay: refused, and audited as refused.
      const narrow = { authorization: `Bearer ${await clientToken(s.url, TEST_ADMIN.id, TEST_ADMIN.secret, 'system/Patient.rs')}` };
      assert.equal((await fetch(`${s.url}/messaging/dead-letters/${id}/replay`, { method: 'POST', headers: narrow })).status, 403);
      assert.equal((await inboxState(s.server.driver, id))?.status, 'dead');

      fixed = true;
      assert.equal((await fetch(`${s.url}/messaging/dead-letters/${id}/replay`, { method: 'POST', headers: s.auth })).status, 202);
      await waitFor('processed', async () => (await inboxState(s.server.driver, id))?.status === 'done');
      assert.equal((await fetch(`${s.url}/messaging/dead-letters/${id}/replay`, { method: 'POST', headers: s.auth })).status, 404);

      const events = await waitFor('the replays audited', async () => {
        const res = await fetch(`${s.url}/fhir/AuditEvent?type=110113&subtype=110132&entity-name=${id}&_sort=date&_count=100`, { headers: { ...s.auth, accept: 'application/fhir+json' } });
        const body = await res.json();
        assert.equal(res.status, 200, JSON.stringify(body));
        const found = (body.entry ?? []).map((e: any) => e.resource);
        return found.length >= 3 && found;
      });
      assert.deepEqual(events.map((e: any) => e.outcome), ['8', '0', '4'], 'refused for the client\'s access, made, refused as no longer a dead letter');
      assert.match(events[0].outcomeDesc, new RegExp(`^dead letter replayed, refused: ${id} \\(.+\\)$`));
      assert.equal(events[1].outcomeDesc, `dead letter replayed: ${id}`);
      assert.equal(events[2].outcomeDesc, `dead letter replayed, refused: ${id} (There is no dead letter with message id ${id}.)`);
      for (const e of events) {
        assert.equal(e.subtype[0].display, 'Use of Restricted Function');
        assert.deepEqual(e.entity[0].what.identifier, { system: 'https://carebridge.example/mesh-message-id', value: id });
        assert.equal(e.agent[0].altId, TEST_ADMIN.id, 'the client that asked');
        assert.equal(e.agent[0].network.address, '127.0.0.1');
      }
      assert.ok(!JSON.stringify(events).includes('Secretname'), 'no message body in the audit');
    });

    it('audits each listing of the queue as the caller\'s, naming every dead letter listed; a refused listing too', async () => {
      s.server.messaging.onInbound(['AUDIT_VIEW_TEST'], async () => {
        throw new PermanentFailure('no patient with NHS number 943 476 5919 (Jane Secretname)');
      });
      const sent = await meshCall(s.url, TRUST.id, TRUST.password, 'POST', '/outbox', { body: 'Patient Jane Secretname', headers: { 'mex-To': COUNCIL, 'mex-WorkflowID': 'AUDIT_VIEW_TEST' } });
      assert.equal(sent.status, 202, sent.body.toString());
      const id = sent.json().message_id as string;
      await waitFor('dead-lettered', async () => (await inboxState(s.server.driver, id))?.status === 'dead', 30_000);

      const listed = await fetch(`${s.url}/messaging/dead-letters`, { headers: s.auth });
      assert.equal(listed.status, 200);
      const ids = ((await listed.json()).deadLetters as { messageId: string; reason: string }[]).map((l) => l.messageId);
      assert.ok(ids.includes(id));
      const narrow = { authorization: `Bearer ${await clientToken(s.url, TEST_ADMIN.id, TEST_ADMIN.secret, 'system/Patient.rs')}` };
      const refusedListing = await fetch(`${s.url}/messaging/dead-letters`, { headers: narrow });
      assert.equal(refusedListing.status, 403);
      assert.ok(!(await refusedListing.text()).includes(id));

      const search = async (query: string) => {
        const res = await fetch(`${s.url}/fhir/AuditEvent?${query}&_sort=date&_count=100`, { headers: { ...s.auth, accept: 'application/fhir+json' } });
        const body = await res.json();
        assert.equal(res.status, 200, JSON.stringify(body));
        return (body.entry ?? []).map((e: any) => e.resource) as any[];
      };
      const events = await waitFor('the listings audited', async () => {
        const found = await search(`altid=${TEST_ADMIN.id}&type=110112`);
        return found.length >= 2 && found;
      });
      assert.deepEqual(events.map((e) => [e.action, e.outcome]), [['E', '0'], ['E', '8']], 'the listing, then the one refused for the client\'s access');
      const [shown, refused] = events;
      const messagesOf = (e: any) => e.entity.filter((x: any) => x.what?.identifier?.system === 'https://carebridge.example/mesh-message-id').map((x: any) => x.name);
      assert.deepEqual(messagesOf(shown), ids, 'every dead letter listed, in one event');
      assert.equal(shown.outcomeDesc, `dead-letter queue viewed: ${ids.length} dead letter${ids.length === 1 ? '' : 's'}, oldest first`);
      assert.equal(shown.entity.find((x: any) => x.role?.code === '24').name, 'MESH dead-letter queue');
      assert.deepEqual(messagesOf(refused), []);
      assert.match(refused.outcomeDesc, /^dead-letter queue viewed, refused \(.+\)$/);
      for (const e of events) {
        assert.equal(e.type.code, '110112');
        assert.equal(e.agent[0].altId, TEST_ADMIN.id, 'the client that asked');
        assert.equal(e.agent[0].network.address, '127.0.0.1');
      }
      assert.deepEqual((await search(`entity-name=${id}&type=110112`)).map((e) => e.id), [shown.id], 'found by the dead letter\'s message id');
      const stored = (await storedJournalTexts(s.server.driver)).join('\n');
      assert.ok(stored.includes(ids[0]), 'the stored trail was read');
      assert.ok(!stored.includes('Secretname') && !stored.includes('943 476 5919'), 'neither a body nor a reason in the audit');
    });
  });
}
