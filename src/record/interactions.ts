// The FHIR interactions on one resource or type: create, read, vread, update, patch, delete, history.
// Each takes the executor to run on, so the same code serves single requests and transaction entries.
import { v7 as uuidv7 } from 'uuid';
import { applyJsonPatch } from './jsonPatch.ts';
import type { Param, SqlExecutor } from './storage/driver.ts';
import { putResource, deleteResource, assertNotDeleted, createResources, type Admit, type WrittenResource } from './storage/writePath.ts';
import { badRequest, gone, notFound, multipleMatches, unprocessable, FhirError } from './outcome.ts';
import { validateResource } from './validation.ts';
import { isResultParam, parseSearchRequest, type QueryParams } from './search/request.ts';
import { executeSearch } from './search/execute.ts';
import { historyBundle, queryString, type HistoryRow } from './bundle.ts';
import { forbidden, type PatientScope } from './accessControl.ts';
import { compartmentPatientInScope, isCompartmentType, inScopeCompartment, visibleRow } from './search/visibility.ts';
import { knownToReach, scopeReaches } from './scopeDecisions.ts';
import { extractIndex } from './indexing.ts';

export interface Ctx {
  db: SqlExecutor;
  /** Lock rows while deciding (PostgreSQL). */
  lock: boolean;
  /** The caller's patients (AccessControl.patients): reads, matches, history and writes stay inside them. */
  patients?: PatientScope;
  /**
   * Patients created earlier in this request (a transaction Bundle's new Patient): no relationship reaches
   * them yet, and the rest of the request may record them (their EpisodeOfCare at the home, say).
   */
  createdPatients?: Set<string>;
  /** AccessControl.checkContent: the grantor's rules about what a stored resource may say. */
  checkContent?: (resource: Readonly<Record<string, unknown>>) => void;
}

/**
 * Refuses (403) when any of these existing resources lies outside the caller's patients: for reads, where
 * one of a resource's patients in scope is enough (as in searches). Writes use assertWritable.
 */
export async function assertInScope(ctx: Ctx, refs: { type: string; id: string }[]): Promise<void> {
  if (!ctx.patients) return;
  const checked = refs.filter((r) => isCompartmentType(r.type));
  for (let i = 0; i < checked.length; i += 200) {
    const chunk = checked.slice(i, i + 200);
    const visible = inScopeCompartment('r', ctx.patients);
    const pairs = chunk.map(() => '(r.type = ? AND r.id = ?)').join(' OR ');
    const outside = await ctx.db.get<{ type: string; id: string }>(
      `SELECT r.type, r.id FROM resources r WHERE (${pairs}) AND NOT ${visible.text} LIMIT 1`,
      [...chunk.flatMap((r) => [r.type, r.id]), ...visible.params],
    );
    if (outside) {
      throw forbidden(`${outside.type}/${outside.id} is in the record of a person outside the records you may see.${ctx.patients.refusalAdvice ? ' ' + ctx.patients.refusalAdvice : ''}`, await recordOwners(ctx.db, outside));
    }
  }
}

/** The people whose records a stored resource is in (a Patient is in their own). */
async function recordOwners(db: SqlExecutor, r: { type: string; id: string }): Promise<string[]> {
  if (r.type === 'Patient') return [r.id];
  const rows = await db.all<{ patient_id: string }>('SELECT c.patient_id FROM compartment c JOIN resources r ON r.rid = c.rid WHERE r.type = ? AND r.id = ?', [r.type, r.id]);
  return rows.map((row) => row.patient_id);
}

/**
 * Refuses (403) a write unless every patient whose record these existing resources are in is within the
 * caller's patients: what an update, patch or delete changes must be the caller's now. What the write
 * would make of it is decided by `admission`, before it is stored. One patient in scope is not enough: an
 * Observation about another home's resident that names one's own resident as its performer would otherwise
 * be planted in the outsider's record, and shown in their $everything.
 */
