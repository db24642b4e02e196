// The inbox list of a MESH mailbox comes in pages of 500 (MESH v2: links.next with continue_from). The
// built-in mailbox pages as MESH does, and the MESH client follows the pages, so messages of other
// workflows left in a shared mailbox never hide the ADW notices behind them; what is left there is logged.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { addMailbox, inboxState, type InboundMessage } from '../../src/messaging/index.ts';
import { startUpload } from '../../src/messaging/mailboxStore.ts';
import { MeshClient } from '../../src/messaging/meshClient.ts';
import { MeshPoller } from '../../src/messaging/meshPoller.ts';
import { ENGINES, testDatabase } from '../support/server.ts';
import { stopOwnPostgres } from '../support/postgres.ts';
import { MESH_KEY, meshCall, startServerOn, waitFor, type RunningServer } from '../support/mesh.ts';
import { startFakeMesh, type FakeMesh } from '../support/fakeMesh.ts';

after(stopOwnPostgres);

const SENDER = 'TRUST01';
const POLLED = { id: 'COUNCIL01', password: 'council-password-1' };
const OUR_WORKFLOWS = ['ADW_NOTICE', 'ADW_NOTICE_ACK'];

/** 500 messages another system takes, then one ADW notice: the notice is on the second page. */
function sharedMailbox(fake: FakeMesh): void {
  for (let i = 0; i < 500; i++) fake.inbox.push({ id: `OTHER_${String(i).padStart(3, '0')}`, workflowId: 'SOMETHING_ELSE', body: 'a pathology result for another system' });
  fake.inbox.push({ id: 'OURS_1', workflowId: 'ADW_NOTICE', body: '<notice n="1"/>' });
}

for (const engine of ENGINES) {
  describe(`MESH inbox pages (${engine})`, () => {
    let s: RunningServer;
    let cleanup: () => void;
    const seen: InboundMessage[] = [];
    before(async () => {
      const db = await testDatabase(engine);
      cleanup = db.cleanup;
      s = await startServerOn(db.database, {}, (server) => server.messaging.onInbound(['ADW_NOTICE'], async (msg) => void seen.push(msg)));
      await addMailbox(s.server.driver, { mailboxId: SENDER, ods: 'RX9', password: 'trust-password-1' }, MESH_KEY);
      await addMailbox(s.server.driver, { mailboxId: POLLED.id, ods: 'LA918', password: POLLED.password, polled: true }, MESH_KEY);
    });
    after(async () => {
      await s?.close();
      cleanup?.();
    });

    it('the built-in mailbox lists 500 ids a page, links.next leading to the rest, and counts them all', async () => {
      const sent: string[] = [];
      const at = Date.now();
      for (let i = 0; i < 501; i++) {
        const upload = await startUpload(s.server.driver, { sender: SENDER, recipient: POLLED.id, workflowId: i < 500 ? 'SOMETHING_ELSE' : 'ADW_NOTICE' }, 1, Buffer.from(`m${i}`), at + i);
        sent.push(upload.messageId);
      }
      const first = (await meshCall(s.url, POLLED.id, POLLED.password, 'GET', '/inbox')).json();
      assert.deepEqual(first.messages, sent.slice(0, 500));
      assert.equal(first.approx_inbox_count, 501);
      assert.match(first.links.next ?? '', /^\/messageexchange\/COUNCIL01\/inbox\?continue_from=/);
      const second = (await meshCall(s.url, POLLED.id, POLLED.password, 'GET', first.links.next.replace('/messageexchange/COUNCIL01', ''))).json();
      assert.deepEqual(second.messages, [sent[500]], 'the notice behind the 500 is listed');
      assert.equal(second.links.next, undefined, 'the last page');

      const bad = await meshCall(s.url, POLLED.id, POLLED.password, 'GET', '/inbox?continue_from=not-a-token');
      assert.equal(bad.status, 400);
    });

    it('the MESH client follows the pages: a notice behind 500 messages of another workflow is fetched, and those are not downloaded again', async () => {
      const fake = await startFakeMesh(POLLED.id);
      const client = new MeshClient({ url: fake.url, mailbox: POLLED.id, password: 'pw', sharedKey: 'key', workflowIds: OUR_WORKFLOWS, pollMs: 3600_000, chunkBytes: 1024 * 1024 });
      const logged: string[] = [];
      const poller = new MeshPoller(s.server.driver, client, { workflowIds: OUR_WORKFLOWS, pollMs: 3600_000, now: Date.now, delivered: () => undefined, onError: (err) => logged.push((err as Error).message) });
      try {
        sharedMailbox(fake);
        assert.equal(await poller.pollOnce(), 1);
        assert.equal(await poller.pollOnce(), 0);
        assert.ok(fake.requests.some((r) => /^GET \/messageexchange\/COUNCIL01\/inbox\?continue_from=/.test(r)), 'the second page was asked for');
        assert.ok(fake.requests.includes('PUT /messageexchange/COUNCIL01/inbox/OURS_1/status/acknowledged'), 'taken and acknowledged');
        assert.equal(fake.requests.filter((r) => r.startsWith('GET /messageexchange/COUNCIL01/inbox/OTHER_')).length, 500, 'each other message looked at once');
        const notice = await waitFor('the notice reaches its handler', () => seen.find((m) => m.messageId === 'OURS_1'));
        assert.equal(notice.body.toString(), '<notice n="1"/>');
        assert.equal(fake.inbox.length, 500, 'the other workflow\'s messages stay for their own system');

        // Said once, with how many and of which workflow, not on every poll.
        const left = logged.filter((l) => /left unacknowledged/.test(l));
        assert.equal(left.length, 1, logged.join('\n'));
        assert.match(left[0]!, /MESH mailbox COUNCIL01: 500 more message\(s\).*500 of SOMETHING_ELSE.*takes only ADW_NOTICE, ADW_NOTICE_ACK \(CAREBRIDGE_MESH_WORKFLOW_IDS\)/);
      } finally {
        client.close();
        await fake.close();
      }
    });

    it('a server polling the shared mailbox reaches the notice on the second page', async () => {
      const fake = await startFakeMesh(POLLED.id);
      const db = await testDatabase(engine);
      const council = await startServerOn(db.database, {
        CAREBRIDGE_MESH_SHARED_KEY: '', CAREBRIDGE_MESH_URL: fake.url, CAREBRIDGE_MESH_MAILBOX: POLLED.id, CAREBRIDGE_MESH_PASSWORD: 'pw',
        CAREBRIDGE_MESH_CLIENT_SHARED_KEY: MESH_KEY, CAREBRIDGE_MESH_WORKFLOW_IDS: OUR_WORKFLOWS.join(','), CAREBRIDGE_MESH_POLL_MS: String(24 * 3600_000),
      }, (server) => server.messaging.onInbound(['ADW_NOTICE'], async () => undefined));
      try {
        sharedMailbox(fake);
        await council.server.messaging.pollExternal();
        await council.server.messaging.pollExternal();
        assert.ok((await inboxState(council.server.driver, 'OURS_1')) !== undefined, fake.requests.filter((r) => !r.includes('OTHER_')).join('\n'));
      } finally {
        await council.close();
        db.cleanup();
        await fake.close();
      }
    });
  });
}
