// The red bag in the portal: a care home starts a transfer from a resident's page (prefilled from the
// record; only the reason and the belongings need typing), both sides track it, the hospital acknowledges
// and attaches the discharge summary, and the home closes it on return. Every step goes through
// src/redbag as the signed-in person, so the record's access checks and audit apply.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { FhirError } from '../../record/index.ts';
import type { UserActor } from '../../access/index.ts';
import {
  advanceTransfer, BASELINE_DOMAINS, BELONGING_CHOICES, DEFAULT_RED_BAG_SETTINGS, isRedBagTask, packOf, prepareTransferPack, progressOf, sectionsOfPack, sendTransferPack, transferPackPdf,
  type BaselineDomain, type RedBagContext, type RedBagSettings, type TransferDetails,
} from '../../redbag/index.ts';
import { recordFor, type RecordClient, type RecordConnection } from '../recordClient.ts';
import { errorView, type FieldError, type SendPage } from '../page.ts';
import { visitOf } from '../visit.ts';
import { PageNotFound } from '../pageErrors.ts';
import { formSubmission } from '../formSubmission.ts';
import { actionsFor, CARE_HOME_ROLES, HOSPITAL_ROLES, hospitals, openRedBags, STEP_LABELS, transferView } from './views.ts';

export class RedBagNotAllowed extends Error {}

export interface RedBagOptions {
  send: SendPage;
  connection: (req: FastifyRequest) => RecordConnection;
  settings?: RedBagSettings;
}

type Form = Record<string, string | string[] | undefined>;

function actorOf(req: FastifyRequest, reply: FastifyReply, roles: Set<string>): UserActor | undefined {
  const visit = visitOf(req);
  if (!visit.actor) {
    void reply.redirect(visit.sessionEnded ? '/sign-in?reason=expired' : '/sign-in', 303);
    return undefined;
  }
  if (!roles.has(visit.actor.role)) throw new RedBagNotAllowed('Red bags are for care home and hospital staff.');
  return visit.actor;
}

function field(form: Form, name: string): string | undefined {
  const v = form[name];
  return typeof v === 'string' ? v.trim() || undefined : undefined;
}

function detailsOf(form: Form): TransferDetails {
  const ticked = form.belongings === undefined ? [] : Array.isArray(form.belongings) ? form.belongings : [form.belongings];
  const other = field(form, 'belongingsOther');
  const baseline: TransferDetails['baseline'] = {};
  for (const d of Object.keys(BASELINE_DOMAINS) as BaselineDomain[]) baseline[d] = field(form, `baseline-${d}`)?.slice(0, 1000);
  return {
    reason: field(form, 'reason')?.slice(0, 4000), destination: field(form, 'destination'), recommendation: field(form, 'recommendation')?.slice(0, 4000),
    belongings: [...ticked.filter((b) => BELONGING_CHOICES.includes(b)), ...(other ? [other.slice(0, 500)] : [])],
    baseline, attested: form.attest === 'yes',
  };
}

/** Which form field each blocking finding is about, so the error summary links to it. */
const FIELD_OF: Record<string, string> = { 'RB-M3': 'reason', 'RB-M4': 'destination', 'RB-M6': 'attest' };

