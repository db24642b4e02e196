// batch and transaction Bundles. A transaction runs in one database transaction: all entries succeed or
// none is stored. urn:uuid and conditional references are resolved first, then entries run in the
// order the FHIR spec gives (DELETE, POST, PUT/PATCH, GET), and answers keep the request's order.
import { FhirError, badRequest, methodNotAllowed, multipleMatches, type OutcomeIssue } from './outcome.ts';
import { validateResource } from './validation.ts';
import { handleFhirRequest, ifNoneExistCriteria, requireCriteriaSearch, serviceFor, writtenResponse, type FhirRequest, type FhirResponse, type RestContext } from './rest.ts';
import * as op from './interactions.ts';
import { definitions } from './definitions.ts';
import { failedAccessEvents, rewrapped } from './accessControl.ts';

interface Entry {
  index: number;
  /** The request as the client wrote it, for error messages ("POST Observation"). */
  label: string;
  /** A POST given a server id up front: stored with the other fresh creates in one batch. */
  fresh?: boolean;
  /** A conditional create with the same criteria as an earlier entry that creates: that entry's resource. */
  sameAs?: { index: number; criteria: [string, string][] };
  method: string;
  path: string;
  query: [string, string][];
  fullUrl?: string;
  resource?: Record<string, unknown>;
  ifMatch?: string;
  ifNoneMatch?: string;
  ifNoneExist?: string;
}

const ORDER: Record<string, number> = { DELETE: 0, POST: 1, PUT: 2, PATCH: 2, GET: 3, HEAD: 3 };
export const MAX_ENTRIES = 10_000;
/**
 * A transaction's searches run on the writing connection (they must see the Bundle's own writes), whose
 * sorts stay in memory (sqliteDriver.ts): a sorted page a million rows deep would hold a million rows there.
 */
const DEEPEST_OFFSET_IN_TRANSACTION = 10_000;

export async function processBundle(ctx: RestContext, body: unknown): Promise<FhirResponse> {
  const bundle = body as { resourceType?: string; type?: string; entry?: unknown };
  if (!bundle || typeof bundle !== 'object' || bundle.resourceType !== 'Bundle') throw badRequest('POST to the base URL takes a Bundle of type batch or transaction.', 'Bundle');
  // A Bundle inside a transaction would need a transaction inside a transaction: refuse it plainly.
  if (ctx.tx) throw badRequest('A transaction entry cannot itself be a batch or transaction Bundle.', 'Bundle.entry.resource');
  if (bundle.type !== 'batch' && bundle.type !== 'transaction') throw badRequest(`Bundle.type must be batch or transaction, not '${String(bundle.type)}'.`, 'Bundle.type');
  const rawEntries = bundle.entry ?? [];
  if (!Array.isArray(rawEntries)) throw badRequest('Bundle.entry must be an array.', 'Bundle.entry');
  if (rawEntries.length > MAX_ENTRIES) throw new FhirError(413, [{ severity: 'error', code: 'too-costly', diagnostics: `A Bundle may hold at most ${MAX_ENTRIES} entries; split it.` }]);
  const entries = rawEntries.map((e, i) => parseEntry(ctx, e, i));
  refuseDuplicateFullUrls(entries);
  if (bundle.type === 'batch') return runBatch(ctx, entries);
  entries.forEach(refuseDeepPaging);
  return runTransaction(ctx, entries);
}

/**
 * A fullUrl names one entry (bdl-7). Were two to share one, a reference to it would silently go to whichever
 * came last, and both resources would be stored: the client would never learn its Bundle was ambiguous.
 */
function refuseDuplicateFullUrls(entries: Entry[]): void {
  const first = new Map<string, number>();
  for (const e of entries) {
    if (e.fullUrl === undefined) continue;
    const earlier = first.get(e.fullUrl);
    if (earlier !== undefined) {
      throw badRequest(`Bundle.entry[${e.index}].fullUrl '${e.fullUrl}' is also Bundle.entry[${earlier}]'s: each entry needs a fullUrl of its own, so references to it are unambiguous.`, `Bundle.entry[${e.index}].fullUrl`);
    }
    first.set(e.fullUrl, e.index);
  }
}

