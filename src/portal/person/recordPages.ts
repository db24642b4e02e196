// A person's record summary page and its break-glass form, the same for every role that reads records:
// care-home staff (a resident), ward staff (a patient), council staff (a person). Each area mounts them
// under its own path with its own roles and way back to its list.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { roleAllows, type Role, type UserActor } from '../../access/index.ts';
import { FhirError } from '../../record/index.ts';
import { recordFor, type RecordClient, type RecordConnection } from '../recordClient.ts';
import { errorView, type FieldError, type SendPage } from '../page.ts';
import { visitOf } from '../visit.ts';
import { NotAllowedHere, PageNotFound } from '../pageErrors.ts';
import { breakGlassPrompt, checkBreakGlassForm, fieldErrorsOf, grantInEffect, isRelationshipRefusal, NoCareRelationship, type BreakGlassForm, type PromptBackLink } from '../breakGlass.ts';
import type { PortalBreakGlass } from '../portalAccess.ts';
import { recordSummary } from './summary.ts';

export interface RecordPagesOptions {
  send: SendPage;
  connection: (req: FastifyRequest) => RecordConnection;
  breakGlass?: PortalBreakGlass;
  /** Where the pages live, e.g. /hospital/patients: a record is at <base>/<id>. */
  base: string;
  roles: ReadonlySet<Role>;
  /** Said to a signed-in person in another role. */
  refusal: string;
  back: PromptBackLink;
  /** What the area calls the person, for "There is no resident with this identifier". */
  noun: string;
  /** Offer the NEWS2 entry form (care homes record observations; its path is <record>/news2). */
  news2Entry?: boolean;
  /** What the person can start from the record in this area (a red bag, a discharge referral): the first is the main one. */
  actions?: (actor: UserActor, patientId: string) => RecordAction[];
}

export interface RecordAction { href: string; text: string }

/** The signed-in person when their role is one of `roles`; else a redirect to sign in (undefined: the reply is sent) or a 403. */
export function signedInAs(req: FastifyRequest, reply: FastifyReply, roles: ReadonlySet<Role>, refusal: string): UserActor | undefined {
  const visit = visitOf(req);
  if (!visit.actor) {
    void reply.redirect(visit.sessionEnded ? '/sign-in?reason=expired' : '/sign-in', 303);
    return undefined;
  }
  if (!roles.has(visit.actor.role)) throw new NotAllowedHere(refusal);
  return visit.actor;
}

/** What the actor's role may read, by resource type (the record checks the same again). */
export function readPermission(actor: UserActor): (type: string) => boolean {
  return (type) => roleAllows(actor.role, type, 'read');
}

/**
 * A person the page could not find: missing from the record (404), or there but outside the user's care
 * relationships, which a search does not reveal and a read refuses (the break-glass prompt).
 */
export async function notFoundOrRefused(record: RecordClient, id: string, options: Pick<RecordPagesOptions, 'base' | 'back' | 'noun' | 'breakGlass'>): Promise<never> {
  try {
    await record.read('Patient', id);
  } catch (err) {
    if (isRelationshipRefusal(err)) throw new NoCareRelationship(id, `${options.base}/${encodeURIComponent(id)}`, options.back, Boolean(options.breakGlass));
    throw err;
  }
  throw new PageNotFound(`There is no ${options.noun} with this identifier in the record.`);
}

export function personRecordRoutes(app: FastifyInstance, options: RecordPagesOptions): void {
  const { send, connection, breakGlass, base, roles, refusal, back, noun } = options;
  const pathOf = (id: string) => `${base}/${encodeURIComponent(id)}`;

  app.get<{ Params: { id: string }; Querystring: { recorded?: string } }>(`${base}/:id`, async (req, reply) => {
    const actor = signedInAs(req, reply, roles, refusal);
    if (!actor) return reply;
    const record = recordFor(connection(req), actor, req.ip);
    const summary = (await recordSummary(record, req.params.id, readPermission(actor))) ?? (await notFoundOrRefused(record, req.params.id, options));
    const banner = await grantInEffect(breakGlass, actor, req.params.id);
    return send(req, reply, 'pages/person-record.njk', {
      pageTitle: summary.patient.name, summary, back, breakGlass: banner,
      news2Path: options.news2Entry ? `${pathOf(summary.patient.id)}/news2` : undefined,
      actions: options.actions?.(actor, summary.patient.id) ?? [],
      recorded: req.query.recorded === 'news2',
    });
  });

  app.post<{ Params: { id: string }; Body: BreakGlassForm }>(`${base}/:id/break-glass`, async (req, reply) => {
    const actor = signedInAs(req, reply, roles, refusal);
    if (!actor) return reply;
    if (!breakGlass) throw new NotAllowedHere('Break-glass is not available on this server.');
    const path = pathOf(req.params.id);
    const values = { reasonCode: req.body.reasonCode, reason: req.body.reason, submission: req.body.submission };
    const prompt = (errors: FieldError[]) => send(req, reply, 'pages/break-glass.njk', { ...breakGlassPrompt(req.params.id, `${path}/break-glass`, back, values), ...errorView(errors) }, 400);
    const errors = checkBreakGlassForm(values);
    if (errors.length) return prompt(errors);
    try {
      await breakGlass.declare(actor, { patientId: req.params.id, reasonCode: values.reasonCode!, reason: values.reason!, submission: values.submission }, req.ip);
    } catch (err) {
      const fieldErrors = err instanceof FhirError ? fieldErrorsOf(err, { reasonCode: 'reasonCode', reason: 'reason' }) : undefined;
      if (fieldErrors) return prompt(fieldErrors);
      if (err instanceof FhirError && err.status === 404) throw new PageNotFound(`There is no ${noun} with this identifier in the record.`);
      throw err;
    }
    return reply.redirect(path, 303);
  });
}
