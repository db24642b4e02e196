// Compiles a search parameter's FHIRPath expression, once per (resource type, parameter), into plain
// JavaScript that walks the resource JSON directly. Only the shapes that make up almost all of R4's
// search parameters are compiled:
//
//   Type.a.b.c                                  (arrays flatten at every step; choice types by variant)
//   A | B | …                                   (union, de-duplicated as FHIRPath does)
//   (Type.value as Quantity), X.ofType(T)       (keeps values whose datatype is T)
//   X.as(T)                                     (no-op: @medplum/core's as() returns its input unchanged)
//   X.where(resolve() is Patient)               (references whose type segment is Patient)
//
// Anything else (where(system='phone'), extension('…'), exists(), indexers, …) is left to the FHIRPath
// engine. The datatype of every value comes from the element definitions of the R4 StructureDefinitions
// (as indexed by @medplum/core, the same tables its FHIRPath engine navigates by), so the row builders get
// exactly the (type, value) pairs the engine would have produced, in the same order.
//
// When an instance has a shape the compiled code does not model (a primitive extension such as
// "_birthDate" on the path, a null where a Reference should be, …) it throws DEOPT and the caller evaluates
// that one parameter with the engine instead, so unusual data is still indexed exactly as before.
import {
  AsAtom,
  DotAtom,
  FhirPathAtom,
  FunctionAtom,
  IsAtom,
  SymbolAtom,
  UnionAtom,
  capitalize,
  getElementDefinition,
  toTypedValue,
} from '@medplum/core';
import { parseReference } from './reference.ts';

/** The values an extractor found, in FHIRPath order, as parallel arrays (no object per value). */
export class ValueSink {
  types: string[] = [];
  values: unknown[] = [];
  length = 0;

  push(type: string, value: unknown): void {
    this.types[this.length] = type;
    this.values[this.length] = value;
    this.length++;
  }

  clear(): void {
    for (let i = 0; i < this.length; i++) this.values[i] = undefined;
    this.length = 0;
  }
}

class Deopt extends Error {}
/** Thrown by compiled code for instance shapes it does not model; the caller falls back to FHIRPath. */
export const DEOPT: Error = new Deopt('compiled search parameter cannot handle this instance');

/** Extracts one parameter's values from a resource into the sink (throws DEOPT to ask for the fallback). */
export type Extractor = (resource: Record<string, unknown>, sink: ValueSink) => void;

export interface CompiledExpression {
  extract: Extractor;
  /** FHIRPath `|` removes duplicates from the combined result. */
  union: boolean;
}

type Op =
  | { kind: 'child'; name: string }
  | { kind: 'ofType'; type: string }
  | { kind: 'whereResolveIs'; type: string };

/** Processes one value (of FHIR datatype `type`) at some point along a path. */
type Nav = (value: any, type: string, sink: ValueSink) => void;

class Uncompilable extends Error {}

/**
 * Compiles a parsed expression for one resource type, or returns undefined when it is not one of the
 * supported shapes (the caller then keeps using the FHIRPath program).
 */
export function compileExpression(program: unknown, resourceType: string, resourceTypes: ReadonlySet<string>): CompiledExpression | undefined {
  const branches = branchesOf(program, resourceType, resourceTypes);
  if (!branches) return undefined;
  let navs: Nav[];
  try {
    navs = branches.map((ops) => compileChain(ops, 0, resourceType)).filter((n): n is Nav => n !== null);
  } catch (err) {
    if (err instanceof Uncompilable) return undefined;
    throw err;
  }
  const union = branches.length > 1;
  if (navs.length === 0) return { extract: () => {}, union };
  if (navs.length === 1) {
    const [nav] = navs;
    return { extract: (resource, sink) => nav(resource, resourceType, sink), union };
  }
  return {
    extract: (resource, sink) => {
      for (let i = 0; i < navs.length; i++) navs[i](resource, resourceType, sink);
    },
    union,
  };
}

// ---- expression shapes -----------------------------------------------------------------------------

function branchesOf(atom: unknown, resourceType: string, resourceTypes: ReadonlySet<string>): Op[][] | undefined {
  if (atom instanceof FhirPathAtom) return branchesOf(atom.child, resourceType, resourceTypes);
  if (atom instanceof UnionAtom) {
    const left = branchesOf(atom.left, resourceType, resourceTypes);
    const right = left && branchesOf(atom.right, resourceType, resourceTypes);
    return right && [...left!, ...right];
  }
  const chain = chainOf(atom, resourceType, resourceTypes);
  return chain && [chain];
}