export function redBagRoutes(app: FastifyInstance, { send, connection, settings = DEFAULT_RED_BAG_SETTINGS }: RedBagOptions): void {
  const both = new Set([...CARE_HOME_ROLES, ...HOSPITAL_ROLES]);
  const contextOf = (req: FastifyRequest, actor: UserActor): { record: RecordClient; ctx: RedBagContext } => {
    const conn = connection(req);
    const record = recordFor(conn, actor, req.ip);
    return { record, ctx: { call: record.fhir, caller: { display: actor.name, reference: actor.fhirUser, organisation: actor.organisation, role: actor.role }, base: conn.base, now: Date.now, settings } };
  };

  const startPage = async (req: FastifyRequest<{ Params: { id: string } }>, reply: FastifyReply, actor: UserActor, details: TransferDetails, errors: FieldError[], status: number, submission: string) => {
    const { record, ctx } = contextOf(req, actor);
    const [draft, choices] = await Promise.all([prepareTransferPack(ctx, req.params.id, details), hospitals(record)]);
    const name = draft.record.patient.name?.[0] ? [...(draft.record.patient.name[0].given ?? []), draft.record.patient.name[0].family].join(' ') : 'Resident';
    return send(req, reply, 'pages/red-bag/start.njk', {
      pageTitle: `Send ${name} to hospital`, patientId: req.params.id, name, details, hospitals: choices, submission,
      belongingChoices: BELONGING_CHOICES, baselineDomains: Object.entries(BASELINE_DOMAINS).map(([key, label]) => ({ key, label })),
      stale: draft.findings.filter((f) => f.severity === 'stale'), sections: sectionsOfPack(draft.bundle).slice(1),
      ...errorView(errors),
    }, status);
  };

  app.get<{ Params: { id: string } }>('/care-home/residents/:id/red-bag', async (req, reply) => {
    const actor = actorOf(req, reply, CARE_HOME_ROLES);
    if (!actor) return reply;
    return startPage(req, reply, actor, { belongings: [], baseline: {}, attested: false }, [], 200, formSubmission(undefined));
  });

  app.post<{ Params: { id: string }; Body: Form }>('/care-home/residents/:id/red-bag', async (req, reply) => {
    const actor = actorOf(req, reply, CARE_HOME_ROLES);
    if (!actor) return reply;
    const details = detailsOf(req.body ?? {});
    // Made when the form was shown: a second click of "Send" is the same send (see sendTransferPack).
    const submission = formSubmission(req.body?.submission);
    try {
      const { task } = await sendTransferPack(contextOf(req, actor).ctx, req.params.id, details, submission);
      return reply.redirect(`/red-bag/${encodeURIComponent(task.id)}?sent=1`, 303);
    } catch (err) {
      if (!(err instanceof FhirError) || err.status !== 422) throw err;
      const { findings } = await prepareTransferPack(contextOf(req, actor).ctx, req.params.id, details, true);
      const errors = findings.filter((f) => f.severity === 'missing').map((f) => ({ field: FIELD_OF[f.rule] ?? 'reason', text: f.text }));
      return startPage(req, reply, actor, details, errors, 400, submission);
    }
  });

  app.get('/red-bag', async (req, reply) => {
    const actor = actorOf(req, reply, both);
    if (!actor) return reply;
    const { record } = contextOf(req, actor);
    const packs = await openRedBags(record, actor, Date.now());
    return send(req, reply, 'pages/red-bag/list.njk', { pageTitle: 'Red bags', packs, hospitalSide: HOSPITAL_ROLES.has(actor.role) });
  });

  const loadTask = async (req: FastifyRequest<{ Params: { task: string } }>, actor: UserActor) => {
    const { record, ctx } = contextOf(req, actor);
    const task = await record.read('Task', req.params.task);
    if (!task || !isRedBagTask(task)) throw new PageNotFound('There is no red bag with this identifier.');
    return { record, ctx, task };
  };

  const transferPage = async (req: FastifyRequest<{ Params: { task: string }; Querystring: { done?: string; sent?: string } }>, reply: FastifyReply, actor: UserActor, values: Form, errors: FieldError[], status: number, conflict = false) => {
    const { record, ctx, task } = await loadTask(req, actor);
    const view = transferView(task, await packOf(ctx, task));
    const summaryDoc = view.dischargeSummary ? await record.read('DocumentReference', view.dischargeSummary.split('/')[1]) : undefined;
    const summaryText = summaryDoc?.content?.[0]?.attachment?.contentType?.startsWith('text/plain') ? Buffer.from(summaryDoc.content[0].attachment.data ?? '', 'base64').toString('utf8') : undefined;
    const actions = actionsFor(task, actor).map((step) => ({ step, label: STEP_LABELS[step] }));
    return send(req, reply, 'pages/red-bag/transfer.njk', {
      pageTitle: `Red bag: ${view.person}`, view, actions, summaryText, values, conflict,
      done: req.query.done === 'sent' ? `Red bag sent again to ${view.to}` : typeof req.query.done === 'string' ? STEP_LABELS[req.query.done] : undefined, sent: req.query.sent === '1',
      ...errorView(errors),
    }, status);
  };

  app.get<{ Params: { task: string }; Querystring: { done?: string; sent?: string } }>('/red-bag/:task', async (req, reply) => {
    const actor = actorOf(req, reply, both);
    if (!actor) return reply;
    return transferPage(req, reply, actor, {}, [], 200);
  });

  app.post<{ Params: { task: string }; Body: Form; Querystring: { done?: string; sent?: string } }>('/red-bag/:task', async (req, reply) => {
    const actor = actorOf(req, reply, both);
    if (!actor) return reply;
    const form = req.body ?? {};
    const step = field(form, 'step') ?? '';
    try {
      await advanceTransfer(contextOf(req, actor).ctx, req.params.task, {
        step, ifMatch: `W/"${field(form, 'version') ?? ''}"`, ward: field(form, 'ward'), expectedDischarge: field(form, 'expectedDischarge'), dischargeSummary: field(form, 'dischargeSummary'), note: field(form, 'note'),
      });
    } catch (err) {
      // 502: a pack sent again that could not be handed to MESH; the page says so and what to do.
      if (!(err instanceof FhirError) || ![400, 409, 412, 502].includes(err.status)) throw err;
      req.query.done = undefined;
      if (err.status === 502) return transferPage(req, reply, actor, {}, err.issues.map((i) => ({ field: 'actions', text: i.diagnostics ?? 'The red bag could not be sent again. Telephone the ward.' })), 502);
      if (err.status === 412) return transferPage(req, reply, actor, {}, [{ field: 'actions', text: 'Someone else updated this red bag while you were looking at it. Check the latest below, then try again.' }], 409, true);
      const target = step === 'in-hospital' ? 'ward' : step === 'discharge-summary-attached' ? 'dischargeSummary' : 'actions';
      return transferPage(req, reply, actor, form, err.issues.map((i) => ({ field: target, text: i.diagnostics ?? 'The step could not be recorded.' })), 400);
    }
    return reply.redirect(`/red-bag/${encodeURIComponent(req.params.task)}?done=${encodeURIComponent(step)}`, 303);
  });

  app.get<{ Params: { task: string } }>('/red-bag/:task/pdf', async (req, reply) => {
    const actor = actorOf(req, reply, both);
    if (!actor) return reply;
    const { record, ctx, task } = await loadTask(req, actor);
    const pdf = await transferPackPdf(await packOf(ctx, task), progressOf(task));
    const patient = String(task.for?.reference ?? '').replace(/^Patient\//, '');
    await record.exported(`red-bag-${task.id}.pdf`, 'Task', patient ? [patient] : [], task.id);
    return reply.type('application/pdf').header('content-disposition', `inline; filename="red-bag-${task.id}.pdf"`).header('cache-control', 'no-store').send(pdf);
  });
}
