// Runs a parsed search: one query for the page, one for the total when needed, a few for includes.
import type { SqlExecutor, Param } from '../storage/driver.ts';
import { compileOrder, compileSearch } from './compile.ts';
import type { Include, SearchRequest } from './request.ts';
import type { PatientScope } from '../accessControl.ts';
import { andVisible, isCompartmentType, scopedRids, visibleRow, visibleRowOfType } from './visibility.ts';
import { resolvedScope } from '../scopeDecisions.ts';

export interface FoundResource { rid: number; type: string; id: string; content: string; patient_id: string | null }

export interface SearchResult {
  matches: FoundResource[];
  included: FoundResource[];
  total?: number;
  hasMore: boolean;
}

const MAX_INCLUDED = 1000;
const MAX_ITERATIONS = 4;

export interface SearchScope {
  /** Restrict to one patient's compartment (compartment search, $everything). */
  patientId?: string;
  /** The caller's patients: nothing outside them is matched, counted or included. */
  patients?: PatientScope;
}

export async function executeSearch(db: SqlExecutor, req: SearchRequest, scope: SearchScope = {}): Promise<SearchResult> {
  const patients = scope.patients && (await resolvedScope(db, scope.patients));
  const compiled = compileSearch(req, 'r', patients && ((alias) => visibleRow(alias, patients)));
  // A search with nothing selective to start from, by someone who sees a few people, starts from those
  // people's compartments instead of every resource of the type; every row it yields is visible by
  // construction. (With a selective filter, checking each of its matches is cheaper than listing
  // everything the caller may see.)
  // Asking for given ids is the most selective filter of all (the type-and-id index finds each row).
  const byId = req.filters.some((f) => f.param.code === '_id' && !f.modifier && !f.chain);
  const fromScope = !compiled.driving && !byId && patients && !scope.patientId && isCompartmentType(req.resourceType);
  const driving = fromScope ? scopedRids(req.resourceType, patients) : compiled.driving;
  const filters = driving && !scope.patientId ? compiled.whereDriven : compiled.where;
  const ofType = fromScope ? undefined : visibleRowOfType('r', req.resourceType, patients);
  const visible = ofType ? { text: ` AND ${ofType.text}`, params: ofType.params } : { text: '', params: [] };
  const where = { text: filters.text + visible.text, params: [...filters.params, ...visible.params] };
  let from = 'resources r';
  let scopeSql = '';
  let scopeParams: Param[] = [];
  if (scope.patientId) {
    // The compartment is the narrowest start; index filters then check each of its rows.
    from = 'compartment c JOIN resources r ON r.rid = c.rid';
    scopeSql = `c.patient_id = ? AND c.type = ? AND ${driving ? `r.rid IN (${driving.text}) AND ` : ''}`;
    scopeParams = [scope.patientId, req.resourceType, ...(driving?.params ?? [])];
  } else if (driving) {
    // The rows whose rid is in the driving set: SQLite walks that set in rid order and reads each row by its
    // key, so the usual ORDER BY r.rid needs no sort. Joined to a DISTINCT of the set instead, a search
    // built two temporary b-trees, and allocating and freeing their memory took longer (~30 µs) than the
    // rest of a one-row search.
    scopeSql = `r.rid IN (${driving.text}) AND `;
    scopeParams = driving.params;
  }
  const countSql = `SELECT COUNT(*) AS n FROM ${from} WHERE ${scopeSql}${where.text}`;
  const countParams = [...scopeParams, ...where.params];

  if (req.summary === 'count') {
    const row = await db.get<{ n: number }>(countSql, countParams);
    return { matches: [], included: [], total: Number(row?.n ?? 0), hasMore: false };
  }
  const order = compileOrder(req);
  const rows = req.count === 0 ? [] : await db.all<FoundResource>(
    `SELECT r.rid, r.type, r.id, r.content, r.patient_id FROM ${from} WHERE ${scopeSql}${where.text} ORDER BY ${order.text} LIMIT ? OFFSET ?`,
    [...scopeParams, ...where.params, ...order.params, req.count + 1, req.offset],
  );
  const hasMore = rows.length > req.count;
  const matches = hasMore ? rows.slice(0, req.count) : rows;
  let total: number | undefined;
  if (req.total !== 'none') {
    if (!hasMore && (matches.length > 0 || req.offset === 0) && req.count > 0) total = req.offset + matches.length;
    else total = Number((await db.get<{ n: number }>(countSql, countParams))?.n ?? 0);
  }
  const included = await resolveIncludes(db, matches, req.include, req.revinclude, patients);
  return { matches, included, total, hasMore };
}

