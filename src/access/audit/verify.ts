// Walks the audit journal from its first entry, recomputing every hash from the AuditEvent as stored
// (its text and its shared agent/source part, whose key must still be its hash; for a batch, from its
// packed requests), and reports the first link that does not hold (inside a batch that does not match its hash,
// the first entry that no longer matches its own digest, when the batch has them). Then checks the patient and entity indexes against the
// entries: an index row for an entry that is not there means entries were removed from the end, and an
// entry whose patients are missing from the index would be hidden from "who has looked at my record".
// (A server may write while this runs: what it commits after the walk is not taken for a loss.)
// Last, against the head anchored in the record's database (anchor.ts): a chain shorter than the anchor,
// or another entry where it was anchored, has lost entries from its end.
import type { SqlExecutor } from '../../record/index.ts';
import { GENESIS_HASH, chainHash, chainPosition } from './chain.ts';
import { HEAD, LEGACY_FORMAT, linkHash, partKey } from './journal.ts';
import { anchoredHead } from './anchor.ts';
import { BATCH_COLUMNS, BATCH_FORMAT, UNDIGESTED_BATCH_FORMAT, batchEntries, batchHash, changedEntries, entryKeys, positionsOf, type StoredBatch } from './batchJournal.ts';

export type ChainCheck =
  | { intact: true; checked: number; head?: { seq: number; hash: string } }
  | { intact: false; checked: number; seq: number; auditId?: string; problem: string };

interface JournalRow { seq: number; legacy_id: string | null; recorded_ms: number; content: string; part: string | null; prev_hash: string; hash: string; format: number }

const PAGE = 1000;

export async function verifyAuditChain(db: SqlExecutor): Promise<ChainCheck> {
  let previous = GENESIS_HASH;
  let expected = 1;
  let checked = 0;
  let head: { seq: number; hash: string } | undefined;
  const broken = (seq: number, auditId: string | undefined, problem: string): ChainCheck => ({ intact: false, checked, seq, auditId, problem });
  const parts = new Map<string, string | undefined>(); // key → what is wrong with it ('' when sound)
  const anchor = await anchoredHead(db);
  // One-row entries and batches follow each other in seq order (a deployment from before the batches
  // has its one-row entries first); each is read a page at a time.
  let rows: JournalRow[] = [];
  let batches: StoredBatch[] = [];
  let missing: { seq: number; patient: string } | undefined;
  // Read again once the page in hand is used up, unless it was the last (shorter than a page).
  const usedUp = <T>(page: T[] | undefined, size: number, last: (t: T) => number) => page === undefined || (page.length === size && last(page[page.length - 1]) < expected);
  let rowsRead = false;
  let batchesRead = false;
  for (;;) {
    if (usedUp(rowsRead ? rows : undefined, PAGE, (r) => Number(r.seq))) {
      rowsRead = true;
      rows = await db.all<JournalRow>('SELECT seq, legacy_id, recorded_ms, content, part, prev_hash, hash, format FROM audit_journal WHERE seq >= ? ORDER BY seq LIMIT ?', [expected, PAGE]);
      missing = await missingFromIndex(db, rows);
      await checkParts(db, rows, parts);
    }
    if (usedUp(batchesRead ? batches : undefined, BATCH_PAGE, (b) => Number(b.first_seq))) {
      batchesRead = true;
      batches = await db.all<StoredBatch>(`SELECT ${BATCH_COLUMNS}, b.entry_digests FROM audit_batch b WHERE b.first_seq >= ? ORDER BY b.first_seq LIMIT ?`, [expected, BATCH_PAGE]);
    }
    const row = rows.find((r) => Number(r.seq) === expected);
    const batch = row ? undefined : batches.find((b) => Number(b.first_seq) === expected);
    if (!row && !batch) {
      const next = Math.min(...rows.map((r) => Number(r.seq)).filter((n) => n > expected), ...batches.map((b) => Number(b.first_seq)).filter((n) => n > expected));
      if (Number.isFinite(next)) return broken(expected, String(expected), 'its journal row has been deleted');
      break;
    }
    if (batch) {
      const problem = batchProblem(batch, previous, await batchKeys(db, batch), anchor);
      if (problem) return broken(problem.seq ?? expected, String(problem.seq ?? expected), problem.text);
      previous = batch.hash;
      head = { seq: Number(batch.last_seq), hash: batch.hash };
      checked += Number(batch.last_seq) - expected + 1;
      expected = Number(batch.last_seq) + 1;
      continue;
    }
    const seq = Number(row!.seq);
    const id = row!.legacy_id ?? String(seq);
    if (row!.prev_hash !== previous) return broken(seq, id, 'its journal row does not follow the entry before it (the row was changed)');
    const problem = Number(row!.format) === LEGACY_FORMAT ? legacyProblem(row!, previous) : (row!.part && parts.get(row!.part)) || textProblem(row!, previous);
    if (problem) return broken(seq, id, problem);
    if (missing?.seq === seq) return broken(seq, id, `the patient index has lost its row for Patient/${missing.patient} (the event would not show in that person's audit)`);
    if (anchor?.seq === seq && anchor.hash !== row!.hash) return broken(seq, id, 'it is not the entry the record anchored at this place in the chain (the chain was rewritten from here)');
    previous = row!.hash;
    head = { seq, hash: row!.hash };
    expected += 1;
    checked += 1;
  }
  // Index rows beyond the walked chain whose entry is not stored. A server may go on writing while this
  // runs: a batch committed since the walk is stored with its keys (one transaction), and is not a loss.
  const after = head?.seq ?? 0;
  const dangling = await db.get<{ seq: number }>(
    `SELECT MIN(seq) AS seq FROM (
       SELECT p.seq FROM audit_patient p WHERE p.seq > ? AND NOT EXISTS (SELECT 1 FROM audit_journal j WHERE j.seq = p.seq)
       UNION ALL SELECT e.seq FROM audit_entity e WHERE e.seq > ? AND NOT EXISTS (SELECT 1 FROM audit_journal j WHERE j.seq = e.seq)
       UNION ALL SELECT k.first_seq AS seq FROM audit_batch_key k WHERE k.first_seq > ? AND NOT EXISTS (SELECT 1 FROM audit_batch b WHERE b.first_seq = k.first_seq)
     ) i`,
    [after, after, after],
  );
  if (dangling?.seq !== null && dangling?.seq !== undefined) {
    return broken(Number(dangling.seq), String(dangling.seq), 'its journal row has been deleted (the indexes still list it: entries were removed from the end)');
  }
  if (anchor && anchor.seq > (head?.seq ?? 0)) {
    const at = (head?.seq ?? 0) + 1;
    return broken(at, String(at), `its journal row has been deleted: the record's anchor says the chain reached entry ${anchor.seq} on ${new Date(anchor.anchoredMs).toISOString()} (entries were removed from the end)`);
  }
  return { intact: true, checked, head };
}

