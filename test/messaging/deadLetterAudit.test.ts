// A dead letter replayed through the HTTP API is in the audit trail as the caller's, like one replayed in
// the portal: a Security Alert (Use of Restricted Function) naming the MESH message id and the client that
// asked; a replay of a message that is no longer a dead letter, and one asked for by a client whose access
// does not cover every record, are audited as refused.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { addMailbox, inboxState, PermanentFailure } from '../../src/messaging/index.ts';
import { ENGINES, TEST_ADMIN, clientToken, testDatabase } from '../support/server.ts';
import { stopOwnPostgres } from '../support/postgres.ts';
import { MESH_KEY, meshCall, startServerOn, waitFor, type RunningServer } from '../support/mesh.ts';

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
  });
}