function refuseDeepPaging(e: Entry): void {
  const offset = e.method === 'GET' ? Number(e.query.find(([name]) => name === '_offset')?.[1]) : NaN;
  if (!(offset > DEEPEST_OFFSET_IN_TRANSACTION)) return;
  throw badRequest(
    `Bundle.entry[${e.index}] (${e.label}) asks for a page at _offset ${offset}; inside a transaction the deepest is ${DEEPEST_OFFSET_IN_TRANSACTION}. Page through the search itself, or put it in a batch.`,
    `Bundle.entry[${e.index}].request.url`,
  );
}

function parseEntry(ctx: RestContext, raw: unknown, index: number): Entry {
  const e = raw as { fullUrl?: unknown; resource?: unknown; request?: { method?: unknown; url?: unknown; ifMatch?: unknown; ifNoneMatch?: unknown; ifNoneExist?: unknown } };
  const where = `Bundle.entry[${index}]`;
  if (!e || typeof e !== 'object') throw badRequest(`${where} is not an object.`, where);
  const method = typeof e.request?.method === 'string' ? e.request.method.toUpperCase() : undefined;
  if (!method || !(method in ORDER)) throw badRequest(`${where}.request.method must be GET, POST, PUT, PATCH or DELETE.`, `${where}.request.method`);
  if (typeof e.request?.url !== 'string' || !e.request.url) throw badRequest(`${where}.request.url is required.`, `${where}.request.url`);
  let url = e.request.url;
  if (url.startsWith(ctx.base + '/')) url = url.slice(ctx.base.length + 1);
  const parsed = new URL(url, 'http://entry.invalid/');
  if (parsed.host !== 'entry.invalid') throw badRequest(`${where}.request.url must be relative to this server, not '${url}'.`, `${where}.request.url`);
  if ((method === 'POST' || method === 'PUT') && (!e.resource || typeof e.resource !== 'object')) {
    throw badRequest(`${where} (${method} ${url}) needs a resource.`, `${where}.resource`);
  }
  return {
    index,
    label: `${method} ${url}`,
    method,
    path: parsed.pathname.replace(/^\/+/, ''),
    query: [...parsed.searchParams],
    fullUrl: typeof e.fullUrl === 'string' ? e.fullUrl : undefined,
    // A copy: resolving references must not change the caller's Bundle, even when the transaction fails.
    resource: e.resource ? structuredClone(e.resource as Record<string, unknown>) : undefined,
    ifMatch: typeof e.request.ifMatch === 'string' ? e.request.ifMatch : undefined,
    ifNoneMatch: typeof e.request.ifNoneMatch === 'string' ? e.request.ifNoneMatch : undefined,
    ifNoneExist: typeof e.request.ifNoneExist === 'string' ? e.request.ifNoneExist : undefined,
  };
}

function toRequest(e: Entry, prefer: string): FhirRequest {
  return { method: e.method, path: e.path, query: e.query, body: e.resource, ifMatch: e.ifMatch, ifNoneMatch: e.ifNoneMatch, ifNoneExist: e.ifNoneExist, prefer, contentType: e.method === 'PATCH' ? 'application/json-patch+json' : undefined };
}

async function runBatch(ctx: RestContext, entries: Entry[]): Promise<FhirResponse> {
  const out: unknown[] = [];
  for (const e of entries) {
    if (e.method === 'POST' && e.path === '') {
      out.push(errorEntry(badRequest('A batch entry cannot itself be a batch or transaction.')));
      continue;
    }
    try {
      out.push(responseEntry(ctx.base, await handleFhirRequest(ctx, toRequest(e, 'return=representation'))));
    } catch (err) {
      if (!(err instanceof FhirError)) throw err; // unexpected (e.g. the database is down): logged, 500
      out.push(errorEntry(err));
      // An entry refused for being outside the caller's records is an attempt on those people's records, as
      // the same request on its own would be: the batch's audit entry names them, as refused.
      const [type, id] = e.path.split('/');
      for (const event of failedAccessEvents(err, { resourceType: type || undefined, id: id || undefined })) ctx.onAccess?.(event);
    }
  }
  return { status: 200, body: { resourceType: 'Bundle', type: 'batch-response', entry: out } };
}