const BATCH_PAGE = 20;

/** The batch's keys, each with the positions of the entries it lists. */
async function batchKeys(db: SqlExecutor, batch: StoredBatch): Promise<Map<string, Set<number>>> {
  const rows = await db.all<{ key: string; positions: string }>('SELECT key, positions FROM audit_batch_key WHERE first_seq = ?', [batch.first_seq]);
  return new Map(rows.map((r) => [r.key, new Set(positionsOf(r.positions))]));
}

/**
 * What is wrong with a batch, given the hash before it and its index keys: its link, its hash, its bytes,
 * its keys (a lost patient key, or a position missing from one, hides its entries from that person's audit), and the anchor inside it.
 */
function batchProblem(batch: StoredBatch, previous: string, keys: Map<string, Set<number>>, anchor: { seq: number; hash: string } | undefined): { seq?: number; text: string } | undefined {
  const first = Number(batch.first_seq);
  const last = Number(batch.last_seq);
  const span = `entries ${first} to ${last}, stored as one batch`;
  if (batch.prev_hash !== previous) return { text: `its batch (${span}) does not follow the entry before it (the row was changed)` };
  if (!knownFormat(batch) || batchHash(previous, batch) !== batch.hash) return changedEntryProblem(batch, span) ?? { text: `its batch (${span}) does not match its hash (it was changed after it was recorded)` };
  let entries;
  try {
    entries = batchEntries(batch);
  } catch {
    return { text: `its batch (${span}) cannot be read` };
  }
  for (const { seq, entry } of entries) {
    for (const key of entryKeys(entry)) {
      if (keys.get(key)?.has(seq - first)) continue;
      const patient = /^[PS]\|/.test(key) ? key.slice(2) : undefined;
      return { seq, text: patient ? `the patient index has lost its row for Patient/${patient} (the event would not show in that person's audit)` : `the search index has lost its key '${key}' for this event's batch (searches by it would miss the event)` };
    }
  }
  if (anchor && anchor.seq >= first && anchor.seq <= last && (anchor.seq !== last || anchor.hash !== batch.hash)) {
    return { seq: anchor.seq, text: 'it is not the entry the record anchored at this place in the chain (the chain was rewritten from here)' };
  }
  return undefined;
}

/** Format 4, or format 3 without digests (a batch from before them: digests added later were not written with it). */
function knownFormat(batch: StoredBatch): boolean {
  const format = Number(batch.format);
  return format === BATCH_FORMAT || (format === UNDIGESTED_BATCH_FORMAT && (batch.entry_digests ?? null) === null);
}

