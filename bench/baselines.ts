// Baselines for context: what the hardware and libraries do with none of the record's work.
// - raw SQLite: the same resources as JSON text into a bare (id, content) table, one transaction per
//   bundle, with the server's pragmas (WAL, synchronous=FULL);
// - an empty Fastify route in its own process under the same autocannon load as the read benchmark.
import Database from 'better-sqlite3';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SyntheaBundle } from './ingest.ts';
import { load, type LoadResult } from './load.ts';
import { startChild } from './support.ts';

export function rawSqliteInsert(bundles: SyntheaBundle[]): { perSecond: number; seconds: number } {
  const dir = mkdtempSync(join(tmpdir(), 'carebridge-raw-'));
  try {
    const db = new Database(join(dir, 'raw.db'));
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL'); // as src/record/storage/sqliteDriver.ts
    db.exec('CREATE TABLE resources (id TEXT PRIMARY KEY, content TEXT NOT NULL)');
    const insert = db.prepare('INSERT INTO resources (id, content) VALUES (?, ?)');
    let n = 0;
    const start = performance.now();
    for (const bundle of bundles) {
      db.transaction(() => {
        for (const r of bundle.resources) insert.run(randomUUID(), JSON.stringify(r)); // new ids, as the server gives POSTs
      })();
      n += bundle.resources.length;
    }
    const seconds = (performance.now() - start) / 1000;
    db.close();
    return { perSecond: n / seconds, seconds };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function emptyFastify(seconds: number, connections = 32): Promise<LoadResult> {
  const server = await startChild('bench/emptyServer.ts');
  try {
    return await load(server.url, connections, seconds, () => '/empty', false);
  } finally {
    await server.stop();
  }
}
