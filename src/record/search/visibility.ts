// What a caller restricted to some patients (AccessControl.patients) may see, as one SQL condition on a
// resources row. Every query the record runs for such a caller includes it, so the database never hands
// back a row outside the caller's scope: no total, include, chain or history can count or show one.
import type { Param } from '../storage/driver.ts';
import type { PatientScope, RelationshipSearch } from '../accessControl.ts';
import { definitions } from '../definitions.ts';
import { badRequest } from '../outcome.ts';
import { compileRowCheck, compileSearch, type Sql } from './compile.ts';
import { parseSearchRequest } from './request.ts';

let compartmentTypes: string | undefined;

/** The types that belong to patients' records (the R4 Patient compartment, and Patient), as SQL literals. */
function compartmentTypeList(): string {
  compartmentTypes ??= [...definitions().resourceTypes]
    .filter((t) => t === 'Patient' || definitions().patientCompartmentParams(t).length > 0)
    .sort()
    .map((t) => `'${t.replace(/[^A-Za-z]/g, '')}'`)
    .join(', ');
  return compartmentTypes;
}

export function isCompartmentType(type: string): boolean {
  return type === 'Patient' || definitions().patientCompartmentParams(type).length > 0;
}

/**
 * Built SQL by what it was built from: every request of a signed-in person carries a scope, and compiling
 * its relationship searches again each time cost a read more than running them did. What is handed out
 * is shared: callers copy its params, never change them.
 */
const built = new Map<string, Sql>();
const MAX_BUILT = 1000;
/** The same, by scope object first: a resolved scope lists up to 500 ids, too many to turn into a key per request. */
const builtFor = new WeakMap<PatientScope, Map<string, Sql>>();

function memo(what: string, scope: PatientScope, build: () => Sql): Sql {
  let mine = builtFor.get(scope);
  const known = mine?.get(what);
  if (known) return known;
  const key = `${what}\u0000${JSON.stringify([scope.patientIds, scope.via, scope.except])}`;
  let sql = built.get(key);
  if (!sql) {
    if (built.size >= MAX_BUILT) built.clear();
    built.set(key, (sql = build()));
  }
  if (!mine) builtFor.set(scope, (mine = new Map()));
  mine.set(what, sql);
  return sql;
}

/** The ids of the patients in scope, as a SELECT of one column. */
export function scopedPatients(scope: PatientScope): Sql {
  return memo('patients', scope, () => listScopedPatients(scope));
}

function listScopedPatients(scope: PatientScope): Sql {
  const parts: Sql[] = scope.via.map(relationshipPatients);
  if (!parts.length) parts.push({ text: 'SELECT NULL AS pid WHERE 1 = 0', params: [] });
  let text = parts.map((p) => p.text).join(' UNION ');
  const params: Param[] = parts.flatMap((p) => p.params);
  if (scope.except?.length) {
    const except = scope.except.map(relationshipPatients);
    text = `SELECT pid FROM (${text}) v WHERE pid NOT IN (${except.map((e) => e.text).join(' UNION ')})`;
    params.push(...except.flatMap((e) => e.params));
  }
  return { text, params };
}

/** Whether the relationship's matches are the patients themselves (a Patient search, through '_id'). */
function throughId(rel: RelationshipSearch): boolean {
  if (rel.patientParam !== '_id') return false;
  if (rel.resourceType !== 'Patient') throw badRequest(`A relationship through _id must search Patient, not ${rel.resourceType}.`);
  return true;
}

function relationshipPatients(rel: RelationshipSearch): Sql {
  const search = parseSearchRequest(rel.resourceType, rel.query, 'strict');
  const { driving, where: whereAny, whereDriven } = compileSearch(search, 'vr');
  // Started from the driving set (one home's episodes, say), not from every resource of the type.
  const where = driving ? whereDriven : whereAny;
  const drive = driving ? { text: ` AND vr.rid IN (${driving.text})`, params: driving.params } : { text: '', params: [] };
  if (throughId(rel)) {
    return { text: `SELECT vr.id AS pid FROM resources vr WHERE ${where.text}${drive.text}`, params: [...where.params, ...drive.params] };
  }
  return {
    text: `SELECT sr.target_id AS pid FROM search_reference sr JOIN resources vr ON vr.rid = sr.rid
      WHERE sr.type = ? AND sr.param = ? AND sr.target_type = 'Patient' AND sr.target_id IS NOT NULL AND ${where.text}${drive.text}`,
    params: [rel.resourceType, rel.patientParam, ...where.params, ...drive.params],
  };
}

/**
 * Whether one patient (`patient`, an SQL expression naming a patient id) is in scope, each relationship
 * tested for that patient alone, through the reference index (a resident's episodes of care, say), rather
 * than by listing everyone in scope: what a check of a few given resources needs, at a cost that does not
 * grow with the caller's organisation.
 */
function patientInScope(patient: string, scope: PatientScope): Sql {
  const tests: Sql[] = [];
  // The patients named in the scope (a person's own record, break-glass grants) are never taken away by
  // `except`, which only narrows the relationships: the same rule as scopedPatients, for searches.
  if (scope.patientIds.length) tests.push({ text: `${patient} IN (${scope.patientIds.map(() => '?').join(', ')})`, params: scope.patientIds });
  const related = scope.via.map((rel) => relationshipOf(patient, rel));
  if (related.length) {
    const anyRelated = { text: `(${related.map((t) => t.text).join(' OR ')})`, params: related.flatMap((t) => t.params) };
    const except = (scope.except ?? []).map((rel) => relationshipOf(patient, rel));
    tests.push(except.length
      ? { text: `(${anyRelated.text} AND NOT (${except.map((e) => e.text).join(' OR ')}))`, params: [...anyRelated.params, ...except.flatMap((e) => e.params)] }
      : anyRelated);
  }
  return tests.length ? { text: `(${tests.map((t) => t.text).join(' OR ')})`, params: tests.flatMap((t) => t.params) } : { text: '1 = 0', params: [] };
}

