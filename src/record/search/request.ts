// Parses FHIR search query parameters into a SearchRequest the SQL compiler can trust: every parameter
// is known for the type, every value is well-formed, and limits are enforced before any SQL is built.
import { definitions, type SearchParamDef, type SearchParamType } from '../definitions.ts';
import { badRequest } from '../outcome.ts';

export type QueryParams = [string, string][];

export const DEFAULT_COUNT = 20;
export const MAX_COUNT = 1000;
const MAX_VALUES = 100;
/** Each filter is a subquery; beyond a few dozen, planning time explodes (PostgreSQL) or SQLite's limits hit. */
export const MAX_FILTERS = 40;
const MAX_TOTAL_VALUES = 500;

export interface ParamRef {
  code: string;
  type: SearchParamType;
  def?: SearchParamDef; // absent for _id and _lastUpdated, which are columns
}

export interface Filter {
  resourceType: string;
  param: ParamRef;
  modifier?: string;
  /** Reference chain: the filter applies to the resources this reference points at. */
  chain?: { targetTypes: string[]; filter: Filter[] };
  /** Reverse chain (_has): matches resources that a `sourceType` matching `filter` points at through `sourceParam`. */
  has?: { sourceType: string; sourceParam: string; filter: Filter };
  values: string[]; // OR-ed
}

export interface Include { sourceType: string; param: string | '*'; targetType?: string; iterate: boolean }

export interface SearchRequest {
  resourceType: string;
  filters: Filter[]; // AND-ed
  sort: { param: ParamRef; descending: boolean }[];
  count: number;
  offset: number;
  total: 'none' | 'estimate' | 'accurate';
  summary?: 'count' | 'false';
  elements?: string[];
  include: Include[];
  revinclude: Include[];
  /** The parameters actually used, for the self link. */
  used: QueryParams;
}

/**
 * Unknown parameters: refused (strict) or ignored (lenient), as the client's Prefer: handling asks. Conditional
 * criteria ('criteria') are always refused and the client has no say: an ignored parameter would widen the
 * match, up to every resource of the type.
 */
export type Handling = 'strict' | 'lenient' | 'criteria';

const RESULT_PARAMS = new Set(['_count', '_offset', '_sort', '_total', '_summary', '_elements', '_include', '_revinclude', '_format', '_pretty']);

/** A parameter that shapes the answer (paging, sorting, summary, includes, format) rather than choosing what matches. */
export function isResultParam(name: string): boolean {
  return RESULT_PARAMS.has(name) || name.startsWith('_include') || name.startsWith('_revinclude');
}

export function paramRef(resourceType: string, code: string): ParamRef | undefined {
  if (code === '_id') return { code, type: 'token' };
  if (code === '_lastUpdated') return { code, type: 'date' };
  const def = definitions().searchParams(resourceType).get(code);
  return def ? { code, type: def.type, def } : undefined;
}

export function parseSearchRequest(resourceType: string, query: QueryParams, handling: Handling = 'lenient'): SearchRequest {
  const req: SearchRequest = { resourceType, filters: [], sort: [], count: DEFAULT_COUNT, offset: 0, total: 'accurate', include: [], revinclude: [], used: [] };
  for (const [rawName, value] of query) {
    // PostgreSQL cannot hold NUL in text and SQLite's LIKE stops at it: refuse it before any SQL.
    if (rawName.includes('\0') || value.includes('\0')) throw badRequest('A search parameter contains a NUL character.');
    const name = rawName.trim();
    if (isResultParam(name)) {
      applyResultParam(req, name, value);
      req.used.push([name, value]);
      continue;
    }
    const filter = parseFilter(resourceType, name, value, 1);
    if (!filter) {
      if (handling === 'lenient') continue;
      throw unknownParameter(resourceType, name, handling);
    }
    req.filters.push(filter);
    req.used.push([name, value]);
  }
  if (req.filters.length > MAX_FILTERS) throw badRequest(`A search may have at most ${MAX_FILTERS} search parameters (this one has ${req.filters.length}); narrow it down.`);
  const values = req.filters.reduce((n, f) => n + f.values.length + (f.chain?.filter.reduce((m, c) => m + c.values.length, 0) ?? 0) + (f.has?.filter.values.length ?? 0), 0);
  if (values > MAX_TOTAL_VALUES) throw badRequest(`A search may have at most ${MAX_TOTAL_VALUES} values in all (this one has ${values}).`);
  return req;
}

function unknownParameter(resourceType: string, name: string, handling: Exclude<Handling, 'lenient'>) {
  if (handling === 'strict') return badRequest(`Unknown search parameter '${name}' for ${resourceType}. Remove it or send 'Prefer: handling=lenient'.`, name);
  // Lenient handling is never offered here: it does not apply to criteria, so the only way on is to fix them.
  return badRequest(`Unknown search parameter '${name}' for ${resourceType} in conditional criteria. Remove it or correct it to a search parameter ${resourceType} has: criteria are always matched strictly, since ignoring a parameter would widen the match to more ${resourceType} resources than meant.`, name);
}

