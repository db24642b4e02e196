// The discharge pages: the hospital's discharge board (/discharge/board), the council's referral queue
// (/discharge/referrals), a referral with the council's triage, worker and note forms
// (/discharge/referrals/:id), figures with a chart and CSV (/discharge/metrics), and live updates
// (/discharge/events). Reads go through the record with the signed-in person's access; changes go through
// the discharge workflow with the same access (src/discharge/index.ts).
import { readFileSync } from 'node:fs';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { UserActor } from '../../access/index.ts';
import { FhirError, type AccessControl, type SqlDriver } from '../../record/index.ts';
import { NotYourReferral, PATHWAYS, STEP_TAKERS, TRIAGE_DISPLAY, TRIAGE_STATES, dischargeNoticeWaiting, dischargeNoticesDue, type DischargeContext } from '../../discharge/index.ts';
import { recordFor, type RecordClient, type RecordConnection } from '../recordClient.ts';
import { errorView, type FieldError, type SendPage } from '../page.ts';
import { visitOf } from '../visit.ts';
import { NotAllowedHere, PageNotFound } from '../pageErrors.ts';
import { loadReferralRows, organisationOf, type ReferralRow, type Side } from './referralRows.ts';
import { dischargeMetrics, referralsCsv } from './metrics.ts';
import { liveUpdates, type Visible } from './liveUpdates.ts';
import { CONSENT_QUESTIONS, referralStart, sentBy, submitNewReferral, type NewReferralForm } from './newReferral.ts';
import { formSubmission } from '../formSubmission.ts';
import { submitAssign, submitDisagree, submitNote, submitReady, submitSupport, submitTriage, type AssignForm, type FormResult, type NoteForm, type SupportForm, type TriageForm } from './triageForms.ts';
import { submitDischarge, submitMedicallyReady, submitWithdraw, WITHDRAWAL_CHOICES, type DateForm, type WithdrawForm } from './hospitalForms.ts';

const HOSPITAL_REFERS = 'Only the hospital\'s discharge coordinators refer patients to a council.';
const ACTIONS = ['triage', 'assign', 'support', 'ready', 'disagree', 'medically-ready', 'discharged', 'withdraw', 'note'] as const;
type Action = typeof ACTIONS[number];
const COUNCIL_ONLY = 'Only the council\'s social workers respond to referrals and arrange support.';
const HOSPITAL_ONLY = 'Only the hospital\'s discharge coordinators record medically ready and discharge dates, or withdraw a referral.';
const REFUSALS: Record<Action, string> = {
  triage: COUNCIL_ONLY, assign: COUNCIL_ONLY, support: COUNCIL_ONLY, ready: COUNCIL_ONLY, disagree: COUNCIL_ONLY,
  'medically-ready': HOSPITAL_ONLY, discharged: HOSPITAL_ONLY, withdraw: HOSPITAL_ONLY,
  note: 'Only the council\'s social workers and the hospital\'s discharge coordinators add notes to referrals.',
};

/** What the portal needs from discharge: the workflow acting with a signed-in person's access. */
export interface DischargePortal { contextFor(access: AccessControl): DischargeContext }

export interface DischargePageOptions {
  send: SendPage;
  driver: SqlDriver;
  connection: (req: FastifyRequest) => RecordConnection;
  discharge?: DischargePortal;
}

const SIDE_OF_ROLE: Partial<Record<string, Side>> = { 'discharge-coordinator': 'hospital', 'ward-nurse': 'hospital', 'social-worker': 'council', broker: 'council' };
/** Who changes referrals from these pages: the workflow's own step takers, on their own side; both sides add notes. */
const mayActAs = (who: { actor: UserActor; side: Side }, side: Side) => who.side === side && STEP_TAKERS[side].has(who.actor.role);
const LIVE_SCRIPT = readFileSync(new URL('./live.js', import.meta.url), 'utf8');

function dischargeActor(req: FastifyRequest, reply: FastifyReply): { actor: UserActor; side: Side } | undefined {
  const visit = visitOf(req);
  if (!visit.actor) {
    void reply.redirect(visit.sessionEnded ? '/sign-in?reason=expired' : '/sign-in', 303);
    return undefined;
  }
  const side = SIDE_OF_ROLE[visit.actor.role];
  if (!side) throw new NotAllowedHere('These pages are for hospital discharge teams and council social care teams.');
  return { actor: visit.actor, side };
}

