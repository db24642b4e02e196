// One walk over a resource's JSON, guided by the compiled definitions (schema.ts), reporting every structural
// problem: unknown elements, JSON kinds and primitive formats, array vs single value, cardinality, missing
// required elements, primitive extension siblings (_birthDate), choice elements given twice, empty values and
// nulls, nested resources (contained, Bundle.entry.resource) and required code bindings.
//
// Built for speed (ingest validates thousands of resources a second): no allocation on the happy path beyond
// the walk's own path stack. Paths ("Bundle.entry[0].resource.birthDate") are only joined when an issue is
// reported.
import { definitions } from '../definitions.ts';
import type { OutcomeIssue } from '../outcome.ts';
import { codeProblem } from './bindings.ts';
import { describe, isObject, issue, jsonType, jsKind } from './issues.ts';
import { typeNode, type ChoiceGroup, type Prop, type TypeNode } from './schema.ts';

export const ID_PATTERN = /^[A-Za-z0-9\-.]{1,64}$/;
/** Path segments (names and indexes) deep enough for any real resource; deeper JSON is refused, not recursed into. */
const MAX_DEPTH = 256;

type Obj = Record<string, unknown>;

// The walk's state. Validation is synchronous, so one set per process suffices; walkResource resets it.
let out: OutcomeIssue[] = [];
/** Property names and array indexes from the root: ["Bundle", "entry", 0, "resource"]. */
const stack: (string | number)[] = [];
let elementNode: TypeNode | undefined;
let resourceTypes: ReadonlySet<string> | undefined;

/** Validates a resource whose resourceType (a known type) and id the caller has checked; returns the issues. */
export function walkResource(resource: Obj, type: string): OutcomeIssue[] {
  out = [];
  stack.length = 0;
  stack.push(type);
  resourceTypes ??= definitions().resourceTypes;
  elementNode ??= typeNode('Element')!;
  walkObject(resource, typeNode(type)!);
  const found = out;
  out = [];
  return found;
}

function here(): string {
  let s = stack[0] as string;
  for (let i = 1; i < stack.length; i++) {
    const part = stack[i];
    s += typeof part === 'number' ? `[${part}]` : `.${part}`;
  }
  return s;
}

/** The path of a child of the current object: key, or key[index] when index >= 0. */
function at(key: string, index = -1): string {
  return index >= 0 ? `${here()}.${key}[${index}]` : `${here()}.${key}`;
}

function walkObject(obj: Obj, node: TypeNode): void {
  let empty = true;
  let choices = 0; // bits of the choice groups seen
  for (const key in obj) {
    const value = obj[key];
    if (value === undefined) continue; // only from JavaScript callers; JSON has no undefined, and it serializes as absent
    empty = false;
    const prop = node.props.get(key);
    if (prop === undefined) {
      if (key.charCodeAt(0) === 95 /* _ */) {
        const base = node.props.get(key.slice(1));
        if (base !== undefined && base.kind === 'primitive') {
          if (base.choice !== undefined) choices = seeChoice(obj, base.choice, choices);
          primitiveExtension(obj, base, key, value);
          continue;
        }
      } else if (node.isResource && (key === 'resourceType' || key === 'id')) continue; // checked by whoever found the resource
      unknownElement(node, key);
      continue;
    }
    if (prop.choice !== undefined) choices = seeChoice(obj, prop.choice, choices);
    if (value === null) {
      out.push(issue('structure', `${at(key)}: null is not allowed in FHIR JSON; omit the element instead`, at(key)));
      continue;
    }
    if (Array.isArray(value)) {
      if (!prop.array) {
        out.push(issue('structure', `${at(key)}: expected a single value, but got an array`, at(key)));
        continue;
      }
      const n = value.length;
      if (n === 0) {
        out.push(issue('structure', `${at(key)}: empty arrays are not allowed in FHIR JSON; omit the element instead`, at(key)));
        continue;
      }
      if (n > prop.max) out.push(issue('structure', `${at(key)}: at most ${prop.max} values are allowed, but got ${n}`, at(key)));
      if (n < prop.min) out.push(issue('structure', `${at(key)}: at least ${prop.min} values are required, but got ${n}`, at(key)));
      for (let i = 0; i < n; i++) {
        const item = value[i];
        if (item === null || item === undefined) {
          // The one place FHIR JSON has null: a repeating primitive whose item i only has extensions (in _key[i]).
          const ext = prop.kind === 'primitive' ? obj[prop.ext] : undefined;
          if (!(Array.isArray(ext) && isObject(ext[i]))) {
            out.push(issue('structure', `${at(key, i)}: null is not allowed here; omit the value, or give its extensions in "${prop.ext}"`, at(key, i)));
          }
        } else checkValue(item, prop, key, i);
      }
    } else if (prop.array) {
      out.push(issue('structure', `${at(key)}: expected an array (this element repeats), but got a single value`, at(key)));
    } else checkValue(value, prop, key, -1);
  }

  if (empty) {
    out.push(issue('structure', `${here()}: empty objects are not allowed in FHIR JSON; omit the element instead`, here()));
    return;
  }
  const required = node.required;
  for (let i = 0; i < required.length; i++) {
    const p = required[i];
    if (obj[p.name] === undefined && (p.kind !== 'primitive' || obj[p.ext] === undefined)) {
      out.push(issue('structure', `${at(p.name)} is required but missing`, at(p.name)));
    }
  }
  for (const group of node.requiredChoices) {
    if ((choices & group.bit) === 0) {
      const path = `${here()}.${group.base}[x]`;
      out.push(issue('structure', `${path} is required but missing (give one of ${group.variants.join(', ')})`, path));
    }
  }
  for (const inv of node.invariants) {
    if (!inv.holds(obj)) out.push(issue('invariant', `${here()}: constraint ${inv.key} not met: ${inv.human}`, here()));
  }
}