async function runTransaction(ctx: RestContext, entries: Entry[]): Promise<FhirResponse> {
  const responses = await ctx.driver.transaction(async (tx) => {
    // A Patient one entry creates may be recorded by the others (their EpisodeOfCare at the home, say).
    const createdPatients = new Set<string>();
    const txCtx: RestContext = { ...ctx, tx, createdPatients };
    const c: op.Ctx = { db: tx, lock: ctx.driver.dialect === 'postgres', patients: ctx.access.patients, createdPatients };
    const assigned = await assignIds(ctx, c, entries);
    // Conditional targets are resolved now and nothing is written yet: a refusal here stores nothing.
    refuseOverlappingWrites(entries);
    for (const e of entries) if (e.resource) await rewriteReferences(ctx, c, e, assigned);
    const results = new Array<FhirResponse>(entries.length);
    const ordered = [...entries].sort((a, b) => ORDER[a.method] - ORDER[b.method] || a.index - b.index);
    const fresh = ordered.filter((e) => e.fresh);
    for (const e of ordered) {
      if (e.fresh) {
        if (e === fresh[0]) await createFresh(txCtx, c, fresh, results);
        continue;
      }
      await asEntry(e, async () => {
        if (e.sameAs) await assertSameAs(c, e);
        results[e.index] = await handleFhirRequest(txCtx, toRequest(e, 'return=minimal'));
      });
    }
    return results;
  });
  return { status: 200, body: { resourceType: 'Bundle', type: 'transaction-response', entry: responses.map((r) => responseEntry(ctx.base, r)) } };
}

/** Criteria compared as sets of parameters: the order they were written in does not make them different. */
function criteriaKey(type: string, criteria: [string, string][]): string {
  return `${type}?${new URLSearchParams([...criteria].sort(([a, x], [b, y]) => a.localeCompare(b) || x.localeCompare(y))).toString()}`;
}

/**
 * A conditional create answered with an earlier entry's new resource must be one its criteria find, now
 * that it is written; otherwise the two entries meant different resources, and which one was meant is the
 * client's to say.
 */
async function assertSameAs(c: op.Ctx, e: Entry): Promise<void> {
  const [type, id] = e.path.split('/');
  const found = await op.singleMatch(c, type, e.sameAs!.criteria);
  if (found !== id) {
    throw badRequest(`It has the same If-None-Exist as Bundle.entry[${e.sameAs!.index}], which creates ${type}/${id}, so it would be that ${type}; but its criteria do not find it. Give the entries criteria that find what each creates.`);
  }
}

async function createFresh(ctx: RestContext, c: op.Ctx, fresh: Entry[], results: FhirResponse[]): Promise<void> {
  for (const e of fresh) {
    await asEntry(e, async () => {
      const type = e.path.split('/')[0];
      ctx.access.require(type, 'create');
      if (serviceFor(ctx, type)) throw methodNotAllowed(`${type} is read-only here: it cannot be written.`, ['GET']);
      validateResource(e.resource, { expectedType: type });
      ctx.access.checkContent?.(e.resource!);
    });
  }
  const written = await op.createNewResources(c, fresh.map((e) => e.resource!));
  fresh.forEach((e, i) => {
    results[e.index] = writtenResponse(ctx, toRequest(e, 'return=minimal'), written[i], 201);
  });
}

/** Runs one entry's work; a FhirError names the entry, so the client knows which one to fix. */
async function asEntry<T>(e: Entry, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    if (!(err instanceof FhirError)) throw err; // unexpected: logged and answered 500 by the HTTP layer
    const prefix = `Transaction entry ${e.index} (${e.label}) failed, so nothing was stored: `;
    // The entry's 405 becomes the answer to a POST to the base, which POST is allowed on: the Bundle is what is wrong.
    const status = err.status === 405 ? 400 : err.status;
    throw rewrapped(err, new FhirError(status, err.issues.map((i): OutcomeIssue => ({ ...i, diagnostics: prefix + (i.diagnostics ?? i.code) }))));
  }
}

