// MESH reports (mex-MessageType REPORT) say a message sent from here was not delivered. The MESH client keeps
// what they say, and messaging hands them to the report handler of their workflow id, never to its data
// handler; a report no handler knows, that names no message, or whose workflow takes no reports, is kept
// among the dead letters with why, and a replayed one goes back to the report handler. Each is acknowledged.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { inboxState, replayDeadLetter, type DeliveryReport, type InboundMessage } from '../../src/messaging/index.ts';
import { ENGINES, testDatabase } from '../support/server.ts';
import { stopOwnPostgres } from '../support/postgres.ts';
import { startServerOn, waitFor, type RunningServer } from '../support/mesh.ts';
import { startFakeMesh, type FakeMesh, type FakeMeshMessage } from '../support/fakeMesh.ts';

after(stopOwnPostgres);

const MAILBOX = 'COUNCIL01';

function report(id: string, workflowId: string, linked?: string, headers: Record<string, string> = {}): FakeMeshMessage {
  return {
    id, workflowId, messageType: 'REPORT',
    headers: { ...(linked ? { 'mex-linkedmsgid': linked } : {}), 'mex-statuscode': '14', 'mex-statusevent': 'TRANSFER', 'mex-statusdescription': 'Message not collected by recipient after 5 days', ...headers },
  };
}

for (const engine of ENGINES) {
  describe(`MESH reports (${engine})`, () => {
    let mesh: FakeMesh;
    let s: RunningServer;
    let cleanup: () => void;
    const data: InboundMessage[] = [];
    const reports: DeliveryReport[] = [];
    const known = new Set(['KNOWN_1']);
    before(async () => {
      mesh = await startFakeMesh(MAILBOX);
      const db = await testDatabase(engine);
      cleanup = db.cleanup;
      s = await startServerOn(db.database, {
        CAREBRIDGE_MESH_SHARED_KEY: '', CAREBRIDGE_MESH_URL: mesh.url, CAREBRIDGE_MESH_MAILBOX: MAILBOX, CAREBRIDGE_MESH_PASSWORD: 'pw',
        CAREBRIDGE_MESH_CLIENT_SHARED_KEY: 'key', CAREBRIDGE_MESH_POLL_MS: String(24 * 3600_000), CAREBRIDGE_MESSAGING_MAX_ATTEMPTS: '1',
      }, (server) => {
        server.messaging.onInbound(['WITH_REPORTS', 'DATA_ONLY'], async (msg) => void data.push(msg));
        server.messaging.onDeliveryReport(['WITH_REPORTS'], async (r) => {
          reports.push(r);
          return known.has(r.report.linkedMessageId);
        });
      });
    });
    after(async () => {
      await s?.close();
      cleanup?.();
      await mesh?.close();
    });

    const settled = (id: string) => waitFor(`${id} to be settled`, async () => {
      const state = await inboxState(s.server.driver, id);
      return state && state.status !== 'pending' && state;
    });

    it('hands a report to its workflow\'s report handler; keeps the ones nobody can settle among the dead letters, with why', async () => {
      mesh.inbox.push(
        report('R_KNOWN', 'WITH_REPORTS', 'KNOWN_1', { 'mex-chunk-range': '1:2', 'mex-localid': 'notice-7' }),
        report('R_NO_REPORT_HANDLER', 'DATA_ONLY', 'SENT_2'),
        report('R_NAMES_NOTHING', 'WITH_REPORTS'),
        report('R_UNKNOWN', 'WITH_REPORTS', 'LATER_1'),
      );
      await s.server.messaging.pollExternal();

      assert.equal((await settled('R_KNOWN')).status, 'done');
      const got = reports.find((r) => r.messageId === 'R_KNOWN');
      assert.deepEqual(got?.report, { linkedMessageId: 'KNOWN_1', statusCode: '14', statusEvent: 'TRANSFER', statusDescription: 'Message not collected by recipient after 5 days' });
      assert.equal(got?.localId, 'notice-7');
      assert.ok(!mesh.requests.some((r) => r.includes('/inbox/R_KNOWN/2')), 'a report has no content to fetch');

      const noHandler = await settled('R_NO_REPORT_HANDLER');
      assert.equal(noHandler.status, 'dead');
      assert.match(noHandler.lastError ?? '', /MESH reports that message SENT_2 of workflow DATA_ONLY was not delivered \(status 14: Message not collected.*\); no workflow here takes reports for workflow id DATA_ONLY, so nobody has been told/);
      assert.match((await settled('R_NAMES_NOTHING')).lastError ?? '', /does not say which \(no mex-LinkedMsgID\)/);
      assert.match((await settled('R_UNKNOWN')).lastError ?? '', /MESH reports that message LATER_1 .*no message sent from here has that MESH id/);
      assert.deepEqual(data, [], 'no report is taken as data');
      assert.equal(mesh.inbox.length, 0, 'every report acknowledged');

      // Replayed from the dead letters once its message is known, it is a report still, not data.
      known.add('LATER_1');
      await replayDeadLetter(s.server.driver, 'R_UNKNOWN', Date.now());
      await waitFor('the replayed report settled', async () => (await inboxState(s.server.driver, 'R_UNKNOWN'))?.status === 'done');
      assert.ok(reports.some((r) => r.messageId === 'R_UNKNOWN' && r.report.linkedMessageId === 'LATER_1'));
      assert.deepEqual(data, []);
    });
  });
}
