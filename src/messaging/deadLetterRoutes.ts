// Dead letters over HTTP, for staff tools and operators:
//   GET  /messaging/dead-letters                       the queue, oldest first (no message bodies)
//   POST /messaging/dead-letters/{messageId}/replay     back into the inbox, due at once → 202
// The caller must be allowed to read and change every record (an administrative system client): a dead
// letter can hold anyone's details. Callers are authenticated before their request's body is read, as the
// FHIR API's are: one without valid credentials is refused (401) without its body being received. Each
// replay asked for, made or refused, is handed to `replayed` with the caller's AccessControl, for the audit
// trail; so is each listing (`listed`), shown or refused: a dead letter's reason can name a person, so
// reading the queue is reading personal data. A listing is answered only once `listed` has taken it, with
// the text it shows (so the audit can name the people whose NHS numbers it shows). Errors are
// OperationOutcomes, like the FHIR API's.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { FhirError, forbidden, isTemporaryOutage, toFhirError, type AccessControl, type SqlDriver } from '../record/index.ts';
import { listDeadLetters, replayDeadLetter } from './inbox.ts';

/** What became of a replay asked for: made; refused for the caller (permitted: false); or not made (no such dead letter). */
export interface ReplayAttempt { ok: boolean; reason?: string; permitted?: boolean }

/**
 * What a listing of the queue showed: the dead letters listed, in order (headers and reasons), and the text
 * of them the answer holds (`shownText`: every header and reason, for the audit to find NHS numbers in; not
 * to be kept); a refused one showed nothing.
 */
export interface DeadLetterListing { ok: boolean; messageIds: string[]; shown?: string; reason?: string; shownText?: string[] }

export interface DeadLetterRouteOptions {
  driver: SqlDriver;
  authenticate(req: FastifyRequest): AccessControl | Promise<AccessControl>;
  now: () => number;
  /** A replay was asked for by the caller `access` speaks for (called for refused ones too). */
  replayed(access: AccessControl, messageId: string, attempt: ReplayAttempt): void;
  /**
   * The queue was listed for the caller `access` speaks for, or refused to them: one call per request. A
   * listing is sent once this resolves, and not at all when it rejects (its audit could not be made).
   */
  listed(access: AccessControl, listing: DeadLetterListing): void | Promise<void>;
}

export async function deadLetterRoutes(app: FastifyInstance, options: DeadLetterRouteOptions): Promise<void> {
  // Callers are known before their body is read: one without valid credentials is refused (401, audited by
  // `authenticate`) without its body being received or parsed, as on the FHIR API.
  const accessOf = new WeakMap<FastifyRequest, AccessControl>();
  app.addHook('onRequest', async (req, reply) => {
    try {
      accessOf.set(req, await options.authenticate(req));
    } catch (err) {
      // Nor is the unread body drained: the connection ends with the answer.
      if (req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0) reply.header('connection', 'close');
      throw err;
    }
  });
  const authorise = (req: FastifyRequest) => {
    const access = accessOf.get(req);
    if (!access) throw new Error('A dead-letter route ran without its authentication hook.'); // never served unauthenticated by mistake
    access.require('*', 'update');
    if (access.patients) throw forbidden('Dead letters are for administrators whose access covers every record.');
    return access;
  };
  app.setErrorHandler((err, _req, reply) => {
    // A body the route could not take (malformed, too large, of a type it does not read) is the caller's error, not ours.
    const statusCode = (err as { statusCode?: unknown }).statusCode;
    const clientError = !(err instanceof FhirError) && typeof statusCode === 'number' && statusCode >= 400 && statusCode < 500;
    const fhir = err instanceof FhirError || isTemporaryOutage(err) ? toFhirError(err) : clientError ? new FhirError(statusCode, [{ severity: 'error', code: 'invalid', diagnostics: (err as Error).message }]) : undefined;
    if (!fhir || fhir.status >= 500) reply.log.error(err);
    const status = fhir?.status ?? 500;
    const outcome = fhir?.outcome ?? { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'exception', diagnostics: 'The dead-letter queue could not be read; try again.' }] };
    for (const [name, value] of Object.entries(fhir?.headers ?? {})) reply.header(name, value);
    reply.code(status).header('content-type', 'application/fhir+json').send(outcome);
  });

  /** Why the caller was refused, as the OperationOutcome says it. */
  const refusal = (err: FhirError) => err.issues.map((i) => i.diagnostics ?? i.code).join('; ');

  app.get('/messaging/dead-letters', async (req) => {
    let access: AccessControl;
    try {
      access = authorise(req);
    } catch (err) {
      const known = accessOf.get(req);
      if (known && err instanceof FhirError) await options.listed(known, { ok: false, messageIds: [], reason: refusal(err) });
      throw err;
    }
    const letters = await listDeadLetters(options.driver);
    // One entry for the whole listing, naming each dead letter in it (their reasons are in the answer) and,
    // from every header and reason it shows, the people whose NHS numbers those name.
    const shownText = letters.flatMap((l) => Object.values(l).filter((v): v is string => typeof v === 'string'));
    await options.listed(access, { ok: true, messageIds: letters.map((l) => l.messageId), shown: `${letters.length} dead letter${letters.length === 1 ? '' : 's'}, oldest first`, shownText });
    return { total: letters.length, deadLetters: letters.map((l) => ({ ...l, receivedAt: new Date(l.receivedAt).toISOString(), deadAt: new Date(l.deadAt).toISOString() })) };
  });

  app.post('/messaging/dead-letters/:messageId/replay', async (req, reply) => {
    const { messageId } = req.params as { messageId: string };
    let access: AccessControl;
    try {
      access = authorise(req);
    } catch (err) {
      const known = accessOf.get(req);
      if (known && err instanceof FhirError) options.replayed(known, messageId, { ok: false, permitted: false, reason: refusal(err) });
      throw err;
    }
    try {
      await replayDeadLetter(options.driver, messageId, options.now());
    } catch (err) {
      options.replayed(access, messageId, { ok: false, reason: (err as Error).message });
      throw new FhirError(404, [{ severity: 'error', code: 'not-found', diagnostics: (err as Error).message }]);
    }
    options.replayed(access, messageId, { ok: true });
    reply.code(202);
    return { messageId, status: 'pending' };
  });
}