function parseFilter(resourceType: string, name: string, value: string, chainDepthLeft: number): Filter | undefined {
  if (name.startsWith('_has:')) return parseReverseChain(resourceType, name, value, chainDepthLeft);
  const dot = name.indexOf('.');
  const head = dot >= 0 ? name.slice(0, dot) : name;
  const [code, modifier] = head.split(':', 2) as [string, string | undefined];
  const param = paramRef(resourceType, code);
  if (!param) return undefined;
  if (dot >= 0) {
    if (param.type !== 'reference') throw badRequest(`'${code}' is not a reference parameter, so it cannot be chained ('${name}').`, name);
    if (chainDepthLeft <= 0) throw badRequest(`Only one level of chaining is supported ('${name}').`, name);
    const rest = name.slice(dot + 1);
    const candidates = modifier ? [modifier] : param.def!.targets;
    const chained: Filter[] = [];
    const targetTypes: string[] = [];
    for (const target of candidates) {
      if (!definitions().resourceTypes.has(target)) throw badRequest(`Unknown resource type '${target}' in '${name}'.`, name);
      if (rest.includes('.')) throw badRequest(`Only one level of chaining is supported ('${name}').`, name);
      const inner = parseFilter(target, rest, value, chainDepthLeft - 1);
      if (inner) {
        chained.push(inner);
        targetTypes.push(target);
      }
    }
    if (!chained.length) throw badRequest(`'${rest}' is not a search parameter of ${candidates.join(' or ')} (in '${name}').`, name);
    return { resourceType, param, chain: { targetTypes, filter: chained }, values: [] };
  }
  checkModifier(param, modifier, name);
  const values = splitValues(value);
  if (values.length > MAX_VALUES) throw badRequest(`Too many values for '${name}' (at most ${MAX_VALUES}).`, name);
  if (!values.length || values.some((v) => v === '')) throw badRequest(`Search parameter '${name}' has an empty value.`, name);
  if (modifier === 'missing' && !values.every((v) => v === 'true' || v === 'false')) throw badRequest(`'${name}' takes true or false.`, name);
  return { resourceType, param, modifier, values };
}

/** `_has:Observation:patient:code=1234-5` on Patient: patients some matching Observation points at. One level. */
function parseReverseChain(resourceType: string, name: string, value: string, chainDepthLeft: number): Filter {
  const [, sourceType, sourceParam, ...rest] = name.split(':');
  const innerName = rest.join(':');
  if (chainDepthLeft <= 0 || innerName.startsWith('_has:')) throw badRequest(`Only one level of _has is supported, and not inside a chain ('${name}').`, name);
  if (!sourceType || !sourceParam || !innerName) throw badRequest(`_has takes the form _has:[type]:[reference parameter]:[parameter]=value, not '${name}'.`, name);
  if (!definitions().resourceTypes.has(sourceType)) throw badRequest(`Unknown resource type '${sourceType}' in '${name}'.`, name);
  const ref = paramRef(sourceType, sourceParam);
  if (!ref || ref.type !== 'reference') throw badRequest(`'${sourceParam}' is not a reference parameter of ${sourceType} (in '${name}').`, name);
  if (ref.def?.targets.length && !ref.def.targets.includes(resourceType)) throw badRequest(`${sourceType}.${sourceParam} never points at a ${resourceType} (in '${name}').`, name);
  if (innerName.includes('.')) throw badRequest(`A chain inside _has is not supported ('${name}').`, name);
  const filter = parseFilter(sourceType, innerName, value, 0);
  if (!filter) throw badRequest(`'${innerName}' is not a search parameter of ${sourceType} (in '${name}').`, name);
  return { resourceType, param: { code: '_has', type: 'reference' }, has: { sourceType, sourceParam, filter }, values: [] };
}

const MODIFIERS: Record<string, string[]> = {
  string: ['exact', 'contains', 'missing'],
  token: ['not', 'text', 'missing'],
  date: ['missing'],
  reference: ['missing'],
  number: ['missing'],
  quantity: ['missing'],
  uri: ['below', 'above', 'missing'],
};

function checkModifier(param: ParamRef, modifier: string | undefined, name: string): void {
  if (!modifier) return;
  const allowed = MODIFIERS[param.type] ?? [];
  if (param.type === 'reference' && definitions().resourceTypes.has(modifier)) return; // subject:Patient=123
  if (!allowed.includes(modifier)) {
    throw badRequest(`Modifier ':${modifier}' is not supported for ${param.type} parameter '${param.code}' (supported: ${allowed.map((m) => ':' + m).join(', ') || 'none'}).`, name);
  }
}

