// Compiles a parsed search into SQL over the typed index tables. Every value travels as a bound
// parameter; only identifiers chosen by this file (table and column names) appear in the SQL text.
import type { Param } from '../storage/driver.ts';
import { badRequest } from '../outcome.ts';
import { parseDateRange, type DateRange } from './dateRange.ts';
import { AFTER_PREFIX, foldString } from './normalise.ts';
import type { Filter, ParamRef, SearchRequest } from './request.ts';
import { parseReference } from '../indexing.ts';

export interface Sql { text: string; params: Param[] }

const PREFIXES = ['eq', 'ne', 'gt', 'lt', 'ge', 'le', 'sa', 'eb', 'ap'] as const;
type Prefix = (typeof PREFIXES)[number];

/**
 * A search compiles to two parts. `driving` is the set of row ids that every positive index filter
 * agrees on, so the database starts from the few rows that match rather than from every resource of the
 * type. `where` holds what cannot drive: the type, deletion, negations, `:missing`, `_id` and
 * `_lastUpdated`.
 */
export interface CompiledSearch {
  driving?: Sql;
  where: Sql;
  /**
   * `where` for when the query starts from a driving set: the type is checked in a form no index serves,
   * so SQLite's planner starts from the driving set rather than from every resource of the type.
   */
  whereDriven: Sql;
}

/** Narrows the resources a chain may pass through (the caller's visibility), given their alias. */
export type TargetFilter = (alias: string) => Sql | undefined;

export function compileSearch(req: SearchRequest, alias = 'r', targets?: TargetFilter): CompiledSearch {
  const { parts, params, lookups } = splitFilters(req, alias, targets);
  const where = { text: parts.join(' AND '), params };
  const whereDriven = { text: [`${alias}.type || '' = ?`, ...parts.slice(1)].join(' AND '), params };
  if (!lookups.length) return { where, whereDriven };
  return { driving: drivingSet(lookups), where, whereDriven };
}

/**
 * The search as a test of one row whose rid is already known (a correlated subquery's): every filter is
 * probed through its table's rid index, so nothing is listed however many rows would match the search.
 */
export function compileRowCheck(req: SearchRequest, alias: string): Sql {
  const { parts, params, lookups } = splitFilters(req, alias);
  const probes = lookups.map((l) => l.probe(`${alias}.rid`));
  return { text: [...parts, ...probes.map((p) => p.text)].join(' AND '), params: [...params, ...probes.flatMap((p) => p.params)] };
}

/** The filters an index lookup serves, and the rest as conditions on the row (after its type and liveness). */
function splitFilters(req: SearchRequest, alias: string, targets?: TargetFilter): { parts: string[]; params: Param[]; lookups: Lookup[] } {
  const parts: string[] = [`${alias}.type = ?`, `${alias}.deleted = 0`];
  const params: Param[] = [req.resourceType];
  const lookups: Lookup[] = [];
  for (const f of req.filters) {
    const lookup = positiveLookup(f, targets);
    if (lookup) {
      lookups.push(lookup);
      continue;
    }
    const c = compileFilter(f, alias, targets);
    parts.push(c.text);
    params.push(...c.params);
  }
  return { parts, params, lookups };
}

/**
 * One positive filter as an index lookup, in two forms: every row id it matches (`rids`), or whether it
 * matches one given row id (`probe`, through the rid index every search_* table has).
 */
interface Lookup {
  rids: Sql;
  probe(rid: string): Sql;
  /** Lower is expected to match fewer rows (see `expectedSelectivity`). */
  rank: number;
}

/**
 * The rows every lookup matches. The most selective lookup drives, and each of its rows is probed by rid
 * for the others: an INTERSECT would have the database list (and sort) every row of every side, so a
 * search for one encounter's referrals by their common code read every referral ever made. A probe per
 * driving row costs about what listing the driving side costs anyway, and nothing grows with the other
 * filters' matches. One lookup may list a resource twice (two matching codings): the set is used as an
 * IN list, which holds each row id once (see executeSearch).
 */
function drivingSet(lookups: Lookup[]): Sql {
  // A stable sort: among lookups of equal rank, the one given first drives.
  const [driver, ...checks] = [...lookups].sort((a, b) => a.rank - b.rank);
  const probes = checks.map((c) => c.probe('drv.rid'));
  const where = probes.length ? ` WHERE ${probes.map((p) => p.text).join(' AND ')}` : '';
  return { text: `SELECT drv.rid FROM (${driver.rids.text}) drv${where}`, params: [...driver.rids.params, ...probes.flatMap((p) => p.params)] };
}

