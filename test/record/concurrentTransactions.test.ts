// Transactions started at the same time, on both engines (SQLite commits those that queue up together in
// one shared commit): each caller still gets exactly its own transaction. One that throws, or breaks a
// constraint, is rolled back alone and the others commit; and a caller is told "committed" only once its
// writes are visible to another connection, i.e. on disk.
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { openRecordStore, type SqlDriver } from '../../src/record/index.ts';
import { ENGINES, testDatabase } from '../support/server.ts';
import { stopOwnPostgres } from '../support/postgres.ts';

after(stopOwnPostgres);

for (const engine of ENGINES) {
  describe(`transactions at the same time (${engine})`, () => {
    it('roll back alone when they fail, commit the rest, and answer only once committed', async () => {
      const { database, cleanup } = await testDatabase(engine);
      const writer: SqlDriver = await openRecordStore(database);
      const other: SqlDriver = await openRecordStore(database); // another connection, as another node would be
      try {
        await writer.exec('CREATE TABLE concurrent_effects (k TEXT PRIMARY KEY, n INTEGER NOT NULL)');
        await writer.transaction((tx) => tx.run("INSERT INTO concurrent_effects (k, n) VALUES ('taken', -1)"));
        const visibleWhenAnswered: boolean[] = [];
        const outcomes = await Promise.allSettled(Array.from({ length: 30 }, (_, i) =>
          writer.transaction(async (tx) => {
            await tx.run('INSERT INTO concurrent_effects (k, n) VALUES (?, ?)', [`first-${i}`, i]);
            await new Promise((r) => setImmediate(r)); // let the others queue up behind this one
            if (i === 7) throw new Error('the step found a problem after writing');
            // Transaction 12 breaks the primary key with a row that was there before.
            await tx.run('INSERT INTO concurrent_effects (k, n) VALUES (?, ?)', [i === 12 ? 'taken' : `second-${i}`, i]);
            return i;
          }).then(async (value) => {
            const seen = await other.get<{ n: number }>('SELECT COUNT(*) AS n FROM concurrent_effects WHERE k IN (?, ?)', [`first-${value}`, `second-${value}`]);
            visibleWhenAnswered.push(Number(seen?.n) === 2);
            return value;
          })));

        const failed = outcomes.flatMap((o, i) => (o.status === 'rejected' ? [i] : []));
        assert.deepEqual(failed, [7, 12]);
        assert.match(String((outcomes[7] as PromiseRejectedResult).reason), /found a problem/);
        assert.ok(visibleWhenAnswered.length === 28 && visibleWhenAnswered.every(Boolean), 'every committed transaction was visible to another connection when its caller was answered');
        const rows = await other.all<{ k: string }>('SELECT k FROM concurrent_effects');
        const keys = new Set(rows.map((r) => r.k));
        assert.equal(keys.size, 28 * 2 + 1);
        for (const gone of ['first-7', 'first-12', 'second-12']) assert.ok(!keys.has(gone), `${gone} was rolled back`);

        // The connection is fine afterwards: a transaction on its own commits.
        await writer.transaction((tx) => tx.run('INSERT INTO concurrent_effects (k, n) VALUES (?, ?)', ['after', 0]));
        assert.ok(await other.get("SELECT k FROM concurrent_effects WHERE k = 'after'"));
      } finally {
        await writer.close();
        await other.close();
        cleanup();
      }
    });
  });
}