/**
 * Text as one search value, taken literally: FHIR search reads "," as "or" and "\", "|" and "$" as its own
 * syntax, so text from elsewhere (a message's stay number, a ward's name) is escaped before it is searched
 * for. Unescaped, a stay number "A1,B2" finds stay B2, someone else's.
 */
export function escapeSearchValue(text: string): string {
  return text.replace(/[\\,|$]/g, (c) => `\\${c}`);
}

/** Comma separates OR-ed values; "\," is a literal comma. */
export function splitValues(value: string): string[] {
  const out: string[] = [];
  let cur = '';
  for (let i = 0; i < value.length; i++) {
    const ch = value[i];
    if (ch === '\\' && i + 1 < value.length && (value[i + 1] === ',' || value[i + 1] === '\\' || value[i + 1] === '|' || value[i + 1] === '$')) {
      cur += value[++i];
    } else if (ch === ',') {
      out.push(cur);
      cur = '';
    } else cur += ch;
  }
  out.push(cur);
  return out;
}

function applyResultParam(req: SearchRequest, name: string, value: string): void {
  switch (name) {
    case '_count': {
      const n = Number(value);
      if (!Number.isInteger(n) || n < 0) throw badRequest(`_count must be a whole number of 0 or more, not '${value}'.`, '_count');
      if (n > MAX_COUNT) throw badRequest(`_count may be at most ${MAX_COUNT}; page through larger results with the next link.`, '_count');
      req.count = n;
      return;
    }
    case '_offset': {
      const n = Number(value);
      if (!Number.isInteger(n) || n < 0 || n > 10_000_000) throw badRequest(`_offset must be a whole number from 0 to 10000000, not '${value}'.`, '_offset');
      req.offset = n;
      return;
    }
    case '_total':
      if (value !== 'none' && value !== 'estimate' && value !== 'accurate') throw badRequest(`_total must be none, estimate or accurate, not '${value}'.`, '_total');
      req.total = value;
      return;
    case '_summary':
      if (value !== 'count' && value !== 'false') throw badRequest(`_summary supports count and false here, not '${value}'; use _elements to choose elements.`, '_summary');
      req.summary = value as SearchRequest['summary'];
      return;
    case '_elements':
      req.elements = parseElements(value);
      return;
    case '_sort':
      for (const key of value.split(',').map((k) => k.trim()).filter(Boolean)) {
        const descending = key.startsWith('-');
        const code = descending ? key.slice(1) : key;
        const param = paramRef(req.resourceType, code);
        if (!param) throw badRequest(`Cannot sort ${req.resourceType} by unknown parameter '${code}'.`, '_sort');
        req.sort.push({ param, descending });
      }
      if (req.sort.length > 5) throw badRequest('_sort takes at most 5 keys.', '_sort');
      return;
    case '_format':
    case '_pretty':
      return;
  }
  const iterate = name.endsWith(':iterate') || name.endsWith(':recurse');
  const base = name.replace(/:(iterate|recurse)$/, '');
  if (base !== '_include' && base !== '_revinclude') throw badRequest(`Unknown parameter '${name}'.`, name);
  const include = parseInclude(value, iterate, name);
  (base === '_include' ? req.include : req.revinclude).push(include);
  if (req.include.length + req.revinclude.length > 10) throw badRequest('At most 10 _include/_revinclude parameters are allowed.', name);
}

function parseInclude(value: string, iterate: boolean, name: string): Include {
  const [sourceType, param, targetType] = value.split(':');
  if (sourceType === '*' || !definitions().resourceTypes.has(sourceType)) throw badRequest(`${name}: '${sourceType}' is not a resource type (expected Type:param[:TargetType]).`, name);
  if (!param) throw badRequest(`${name}: expected Type:param[:TargetType], not '${value}'.`, name);
  if (param !== '*') {
    const p = paramRef(sourceType, param);
    if (!p || p.type !== 'reference') throw badRequest(`${name}: '${param}' is not a reference parameter of ${sourceType}.`, name);
  }
  if (targetType && !definitions().resourceTypes.has(targetType)) throw badRequest(`${name}: '${targetType}' is not a resource type.`, name);
  return { sourceType, param, targetType, iterate };
}

/** `_elements` (on a search, a read or a vread): top-level element names separated by commas. */
export function parseElements(value: string): string[] {
  const elements = value.split(',').map((e) => e.trim()).filter(Boolean);
  if (elements.some((e) => !/^[a-zA-Z][a-zA-Z0-9]*(\[x\])?$/.test(e))) throw badRequest(`_elements takes top-level element names separated by commas, not '${value}'.`, '_elements');
  return elements;
}