/** Whether the filter is a plain positive one, which an index lookup serves (see positiveLookup). */
function isIndexLookup(f: Filter): boolean {
  return !(f.modifier === 'missing' || f.modifier === 'not' || f.param.code === '_id' || f.param.code === '_lastUpdated');
}

/** The filter as an index lookup, when it is a plain positive one. */
function positiveLookup(f: Filter, targets?: TargetFilter): Lookup | undefined {
  if (!isIndexLookup(f)) return undefined;
  const rank = expectedSelectivity(f);
  if (f.has) return { ...reverseChainLookup(f, targets), rank };
  if (f.chain) return { ...indexLookup(f.resourceType, f.param.code, 'search_reference', chainCondition(f, targets)), rank };
  return { ...indexLookup(f.resourceType, f.param.code, indexTable(f), indexCondition(f)), rank };
}

/**
 * How many rows a filter is expected to match, as a rank (lower: fewer), from its kind alone; the
 * database's statistics are not consulted. First what names one thing: a reference to given target ids,
 * an identifier. Then chains and `_has`, whose inner search usually names one thing too. Then codes and
 * statuses (one code may be on every resource of the type), uris, strings and token text (prefixes),
 * dates, numbers and quantities (ranges). Last, what no index range serves (a reference given as a URL,
 * a token by system alone), so it is only ever probed.
 */
function expectedSelectivity(f: Filter): number {
  if (f.has || f.chain) return 1;
  switch (f.param.type) {
    case 'reference':
      return f.values.every((v) => !v.includes('/') || parseReference(v)) ? 0 : 6;
    case 'token': {
      if (f.modifier === 'text') return 3;
      if (f.values.some((v) => v.endsWith('|'))) return 6;
      return isIdentifier(f.param) ? 0 : 2;
    }
    case 'uri':
      return 2;
    case 'string':
      return 3;
    case 'date':
      return 4;
    default:
      return 5;
  }
}

function isIdentifier(param: ParamRef): boolean {
  return param.code === 'identifier' || /\.identifier\b/.test(param.def?.expression ?? '');
}

/**
 * A lookup in one index table: rows of this resource type and parameter meeting `condition`. Its probe
 * reads the one row id's few index rows, through the table's rid index, named for SQLite (INDEXED BY; the
 * PostgreSQL driver drops it, as that planner has statistics to choose by). Left to choose, SQLite took
 * the (type, param, hi) index for a date range ("from 2020 on") and read every later date in the table for
 * each row probed: a code and date search of 100,000 resources ran for minutes.
 */
function indexLookup(resourceType: string, paramCode: string, table: string, condition: Sql): Omit<Lookup, 'rank'> {
  const params = [resourceType, paramCode, ...condition.params];
  return {
    rids: { text: `SELECT rid FROM ${table} WHERE type = ? AND param = ? AND ${condition.text}`, params },
    // The condition's unqualified columns resolve to the innermost table, `chk`.
    probe: (rid) => ({ text: `EXISTS (SELECT 1 FROM ${table} chk INDEXED BY ${table}_rid WHERE chk.rid = ${rid} AND chk.type = ? AND chk.param = ? AND ${condition.text})`, params }),
  };
}

/** The resources that a source resource matching the inner filter points at (through the caller's visibility). */
function reverseChainLookup(f: Filter, targetFilter?: TargetFilter): Omit<Lookup, 'rank'> {
  const { sourceType, sourceParam, filter } = f.has!;
  const inner = compileFilter(filter, 'src', targetFilter);
  const visible = targetFilter?.('src');
  const sources = `SELECT src.rid FROM resources src WHERE src.type = ? AND src.deleted = 0 AND ${inner.text}${visible ? ` AND ${visible.text}` : ''}`;
  const pointing = `s.type = ? AND s.param = ? AND s.target_type = ? AND s.rid IN (${sources})`;
  const params = [sourceType, sourceParam, f.resourceType, sourceType, ...inner.params, ...(visible?.params ?? [])];
  return {
    rids: { text: `SELECT t.rid FROM search_reference s JOIN resources t ON t.type = s.target_type AND t.id = s.target_id WHERE ${pointing}`, params },
    probe: (rid) => ({ text: `EXISTS (SELECT 1 FROM resources t JOIN search_reference s ON s.target_type = t.type AND s.target_id = t.id WHERE t.rid = ${rid} AND ${pointing})`, params }),
  };
}

