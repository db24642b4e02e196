// Turns a resource into typed search-index rows by evaluating the official R4 SearchParameter
// expressions. Search never reads resource JSON: everything it can match on is extracted here.
import { toTypedValue } from '@medplum/core';
import { definitions } from './definitions.ts';
import { parseDateRange, MIN_DATE, MAX_DATE } from './search/dateRange.ts';
import { foldString } from './search/normalise.ts';

export interface IndexRows {
  token: { param: string; system: string | null; code: string | null; text: string | null }[];
  string: { param: string; value: string; raw: string }[];
  date: { param: string; lo: number; hi: number }[];
  reference: { param: string; targetType: string | null; targetId: string | null; url: string }[];
  number: { param: string; value: number }[];
  quantity: { param: string; value: number; system: string | null; code: string | null; unit: string | null }[];
  uri: { param: string; value: string }[];
  /** Patients whose compartment this resource belongs to (R4 Patient CompartmentDefinition). */
  compartments: string[];
}

type Any = Record<string, any>;
interface Typed { type: string; value: any }

const REFERENCE = /(?:^|\/)([A-Z][A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})(?:\/_history\/[^/]+)?$/;

/** Splits a reference string into type and id; absolute URLs keep their last two segments. */
export function parseReference(reference: string): { type: string; id: string } | undefined {
  const m = REFERENCE.exec(reference);
  return m ? { type: m[1], id: m[2] } : undefined;
}

export function extractIndex(resource: Any): IndexRows {
  const rows: IndexRows = { token: [], string: [], date: [], reference: [], number: [], quantity: [], uri: [], compartments: [] };
  const type = resource.resourceType as string;
  const input = [toTypedValue(resource)];
  for (const sp of definitions().searchParams(type).values()) {
    if (sp.code === '_id' || sp.code === '_lastUpdated') continue; // columns of the resources table
    let values: Typed[];
    try {
      values = sp.program.eval({ variables: {} }, input);
    } catch {
      continue; // an expression that cannot apply to this instance indexes nothing
    }
    for (const v of values) addValue(rows, sp.code, sp.type, v);
  }
  rows.compartments = compartmentsOf(type, resource.id, rows);
  return rows;
}

function compartmentsOf(type: string, id: string | undefined, rows: IndexRows): string[] {
  const ids = new Set<string>();
  if (type === 'Patient' && id) ids.add(id);
  const params = definitions().patientCompartmentParams(type);
  if (params.length) {
    for (const r of rows.reference) {
      if (r.targetType === 'Patient' && r.targetId && params.includes(r.param)) ids.add(r.targetId);
    }
  }
  return [...ids];
}

function addValue(rows: IndexRows, param: string, kind: string, { type, value }: Typed): void {
  if (value === undefined || value === null) return;
  switch (kind) {
    case 'token':
      return addToken(rows, param, type, value);
    case 'string':
      return addString(rows, param, type, value);
    case 'date':
      return addDate(rows, param, type, value);
    case 'reference':
      return addReference(rows, param, type, value);
    case 'number':
      if (typeof value === 'number') rows.number.push({ param, value });
      return;
    case 'quantity':
      return addQuantity(rows, param, value);
    case 'uri':
      if (typeof value === 'string') rows.uri.push({ param, value });
      return;
  }
}

function addToken(rows: IndexRows, param: string, type: string, value: any): void {
  const push = (system: string | null | undefined, code: string | null | undefined, text?: string | null) => {
    if (code == null && text == null) return;
    rows.token.push({ param, system: system ?? null, code: code ?? null, text: text ? foldString(text) : null });
  };
  switch (type) {
    case 'CodeableConcept':
      for (const c of (value as Any).coding ?? []) push(c.system, c.code, c.display);
      if (value.text) push(null, null, value.text);
      return;
    case 'Coding':
      return push(value.system, value.code, value.display);
    case 'Identifier':
      return push(value.system, value.value, value.type?.text);
    case 'ContactPoint':
      return push(value.system, value.value);
    case 'boolean':
      return push(null, String(value));
    default:
      if (typeof value === 'string' || typeof value === 'number') push(null, String(value));
  }
}

const NAME_PARTS = ['family', 'given', 'prefix', 'suffix', 'text'];
const ADDRESS_PARTS = ['line', 'city', 'district', 'state', 'postalCode', 'country', 'text'];

function addString(rows: IndexRows, param: string, type: string, value: any): void {
  const push = (s: unknown) => {
    if (typeof s === 'string' && s.trim()) rows.string.push({ param, value: foldString(s), raw: s });
  };
  const parts = type === 'HumanName' ? NAME_PARTS : type === 'Address' ? ADDRESS_PARTS : undefined;
  if (!parts) return push(value);
  for (const part of parts) {
    const v = value[part];
    if (Array.isArray(v)) v.forEach(push);
    else push(v);
  }
}

function addDate(rows: IndexRows, param: string, type: string, value: any): void {
  if (typeof value === 'string') {
    const r = parseDateRange(value);
    if (r) rows.date.push({ param, ...r });
    return;
  }
  if (type === 'Period') {
    const lo = value.start ? parseDateRange(value.start)?.lo : MIN_DATE;
    const hi = value.end ? parseDateRange(value.end)?.hi : MAX_DATE;
    if (lo !== undefined && hi !== undefined) rows.date.push({ param, lo, hi });
    return;
  }
  if (type === 'Timing') {
    const ranges = ((value.event ?? []) as string[]).map(parseDateRange).filter((r) => r !== undefined);
    if (ranges.length) rows.date.push({ param, lo: Math.min(...ranges.map((r) => r.lo)), hi: Math.max(...ranges.map((r) => r.hi)) });
    const bounds = value.repeat?.boundsPeriod;
    if (bounds) addDate(rows, param, 'Period', bounds);
  }
}

function addReference(rows: IndexRows, param: string, type: string, value: any): void {
  const url = typeof value === 'string' ? value : value.reference;
  if (typeof url !== 'string') return;
  const target = type === 'canonical' || type === 'uri' ? undefined : parseReference(url);
  rows.reference.push({ param, targetType: target?.type ?? null, targetId: target?.id ?? null, url });
}

function addQuantity(rows: IndexRows, param: string, value: any): void {
  if (typeof value?.value !== 'number') return;
  rows.quantity.push({ param, value: value.value, system: value.system ?? null, code: value.code ?? value.currency ?? null, unit: value.unit ?? null });
}
