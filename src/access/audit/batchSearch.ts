// Searching the journal's batches (batchJournal.ts). SQL picks the batches that can hold a match: those
// whose audit_batch_key rows meet every filter but the date, and whose time span meets the date. Each key
// row lists the positions of the batch's entries that have the key, so the matching entries of a batch are
// known without reading it: a total is the sum of those lists (a date filter reads the batches its span
// cuts through), and a page reads only the batches it needs, newest (or oldest) first, a few at a time,
// until no unread batch can hold an entry that comes before the ones found. Each entry read is still tested
// here with the meaning the one-row-per-entry search gives each parameter in SQL (search.ts).
import { dateMatcher, type Filter, type Param, type SqlExecutor } from '../../record/index.ts';
import { entryValuesFor, type AuditedRequest, type EntryValues, type JournalEntry } from './auditEvent.ts';
import { BATCH_COLUMNS, KEY_LENGTH, batchEntryOf, batchRequests, positionsOf, selfPatient, type StoredBatch } from './batchJournal.ts';
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
  /** Count every match (`all`), or only while at most COUNT_BATCHES batches a date filter cuts through must be read (`bounded`), or not at all. */
  count: 'all' | 'bounded' | 'none';
  /** How many batches each read fetches (BATCHES_A_READ). */
  batchesAtOnce?: number;
}

/** Batches a date filter cuts through that are read to count a search's matches when no total was asked for explicitly (~100,000 entries). */
export const COUNT_BATCHES = 100;
const BATCHES_A_READ = 8;
const NEVER = '1 = 0';

interface Candidate { first_seq: number; last_seq: number; min_ms: number; max_ms: number }

/** The first `need` matches in order, and the number of matches when it was counted. */
export async function searchBatches(db: SqlExecutor, search: BatchSearch): Promise<{ matches: BatchMatch[]; total?: number }> {
  const where = candidateConditions(search.filters, search.visible);
  if (where.text.includes(NEVER)) return { matches: [], total: 0 };
  const bound = search.descending ? 'max_ms' : 'min_ms';
  const dir = search.descending ? 'DESC' : 'ASC';
  const candidates = (await db.all<Candidate>(
    `SELECT b.first_seq, b.last_seq, b.min_ms, b.max_ms FROM audit_batch b WHERE ${where.text} ORDER BY b.${bound} ${dir}, b.first_seq ${dir}`,
    where.params,
  )).map((c) => ({ first_seq: Number(c.first_seq), last_seq: Number(c.last_seq), min_ms: Number(c.min_ms), max_ms: Number(c.max_ms) }));
  const positions = await matchingPositions(db, candidates, keyFilters(search.filters, search.visible));
  const listedIn = (c: Candidate) => (positions === ALL ? c.last_seq - c.first_seq + 1 : positions.get(c.first_seq)?.length ?? 0);
  const listAt = (c: Candidate) => (positions === ALL ? Array.from({ length: c.last_seq - c.first_seq + 1 }, (_, i) => i) : positions.get(c.first_seq) ?? []);
  const test = entryTest(search.filters, search.visible);
  const dated = search.filters.some((f) => f.param.code === 'date');
  const matches = await pageOf(db, candidates.filter((c) => listedIn(c) > 0), listAt, test, search);
  if (search.count === 'none') return { matches };
  // Without a date filter every listed entry matches; with one, the batches its span cuts through are read.
  let total = 0;
  let read = 0;
  for (const c of candidates) {
    if (!listedIn(c)) continue;
    if (!dated || withinDates(c, search.filters)) {
      total += listedIn(c);
      continue;
    }
    const listed = listAt(c);
    if (search.count === 'bounded' && ++read > COUNT_BATCHES) return { matches };
    const row = await db.get<StoredBatch>(`SELECT ${BATCH_COLUMNS} FROM audit_batch b WHERE b.first_seq = ?`, [c.first_seq]);
    if (row) {
      const requests = batchRequests(row);
      total += listed.filter((p) => p < requests.length && test(entryValuesFor(requests[p], row.observer))).length;
    }
  }
  return { matches, total };
}

