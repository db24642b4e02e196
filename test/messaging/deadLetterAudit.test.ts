// A dead letter replayed through the HTTP API is in the audit trail as the caller's, like one replayed in
// the portal: a Security Alert (Use of Restricted Function) naming the MESH message id and the client that
// asked; a replay of a message that is no longer a dead letter, and one asked for by a client whose access
// does not cover every record, are audited as refused. Listing the queue is audited too (a dead letter's
// reason can name a person): one AuditEvent per listing, as the caller's, naming every dead letter listed,
// and naming as patients the people the record holds with an NHS number a listed dead letter showed (spaced
// 3-3-4 or not), so each finds the listing in who has looked at their record; an NHS number no Patient has,
// an invalid one, and a refused listing name nobody.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { addMailbox, inboxState, PermanentFailure } from '../../src/messaging/index.ts';
import { createResources, generateSyntheticNhsNumber, newResourceId, NHS_NUMBER_SYSTEM, SYNTHETIC_TAG } from '../../src/record/index.ts';
import { ENGINES, TEST_ADMIN, clientToken, fhirClient, testDatabase, type TestServer } from '../support/server.ts';
import { addPerson, personToken } from '../support/people.ts';
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

    it('names the people whose NHS numbers a listing showed, so each finds it as they look at who has looked at their record; nobody else', async () => {
      // Synthetic NHS numbers (999 range, valid check digits), all different.
      const numbers = new Set<string>();
      while (numbers.size < 3) numbers.add(generateSyntheticNhsNumber());
      const [annNhs, bobNhs, nobodyNhs] = [...numbers];
      const invalidNhs = annNhs.slice(0, 9) + ((Number(annNhs[9]) + 1) % 10); // ten digits, the wrong check digit
      const spaced = (n: string) => `${n.slice(0, 3)} ${n.slice(3, 6)} ${n.slice(6)}`;
      const patient = async (family: string, nhs: string) => {
        const res = await fetch(`${s.url}/fhir/Patient`, {
          method: 'POST', headers: { ...s.auth, 'content-type': 'application/fhir+json', accept: 'application/fhir+json' },
          body: JSON.stringify({ resourceType: 'Patient', meta: { tag: [SYNTHETIC_TAG] }, identifier: [{ system: NHS_NUMBER_SYSTEM, value: nhs }], name: [{ family, given: ['Test'] }] }),
        });
        assert.equal(res.status, 201);
        return (await res.json()).id as string;
      };
      const ann = await patient('Annotated', annNhs);
      const bob = await patient('Bobbin', bobNhs);
      // Stored unchecked, as an old import might have: a Patient holding the invalid number, and one holding the
      // unknown number under another system. Neither is anyone's NHS number, so neither is named.
      const [carl, dora] = [newResourceId(), newResourceId()];
      await s.server.driver.transaction((tx) => createResources(tx, [
        { resourceType: 'Patient', id: carl, meta: { tag: [SYNTHETIC_TAG] }, identifier: [{ system: NHS_NUMBER_SYSTEM, value: invalidNhs }], name: [{ family: 'Checkdigit' }] },
        { resourceType: 'Patient', id: dora, meta: { tag: [SYNTHETIC_TAG] }, identifier: [{ system: 'https://carebridge.example/test-local-id', value: nobodyNhs }], name: [{ family: 'Localnumber' }] },
      ]));

      s.server.messaging.onInbound(['AUDIT_NHS_TEST'], async (msg) => {
        throw new PermanentFailure(msg.body.toString('utf8'));
      });
      const deadLetter = async (reason: string) => {
        const { messageId } = await s.server.messaging.send({ from: TRUST.id, to: COUNCIL, workflowId: 'AUDIT_NHS_TEST', body: Buffer.from(reason) });
        await waitFor(`${messageId} dead-lettered`, async () => (await inboxState(s.server.driver, messageId))?.lastError === reason && (await inboxState(s.server.driver, messageId))?.status === 'dead', 30_000);
        return messageId;
      };
      await deadLetter(`The Patient's NHS number ${spaced(annNhs)} is not the one the referral names.`);
      await deadLetter(`no Patient here has NHS number ${bobNhs}`);
      await deadLetter(`no Patient here has NHS number ${spaced(nobodyNhs)}`);
      await deadLetter(`The Patient's NHS number ${invalidNhs} is not valid (wrong length or check digit).`);

      const listed = await fetch(`${s.url}/messaging/dead-letters`, { headers: s.auth });
      assert.equal(listed.status, 200);
      const reasons = ((await listed.json()).deadLetters as { reason: string }[]).map((l) => l.reason).join('\n');
      for (const shown of [spaced(annNhs), bobNhs, spaced(nobodyNhs), invalidNhs]) assert.ok(reasons.includes(shown), `${shown} is shown`);
      const narrow = { authorization: `Bearer ${await clientToken(s.url, TEST_ADMIN.id, TEST_ADMIN.secret, 'system/Patient.rs')}` };
      assert.equal((await fetch(`${s.url}/messaging/dead-letters`, { headers: narrow })).status, 403);

      const admin = fhirClient(`${s.url}/fhir`, s.auth);
      const search = async (client: typeof admin, query: string) => {
        const res = await client.get(`AuditEvent?${query}&_sort=date&_count=100`);
        assert.equal(res.status, 200, JSON.stringify(res.body));
        return ((res.body.entry ?? []) as any[]).map((e) => e.resource);
      };
      const patientsOf = (e: any) => e.entity.filter((x: any) => x.what?.reference?.startsWith('Patient/')).map((x: any) => x.what.reference).sort();
      // The listing names Ann and Bob as patients (role 1 Patient, as every AuditEvent names them), nobody else.
      const [listing] = await waitFor('the listing filed under Ann', async () => {
        const found = await search(admin, `patient=Patient/${ann}&type=110112`);
        return found.length >= 1 && found;
      });
      assert.equal(listing.outcome, '0');
      assert.deepEqual(patientsOf(listing), [`Patient/${ann}`, `Patient/${bob}`].sort(), 'the people whose NHS numbers were shown, and only them');
      for (const x of listing.entity.filter((y: any) => y.what?.reference)) {
        assert.deepEqual([x.type.code, x.role.code, x.role.display], ['1', '1', 'Patient']);
      }
      assert.ok(!JSON.stringify(listing.entity).includes(NHS_NUMBER_SYSTEM), 'an NHS number nobody has is not named by identifier');
      assert.deepEqual((await search(admin, `patient=Patient/${bob}&type=110112`)).map((e) => e.id), [listing.id], 'filed under Bob too (his number unspaced)');
      for (const nobody of [carl, dora]) assert.deepEqual(await search(admin, `patient=Patient/${nobody}`), [], 'not under a Patient with an invalid number, nor one holding the digits under another system');
      // The refused listing (and every earlier one, which showed no known person's number) names nobody.
      // (The refused listing came after the one shown: its audit may land in a later batch.)
      const views = await waitFor('the refused listing audited', async () => {
        const found = await search(admin, `altid=${TEST_ADMIN.id}&type=110112`);
        return found.filter((e) => e.outcome === '8').length >= 2 && found;
      });
      const refused = views.filter((e) => e.outcome === '8');
      for (const e of refused) assert.deepEqual(patientsOf(e), [], 'a refused listing showed nothing, and names nobody');
      assert.deepEqual(views.filter((e) => patientsOf(e).length).map((e) => e.id), [listing.id]);

      // As Ann herself asks: who has looked at my record? The listing is there, with Bob taken out.
      const asServer = { url: s.url, base: `${s.url}/fhir`, server: s.server } as TestServer;
      await addPerson(asServer, { username: 'ann.self', role: 'person', fhirUser: `Patient/${ann}`, name: 'Ann Annotated' });
      const own = fhirClient(`${s.url}/fhir`, { authorization: `Bearer ${await personToken(asServer, 'ann.self')}` });
      const theirs = (await search(own, `patient=Patient/${ann}`)).filter((e) => e.type.code === '110112');
      assert.deepEqual(theirs.map((e) => e.id), [listing.id], 'Ann sees the listing that showed her NHS number');
      assert.deepEqual(patientsOf(theirs[0]), [`Patient/${ann}`], 'and not that it showed Bob\'s');
      assert.equal(theirs[0].agent[0].altId, TEST_ADMIN.id, 'who looked');

      const stored = (await storedJournalTexts(s.server.driver)).join('\n');
      for (const n of [annNhs, spaced(annNhs), bobNhs, nobodyNhs, spaced(nobodyNhs), invalidNhs]) assert.ok(!stored.includes(n), 'no NHS number, nor the reason, in the audit');
      assert.ok(!stored.includes('is not the one the referral names'));
    });
  });
}