/** Gives each POST a server id up front (or the existing id, for a conditional create that matches). */
async function assignIds(ctx: RestContext, c: op.Ctx, entries: Entry[]): Promise<Map<string, string>> {
  const assigned = new Map<string, string>();
  /** The conditional creates that create, by their criteria: the first of several alike is the one made. */
  const creating = new Map<string, { id: string; index: number }>();
  for (const e of entries) {
    const type = e.path.split('/')[0];
    if (e.method === 'POST' && e.path && !e.path.includes('/')) {
      if (!definitions().resourceTypes.has(type)) continue; // routing reports the unknown type
      let id: string | undefined;
      const criteria = await asEntry(e, async () => ifNoneExistCriteria(type, e.ifNoneExist));
      if (criteria) {
        id = await asEntry(e, async () => {
          requireCriteriaSearch(ctx.access, type, criteria, 'If-None-Exist');
          return op.singleMatch(c, type, criteria); // several matches are a 412 the client must trace to this entry
        });
      }
      // Generated Bundles repeat a conditional create wherever a resource is referenced (the same
      // practitioner for each observation): every one would find nothing and create, making duplicates.
      const alike = criteria && !id ? creating.get(criteriaKey(type, criteria)) : undefined;
      if (alike) e.sameAs = { index: alike.index, criteria: criteria! };
      id ??= alike?.id;
      if (id) {
        // The match exists already: answer as a read of it, as a plain conditional create would.
        e.method = 'GET';
        e.path = `${type}/${id}`;
        e.resource = undefined;
      } else {
        id = op.newId();
        e.fresh = true;
        e.path = `${type}/${id}`;
        e.resource = { ...e.resource, id };
        if (criteria) creating.set(criteriaKey(type, criteria), { id, index: e.index });
      }
      if (e.fullUrl) assigned.set(e.fullUrl, `${type}/${id}`);
    } else if (e.method === 'PUT' && e.query.length && !e.path.includes('/')) {
      const match = await asEntry(e, async () => {
        requireCriteriaSearch(ctx.access, type, e.query, 'conditional update');
        return op.singleMatch(c, type, e.query); // several matches are a 412 the client must trace to this entry
      });
      const id = match ?? (typeof e.resource?.id === 'string' ? e.resource.id : op.newId());
      e.path = `${type}/${id}`;
      e.query = [];
      e.resource = { ...e.resource, id };
      if (e.fullUrl) assigned.set(e.fullUrl, `${type}/${id}`);
    } else if (e.method === 'PUT' && e.fullUrl) {
      assigned.set(e.fullUrl, e.path);
    } else if (e.method === 'DELETE' && e.query.length && !e.path.includes('/') && definitions().resourceTypes.has(type)) {
      await resolveConditionalDelete(ctx, c, e, type);
    }
  }
  return assigned;
}

/**
 * Turns a conditional delete into a delete of the one resource it matches, so that resource's identity is
 * known before anything is written and another entry writing it too is caught. With no match it is left as
 * it is, and answers 204 as a conditional delete of nothing does.
 */
async function resolveConditionalDelete(ctx: RestContext, c: op.Ctx, e: Entry, type: string): Promise<void> {
  await asEntry(e, async () => {
    ctx.access.require(type, 'delete'); // as on its own: no match is run for a caller who may not delete
    requireCriteriaSearch(ctx.access, type, e.query, 'conditional delete');
    const id = await op.singleMatch(c, type, e.query);
    if (!id) return;
    e.path = `${type}/${id}`;
    e.query = [];
  });
}

const WRITES = new Set(['DELETE', 'POST', 'PUT', 'PATCH']);

/** The resource ("Patient/x") an entry writes, once its conditional target is resolved; undefined for reads, searches and operations. */
function writtenResource(e: Entry): string | undefined {
  if (!WRITES.has(e.method)) return undefined;
  const parts = e.path.split('/').filter(Boolean).map(decodedOrAsIs);
  // Ids never start with _ or $: Patient/_search and Patient/$op are not resources.
  if (parts.length !== 2 || /^[_$]/.test(parts[1])) return undefined;
  return `${parts[0]}/${parts[1]}`;
}