/**
 * The first `need` matches: batches read in order (one, then two, four, up to BATCHES_A_READ at a time)
 * until no unread batch can hold an entry that comes before them. Entries are tested on their values;
 * only those on the page are built in full.
 */
async function pageOf(db: SqlExecutor, wanted: Candidate[], listAt: (c: Candidate) => number[], test: (e: EntryValues) => boolean, search: BatchSearch): Promise<BatchMatch[]> {
  const most = search.batchesAtOnce ?? BATCHES_A_READ;
  const order = (a: Found, b: Found) => (search.descending ? b.ms - a.ms || b.seq - a.seq : a.ms - b.ms || a.seq - b.seq);
  let found: Found[] = [];
  for (let i = 0, perRead = 1; i < wanted.length && search.need > 0; i += perRead, perRead = Math.min(most, perRead * 2)) {
    const some = wanted.slice(i, i + perRead);
    const rows = await db.all<StoredBatch>(`SELECT ${BATCH_COLUMNS} FROM audit_batch b WHERE b.first_seq IN (${some.map(() => '?').join(', ')})`, some.map((c) => c.first_seq));
    for (const row of rows) {
      const requests = batchRequests(row);
      for (const p of listAt(some.find((c) => c.first_seq === Number(row.first_seq))!)) {
        if (p >= requests.length) continue; // a position past the batch's end (verify reports it)
        const values = entryValuesFor(requests[p], row.observer);
        if (test(values)) found.push({ seq: Number(row.first_seq) + p, ms: values.recordedMs, request: requests[p], row });
      }
    }
    found = top(found, search.need, order);
    const next = wanted[i + perRead];
    if (!next) break;
    // Entries in batches not yet read are no newer (older) than the next batch's bound.
    const limit = search.descending ? next.max_ms : next.min_ms;
    if (found.filter((m) => (search.descending ? m.ms > limit : m.ms < limit)).length >= search.need) break;
  }
  return top(found, search.need, order).map((f) => ({ seq: f.seq, ms: f.ms, entry: batchEntryOf(f.row, f.request), hash: f.row.hash }));
}

/** An entry found, not yet built. */
interface Found { seq: number; ms: number; request: AuditedRequest; row: StoredBatch }

/** Whether every time in the batch's span meets every date filter (so its listed entries need not be read to be counted). */
function withinDates(c: Candidate, filters: Filter[]): boolean {
  return filters.filter((f) => f.param.code === 'date').every((f) => f.values.some((v) => {
    const span = dateMatcher(v, 'date');
    return span.from !== undefined && c.min_ms >= span.from && c.max_ms <= span.to;
  }));
}

/** Each key filter (all but date) as the keys any of its values wants, and the caller's visible patients as one more. */
function keyFilters(filters: Filter[], visible: readonly string[] | undefined): KeyWanted[][] {
  const out = filters.filter((f) => f.param.code !== 'date').map(wantedKeys);
  if (visible) out.push(visible.flatMap((id) => [{ key: `P|${id}` }, { key: `S|${id}` }]));
  return out;
}

// A prefix is tested as one here: JavaScript orders strings by UTF-16 code unit, not as the database does,
// so the range that finds the rows in SQL would wrongly drop some here (U+FFFD sorts after U+10FFFF).
const wants = (w: KeyWanted, key: string) => ('key' in w ? key === w.key : key.startsWith(w.prefix));

/**
 * For each candidate batch, the positions of the entries that meet every key filter (any of its keys): from
 * audit_batch_key alone, without reading the batch. No key filter: every entry.
 */
const ALL = 'every entry';