/**
 * The first entry of a batch that failed its hash whose bytes no longer match their digest. Undefined when
 * none can be named: a batch from before the digests, digests that do not decode, or entries that all still
 * match theirs (then the digests, the callers or the batch's other columns were changed): the batch as a whole is reported.
 */
function changedEntryProblem(batch: StoredBatch, span: string): { seq: number; text: string } | undefined {
  const changed = changedEntries(batch);
  if (!changed?.length) return undefined;
  const others = changed.length > 1 ? `; ${changed.length - 1} more of its entries were changed too, the next at seq ${Number(batch.first_seq) + changed[1]}` : '';
  return { seq: Number(batch.first_seq) + changed[0], text: `this entry was changed after it was recorded: it no longer matches the digest its batch (${span}) recorded for it (or that digest was changed), and the batch no longer matches its hash${others}` };
}

function textProblem(row: JournalRow, previous: string): string | undefined {
  if (!row.content.startsWith(`${HEAD}${row.seq}"`)) return 'the stored AuditEvent does not carry its own id';
  if (linkHash(previous, row.content, row.part ?? '') !== row.hash) return 'the stored AuditEvent does not match its hash (it was changed after it was recorded)';
  try {
    JSON.parse(row.content);
  } catch {
    return 'the stored AuditEvent is not valid JSON';
  }
  return undefined;
}

/** Checks each part the rows use (once per verify): present, and still the text its key is the hash of. */
async function checkParts(db: SqlExecutor, rows: JournalRow[], parts: Map<string, string | undefined>): Promise<void> {
  const keys = [...new Set(rows.map((r) => r.part).filter((k): k is string => !!k && !parts.has(k)))];
  for (let i = 0; i < keys.length; i += 500) {
    const some = keys.slice(i, i + 500);
    const found = new Map((await db.all<{ part_key: string; content: string }>(`SELECT part_key, content FROM audit_part WHERE part_key IN (${some.map(() => '?').join(', ')})`, some)).map((r) => [r.part_key, r.content]));
    for (const key of some) {
      const text = found.get(key);
      parts.set(key, text === undefined ? `its agent and source (audit_part ${key}) have been removed` : partKey(text) !== key ? `its agent and source (audit_part ${key}) were changed after they were recorded` : '');
    }
  }
}

function legacyProblem(row: JournalRow, previous: string): string | undefined {
  let event: Record<string, any>;
  try {
    event = JSON.parse(row.content);
  } catch {
    return 'the stored AuditEvent is not valid JSON';
  }
  if (event.id !== row.legacy_id || chainHash(previous, event) !== row.hash) return 'the stored AuditEvent does not match its hash (it was changed after it was recorded)';
  const position = chainPosition(event);
  if (position.seq !== Number(row.seq) || position.hash !== row.hash) return 'the chain position recorded inside the AuditEvent was changed';
  return undefined;
}

/** The first entry in `rows` naming a patient (entity.what) that audit_patient does not list for it. */
async function missingFromIndex(db: SqlExecutor, rows: JournalRow[]): Promise<{ seq: number; patient: string } | undefined> {
  const wanted = new Map<string, JournalRow>();
  for (const row of rows) {
    let event: Record<string, any>;
    try {
      event = JSON.parse(row.content);
    } catch {
      continue;
    }
    for (const e of event.entity ?? []) {
      const ref = e?.what?.reference;
      if (typeof ref === 'string' && ref.startsWith('Patient/')) wanted.set(`${ref.slice(8)}\u0000${row.seq}`, row);
    }
  }
  if (!wanted.size) return undefined;
  const patients = [...new Set([...wanted.keys()].map((k) => k.split('\u0000')[0]))];
  const lo = Math.min(...rows.map((r) => Number(r.recorded_ms)));
  const hi = Math.max(...rows.map((r) => Number(r.recorded_ms)));
  const found = new Set<string>();
  for (let i = 0; i < patients.length; i += 500) {
    const some = patients.slice(i, i + 500);
    const indexed = await db.all<{ patient_id: string; seq: number }>(
      `SELECT patient_id, seq FROM audit_patient WHERE patient_id IN (${some.map(() => '?').join(', ')}) AND recorded_ms BETWEEN ? AND ?`,
      [...some, lo, hi],
    );
    for (const r of indexed) found.add(`${r.patient_id}\u0000${r.seq}`);
  }
  for (const [key, row] of wanted) {
    if (!found.has(key)) return { seq: Number(row.seq), patient: key.split('\u0000')[0] };
  }
  return undefined;
}
