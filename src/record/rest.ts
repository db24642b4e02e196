// Routes a FHIR RESTful request (from HTTP or from a batch/transaction entry) to its interaction and
// shapes the answer. Handlers return a FhirResponse; only the HTTP layer writes to the wire.
import type { SqlDriver, SqlExecutor } from './storage/driver.ts';
import { definitions } from './definitions.ts';
import { FhirError, badRequest, methodNotAllowed, notFound, successOutcome, unsupportedMediaType } from './outcome.ts';
import * as op from './interactions.ts';
import { parseElements, parseSearchRequest, type Handling, type QueryParams, type SearchRequest, type Filter } from './search/request.ts';
import { executeSearch, type SearchResult } from './search/execute.ts';
import { queryString, searchsetBundle, subset } from './bundle.ts';
import type { WrittenResource } from './storage/writePath.ts';
import { capabilityStatement } from './capability.ts';
import { everything } from './everything.ts';
import { rewrapped, type AccessControl, type AccessEvent, type RecordInteraction } from './accessControl.ts';
import { processBundle } from './transaction.ts';
import { findOperation, type FhirOperations } from './operations.ts';
import type { ResourceTypeService, ResourceTypeServices } from './typeService.ts';

export interface FhirRequest {
  method: string;
  /** Path below the FHIR base, without leading slash: "Patient/123/_history/2". */
  path: string;
  query: QueryParams;
  body?: unknown;
  contentType?: string;
  ifMatch?: string;
  ifNoneExist?: string;
  /** Conditional read: answer 304 when the client already holds this version. */
  ifNoneMatch?: string;
  prefer?: string;
}

export interface FhirResponse {
  status: number;
  /** A JSON value, or JSON text already serialised. */
  body?: unknown;
  headers?: Record<string, string>;
}

export interface RestContext {
  base: string;
  driver: SqlDriver;
  /** What the caller may do; checked by every interaction below. */
  access: AccessControl;
  /** Set when running inside a transaction bundle: every interaction uses this executor. */
  tx?: SqlExecutor;
  /** Inside a transaction bundle: the Patients its entries have created so far (op.Ctx.createdPatients). */
  createdPatients?: Set<string>;
  /** Receives what each interaction touched, for the audit trail. */
  onAccess?: (event: AccessEvent) => void;
  /** Operations other capabilities registered (instance level: [type]/[id]/$[name]). */
  operations?: FhirOperations;
  /** Types kept and served by other capabilities (read and search only); never stored in the record. */
  services?: ResourceTypeServices;
}

type Handler = (ctx: RestContext, req: FhirRequest, parts: string[]) => Promise<FhirResponse>;

export async function handleFhirRequest(ctx: RestContext, req: FhirRequest): Promise<FhirResponse> {
  const parts = req.path.split('/').filter(Boolean).map(decodeSegment);
  const method = req.method.toUpperCase();
  if (parts.length === 0) {
    if (method === 'POST') {
      return processBundle(ctx, req.body);
    }
    throw methodNotAllowed('Use GET [base]/[type] to search, or POST a batch/transaction Bundle to [base].', ['POST']);
  }
  if (parts[0] === 'metadata') {
    if (method !== 'GET') throw methodNotAllowed('metadata only answers GET.', ['GET']);
    return { status: 200, body: capabilityStatement(ctx.base, ctx.services, ctx.operations) };
  }
  if (parts[0] === '_history') {
    if (parts.length > 1) throw notFound(`Nothing is served at ${req.path}; system history is [base]/_history.`);
    ctx.access.require('*', 'read');
    const { body, patientIds } = await op.history(interactionCtx(ctx), ctx.base, {}, req.query);
    report(ctx, { interaction: 'history', patientIds, query: queryString(req.query) });
    return { status: 200, body };
  }
  const type = parts[0];
  if (!definitions().resourceTypes.has(type)) throw notFound(`'${type}' is not a FHIR R4 resource type this server knows.`);
  if (parts.length === 3 && findOperation(ctx.operations, type, parts[2])) return operation(ctx, req, parts);
  const service = serviceFor(ctx, type);
  if (service) return served(ctx, service, method, req, parts);
  if (parts.length === 3 && parts[0] === 'Patient' && method === 'GET' && serviceFor(ctx, parts[2])) {
    // Patient/X/AuditEvent is AuditEvent?patient=X
    return served(ctx, serviceFor(ctx, parts[2])!, method, { ...req, query: [['patient', `Patient/${parts[1]}`], ...req.query] }, [parts[2]]);
  }
  const handler = route(method, parts);
  if (!handler) throw methodNotAllowed(`${method} ${req.path} is not a supported FHIR interaction.`, allowedMethods(parts, req.query.length > 0));
  return handler(ctx, req, parts);
}

