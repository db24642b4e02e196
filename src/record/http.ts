// The FHIR REST API over HTTP at /fhir: a Fastify plugin that turns requests into FhirRequests and
// FhirResponses (or FhirErrors) back into HTTP, always with application/fhir+json bodies.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { handleFhirRequest, type FhirResponse } from './rest.ts';
import { FhirError, badRequest, notAcceptable, toFhirError, tooLarge, unsupportedMediaType } from './outcome.ts';
import type { SqlDriver } from './storage/driver.ts';
import { UNRESTRICTED, failedAccessEvents, type AccessControl, type AccessEvent } from './accessControl.ts';
import type { FhirOperations } from './operations.ts';
import type { ResourceTypeServices } from './typeService.ts';

const FHIR_JSON = 'application/fhir+json; charset=utf-8';
const MAX_NESTING = 128;

export interface FhirApiOptions {
  driver: SqlDriver;
  /**
   * Who is calling and what they may do, from the request's credentials; throws a FhirError (401) when
   * they are missing or invalid. Absent only when the server runs with --insecure-no-auth.
   */
  authenticate?: (req: FastifyRequest) => AccessControl | Promise<AccessControl>;
  /** Public base URL of the FHIR API; derived from the Host header when absent. */
  baseUrl?: string;
  /** Operations other capabilities add ([type]/[id]/$[name]). */
  operations?: FhirOperations;
  /** Resource types other capabilities keep and serve (read and search only). */
  services?: ResourceTypeServices;
  /**
   * Whether a web page from `origin` may call the API from a browser (CORS): a browser SMART app's. Absent:
   * no page from another origin may read the API's answers (the CapabilityStatement excepted).
   */
  allowsOrigin?: (origin: string) => Promise<boolean>;
}

/** What a browser app may send and read across origins: the headers FHIR's interactions use. */
const CORS_REQUEST_HEADERS = 'authorization, content-type, accept, prefer, if-match, if-none-match, if-none-exist, if-modified-since';
const CORS_EXPOSED_HEADERS = 'etag, location, content-location, last-modified';
const CORS_METHODS = 'GET, HEAD, POST, PUT, PATCH, DELETE';

export async function fhirApi(app: FastifyInstance, options: FhirApiOptions): Promise<void> {
  const parseJson = (_req: FastifyRequest, body: string, done: (err: Error | null, value?: unknown) => void) => {
    let value: unknown;
    try {
      value = body.length ? JSON.parse(body) : undefined;
    } catch (err) {
      return done(badRequest(`The body is not valid JSON: ${(err as Error).message}`));
    }
    if (nestingDepth(value) > MAX_NESTING) return done(badRequest(`The body nests deeper than ${MAX_NESTING} levels; no FHIR resource needs that.`));
    done(null, value);
  };
  app.removeAllContentTypeParsers();
  app.addContentTypeParser(['application/fhir+json', 'application/json', 'application/json-patch+json'], { parseAs: 'string' }, parseJson);
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_req, body, done) => done(null, body));

  app.setErrorHandler((err, req, reply) => {
    const fe = fromFastifyError(err);
    if (fe.status >= 500) req.log.error({ err }, 'FHIR request failed');
    return send(reply, { status: fe.status, body: fe.outcome, headers: fe.headers });
  });
  app.setNotFoundHandler((req, reply) => send(reply, { status: 404, body: new FhirError(404, [{ severity: 'error', code: 'not-found', diagnostics: `Nothing is served at ${req.url}.` }]).outcome }));

  // Callers are known before their body is read: a request without valid credentials is refused
  // (401, audited by `authenticate`) without its body being received, let alone buffered and parsed.
  const accessOf = new WeakMap<FastifyRequest, AccessControl>();
  // Not a promise when `authenticate` answers at once (a known caller): this runs for every request.
  app.addHook('onRequest', (req, reply, done) => {
    if (req.is404) return done(); // the not-found page (this plugin's, so every unknown path's) needs no credentials
    const origin = req.headers.origin;
    // Only a browser sends Origin: every other caller goes straight on, without a promise.
    if (origin === undefined) return admit(req, reply, done);
    crossOrigin(req, reply, origin).then((answered) => (answered ? undefined : admit(req, reply, done)), (err) => done(err as Error));
  });

  /**
   * CORS for a browser app (allowsOrigin): its origin may read the answers, errors included. A preflight is
   * answered here, before credentials (a browser sends none with it): true when it was.
   */
  const crossOrigin = async (req: FastifyRequest, reply: FastifyReply, origin: string): Promise<boolean> => {
    reply.header('vary', 'Origin');
    const allowed = (await options.allowsOrigin?.(origin)) ?? false;
    const publicDocument = fhirPath(req.raw.url ?? '') === 'metadata';
    if (allowed || publicDocument) reply.headers({ 'access-control-allow-origin': allowed ? origin : '*', 'access-control-expose-headers': CORS_EXPOSED_HEADERS });
    if (req.method !== 'OPTIONS' || req.headers['access-control-request-method'] === undefined) return false;
    if (allowed) reply.headers({ 'access-control-allow-methods': CORS_METHODS, 'access-control-allow-headers': CORS_REQUEST_HEADERS, 'access-control-max-age': '600' });
    reply.code(204).send();
    return true;
  };

  const admit = (req: FastifyRequest, reply: FastifyReply, done: (err?: Error) => void) => {
    const open = req.method === 'GET' && fhirPath(req.raw.url ?? '') === 'metadata'; // the CapabilityStatement is public, as SMART expects
    if (!options.authenticate || open) {
      accessOf.set(req, UNRESTRICTED);
      return done();
    }
    const admitted = (access: AccessControl) => {
      accessOf.set(req, access);
      done();
    };
    const refused = (err: unknown) => {
      if (sendsBody(req)) reply.header('connection', 'close'); // nor is the unread body drained: the connection ends with the answer
      done(err as Error);
    };
    let result;
    try {
      result = options.authenticate(req);
    } catch (err) {
      return refused(err);
    }
    if (result instanceof Promise) result.then(admitted, refused);
    else admitted(result);
  };

  const handler = async (req: FastifyRequest, reply: FastifyReply) => {
    const url = req.raw.url ?? '';
    const q = url.indexOf('?');
    const path = fhirPath(url);
    const query = q >= 0 ? [...new URLSearchParams(url.slice(q + 1))] : [];
    const base = options.baseUrl ?? `${req.protocol}://${req.headers.host ?? 'localhost'}/fhir`;
    const header = (name: string) => {
      const v = req.headers[name];
      return Array.isArray(v) ? v[0] : v;
    };
    if (!acceptsJson(header('accept'), query)) throw notAcceptable('This server speaks FHIR JSON only: ask for application/fhir+json (or leave Accept out).');
    const access = accessOf.get(req);
    if (!access) throw new Error('The FHIR handler ran without its authentication hook.'); // never served unauthenticated by mistake
    const events: AccessEvent[] = [];
    const outcome = { status: 500, method: req.method, path, query: q >= 0 ? url.slice(q + 1) : '' };
    try {
      const response = await handleFhirRequest(
        { base, driver: options.driver, access, onAccess: (e) => events.push(e), services: options.services, operations: options.operations },
        // HEAD is GET without the body (RFC 9110 §9.3.2): Node sends the headers, Content-Length included, and drops the body.
        { method: req.method === 'HEAD' ? 'GET' : req.method, path, query, body: req.body, contentType: header('content-type'), ifMatch: header('if-match'), ifNoneExist: header('if-none-exist'), ifNoneMatch: header('if-none-match'), prefer: header('prefer') },
      );
      outcome.status = response.status;
      return send(reply, response);
    } catch (err) {
      outcome.status = err instanceof FhirError ? err.status : 500;
      events.splice(0, events.length, ...failedAccessEvents(err));
      throw err;
    } finally {
      access.accessed?.(events, outcome);
    }
  };
  app.all('/fhir', handler);
  app.all('/fhir/*', handler);
}