export async function assertWritable(ctx: Ctx, refs: { type: string; id: string }[]): Promise<void> {
  if (!ctx.patients) return;
  const checked = refs.filter((r) => isCompartmentType(r.type));
  for (let i = 0; i < checked.length; i += 200) {
    const chunk = checked.slice(i, i + 200);
    const inScope = compartmentPatientInScope(ctx.patients);
    const pairs = chunk.map(() => '(r.type = ? AND r.id = ?)').join(' OR ');
    // A resource of a patient's record that names no patient has a row with no patient: nobody in scope, refused as before.
    const outside = await ctx.db.get<{ type: string; id: string; patient_id: string | null }>(
      `SELECT r.type, r.id, vc.patient_id FROM resources r LEFT JOIN compartment vc ON vc.rid = r.rid
        WHERE (${pairs}) AND (vc.patient_id IS NULL OR NOT ${inScope.text}) LIMIT 1`,
      [...chunk.flatMap((r) => [r.type, r.id]), ...inScope.params],
    );
    if (outside) {
      const advice = ctx.patients.refusalAdvice ? ' ' + ctx.patients.refusalAdvice : '';
      throw forbidden(outside.patient_id
        ? `${outside.type}/${outside.id} refers to Patient/${outside.patient_id}, a person outside the records you may see; every person a write names must be inside them.${advice}`
        : `${outside.type}/${outside.id} is in the record of a person outside the records you may see.${advice}`, outside.patient_id ? [outside.patient_id] : []);
    }
  }
}

/**
 * Refuses (403) new content unless every patient whose record it would be in (its compartment, as the write
 * path indexes it) is within the caller's patients as they are before it is stored, or was created by this
 * request (`newPatients`, and ctx.createdPatients). Decided before the insert, so a resource cannot count as
 * the relationship that allows its own writing: an EpisodeOfCare at the writer's home, an Encounter at their
 * hospital or a referral to their council never brings an outsider into their records. Someone not yet
 * theirs is admitted through break-glass, whose grant is part of the scope (audited, reviewed).
 */
function admission(ctx: Ctx, newPatients: string[] = []): Admit | undefined {
  const scope = ctx.patients;
  if (!scope) return undefined; // no relationship limits this caller
  return async (resources) => {
    const advice = scope.refusalAdvice ? ' ' + scope.refusalAdvice : '';
    const toCheck = new Map<string, { type: string; id: string }>();
    for (const r of resources) {
      if (!isCompartmentType(r.type)) continue;
      // A resource of a patient's record that names no patient is in no record the caller may see.
      if (!r.patients.length) throw forbidden(`${r.type}/${r.id} is in the record of a person outside the records you may see.${advice}`);
      for (const p of r.patients) {
        if (!newPatients.includes(p) && !ctx.createdPatients?.has(p) && !toCheck.has(p)) toCheck.set(p, r);
      }
    }
    for (const [patient, r] of toCheck) {
      if (await scopeReaches(ctx.db, scope, patient)) continue;
      throw forbidden(`${r.type}/${r.id} refers to Patient/${patient}, a person outside the records you may see; every person a write names must be inside them already, and writing it does not bring them in.${advice}`, [patient]);
    }
  };
}

/** Records, for the rest of the request, the patients it has created. */
function created(ctx: Ctx, patientIds: string[]): void {
  for (const id of patientIds) ctx.createdPatients?.add(id);
}

/**
 * Whether an update would create a new person: a Patient never stored under this id, and no resource in
 * the record of a person with it (a reference to a Patient not yet stored), whose record it would then open.
 */
async function createsPatient(ctx: Ctx, type: string, id: string): Promise<boolean> {
  if (type !== 'Patient' || !ctx.patients) return false;
  const taken = await ctx.db.get(
    `SELECT 1 AS taken WHERE EXISTS (SELECT 1 FROM resources WHERE type = 'Patient' AND id = ?) OR EXISTS (SELECT 1 FROM compartment WHERE patient_id = ?)`,
    [id, id],
  );
  return !taken;
}

/**
 * assertInScope for one resource being read, which is in the compartment of its `patient_id` (the first of
 * its patients): when the caller's scope reaches that patient it may be read, and that is often already
 * known (scopeDecisions.ts); otherwise every patient of its compartment is checked.
 */