/** A registered operation, given the caller's own way into the record (inside no transaction of theirs). */
async function operation(ctx: RestContext, req: FhirRequest, [type, id, name]: string[]): Promise<FhirResponse> {
  const op = findOperation(ctx.operations, type, name)!;
  const method = req.method.toUpperCase();
  if (!op.methods.includes(method as 'GET' | 'POST')) throw methodNotAllowed(`${name} answers ${op.methods.join(' and ')}, not ${method}.`, op.methods);
  if (ctx.tx) throw methodNotAllowed(`${name} cannot run inside a transaction or batch; call it on its own.`, op.methods);
  const inner: RestContext = { ...ctx, operations: undefined };
  return op.invoke({
    base: ctx.base, access: ctx.access, resourceType: type, id, method: method as 'GET' | 'POST', query: req.query, body: req.body, ifMatch: req.ifMatch,
    fhir: (request) => handleFhirRequest(inner, request),
  });
}

export function serviceFor(ctx: RestContext, type: string): ResourceTypeService | undefined {
  return ctx.services && Object.hasOwn(ctx.services, type) ? ctx.services[type] : undefined;
}

const WRITE_INTERACTION: Record<string, RecordInteraction> = { POST: 'create', PUT: 'update', PATCH: 'update', DELETE: 'delete' };

/** A type served by another capability: read and search go to it; writes are refused (after the access check, which may say why). */
async function served(ctx: RestContext, service: ResourceTypeService, method: string, req: FhirRequest, parts: string[]): Promise<FhirResponse> {
  const [type, second] = parts;
  if ((method === 'GET' && parts.length === 1) || (method === 'POST' && second === '_search' && parts.length === 2)) {
    ctx.access.require(type, 'search');
    const query = method === 'POST' ? searchBody(req) : req.query;
    const answer = await service.search({ base: ctx.base, access: ctx.access, query, strict: handling(req) === 'strict' });
    report(ctx, { interaction: 'search', resourceType: type, patientIds: answer.patientIds, query: queryString(query) });
    return { status: 200, body: answer.body };
  }
  if (method === 'GET' && parts.length === 2 && !second.startsWith('$') && second !== '_history') {
    ctx.access.require(type, 'read');
    const answer = await service.read({ base: ctx.base, access: ctx.access, id: second });
    report(ctx, { interaction: 'read', resourceType: type, id: second, patientIds: answer.patientIds });
    return { status: 200, body: answer.body };
  }
  const write = WRITE_INTERACTION[method];
  if (write) ctx.access.require(type, write);
  throw methodNotAllowed(`${type} is read-only here: it can be read (GET ${type}/[id]) and searched (GET ${type}?…), not ${method === 'GET' ? 'asked for its history or operations' : 'written'}.`, servedMethods(parts));
}

function decodeSegment(segment: string): string {
  let decoded: string;
  try {
    decoded = decodeURIComponent(segment);
  } catch {
    throw badRequest(`'${segment}' in the URL is not valid percent-encoding.`);
  }
  if (decoded.includes('\0')) throw badRequest('The URL contains a NUL character.');
  return decoded;
}

function route(method: string, parts: string[]): Handler | undefined {
  const [, second, third, fourth] = parts;
  switch (parts.length) {
    case 1:
      return ({ GET: searchType, POST: create, PUT: conditionalUpdate, DELETE: conditionalDelete } as Record<string, Handler>)[method];
    case 2:
      // Ids never start with _ or $: these are the type's own endpoints, whatever the method, never an instance.
      if (second === '_search') return method === 'POST' ? searchType : undefined;
      if (second === '_history') return method === 'GET' ? typeHistory : undefined;
      if (second.startsWith('$')) return undefined;
      return ({ GET: read, PUT: update, PATCH: patch, DELETE: remove } as Record<string, Handler>)[method];
    case 3:
      if (third === '_history' && method === 'GET') return instanceHistory;
      if (third === '$everything' && parts[0] === 'Patient' && (method === 'GET' || method === 'POST')) return everythingHandler;
      if (parts[0] === 'Patient' && method === 'GET' && definitions().resourceTypes.has(third)) return compartmentSearch;
      return undefined;
    case 4:
      if (third === '_history' && method === 'GET' && fourth) return vread;
      return undefined;
  }
  return undefined;
}

const METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'];

/**
 * The methods a path takes, for a 405's Allow: those route() has a handler for, so the two cannot drift
 * apart. A type without a query is not something PUT or DELETE act on: they need criteria.
 */
function allowedMethods(parts: string[], hasCriteria: boolean): string[] {
  const needCriteria = parts.length === 1 && !hasCriteria ? ['PUT', 'DELETE'] : [];
  return METHODS.filter((m) => route(m, parts) !== undefined && !needCriteria.includes(m));
}

/** The methods a path of a read-only type (served()) takes: search and read, nothing else. */
function servedMethods([, second, ...rest]: string[]): string[] {
  if (second === undefined) return ['GET'];
  if (rest.length || second === '_history' || second.startsWith('$')) return [];
  return second === '_search' ? ['POST'] : ['GET'];
}

function interactionCtx(ctx: RestContext): op.Ctx {
  return { db: ctx.tx ?? ctx.driver, lock: ctx.driver.dialect === 'postgres', patients: ctx.access.patients, createdPatients: ctx.createdPatients, checkContent: contentCheck(ctx) };
}

/** Runs a write in the bundle's transaction, or in a transaction of its own. */
async function inWrite<T>(ctx: RestContext, fn: (c: op.Ctx) => Promise<T>): Promise<T> {
  if (ctx.tx) return fn(interactionCtx(ctx));
  return ctx.driver.transaction((tx) => fn({ db: tx, lock: ctx.driver.dialect === 'postgres', patients: ctx.access.patients, checkContent: contentCheck(ctx) }));
}

/** The caller's AccessControl.checkContent, bound to it (absent when it has none). */
function contentCheck(ctx: RestContext): op.Ctx['checkContent'] {
  const { access } = ctx;
  return access.checkContent ? (resource) => access.checkContent!(resource) : undefined;
}

function etag(versionId: number | string): string {
  return `W/"${versionId}"`;
}

export function parseIfMatch(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const m = /^(?:W\/)?"(\d{1,9})"$/.exec(value.trim()) ?? /^(\d{1,9})$/.exec(value.trim());
  if (!m) throw badRequest(`If-Match must be an ETag such as W/"3", not '${value}'.`, 'If-Match');
  return Number(m[1]);
}

/**
 * If-None-Match on a PUT: `*` makes it a create only (RFC 9110 §13.1.2), so a client that means "make this,
 * unless it is there" never overwrites what someone else made. No other value means anything for a write,
 * and ignoring one would quietly overwrite, so it is refused.
 */
export function parseIfNoneMatchOnPut(value: string | undefined): boolean {
  if (value === undefined) return false;
  if (value.trim() === '*') return true;
  throw badRequest(`If-None-Match on a PUT takes only *, to create the resource only if it does not exist yet, not '${value}'. To update a version you hold, use If-Match.`, 'If-None-Match');
}

function storedResponse(ctx: RestContext, type: string, id: string, row: { content: string; version_id: number; last_updated_ms: number }): FhirResponse {
  return {
    status: 200,
    body: row.content,
    headers: { ETag: etag(row.version_id), 'Last-Modified': new Date(Number(row.last_updated_ms)).toUTCString(), 'Content-Location': `${ctx.base}/${type}/${id}/_history/${row.version_id}` },
  };
}

export function writtenResponse(ctx: RestContext, req: FhirRequest, w: WrittenResource, status: number): FhirResponse {
  const interaction = req.method.toUpperCase() === 'PATCH' ? 'patch' : w.created ? 'create' : 'update';
  report(ctx, { interaction, resourceType: w.type, id: w.id, patientIds: w.patientId ? [w.patientId] : [] });
  const headers: Record<string, string> = {
    ETag: etag(w.versionId),
    'Last-Modified': new Date(w.lastUpdated).toUTCString(),
    Location: `${ctx.base}/${w.type}/${w.id}/_history/${w.versionId}`,
  };
  const prefer = preference(req.prefer, 'return');
  if (prefer === 'minimal') return { status, headers };
  if (prefer === 'operationoutcome') return { status, headers, body: successOutcome(`${w.type}/${w.id} saved as version ${w.versionId}.`) };
  return { status, headers, body: w.content };
}