/** The path after /fhir/, without the query. */
function fhirPath(url: string): string {
  const q = url.indexOf('?');
  return (q >= 0 ? url.slice(0, q) : url).replace(/^\/fhir\/?/, '');
}

/** The request declares a body (one still to come, at onRequest). */
function sendsBody(req: FastifyRequest): boolean {
  return req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;
}

function send(reply: FastifyReply, r: FhirResponse): FastifyReply {
  reply.code(r.status);
  for (const [k, v] of Object.entries(r.headers ?? {})) reply.header(k, v);
  if (r.body === undefined) return reply.send();
  reply.header('content-type', FHIR_JSON);
  return reply.send(typeof r.body === 'string' ? r.body : JSON.stringify(r.body));
}

function fromFastifyError(err: unknown): FhirError {
  if (err instanceof FhirError) return err;
  const code = (err as { code?: string }).code;
  if (code === 'FST_ERR_CTP_BODY_TOO_LARGE') return tooLarge('The request body is larger than this server accepts; split it (for example into smaller transaction Bundles).');
  if (code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') return unsupportedMediaType('Send FHIR JSON with Content-Type: application/fhir+json (or application/json-patch+json for PATCH).');
  if (code === 'FST_ERR_CTP_EMPTY_JSON_BODY' || code === 'FST_ERR_CTP_INVALID_CONTENT_LENGTH') return badRequest('The request body is empty or its length is wrong.');
  const status = (err as { statusCode?: number }).statusCode;
  if (status && status >= 400 && status < 500) return badRequest((err as Error).message);
  return toFhirError(err);
}

/** JSON unless the client asks only for something else (Accept or _format), e.g. FHIR XML. */
function acceptsJson(accept: string | undefined, query: [string, string][]): boolean {
  const format = query.find(([k]) => k === '_format')?.[1];
  if (format) return /json/i.test(format);
  if (!accept) return true;
  return accept.split(',').some((part) => /json|\*\/\*|application\/\*/i.test(part));
}

/** Depth of a parsed JSON value, walked without recursion so a hostile body cannot overflow the stack. */
function nestingDepth(value: unknown): number {
  let max = 0;
  const stack: [unknown, number][] = [[value, 1]];
  while (stack.length) {
    const [node, depth] = stack.pop()!;
    if (node === null || typeof node !== 'object') continue;
    if (depth > max) max = depth;
    if (max > MAX_NESTING) return max;
    for (const child of Object.values(node)) if (child !== null && typeof child === 'object') stack.push([child, depth + 1]);
  }
  return max;
}
