// Dead letters over HTTP, for staff tools and operators:
//   GET  /messaging/dead-letters                       the queue, oldest first (no message bodies)
//   POST /messaging/dead-letters/{messageId}/replay     back into the inbox, due at once → 202
// The caller must be allowed to read and change every record (an administrative system client): a dead
// letter can hold anyone's details. Errors are OperationOutcomes, like the FHIR API's.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { FhirError, forbidden, type AccessControl, type SqlDriver } from '../record/index.ts';
import { listDeadLetters, replayDeadLetter } from './inbox.ts';

export interface DeadLetterRouteOptions {
  driver: SqlDriver;
  authenticate(req: FastifyRequest): AccessControl | Promise<AccessControl>;
  now: () => number;
  replayed(): void;
}

export async function deadLetterRoutes(app: FastifyInstance, options: DeadLetterRouteOptions): Promise<void> {
  // Callers are known before their body is read: one without valid credentials is refused (401, audited by
  // `authenticate`) without its body being received or parsed, as on the FHIR API.
  const accessOf = new WeakMap<FastifyRequest, AccessControl>();
  app.addHook('onRequest', async (req, reply) => {
    try {
      accessOf.set(req, await options.authenticate(req));
    } catch (err) {
      if (req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0) reply.header('connection', 'close'); // nor is the unread body drained
      throw err;
    }
  });
  const authorise = async (req: FastifyRequest) => {
    const access = accessOf.get(req);
    if (!access) throw new Error('A dead-letter route ran without its authentication hook.');
    access.require('*', 'update');
    if (access.patients) throw forbidden('Dead letters are for administrators whose access covers every record.');
  };
  app.setErrorHandler((err, _req, reply) => {
    const fhir = err instanceof FhirError ? err : undefined;
    if (!fhir) reply.log.error(err);
    const status = fhir?.status ?? 500;
    const outcome = fhir?.outcome ?? { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'exception', diagnostics: 'The dead-letter queue could not be read; try again.' }] };
    for (const [name, value] of Object.entries(fhir?.headers ?? {})) reply.header(name, value);
    reply.code(status).header('content-type', 'application/fhir+json').send(outcome);
  });

  app.get('/messaging/dead-letters', async (req) => {
    await authorise(req);
    const letters = await listDeadLetters(options.driver);
    return { total: letters.length, deadLetters: letters.map((l) => ({ ...l, receivedAt: new Date(l.receivedAt).toISOString(), deadAt: new Date(l.deadAt).toISOString() })) };
  });

  app.post('/messaging/dead-letters/:messageId/replay', async (req, reply) => {
    await authorise(req);
    const { messageId } = req.params as { messageId: string };
    try {
      await replayDeadLetter(options.driver, messageId, options.now());
    } catch (err) {
      throw new FhirError(404, [{ severity: 'error', code: 'not-found', diagnostics: (err as Error).message }]);
    }
    options.replayed();
    reply.code(202);
    return { messageId, status: 'pending' };
  });
}
