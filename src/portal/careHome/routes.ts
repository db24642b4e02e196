// The care-home pages: residents list, a resident's record summary, and the NEWS2 entry form.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { UserActor } from '../../access/index.ts';
import { recordFor, type RecordClient, type RecordConnection } from '../recordClient.ts';
import { errorView, type SendPage } from '../page.ts';
import { visitOf } from '../visit.ts';
import { residentsView } from './residents.ts';
import { isScale2Decision, residentSummary } from './summary.ts';
import { careHomeOf, personName } from './careHome.ts';
import { checkNews2Form, news2Transaction, scoreReadings, type News2Form } from './news2Entry.ts';
import { ACVPU_CODES } from './codes.ts';
import { breakGlassPrompt, checkBreakGlassForm, fieldErrorsOf, grantInEffect, isRelationshipRefusal, NoCareRelationship, type BreakGlassForm } from '../breakGlass.ts';
import type { PortalBreakGlass } from '../portalAccess.ts';
import { FhirError } from '../../record/index.ts';

export class NotAllowedHere extends Error {}
export class PageNotFound extends Error {}

const CARE_HOME_ROLES = new Set(['care-home-staff', 'care-home-manager']);

export interface CareHomeOptions {
  send: SendPage;
  connection: (req: FastifyRequest) => RecordConnection;
  breakGlass?: PortalBreakGlass;
}

const residentPath = (id: string) => `/care-home/residents/${encodeURIComponent(id)}`;

/**
 * A resident the page could not find: missing from the record (404), or there but outside the user's care
 * relationships, which a search does not reveal and a read refuses (the break-glass prompt).
 */
async function notFoundOrRefused(record: RecordClient, id: string): Promise<never> {
  try {
    await record.read('Patient', id);
  } catch (err) {
    if (isRelationshipRefusal(err)) throw new NoCareRelationship(id, residentPath(id));
    throw err;
  }
  throw new PageNotFound('There is no resident with this identifier in the record.');
}

/** The signed-in care-home worker, or a redirect to sign in (undefined: the reply is already sent). */
export function careHomeActor(req: FastifyRequest, reply: FastifyReply): UserActor | undefined {
  const visit = visitOf(req);
  if (!visit.actor) {
    void reply.redirect(visit.sessionEnded ? '/sign-in?reason=expired' : '/sign-in', 303);
    return undefined;
  }
  if (!CARE_HOME_ROLES.has(visit.actor.role)) throw new NotAllowedHere('These pages are for care home staff.');
  return visit.actor;
}

export const ACVPU_CHOICES = Object.entries(ACVPU_CODES).map(([value, c]) => ({ value, text: `${value} – ${c.label}` }));

export function careHomeRoutes(app: FastifyInstance, { send, connection, breakGlass }: CareHomeOptions): void {
  const recordOf = (req: FastifyRequest, actor: UserActor) => recordFor(connection(req), actor, req.ip);
  const bannerFor = (actor: UserActor, patientId: string) => grantInEffect(breakGlass, actor, patientId);

  app.get<{ Querystring: { q?: string } }>('/care-home', async (req, reply) => {
    const actor = careHomeActor(req, reply);
    if (!actor) return reply;
    const view = await residentsView(recordOf(req, actor), actor, typeof req.query.q === 'string' ? req.query.q : undefined);
    return send(req, reply, 'pages/care-home/residents.njk', { pageTitle: view.errors.length || !view.query ? 'Residents' : `Residents matching ${view.query}`, ...view, ...errorView(view.errors) }, view.errors.length ? 400 : 200);
  });

  app.get<{ Params: { id: string }; Querystring: { recorded?: string } }>('/care-home/residents/:id', async (req, reply) => {
    const actor = careHomeActor(req, reply);
    if (!actor) return reply;
    const record = recordOf(req, actor);
    const summary = (await residentSummary(record, req.params.id)) ?? (await notFoundOrRefused(record, req.params.id));
    const banner = await bannerFor(actor, req.params.id);
    return send(req, reply, 'pages/care-home/resident.njk', { pageTitle: summary.patient.name, summary, recorded: req.query.recorded === 'news2', breakGlass: banner });
  });

  app.post<{ Params: { id: string }; Body: BreakGlassForm }>('/care-home/residents/:id/break-glass', async (req, reply) => {
    const actor = careHomeActor(req, reply);
    if (!actor) return reply;
    if (!breakGlass) throw new NotAllowedHere('Break-glass is not available on this server.');
    const path = residentPath(req.params.id);
    const values = { reasonCode: req.body.reasonCode, reason: req.body.reason };
    const prompt = (errors: Parameters<typeof errorView>[0]) => send(req, reply, 'pages/break-glass.njk', { ...breakGlassPrompt(req.params.id, `${path}/break-glass`, values), ...errorView(errors) }, 400);
    const errors = checkBreakGlassForm(values);
    if (errors.length) return prompt(errors);
    try {
      await breakGlass.declare(actor, { patientId: req.params.id, reasonCode: values.reasonCode!, reason: values.reason! }, req.ip);
    } catch (err) {
      const fieldErrors = err instanceof FhirError ? fieldErrorsOf(err, { reasonCode: 'reasonCode', reason: 'reason' }) : undefined;
      if (fieldErrors) return prompt(fieldErrors);
      if (err instanceof FhirError && err.status === 404) throw new PageNotFound('There is no resident with this identifier in the record.');
      throw err;
    }
    return reply.redirect(path, 303);
  });

  const formPage = async (req: FastifyRequest<{ Params: { id: string } }>, actor: UserActor) => {
    const record = recordOf(req, actor);
    const found = await record.search('Patient', [['_id', req.params.id], ['_revinclude', 'Flag:patient']]);
    const patient = found.matches[0] ?? (await notFoundOrRefused(record, req.params.id));
    const scale2 = found.included.find(isScale2Decision);
    const banner = await bannerFor(actor, patient.id);
    return { record, patient, name: personName(patient), spo2Scale2: scale2 ? { reason: scale2.code?.text } : undefined, breakGlass: banner };
  };

  app.get<{ Params: { id: string } }>('/care-home/residents/:id/news2', async (req, reply) => {
    const actor = careHomeActor(req, reply);
    if (!actor) return reply;
    const { patient, name, spo2Scale2, breakGlass: banner } = await formPage(req, actor);
    return send(req, reply, 'pages/care-home/news2.njk', { pageTitle: `Record NEWS2 observations for ${name}`, patientId: patient.id, name, spo2Scale2, breakGlass: banner, values: {}, acvpuChoices: ACVPU_CHOICES, ...errorView([]) });
  });

  app.post<{ Params: { id: string }; Body: News2Form }>('/care-home/residents/:id/news2', async (req, reply) => {
    const actor = careHomeActor(req, reply);
    if (!actor) return reply;
    const { record, patient, name, spo2Scale2, breakGlass: banner } = await formPage(req, actor);
    const checked = checkNews2Form(req.body, Boolean(spo2Scale2));
    if (!checked.ok) {
      return send(req, reply, 'pages/care-home/news2.njk', { pageTitle: `Record NEWS2 observations for ${name}`, patientId: patient.id, name, spo2Scale2, breakGlass: banner, values: req.body, acvpuChoices: ACVPU_CHOICES, ...errorView(checked.errors) }, 400);
    }
    const careHome = await careHomeOf(record, actor);
    await record.transaction(news2Transaction(patient.id, checked.value, scoreReadings(checked.value), actor, careHome, new Date()));
    return reply.redirect(`/care-home/residents/${encodeURIComponent(patient.id)}?recorded=news2#observations`, 303);
  });
}
