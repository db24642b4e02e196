// Searching the journal's batches (batchJournal.ts). SQL picks the batches that can hold a match: those
// whose audit_batch_key rows meet every filter but the date, and whose time span meets the date; each of
// their entries is then built and tested here, with the same meaning the one-row-per-entry search gives
// each parameter in SQL (search.ts). Batches are read newest first (or oldest first), a few at a time:
// once enough entries are certain to come before anything unread, the page is known and reading stops,
// unless a total is wanted.
import { dateMatcher, type Filter, type Param, type SqlExecutor } from '../../record/index.ts';
import type { JournalEntry } from './auditEvent.ts';
import { BATCH_COLUMNS, KEY_LENGTH, batchEntries, selfPatient, type StoredBatch } from './batchJournal.ts';
import { referenceTo, tokenValue, type TokenParam } from './searchValues.ts';

/** An entry a search found in a batch: its place, its time, what it holds, and its batch's hash. */
export interface BatchMatch { seq: number; ms: number; entry: JournalEntry; hash: string }

export interface BatchSearch {
  /** The filters, already checked and narrowed to what the caller may see (search.ts). */
  filters: Filter[];
  /** Only entries about these patients (a person's own); undefined = everyone's. */
  visible: readonly string[] | undefined;
  descending: boolean;
  /** How many matches, in order from the first, the page needs (offset + count + 1). */
  need: number;
  /** Count every match: to the end (`all`), up to COUNT_BATCHES batches (`bounded`), or not at all. */
  count: 'all' | 'bounded' | 'none';
  /** How many batches each read fetches (BATCHES_A_READ). */
  batchesAtOnce?: number;
}

/** Batches read, beyond the page, to count a search's matches when no total was asked for explicitly (~100,000 entries). */
export const COUNT_BATCHES = 100;
const BATCHES_A_READ = 8;
const NEVER = '1 = 0';

/** The first `need` matches in order, and the number of matches when it was counted. */
export async function searchBatches(db: SqlExecutor, search: BatchSearch): Promise<{ matches: BatchMatch[]; total?: number }> {
  const where = candidateConditions(search.filters, search.visible);
  if (where.text.includes(NEVER)) return { matches: [], total: 0 };
  const test = entryTest(search.filters, search.visible);
  const bound = search.descending ? 'max_ms' : 'min_ms';
  const [older, dir] = search.descending ? ['<', 'DESC'] : ['>', 'ASC'];
  let matches: BatchMatch[] = [];
  let total = 0;
  let cursor: { ms: number; seq: number } | undefined;
  let beyondPage = 0;
  const perRead = search.batchesAtOnce ?? BATCHES_A_READ;
  const order = (a: BatchMatch, b: BatchMatch) => (search.descending ? b.ms - a.ms || b.seq - a.seq : a.ms - b.ms || a.seq - b.seq);
  for (;;) {
    const after = cursor ? ` AND (b.${bound} ${older} ? OR (b.${bound} = ? AND b.first_seq ${older} ?))` : '';
    const rows = await db.all<StoredBatch>(
      `SELECT ${BATCH_COLUMNS} FROM audit_batch b WHERE ${where.text}${after} ORDER BY b.${bound} ${dir}, b.first_seq ${dir} LIMIT ${perRead}`,
      [...where.params, ...(cursor ? [cursor.ms, cursor.ms, cursor.seq] : [])],
    );
    for (const row of rows) {
      for (const { seq, entry } of batchEntries(row)) {
        if (!test(entry)) continue;
        total += 1;
        matches.push({ seq, ms: entry.recordedMs, entry, hash: row.hash });
      }
    }
    if (rows.length < perRead) return { matches: top(matches, search.need, order), total };
    const last = rows[rows.length - 1];
    cursor = { ms: Number(last[bound]), seq: Number(last.first_seq) };
    matches = top(matches, search.need, order);
    // Entries in batches not yet read are no newer (older) than this bound.
    const settled = matches.filter((m) => (search.descending ? m.ms > cursor!.ms : m.ms < cursor!.ms)).length;
    if (settled >= search.need) {
      if (search.count === 'none') return { matches };
      if (search.count === 'bounded' && (beyondPage += rows.length) > COUNT_BATCHES) return { matches };
    }
  }
}

function top(matches: BatchMatch[], need: number, order: (a: BatchMatch, b: BatchMatch) => number): BatchMatch[] {
  matches.sort(order);
  return matches.length > need ? matches.slice(0, need) : matches;
}

interface Sql { text: string; params: Param[] }

/** The conditions on audit_batch b a batch must meet to hold a match. */
function candidateConditions(filters: Filter[], visible: readonly string[] | undefined): Sql {
  const parts: Sql[] = filters.map(candidateCondition);
  if (visible) parts.push(keyCondition(visible.flatMap((id) => [{ key: `P|${id}` }, { key: `S|${id}` }])));
  const kept = parts.filter((p) => p.text);
  return { text: kept.map((p) => p.text).join(' AND ') || '1 = 1', params: kept.flatMap((p) => p.params) };
}

