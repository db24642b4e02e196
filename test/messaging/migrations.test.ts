// Upgrading a database made before messaging migration 3, which moved inbox bodies into a table of their
// own: a message waiting in the inbox is still handed over whole, a dead letter still shows its size and
// can be replayed, and the upgrade says once on stderr what it is doing.
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { listDeadLetters, migrateMessaging, replayDeadLetter } from '../../src/messaging/index.ts';
import { claimDue } from '../../src/messaging/inbox.ts';
import { messagingMigrations } from '../../src/messaging/schema.ts';
import { migrate, openRecordStore, type SqlDriver } from '../../src/record/index.ts';
import { ENGINES, testDatabase } from '../support/server.ts';
import { stopOwnPostgres } from '../support/postgres.ts';

after(stopOwnPostgres);

/** Runs `work`, returning what it wrote to stderr meanwhile. */
async function noting(work: () => Promise<void>): Promise<string> {
  const said: string[] = [];
  const write = process.stderr.write;
  process.stderr.write = ((chunk: string | Uint8Array) => (said.push(String(chunk)), true)) as typeof process.stderr.write;
  try {
    await work();
  } finally {
    process.stderr.write = write;
  }
  return said.join('');
}

const PENDING = Buffer.from('<notice>waiting since before the upgrade, é and all</notice>');
const DEAD = Buffer.alloc(20_000, 'x');

/** Two messages as version 2 stored them, with the body in the inbox row. */
async function storeAsVersion2(driver: SqlDriver): Promise<void> {
  const insert = `INSERT INTO messaging_inbox (message_id, mailbox, sender, recipient, workflow_id, body, received_ms, status, attempts, next_attempt_ms, last_error, finished_ms)
                  VALUES (?, 'COUNCIL09', 'TRUST09', 'COUNCIL09', 'ADW_NOTICE', ?, 1000, ?, ?, 1000, ?, ?)`;
  await driver.transaction(async (tx) => {
    await tx.run(insert, ['OLD_PENDING', PENDING as never, 'pending', 0, null, null]);
    await tx.run(insert, ['OLD_DEAD', DEAD as never, 'dead', 3, 'Failed 3 times', 2000]);
  });
}

for (const engine of ENGINES) {
  describe(`messaging migration 3 on an older database (${engine})`, () => {
    it('keeps every inbox body, says so once, and an upgraded database starts without a word', async () => {
      const { database, cleanup } = await testDatabase(engine);
      try {
        const old = await openRecordStore(database);
        await migrate(old, 'messaging', messagingMigrations(old.dialect).filter((m) => m.version <= 2));
        await storeAsVersion2(old);
        await old.close();

        const driver = await openRecordStore(database);
        try {
          const said = await noting(() => migrateMessaging(driver));
          assert.match(said, /^carebridge: moving inbound message bodies into a table of their own once \(messaging migration 3\)/);
          assert.equal(said.split('\n').filter(Boolean).length, 1, said);

          const claimed = await claimDue(driver, 5000, 60_000, 10);
          assert.deepEqual(claimed.map((m) => m.messageId), ['OLD_PENDING']);
          assert.deepEqual(claimed[0].body, PENDING);
          assert.equal(claimed[0].workflowId, 'ADW_NOTICE');
          const dead = await listDeadLetters(driver);
          assert.deepEqual(dead.map((d) => [d.messageId, d.size, d.reason]), [['OLD_DEAD', DEAD.length, 'Failed 3 times']]);
          await replayDeadLetter(driver, 'OLD_DEAD', 6000);
          const replayed = await claimDue(driver, 6000, 60_000, 10);
          assert.deepEqual(replayed.map((m) => m.messageId), ['OLD_DEAD']);
          assert.deepEqual(replayed[0].body, DEAD);

          assert.equal(await noting(() => migrateMessaging(driver)), '', 'an upgraded database starts without a word');
        } finally {
          await driver.close();
        }
      } finally {
        cleanup();
      }
    });
  });
}
