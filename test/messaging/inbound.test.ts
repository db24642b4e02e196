// Inbound processing on both engines, through real HTTP sends to a mailbox processed here: each message is
// handed to its workflow's handler once; failures retry, then dead-letter with the reason; staff see and
// replay dead letters over HTTP; a message that is not this service's business waits for the mailbox's
// MESH client when one uses it; a server stopped between receipt and processing loses nothing.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';
import { addMailbox, inboxState, NotForThisService, PermanentFailure, type InboundMessage } from '../../src/messaging/index.ts';
import { ENGINES, testDatabase } from '../support/server.ts';
import { stopOwnPostgres } from '../support/postgres.ts';
import { MESH_KEY, meshCall, startServerOn, waitFor, type RunningServer } from '../support/mesh.ts';

after(stopOwnPostgres);

const TRUST = { id: 'TRUST02', password: 'trust-password-2' };
const COUNCIL = 'COUNCIL02';

for (const engine of ENGINES) {
  describe(`inbound messages (${engine})`, () => {
    let database: string;
    let cleanup: () => void;
    let s: RunningServer;
    const seen: InboundMessage[] = [];
    let behaviour: (msg: InboundMessage) => Promise<void> = async () => undefined;

    before(async () => {
      const db = await testDatabase(engine);
      database = db.database;
      cleanup = db.cleanup;
      s = await startServerOn(database, { CAREBRIDGE_MESSAGING_RETRY_MS: '40', CAREBRIDGE_MESSAGING_MAX_ATTEMPTS: '3', CAREBRIDGE_MESSAGING_STOP_WAIT_MS: '100' });
      await addMailbox(s.server.driver, { mailboxId: TRUST.id, ods: 'RX9', password: TRUST.password }, MESH_KEY);
      await addMailbox(s.server.driver, { mailboxId: COUNCIL, ods: 'LA918', password: 'council-password-2' }, MESH_KEY);
      s.server.messaging.onInbound(['ADW_TEST'], async (msg) => {
        seen.push(msg);
        await behaviour(msg);
      });
    });
    after(async () => {
      await s?.close();
      cleanup?.();
    });

    const send = async (body: string, workflowId = 'ADW_TEST') => {
      const res = await meshCall(s.url, TRUST.id, TRUST.password, 'POST', '/outbox', { body, headers: { 'mex-To': COUNCIL, 'mex-WorkflowID': workflowId, 'mex-LocalID': body } });
      assert.equal(res.status, 202, res.body.toString());
      return res.json().message_id as string;
    };
    const state = (id: string) => inboxState(s.server.driver, id);
    const deadLetters = async () => {
      const res = await fetch(`${s.url}/messaging/dead-letters`, { headers: s.auth });
      assert.equal(res.status, 200);
      return (await res.json()).deadLetters as Array<{ messageId: string; reason: string; attempts: number; size: number; localId?: string }>;
    };

    it('hands a message sent to a mailbox processed here to its handler, and marks it acknowledged', async () => {
      behaviour = async () => undefined;
      const id = await send('notice one');
      const msg = await waitFor('the handler', () => seen.find((m) => m.messageId === id));
      assert.equal(msg.body.toString(), 'notice one');
      assert.equal(msg.from, TRUST.id);
      assert.equal(msg.mailbox, COUNCIL);
      assert.equal(msg.workflowId, 'ADW_TEST');
      assert.equal(msg.localId, 'notice one');
      await waitFor('done', async () => (await state(id))?.status === 'done');
      const tracked = await meshCall(s.url, TRUST.id, TRUST.password, 'GET', `/outbox/tracking/${id}`);
      assert.equal(tracked.json().status, 'Acknowledged');
      assert.equal(await s.server.messaging.organisationForMailbox(COUNCIL.toLowerCase()), 'LA918');
      assert.equal(await s.server.messaging.mailboxForOrganisation('la918'), COUNCIL);
    });

    it('a compressed message (Content-Encoding: gzip) reaches its handler inflated; one that is not gzip is refused and nothing is stored', async () => {
      behaviour = async () => undefined;
      const content = `<notice>${'compressed notice '.repeat(200)}</notice>`;
      const res = await meshCall(s.url, TRUST.id, TRUST.password, 'POST', '/outbox', { body: gzipSync(content), headers: { 'mex-To': COUNCIL, 'mex-WorkflowID': 'ADW_TEST', 'content-encoding': 'gzip' } });
      assert.equal(res.status, 202, res.body.toString());
      const id = res.json().message_id as string;
      const msg = await waitFor('the handler', () => seen.find((m) => m.messageId === id));
      assert.equal(msg.body.toString(), content);

      const bad = await meshCall(s.url, TRUST.id, TRUST.password, 'POST', '/outbox', { body: 'plain text, not gzip', headers: { 'mex-To': COUNCIL, 'mex-WorkflowID': 'ADW_TEST', 'content-encoding': 'gzip', 'mex-LocalID': 'not-gzip' } });
      assert.equal(bad.status, 400);
      assert.match(bad.json().errorDescription, /sent with Content-Encoding: gzip, but its content is not gzip data; nothing was stored/);
      const row = await s.server.driver.get<{ n: number }>("SELECT COUNT(*) AS n FROM mesh_messages WHERE local_id = 'not-gzip'");
      assert.equal(Number(row?.n), 0);
    });

    it('retries a failing handler with backoff and succeeds on a later attempt', async () => {
      let failures = 0;
      behaviour = async (msg) => {
        if (msg.localId === 'flaky' && failures < 2) {
          failures++;
          throw new Error('record briefly unavailable');
        }
      };
      const id = await send('flaky');
      await waitFor('done after retries', async () => (await state(id))?.status === 'done');
      assert.equal((await state(id))!.attempts, 3);
      assert.equal(seen.filter((m) => m.messageId === id).length, 3);
    });

    it('dead-letters a permanent failure at once, shows it to staff, and processes it on replay', async () => {
      let fixed = false;
      behaviour = async (msg) => {
        if (msg.localId === 'bad' && !fixed) throw new PermanentFailure('Unknown ODS code ZZZ99 in MessageHeader.destination');
      };
      const id = await send('bad');
      await waitFor('dead letter', async () => (await state(id))?.status === 'dead');
      const listed = (await deadLetters()).find((d) => d.messageId === id);
      assert.equal(listed?.reason, 'Unknown ODS code ZZZ99 in MessageHeader.destination');
      assert.equal(listed?.attempts, 1);
      assert.equal(listed?.size, 'bad'.length, 'the listed size is the body\'s, in bytes');
      assert.equal(listed?.localId, 'bad');

      // Only an administrator whose access covers every record sees or replays dead letters.
      assert.equal((await fetch(`${s.url}/messaging/dead-letters`)).status, 401);

      fixed = true;
      const replay = await fetch(`${s.url}/messaging/dead-letters/${id}/replay`, { method: 'POST', headers: s.auth });
      assert.equal(replay.status, 202);
      await waitFor('done after replay', async () => (await state(id))?.status === 'done');
      assert.ok(!(await deadLetters()).some((d) => d.messageId === id));
      const again = await fetch(`${s.url}/messaging/dead-letters/${id}/replay`, { method: 'POST', headers: s.auth });
      assert.equal(again.status, 404);
      assert.match((await again.json()).issue[0].diagnostics, /no dead letter/);
    });

    it('dead-letters a message that keeps failing, and one for a workflow nobody handles', async () => {
      behaviour = async (msg) => {
        if (msg.localId === 'always') throw new Error('still broken');
      };
      const id = await send('always');
      await waitFor('dead after max attempts', async () => (await state(id))?.status === 'dead');
      const dead = (await deadLetters()).find((d) => d.messageId === id)!;
      assert.equal(dead.attempts, 3);
      assert.match(dead.reason, /^Failed 3 times; last error: still broken$/);

      const orphan = await send('orphan', 'NOBODY_HANDLES');
      await waitFor('dead orphan', async () => (await state(orphan))?.status === 'dead');
      assert.match((await deadLetters()).find((d) => d.messageId === orphan)!.reason, /No handler is registered for workflow id NOBODY_HANDLES/);
    });

    it('a message the handler says is not this service\'s: dead-lettered while no MESH client uses its mailbox, then held there, chunks and all, for the client', async () => {
      behaviour = async (msg) => {
        if (msg.localId?.startsWith('not-ours')) throw new NotForThisService('It answers a notice this service never sent.');
      };
      const first = await send('not-ours-1');
      await waitFor('dead letter', async () => (await state(first))?.status === 'dead');
      assert.equal((await deadLetters()).find((d) => d.messageId === first)?.reason,
        `It answers a notice this service never sent. No MESH client has signed in to mailbox ${COUNCIL}, so it is not held there for one.`);

      // The council's own MESH client signs in: from now on such messages wait in its inbox.
      const asCouncil = (method: string, path: string) => meshCall(s.url, COUNCIL, 'council-password-2', method, path);
      assert.equal((await asCouncil('GET', '')).status, 200);
      assert.deepEqual((await asCouncil('GET', '/inbox')).json().messages, []);
      const parts = ['not-ours-2, first part|', 'second part'];
      const headers = { 'mex-To': COUNCIL, 'mex-WorkflowID': 'ADW_TEST', 'mex-LocalID': 'not-ours-2' };
      const started = await meshCall(s.url, TRUST.id, TRUST.password, 'POST', '/outbox', { body: parts[0], headers: { ...headers, 'mex-Chunk-Range': '1:2' } });
      const second = started.json().message_id as string;
      assert.equal((await meshCall(s.url, TRUST.id, TRUST.password, 'POST', `/outbox/${second}/2`, { body: parts[1] })).status, 202);
      await waitFor('held for the client', async () => (await state(second))?.status === 'held-for-client');
      assert.match((await state(second))!.lastError ?? '', new RegExp(`^Held in mailbox ${COUNCIL} for its MESH client: It answers a notice`));
      assert.deepEqual((await asCouncil('GET', '/inbox')).json().messages, [second]);
      const c1 = await asCouncil('GET', `/inbox/${second}`);
      assert.equal(c1.status, 206);
      assert.equal(c1.headers.get('mex-chunk-range'), '1:2');
      assert.equal(c1.headers.get('mex-from'), TRUST.id);
      const c2 = await asCouncil('GET', `/inbox/${second}/2`);
      assert.equal(c2.status, 200);
      assert.equal(Buffer.concat([c1.body, c2.body]).toString(), parts.join(''));
      assert.equal((await meshCall(s.url, TRUST.id, TRUST.password, 'GET', `/outbox/tracking/${second}`)).json().status, 'Accepted', 'not yet acknowledged by its recipient');
      assert.equal((await asCouncil('PUT', `/inbox/${second}/status/acknowledged`)).status, 200);
      assert.equal((await meshCall(s.url, TRUST.id, TRUST.password, 'GET', `/outbox/tracking/${second}`)).json().status, 'Acknowledged');

      // The first one, replayed by staff, now goes to the client too; neither is a dead letter any more.
      assert.equal((await fetch(`${s.url}/messaging/dead-letters/${first}/replay`, { method: 'POST', headers: s.auth })).status, 202);
      await waitFor('replayed and held', async () => (await state(first))?.status === 'held-for-client');
      assert.deepEqual((await asCouncil('GET', '/inbox')).json().messages, [first]);
      assert.equal((await asCouncil('GET', `/inbox/${first}`)).body.toString(), 'not-ours-1');
      assert.ok(!(await deadLetters()).some((d) => d.messageId === first || d.messageId === second));
    });

    it('a server stopped between receipt and processing loses nothing: the next one processes it', async () => {
      let release!: () => void;
      behaviour = (msg) => (msg.localId === 'interrupted' ? new Promise<void>((resolve) => (release = resolve)) : Promise.resolve());
      const id = await send('interrupted');
      await waitFor('the handler to start', () => seen.some((m) => m.messageId === id));
      await s.close(); // the handler is still running: its message is handed back
      assert.equal((await inboxStateOn(database, id))?.status, 'pending');

      const processed: string[] = [];
      s = await startServerOn(database, { CAREBRIDGE_MESSAGING_RETRY_MS: '40' }, (server) => server.messaging.onInbound(['ADW_TEST'], async (msg) => void processed.push(msg.messageId)));
      await waitFor('processed by the new server', () => processed.includes(id));
      await waitFor('done', async () => (await state(id))?.status === 'done');
      release();
      assert.deepEqual(processed, [id], 'nothing else was run again');
    });
  });
}

async function inboxStateOn(database: string, id: string) {
  const { openRecordStore } = await import('../../src/record/index.ts');
  const driver = await openRecordStore(database);
  try {
    return await inboxState(driver, id);
  } finally {
    await driver.close();
  }
}