function assertReadable(ctx: Ctx, type: string, id: string, patientId: string | null): void | Promise<void> {
  if (!ctx.patients) return; // no relationship limits this caller
  if (patientId && knownToReach(ctx.db, ctx.patients, patientId)) return;
  return decideReadable(ctx, type, id, patientId);
}

async function decideReadable(ctx: Ctx, type: string, id: string, patientId: string | null): Promise<void> {
  if (ctx.patients && patientId && (await scopeReaches(ctx.db, ctx.patients, patientId))) return;
  await assertInScope(ctx, [{ type, id }]);
}

/**
 * A deleted resource is read (410) only by those who could read it before: it is judged by the people of its
 * last stored version (its compartment rows went with it; patient_id, the first of them, is kept). Anyone
 * else is refused exactly as for the live resource (403, the same words, audited under those people), so an
 * id outside one's records answers the same whether the resource is there or was deleted.
 */
async function assertDeletedReadable(ctx: Ctx, type: string, id: string, patientId: string | null): Promise<void> {
  if (!ctx.patients || !isCompartmentType(type)) return;
  if (patientId && (knownToReach(ctx.db, ctx.patients, patientId) || (await scopeReaches(ctx.db, ctx.patients, patientId)))) return;
  const last = await ctx.db.get<{ content: string | null }>(
    'SELECT content FROM resource_history WHERE type = ? AND id = ? AND content IS NOT NULL ORDER BY version_id DESC LIMIT 1',
    [type, id],
  );
  const people = versionPatients(type, last?.content ?? null);
  for (const p of people) if (p !== patientId && (await scopeReaches(ctx.db, ctx.patients, p))) return;
  const owners = people.length ? people : patientId ? [patientId] : [];
  throw forbidden(`${type}/${id} is in the record of a person outside the records you may see.${ctx.patients.refusalAdvice ? ' ' + ctx.patients.refusalAdvice : ''}`, owners);
}

/** Refuses an instance's history as a read of it is refused; true when it is deleted and the caller may see it. */
async function instanceHistoryReadable(ctx: Ctx, type: string, id: string): Promise<boolean> {
  const row = await ctx.db.get<{ deleted: number; patient_id: string | null }>('SELECT deleted, patient_id FROM resources WHERE type = ? AND id = ?', [type, id]);
  if (!row?.deleted) {
    await assertInScope(ctx, [{ type, id }]);
    return false;
  }
  await assertDeletedReadable(ctx, type, id, row.patient_id);
  return true;
}

export interface StoredRow { content: string | null; version_id: number; last_updated_ms: number; deleted: number; patient_id: string | null }

export async function readResource(ctx: Ctx, type: string, id: string): Promise<StoredRow & { content: string }> {
  const row = await ctx.db.get<StoredRow>('SELECT content, version_id, last_updated_ms, deleted, patient_id FROM resources WHERE type = ? AND id = ?', [type, id]);
  if (row?.deleted) await assertDeletedReadable(ctx, type, id, row.patient_id);
  assertNotDeleted(type, id, row);
  const readable = assertReadable(ctx, type, id, row!.patient_id);
  if (readable) await readable;
  return row as StoredRow & { content: string };
}

export async function vreadResource(ctx: Ctx, type: string, id: string, versionId: string): Promise<StoredRow & { content: string }> {
  if (!/^\d{1,9}$/.test(versionId)) throw notFound(`${type}/${id} has no version '${versionId}'.`);
  const row = await ctx.db.get<StoredRow & { method: string }>(
    'SELECT h.content, h.version_id, h.last_updated_ms, h.method, r.patient_id, r.deleted FROM resource_history h JOIN resources r ON r.rid = h.rid WHERE h.type = ? AND h.id = ? AND h.version_id = ?',
    [type, id, Number(versionId)],
  );
  if (!row) throw notFound(`${type}/${id} has no version ${versionId}.`);
  // Whose the resource is decides first: the version recording its deletion is theirs too (see readResource).
  if (row.deleted) await assertDeletedReadable(ctx, type, id, row.patient_id);
  else await assertReadable(ctx, type, id, row.patient_id);
  if (row.method === 'DELETE') throw gone(`Version ${versionId} of ${type}/${id} records its deletion.`);
  const versionOf = versionPatients(type, row.content);
  if (!(await versionReadable(ctx, versionOf))) {
    throw forbidden(`Version ${versionId} of ${type}/${id} was in the record of a person outside the records you may see.${ctx.patients?.refusalAdvice ? ' ' + ctx.patients.refusalAdvice : ''}`, versionOf);
  }
  return { ...row, deleted: 0 } as StoredRow & { content: string };
}

