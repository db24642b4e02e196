// A SQLite statement whose LIMIT is a bare parameter is prepared again every time it runs (SQLite plans with
// the limit's value), which made a one-row search cost five times its run. The driver writes such limits
// as expressions (src/record/storage/sqliteDriver.ts); the limit must still be applied per run.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { limitsReadAtRunTime, openSqlite } from '../../src/record/storage/sqliteDriver.ts';

describe('LIMIT parameters on SQLite', () => {
  it('are written as expressions, and nothing else in the statement changes', () => {
    assert.equal(limitsReadAtRunTime('SELECT a FROM t ORDER BY a LIMIT ? OFFSET ?'), 'SELECT a FROM t ORDER BY a LIMIT +? OFFSET ?');
    assert.equal(limitsReadAtRunTime('SELECT a FROM (SELECT a FROM t LIMIT ?) LIMIT ?'), 'SELECT a FROM (SELECT a FROM t LIMIT +?) LIMIT +?');
    for (const unchanged of ['SELECT a FROM t LIMIT 10', 'SELECT a FROM t WHERE a > ? LIMIT 5 OFFSET ?', 'SELECT a FROM t WHERE b = ?']) {
      assert.equal(limitsReadAtRunTime(unchanged), unchanged);
    }
  });

  it('still limit each run of one cached statement by that run\'s value', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'carebridge-limits-'));
    const driver = openSqlite(join(dir, 'limits.db'));
    try {
      await driver.exec('CREATE TABLE counted (n INTEGER PRIMARY KEY)');
      await driver.insertMany('counted', ['n'], Array.from({ length: 10 }, (_, n) => [n]));
      const page = (limit: number, offset: number) => driver.all<{ n: number }>('SELECT n FROM counted ORDER BY n LIMIT ? OFFSET ?', [limit, offset]);
      assert.deepEqual((await page(3, 0)).map((r) => r.n), [0, 1, 2]);
      assert.deepEqual((await page(1, 4)).map((r) => r.n), [4]);
      assert.deepEqual((await page(0, 0)).map((r) => r.n), []);
      assert.deepEqual((await page(20, 8)).map((r) => r.n), [8, 9]);
    } finally {
      await driver.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
