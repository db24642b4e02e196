// MESH tells the sender when a message was not delivered (a REPORT: mex-MessageType REPORT, mex-LinkedMsgID
// naming the message, a status code, no content). An ADW answer MESH reports undelivered is marked failed,
// listed for resending, and noted on the referral, so the council knows the hospital was not told; the report
// is acknowledged. A report about a message this server never sent is kept among the dead letters, with why.
// The built-in mailbox makes such a report itself when an answer waits uncollected in a mailbox here too long.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { addMailbox, inboxState, listDeadLetters } from '../../src/messaging/index.ts';
import { handleAdwMessage, listFailedAdw, triage } from '../../src/discharge/index.ts';
import { ENGINES, startTestServer, type TestServer } from '../support/server.ts';
import { stopOwnPostgres } from '../support/postgres.ts';
import { waitFor } from '../support/mesh.ts';
import { startFakeMesh } from '../support/fakeMesh.ts';
import { EXAMPLES, COUNCIL_ODS, HOSPITAL_ODS, episodeIds, inbound, renamed, searchOne, seedOrganisations } from './support.ts';

after(stopOwnPostgres);

const COUNCIL_BOX = 'COUNCIL01';
const HOSPITAL_BOX = 'HOSPITAL01';
const EPISODE = '311fcae7-32a7-4a8e-a15c-eebae3a246b9';
const NOT_COLLECTED = 'Message not collected by recipient after 5 days';

/** The council accepts the hospital's assessment notice, and its answer is handed to MESH; answers the referral. */
async function acceptedNotice(t: TestServer) {
  const ctx = t.server.discharge.context;
  const ids = episodeIds();
  await handleAdwMessage({ ctx }, inbound(renamed(EXAMPLES['Assessment-Notice'], ids), { mailbox: COUNCIL_BOX, to: COUNCIL_BOX, from: HOSPITAL_BOX }));
  const referral = await searchOne(t, `ServiceRequest?identifier=${ids[EPISODE]}`);
  await triage(ctx, referral.id, { action: 'accept' });
  await t.server.discharge.runWorkers();
  return referral;
}

