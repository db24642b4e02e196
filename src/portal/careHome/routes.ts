// The care-home pages: residents list, a resident's record summary (the shared person pages), and the
// NEWS2 entry form.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { UserActor } from '../../access/index.ts';
import { recordFor, type RecordConnection } from '../recordClient.ts';
import { errorView, type SendPage } from '../page.ts';
import { residentsView } from './residents.ts';
import { isScale2Decision } from '../person/summary.ts';
import { personName } from '../person/text.ts';
import { organisationOf } from '../person/organisation.ts';
import { notFoundOrRefused, personRecordRoutes, signedInAs } from '../person/recordPages.ts';
import { checkNews2Form, news2Transaction, scoreReadings, type News2Form } from './news2Entry.ts';
import { formSubmission } from '../formSubmission.ts';
import { ACVPU_CODES } from './codes.ts';
import { grantInEffect } from '../breakGlass.ts';
import type { PortalBreakGlass } from '../portalAccess.ts';

export const CARE_HOME_ROLES: ReadonlySet<UserActor['role']> = new Set(['care-home-staff', 'care-home-manager']);
const REFUSAL = 'These pages are for care home staff.';
const RESIDENTS = { base: '/care-home/residents', back: { href: '/care-home', text: 'Residents' }, noun: 'resident' };

export interface CareHomeOptions {
  send: SendPage;
  connection: (req: FastifyRequest) => RecordConnection;
  breakGlass?: PortalBreakGlass;
}

export const ACVPU_CHOICES = Object.entries(ACVPU_CODES).map(([value, c]) => ({ value, text: `${value} – ${c.label}` }));

export function careHomeRoutes(app: FastifyInstance, { send, connection, breakGlass }: CareHomeOptions): void {
  const recordOf = (req: FastifyRequest, actor: UserActor) => recordFor(connection(req), actor, req.ip);

  app.get<{ Querystring: { q?: string } }>('/care-home', async (req, reply) => {
    const actor = signedInAs(req, reply, CARE_HOME_ROLES, REFUSAL);
    if (!actor) return reply;
    const view = await residentsView(recordOf(req, actor), actor, typeof req.query.q === 'string' ? req.query.q : undefined);
    return send(req, reply, 'pages/care-home/residents.njk', { pageTitle: view.errors.length || !view.query ? 'Residents' : `Residents matching ${view.query}`, live: view.query ? undefined : 'residents', ...view, ...errorView(view.errors) }, view.errors.length ? 400 : 200);
  });

  personRecordRoutes(app, {
    send, connection, breakGlass, roles: CARE_HOME_ROLES, refusal: REFUSAL, news2Entry: true, ...RESIDENTS,
    actions: (_actor, id) => [{ href: `/care-home/residents/${encodeURIComponent(id)}/red-bag`, text: 'Send to hospital (red bag)' }, { href: '/red-bag', text: 'Red bags sent' }],
  });

  const formPage = async (req: FastifyRequest<{ Params: { id: string } }>, actor: UserActor) => {
    const record = recordOf(req, actor);
    const found = await record.search('Patient', [['_id', req.params.id], ['_revinclude', 'Flag:patient']]);
    const patient = found.matches[0] ?? (await notFoundOrRefused(record, req.params.id, { ...RESIDENTS, breakGlass }));
    const scale2 = found.included.find(isScale2Decision);
    const banner = await grantInEffect(breakGlass, actor, patient.id);
    return { record, patient, name: personName(patient), spo2Scale2: scale2 ? { reason: scale2.code?.text } : undefined, breakGlass: banner };
  };

  app.get<{ Params: { id: string } }>('/care-home/residents/:id/news2', async (req, reply) => {
    const actor = signedInAs(req, reply, CARE_HOME_ROLES, REFUSAL);
    if (!actor) return reply;
    const { patient, name, spo2Scale2, breakGlass: banner } = await formPage(req, actor);
    return send(req, reply, 'pages/care-home/news2.njk', { pageTitle: `Record NEWS2 observations for ${name}`, patientId: patient.id, name, spo2Scale2, breakGlass: banner, values: { submission: formSubmission(undefined) }, acvpuChoices: ACVPU_CHOICES, ...errorView([]) });
  });

  app.post<{ Params: { id: string }; Body: News2Form }>('/care-home/residents/:id/news2', async (req, reply) => {
    const actor = signedInAs(req, reply, CARE_HOME_ROLES, REFUSAL);
    if (!actor) return reply;
    const { record, patient, name, spo2Scale2, breakGlass: banner } = await formPage(req, actor);
    const checked = checkNews2Form(req.body, Boolean(spo2Scale2));
    if (!checked.ok) {
      return send(req, reply, 'pages/care-home/news2.njk', { pageTitle: `Record NEWS2 observations for ${name}`, patientId: patient.id, name, spo2Scale2, breakGlass: banner, values: { ...req.body, submission: formSubmission(req.body.submission) }, acvpuChoices: ACVPU_CHOICES, ...errorView(checked.errors) }, 400);
    }
    const careHome = await organisationOf(record, actor);
    await record.transaction(news2Transaction(patient.id, checked.value, scoreReadings(checked.value), actor, careHome, new Date(), formSubmission(req.body.submission)));
    return reply.redirect(`/care-home/residents/${encodeURIComponent(patient.id)}?recorded=news2#observations`, 303);
  });
}