/**
 * The patients whose records a stored version was in. A resource can move between people (an Observation
 * filed on the wrong resident, then corrected): its earlier versions stay in history, and they belong to the
 * record of the person they were about, not to the record the resource is in now.
 */
function versionPatients(type: string, content: string | null): string[] {
  if (!content || !isCompartmentType(type)) return [];
  return extractIndex(JSON.parse(content)).compartments;
}

/**
 * Whether the caller may see this version: the resource as it is now has been checked already; the version
 * must also be in the record of someone the caller's scope reaches (one of its people is enough, as for a
 * read). A version that named nobody is judged by the resource as it is now.
 */
async function versionReadable(ctx: Ctx, patients: string[]): Promise<boolean> {
  if (!ctx.patients || !patients.length) return true;
  for (const p of patients) if (knownToReach(ctx.db, ctx.patients, p) || (await scopeReaches(ctx.db, ctx.patients, p))) return true;
  return false;
}

/**
 * A new resource's id: a UUID that starts with the time (version 7), so the ids made together sort together.
 * The (type, id) index and every index on a referenced id then take new rows at their end, a few pages
 * per commit, where random UUIDs dirtied a page of each per resource. What it tells: roughly when the
 * resource was created, which its first version's lastUpdated says anyway.
 */
export function newId(): string {
  return uuidv7();
}

export async function createResource(ctx: Ctx, type: string, body: unknown): Promise<WrittenResource> {
  validateResource(body, { expectedType: type });
  ctx.checkContent?.(body as Record<string, unknown>);
  const resource = { ...(body as Record<string, unknown>), id: newId() };
  const newPatients = type === 'Patient' ? [resource.id] : [];
  const written = await putResource(ctx.db, resource, { lock: ctx.lock, admit: admission(ctx, newPatients) });
  created(ctx, newPatients);
  return written;
}

/** Stores already-validated resources that carry fresh server-assigned ids, in one batch. */
export async function createNewResources(ctx: Ctx, resources: Record<string, unknown>[]): Promise<WrittenResource[]> {
  const newPatients = resources.filter((r) => r.resourceType === 'Patient').map((r) => r.id as string);
  const written = await createResources(ctx.db, resources, admission(ctx, newPatients));
  created(ctx, newPatients);
  return written;
}

export async function updateResource(ctx: Ctx, type: string, id: string, body: unknown, ifMatch?: number, createOnly = false): Promise<WrittenResource> {
  validateResource(body, { expectedType: type, expectedId: id });
  ctx.checkContent?.(body as Record<string, unknown>);
  await assertWritable(ctx, [{ type, id }]);
  const newPatients = (await createsPatient(ctx, type, id)) ? [id] : [];
  const written = await putResource(ctx.db, { ...(body as Record<string, unknown>) }, { lock: ctx.lock, ifMatch, createOnly, admit: admission(ctx, newPatients) });
  created(ctx, newPatients);
  return written;
}

export async function patchResource(ctx: Ctx, type: string, id: string, patch: unknown, ifMatch?: number): Promise<WrittenResource> {
  if (!Array.isArray(patch)) throw badRequest('A JSON Patch body must be an array of operations.');
  const current = await readResource(ctx, type, id);
  await assertWritable(ctx, [{ type, id }]);
  if (ifMatch !== undefined && current.version_id !== ifMatch) {
    throw new FhirError(412, [{ severity: 'error', code: 'conflict', diagnostics: `${type}/${id} is at version ${current.version_id}, not ${ifMatch}.` }]);
  }
  const patched = applyJsonPatch(JSON.parse(current.content), patch, `${type}/${id}`);
  validateResource(patched, { expectedType: type, expectedId: id });
  ctx.checkContent?.(patched);
  return putResource(ctx.db, patched, { lock: ctx.lock, ifMatch: current.version_id, admit: admission(ctx) });
}