/** Compared as routing will read it (Patient/%78 is Patient/x); a malformed segment is refused by routing itself. */
function decodedOrAsIs(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

/**
 * FHIR R4 (http.html#trules): if the identities that DELETE, POST and PUT/PATCH entries write overlap,
 * conditional ones included, the transaction SHALL fail. Applied one after the other, one entry would
 * silently undo or overwrite the other, and which wins would depend on the processing order, not on
 * anything the client wrote.
 */
function refuseOverlappingWrites(entries: Entry[]): void {
  const writer = new Map<string, Entry>();
  for (const e of entries) {
    const written = writtenResource(e);
    if (!written) continue;
    const earlier = writer.get(written);
    if (earlier) {
      throw badRequest(
        `Bundle.entry[${earlier.index}] (${earlier.label}) and Bundle.entry[${e.index}] (${e.label}) both write ${written}; a transaction may write each resource once, so it was refused and nothing was stored. Merge them into one entry, or send them in separate transactions.`,
        `Bundle.entry[${e.index}].request`,
      );
    }
    writer.set(written, e);
  }
}

async function rewriteReferences(ctx: RestContext, c: op.Ctx, e: Entry, assigned: Map<string, string>): Promise<void> {
  const pending: { holder: Record<string, unknown>; value: string }[] = [];
  const walk = (node: unknown) => {
    if (Array.isArray(node)) node.forEach(walk);
    else if (node && typeof node === 'object') {
      for (const [k, v] of Object.entries(node)) {
        if (k === 'reference' && typeof v === 'string') pending.push({ holder: node as Record<string, unknown>, value: v });
        else if (typeof v === 'object') walk(v);
      }
    }
  };
  walk(e.resource);
  for (const { holder, value } of pending) {
    const mapped = assigned.get(value);
    if (mapped) holder.reference = mapped;
    else if (value.startsWith('urn:uuid:') || value.startsWith('urn:oid:')) {
      throw badRequest(`Entry ${e.index} refers to '${value}', which no entry in this transaction has as its fullUrl.`, `Bundle.entry[${e.index}].resource`);
    } else if (/^[A-Z][A-Za-z]+\?/.test(value)) {
      const [type, query] = value.split('?', 2);
      await asEntry(e, async () => requireCriteriaSearch(ctx.access, type, [...new URLSearchParams(query)], 'conditional reference'));
      holder.reference = await resolveConditionalReference(c, value, e.index);
    }
  }
}

async function resolveConditionalReference(c: op.Ctx, value: string, index: number): Promise<string> {
  const [type, query] = value.split('?', 2);
  const ids = await op.matchIds(c, type, [...new URLSearchParams(query)]);
  if (ids.length === 1) return `${type}/${ids[0]}`;
  if (ids.length > 1) throw multipleMatches(`Entry ${index}: the conditional reference '${value}' matches more than one ${type}.`);
  throw new FhirError(412, [{ severity: 'error', code: 'not-found', diagnostics: `Entry ${index}: the conditional reference '${value}' matches no ${type}.` }]);
}

const STATUS_TEXT: Record<number, string> = { 200: '200 OK', 201: '201 Created', 204: '204 No Content' };

function responseEntry(base: string, r: FhirResponse): unknown {
  const h = r.headers ?? {};
  const response: Record<string, unknown> = { status: STATUS_TEXT[r.status] ?? String(r.status) };
  if (h.Location) response.location = h.Location.startsWith(base + '/') ? h.Location.slice(base.length + 1) : h.Location;
  if (h.ETag) response.etag = h.ETag;
  if (h['Last-Modified']) response.lastModified = new Date(h['Last-Modified']).toISOString();
  const entry: Record<string, unknown> = {};
  if (r.body !== undefined) {
    const body = typeof r.body === 'string' ? JSON.parse(r.body) : r.body;
    if (body?.resourceType === 'OperationOutcome') response.outcome = body;
    else entry.resource = body;
  }
  entry.response = response;
  return entry;
}

function errorEntry(err: FhirError): unknown {
  return { response: { status: String(err.status), outcome: err.outcome } };
}
