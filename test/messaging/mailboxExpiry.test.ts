// The built-in MESH mailbox expires a message its recipient has not downloaded and acknowledged within the
// expiry period (5 days), as MESH does: it leaves the recipient's inbox, tracking says expired, and its
// sender is sent one non-delivery report (status 14, naming the message, its workflow id and local id):
// into this server's inbound inbox, for the workflow's report handler, when the sender is processed here;
// into the sender's mailbox as a REPORT when a MESH client polls it. Messaging runs on a clock the test
// moves (no sleeping); one report per message however often, and from however many nodes, it is swept.
// A chunked upload never finished within the period is discarded, with no report (its sender was never
// told it was accepted); a report left uncollected as long leaves its inbox, with no report about it.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import Fastify, { type FastifyInstance } from 'fastify';
import { addMailbox, inboxState, setUpMessaging, type DeliveryReport, type MessagingService } from '../../src/messaging/index.ts';
import { expireUncollected } from '../../src/messaging/mailboxExpiry.ts';
import { loadMessagingConfig } from '../../src/config.ts';
import { openRecordStore, type SqlDriver } from '../../src/record/index.ts';
import { ENGINES, testDatabase } from '../support/server.ts';
import { stopOwnPostgres } from '../support/postgres.ts';
import { MESH_KEY, meshCall, waitFor } from '../support/mesh.ts';

after(stopOwnPostgres);

const HOSPITAL = { id: 'HOSP01', password: 'hospital-password-1' };
const TRUST = { id: 'TRUST01', password: 'trust-password-1' };
const COUNCIL = { id: 'COUNCIL01', password: 'council-password-1' };
const WORKFLOW = 'TOC_FHIR_DISCHARGE';
const DAY = 86_400_000;
const FIVE_DAYS = 5 * DAY;