type KeyWanted = { key: string } | { from: string; to: string };

function keyCondition(wanted: KeyWanted[]): Sql {
  if (!wanted.length) return { text: NEVER, params: [] };
  const ors = wanted.map((w) => ('key' in w ? { text: 'key = ?', params: [w.key] } : { text: '(key >= ? AND key < ?)', params: [w.from, w.to] }));
  return { text: `b.first_seq IN (SELECT first_seq FROM audit_batch_key WHERE ${ors.map((o) => o.text).join(' OR ')})`, params: ors.flatMap((o) => o.params) };
}

const TOKEN_KEY: Record<TokenParam, string> = { type: 'T', subtype: 'B', action: 'C', outcome: 'O', purpose: 'U', altid: 'I' };
const cut = (key: string) => key.slice(0, KEY_LENGTH + 2);
const anyAfter = (prefix: string): KeyWanted => ({ from: prefix, to: `${prefix}\u{10ffff}` });

function candidateCondition(f: Filter): Sql {
  const code = f.param.code;
  if (code === 'date') {
    const spans = f.values.map((v) => dateMatcher(v, code));
    if (spans.some((s) => s.from === undefined)) return { text: '', params: [] };
    return { text: `(${spans.map(() => '(b.max_ms >= ? AND b.min_ms <= ?)').join(' OR ')})`, params: spans.flatMap((s) => [s.from!, s.to!]) };
  }
  const wanted: KeyWanted[] = f.values.flatMap((value): KeyWanted[] => {
    switch (code) {
      case 'patient':
      case 'entity': {
        const ref = referenceTo(value, code);
        if (ref.type === 'Patient') return code === 'patient' ? [{ key: `P|${ref.id}` }, { key: `S|${ref.id}` }] : [{ key: `P|${ref.id}` }];
        return code === 'entity' ? [{ key: cut(`E|${ref.type}/${ref.id}`) }] : [];
      }
      case 'entity-name':
        return [f.modifier === 'exact' ? { key: cut(`N|${value}`) } : anyAfter(cut(`N|${value}`))];
      case 'agent': {
        const ref = referenceTo(value, code);
        return [{ key: `A|${ref.type}/${ref.id}` }];
      }
      default: {
        const token = tokenValue(code as TokenParam, value);
        if (token === 'never') return [];
        const letter = TOKEN_KEY[code as TokenParam];
        return token === 'any' ? [anyAfter(`${letter}|`)] : [{ key: `${letter}|${token.code}` }];
      }
    }
  });
  return keyCondition(wanted);
}

const TOKEN_FIELD: Record<TokenParam, (e: JournalEntry) => string | null> = {
  type: (e) => e.type, subtype: (e) => e.subtype, action: (e) => e.action, outcome: (e) => e.outcome, purpose: (e) => e.purpose, altid: (e) => e.agent,
};
const cutRef = (ref: string) => ref.slice(0, KEY_LENGTH);

/** Whether an entry meets every filter (any of each filter's values), and is about someone visible. */
function entryTest(filters: Filter[], visible: readonly string[] | undefined): (e: JournalEntry) => boolean {
  const tests = filters.map((f) => {
    const values = f.values.map((v) => valueTest(f, v));
    return (e: JournalEntry) => values.some((t) => t(e));
  });
  if (visible) tests.push((e) => e.patients.some((p) => visible.includes(p)) || visible.includes(selfPatient(e) ?? '\u0000'));
  return (e) => tests.every((t) => t(e));
}

function valueTest(f: Filter, value: string): (e: JournalEntry) => boolean {
  const code = f.param.code;
  switch (code) {
    case 'date': {
      const { matches } = dateMatcher(value, code);
      return (e) => matches(e.recordedMs);
    }
    case 'patient':
    case 'entity': {
      const ref = referenceTo(value, code);
      if (ref.type === 'Patient') return code === 'patient' ? (e) => e.patients.includes(ref.id) || selfPatient(e) === ref.id : (e) => e.patients.includes(ref.id);
      if (code === 'patient') return () => false;
      const wanted = cutRef(`${ref.type}/${ref.id}`);
      return (e) => e.entities.some((r) => cutRef(r) === wanted);
    }
    case 'entity-name': {
      const name = cutRef(value);
      return f.modifier === 'exact' ? (e) => e.names.some((n) => cutRef(n) === name) : (e) => e.names.some((n) => cutRef(n).startsWith(name));
    }
    case 'agent': {
      const ref = referenceTo(value, code);
      const wanted = `${ref.type}/${ref.id}`;
      return (e) => e.agentRef === wanted;
    }
    default: {
      const token = tokenValue(code as TokenParam, value);
      const field = TOKEN_FIELD[code as TokenParam];
      if (token === 'never') return () => false;
      if (token === 'any') return (e) => field(e) !== null;
      return (e) => field(e) === token.code;
    }
  }
}