export async function resolveIncludes(db: SqlExecutor, matches: FoundResource[], include: Include[], revinclude: Include[], patients?: PatientScope): Promise<FoundResource[]> {
  if (!include.length && !revinclude.length) return [];
  const seen = new Set(matches.map((m) => m.rid));
  const out: FoundResource[] = [];
  let frontier = matches;
  for (let round = 0; round < MAX_ITERATIONS && frontier.length && out.length < MAX_INCLUDED; round++) {
    const fresh: FoundResource[] = [];
    const forward = include.filter((i) => round === 0 || i.iterate);
    const reverse = revinclude.filter((i) => round === 0 || i.iterate);
    for (const inc of forward) fresh.push(...(await forwardInclude(db, frontier, inc, patients)));
    for (const inc of reverse) fresh.push(...(await reverseInclude(db, frontier, inc, patients)));
    frontier = [];
    for (const f of fresh) {
      if (seen.has(f.rid) || out.length >= MAX_INCLUDED) continue;
      seen.add(f.rid);
      out.push(f);
      frontier.push(f);
    }
  }
  return out;
}

const placeholders = (n: number) => Array(n).fill('?').join(', ');

async function forwardInclude(db: SqlExecutor, from: FoundResource[], inc: Include, patients?: PatientScope): Promise<FoundResource[]> {
  const sources = from.filter((f) => f.type === inc.sourceType).map((f) => f.rid);
  if (!sources.length) return [];
  const params: Param[] = [...sources, inc.sourceType];
  let sql = `SELECT r.rid, r.type, r.id, r.content, r.patient_id FROM search_reference s JOIN resources r ON r.type = s.target_type AND r.id = s.target_id
    WHERE s.rid IN (${placeholders(sources.length)}) AND s.type = ? AND r.deleted = 0`;
  if (inc.param !== '*') {
    sql += ' AND s.param = ?';
    params.push(inc.param);
  }
  if (inc.targetType) {
    sql += ' AND s.target_type = ?';
    params.push(inc.targetType);
  }
  const visible = andVisible('r', patients);
  return db.all<FoundResource>(`${sql}${visible.text} ORDER BY r.rid LIMIT ${MAX_INCLUDED}`, [...params, ...visible.params]);
}

async function reverseInclude(db: SqlExecutor, from: FoundResource[], inc: Include, patients?: PatientScope): Promise<FoundResource[]> {
  const out: FoundResource[] = [];
  const byType = new Map<string, string[]>();
  for (const f of from) {
    if (inc.targetType && f.type !== inc.targetType) continue;
    byType.set(f.type, [...(byType.get(f.type) ?? []), f.id]);
  }
  for (const [targetType, ids] of byType) {
    const params: Param[] = [inc.sourceType, inc.sourceType, targetType, ...ids];
    let sql = `SELECT r.rid, r.type, r.id, r.content, r.patient_id FROM resources r WHERE r.type = ? AND r.deleted = 0 AND r.rid IN (
      SELECT rid FROM search_reference WHERE type = ? AND target_type = ? AND target_id IN (${placeholders(ids.length)})`;
    if (inc.param !== '*') {
      sql += ' AND param = ?';
      params.push(inc.param);
    }
    const visible = andVisible('r', patients);
    out.push(...(await db.all<FoundResource>(`${sql})${visible.text} ORDER BY r.rid LIMIT ${MAX_INCLUDED}`, [...params, ...visible.params])));
  }
  return out;
}
