// A busy SQLite record copies its write-ahead log back into the database file from a thread of its own
// (src/record/storage/walCheckpointer.ts), not in the commit of whichever request crosses SQLite's mark.
// Observable from outside: the database file takes in what was committed soon after, although the log is
// far below the 1,000 pages at which SQLite's own checkpoint would run; and closing leaves no log behind.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openRecordStore } from '../../src/record/index.ts';
import { CHECKPOINTER_NICE } from '../../src/record/storage/walCheckpointer.ts';
import { threadNiceness } from '../support/threadPriority.ts';

const until = async (what: string, ok: () => boolean, ms = 5000) => {
  for (const end = Date.now() + ms; !ok(); await new Promise((r) => setTimeout(r, 50))) {
    if (Date.now() > end) assert.fail(`${what} within ${ms} ms`);
  }
};

describe('checkpoints of a busy SQLite record', () => {
  it('are taken off the writer: the file fills soon after commits, below SQLite\'s own mark', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'carebridge-wal-'));
    const path = join(dir, 'record.db');
    const threadsBefore = threadNiceness();
    const driver = await openRecordStore(`sqlite:${path}`);
    try {
      await driver.exec('CREATE TABLE wal_filler (n INTEGER PRIMARY KEY, body TEXT NOT NULL)');
      const before = statSync(path).size;
      // 300 small transactions, ~600 KB: about 300 pages of log, far under the 1,000 of SQLite's own checkpoint.
      const body = 'x'.repeat(2000);
      for (let n = 0; n < 300; n++) await driver.transaction((tx) => tx.run('INSERT INTO wal_filler (n, body) VALUES (?, ?)', [n, body]));
      await until('the database file took in the committed rows', () => statSync(path).size - before > 500_000);
      assert.equal(Number((await driver.get<{ n: number }>('SELECT COUNT(*) AS n FROM wal_filler'))?.n), 300);
      if (process.platform === 'linux') {
        // Nobody waits for a passive checkpoint: on a machine with no idle core the thread serving requests goes first.
        const started = [...threadNiceness()].filter(([tid]) => !threadsBefore.has(tid));
        assert.ok(started.some(([, nice]) => nice === CHECKPOINTER_NICE), `the checkpointing thread runs at nice ${CHECKPOINTER_NICE}: ${JSON.stringify(started)}`);
        assert.equal(threadNiceness().get(process.pid), threadsBefore.get(process.pid), 'the serving thread keeps its priority');
      }
    } finally {
      await driver.close();
    }
    // The thread's connection was closed before the record's: the last one out folds the log in and removes it.
    assert.equal(existsSync(`${path}-wal`), false, 'no write-ahead log is left after close');
    const again = await openRecordStore(`sqlite:${path}`);
    try {
      assert.equal(Number((await again.get<{ n: number }>('SELECT COUNT(*) AS n FROM wal_filler'))?.n), 300);
    } finally {
      await again.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