export async function removeResource(ctx: Ctx, type: string, id: string, ifMatch?: number) {
  await assertWritable(ctx, [{ type, id }]);
  return deleteResource(ctx.db, type, id, { lock: ctx.lock, ifMatch });
}

/** The ids matching a conditional interaction's criteria (If-None-Exist, conditional update/delete/reference). */
export async function matchIds(ctx: Ctx, type: string, query: QueryParams): Promise<string[]> {
  return runMatch(ctx, conditionalSearch(type, query));
}

/** Only say how the answer is written; a conditional request's own URL may carry them. */
const PRESENTATION_PARAMS = new Set(['_format', '_pretty']);

/**
 * Conditional criteria are parsed strictly: an unknown parameter must not widen the match to everyone.
 * Nor may paging, sorting or summary parameters stand in for criteria: `_count=1` alone matches every
 * resource of the type (so a conditional delete or update hits whichever one exists), and `_offset=1` or
 * `_summary=count` hide the real match (so a conditional create or update makes a duplicate).
 */
function conditionalSearch(type: string, query: QueryParams) {
  if (!query.length) throw badRequest(`A conditional ${type} request needs search criteria.`);
  const shaping = [...new Set(query.map(([name]) => name.trim()).filter((name) => isResultParam(name) && !PRESENTATION_PARAMS.has(name)))];
  if (shaping.length) {
    throw badRequest(
      `Conditional criteria choose which ${type} is meant, so they cannot hold ${shaping.join(', ')}: those shape a search's answer and would change or hide the match. Give search parameters only, e.g. identifier=system|value.`,
      shaping[0],
    );
  }
  const req = parseSearchRequest(type, query, 'criteria');
  if (!req.filters.length) throw badRequest(`A conditional ${type} request needs search criteria (e.g. identifier=system|value); '${queryString(query)}' would match every ${type}.`);
  req.count = 2;
  req.total = 'none';
  return req;
}

async function runMatch(ctx: Ctx, req: ReturnType<typeof conditionalSearch>): Promise<string[]> {
  return (await executeSearch(ctx.db, req, { patients: ctx.patients })).matches.map((m) => m.id);
}

/**
 * For conditional writes: the match and the write that depends on it must not interleave with another
 * request deciding on the same criteria (another app node, or another pooled connection), or both
 * would see "no match" and create twice. On PostgreSQL a transaction-scoped advisory lock keyed by the
 * criteria serialises them; SQLite's single writer already does.
 */
export async function singleMatch(ctx: Ctx, type: string, query: QueryParams): Promise<string | undefined> {
  const req = conditionalSearch(type, query); // validated before the criteria become a lock key
  if (ctx.lock) await lockCriteria(ctx.db, type, query);
  const ids = await runMatch(ctx, req);
  if (ids.length > 1) throw multipleMatches(`More than one ${type} matches '${queryString(query)}'; make the criteria more specific.`);
  return ids[0];
}

/**
 * The lock behind a conditional write, for a workflow's own find-or-create in its transaction (PostgreSQL:
 * the caller knows the dialect). Keyed like singleMatch's, so a workflow and a conditional create over the
 * API, on any node, wait for each other on the same criteria; held until the transaction ends.
 */
export async function lockCriteria(db: SqlExecutor, type: string, query: QueryParams): Promise<void> {
  const key = `${type}?${[...query].sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => `${k}=${v}`).join('&')}`;
  await db.get('SELECT pg_advisory_xact_lock(hashtext(?))', [key]);
}

/**
 * A history Bundle, and whose records the versions in it were in: for the audit. The resources are those
 * the caller may see now; of their versions, those that were in someone else's record (before the resource
 * moved to a person the caller may see) are left out of the page, which can then hold fewer than _count.
 */
