// A connection that may write the audit journal's tables, for tests that tamper with them, and what the
// journal holds, read as the tests need it: on SQLite the
// journal is in a file of its own, only read through the record's driver (src/access/audit/ownDatabase.ts).
import { connectRecordDatabase, type SqlDriver, type SqlExecutor } from '../../src/record/index.ts';
import { JOURNAL_TABLES } from '../../src/access/audit/ownDatabase.ts';
import { BATCH_COLUMNS, BatchKeys, batchEntries, batchHash, positionsText, storedHead, type BatchEntry, type StoredBatch } from '../../src/access/audit/batchJournal.ts';
import { PackedRequests, decodeBatch } from '../../src/access/audit/batchMessage.ts';
import { entryValuesFor, type AuditedRequest } from '../../src/access/audit/auditEvent.ts';

export async function journalConnection(driver: SqlDriver): Promise<{ db: SqlDriver; close(): Promise<void> }> {
  const location = await driver.attachCompanion?.('audit', JOURNAL_TABLES);
  if (!location) return { db: driver, close: async () => undefined };
  const db = connectRecordDatabase(location);
  return { db, close: () => db.close() };
}

/** How many entries the journal holds: one-row entries and the entries of its batches. */
export async function journalEntryCount(db: SqlExecutor): Promise<number> {
  const rows = Number((await db.get<{ n: number }>('SELECT COUNT(*) AS n FROM audit_journal'))!.n);
  const batched = Number((await db.get<{ n: number }>('SELECT COALESCE(SUM(last_seq - first_seq + 1), 0) AS n FROM audit_batch'))!.n);
  return rows + batched;
}

/** Every entry of the journal's batches, as the search sees it. */
export async function batchedEntries(db: SqlExecutor): Promise<BatchEntry[]> {
  const batches = await db.all<StoredBatch>(`SELECT ${BATCH_COLUMNS} FROM audit_batch b ORDER BY b.first_seq`);
  return batches.flatMap((b) => batchEntries(b));
}

/**
 * Everything the journal stores as text, for tests that look for what must never be stored (secrets,
 * tokens): one-row entries, their shared parts, and each batch's packed requests read as UTF-8 and its actors.
 */
export async function storedJournalTexts(db: SqlExecutor): Promise<string[]> {
  const texts = (await db.all<{ content: string }>('SELECT content FROM audit_journal')).map((r) => r.content);
  texts.push(...(await db.all<{ content: string }>('SELECT content FROM audit_part')).map((r) => r.content));
  for (const b of await db.all<{ body: string; actors: string }>('SELECT body, actors FROM audit_batch')) {
    texts.push(Buffer.from(b.body, 'base64').toString('utf8'), b.actors);
  }
  return texts;
}

/** The stored batch holding entry `seq`. */
export async function batchHolding(db: SqlExecutor, seq: number): Promise<StoredBatch> {
  const row = await db.get<StoredBatch>(`SELECT ${BATCH_COLUMNS} FROM audit_batch b WHERE b.first_seq <= ? AND b.last_seq >= ?`, [seq, seq]);
  if (!row) throw new Error(`no batch holds entry ${seq}`);
  return row;
}

/**
 * A forgery: the batch holding entry `seq` stored again with that entry's request changed by `change`,
 * its hash left as it was. Resolves to a function that puts the original back.
 */
export async function forgeBatchEntry(db: SqlDriver, seq: number, change: (r: AuditedRequest) => AuditedRequest): Promise<() => Promise<void>> {
  const original = await batchHolding(db, seq);
  const bytes = Buffer.from(original.body, 'base64');
  const first = Number(original.first_seq);
  const requests = decodeBatch({ bytes: new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), actors: JSON.parse(original.actors), count: Number(original.last_seq) - first + 1 });
  const packed = new PackedRequests();
  requests.forEach((r, i) => packed.push(first + i === seq ? change(r) : r));
  const message = packed.message(requests.length);
  const set = (body: string, actors: string) => db.transaction((tx) => tx.run('UPDATE audit_batch SET body = ?, actors = ? WHERE first_seq = ?', [body, actors, first]));
  await set(Buffer.from(message.bytes).toString('base64'), JSON.stringify(message.actors));
  return async () => void (await set(original.body, original.actors));
}

/**
 * Appends `requests` as one batch the way the writer did before audit migration 3: format 3, without entry
 * digests, on a journal whose audit_batch has no entry_digests column yet. Resolves to its first and last seq.
 */
export async function appendUndigestedBatch(db: SqlDriver, observer: string, requests: AuditedRequest[]): Promise<{ first: number; last: number }> {
  const packed = new PackedRequests();
  for (const r of requests) packed.push(r);
  const message = packed.message(requests.length);
  const keys = new BatchKeys();
  requests.forEach((r, position) => keys.add(entryValuesFor(r, observer), position));
  const at = requests.map((r) => r.at);
  return db.transaction(async (tx) => {
    const head = await storedHead(tx);
    // Format 3 as a fact of what was written then, not the constant naming it today.
    const row = { first_seq: head.seq + 1, observer, actors: JSON.stringify(message.actors), body: Buffer.from(message.bytes).toString('base64'), format: 3 };
    const last = head.seq + requests.length;
    await tx.run(
      'INSERT INTO audit_batch (first_seq, last_seq, min_ms, max_ms, observer, actors, body, prev_hash, hash, format) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
      [row.first_seq, last, Math.floor(Math.min(...at)), Math.ceil(Math.max(...at)), observer, row.actors, row.body, head.hash, batchHash(head.hash, row), row.format],
    );
    await tx.insertMany('audit_batch_key', ['key', 'first_seq', 'positions'], [...keys.rows()].map(([k, positions]) => [k, row.first_seq, positionsText(positions)]));
    return { first: row.first_seq, last };
  });
}