function checkValue(value: unknown, prop: Prop, key: string, index: number): void {
  switch (prop.kind) {
    case 'primitive': {
      const primitive = prop.primitive!;
      if (typeof value !== primitive.json) {
        out.push(issue('structure', `${at(key, index)}: Invalid JSON type: expected ${primitive.json}, but got ${jsKind(value)}`, at(key, index)));
        return;
      }
      if (value === '') {
        out.push(issue('structure', `${at(key, index)}: empty strings are not allowed in FHIR JSON; omit the element instead`, at(key, index)));
        return;
      }
      const problem = primitive.problem(value as string | number | boolean);
      if (problem !== undefined) {
        out.push(issue('structure', `${at(key, index)}: ${problem}`, at(key, index)));
        return;
      }
      const codes = prop.codes;
      if (codes !== undefined && !codes.codes.has(value as string)) {
        out.push(issue('value', `${at(key, index)}: ${codeProblem(value as string, codes)}`, at(key, index)));
      }
      return;
    }
    case 'complex': {
      if (typeof value !== 'object' || Array.isArray(value)) {
        out.push(issue('structure', `${at(key, index)}: expected a JSON object (${prop.type}), but got ${jsonType(value)}`, at(key, index)));
        return;
      }
      if (stack.length > MAX_DEPTH) {
        out.push(issue('structure', `${at(key, index)}: nested too deeply (more than ${MAX_DEPTH} levels)`, at(key, index)));
        return;
      }
      stack.push(key);
      if (index >= 0) stack.push(index);
      walkObject(value as Obj, prop.node!);
      if (index >= 0) stack.pop();
      stack.pop();
      return;
    }
    case 'resource':
      nestedResource(value, key, index);
      return;
  }
}

/** contained[i], Bundle.entry[i].resource, Parameters.parameter[i].resource: a resource of its own type. */
function nestedResource(value: unknown, key: string, index: number): void {
  const path = at(key, index);
  if (typeof value !== 'object' || Array.isArray(value)) {
    out.push(issue('structure', `${path}: expected a resource (a JSON object with a resourceType), but got ${jsonType(value)}`, path));
    return;
  }
  const o = value as Obj;
  const type = o.resourceType;
  if (typeof type !== 'string') {
    out.push(
      type === undefined
        ? issue('structure', `${path}.resourceType is required but missing: a nested resource must say what it is`, `${path}.resourceType`)
        : issue('structure', `${path}.resourceType: Invalid JSON type: expected string, but got ${jsKind(type)}`, `${path}.resourceType`),
    );
    return;
  }
  if (!resourceTypes!.has(type)) {
    out.push(issue('structure', `${path}.resourceType: Unknown resource type '${type}': it is not a FHIR R4 resource type`, `${path}.resourceType`));
    return;
  }
  if (o.id !== undefined && !(typeof o.id === 'string' && ID_PATTERN.test(o.id))) {
    out.push(issue('value', `${path}.id: ${describe(o.id)} is not a valid FHIR id (1 to 64 characters: letters, digits, '-' and '.')`, `${path}.id`));
  }
  if (stack.length > MAX_DEPTH) {
    out.push(issue('structure', `${path}: nested too deeply (more than ${MAX_DEPTH} levels)`, path));
    return;
  }
  stack.push(key);
  if (index >= 0) stack.push(index);
  walkObject(o, typeNode(type)!);
  if (index >= 0) stack.pop();
  stack.pop();
}