async function matchingPositions(db: SqlExecutor, candidates: Candidate[], filters: KeyWanted[][]): Promise<Map<number, number[]> | typeof ALL> {
  if (!filters.length) return ALL;
  const out = new Map<number, number[]>();
  const all = filters.flat();
  for (let i = 0; i < candidates.length; i += 500) {
    const some = candidates.slice(i, i + 500).map((c) => c.first_seq);
    const keyed = keyCondition(all);
    const rows = await db.all<{ first_seq: number; key: string; positions: string }>(
      `SELECT k.first_seq, k.key, k.positions FROM audit_batch_key k WHERE k.first_seq IN (${some.map(() => '?').join(', ')}) AND (${keyed.where})`,
      [...some, ...keyed.params],
    );
    const byBatch = new Map<number, { key: string; positions: string }[]>();
    for (const r of rows) {
      const list = byBatch.get(Number(r.first_seq)) ?? [];
      list.push(r);
      byBatch.set(Number(r.first_seq), list);
    }
    for (const [first, keys] of byBatch) {
      let found: Set<number> | undefined;
      for (const filter of filters) {
        const here = new Set(keys.filter((k) => filter.some((w) => wants(w, k.key))).flatMap((k) => positionsOf(k.positions)));
        found = found ? new Set([...found].filter((p) => here.has(p))) : here;
        if (!found.size) break;
      }
      if (found?.size) out.set(first, [...found].sort((a, b) => a - b));
    }
  }
  return out;
}

function top<T>(matches: T[], need: number, order: (a: T, b: T) => number): T[] {
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

type KeyWanted = { key: string } | { prefix: string };

function keyCondition(wanted: KeyWanted[]): Sql & { where: string } {
  if (!wanted.length) return { text: NEVER, where: NEVER, params: [] };
  const ors = wanted.map((w) => ('key' in w ? { text: 'key = ?', params: [w.key] } : { text: '(key >= ? AND key < ?)', params: [w.prefix, `${w.prefix}\u{10ffff}`] }));
  const where = ors.map((o) => o.text).join(' OR ');
  return { text: `b.first_seq IN (SELECT first_seq FROM audit_batch_key WHERE ${where})`, where, params: ors.flatMap((o) => o.params) };
}

const TOKEN_KEY: Record<TokenParam, string> = { type: 'T', subtype: 'B', action: 'C', outcome: 'O', purpose: 'U', altid: 'I' };
const cut = (key: string) => key.slice(0, KEY_LENGTH + 2);
const anyAfter = (prefix: string): KeyWanted => ({ prefix });

function candidateCondition(f: Filter): Sql {
  const code = f.param.code;
  if (code === 'date') {
    const spans = f.values.map((v) => dateMatcher(v, code));
    if (spans.some((s) => s.from === undefined)) return { text: '', params: [] };
    return { text: `(${spans.map(() => '(b.max_ms >= ? AND b.min_ms <= ?)').join(' OR ')})`, params: spans.flatMap((s) => [s.from!, s.to!]) };
  }
  return keyCondition(wantedKeys(f));
}

/** The keys any of a (key) filter's values wants. */
function wantedKeys(f: Filter): KeyWanted[] {
  const code = f.param.code;
  return f.values.flatMap((value): KeyWanted[] => {
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
}

const TOKEN_FIELD: Record<TokenParam, (e: EntryValues) => string | null> = {
  type: (e) => e.type, subtype: (e) => e.subtype, action: (e) => e.action, outcome: (e) => e.outcome, purpose: (e) => e.purpose, altid: (e) => e.agent,
};
const cutRef = (ref: string) => ref.slice(0, KEY_LENGTH);

/** Whether an entry meets every filter (any of each filter's values), and is about someone visible. */
function entryTest(filters: Filter[], visible: readonly string[] | undefined): (e: EntryValues) => boolean {
  const tests = filters.map((f) => {
    const values = f.values.map((v) => valueTest(f, v));
    return (e: EntryValues) => values.some((t) => t(e));
  });
  if (visible) tests.push((e) => e.patients.some((p) => visible.includes(p)) || visible.includes(selfPatient(e) ?? '\u0000'));
  return (e) => tests.every((t) => t(e));
}

function valueTest(f: Filter, value: string): (e: EntryValues) => boolean {
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