/** The row ids a plain index filter matches (any of its values). */
function indexRids(f: Filter): Sql {
  return indexLookup(f.resourceType, f.param.code, indexTable(f), indexCondition(f)).rids;
}

function indexTable(f: Filter): string {
  const table = TABLE[f.param.type];
  if (!table) throw badRequest(`Searching by ${f.param.type} parameters ('${f.param.code}') is not supported.`, f.param.code);
  return table;
}

/** Any of the filter's values, on the columns of its index table. */
function indexCondition(f: Filter): Sql {
  const ors: Sql[] = f.values.map((v) => valueCondition(f, v));
  return { text: `(${ors.map((o) => o.text).join(' OR ')})`, params: ors.flatMap((o) => o.params) };
}

function compileFilter(f: Filter, alias: string, targets?: TargetFilter): Sql {
  if (f.modifier === 'missing') return compileMissing(f, alias);
  if (f.param.code === '_id') return compileIdFilter(f, alias);
  if (f.param.code === '_lastUpdated') return compileLastUpdated(f, alias);
  const inner = f.chain ? indexLookup(f.resourceType, f.param.code, 'search_reference', chainCondition(f, targets)).rids : indexRids(f);
  return { text: `${alias}.rid ${f.modifier === 'not' ? 'NOT IN' : 'IN'} (${inner.text})`, params: inner.params };
}

const TABLE: Partial<Record<string, string>> = {
  token: 'search_token', string: 'search_string', date: 'search_date', reference: 'search_reference',
  number: 'search_number', quantity: 'search_quantity', uri: 'search_uri',
};

function compileMissing(f: Filter, alias: string): Sql {
  const missing = f.values[0] === 'true';
  if (f.param.code === '_id' || f.param.code === '_lastUpdated') return { text: missing ? '1 = 0' : '1 = 1', params: [] };
  return { text: `${alias}.rid ${missing ? 'NOT IN' : 'IN'} (SELECT rid FROM ${TABLE[f.param.type]} WHERE type = ? AND param = ?)`, params: [f.resourceType, f.param.code] };
}

function compileIdFilter(f: Filter, alias: string): Sql {
  const op = f.modifier === 'not' ? 'NOT IN' : 'IN';
  return { text: `${alias}.id ${op} (${f.values.map(() => '?').join(', ')})`, params: f.values };
}

function compileLastUpdated(f: Filter, alias: string): Sql {
  const ors = f.values.map((v) => dateCondition(v, `${alias}.last_updated_ms`, `${alias}.last_updated_ms`, f.param.code));
  return { text: `(${ors.map((o) => o.text).join(' OR ')})`, params: ors.flatMap((o) => o.params) };
}

/** The references of a chain that point at a target matching every inner filter (and visible to the caller). */
function chainCondition(f: Filter, targetFilter?: TargetFilter): Sql {
  const targets = f.chain!.filter.map((inner) => {
    const where = compileFilter(inner, 't');
    const visible = targetFilter?.('t');
    const text = visible ? `${where.text} AND ${visible.text}` : where.text;
    // A plain index filter names few targets: the type, checked in a form no index serves, keeps SQLite
    // from reading every resource of the target type (every Organization, say) to test each one.
    const type = isIndexLookup(inner) ? "t.type || '' = ?" : 't.type = ?';
    return { text: `(target_type = ? AND target_id IN (SELECT t.id FROM resources t WHERE ${type} AND t.deleted = 0 AND ${text}))`, params: [inner.resourceType, inner.resourceType, ...where.params, ...(visible?.params ?? [])] };
  });
  return { text: `(${targets.map((t) => t.text).join(' OR ')})`, params: targets.flatMap((t) => t.params) };
}

function valueCondition(f: Filter, value: string): Sql {
  switch (f.param.type) {
    case 'token':
      return tokenCondition(f, value);
    case 'string':
      return stringCondition(f.modifier, value);
    case 'date':
      return dateCondition(value, 'lo', 'hi', f.param.code);
    case 'reference':
      return referenceCondition(f, value);
    case 'number':
      return numberCondition(value, 'value', f.param.code);
    case 'quantity':
      return quantityCondition(value, f.param.code);
    case 'uri':
      return uriCondition(f.modifier, value);
    default:
      throw badRequest(`Searching by ${f.param.type} parameters is not supported.`, f.param.code);
  }
}