export async function history(ctx: Ctx, base: string, scope: { type?: string; id?: string }, query: QueryParams): Promise<{ body: string; patientIds: string[] }> {
  let count = 50;
  let offset = 0;
  let since: number | undefined;
  for (const [k, v] of query) {
    if (k === '_count') count = boundedInt(v, '_count', 1, 1000);
    else if (k === '_offset') offset = boundedInt(v, '_offset', 0, 10_000_000);
    else if (k === '_since') {
      since = Date.parse(v);
      if (Number.isNaN(since)) throw badRequest(`_since must be an instant such as 2026-01-01T00:00:00Z, not '${v}'.`, '_since');
    }
  }
  // A deleted resource has no compartment rows left: it is judged as a read of it is (by its last version's
  // people), and then its versions are shown as a live one's are, each judged below.
  const deletedReadable = scope.type && scope.id ? await instanceHistoryReadable(ctx, scope.type, scope.id) : false;
  const where: string[] = [];
  const params: Param[] = [];
  if (scope.type) { where.push('h.type = ?'); params.push(scope.type); }
  if (scope.id) { where.push('h.id = ?'); params.push(scope.id); }
  if (since !== undefined) { where.push('h.last_updated_ms >= ?'); params.push(since); }
  // History is of the resources the caller may see now (their current compartment decides); each version is judged again below.
  const visible = deletedReadable ? undefined : visibleRow('r', ctx.patients);
  if (visible) { where.push(visible.text); params.push(...visible.params); }
  // Joined whatever the caller's scope: each version shown is audited against its person's record.
  const from = 'resource_history h JOIN resources r ON r.rid = h.rid';
  const clause = where.length ? `WHERE ${where.join(' AND ')}` : '';
  const rows = await ctx.db.all<HistoryRow & { patient_id: string | null }>(
    `SELECT h.type, h.id, h.version_id, h.last_updated_ms, h.method, h.content, r.patient_id FROM ${from} ${clause} ORDER BY h.last_updated_ms DESC, h.version_id DESC LIMIT ? OFFSET ?`,
    [...params, count + 1, offset],
  );
  if (scope.id && !rows.length && offset === 0) {
    throw notFound(`${scope.type}/${scope.id} is not known to this server.`);
  }
  const path = [scope.type, scope.id, '_history'].filter(Boolean).join('/');
  const keep: [string, string][] = query.filter(([k]) => k === '_since');
  const url = (o: number) => `${base}/${path}?${queryString([...keep, ['_count', String(count)], ...(o ? [['_offset', String(o)] as [string, string]] : [])])}`;
  const more = rows.length > count;
  const page = more ? rows.slice(0, count) : rows;
  const shown: typeof page = [];
  const patientIds = new Set<string>();
  for (const row of page) {
    const patients = versionPatients(row.type, row.content);
    if (!(await versionReadable(ctx, patients))) continue;
    shown.push(row);
    if (row.patient_id !== null) patientIds.add(row.patient_id);
    for (const p of patients) patientIds.add(p);
  }
  // The total counts the versions the caller is shown, never those withheld (a total above what is shown tells
  // that the resource was once about someone else). The whole history on this page: what it shows. Over
  // several pages, the count in SQL, unless this page withheld versions; then none (Bundle.total is optional
  // in a history), since judging every version of every page to count them is a scan of all their content.
  const total = offset === 0 && !more ? shown.length
    : shown.length < page.length ? undefined
    : Number((await ctx.db.get<{ n: number }>(`SELECT COUNT(*) AS n FROM ${from} ${clause}`, params))?.n ?? 0);
  return { body: historyBundle(base, url(offset), shown, total, more ? url(offset + count) : undefined), patientIds: [...patientIds] };
}

/** A paging parameter's value, or a 400 naming its range; never a number the database cannot bind. */
export function boundedInt(value: string, name: string, min: number, max: number): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) throw badRequest(`${name} must be a whole number from ${min} to ${max}, not '${value}'.`, name);
  return n;
}