for (const engine of ENGINES) {
  describe(`MESH non-delivery reports of ADW messages (${engine})`, () => {
    it('an answer MESH reports undelivered is marked failed and noted on the referral; a report of a message never sent here is a dead letter', async () => {
      const mesh = await startFakeMesh(COUNCIL_BOX);
      const t = await startTestServer(engine, {
        CAREBRIDGE_DISCHARGE_POLL_SECONDS: '3600', CAREBRIDGE_MESH_URL: mesh.url, CAREBRIDGE_MESH_MAILBOX: COUNCIL_BOX, CAREBRIDGE_MESH_PASSWORD: 'pw',
        CAREBRIDGE_MESH_CLIENT_SHARED_KEY: 'key', CAREBRIDGE_MESH_POLL_MS: String(24 * 3600_000),
      });
      try {
        const { driver } = t.server;
        await seedOrganisations(t);
        // Both mailboxes are on the external MESH: the council's answers go out through its client.
        await addMailbox(driver, { mailboxId: COUNCIL_BOX, ods: COUNCIL_ODS }, undefined);
        await addMailbox(driver, { mailboxId: HOSPITAL_BOX, ods: HOSPITAL_ODS }, undefined);
        const referral = await acceptedNotice(t);
        const [answer] = mesh.sent;
        assert.ok(answer, 'the accept went to MESH');
        const row = () => driver.get<{ header_id: string; status: string; detail: string | null }>("SELECT header_id, status, detail FROM discharge_adw_messages WHERE direction = 'out' AND mesh_message_id = ?", [answer.messageId]);
        assert.equal((await row())?.status, 'sent');

        // Days later the hospital has not collected it: MESH sends the council a report, and one about a message it never sent.
        const report = (id: string, linked: string) => ({
          id, workflowId: 'ADW_NOTICE_ACK', messageType: 'REPORT' as const,
          headers: { 'mex-linkedmsgid': linked, 'mex-statuscode': '14', 'mex-statusevent': 'TRANSFER', 'mex-statusdescription': NOT_COLLECTED, 'mex-statussuccess': 'ERROR', 'mex-localid': 'local' },
        });
        mesh.inbox.push(report('REPORT_1', answer.messageId), report('REPORT_2', 'SOMEONE_ELSES_MESSAGE'));
        await t.server.messaging.pollExternal();
        const settled = (id: string) => waitFor(`${id} to be settled`, async () => {
          const state = await inboxState(driver, id);
          return state && state.status !== 'pending' && state;
        });

        assert.equal((await settled('REPORT_1')).status, 'done');
        const failed = await row();
        assert.equal(failed?.status, 'failed', 'no longer taken as sent');
        assert.match(failed?.detail ?? '', new RegExp(`MESH reported that it was not delivered \\(14: ${NOT_COLLECTED}\\)\\. Resend with carebridge discharge adw retry ${failed?.header_id}`));
        assert.deepEqual((await listFailedAdw(driver)).map((f) => f.header_id), [failed?.header_id], 'listed for resending');
        const notes = (await t.fhir.get(`Communication?based-on=ServiceRequest/${referral.id}`)).body.entry.map((e: any) => e.resource);
        const note = notes.find((c: any) => c.category?.[0]?.text === 'Message not sent');
        assert.ok(note, notes.map((c: any) => c.category?.[0]?.text).join(', '));
        assert.match(note.payload[0].contentString, new RegExp(`assessment notice accept to ${HOSPITAL_ODS} .*so they have not been told: MESH reported that it was not delivered \\(14: ${NOT_COLLECTED}\\)`));

        const unknown = await settled('REPORT_2');
        assert.equal(unknown.status, 'dead');
        assert.match(unknown.lastError ?? '', /MESH reports that message SOMEONE_ELSES_MESSAGE \(local id local\) of workflow ADW_NOTICE_ACK was not delivered \(status 14: .*\), but no message sent from here has that MESH id/);
        assert.deepEqual((await listDeadLetters(driver)).map((d) => d.messageId), ['REPORT_2'], 'the known report is not a dead letter');
        assert.equal(mesh.inbox.length, 0, 'both reports acknowledged');

        // MESH delivers the same report again: nothing changes, and the referral is not noted twice.
        mesh.inbox.push(report('REPORT_1', answer.messageId));
        await t.server.messaging.pollExternal();
        const again = (await t.fhir.get(`Communication?based-on=ServiceRequest/${referral.id}`)).body.entry.filter((e: any) => e.resource.category?.[0]?.text === 'Message not sent');
        assert.equal(again.length, 1);
      } finally {
        await t.close();
        await mesh.close();
      }
    });

    it('an answer left uncollected in the built-in mailbox for 5 days expires, and its report fails it and notes the referral (H-060)', async () => {
      const t = await startTestServer(engine, { CAREBRIDGE_DISCHARGE_POLL_SECONDS: '3600', CAREBRIDGE_MESH_SHARED_KEY: 'test-mesh-shared-key' });
      try {
        const { driver } = t.server;
        await seedOrganisations(t);
        // The council is processed here; the hospital's mailbox is hosted here for its MESH client, which never collects.
        await addMailbox(driver, { mailboxId: COUNCIL_BOX, ods: COUNCIL_ODS, password: 'council-password' }, 'test-mesh-shared-key');
        await addMailbox(driver, { mailboxId: HOSPITAL_BOX, ods: HOSPITAL_ODS, password: 'hospital-password', polled: true }, 'test-mesh-shared-key');
        const referral = await acceptedNotice(t);
        const row = () => driver.get<{ header_id: string; status: string; detail: string | null; mesh_message_id: string }>("SELECT header_id, status, detail, mesh_message_id FROM discharge_adw_messages WHERE direction = 'out'");
        const sent = await row();
        assert.equal(sent?.status, 'sent', 'waiting in the hospital\'s mailbox here');

        // Accepted 5 days and a minute ago (the rule reads the stored time), and never collected.
        await driver.run('UPDATE mesh_messages SET accepted_ms = accepted_ms - ? WHERE message_id = ?', [5 * 86_400_000 + 60_000, sent!.mesh_message_id]);
        assert.deepEqual(await t.server.messaging.expireUncollected(), [sent!.mesh_message_id]);
        const failed = await waitFor('the answer failed', async () => {
          const r = await row();
          return r?.status === 'failed' && r;
        });
        assert.match(failed.detail ?? '', new RegExp(`MESH reported that it was not delivered \\(14: ${NOT_COLLECTED}\\)`));
        // The note follows the failure, once the report handler has written it.
        const note = await waitFor('the note on the referral', async () => (await t.fhir.get(`Communication?based-on=ServiceRequest/${referral.id}`)).body.entry
          ?.map((e: any) => e.resource).find((c: any) => c.category?.[0]?.text === 'Message not sent'));
        assert.match(note.payload[0].contentString, new RegExp(`to ${HOSPITAL_ODS} .*so they have not been told: MESH reported that it was not delivered \\(14: ${NOT_COLLECTED}\\)`));
        assert.deepEqual(await listDeadLetters(driver), [], 'the report was settled, not dead-lettered');
      } finally {
        await t.close();
      }
    });
  });
}