const oneOf = <T extends string>(value: unknown, allowed: readonly T[]): T | undefined => (allowed as readonly unknown[]).includes(value) ? (value as T) : undefined;

export function dischargeRoutes(app: FastifyInstance, { send, driver, connection, discharge }: DischargePageOptions): void {
  const live = liveUpdates(app, driver);
  const recordOf = (req: FastifyRequest, actor: UserActor) => recordFor(connection(req), actor, req.ip);
  // Discharge notices waiting for the council's answer are the workflow's (its timers), read for the
  // referrals the person's own access returned; where the workflow does not run (read-only pages), none wait here.
  const noticesDue = discharge ? (ids: string[]) => dischargeNoticesDue(driver, ids) : async () => new Map<string, number>();
  const rowsFor = async (record: RecordClient, actor: UserActor, side: Side) => {
    const organisation = await organisationOf(record, actor);
    return { organisation, rows: await loadReferralRows(record, side, organisation, { noticesDue }) };
  };
  // Only changes to the person's own referrals are told: those their pages list, read as the pages read them.
  const visibleTo = async (record: RecordClient, actor: UserActor, side: Side): Promise<Visible> => {
    const { rows } = await rowsFor(record, actor, side);
    return { referrals: new Set(rows.map((r) => r.id)), tasks: new Set(rows.map((r) => r.taskId)), patients: new Set(rows.map((r) => r.patientId)) };
  };

  app.get('/discharge/live.js', async (_req, reply) => reply.type('text/javascript; charset=utf-8').header('cache-control', 'no-cache').send(LIVE_SCRIPT));

  app.get('/discharge/events', async (req, reply) => {
    const who = dischargeActor(req, reply);
    if (!who) return reply;
    const session = visitOf(req).sessionId ?? '';
    const sessions = connection(req).access.accounts?.sessions;
    if (!session || !sessions) return reply.redirect('/sign-in', 303);
    const record = recordOf(req, who.actor);
    return live.stream(req, reply, {
      session,
      // Watched while the stream is open: signing out, expiry, a disabled account or a password reset ends it.
      watch: (ended) => sessions.watch(session, ended),
      visible: () => visibleTo(record, who.actor, who.side),
    });
  });

  app.get<{ Querystring: { ward?: string; pathway?: string; status?: string } }>('/discharge/board', async (req, reply) => {
    const who = dischargeActor(req, reply);
    if (!who) return reply;
    if (who.side !== 'hospital') return reply.redirect('/discharge/referrals', 303);
    const { organisation, rows } = await rowsFor(recordOf(req, who.actor), who.actor, 'hospital');
    const wards = [...new Set(rows.map((r) => r.ward))].sort();
    const filter = {
      ward: oneOf(req.query.ward, wards),
      pathway: oneOf(req.query.pathway, ['0', '1', '2', '3'] as const),
      status: oneOf(req.query.status, [...TRIAGE_STATES, 'open'] as const) ?? (req.query.status === undefined ? 'open' : undefined),
    };
    const shown = rows
      .filter((r) => (!filter.ward || r.ward === filter.ward) && (!filter.pathway || String(r.pathway) === filter.pathway))
      .filter((r) => !filter.status || (filter.status === 'open' ? r.open : r.state === filter.status))
      .sort((a, b) => a.ward.localeCompare(b.ward) || (b.daysDelayed ?? -1) - (a.daysDelayed ?? -1));
    const byWard = [...new Set(shown.map((r) => r.ward))].map((ward) => ({ ward, rows: shown.filter((r) => r.ward === ward) }));
    return send(req, reply, 'pages/discharge/board.njk', {
      pageTitle: 'Discharge board', organisation: organisation.name, byWard, count: shown.length, filter,
      wardItems: choices([{ value: '', text: 'All wards' }, ...wards.map((w) => ({ value: w, text: w }))], filter.ward ?? ''),
      pathwayItems: choices([{ value: '', text: 'All pathways' }, ...Object.entries(PATHWAYS).map(([value, text]) => ({ value, text }))], filter.pathway ?? ''),
      statusItems: choices(statusChoices(), filter.status ?? ''),
    });
  });

  app.get('/discharge/referrals', async (req, reply) => {
    const who = dischargeActor(req, reply);
    if (!who) return reply;
    if (who.side !== 'council') return reply.redirect('/discharge/board', 303);
    const { organisation, rows } = await rowsFor(recordOf(req, who.actor), who.actor, 'council');
    const shown = rows.filter((r) => r.open).sort(byDeadline);
    return send(req, reply, 'pages/discharge/queue.njk', { pageTitle: 'Discharge referrals', organisation: organisation.name, rows: shown, overdue: shown.filter((r) => r.overdue).length });
  });

  const newReferralPage = async (req: FastifyRequest<{ Querystring: { patient?: string } }>, reply: FastifyReply, form: { values?: NewReferralForm; errors?: FieldError[]; status?: number } = {}) => {
    const who = dischargeActor(req, reply);
    if (!who) return reply;
    if (!mayActAs(who, 'hospital') || !discharge) throw new NotAllowedHere(HOSPITAL_REFERS);
    if (!req.query.patient) throw new PageNotFound('Start a referral from a patient on the ward list.');
    const record = recordOf(req, who.actor);
    let start = await referralStart(record, who.actor, req.query.patient);
    const sent = (id: string) => reply.redirect(`/discharge/referrals/${encodeURIComponent(id)}?done=referred`, 303);
    if (form.values && !start.openReferral && discharge) {
      const ctx = discharge.contextFor(await connection(req).access.controlFor(who.actor, req.ip));
      const created = await submitNewReferral(ctx, who.actor, start, form.values);
      if (created.id) return sent(created.id);
      form = { ...form, errors: created.errors, status: 400 };
      // Refused because the stay has an open referral now: sent by this click's twin, or by someone else.
      start = await referralStart(record, who.actor, req.query.patient);
    }
    if (form.values && start.openReferral) {
      // A second click of "Send" (the same submission) shows the referral the first one sent; another
      // form gets the page saying the stay already has one, with the link to it.
      if (sentBy(start, form.values)) return sent(start.openReferral);
      form = { ...form, errors: [], status: 409 };
    }
    return send(req, reply, 'pages/discharge/new-referral.njk', {
      pageTitle: 'Refer for care and support after discharge', start, questions: CONSENT_QUESTIONS,
      councilItems: choices(start.councils, form.values?.council ?? ''),
      pathways: Object.entries(PATHWAYS).map(([value, text]) => ({ value, text })),
      values: { ...form.values, submission: formSubmission(form.values?.submission) }, ...errorView(form.errors ?? []),
    }, form.status ?? 200);
  };
  app.get<{ Querystring: { patient?: string } }>('/discharge/referrals/new', (req, reply) => newReferralPage(req, reply));
  app.post<{ Querystring: { patient?: string }; Body: NewReferralForm }>('/discharge/referrals/new', (req, reply) => newReferralPage(req, reply, { values: req.body ?? {} }));

  const referralPage = async (req: FastifyRequest<{ Params: { id: string } }>, reply: FastifyReply, who: { actor: UserActor; side: Side }, form: { errors?: FieldError[]; values?: Record<string, string>; done?: string; status?: number } = {}) => {
    const record = recordOf(req, who.actor);
    const { rows } = await rowsFor(record, who.actor, who.side);
    const row = rows.find((r) => r.id === req.params.id);
    if (!row) throw new PageNotFound('There is no discharge referral with this identifier that you can see.');
    const notes = (await record.search('Communication', [['based-on', `ServiceRequest/${row.id}`], ['_sort', '-sent'], ['_count', '100']])).matches;
    const councilActs = mayActAs(who, 'council') && Boolean(discharge);
    const hospitalActs = mayActAs(who, 'hospital') && Boolean(discharge);
    const workers = councilActs ? await workerChoices(record, who.actor) : [];
    // A discharge notice waits for the council's answer even after it confirmed the person ready.
    const dischargeNotice = councilActs && row.open && await dischargeNoticeWaiting(driver, row.id);
    return send(req, reply, 'pages/discharge/referral.njk', {
      pageTitle: `Discharge referral for ${row.name}`, row, side: who.side, noticeOwed: row.owed.find((o) => o.kind === 'discharge-notice'), mayAct: councilActs || hospitalActs, councilActs, hospitalActs, workers,
      notes: notes.map((n) => ({ category: n.category?.[0]?.text ?? 'Note', text: n.payload?.[0]?.contentString ?? '', by: n.sender?.display, at: n.sent })),
      canTriage: row.state === 'received' || row.state === 'more-information-requested',
      canAssign: ['accepted', 'assigned', 'support-arranged'].includes(row.state),
      canArrange: ['assigned', 'support-arranged'].includes(row.state),
      canConfirm: ['accepted', 'assigned', 'support-arranged'].includes(row.state) || (row.state === 'ready' && dischargeNotice), canDisagree: dischargeNotice,
      canChangeDates: row.open, canWithdraw: row.open, withdrawalChoices: WITHDRAWAL_CHOICES,
      values: form.values ?? {}, done: form.done, ...errorView(form.errors ?? []),
    }, form.status ?? 200);
  };

  app.get<{ Params: { id: string }; Querystring: { done?: string } }>('/discharge/referrals/:id', async (req, reply) => {
    const who = dischargeActor(req, reply);
    if (!who) return reply;
    return referralPage(req, reply, who, { done: oneOf(req.query.done, [...ACTIONS, 'referred'] as const) });
  });

  const action = <B extends Record<string, string | undefined>>(name: Action, sides: readonly Side[], submit: (ctx: DischargeContext, actor: UserActor, id: string, body: B, record: RecordClient) => Promise<FormResult>) =>
    app.post<{ Params: { id: string }; Body: B }>(`/discharge/referrals/:id/${name}`, async (req, reply) => {
      const who = dischargeActor(req, reply);
      if (!who) return reply;
      if (!sides.some((side) => mayActAs(who, side)) || !discharge) throw new NotAllowedHere(REFUSALS[name]);
      const record = recordOf(req, who.actor);
      const ctx = discharge.contextFor(await connection(req).access.controlFor(who.actor, req.ip));
      const body = (req.body ?? {}) as B;
      const result = await submit(ctx, who.actor, req.params.id, body, record).catch((err: unknown) => {
        // Another council's or hospital's referral: the workflow refused and changed nothing; say why.
        if (err instanceof NotYourReferral) throw new NotAllowedHere(err.issues[0]?.diagnostics ?? err.message);
        // No such referral (a stale or mistyped address): the page that is not there, not a server error.
        if (err instanceof FhirError && err.status === 404) throw new PageNotFound('There is no discharge referral you can see with this identifier.');
        throw err;
      });
      if (result.ok) return reply.redirect(`/discharge/referrals/${encodeURIComponent(req.params.id)}?done=${name}`, 303);
      const values = Object.fromEntries(Object.entries(body).filter(([k]) => k !== '_csrf' && k !== 'version')) as Record<string, string>;
      return referralPage(req, reply, who, { errors: result.errors, values, status: result.stale ? 409 : 400 });
    });
  const dateFields = (body: Record<string, string | undefined>, prefix: string): DateForm => ({ version: body.version, day: body[`${prefix}-day`], month: body[`${prefix}-month`], year: body[`${prefix}-year`] });
  action<TriageForm & Record<string, string | undefined>>('triage', ['council'], (ctx, actor, id, body) => submitTriage(ctx, actor, id, body));
  action<AssignForm & Record<string, string | undefined>>('assign', ['council'], async (ctx, actor, id, body, record) => submitAssign(ctx, actor, id, body, await workerChoices(record, actor)));
  action<SupportForm & Record<string, string | undefined>>('support', ['council'], (ctx, actor, id, body) => submitSupport(ctx, actor, id, body));
  action<Record<string, string | undefined>>('ready', ['council'], (ctx, actor, id, body) => submitReady(ctx, actor, id, { version: body.version, note: body['ready-note'] }));
  action<Record<string, string | undefined>>('disagree', ['council'], (ctx, actor, id, body) => submitDisagree(ctx, actor, id, { version: body.version, reason: body['disagree-reason'] }));
  action<Record<string, string | undefined>>('medically-ready', ['hospital'], (ctx, actor, id, body) => submitMedicallyReady(ctx, actor, id, dateFields(body, 'ready')));
  action<Record<string, string | undefined>>('discharged', ['hospital'], (ctx, actor, id, body) => submitDischarge(ctx, actor, id, dateFields(body, 'discharged')));
  action<WithdrawForm & Record<string, string | undefined>>('withdraw', ['hospital'], (ctx, actor, id, body) => submitWithdraw(ctx, actor, id, body));
  action<NoteForm & Record<string, string | undefined>>('note', ['council', 'hospital'], (ctx, actor, id, body) => submitNote(ctx, actor, id, body));

  app.get('/discharge/metrics', async (req, reply) => {
    const who = dischargeActor(req, reply);
    if (!who) return reply;
    const { organisation, rows } = await rowsFor(recordOf(req, who.actor), who.actor, who.side);
    return send(req, reply, 'pages/discharge/metrics.njk', { pageTitle: 'Discharge figures', organisation: organisation.name, side: who.side, metrics: dischargeMetrics(rows), count: rows.length });
  });

  app.get('/discharge/metrics.csv', async (req, reply) => {
    const who = dischargeActor(req, reply);
    if (!who) return reply;
    const record = recordOf(req, who.actor);
    const { rows } = await rowsFor(record, who.actor, who.side);
    await record.exported('discharge-referrals.csv', 'ServiceRequest', rows.map((r) => r.patientId).filter(Boolean));
    return reply.type('text/csv; charset=utf-8').header('content-disposition', 'attachment; filename="discharge-referrals.csv"').header('cache-control', 'no-store').send(referralsCsv(rows));
  });
}