function tokenCondition(f: Filter, value: string): Sql {
  if (f.modifier === 'text') return { text: '(text >= ? AND text < ?)', params: prefixRange(value) };
  const bar = value.indexOf('|');
  if (bar < 0) return { text: 'code = ?', params: [value] };
  const system = value.slice(0, bar);
  const code = value.slice(bar + 1);
  if (!system) return { text: '(code = ? AND system IS NULL)', params: [code] };
  if (!code) return { text: 'system = ?', params: [system] };
  return { text: '(code = ? AND system = ?)', params: [code, system] };
}

function prefixRange(value: string): [string, string] {
  const folded = foldString(value);
  return [folded, folded + AFTER_PREFIX];
}

function stringCondition(modifier: string | undefined, value: string): Sql {
  if (modifier === 'exact') return { text: 'raw = ?', params: [value] };
  if (modifier === 'contains') return { text: "value LIKE ? ESCAPE '\\'", params: [`%${foldString(value).replace(/[\\%_]/g, (c) => '\\' + c)}%`] };
  return { text: '(value >= ? AND value < ?)', params: prefixRange(value) };
}

function splitPrefix(value: string): [Prefix, string] {
  const p = value.slice(0, 2) as Prefix;
  return PREFIXES.includes(p) && value.length > 2 && !/^\d{2}$/.test(p) ? [p, value.slice(2)] : ['eq', value];
}

/** Date comparisons per the FHIR spec, with both the indexed value and the search value as ranges. */
export function dateCondition(value: string, lo: string, hi: string, code: string): Sql {
  const [prefix, raw] = splitPrefix(value);
  const range = parseDateRange(raw);
  if (!range) throw badRequest(`'${raw}' is not a valid date for '${code}' (use YYYY, YYYY-MM, YYYY-MM-DD or a full dateTime).`, code);
  return dateRangeCondition(prefix, range, lo, hi);
}

function dateRangeCondition(prefix: Prefix, { lo: pLo, hi: pHi }: DateRange, lo: string, hi: string): Sql {
  switch (prefix) {
    case 'eq': return { text: `(${lo} >= ? AND ${hi} <= ?)`, params: [pLo, pHi] };
    case 'ne': return { text: `(${lo} < ? OR ${hi} > ?)`, params: [pLo, pHi] };
    case 'gt': return { text: `${hi} > ?`, params: [pHi] };
    case 'lt': return { text: `${lo} < ?`, params: [pLo] };
    // ge = gt or eq; both imply hi >= pLo, which lets one index range on hi do the work (likewise le on lo).
    case 'ge': return { text: `(${hi} >= ? AND (${hi} > ? OR ${lo} >= ?))`, params: [pLo, pHi, pLo] };
    case 'le': return { text: `(${lo} <= ? AND (${lo} < ? OR ${hi} <= ?))`, params: [pHi, pLo, pHi] };
    case 'sa': return { text: `${lo} > ?`, params: [pHi] };
    case 'eb': return { text: `${hi} < ?`, params: [pLo] };
    case 'ap': {
      // Approximately: overlap with the search range widened by 10% of its distance from now (at least a day).
      const margin = Math.max(86_400_000, Math.abs(Date.now() - pLo) * 0.1);
      return { text: `(${lo} <= ? AND ${hi} >= ?)`, params: [pHi + margin, pLo - margin] };
    }
  }
}

/**
 * The same comparison as dateCondition, for a value known to the millisecond (lo = hi = ms), tested in
 * memory: for stores that keep dated entries outside the search tables (the audit journal's batches).
 * Also gives the interval of times that can match (undefined for ne, which matches on both sides), for
 * narrowing a scan.
 */
export function dateMatcher(value: string, code: string): { matches: (ms: number) => boolean; from: number; to: number } | { matches: (ms: number) => boolean; from?: undefined; to?: undefined } {
  const [prefix, raw] = splitPrefix(value);
  const range = parseDateRange(raw);
  if (!range) throw badRequest(`'${raw}' is not a valid date for '${code}' (use YYYY, YYYY-MM, YYYY-MM-DD or a full dateTime).`, code);
  const { lo, hi } = range;
  const within = (from: number, to: number) => ({ matches: (ms: number) => ms >= from && ms <= to, from, to });
  switch (prefix) {
    case 'eq': return within(lo, hi);
    case 'ne': return { matches: (ms: number) => ms < lo || ms > hi };
    case 'gt': case 'sa': return within(hi + 1, Number.MAX_SAFE_INTEGER);
    case 'lt': case 'eb': return within(Number.MIN_SAFE_INTEGER, lo - 1);
    case 'ge': return within(lo, Number.MAX_SAFE_INTEGER);
    case 'le': return within(Number.MIN_SAFE_INTEGER, hi);
    case 'ap': {
      const margin = Math.max(86_400_000, Math.abs(Date.now() - lo) * 0.1);
      return within(lo - margin, hi + margin);
    }
  }
}