/** A path from the resource: `Type`, then steps. */
function chainOf(atom: unknown, resourceType: string, resourceTypes: ReadonlySet<string>): Op[] | undefined {
  if (atom instanceof SymbolAtom) return atom.name === resourceType ? [] : undefined;
  if (atom instanceof DotAtom) {
    const left = chainOf(atom.left, resourceType, resourceTypes);
    if (!left) return undefined;
    const step = stepOf(atom.right, resourceTypes);
    if (step === undefined) return undefined;
    return step === null ? left : [...left, step];
  }
  if (atom instanceof AsAtom) {
    const left = chainOf(atom.left, resourceType, resourceTypes);
    if (!left || !(atom.right instanceof SymbolAtom)) return undefined;
    return [...left, { kind: 'ofType', type: atom.right.name }];
  }
  return undefined;
}

/** One step after a dot; null for a step that does nothing, undefined for one we do not compile. */
function stepOf(atom: unknown, resourceTypes: ReadonlySet<string>): Op | null | undefined {
  if (atom instanceof SymbolAtom) {
    // Element names only: not $this, %variables or type names (which the engine treats specially).
    return /^[a-z][A-Za-z0-9]*$/.test(atom.name) ? { kind: 'child', name: atom.name } : undefined;
  }
  if (atom instanceof FunctionAtom) {
    const args = atom.args as unknown[];
    if (atom.name === 'as' && args.length === 1) return null;
    if (atom.name === 'ofType' && args.length === 1 && args[0] instanceof SymbolAtom) return { kind: 'ofType', type: args[0].name };
    if (atom.name === 'where' && args.length === 1) {
      const is = args[0];
      if (
        is instanceof IsAtom &&
        is.left instanceof FunctionAtom &&
        is.left.name === 'resolve' &&
        is.left.args.length === 0 &&
        is.right instanceof SymbolAtom &&
        resourceTypes.has(is.right.name)
      ) {
        return { kind: 'whereResolveIs', type: is.right.name };
      }
    }
  }
  return undefined;
}

// ---- code generation (closures) --------------------------------------------------------------------

const terminal: Nav = (value, type, sink) => sink.push(type, value);

/** null: statically yields nothing (e.g. `as Quantity` after an element that can never be a Quantity). */
function compileChain(ops: Op[], i: number, type: string): Nav | null {
  if (i === ops.length) return terminal;
  const op = ops[i];
  switch (op.kind) {
    case 'child':
      return compileChild(ops, i, type, op.name);
    case 'ofType': {
      if (type !== 'Resource') return type === op.type ? compileChain(ops, i + 1, type) : null;
      const next = compileChain(ops, i + 1, op.type);
      const wanted = op.type;
      return next && ((v, t, sink) => {
        if (t === wanted) next(v, t, sink);
      });
    }
    case 'whereResolveIs': {
      const next = compileChain(ops, i + 1, type);
      const wanted = op.type;
      return (v, t, sink) => {
        if (resolvesTo(v, wanted) && next) next(v, t, sink);
      };
    }
  }
}

interface Variant {
  key: string;
  extKey: string;
  type: string;
  next: Nav | null;
}

function compileChild(ops: Op[], i: number, type: string, name: string): Nav {
  // A Resource-typed element's datatype is only known at run time (its resourceType).
  if (type === 'Resource' || type === 'DomainResource') throw new Uncompilable();
  const element = getElementDefinition(type, name);
  if (!element) {
    // Primitives have no children; an object where a primitive belongs is the engine's business.
    if (/^[a-z]/.test(type)) {
      return (v) => {
        if (v !== null && typeof v === 'object') throw DEOPT;
      };
    }
    throw new Uncompilable();
  }
  const types = element.type ?? [];
  if (types.length === 0) throw new Uncompilable();
  const last = element.path.slice(element.path.lastIndexOf('.') + 1);
  // Same resolution as the engine: the first variant present (value or "_" extension) wins.
  const variants: Variant[] = types.map((t) => {
    const key = last.replace('[x]', capitalize(t.code));
    const vt = t.code === 'Element' || t.code === 'BackboneElement' ? types[0].code : t.code;
    return { key, extKey: `_${key}`, type: vt, next: compileChain(ops, i + 1, vt) };
  });
  if (variants.length === 1) {
    const { key, extKey, type: vt, next } = variants[0];
    return (v, _t, sink) => {
      if (v === null || typeof v !== 'object') return;
      if (v.resourceType === name) throw DEOPT;
      const raw = v[key];
      if (v[extKey]) throw DEOPT;
      if (raw !== undefined && next !== null) emit(raw, vt, next, sink);
    };
  }
  return (v, _t, sink) => {
    if (v === null || typeof v !== 'object') return;
    if (v.resourceType === name) throw DEOPT;
    for (let k = 0; k < variants.length; k++) {
      const variant = variants[k];
      const raw = v[variant.key];
      const ext = v[variant.extKey];
      if (raw === undefined && ext === undefined) continue;
      if (ext) throw DEOPT;
      if (raw !== undefined && variant.next !== null) emit(raw, variant.type, variant.next, sink);
      return;
    }
  };
}