function choices(items: { value: string; text: string }[], selected: string) {
  return items.map((i) => ({ ...i, selected: i.value === selected }));
}

function statusChoices() {
  return [{ value: 'open', text: 'All open referrals' }, ...TRIAGE_STATES.map((s) => ({ value: s, text: TRIAGE_DISPLAY[s] })), { value: '', text: 'All referrals' }];
}

/**
 * Overdue first, then by the earliest answer the council owes (its response to the referral or its answer
 * to a discharge notice, whichever is due first); referrals owing nothing after those still waiting, the
 * oldest first. A discharge notice on a referral accepted long ago is work as urgent as a new referral
 * (hazard H-043).
 */
function byDeadline(a: ReferralRow, b: ReferralRow): number {
  const due = (r: ReferralRow) => (r.nextDue ? Date.parse(r.nextDue) : Infinity);
  const [x, y] = [due(a), due(b)];
  return Number(b.overdue) - Number(a.overdue) || (x === y ? 0 : x < y ? -1 : 1) || (a.received ?? '').localeCompare(b.received ?? '');
}

/** The workers a referral can be given: practitioners with a role at the council or one of its teams. */
async function workerChoices(record: RecordClient, actor: UserActor): Promise<{ value: string; text: string }[]> {
  const council = await organisationOf(record, actor);
  const teams = (await record.search('Organization', [['partof', `Organization/${council.id}`]])).matches.map((o) => `Organization/${o.id}`);
  const { matches, included } = await record.search('PractitionerRole', [['organization', [`Organization/${council.id}`, ...teams].join(',')], ['active', 'true'], ['_include', 'PractitionerRole:practitioner'], ['_count', '200']]);
  const names = new Map(included.filter((r) => r.resourceType === 'Practitioner').map((p) => [`Practitioner/${p.id}`, p.name?.[0]?.text ?? [...(p.name?.[0]?.given ?? []), p.name?.[0]?.family].filter(Boolean).join(' ')]));
  const choices = new Map<string, string>();
  for (const role of matches) {
    const ref = role.practitioner?.reference;
    if (ref) choices.set(ref, `${names.get(ref) ?? role.practitioner.display ?? ref}${role.code?.[0]?.text ? ` (${role.code[0].text})` : ''}`);
  }
  if (actor.fhirUser?.startsWith('Practitioner/') && !choices.has(actor.fhirUser)) choices.set(actor.fhirUser, actor.name);
  return [...choices].map(([value, text]) => ({ value, text })).sort((a, b) => a.text.localeCompare(b.text));
}