/** POST [type]/_search: the URL's parameters and the form body's, together. */
function searchBody(req: FhirRequest): QueryParams {
  if (req.contentType && !req.contentType.startsWith('application/x-www-form-urlencoded')) {
    throw unsupportedMediaType('POST _search takes an application/x-www-form-urlencoded body.');
  }
  return [...req.query, ...(typeof req.body === 'string' ? [...new URLSearchParams(req.body)] : [])];
}

/** Strict only when asked for by name: an unknown handling is ignored, as RFC 7240 §2 has unknown preferences be. */
function handling(req: FhirRequest): Handling {
  return preference(req.prefer, 'handling') === 'strict' ? 'strict' : 'lenient';
}

/**
 * The value of the preference called `name` in a Prefer header, lower-cased and unquoted; undefined when it
 * is not there. Only its first appearance counts (RFC 7240 §2). Preferences are split on semicolons as well
 * as commas: clients write `return=minimal; handling=strict` meaning two preferences.
 */
function preference(prefer: string | undefined, name: string): string | undefined {
  for (const part of (prefer ?? '').split(/[,;]/)) {
    const [token, value = ''] = part.split('=', 2).map((s) => s.trim());
    if (token.toLowerCase() === name) return value.replace(/^"(.*)"$/, '$1').toLowerCase();
  }
  return undefined;
}

const searchType: Handler = async (ctx, req, [type]) => {
  ctx.access.require(type, 'search');
  const query = req.method.toUpperCase() === 'POST' ? searchBody(req) : req.query;
  const search = parseSearchRequest(type, query, handling(req));
  requireChainedSearch(ctx, search);
  const result = visible(ctx, await executeSearch(interactionCtx(ctx).db, search, { patients: ctx.access.patients }));
  report(ctx, { interaction: 'search', resourceType: type, patientIds: patientsIn(result), query: queryString(query) });
  return { status: 200, body: searchsetBundle(ctx.base, type, search, result) };
};

const compartmentSearch: Handler = async (ctx, req, [, patientId, type]) => {
  ctx.access.require(type, 'search');
  const search = parseSearchRequest(type, req.query, handling(req));
  requireChainedSearch(ctx, search);
  await op.assertInScope(interactionCtx(ctx), [{ type: 'Patient', id: patientId }]);
  const result = visible(ctx, await executeSearch(interactionCtx(ctx).db, search, { patientId, patients: ctx.access.patients }));
  report(ctx, { interaction: 'search', resourceType: type, patientIds: [patientId, ...patientsIn(result)], query: queryString(req.query) });
  return { status: 200, body: searchsetBundle(ctx.base, `Patient/${patientId}/${type}`, search, result) };
};

const everythingHandler: Handler = async (ctx, req, [, patientId]) => {
  ctx.access.require('Patient', 'read');
  const body = await everything(interactionCtx(ctx), ctx.base, patientId, req.query, ctx.access);
  report(ctx, { interaction: 'everything', resourceType: 'Patient', id: patientId, patientIds: [patientId], query: queryString(req.query) });
  return { status: 200, body };
};

function report(ctx: RestContext, event: AccessEvent): void {
  ctx.onAccess?.({ ...event, patientIds: [...new Set(event.patientIds)] });
}

function patientsIn(result: SearchResult): string[] {
  return [...result.matches, ...result.included].map((r) => r.patient_id).filter((p): p is string => p !== null);
}

/**
 * A chain, or a reverse chain (_has), reveals facts about the resources it passes through, so it needs
 * search rights on them too: `Organization?_has:Encounter:service-provider:subject=…` says where someone
 * is staying, and `Patient?_has:Condition:subject:code=…` who has a condition.
 */
function requireChainedSearch(ctx: Pick<RestContext, 'access'>, search: SearchRequest): void {
  const passedThrough = (filters: Filter[]): void => {
    for (const f of filters) {
      if (f.chain) {
        for (const inner of f.chain.filter) ctx.access.require(inner.resourceType, 'search');
        passedThrough(f.chain.filter);
      }
      if (f.has) {
        ctx.access.require(f.has.sourceType, 'search');
        passedThrough([f.has.filter]);
      }
    }
  };
  passedThrough(search.filters);
}

/**
 * Conditional criteria (If-None-Exist, conditional update and delete, a transaction's conditional
 * references) are a search run for the caller: whether they match tells what a search would, so they need
 * the same rights, checked before anything is evaluated. Without it a broker's `Patient?_id=X&_has:Condition…`
 * reference answered 200 or 412 by whether X has the condition.
 */