/** An element's value: arrays flatten, empty values are skipped, Resource-typed values take their resourceType. */
function emit(raw: any, type: string, next: Nav, sink: ValueSink): void {
  if (Array.isArray(raw)) {
    for (let j = 0; j < raw.length; j++) {
      const e = raw[j];
      if (e !== undefined) next(e, type === 'Resource' ? typeOfResource(e) : type, sink);
    }
  } else if (!isEmpty(raw)) {
    next(raw, type === 'Resource' ? typeOfResource(raw) : type, sink);
  }
}

function typeOfResource(value: any): string {
  return value && typeof value === 'object' && 'resourceType' in value ? value.resourceType : 'Resource';
}

/** @medplum/core's isEmpty: null, undefined, '', [] and {} are empty. */
function isEmpty(v: any): boolean {
  if (v === null) return true;
  if (typeof v === 'string') return v === '';
  if (typeof v !== 'object') return false;
  if ('length' in v && v.length > 0) return false;
  for (const k in v) if (Object.hasOwn(v, k)) return false;
  return true;
}

const ABSOLUTE_URL = /^[A-Za-z][A-Za-z0-9+.-]*:\/\//;

/**
 * `resolve() is T` for one value, as @medplum/core evaluates it (the text before the first "/" or "?" of
 * the reference is the type; urn:uuid and "#contained" references resolve to nothing), except that an
 * absolute URL ("https://elsewhere/fhir/Patient/1") is judged by its type segment, as parseReference reads
 * it, where the engine would take "https:" as the type.
 */
function resolvesTo(value: any, wanted: string): boolean {
  let ref: unknown;
  if (typeof value === 'string') ref = value;
  else if (typeof value === 'object') {
    if (value === null) throw DEOPT; // the engine fails on it; let it decide
    if (value.resource) {
      const resolved = toTypedValue(value.resource);
      return resolved.type === wanted || (typeof resolved.value === 'object' && resolved.value?.resourceType === wanted);
    }
    if (value.reference) ref = value.reference;
    else if (value.type && value.identifier) ref = `${value.type}?identifier=${value.identifier.system}|${value.identifier.value}`;
  }
  if (ref === undefined) return false;
  if (typeof ref !== 'string') throw DEOPT;
  if (ABSOLUTE_URL.test(ref)) return parseReference(ref)?.type === wanted;
  const q = ref.indexOf('?');
  if (q >= 0) return ref.slice(0, q) === wanted;
  const slash = ref.indexOf('/');
  return slash >= 0 && ref.slice(0, slash) === wanted;
}

// ---- union de-duplication ---------------------------------------------------------------------------

/** Removes later values equal to an earlier one, by @medplum/core's FHIRPath equality (removeDuplicates). */
export function removeDuplicates(sink: ValueSink): void {
  let kept = 0;
  for (let i = 0; i < sink.length; i++) {
    const type = sink.types[i];
    const value = sink.values[i];
    let duplicate = false;
    for (let j = 0; j < kept; j++) {
      if (fhirPathEquals(type, value, sink.types[j], sink.values[j])) {
        duplicate = true;
        break;
      }
    }
    if (!duplicate) {
      sink.types[kept] = type;
      sink.values[kept] = value;
      kept++;
    }
  }
  for (let i = kept; i < sink.length; i++) sink.values[i] = undefined;
  sink.length = kept;
}

function fhirPathEquals(xType: string, xRaw: unknown, yType: string, yRaw: unknown): boolean {
  // The engine compares value?.valueOf(); compiled code never sees boxed primitives (it deopts first).
  const x = xRaw ?? undefined;
  const y = yRaw ?? undefined;
  if (typeof x === 'number' && typeof y === 'number') return Math.abs(x - y) < 1e-8;
  if (isQuantity(x) && isQuantity(y)) {
    return Math.abs(x.value - y.value) < 0.01 && (x.unit === y.unit || x.code === y.code || x.unit === y.code || x.code === y.unit);
  }
  if (typeof x === 'object' && typeof y === 'object') return xType === yType && deepEquals(x as object, y as object);
  return x === y;
}

function isQuantity(v: any): v is { value: number; unit?: unknown; code?: unknown } {
  return !!(v && typeof v === 'object' && 'value' in v && typeof v.value === 'number');
}

function deepEquals(a: any, b: any): boolean {
  const keysA = Object.keys(a);
  if (keysA.length !== Object.keys(b).length) return false;
  for (const key of keysA) {
    const va = a[key];
    const vb = b[key];
    if (va !== null && typeof va === 'object' && vb !== null && typeof vb === 'object') {
      if (!deepEquals(va, vb)) return false;
    } else if (va !== vb) return false;
  }
  return true;
}
