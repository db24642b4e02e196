// Typed values → index rows. Both the compiled extractors and the FHIRPath fallback feed values through
// here, so the two paths cannot disagree about what a value of a given FHIR datatype indexes as.
import { parseDateRange, MIN_DATE, MAX_DATE } from '../search/dateRange.ts';
import { foldString } from '../search/normalise.ts';
import { parseReference } from './reference.ts';

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

export function emptyRows(): IndexRows {
  return { token: [], string: [], date: [], reference: [], number: [], quantity: [], uri: [], compartments: [] };
}

/** Adds the rows for one value of FHIR datatype `type` found by a `kind` search parameter. */
export function addValue(rows: IndexRows, param: string, kind: string, type: string, value: any): void {
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

function pushToken(rows: IndexRows, param: string, system: string | null | undefined, code: string | null | undefined, text?: string | null): void {
  if (code == null && text == null) return;
  rows.token.push({ param, system: system ?? null, code: code ?? null, text: text ? foldString(text) : null });
}

function addToken(rows: IndexRows, param: string, type: string, value: any): void {
  switch (type) {
    case 'CodeableConcept':
      for (const c of (value as Any).coding ?? []) pushToken(rows, param, c.system, c.code, c.display);
      if (value.text) pushToken(rows, param, null, null, value.text);
      return;
    case 'Coding':
      return pushToken(rows, param, value.system, value.code, value.display);
    case 'Identifier':
      return pushToken(rows, param, value.system, value.value, value.type?.text);
    case 'ContactPoint':
      return pushToken(rows, param, value.system, value.value);
    case 'boolean':
      return pushToken(rows, param, null, String(value));
    default:
      if (typeof value === 'string' || typeof value === 'number') pushToken(rows, param, null, String(value));
  }
}

const NAME_PARTS = ['family', 'given', 'prefix', 'suffix', 'text'];
const ADDRESS_PARTS = ['line', 'city', 'district', 'state', 'postalCode', 'country', 'text'];

function pushString(rows: IndexRows, param: string, s: unknown): void {
  if (typeof s === 'string' && s.trim()) rows.string.push({ param, value: foldString(s), raw: s });
}

function addString(rows: IndexRows, param: string, type: string, value: any): void {
  const parts = type === 'HumanName' ? NAME_PARTS : type === 'Address' ? ADDRESS_PARTS : undefined;
  if (!parts) return pushString(rows, param, value);
  for (const part of parts) {
    const v = value[part];
    if (Array.isArray(v)) for (const s of v) pushString(rows, param, s);
    else pushString(rows, param, v);
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