export function requireCriteriaSearch(access: AccessControl, type: string, query: QueryParams, what: string): void {
  try {
    access.require(type, 'search');
    requireChainedSearch({ access }, parseSearchRequest(type, query, 'criteria'));
  } catch (err) {
    if (!(err instanceof FhirError) || err.status !== 403) throw err;
    const prefix = `Matching '${type}?${queryString(query)}' (${what}) is a search, and needs the same rights: `;
    throw rewrapped(err, new FhirError(403, err.issues.map((i) => ({ ...i, diagnostics: prefix + (i.diagnostics ?? i.code) }))));
  }
}

/** Included resources of a type the caller may not read are left out, never shown. */
function visible(ctx: RestContext, result: SearchResult): SearchResult {
  return { ...result, included: result.included.filter((r) => ctx.access.mayRead(r.type)) };
}

const read: Handler = async (ctx, req, [type, id]) => {
  ctx.access.require(type, 'read');
  const row = await op.readResource(interactionCtx(ctx), type, id);
  report(ctx, { interaction: 'read', resourceType: type, id, patientIds: row.patient_id ? [row.patient_id] : [] });
  if (req.ifNoneMatch && req.ifNoneMatch.replace(/^W\//, '') === `"${row.version_id}"`) return { status: 304, headers: { ETag: etag(row.version_id) } };
  return subsetAsked(storedResponse(ctx, type, id, row), req);
};

const vread: Handler = async (ctx, req, [type, id, , vid]) => {
  ctx.access.require(type, 'read');
  const row = await op.vreadResource(interactionCtx(ctx), type, id, vid);
  report(ctx, { interaction: 'vread', resourceType: type, id, patientIds: row.patient_id ? [row.patient_id] : [] });
  return subsetAsked(storedResponse(ctx, type, id, row), req);
};

/**
 * `_elements` on a read or vread, as on a search: only the elements named (and what every resource needs),
 * tagged SUBSETTED. A tablet on a care home's slow connection can ask for a resident's name and birth date
 * without the rest.
 */
function subsetAsked(response: FhirResponse, req: FhirRequest): FhirResponse {
  const asked = req.query.filter(([name]) => name === '_elements').at(-1);
  if (!asked || typeof response.body !== 'string') return response;
  return { ...response, body: JSON.stringify(subset(JSON.parse(response.body), parseElements(asked[1]))) };
}

const create: Handler = async (ctx, req, [type]) => {
  ctx.access.require(type, 'create');
  const criteria = ifNoneExistCriteria(type, req.ifNoneExist);
  if (criteria) requireCriteriaSearch(ctx.access, type, criteria, 'If-None-Exist');
  if (req.contentType?.startsWith('application/x-www-form-urlencoded')) throw unsupportedMediaType(`POST ${type} takes a FHIR JSON resource (application/fhir+json); to search, POST to ${type}/_search.`);
  return inWrite(ctx, async (c) => {
    if (criteria) {
      const existing = await op.singleMatch(c, type, criteria);
      if (existing) {
        // The caller is shown the match as it stands: a read of it, in "who has looked at my record".
        const row = await op.readResource(c, type, existing);
        report(ctx, { interaction: 'read', resourceType: type, id: existing, patientIds: row.patient_id ? [row.patient_id] : [] });
        return storedResponse(ctx, type, existing, row);
      }
    }
    return writtenResponse(ctx, req, await op.createResource(c, type, req.body), 201);
  });
};

/**
 * The criteria of an If-None-Exist (header or Bundle entry), or undefined for a plain create. One sent
 * empty or blank is still a conditional create, without criteria: taken as a plain create it would store
 * a duplicate of whatever the client meant to find, so it is refused like any conditional request without them.
 */
export function ifNoneExistCriteria(type: string, ifNoneExist: string | undefined): QueryParams | undefined {
  if (ifNoneExist === undefined) return undefined;
  if (!ifNoneExist.trim()) {
    throw badRequest(`If-None-Exist is empty: a conditional ${type} create needs search criteria (e.g. identifier=system|value). For a plain create, leave it out.`, 'If-None-Exist');
  }
  return [...new URLSearchParams(ifNoneExist)];
}

const update: Handler = async (ctx, req, [type, id]) => {
  ctx.access.require(type, 'update');
  const ifMatch = parseIfMatch(req.ifMatch);
  const createOnly = parseIfNoneMatchOnPut(req.ifNoneMatch);
  return inWrite(ctx, async (c) => {
    const w = await op.updateResource(c, type, id, req.body, ifMatch, createOnly);
    return writtenResponse(ctx, req, w, w.created ? 201 : 200);
  });
};

const conditionalUpdate: Handler = async (ctx, req, [type]) => {
  ctx.access.require(type, 'update');
  ctx.access.require(type, 'search');
  if (!req.query.length) throw methodNotAllowed(`PUT ${type} needs an id (PUT ${type}/[id]) or search criteria (PUT ${type}?identifier=…).`, allowedMethods([type], false));
  requireCriteriaSearch(ctx.access, type, req.query, 'conditional update');
  const createOnly = parseIfNoneMatchOnPut(req.ifNoneMatch);
  return inWrite(ctx, async (c) => {
    const existing = await op.singleMatch(c, type, req.query);
    const body = req.body as Record<string, unknown> | undefined;
    if (existing && body && typeof body === 'object' && body.id !== undefined && body.id !== existing) {
      throw badRequest(`The body's id '${String(body.id)}' differs from the matching ${type}/${existing}.`, `${type}.id`);
    }
    const id = existing ?? (typeof body?.id === 'string' ? body.id : op.newId());
    const w = await op.updateResource(c, type, id, { ...(body ?? {}), id }, parseIfMatch(req.ifMatch), createOnly);
    return writtenResponse(ctx, req, w, w.created ? 201 : 200);
  });
};

const patch: Handler = async (ctx, req, [type, id]) => {
  ctx.access.require(type, 'update');
  if (req.contentType && !/^application\/(json-patch\+json|json)/.test(req.contentType)) {
    throw unsupportedMediaType('PATCH takes a JSON Patch document (Content-Type: application/json-patch+json).');
  }
  const ifMatch = parseIfMatch(req.ifMatch);
  return inWrite(ctx, async (c) => writtenResponse(ctx, req, await op.patchResource(c, type, id, req.body, ifMatch), 200));
};

const remove: Handler = async (ctx, req, [type, id]) => {
  ctx.access.require(type, 'delete');
  const ifMatch = parseIfMatch(req.ifMatch);
  return inWrite(ctx, async (c) => {
    const deleted = await op.removeResource(c, type, id, ifMatch);
    if (deleted) report(ctx, { interaction: 'delete', resourceType: type, id, patientIds: deleted.patientId ? [deleted.patientId] : [] });
    return deleted ? { status: 200, body: successOutcome(`${type}/${id} deleted (version ${deleted.versionId}).`), headers: { ETag: etag(deleted.versionId) } } : { status: 204 };
  });
};

const conditionalDelete: Handler = async (ctx, req, [type]) => {
  ctx.access.require(type, 'delete');
  ctx.access.require(type, 'search');
  if (!req.query.length) throw methodNotAllowed(`DELETE ${type} needs an id or search criteria.`, allowedMethods([type], false));
  requireCriteriaSearch(ctx.access, type, req.query, 'conditional delete');
  return inWrite(ctx, async (c) => {
    const id = await op.singleMatch(c, type, req.query);
    if (!id) return { status: 204 };
    const deleted = await op.removeResource(c, type, id);
    if (deleted) report(ctx, { interaction: 'delete', resourceType: type, id, patientIds: deleted.patientId ? [deleted.patientId] : [] });
    const headers: Record<string, string> = deleted ? { ETag: etag(deleted.versionId) } : {};
    return { status: 200, body: successOutcome(`${type}/${id} deleted.`), headers };
  });
};

const typeHistory: Handler = async (ctx, req, [type]) => {
  ctx.access.require(type, 'read');
  const { body, patientIds } = await op.history(interactionCtx(ctx), ctx.base, { type }, req.query);
  report(ctx, { interaction: 'history', resourceType: type, patientIds, query: queryString(req.query) });
  return { status: 200, body };
};

const instanceHistory: Handler = async (ctx, req, [type, id]) => {
  ctx.access.require(type, 'read');
  const { body, patientIds } = await op.history(interactionCtx(ctx), ctx.base, { type, id }, req.query);
  report(ctx, { interaction: 'history', resourceType: type, id, patientIds, query: queryString(req.query) });
  return { status: 200, body };
};
