// Break-glass over HTTP, for API users acting as a person (the portal calls the same functions):
//   POST /access/break-glass              {patient, reasonCode, reason}  → 201, the grant
//   GET  /access/break-glass?open=true     the privacy officers' queue (or every alert; &patient=…)
//   POST /access/break-glass/{id}/review   {outcome: appropriate|inappropriate, note}
// Errors are OperationOutcomes, like the FHIR API's.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { FhirError, isTemporaryOutage, toFhirError, type SqlDriver } from '../record/index.ts';
import type { Actor, UserActor } from './actor.ts';
import { declareBreakGlass, isRepeatedDeclaration, listBreakGlass, reviewBreakGlass, type BreakGlassGrant } from './breakGlass.ts';
import type { AuditTrail } from './audit/trail.ts';
import { administrationRequest, type AdministrativeChange } from './administrationAudit.ts';

export interface BreakGlassRouteOptions {
  driver: SqlDriver;
  identify(req: FastifyRequest): Actor | Promise<Actor>;
  audit?: AuditTrail;
}

function personOnly(actor: Actor): UserActor {
  if (actor.kind !== 'user') throw new FhirError(403, [{ severity: 'error', code: 'forbidden', diagnostics: 'Break-glass is declared by a person, not by a system client.' }]);
  return actor;
}

function body(req: FastifyRequest): Record<string, string> {
  const b = req.body;
  if (!b || typeof b !== 'object' || Array.isArray(b)) throw new FhirError(400, [{ severity: 'error', code: 'invalid', diagnostics: 'Send a JSON object.' }]);
  return Object.fromEntries(Object.entries(b).map(([k, v]) => [k, typeof v === 'string' ? v : '']));
}

/** Records the declaration in the audit trail, under the purpose "break the glass", naming the person. */
export function auditBreakGlass(audit: AuditTrail | undefined, actor: UserActor, grant: BreakGlassGrant, address: string): void {
  if (isRepeatedDeclaration(grant)) return;
  audit?.record({
    at: Date.now(),
    actor: { ...actor, purpose: 'BTG' },
    address,
    events: [{ interaction: 'read', resourceType: 'Patient', id: grant.patientId, patientIds: [grant.patientId], query: `break-glass=${grant.reasonCode}&reason=${encodeURIComponent(grant.reason)}` }],
    outcome: { status: 201, method: 'POST', path: `Patient/${grant.patientId}/$break-glass`, query: '' },
  });
}

/** How a reviewed alert reads in the audit trail: the verdict and note, the person, who declared it and when. */
function reviewDetail(grant: BreakGlassGrant): string {
  const review = grant.review!;
  const by = `${grant.userName} (${grant.role}${grant.organisation ? ` at ${grant.organisation}` : ''})`;
  return `${review.outcome}${review.note ? `: ${review.note}` : ''}; Patient/${grant.patientId}; declared by ${by} at ${grant.startedAt} (${grant.reasonCode})`;
}

/**
 * A privacy officer's review of a break-glass alert, recorded in the audit trail as an administrative
 * change made by the reviewer (filed under the person the alert is about), or, when refused, as the attempt.
 * Both the HTTP route and the portal review through here.
 */
export async function reviewAudited(
  driver: SqlDriver, audit: AuditTrail | undefined, reviewer: UserActor, id: string, review: { outcome: string; note?: string }, address: string,
): Promise<BreakGlassGrant> {
  const record = (change: AdministrativeChange) => audit?.record(administrationRequest(Date.now(), address, change, reviewer));
  let grant: BreakGlassGrant;
  try {
    grant = await reviewBreakGlass(driver, reviewer, id, review);
  } catch (err) {
    if (err instanceof FhirError) {
      record({ action: 'break-glass-reviewed', target: id, ok: false, reason: err.issues[0]?.diagnostics, ...(err.status === 403 ? { permitted: false } : {}) });
    }
    throw err;
  }
  record({ action: 'break-glass-reviewed', target: grant.id, patientId: grant.patientId, detail: reviewDetail(grant), ok: true });
  return grant;
}

export async function breakGlassRoutes(app: FastifyInstance, options: BreakGlassRouteOptions): Promise<void> {
  app.setErrorHandler((err, _req, reply: FastifyReply) => {
    if (err instanceof FhirError || isTemporaryOutage(err)) {
      const fhir = toFhirError(err);
      for (const [k, v] of Object.entries(fhir.headers ?? {})) reply.header(k, v);
      return reply.code(fhir.status).type('application/fhir+json').send({ resourceType: 'OperationOutcome', issue: fhir.issues });
    }
    const status = (err as { statusCode?: number }).statusCode ?? 500;
    const diagnostics = status < 500 ? (err as Error).message : 'The request could not be completed.';
    return reply.code(status).type('application/fhir+json').send({ resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: status < 500 ? 'invalid' : 'exception', diagnostics }] });
  });

  // Callers are known before their body is read: one without a valid token is refused (401) without its
  // body being received, let alone parsed (as the FHIR API does). Handlers take the caller from here.
  const callers = new WeakMap<FastifyRequest, Actor>();
  app.addHook('onRequest', async (req, reply) => {
    try {
      callers.set(req, await options.identify(req));
    } catch (err) {
      if (req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0) reply.header('connection', 'close'); // nor is the unread body drained
      throw err;
    }
  });
  const caller = (req: FastifyRequest): Actor => {
    const actor = callers.get(req);
    if (!actor) throw new Error('A break-glass route ran without its authentication hook.');
    return actor;
  };

  app.post('/access/break-glass', async (req, reply) => {
    const actor = personOnly(caller(req));
    const b = body(req);
    const grant = await declareBreakGlass(options.driver, actor, { patientId: b.patient ?? '', reasonCode: b.reasonCode ?? '', reason: b.reason ?? '' });
    auditBreakGlass(options.audit, actor, grant, req.ip);
    return reply.code(201).send(grant);
  });

  app.get('/access/break-glass', async (req) => {
    const actor = personOnly(caller(req));
    if (actor.role !== 'privacy-officer') throw new FhirError(403, [{ severity: 'error', code: 'forbidden', diagnostics: 'Only privacy officers see break-glass alerts.' }]);
    const q = req.query as Record<string, string>;
    return { alerts: await listBreakGlass(options.driver, { open: q.open === 'true', patientId: q.patient?.replace(/^Patient\//, '') }) };
  });

  app.post<{ Params: { id: string } }>('/access/break-glass/:id/review', async (req) => {
    const actor = personOnly(caller(req));
    const b = body(req);
    return reviewAudited(options.driver, options.audit, actor, req.params.id, { outcome: b.outcome ?? '', note: b.note }, req.ip);
  });
}