function numberCondition(value: string, column: string, code: string): Sql {
  const [prefix, raw] = splitPrefix(value);
  if (!/^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/.test(raw)) throw badRequest(`'${raw}' is not a number (in '${code}').`, code);
  const n = Number(raw);
  // Precision is implied by the digits given: 100 means [99.5, 100.5), 100.0 means [99.95, 100.05).
  const decimals = raw.includes('.') && !/[eE]/.test(raw) ? raw.split('.')[1].length : 0;
  const half = 0.5 * 10 ** -decimals;
  switch (prefix) {
    case 'eq': return { text: `(${column} >= ? AND ${column} < ?)`, params: [n - half, n + half] };
    case 'ne': return { text: `(${column} < ? OR ${column} >= ?)`, params: [n - half, n + half] };
    case 'gt': case 'sa': return { text: `${column} > ?`, params: [n] };
    case 'lt': case 'eb': return { text: `${column} < ?`, params: [n] };
    case 'ge': return { text: `${column} >= ?`, params: [n] };
    case 'le': return { text: `${column} <= ?`, params: [n] };
    case 'ap': return { text: `(${column} >= ? AND ${column} <= ?)`, params: [n - Math.abs(n) * 0.1, n + Math.abs(n) * 0.1] };
  }
}

function quantityCondition(value: string, code: string): Sql {
  const [num, system, unit] = value.split('|');
  const c = numberCondition(num, 'value', code);
  const parts = [c.text];
  const params = [...c.params];
  if (system) {
    parts.push('system = ?');
    params.push(system);
  }
  if (unit) {
    parts.push('(code = ? OR unit = ?)');
    params.push(unit, unit);
  }
  return { text: `(${parts.join(' AND ')})`, params };
}

function uriCondition(modifier: string | undefined, value: string): Sql {
  if (modifier === 'below') return { text: '(value >= ? AND value < ?)', params: [value, value + AFTER_PREFIX] };
  if (modifier === 'above') {
    const prefixes: string[] = [];
    for (let i = value.length; i > 0; i--) if (i === value.length || value[i] === '/') prefixes.push(value.slice(0, i));
    return { text: `value IN (${prefixes.map(() => '?').join(', ')})`, params: prefixes };
  }
  return { text: 'value = ?', params: [value] };
}

function referenceCondition(f: Filter, value: string): Sql {
  const typed = f.modifier && f.modifier !== 'missing' ? f.modifier : undefined;
  if (value.includes('/')) {
    const ref = parseReference(value);
    if (ref && (!typed || typed === ref.type)) return { text: '(target_type = ? AND target_id = ?)', params: [ref.type, ref.id] };
    return { text: 'url = ?', params: [value] };
  }
  if (typed) return { text: '(target_type = ? AND target_id = ?)', params: [typed, value] };
  return { text: 'target_id = ?', params: [value] };
}

/** ORDER BY expressions: each key sorts resources lacking a value last, and rid breaks ties. */
export function compileOrder(req: SearchRequest, alias = 'r'): Sql {
  const parts: string[] = [];
  const params: Param[] = [];
  for (const { param, descending } of req.sort) {
    const key = sortKey(param, descending, alias);
    parts.push(`(${key.text}) IS NULL`, `(${key.text}) ${descending ? 'DESC' : 'ASC'}`);
    params.push(...key.params, ...key.params);
  }
  parts.push(`${alias}.rid ASC`);
  return { text: parts.join(', '), params };
}

function sortKey(param: ParamRef, descending: boolean, alias: string): Sql {
  if (param.code === '_id') return { text: `${alias}.id`, params: [] };
  if (param.code === '_lastUpdated') return { text: `${alias}.last_updated_ms`, params: [] };
  const table = TABLE[param.type];
  const column = { token: 'code', string: 'value', date: descending ? 'hi' : 'lo', reference: 'url', number: 'value', quantity: 'value', uri: 'value' }[param.type as string];
  if (!table || !column) throw badRequest(`Cannot sort by ${param.type} parameter '${param.code}'.`, '_sort');
  const agg = descending ? 'MAX' : 'MIN';
  return { text: `SELECT ${agg}(s.${column}) FROM ${table} s WHERE s.rid = ${alias}.rid AND s.param = ?`, params: [param.code] };
}
