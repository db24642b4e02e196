// Walks the audit journal from its first entry, recomputing every hash from the AuditEvent as stored
// (its text and its shared agent/source part, whose key must still be its hash), and reports the first
// link that does not hold. Then checks the patient and entity indexes against the
// entries: an index row for an entry that is not there means entries were removed from the end, and an
// entry whose patients are missing from the index would be hidden from "who has looked at my record".
// Last, against the head anchored in the record's database (anchor.ts): a chain shorter than the anchor,
// or another entry where it was anchored, has lost entries from its end.
import type { SqlExecutor } from '../../record/index.ts';
import { GENESIS_HASH, chainHash, chainPosition } from './chain.ts';
import { HEAD, LEGACY_FORMAT, linkHash, partKey } from './journal.ts';
import { anchoredHead } from './anchor.ts';

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
  for (;;) {
    const rows = await db.all<JournalRow>('SELECT seq, legacy_id, recorded_ms, content, part, prev_hash, hash, format FROM audit_journal WHERE seq >= ? ORDER BY seq LIMIT ?', [expected, PAGE]);
    const missing = await missingFromIndex(db, rows);
    await checkParts(db, rows, parts);
    for (const row of rows) {
      const seq = Number(row.seq);
      const id = row.legacy_id ?? String(seq);
      if (seq !== expected) return broken(expected, String(expected), 'its journal row has been deleted');
      if (row.prev_hash !== previous) return broken(seq, id, 'its journal row does not follow the entry before it (the row was changed)');
      const problem = Number(row.format) === LEGACY_FORMAT ? legacyProblem(row, previous) : (row.part && parts.get(row.part)) || textProblem(row, previous);
      if (problem) return broken(seq, id, problem);
      if (missing?.seq === seq) return broken(seq, id, `the patient index has lost its row for Patient/${missing.patient} (the event would not show in that person's audit)`);
      if (anchor?.seq === seq && anchor.hash !== row.hash) return broken(seq, id, 'it is not the entry the record anchored at this place in the chain (the chain was rewritten from here)');
      previous = row.hash;
      head = { seq, hash: row.hash };
      expected += 1;
      checked += 1;
    }
    if (rows.length < PAGE) break;
  }
  const dangling = await db.get<{ seq: number }>(
    `SELECT MIN(seq) AS seq FROM (SELECT seq FROM audit_patient UNION ALL SELECT seq FROM audit_entity) i WHERE seq > ?`,
    [head?.seq ?? 0],
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
