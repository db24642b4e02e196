// SQLite's commits are synced to disk off the thread that serves requests (src/record/storage/walSync.ts):
// a caller is told its transaction committed only after the log holding it was synced, while the disk's
// work no longer stops every other request; and a sync that fails stops all writing. The disk here is the
// real one; a slow or failing disk is the real fdatasync delayed, or an error in its place.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { fdatasync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { openSqlite } from '../../src/record/storage/sqliteDriver.ts';
import type { SyncFile } from '../../src/record/storage/walSync.ts';

const SLOW_DISK_MS = 300;

function scratch(): { path: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'carebridge-walsync-'));
  return { path: join(dir, 'record.db'), cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

describe('commits synced off the serving thread (SQLite)', () => {
  it('answers a transaction only after the log holding it is synced, and goes on serving meanwhile', async () => {
    const { path, cleanup } = scratch();
    const syncs: Array<{ startedAt: number; endedAt?: number }> = [];
    let slow = false;
    const slowDisk: SyncFile = (fd, done) => {
      const sync: { startedAt: number; endedAt?: number } = { startedAt: performance.now() };
      syncs.push(sync);
      setTimeout(() => fdatasync(fd, (err) => {
        sync.endedAt = performance.now();
        done(err);
      }), slow ? SLOW_DISK_MS : 0);
    };
    const driver = openSqlite(path, { syncFile: slowDisk });
    const other = new Database(path, { readonly: true }); // another connection: sees what is committed
    try {
      await driver.exec('CREATE TABLE effects (k TEXT PRIMARY KEY)');
      slow = true;
      let firstAnsweredAt: number | undefined;
      const first = driver.transaction((tx) => tx.run("INSERT INTO effects (k) VALUES ('first')")).then(() => (firstAnsweredAt = performance.now()));
      const visible = (k: string) => other.prepare('SELECT COUNT(*) AS n FROM effects WHERE k = ?').get(k) as { n: number };
      // Committed (another connection reads it) while its sync is still under way: the caller is not told yet.
      await waitFor(() => visible('first').n === 1);
      assert.equal(firstAnsweredAt, undefined, 'the caller was told before the log was synced');

      // Meanwhile the thread is free: a read is answered, and a second transaction runs and commits…
      const read = await driver.get<{ n: number }>('SELECT COUNT(*) AS n FROM effects');
      assert.equal(Number(read?.n), 1);
      let secondAnsweredAt: number | undefined;
      const second = driver.transaction((tx) => tx.run("INSERT INTO effects (k) VALUES ('second')")).then(() => (secondAnsweredAt = performance.now()));
      await waitFor(() => visible('second').n === 1);
      assert.equal(firstAnsweredAt, undefined, 'the second commit happened while the first sync was still under way');
      const secondCommittedAt = performance.now();

      await Promise.all([first, second]);
      // …and each caller was answered after a sync that began after its own commit had finished.
      const firstSync = syncs.find((s) => s.endedAt !== undefined && s.endedAt <= firstAnsweredAt!);
      assert.ok(firstSync, 'the first transaction was answered after a finished sync');
      assert.ok(firstAnsweredAt! - firstSync.startedAt >= SLOW_DISK_MS - 5, `answered ${(firstAnsweredAt! - firstSync.startedAt).toFixed(0)} ms after its sync began, not after the disk's ${SLOW_DISK_MS} ms`);
      const secondSync = syncs.find((s) => s.startedAt >= secondCommittedAt - 1 && s.endedAt !== undefined && s.endedAt <= secondAnsweredAt!);
      assert.ok(secondSync, 'the second transaction waited for a sync begun after its commit, not for the one already under way');
    } finally {
      other.close();
      await driver.close();
      cleanup();
    }
  });

  it('refuses the transaction whose sync failed, and every write after it, with the reason; reads go on', async () => {
    const { path, cleanup } = scratch();
    let failing = false;
    const failingDisk: SyncFile = (fd, done) => (failing ? done(Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' })) : fdatasync(fd, done));
    const driver = openSqlite(path, { syncFile: failingDisk });
    try {
      await driver.exec('CREATE TABLE effects (k TEXT PRIMARY KEY)');
      await driver.transaction((tx) => tx.run("INSERT INTO effects (k) VALUES ('before')"));
      failing = true;
      await assert.rejects(driver.transaction((tx) => tx.run("INSERT INTO effects (k) VALUES ('during')")), /could not be synced to disk \(EIO: i\/o error, fdatasync\).*writes are refused until CareBridge is restarted/);
      failing = false; // the disk answers again, but what it holds is no longer known
      let ran = false;
      await assert.rejects(driver.transaction(async (tx) => {
        ran = true;
        await tx.run("INSERT INTO effects (k) VALUES ('after')");
      }), /writes are refused until CareBridge is restarted/);
      assert.equal(ran, false, 'a write after the failure never ran');
      const rows = await driver.all<{ k: string }>("SELECT k FROM effects WHERE k = 'before'");
      assert.deepEqual(rows.map((r) => r.k), ['before']);
    } finally {
      await driver.close();
      cleanup();
    }
  });

  it('keeps what it acknowledged across a restart', async () => {
    const { path, cleanup } = scratch();
    try {
      const driver = openSqlite(path);
      await driver.exec('CREATE TABLE effects (k TEXT PRIMARY KEY)');
      await Promise.all(Array.from({ length: 50 }, (_, i) => driver.transaction((tx) => tx.run('INSERT INTO effects (k) VALUES (?)', [`k${i}`]))));
      await driver.close();
      const again = openSqlite(path);
      const n = await again.get<{ n: number }>('SELECT COUNT(*) AS n FROM effects');
      await again.close();
      assert.equal(Number(n?.n), 50);
    } finally {
      cleanup();
    }
  });
});

async function waitFor(condition: () => boolean, timeoutMs = 5_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > until) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 2));
  }
}