function unknownElement(node: TypeNode, key: string): void {
  const path = at(key);
  const suggestion = closest(key, node);
  out.push(
    issue(
      'structure',
      `${path}: unknown element "${key}"${suggestion ? ` (did you mean "${suggestion}"?)` : ''}; it is not defined in FHIR R4 here: check the spelling, or carry it in an extension`,
      path,
    ),
  );
}

/** `_birthDate` carries the id and extensions of `birthDate`: an object, or for repeating elements an array of objects and nulls. */
function primitiveExtension(obj: Obj, prop: Prop, key: string, value: unknown): void {
  if (!prop.array) {
    if (!isObject(value)) {
      out.push(issue('structure', `${at(key)}: the id and extensions of "${prop.name}" must be a JSON object, but got ${jsonType(value)}`, at(key)));
      return;
    }
    stack.push(key);
    walkObject(value, elementNode!);
    stack.pop();
    return;
  }
  if (!Array.isArray(value)) {
    out.push(issue('structure', `${at(key)}: "${prop.name}" repeats, so "${key}" must be an array of objects and nulls, but got ${jsonType(value)}`, at(key)));
    return;
  }
  if (value.length === 0) {
    out.push(issue('structure', `${at(key)}: empty arrays are not allowed in FHIR JSON; omit the element instead`, at(key)));
    return;
  }
  const values = obj[prop.name];
  if (Array.isArray(values) && values.length !== value.length) {
    out.push(issue('structure', `${at(key)}: has ${value.length} items but "${prop.name}" has ${values.length}; the arrays must line up (use null for gaps)`, at(key)));
  }
  for (let i = 0; i < value.length; i++) {
    const item = value[i];
    if (item === null) {
      if (!(Array.isArray(values) && values[i] !== null && values[i] !== undefined)) {
        out.push(issue('structure', `${at(key, i)}: null here and in "${prop.name}" at the same position; a value needs one or the other`, at(key, i)));
      }
    } else if (isObject(item)) {
      stack.push(key, i);
      walkObject(item, elementNode!);
      stack.length -= 2;
    } else {
      out.push(issue('structure', `${at(key, i)}: the id and extensions of a "${prop.name}" value must be a JSON object (or null), but got ${jsonType(item)}`, at(key, i)));
    }
  }
}

/** Notes a choice group as seen; two different variants (valueString and valueQuantity) are one issue. */
function seeChoice(obj: Obj, group: ChoiceGroup, seen: number): number {
  if ((seen & group.bit) === 0) return seen | group.bit;
  // Seen before: fine if it was this variant's _sibling (valueString with _valueString), else a conflict.
  const given: string[] = [];
  for (const key in obj) {
    if (obj[key] === undefined) continue;
    const name = key.charCodeAt(0) === 95 ? key.slice(1) : key;
    if (group.variants.includes(name) && !given.includes(name)) given.push(name);
  }
  if (given.length > 1 && !reportedChoice.has(obj)) {
    reportedChoice.add(obj);
    const second = given[1];
    out.push(
      issue(
        'structure',
        `${at(second)}: only one of "${given[0]}" and "${second}" may be given (${group.base}[x] takes a single value)`,
        at(second),
      ),
    );
  }
  return seen;
}
const reportedChoice = new WeakSet<object>();

/** The known element closest to a misspelt one, if any is close (edit distance within a third of its length). */
function closest(key: string, node: TypeNode): string | undefined {
  const lower = key.toLowerCase();
  let best: string | undefined;
  let bestDistance = Math.max(1, Math.floor(key.length / 3)) + 1;
  for (const name of node.props.keys()) {
    const d = name.toLowerCase() === lower ? 0 : distance(lower, name.toLowerCase(), bestDistance);
    if (d < bestDistance) {
      best = name;
      bestDistance = d;
    }
  }
  return best;
}

/** Levenshtein distance, giving up (returning limit) once it must reach limit. */
function distance(a: string, b: string, limit: number): number {
  if (Math.abs(a.length - b.length) >= limit) return limit;
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    let rowMin = i;
    for (let j = 1; j <= b.length; j++) {
      const d = Math.min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
      current.push(d);
      if (d < rowMin) rowMin = d;
    }
    if (rowMin >= limit) return limit;
    previous = current;
  }
  return Math.min(previous[b.length], limit);
}