/** EXISTS a resource matching the relationship's search that ties it to `patient`. */
function relationshipOf(patient: string, rel: RelationshipSearch): Sql {
  const check = compileRowCheck(parseSearchRequest(rel.resourceType, rel.query, 'strict'), 'vr');
  if (throughId(rel)) {
    return { text: `EXISTS (SELECT 1 FROM resources vr WHERE vr.id = ${patient} AND ${check.text})`, params: check.params };
  }
  return {
    text: `EXISTS (SELECT 1 FROM search_reference sr JOIN resources vr ON vr.rid = sr.rid
      WHERE sr.target_id = ${patient} AND sr.param = ? AND sr.type = ? AND sr.target_type = 'Patient' AND ${check.text})`,
    params: [rel.patientParam, rel.resourceType, ...check.params],
  };
}

/**
 * One row (`ok`) when the patient given as the first parameter is in scope; the scope's own parameters follow.
 */
export function patientCheck(scope: PatientScope): Sql {
  return memo('one patient', scope, () => {
    const inScope = patientInScope('p.id', scope);
    return { text: `SELECT 1 AS ok FROM (SELECT CAST(? AS TEXT) AS id) p WHERE ${inScope.text}`, params: inScope.params };
  });
}

/**
 * For a check of given resources of patients' records (isCompartmentType): true when the row is in the
 * compartment of a patient in scope, as `visibleRow` decides, found without listing every patient in scope.
 */
export function inScopeCompartment(alias: string, scope: PatientScope): Sql {
  return memo(`compartment of ${alias}`, scope, () => {
    const inScope = patientInScope('vc.patient_id', scope);
    return { text: `EXISTS (SELECT 1 FROM compartment vc WHERE vc.rid = ${alias}.rid AND ${inScope.text})`, params: inScope.params };
  });
}

/**
 * For a check of given resources being written: the compartment row `vc` names a patient in scope. A read
 * needs one of a resource's patients in scope; a write needs every one (interactions.ts, assertWritable).
 */
export function compartmentPatientInScope(scope: PatientScope): Sql {
  return memo('compartment patient', scope, () => patientInScope('vc.patient_id', scope));
}

/**
 * True for a row the caller may see: a resource outside patients' records, or one in the compartment of a
 * patient in scope. Absent scope: no condition.
 */
export function visibleRow(alias: string, scope: PatientScope | undefined): Sql | undefined {
  if (!scope) return undefined;
  // Built once per scope: a resolved scope names up to 500 people, one placeholder each.
  return memo(`visible row ${alias}`, scope, () => {
    const listed = inListedCompartment(alias, scope);
    return { text: `(${alias}.type NOT IN (${compartmentTypeList()}) OR ${listed.text})`, params: listed.params };
  });
}

/**
 * `visibleRow` for rows all of one known `type` (a search's own matches): no condition for a type outside
 * patients' records, only the compartment check for one inside. Testing each row's type against the list
 * of compartment types cost a search more than the compartment check itself.
 */
export function visibleRowOfType(alias: string, type: string, scope: PatientScope | undefined): Sql | undefined {
  if (!scope || !isCompartmentType(type)) return undefined;
  return memo(`visible compartment row ${alias}`, scope, () => inListedCompartment(alias, scope));
}

/** The row is in the compartment of a patient in scope, the scope's patients listed once per query. */
function inListedCompartment(alias: string, scope: PatientScope): Sql {
  // `|| ''` keeps SQLite from probing the (rid, patient_id) index once per person listed for every row:
  // it finds the row's compartment entries by rid (one or two) and tests each against the list, looked up
  // once per statement. With 500 people listed that was ~40 µs a row against ~2 µs.
  const listed = patientIdIn("vc.patient_id || ''", scope);
  return { text: `EXISTS (SELECT 1 FROM compartment vc WHERE vc.rid = ${alias}.rid AND ${listed.text})`, params: listed.params };
}

/** The row ids of `type` in the compartments of the patients in scope: where an unfiltered search starts. */
export function scopedRids(type: string, scope: PatientScope): Sql {
  const listed = patientIdIn('c.patient_id', scope);
  return {
    // A resource in two of the caller's people's compartments is listed twice: used as an IN list, it counts once.
    text: `SELECT c.rid FROM compartment c WHERE c.type = ? AND ${listed.text}`,
    params: [type, ...listed.params],
  };
}

/**
 * `column` names a patient in scope: one of its named patients, or one its relationships reach. A resolved
 * scope (every relationship already listed as ids) gives no relationship subquery at all: an empty one
 * still cost each statement building a list and its Bloom filter, more than checking the rows it guards.
 */
function patientIdIn(column: string, scope: PatientScope): Sql {
  const named: Sql = { text: `${column} IN (${scope.patientIds.map(() => '?').join(', ')})`, params: scope.patientIds };
  if (!scope.via.length) return scope.patientIds.length ? named : { text: '1 = 0', params: [] };
  const related = scopedPatients(scope);
  const through: Sql = { text: `${column} IN (${related.text})`, params: related.params };
  if (!scope.patientIds.length) return through;
  return { text: `(${named.text} OR ${through.text})`, params: [...named.params, ...through.params] };
}

/** `visibleRow` as an extra AND clause (empty when unrestricted). */
export function andVisible(alias: string, scope: PatientScope | undefined): Sql {
  const v = visibleRow(alias, scope);
  return v ? { text: ` AND ${v.text}`, params: v.params } : { text: '', params: [] };
}
