// Turns a resource into typed search-index rows by evaluating the official R4 SearchParameter
// expressions. Search never reads resource JSON: everything it can match on is extracted here.
//
// Each parameter's expression is compiled once per resource type into plain JavaScript when it has one of
// the common shapes (see indexing/compile.ts); the rest, and any instance the compiled code does not model,
// go through @medplum/core's FHIRPath engine. extractIndexSlow evaluates everything with the engine; the
// two must agree (test/record/indexing.test.ts).
import { toTypedValue } from '@medplum/core';
import { definitions, type FhirPathProgram, type SearchParamType } from './definitions.ts';
import { compileExpression, removeDuplicates, ValueSink, type Extractor } from './indexing/compile.ts';
import { addValue, emptyRows, type IndexRows } from './indexing/rows.ts';

export type { IndexRows } from './indexing/rows.ts';
export { parseReference } from './indexing/reference.ts';

type Any = Record<string, any>;

/** One search parameter of one resource type, ready to extract. */
export interface IndexPlanEntry {
  code: string;
  type: SearchParamType;
  expression: string;
  program: FhirPathProgram;
  /** Compiled extractor, or undefined when the expression is evaluated with FHIRPath. */
  extract: Extractor | undefined;
  /** The expression is a union, whose result FHIRPath de-duplicates. */
  union: boolean;
}

/** Parameters that are columns of the resources table rather than index rows. */
const NOT_INDEXED = new Set(['_id', '_lastUpdated']);

const plans = new Map<string, IndexPlanEntry[]>();

/** The extraction plan for a resource type: its search parameters, in definition order, compiled where possible. */
export function indexPlan(resourceType: string): readonly IndexPlanEntry[] {
  let plan = plans.get(resourceType);
  if (!plan) {
    const defs = definitions();
    if (!defs.resourceTypes.has(resourceType)) return []; // nothing to index; don't cache arbitrary names
    plan = [];
    for (const sp of defs.searchParams(resourceType).values()) {
      if (NOT_INDEXED.has(sp.code)) continue;
      const compiled = compileExpression(sp.program, resourceType, defs.resourceTypes);
      plan.push({ code: sp.code, type: sp.type, expression: sp.expression, program: sp.program, extract: compiled?.extract, union: compiled?.union ?? false });
    }
    plans.set(resourceType, plan);
  }
  return plan;
}

const sink = new ValueSink();

export function extractIndex(resource: Any): IndexRows {
  const type = resource.resourceType as string;
  // The engine types a resource that looks like a Quantity (a numeric "value") as one; leave that to it.
  if (typeof resource.value === 'number') return extractIndexSlow(resource);
  const rows = emptyRows();
  let input: unknown[] | undefined;
  for (const p of indexPlan(type)) {
    if (p.extract) {
      sink.clear();
      try {
        p.extract(resource, sink);
      } catch {
        // DEOPT: an instance shape the compiled code leaves to the engine (and should the compiled code
        // ever fail for another reason, the engine is the reference anyway).
        sink.clear();
        evaluate(rows, p, (input ??= [toTypedValue(resource)]));
        continue;
      }
      if (p.union && sink.length > 1) removeDuplicates(sink);
      for (let i = 0; i < sink.length; i++) addValue(rows, p.code, p.type, sink.types[i], sink.values[i]);
    } else {
      evaluate(rows, p, (input ??= [toTypedValue(resource)]));
    }
  }
  sink.clear();
  rows.compartments = compartmentsOf(type, resource.id, rows);
  return rows;
}

/** extractIndex with every expression evaluated by the FHIRPath engine (the reference implementation). */
export function extractIndexSlow(resource: Any): IndexRows {
  const rows = emptyRows();
  const type = resource.resourceType as string;
  const input = [toTypedValue(resource)];
  for (const p of indexPlan(type)) evaluate(rows, p, input);
  rows.compartments = compartmentsOf(type, resource.id, rows);
  return rows;
}

function evaluate(rows: IndexRows, p: IndexPlanEntry, input: unknown[]): void {
  let values: { type: string; value: unknown }[];
  try {
    values = p.program.eval({ variables: {} }, input);
  } catch {
    return; // an expression that cannot apply to this instance indexes nothing
  }
  for (const v of values) addValue(rows, p.code, p.type, v.type, v.value);
}

function compartmentsOf(type: string, id: string | undefined, rows: IndexRows): string[] {
  const ids = new Set<string>();
  if (type === 'Patient' && id) ids.add(id);
  const params = definitions().patientCompartmentParams(type);
  if (params.length) {
    // The first id becomes resources.patient_id, "whose record this is": the subject or patient, not
    // a patient who merely performed or recorded something.
    const members = rows.reference.filter((r) => r.targetType === 'Patient' && r.targetId && params.includes(r.param));
    const primary = (r: { param: string }) => (r.param === 'patient' || r.param === 'subject' ? 0 : 1);
    for (const r of [...members].sort((a, b) => primary(a) - primary(b))) ids.add(r.targetId!);
  }
  return [...ids];
}
