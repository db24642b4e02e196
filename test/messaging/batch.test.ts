// Inbound messages handled in messaging's transaction, in batches, on both engines, sent over real HTTP:
// messages waiting together are handled together, yet each one's writes commit exactly when it is done;
// one that fails is undone alone (the others in its batch stay done), retried or dead-lettered; a handler
// may dead-letter a message while keeping what it wrote; nothing runs after-commit work for undone writes.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { addMailbox, inboxState, PermanentFailure, type InboundMessage, type InboundTransaction } from '../../src/messaging/index.ts';
import { ENGINES, testDatabase } from '../support/server.ts';
import { stopOwnPostgres } from '../support/postgres.ts';
import { MESH_KEY, meshCall, startServerOn, waitFor, type RunningServer } from '../support/mesh.ts';

after(stopOwnPostgres);

const TRUST = { id: 'TRUST03', password: 'trust-password-3' };
const COUNCIL = 'COUNCIL03';

for (const engine of ENGINES) {
  describe(`inbound messages in batches (${engine})`, () => {
    let cleanup: () => void;
    let s: RunningServer;

    before(async () => {
      const db = await testDatabase(engine);
      cleanup = db.cleanup;
      s = await startServerOn(db.database, { CAREBRIDGE_MESSAGING_RETRY_MS: '40', CAREBRIDGE_MESSAGING_MAX_ATTEMPTS: '3' });
      await addMailbox(s.server.driver, { mailboxId: TRUST.id, ods: 'RX8', password: TRUST.password }, MESH_KEY);
      await addMailbox(s.server.driver, { mailboxId: COUNCIL, ods: 'LA917', password: 'council-password-3' }, MESH_KEY);
      await s.server.driver.exec('CREATE TABLE batch_effects (local_id TEXT PRIMARY KEY, written_at_attempt INTEGER NOT NULL)');
    });
    after(async () => {
      await s?.close();
      cleanup?.();
    });

    const send = async (localId: string, workflowId: string) => {
      const res = await meshCall(s.url, TRUST.id, TRUST.password, 'POST', '/outbox', { body: `body of ${localId}`, headers: { 'mex-To': COUNCIL, 'mex-WorkflowID': workflowId, 'mex-LocalID': localId } });
      assert.equal(res.status, 202, res.body.toString());
      return res.json().message_id as string;
    };
    const state = (id: string) => inboxState(s.server.driver, id);
    const effects = async () => (await s.server.driver.all<{ local_id: string }>('SELECT local_id FROM batch_effects ORDER BY local_id')).map((r) => r.local_id);

    it('handles messages waiting together; a failing one is undone alone, retried or dead-lettered, and the others stay done', async () => {
      // Sent while the worker is stopped, so they wait in the inbox together and are claimed together.
      await s.server.messaging.close();
      const names = ['good-1', 'permanent', 'good-2', 'flaky', 'kept-rejection', 'good-3'];
      const ids = new Map<string, string>();
      for (const name of names) ids.set(name, await send(name, 'BATCH_TEST'));

      const tries = new Map<string, number>();
      const committed: string[] = [];
      s.server.messaging.onInboundInTransaction(['BATCH_TEST'], async (msg: InboundMessage, t: InboundTransaction) => {
        const name = msg.localId!;
        const attempt = (tries.get(name) ?? 0) + 1;
        tries.set(name, attempt);
        // Every message writes first, so a failure has something to undo.
        await t.tx.run('INSERT INTO batch_effects (local_id, written_at_attempt) VALUES (?, ?)', [name, attempt]);
        t.afterCommit(() => committed.push(name));
        if (name === 'permanent') throw new PermanentFailure('The destination ODS code is unknown.');
        if (name === 'flaky' && attempt === 1) throw new Error('a lock was briefly unavailable');
        if (name === 'kept-rejection') t.deadLetter('Rejected; the sender was told why.');
      });
      s.server.messaging.start();

      for (const name of ['good-1', 'good-2', 'good-3', 'flaky']) await waitFor(`${name} done`, async () => (await state(ids.get(name)!))?.status === 'done');
      for (const name of ['permanent', 'kept-rejection']) await waitFor(`${name} dead`, async () => (await state(ids.get(name)!))?.status === 'dead');

      // The permanent failure's write was undone; the kept rejection's write stayed; flaky wrote once, on its second attempt.
      assert.deepEqual(await effects(), ['flaky', 'good-1', 'good-2', 'good-3', 'kept-rejection']);
      const flaky = await s.server.driver.get<{ written_at_attempt: number }>('SELECT written_at_attempt FROM batch_effects WHERE local_id = ?', ['flaky']);
      assert.equal(Number(flaky?.written_at_attempt), 2);
      assert.equal((await state(ids.get('flaky')!))?.attempts, 2);
      assert.equal((await state(ids.get('permanent')!))?.lastError, 'The destination ODS code is unknown.');
      assert.equal((await state(ids.get('kept-rejection')!))?.lastError, 'Rejected; the sender was told why.');
      // After-commit work ran for every committed write and never for an undone one.
      assert.deepEqual([...committed].sort(), ['flaky', 'good-1', 'good-2', 'good-3', 'kept-rejection']);
      for (const name of ['good-1', 'good-2', 'good-3', 'permanent', 'kept-rejection']) assert.equal(tries.get(name), 1, `${name} was handled once`);
    });

    it('prepares every message of a batch before its transaction, and hands each handler call its own result', async () => {
      await s.server.messaging.close();
      const names = ['prep-1', 'prep-fails', 'prep-2'];
      const ids = await Promise.all(names.map((name) => send(name, 'BATCH_PREPARED')));
      const order: string[] = [];
      const given = new Map<string, string | undefined>();
      s.server.messaging.onInboundInTransaction<string>(['BATCH_PREPARED'], async (msg, t, prepared) => {
        order.push(`handle ${msg.localId}`);
        given.set(msg.localId!, prepared);
        await t.tx.run('INSERT INTO batch_effects (local_id, written_at_attempt) VALUES (?, 1)', [msg.localId!]);
      }, async (msg) => {
        order.push(`prepare ${msg.localId}`);
        await new Promise((r) => setTimeout(r, 20)); // work elsewhere: the batch waits for all of it
        if (msg.localId === 'prep-fails') throw new Error('the reading thread was not there');
        return `read: ${msg.body.toString()}`;
      });
      s.server.messaging.start();
      for (const id of ids) await waitFor(`${id} done`, async () => (await state(id))?.status === 'done');

      assert.deepEqual(order.slice(0, 3).sort(), names.map((n) => `prepare ${n}`).sort(), 'all three were prepared before any was handled');
      assert.deepEqual([...given.entries()].sort(), [['prep-1', 'read: body of prep-1'], ['prep-2', 'read: body of prep-2'], ['prep-fails', undefined]]);
      assert.deepEqual((await effects()).filter((e) => e.startsWith('prep')), ['prep-1', 'prep-2', 'prep-fails'], 'a failed preparation does not stop the message');
    });

    it('handles each message once, and dead-letters one for a workflow nobody handles', async () => {
      const seen: string[] = [];
      s.server.messaging.onInboundInTransaction(['BATCH_TEST_2'], async (msg, t) => {
        seen.push(msg.localId!);
        await t.tx.run('INSERT INTO batch_effects (local_id, written_at_attempt) VALUES (?, 1)', [msg.localId!]);
      });
      const once = await send('once', 'BATCH_TEST_2');
      const orphan = await send('orphan-in-batch', 'NOBODY_HANDLES_THIS');
      await waitFor('once done', async () => (await state(once))?.status === 'done');
      await waitFor('orphan dead', async () => (await state(orphan))?.status === 'dead');
      await new Promise((r) => setTimeout(r, 300)); // another poll or two
      assert.deepEqual(seen, ['once']);
      assert.match((await state(orphan))!.lastError!, /No handler is registered for workflow id NOBODY_HANDLES_THIS/);
    });
  });
}