for (const engine of ENGINES) {
  describe(`built-in MESH mailbox: uncollected messages expire (${engine})`, () => {
    let clock = Date.UTC(2026, 2, 2, 9, 0);
    let database: string;
    let cleanup: () => void;
    let driver: SqlDriver;
    let messaging: MessagingService;
    let app: FastifyInstance;
    let url: string;
    const reports: DeliveryReport[] = [];
    before(async () => {
      const db = await testDatabase(engine);
      database = db.database;
      cleanup = db.cleanup;
      driver = await openRecordStore(database);
      messaging = await setUpMessaging(driver, { config: loadMessagingConfig({ CAREBRIDGE_MESH_SHARED_KEY: MESH_KEY }), now: () => clock });
      messaging.onDeliveryReport([WORKFLOW], async (r) => {
        reports.push(r);
        return true;
      });
      app = Fastify();
      await messaging.routes(app);
      url = await app.listen({ host: '127.0.0.1', port: 0 });
      messaging.start();
      await addMailbox(driver, { mailboxId: HOSPITAL.id, ods: 'RX9', password: HOSPITAL.password }, MESH_KEY);
      await addMailbox(driver, { mailboxId: TRUST.id, ods: 'RX8', password: TRUST.password, polled: true }, MESH_KEY);
      await addMailbox(driver, { mailboxId: COUNCIL.id, ods: 'LA918', password: COUNCIL.password, polled: true }, MESH_KEY);
    });
    after(async () => {
      await messaging?.close();
      await app?.close();
      await driver?.close();
      cleanup?.();
    });
    // Signed at the messaging clock, as a client whose clock agrees with the server's.
    const as = (box: { id: string; password: string }) => (method: string, path: string, options?: Parameters<typeof meshCall>[5]) => meshCall(url, box.id, box.password, method, path, { at: clock, ...options });
    const asTrust = as(TRUST);
    const asCouncil = as(COUNCIL);
    const asHospital = as(HOSPITAL);
    const councilInbox = async () => (await asCouncil('GET', '/inbox')).json().messages as string[];

    it('reports a notice sent from here and never collected to its workflow, after 5 days and not before; tracking says expired', async () => {
      const sentAt = clock;
      const { messageId } = await messaging.send({ from: HOSPITAL.id, to: COUNCIL.id, workflowId: WORKFLOW, subject: 'Discharge notice', localId: 'notice-41', body: Buffer.from('<Bundle>notice</Bundle>') });
      assert.deepEqual(await councilInbox(), [messageId]);

      clock = sentAt + FIVE_DAYS - 60_000;
      assert.deepEqual(await messaging.expireUncollected(), [], 'not a minute before 5 days');
      assert.deepEqual(await councilInbox(), [messageId]);
      const waiting = (await asHospital('GET', `/outbox/tracking?messageID=${messageId}`, { headers: { accept: 'application/vnd.mesh.v2+json' } })).json();
      assert.deepEqual([waiting.status, waiting.expiry_time], ['accepted', new Date(sentAt + FIVE_DAYS).toISOString()]);

      clock = sentAt + FIVE_DAYS + 60_000;
      const expiredAt = clock;
      assert.deepEqual(await messaging.expireUncollected(), [messageId]);
      assert.deepEqual(await councilInbox(), [], 'it left the recipient\'s inbox');
      assert.equal((await asCouncil('GET', `/inbox/${messageId}`)).status, 404);
      assert.equal((await asCouncil('PUT', `/inbox/${messageId}/status/acknowledged`)).status, 404, 'too late to acknowledge');

      const report = await waitFor('the report to reach its handler', () => reports.find((r) => r.report.linkedMessageId === messageId));
      assert.deepEqual(report.report, { linkedMessageId: messageId, statusCode: '14', statusEvent: 'SEND', statusDescription: 'Message not collected by recipient after 5 days' });
      assert.equal(report.workflowId, WORKFLOW);
      assert.equal(report.localId, 'notice-41');
      assert.equal(report.mailbox, HOSPITAL.id);
      assert.equal((await waitFor('the report settled', async () => (await inboxState(driver, report.messageId))?.status === 'done' && 'done')), 'done');

      const v2 = (await asHospital('GET', `/outbox/tracking?messageID=${messageId}`, { headers: { accept: 'application/vnd.mesh.v2+json' } })).json();
      assert.deepEqual([v2.status, v2.status_success, v2.status_code, v2.status_event], ['expired', false, '14', 'SEND']);
      assert.equal(v2.status_description, 'Message not collected by recipient after 5 days');
      assert.equal(v2.status_timestamp, new Date(expiredAt).toISOString());
      const v1 = (await asHospital('GET', '/outbox/tracking?localID=notice-41')).json();
      assert.deepEqual([v1.status, v1.statusCode, v1.statusSuccess], ['Expired', '14', 'ERROR']);

      clock += DAY;
      assert.deepEqual(await messaging.expireUncollected(), [], 'swept again: nothing more');
      assert.equal(reports.filter((r) => r.report.linkedMessageId === messageId).length, 1, 'one report');
    });

    it('puts the report in the inbox of a sender whose MESH client polls it here, as a REPORT it downloads and acknowledges', async () => {
      const sent = await asTrust('POST', '/outbox', { body: '<Bundle>notice</Bundle>', headers: { 'mex-To': COUNCIL.id, 'mex-WorkflowID': WORKFLOW, 'mex-LocalID': 'trust-notice-7', 'mex-Subject': 'Assessment notice', 'mex-Chunk-Range': '1:2' } });
      const messageId = sent.json().message_id;
      assert.equal((await asTrust('POST', `/outbox/${messageId}/2`, { body: 'second chunk' })).status, 202);
      clock += FIVE_DAYS + 60_000;
      assert.deepEqual(await messaging.expireUncollected(), [messageId]);
      assert.deepEqual(await councilInbox(), []);

      const waiting = (await asTrust('GET', '/inbox')).json().messages as string[];
      assert.equal(waiting.length, 1);
      const got = await asTrust('GET', `/inbox/${waiting[0]}`);
      assert.equal(got.status, 200);
      assert.equal(got.body.length, 0, 'a report has no content');
      assert.equal(got.headers.get('mex-messagetype'), 'REPORT');
      assert.equal(got.headers.get('mex-linkedmsgid'), messageId);
      assert.equal(got.headers.get('mex-statuscode'), '14');
      assert.equal(got.headers.get('mex-statusdescription'), 'Message not collected by recipient after 5 days');
      assert.equal(got.headers.get('mex-workflowid'), WORKFLOW);
      assert.equal(got.headers.get('mex-localid'), 'trust-notice-7');
      assert.equal(got.headers.get('mex-to'), TRUST.id);
      assert.equal((await asTrust('PUT', `/inbox/${waiting[0]}/status/acknowledged`)).status, 200);
      assert.deepEqual((await asTrust('GET', '/inbox')).json().messages, []);
      // The report is not the sender's sent message: tracking by local id still finds the one that expired.
      assert.equal((await asTrust('GET', '/outbox/tracking?localID=trust-notice-7')).json().message_id, messageId);
      clock += 3 * FIVE_DAYS;
      assert.deepEqual(await messaging.expireUncollected(), [], 'a report does not expire into another report');
    });

    it('leaves a message acknowledged in time alone', async () => {
      const { messageId } = await messaging.send({ from: HOSPITAL.id, to: COUNCIL.id, workflowId: WORKFLOW, body: Buffer.from('<Bundle>collected</Bundle>') });
      assert.equal((await asCouncil('PUT', `/inbox/${messageId}/status/acknowledged`)).status, 200);
      clock += 2 * FIVE_DAYS;
      assert.deepEqual(await messaging.expireUncollected(), []);
      assert.equal((await asHospital('GET', `/outbox/tracking/${messageId}`)).json().status, 'Acknowledged');
      assert.ok(!reports.some((r) => r.report.linkedMessageId === messageId));
    });

    it('two nodes sweeping one database at once send one report per message', async () => {
      const ids: string[] = [];
      for (let i = 0; i < 6; i++) ids.push((await messaging.send({ from: HOSPITAL.id, to: COUNCIL.id, workflowId: WORKFLOW, localId: `race-${i}`, body: Buffer.from(`<Bundle>${i}</Bundle>`) })).messageId);
      const other = await openRecordStore(database);
      try {
        const at = clock + FIVE_DAYS + 60_000;
        const [a, b] = await Promise.all([expireUncollected(driver, at, FIVE_DAYS), expireUncollected(other, at, FIVE_DAYS)]);
        assert.deepEqual([...a.expired, ...b.expired].sort(), [...ids].sort(), 'each expired by one node or the other');
      } finally {
        await other.close();
      }
      const stored = await driver.all<{ report: string }>('SELECT report FROM messaging_inbox WHERE report IS NOT NULL');
      const linked = stored.map((r) => JSON.parse(r.report).linkedMessageId as string).filter((id) => ids.includes(id));
      assert.deepEqual(linked.sort(), [...ids].sort(), 'one report each, no more');
    });

    // A chunked upload from TRUST to COUNCIL, sent as far as chunk `upTo` of `of`; its message id.
    const startChunked = async (localId: string, of: number, upTo: number) => {
      const sent = await asTrust('POST', '/outbox', { body: 'chunk 1 ', headers: { 'mex-To': COUNCIL.id, 'mex-WorkflowID': WORKFLOW, 'mex-LocalID': localId, 'mex-Chunk-Range': `1:${of}` } });
      assert.equal(sent.status, 202);
      const messageId = sent.json().message_id as string;
      for (let n = 2; n <= upTo; n++) assert.equal((await asTrust('POST', `/outbox/${messageId}/${n}`, { body: `chunk ${n} ` })).status, 202);
      return messageId;
    };
    const chunksKept = async (messageId: string) => Number((await driver.get<{ n: number }>('SELECT COUNT(*) AS n FROM mesh_chunks WHERE message_id = ?', [messageId]))?.n);

    it('discards a chunked upload left half-done past the expiry period, chunks and all, and refuses its next chunk; leaves one completed in time, or younger, alone; sends no report', async () => {
      const startedAt = clock;
      const abandoned = await startChunked('abandoned-1', 3, 2);
      const finishedLate = await startChunked('finished-1', 2, 1);
      clock = startedAt + 4 * DAY;
      assert.equal((await asTrust('POST', `/outbox/${finishedLate}/2`, { body: 'chunk 2 ' })).status, 202, 'completed within the period, though started before it');
      const young = await startChunked('young-1', 2, 1);
      assert.equal(await chunksKept(abandoned), 2);

      clock = startedAt + FIVE_DAYS - 60_000;
      await messaging.expireUncollected();
      assert.equal(await chunksKept(abandoned), 2, 'not a minute before the period');

      clock = startedAt + FIVE_DAYS + 60_000;
      await messaging.expireUncollected();
      assert.equal(await chunksKept(abandoned), 0, 'its chunks are gone');
      const late = await asTrust('POST', `/outbox/${abandoned}/3`, { body: 'chunk 3 ' });
      assert.equal(late.status, 404, 'it can no longer be completed');
      assert.equal(late.json().errorCode, 'EPL-153');
      assert.equal((await asTrust('GET', `/outbox/tracking?messageID=${abandoned}`)).status, 404);
      assert.ok(!(await councilInbox()).includes(abandoned));

      assert.ok((await councilInbox()).includes(finishedLate), 'the one completed in time waits for its recipient');
      assert.equal((await asCouncil('GET', `/inbox/${finishedLate}/2`)).body.toString(), 'chunk 2 ');
      assert.equal((await asCouncil('PUT', `/inbox/${finishedLate}/status/acknowledged`)).status, 200);

      assert.equal(await chunksKept(young), 1, 'the younger one is kept');
      assert.equal((await asTrust('POST', `/outbox/${young}/2`, { body: 'chunk 2 ' })).status, 202);
      assert.equal((await asCouncil('GET', `/inbox/${young}`)).body.toString(), 'chunk 1 ');
      assert.equal((await asCouncil('PUT', `/inbox/${young}/status/acknowledged`)).status, 200);

      assert.deepEqual((await asTrust('GET', '/inbox')).json().messages, [], 'no report to the sender of an upload it never finished');
      assert.ok(!reports.some((r) => r.report.linkedMessageId === abandoned));
    });

    it('expires a report left uncollected in a polled sender\'s inbox after the period, without a report about it', async () => {
      const sent = await asTrust('POST', '/outbox', { body: '<Bundle>never collected</Bundle>', headers: { 'mex-To': COUNCIL.id, 'mex-WorkflowID': WORKFLOW, 'mex-LocalID': 'trust-notice-9' } });
      const messageId = sent.json().message_id as string;
      clock += FIVE_DAYS + 60_000;
      assert.deepEqual(await messaging.expireUncollected(), [messageId]);
      const [report] = (await asTrust('GET', '/inbox')).json().messages as string[];
      assert.ok(report, 'the report waits for the sender\'s client');

      clock += FIVE_DAYS - 120_000;
      await messaging.expireUncollected();
      assert.deepEqual((await asTrust('GET', '/inbox')).json().messages, [report], 'not a minute before the period');

      clock += 120_000;
      await messaging.expireUncollected();
      assert.deepEqual((await asTrust('GET', '/inbox')).json().messages, [], 'it left the inbox');
      assert.equal((await asTrust('GET', `/inbox/${report}`)).status, 404);
      assert.equal((await asTrust('PUT', `/inbox/${report}/status/acknowledged`)).status, 404, 'too late to acknowledge');
      assert.deepEqual(await councilInbox(), [], 'no report about the report');
      const aboutReport = await driver.all('SELECT message_id FROM mesh_messages WHERE linked_message_id = ?', [report!]);
      assert.deepEqual(aboutReport, []);
      const inboundAbout = await driver.all<{ report: string }>('SELECT report FROM messaging_inbox WHERE report IS NOT NULL');
      assert.ok(!inboundAbout.some((r) => JSON.parse(r.report).linkedMessageId === report));
    });

    it('two nodes sweeping one database at once discard each unfinished upload once', async () => {
      const ids: string[] = [];
      for (let i = 0; i < 6; i++) ids.push(await startChunked(`race-upload-${i}`, 3, 2));
      const other = await openRecordStore(database);
      try {
        const at = clock + FIVE_DAYS + 60_000;
        const [a, b] = await Promise.all([expireUncollected(driver, at, FIVE_DAYS), expireUncollected(other, at, FIVE_DAYS)]);
        assert.deepEqual([...a.discardedUploads, ...b.discardedUploads].sort(), [...ids].sort(), 'each discarded by one node or the other');
      } finally {
        await other.close();
      }
      for (const id of ids) assert.equal(await chunksKept(id), 0);
    });
  });
}
