// The discharge-to-assess workflow: a hospital ward refers a person to the council; the council triages
// (accept, ask for more information, reject with a reason), assigns a worker, records the support arranged
// and confirms readiness; the hospital records the discharge. Each step is one record transaction that
// checks the version the person saw (If-Match), so two people cannot overwrite each other, and leaves every
// change in the record's history.
import { createHash, randomUUID } from 'node:crypto';
import { escapeSearchValue, FhirError } from '../record/index.ts';
import {
  ALLOWED_FROM, ANSWERING_DISCHARGE_NOTICE, AWAITING_RESPONSE, CONSENT_QUESTIONNAIRE, DISCHARGE_REFERRAL_SYSTEM, EXPECTED_DISCHARGE_URL, FINAL_STATES,
  MEDICALLY_READY_URL, OVERDUE_TAG, REFERRAL_CATEGORY, REFERRAL_CODE, STATE_STATUS, TRIAGE_DISPLAY, TRIAGE_TASK_CODE,
  businessStatus, pathwayCoding, triageStateOf, withExtensionDate, type Pathway, type TriageState,
} from './model.ts';
import { clock, inRecordTransaction, type DischargeContext, type FhirResource, type RecordSession } from './recordSession.ts';
import { deadlineAfter, type DeadlineRule } from './calendar.ts';
import { adwAfterStep, dischargeNoticeOwedAfter, dischargeNoticeWaiting } from './adw/outbound.ts';

export interface Reference { reference?: string; display?: string }

/** One consent or consultation answer: a coded answer (Y, N, NKC, L…) or free text. */
export interface ConsentAnswer { linkId: string; text: string; code?: string; system?: string; display?: string; value?: string }

export interface NewReferral {
  /** Patient/<id> */
  patient: string;
  /** Encounter/<id>: the hospital stay. */
  encounter?: string;
  /** ODS codes of the referring hospital (site or trust) and of the council; both must be in the record. */
  hospitalOds: string;
  councilOds: string;
  /** Location/<id> of the ward. */
  ward?: string;
  /** Who is referring (a Practitioner reference, or just a name) and how to reach them. */
  referrer?: { practitioner?: string; name?: string; phone?: string; email?: string };
  pathway?: Pathway;
  /** FHIR dateTime strings. */
  expectedDischarge?: string;
  medicallyReady?: string;
  reason?: string;
  needs?: string[];
  supportRequested?: string[];
  consent?: ConsentAnswer[];
  /** The referral's id (a UUID); an ADW episode passes its ReferralRequest.identifier value. */
  identifier?: string;
  /** When it arrived (the deadline counts from here); now by default. */
  receivedAt?: number;
  /** The deadline rule when the council has none of its own. */
  deadline?: DeadlineRule;
}

export type { Referral } from './recordSession.ts';
import type { Referral } from './recordSession.ts';

/** Options every step takes: the Task version the person acted on, and who they are. */
export interface StepOptions { ifMatch?: string; by?: Reference }


function fail(status: number, code: 'not-found' | 'conflict' | 'invalid' | 'business-rule', diagnostics: string): FhirError {
  return new FhirError(status, [{ severity: 'error', code, diagnostics }]);
}

/**
 * A person acting on a referral for an organisation that is not one of its two (403): a page shows it as a
 * refusal of its own, not as the record's "you do not have access" (the person may well see the referral).
 */
export class NotYourReferral extends FhirError {
  constructor(diagnostics: string) {
    super(403, [{ severity: 'error', code: 'forbidden', diagnostics }]);
  }
}

/** Ids derived from the referral's, so a retried step writes the same Task rather than a second one. */
export function derivedId(prefix: string, referralId: string): string {
  const id = `${prefix}-${referralId}`;
  return id.length <= 64 ? id : `${prefix}-${createHash('sha256').update(referralId).digest('hex').slice(0, 40)}`;
}

/**
 * Organisations already looked up in a session: an inbound notice names its hospital and council when it is
 * checked, mapped and turned into a referral, and the workflow never changes an Organization mid-step.
 */
const organisationsSeen = new WeakMap<RecordSession, Map<string, FhirResource | undefined>>();

export async function organisationByOds(session: RecordSession, ods: string): Promise<FhirResource | undefined> {
  const key = ods.toUpperCase();
  let seen = organisationsSeen.get(session);
  if (!seen) organisationsSeen.set(session, (seen = new Map()));
  if (!seen.has(key)) seen.set(key, (await session.search('Organization', [['identifier', key]]))[0]);
  return seen.get(key);
}

function ref(resource: FhirResource, display?: string): Reference {
  const d = display ?? (resource.name as string | undefined);
  return d ? { reference: `${resource.resourceType}/${resource.id}`, display: d } : { reference: `${resource.resourceType}/${resource.id}` };
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

/** The council's deadline rule for a kind of response, or the configured default. */
export async function councilDeadline(session: RecordSession, councilOds: string, kind: 'assessment' | 'discharge', fallback: DeadlineRule | undefined): Promise<DeadlineRule> {
  const row = await session.tx.get<{ assessment_deadline: string; discharge_deadline: string }>('SELECT assessment_deadline, discharge_deadline FROM discharge_councils WHERE ods = ?', [councilOds.toUpperCase()]);
  const text = row ? (kind === 'assessment' ? row.assessment_deadline : row.discharge_deadline) : undefined;
  if (text) {
    const [amount, unit] = text.split(' ');
    return { amount: Number(amount), unit: unit as DeadlineRule['unit'] };
  }
  if (!fallback) throw new Error(`No ${kind} deadline is set for council ${councilOds} and no default was configured.`);
  return fallback;
}

export async function scheduleDeadline(session: RecordSession, referralId: string, taskId: string, dueMs: number, now: number): Promise<void> {
  await cancelDeadlines(session, referralId, 'response-deadline');
  await session.tx.run('INSERT INTO discharge_timers (id, kind, referral_id, task_id, due_ms, status, created_ms) VALUES (?, ?, ?, ?, ?, ?, ?)', [randomUUID(), 'response-deadline', referralId, taskId, dueMs, 'pending', now]);
}

/**
 * Cancels a referral's pending timers: all of them, or those of one kind ('response-deadline' for the
 * triage response, 'discharge-notice' for the answer to a discharge notice).
 */
export async function cancelDeadlines(session: RecordSession, referralId: string, kind?: 'response-deadline' | 'discharge-notice'): Promise<void> {
  if (kind) await session.tx.run("UPDATE discharge_timers SET status = 'cancelled' WHERE referral_id = ? AND kind = ? AND status = 'pending'", [referralId, kind]);
  else await session.tx.run("UPDATE discharge_timers SET status = 'cancelled' WHERE referral_id = ? AND status = 'pending'", [referralId]);
}

/**
 * Sets again the timers a discharge ended, for a referral whose discharge was cancelled: the response
 * deadline while the council still owes its response (from the Task's own deadline, so it fires at once
 * when that has passed), and the answer to a discharge notice that still waits for one (the notice's own
 * due time). Without them nothing escalates, though the board shows the referral overdue (hazard H-012);
 * a lapse escalated before the discharge is escalated again, since the discharge closed its escalation.
 */
async function restoreDeadlinesIn(session: RecordSession, r: Referral, state: TriageState, now: number): Promise<void> {
  const end = r.task.restriction?.period?.end;
  if (AWAITING_RESPONSE.has(state) && end) await scheduleDeadline(session, r.referral.id, r.task.id, Date.parse(end), now);
  if (FINAL_STATES.has(state) || !(await dischargeNoticeWaiting(session.tx, r.referral.id))) return;
  const pending = await session.tx.get("SELECT 1 AS pending FROM discharge_timers WHERE referral_id = ? AND kind = 'discharge-notice' AND status = 'pending'", [r.referral.id]);
  // Fired as well as cancelled: a lapse escalated before the discharge had its escalation closed by it.
  const earlier = await session.tx.get<{ message_key: string; due_ms: number }>(
    // The waiting notice of this referral's own episode: another trust's may carry the same MessageHeader.id (H-048).
    `SELECT message_key, due_ms FROM discharge_timers WHERE referral_id = ? AND kind = 'discharge-notice' AND status IN ('cancelled', 'fired') AND message_key IN (
       SELECT m.header_id FROM discharge_adw_messages m JOIN discharge_adw_episodes e ON e.referral_identifier = m.referral_identifier AND e.peer_ods = m.peer_ods
       WHERE e.service_request_id = ? AND m.direction = 'in' AND m.status = 'awaiting-response') ORDER BY created_ms DESC LIMIT 1`,
    [r.referral.id, r.referral.id],
  );
  if (pending || !earlier) return;
  await session.tx.run(
    'INSERT INTO discharge_timers (id, kind, referral_id, task_id, message_key, due_ms, status, created_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
    [randomUUID(), 'discharge-notice', r.referral.id, r.task.id, earlier.message_key, Number(earlier.due_ms), 'pending', now],
  );
}

/**
 * Builds the referral, its triage Task and consent answers, inside a transaction the caller runs. `patient`
 * is input.patient when the caller has just read or written it in this transaction (saves reading it again).
 */
export async function createReferralIn(session: RecordSession, ctx: DischargeContext, input: NewReferral, initial: TriageState = 'received', patientInHand?: FhirResource): Promise<Referral> {
  const hospital = await organisationByOds(session, input.hospitalOds);
  if (!hospital) throw fail(422, 'business-rule', `No organisation with ODS code ${input.hospitalOds} is in the record; add the hospital first.`);
  const council = await organisationByOds(session, input.councilOds);
  if (!council) throw fail(422, 'business-rule', `No organisation with ODS code ${input.councilOds} is in the record; add the council first.`);
  const patientId = input.patient.replace(/^Patient\//, '');
  const patient = patientInHand?.id === patientId ? patientInHand : await session.read('Patient', patientId);
  if (!patient) throw fail(422, 'business-rule', `${input.patient} is not in the record.`);
  const identifier = input.identifier ?? randomUUID();
  // An ADW episode id is the sender's text: taken literally, "A,B" is not episode A or B.
  const existing = await session.search('ServiceRequest', [['identifier', `${DISCHARGE_REFERRAL_SYSTEM}|${escapeSearchValue(identifier)}`]]);
  if (existing.length) throw fail(409, 'conflict', `A discharge referral with identifier ${identifier} already exists (ServiceRequest/${existing[0].id}).`);
  const now = input.receivedAt ?? clock(ctx);
  const id = session.newId();
  const subject = ref(patient, undefined);
  const consentId = input.consent?.length ? derivedId('consent', id) : undefined;
  let referral: FhirResource = {
    resourceType: 'ServiceRequest',
    id,
    contained: [{
      resourceType: 'PractitionerRole',
      id: 'requester',
      ...(input.referrer?.practitioner || input.referrer?.name ? { practitioner: { ...(input.referrer.practitioner ? { reference: input.referrer.practitioner } : {}), ...(input.referrer.name ? { display: input.referrer.name } : {}) } } : {}),
      organization: ref(hospital),
      ...(input.ward ? { location: [{ reference: input.ward }] } : {}),
      ...(input.referrer?.phone || input.referrer?.email ? { telecom: [
        ...(input.referrer.phone ? [{ system: 'phone', value: input.referrer.phone }] : []),
        ...(input.referrer.email ? [{ system: 'email', value: input.referrer.email }] : []),
      ] } : {}),
    }],
    identifier: [{ system: DISCHARGE_REFERRAL_SYSTEM, value: identifier }],
    status: STATE_STATUS[initial].referral,
    intent: 'order',
    category: [{ coding: [REFERRAL_CATEGORY] }, ...(input.pathway !== undefined ? [pathwayCoding(input.pathway)] : [])],
    code: { coding: [REFERRAL_CODE], text: REFERRAL_CODE.display },
    subject: { reference: subject.reference },
    ...(input.encounter ? { encounter: { reference: input.encounter } } : {}),
    authoredOn: iso(now),
    requester: { reference: '#requester', display: hospital.name },
    performer: [ref(council)],
    ...(input.reason ? { reasonCode: [{ text: input.reason }] } : {}),
    ...(input.supportRequested?.length ? { orderDetail: input.supportRequested.map((text) => ({ text })) } : {}),
    ...(input.needs?.length ? { note: input.needs.map((text) => ({ text })) } : {}),
    ...(consentId ? { supportingInfo: [{ reference: `QuestionnaireResponse/${consentId}` }] } : {}),
  };
  referral = withExtensionDate(withExtensionDate(referral, EXPECTED_DISCHARGE_URL, input.expectedDischarge), MEDICALLY_READY_URL, input.medicallyReady);
  const rule = await councilDeadline(session, input.councilOds, 'assessment', input.deadline ?? ctx.deadlines?.assessment);
  const due = deadlineAfter(now, rule);
  const task: FhirResource = {
    resourceType: 'Task',
    id: derivedId('triage', id),
    status: STATE_STATUS[initial].task,
    businessStatus: businessStatus(initial),
    intent: 'order',
    priority: 'routine',
    code: { coding: [TRIAGE_TASK_CODE], text: TRIAGE_TASK_CODE.display },
    description: `Respond to the discharge referral from ${hospital.name ?? input.hospitalOds}`,
    focus: { reference: `ServiceRequest/${id}` },
    basedOn: [{ reference: `ServiceRequest/${id}` }],
    for: { reference: subject.reference },
    ...(input.encounter ? { encounter: { reference: input.encounter } } : {}),
    authoredOn: iso(now),
    lastModified: iso(now),
    requester: ref(hospital),
    owner: ref(council),
    restriction: { period: { end: iso(due) } },
  };
  if (consentId) {
    await session.put({
      resourceType: 'QuestionnaireResponse',
      id: consentId,
      questionnaire: CONSENT_QUESTIONNAIRE,
      basedOn: [{ reference: `ServiceRequest/${id}` }],
      status: 'completed',
      subject: { reference: subject.reference },
      ...(input.encounter ? { encounter: { reference: input.encounter } } : {}),
      authored: iso(now),
      item: input.consent!.map((a) => ({
        linkId: a.linkId,
        text: a.text,
        answer: [a.code ? { valueCoding: { ...(a.system ? { system: a.system } : {}), code: a.code, ...(a.display ? { display: a.display } : {}) } } : { valueString: a.value ?? '' }],
      })),
    });
  }
  const written = { referral: await session.put(referral), task: await session.put(task) };
  if (AWAITING_RESPONSE.has(initial)) await scheduleDeadline(session, id, task.id, due, clock(ctx));
  return written;
}

/** Creates a discharge referral with its triage Task ("received") and response deadline. */
export async function createReferral(ctx: DischargeContext, input: NewReferral): Promise<Referral> {
  return inRecordTransaction(ctx, 'create-referral', async (session) => {
    refuseReferringForAnother(ctx, input.hospitalOds);
    if (input.encounter) {
      await refuseStayElsewhere(session, ctx, input.encounter, input.hospitalOds, input.patient);
      await refuseSecondOpenReferral(session, input.encounter);
    }
    const created = await createReferralIn(session, ctx, input);
    await adwAfterStep(session, ctx, { action: 'create', before: 'received', after: created });
    return created;
  });
}

/**
 * A person refers in their own hospital's name only (H-038): the council answers, and sends its worker,
 * to the hospital the referral names. A system client (a trust's discharge system) may name the hospital.
 */
function refuseReferringForAnother(ctx: DischargeContext, hospitalOds: string): void {
  const caller = ctx.access.caller;
  if (!caller || caller.role === 'system' || caller.organisation?.toUpperCase() === hospitalOds.toUpperCase()) return;
  throw new NotYourReferral(`You act for ${caller.organisation ?? 'no organisation'}: you refer in your own hospital's name, not ${hospitalOds}'s.`);
}

/**
 * The stay a referral is made from is the person's own, at the referring hospital (H-038): a referral
 * from someone else's stay, or another hospital's, would follow that stay's discharge and wards (and
 * discharge the wrong person's referral). A stay that names no hospital is taken from a system client, as
 * before (an ADW episode's stay may name none); a person's must name theirs.
 */
async function refuseStayElsewhere(session: RecordSession, ctx: DischargeContext, encounter: string, hospitalOds: string, patient: string): Promise<void> {
  const stay = await session.read('Encounter', encounter.replace(/^Encounter\//, ''));
  if (!stay) throw fail(422, 'business-rule', `${encounter} is not in the record; a referral is made from the person's current hospital stay.`);
  const whose = stay.subject?.reference;
  if (whose !== (patient.startsWith('Patient/') ? patient : `Patient/${patient}`)) {
    throw fail(422, 'business-rule', `${encounter} is ${whose ? 'another person\'s' : 'a'} stay${whose ? '' : ' that names no patient'}, not ${patient.replace(/^(Patient\/)?/, 'Patient/')}'s; a referral is made from the person's own hospital stay.`);
  }
  const hospital = await organisationByOds(session, hospitalOds);
  if (!hospital) return; // createReferralIn says the hospital is not in the record
  const provider: Reference | undefined = stay.serviceProvider;
  const person = ctx.access.caller && ctx.access.caller.role !== 'system';
  if (provider?.reference === `Organization/${hospital.id}` || (!provider?.reference && !person)) return;
  const where = provider?.reference ? `a stay at ${await organisationName(session, provider)}` : 'a stay that does not say which hospital it is at';
  throw fail(422, 'business-rule', `${encounter} is ${where}, not at ${hospital.name ?? hospitalOds}; a hospital refers from its own stays.`);
}

async function organisationName(session: RecordSession, org: Reference): Promise<string> {
  if (org.display) return org.display;
  const found = org.reference?.startsWith('Organization/') ? await session.read('Organization', org.reference.slice('Organization/'.length)) : undefined;
  return found?.name ?? org.reference ?? 'another organisation';
}

/** A referral's statuses while the council still works on it (STATE_STATUS): a stay has at most one such. */
const OPEN_REFERRAL_STATUSES = 'active,on-hold';

/**
 * One open referral per stay, decided inside the creating transaction (and on PostgreSQL under the
 * criteria's lock, searchBeforeCreate): a second click of "Send", a retried call or another app node
 * finds the first and is refused, rather than the council getting the same person twice (hazard H-015).
 * ADW notices are not held to it: each names its own episode, and the hospital decides those.
 */
async function refuseSecondOpenReferral(session: RecordSession, encounter: string): Promise<void> {
  const open = await session.searchBeforeCreate('ServiceRequest', [
    ['encounter', encounter], ['code', `${REFERRAL_CODE.system}|${REFERRAL_CODE.code}`], ['status', OPEN_REFERRAL_STATUSES],
  ]);
  if (open.length) throw fail(409, 'conflict', `${encounter} already has an open discharge referral (ServiceRequest/${open[0].id}); add to that one rather than sending the council a second.`);
}

export async function loadReferral(session: RecordSession, referralId: string): Promise<Referral> {
  const referral = await session.read('ServiceRequest', referralId);
  if (!referral) throw fail(404, 'not-found', `There is no discharge referral ServiceRequest/${referralId}.`);
  const task = await session.read('Task', derivedId('triage', referralId));
  if (!task) throw fail(404, 'not-found', `ServiceRequest/${referralId} has no triage Task; it is not a discharge referral this service manages.`);
  return { referral, task };
}

const ACTION_WORDS: Record<string, string> = {
  accept: 'accepted', requestInformation: 'asked for more information', reject: 'rejected', assignWorker: 'given a worker',
  recordSupportArranged: 'marked as support arranged', confirmReady: 'confirmed ready', recordDischarge: 'marked as discharged', withdraw: 'withdrawn',
  disagreeWithDischarge: 'answered with a discharge disagreement',
};

/** The council's answers to a referral (the first one stops the response clock). */
const RESPONSES: ReadonlySet<string> = new Set(['accept', 'requestInformation', 'reject']);

export interface StepChange {
  state: TriageState;
  task?: (task: FhirResource) => FhirResource;
  referral?: (referral: FhirResource) => FhirResource;
  /** A Communication to file with the step (a note, a request for information). */
  note?: { text: string; category: string };
  detail?: string;
}

type Party = 'council' | 'hospital';

/** Which of the referral's two organisations takes each step, in the words of a refusal ("only … can reject this referral"). */
const TAKEN_BY: Record<string, { by: readonly Party[]; doing: string }> = {
  accept: { by: ['council'], doing: 'accept' },
  requestInformation: { by: ['council'], doing: 'ask for more information on' },
  reject: { by: ['council'], doing: 'reject' },
  assignWorker: { by: ['council'], doing: 'assign a worker to' },
  recordSupportArranged: { by: ['council'], doing: 'record the support arranged for' },
  confirmReady: { by: ['council'], doing: 'confirm ready' },
  disagreeWithDischarge: { by: ['council'], doing: 'answer a discharge notice on' },
  setMedicallyReady: { by: ['hospital'], doing: 'set the medically ready date of' },
  recordDischarge: { by: ['hospital'], doing: 'record the discharge on' },
  withdraw: { by: ['hospital'], doing: 'withdraw' },
  cancelDischarge: { by: ['hospital'], doing: 'cancel the discharge on' },
  note: { by: ['council', 'hospital'], doing: 'add notes to' },
};

/**
 * The referral's two organisations: the council it is addressed to (its performer: the Task's owner becomes
 * the assigned worker, so it cannot say) and the hospital that made it (the requester's organisation).
 */
function partiesOf(referral: FhirResource): Record<Party, Reference | undefined> {
  const requester = referral.contained?.find((c: FhirResource) => `#${c.id}` === referral.requester?.reference);
  return { council: referral.performer?.[0], hospital: requester?.organization };
}

/**
 * A person takes a step only for the organisation whose step it is: the council the referral is addressed
 * to, or the hospital that made it (H-038). Access to the person's record is not enough: another council's
 * worker with a care package for the same person, or another hospital where they once stayed, can see the
 * referral but must not reject, withdraw or discharge it. System clients (ADW over MESH, the hospital's
 * feed, an integrator's system) act within their scopes, as before.
 */
async function refuseOtherOrganisation(session: RecordSession, ctx: DischargeContext, referral: FhirResource, action: string): Promise<void> {
  const caller = ctx.access.caller;
  if (!caller || caller.role === 'system') return;
  const step = TAKEN_BY[action] ?? { by: [], doing: `take the step '${action}' on` };
  const ours = caller.organisation ? await organisationByOds(session, caller.organisation) : undefined;
  const parties = partiesOf(referral);
  if (ours && step.by.some((p) => parties[p]?.reference === `Organization/${ours.id}`)) return;
  const who = step.by.map((p) => parties[p]?.display ?? (p === 'council' ? 'the council it is addressed to' : 'the hospital that made it')).join(' or ');
  throw new NotYourReferral(`Only ${who || 'the workflow itself'} can ${step.doing} this referral; you act for ${caller.organisation ?? 'no organisation'}.`);
}

/** One workflow step inside a transaction the caller runs. */
export async function applyStepIn(session: RecordSession, ctx: DischargeContext, referralId: string, action: string, options: StepOptions, change: StepChange): Promise<Referral> {
  const current = await loadReferral(session, referralId);
  await refuseOtherOrganisation(session, ctx, current.referral, action);
  const before = triageStateOf(current.task) ?? 'received';
  if (options.ifMatch !== undefined && options.ifMatch !== current.task.meta?.versionId) {
    throw new FhirError(412, [{ severity: 'error', code: 'conflict', diagnostics: `The referral was changed by someone else (now version ${current.task.meta?.versionId}, you saw ${options.ifMatch}); reload it and try again.` }]);
  }
  if (!ALLOWED_FROM[action]?.includes(before)) {
    const answering = ANSWERING_DISCHARGE_NOTICE[action]?.includes(before) ?? false;
    if (!answering || !(await dischargeNoticeWaiting(session.tx, referralId))) {
      throw fail(409, 'business-rule', answering && !ALLOWED_FROM[action]
        ? 'No discharge notice from the hospital is waiting for an answer on this referral.'
        : `The referral is ${TRIAGE_DISPLAY[before].toLowerCase()}; it cannot be ${ACTION_WORDS[action] ?? action} now.`);
    }
  }
  const now = clock(ctx);
  const status = STATE_STATUS[change.state];
  let task: FhirResource = { ...current.task, status: status.task, businessStatus: businessStatus(change.state), lastModified: iso(now) };
  if (RESPONSES.has(action) && !task.executionPeriod?.start) {
    // The council's first answer starts the Task's execution: its start is the response time the metrics report.
    task = { ...task, executionPeriod: { ...(task.executionPeriod ?? {}), start: iso(now) } };
  }
  // A step answers only what it answers: assigning a worker is no answer to a discharge notice, whose
  // deadline, overdue flag and escalation stay until the council agrees, disagrees or the referral closes.
  const dischargeOwed = !FINAL_STATES.has(change.state) && await dischargeNoticeOwedAfter(session.tx, referralId, action);
  const owed = AWAITING_RESPONSE.has(change.state) || dischargeOwed;
  if (!owed && task.meta?.tag) task = withoutOverdueTag(task);
  if (change.task) task = change.task(task);
  let referral: FhirResource = { ...current.referral, status: status.referral };
  if (change.referral) referral = change.referral(referral);
  const after = {
    task: await session.put(task, current.task.meta?.versionId),
    referral: await session.put(referral, current.referral.meta?.versionId),
  };
  if (change.note) await fileCommunication(session, after, change.note, options.by, now);
  if (!AWAITING_RESPONSE.has(change.state)) await cancelDeadlines(session, referralId, 'response-deadline');
  if (!dischargeOwed) await cancelDeadlines(session, referralId, 'discharge-notice');
  if (!owed) await closeEscalations(session, referralId, now);
  await adwAfterStep(session, ctx, { action, detail: change.detail, before, after, by: options.by });
  return after;
}

async function applyStep(ctx: DischargeContext, referralId: string, action: string, options: StepOptions, change: StepChange): Promise<Referral> {
  return inRecordTransaction(ctx, action, (session) => applyStepIn(session, ctx, referralId, action, options, change));
}

/** A note on the referral both sides see; `at` is when it was made (epoch ms) or sent (an ISO time from a message). */
export async function fileCommunication(session: RecordSession, r: Referral, note: { text: string; category: string }, by: Reference | undefined, at: number | string): Promise<void> {
  await session.put({
    resourceType: 'Communication',
    id: session.newId(),
    basedOn: [{ reference: `ServiceRequest/${r.referral.id}` }],
    partOf: [{ reference: `Task/${r.task.id}` }],
    status: 'completed',
    category: [{ text: note.category }],
    subject: r.referral.subject,
    ...(r.referral.encounter ? { encounter: r.referral.encounter } : {}),
    sent: typeof at === 'number' ? iso(at) : at,
    ...(by ? { sender: by } : {}),
    payload: [{ contentString: note.text }],
  });
}

function withoutOverdueTag(task: FhirResource): FhirResource {
  const tag = (task.meta?.tag ?? []).filter((t) => !(t.system === OVERDUE_TAG.system && t.code === OVERDUE_TAG.code));
  return { ...task, meta: { ...task.meta, tag }, priority: 'routine' };
}

/**
 * After an answer owed to the hospital is taken away without a step (a discharge notice withdrawn or
 * superseded): the overdue flag and escalation go once nothing else is owed.
 */
export async function settleOverdueIn(session: RecordSession, ctx: DischargeContext, referralId: string): Promise<void> {
  const { task } = await loadReferral(session, referralId);
  const state = triageStateOf(task) ?? 'received';
  if (AWAITING_RESPONSE.has(state) || (!FINAL_STATES.has(state) && await dischargeNoticeWaiting(session.tx, referralId))) return;
  const now = clock(ctx);
  if (task.meta?.tag?.some((t) => t.system === OVERDUE_TAG.system && t.code === OVERDUE_TAG.code)) {
    await session.put({ ...withoutOverdueTag(task), lastModified: iso(now) }, task.meta?.versionId);
  }
  await closeEscalations(session, referralId, now);
}

async function closeEscalations(session: RecordSession, referralId: string, now: number): Promise<void> {
  const escalation = await session.read('Task', derivedId('escalation', referralId));
  if (escalation && escalation.status === 'requested') await session.put({ ...escalation, status: 'completed', lastModified: iso(now) }, escalation.meta?.versionId);
}

export type TriageDecision = { action: 'accept'; note?: string } | { action: 'requestInformation'; request: string } | { action: 'reject'; reason: string };

/** The council's triage: accept, ask the hospital for more information, or reject with a reason. */
export async function triage(ctx: DischargeContext, referralId: string, decision: TriageDecision, options: StepOptions = {}): Promise<Referral> {
  switch (decision.action) {
    case 'accept':
      return applyStep(ctx, referralId, 'accept', options, {
        state: 'accepted', detail: decision.note,
        ...(decision.note ? { note: { text: decision.note, category: 'Referral accepted' } } : {}),
      });
    case 'requestInformation':
      if (!decision.request?.trim()) throw fail(400, 'invalid', 'Say what information is needed.');
      return applyStep(ctx, referralId, 'requestInformation', options, { state: 'more-information-requested', detail: decision.request, note: { text: decision.request, category: 'Request for more information' } });
    case 'reject':
      if (!decision.reason?.trim()) throw fail(400, 'invalid', 'A referral is only rejected with a reason.');
      return applyStep(ctx, referralId, 'reject', options, {
        state: 'rejected', detail: decision.reason,
        task: (t) => ({ ...t, statusReason: { text: decision.reason } }),
        note: { text: decision.reason, category: 'Referral rejected' },
      });
  }
}

/** A note on the referral (a Communication), seen by both sides; the Task's version is checked, its state kept. */
export async function addNote(ctx: DischargeContext, referralId: string, text: string, options: StepOptions = {}): Promise<FhirResource> {
  if (!text?.trim()) throw fail(400, 'invalid', 'Write the note.');
  return inRecordTransaction(ctx, 'note', async (session) => {
    const current = await loadReferral(session, referralId);
    await refuseOtherOrganisation(session, ctx, current.referral, 'note');
    if (options.ifMatch !== undefined && options.ifMatch !== current.task.meta?.versionId) {
      throw new FhirError(412, [{ severity: 'error', code: 'conflict', diagnostics: `The referral was changed by someone else (now version ${current.task.meta?.versionId}, you saw ${options.ifMatch}); reload it and try again.` }]);
    }
    await fileCommunication(session, current, { text: text.trim(), category: 'Note' }, options.by, clock(ctx));
    return current.task;
  });
}

/** Assigns (or reassigns) the council's worker: the Task's owner. */
export async function assignWorker(ctx: DischargeContext, referralId: string, worker: Reference, options: StepOptions = {}): Promise<Referral> {
  if (!worker.reference?.startsWith('Practitioner/') && !worker.reference?.startsWith('PractitionerRole/')) throw fail(400, 'invalid', 'The worker must be a Practitioner/… or PractitionerRole/… reference.');
  return applyStep(ctx, referralId, 'assignWorker', options, { state: 'assigned', task: (t) => ({ ...t, owner: worker }) });
}

export async function recordSupportArranged(ctx: DischargeContext, referralId: string, support: string, options: StepOptions = {}): Promise<Referral> {
  if (!support?.trim()) throw fail(400, 'invalid', 'Describe the support arranged.');
  return applyStep(ctx, referralId, 'recordSupportArranged', options, {
    state: 'support-arranged', detail: support,
    task: (t) => ({ ...t, output: [{ type: { text: 'Support arranged' }, valueString: support }] }),
    note: { text: support, category: 'Support arranged' },
  });
}

/** The council confirms the person can go: support is in place. */
export async function confirmReady(ctx: DischargeContext, referralId: string, options: StepOptions & { note?: string } = {}): Promise<Referral> {
  return applyStep(ctx, referralId, 'confirmReady', options, { state: 'ready', detail: options.note });
}

/**
 * The council cannot agree to the discharge the hospital's notice proposes (support not in place by that
 * date): the hospital is told why, and the referral stays where it is while the council goes on arranging.
 */
export async function disagreeWithDischarge(ctx: DischargeContext, referralId: string, reason: string, options: StepOptions = {}): Promise<Referral> {
  if (!reason?.trim()) throw fail(400, 'invalid', 'Say why the council cannot agree to the proposed discharge.');
  return inRecordTransaction(ctx, 'disagreeWithDischarge', async (session) => {
    const state = triageStateOf((await loadReferral(session, referralId)).task) ?? 'received';
    return applyStepIn(session, ctx, referralId, 'disagreeWithDischarge', options, {
      state, detail: reason.trim(), note: { text: reason.trim(), category: 'Proposed discharge not agreed' },
    });
  });
}

/** The hospital records the actual discharge (also done from the Encounter when it finishes). */
export async function recordDischarge(ctx: DischargeContext, referralId: string, at: string, options: StepOptions = {}): Promise<Referral> {
  return inRecordTransaction(ctx, 'recordDischarge', (session) => recordDischargeIn(session, ctx, referralId, at, options));
}

export function recordDischargeIn(session: RecordSession, ctx: DischargeContext, referralId: string, at: string, options: StepOptions = {}): Promise<Referral> {
  return applyStepIn(session, ctx, referralId, 'recordDischarge', options, {
    state: 'discharged',
    task: (t) => ({ ...t, executionPeriod: { ...(t.executionPeriod ?? {}), end: at } }),
    referral: (r) => ({ ...r, occurrencePeriod: { end: at } }),
  });
}

/**
 * The stay's discharge was cancelled (HL7 A13, or the Encounter set back from finished): a referral closed
 * as discharged opens again in the state it was in before, so the council goes on arranging care for a
 * person who is still in hospital. Undefined when the referral is not discharged (nothing to undo).
 */
export async function reopenAfterCancelledDischargeIn(session: RecordSession, ctx: DischargeContext, referralId: string): Promise<Referral | undefined> {
  const current = await loadReferral(session, referralId);
  if (triageStateOf(current.task) !== 'discharged') return undefined;
  // The discharge made one version of each; the ones before them hold what the referral was.
  const before = await versionBefore(session, current.task);
  const earlier = before ? triageStateOf(before) : undefined;
  const state: TriageState = earlier && !FINAL_STATES.has(earlier) ? earlier : 'ready';
  const referralBefore = await versionBefore(session, current.referral);
  const reopened = await applyStepIn(session, ctx, referralId, 'cancelDischarge', {}, {
    state,
    task: ({ executionPeriod, ...t }) => {
      const { end: _discharged, ...period } = executionPeriod ?? {};
      return Object.keys(period).length ? { ...t, executionPeriod: period } : t;
    },
    // The discharge set the referral's occurrence to the day the person left: back to what it was.
    referral: ({ occurrencePeriod: _discharged, ...r }) => (referralBefore?.occurrencePeriod ? { ...r, occurrencePeriod: referralBefore.occurrencePeriod } : r),
    note: { text: `The hospital cancelled the discharge: the person is still in hospital, and the referral is ${TRIAGE_DISPLAY[state].toLowerCase()} again.`, category: 'Discharge cancelled' },
  });
  await restoreDeadlinesIn(session, reopened, state, clock(ctx));
  return reopened;
}

/** The resource as it was one version ago; undefined for a first version. */
async function versionBefore(session: RecordSession, resource: FhirResource): Promise<FhirResource | undefined> {
  const version = Number(resource.meta?.versionId);
  return version > 1 ? session.readVersion(resource.resourceType, resource.id, String(version - 1)) : undefined;
}

/** The hospital withdraws the referral (an ADW withdrawal notice does this too). */
export async function withdrawReferral(ctx: DischargeContext, referralId: string, reason: string, options: StepOptions = {}): Promise<Referral> {
  return inRecordTransaction(ctx, 'withdraw', (session) => withdrawIn(session, ctx, referralId, reason, options));
}

export function withdrawIn(session: RecordSession, ctx: DischargeContext, referralId: string, reason: string, options: StepOptions = {}): Promise<Referral> {
  return applyStepIn(session, ctx, referralId, 'withdraw', options, {
    state: 'withdrawn', detail: reason,
    task: (t) => ({ ...t, statusReason: { text: reason } }),
    note: { text: reason, category: 'Referral withdrawn' },
  });
}

/**
 * The hospital records the day the person became medically ready for discharge (or corrects it): the
 * delayed-days clock starts there. Checked against the Task version the person saw, and the Task gets a new
 * version too, so a page loaded before this change cannot act as if it had not happened.
 */
export async function setMedicallyReady(ctx: DischargeContext, referralId: string, date: string, options: StepOptions = {}): Promise<Referral> {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(date) || Number.isNaN(Date.parse(date))) throw fail(400, 'invalid', `'${date}' is not a date (YYYY-MM-DD).`);
  return inRecordTransaction(ctx, 'setMedicallyReady', async (session) => {
    const current = await loadReferral(session, referralId);
    await refuseOtherOrganisation(session, ctx, current.referral, 'setMedicallyReady');
    if (options.ifMatch !== undefined && options.ifMatch !== current.task.meta?.versionId) {
      throw new FhirError(412, [{ severity: 'error', code: 'conflict', diagnostics: `The referral was changed by someone else (now version ${current.task.meta?.versionId}, you saw ${options.ifMatch}); reload it and try again.` }]);
    }
    const state = triageStateOf(current.task) ?? 'received';
    if (FINAL_STATES.has(state)) throw fail(409, 'business-rule', `The referral is ${TRIAGE_DISPLAY[state].toLowerCase()}; its medically ready date can no longer change.`);
    const now = clock(ctx);
    const after = {
      referral: await session.put(withExtensionDate(current.referral, MEDICALLY_READY_URL, date), current.referral.meta?.versionId),
      task: await session.put({ ...current.task, lastModified: iso(now) }, current.task.meta?.versionId),
    };
    await fileCommunication(session, after, { text: `Medically ready for discharge from ${date}.`, category: 'Medically ready' }, options.by, now);
    return after;
  });
}

/** The expected discharge date changed (from the Encounter, or a discharge notice): copied onto the referral. */
/**
 * Gives the referral (as read in this transaction) the stay's expected discharge date: the referral as
 * written, or undefined when it already had that date.
 */
export async function setExpectedDischargeIn(session: RecordSession, referral: FhirResource, expected: string | undefined): Promise<FhirResource | undefined> {
  const current = referral.extension?.find((e: any) => e.url === EXPECTED_DISCHARGE_URL)?.valueDateTime;
  if (current === expected) return undefined;
  return session.put(withExtensionDate(referral, EXPECTED_DISCHARGE_URL, expected), referral.meta?.versionId);
}

/**
 * Moves the referral (as read in this transaction) to the ward the person is on now (an HL7 A02 transfer):
 * the referral as it now stands, unchanged when it already said so.
 */
export async function setWardIn(session: RecordSession, referral: FhirResource, ward: Reference): Promise<FhirResource> {
  const requester = referral.contained?.find((c: FhirResource) => c.id === 'requester');
  if (!requester || !ward.reference || requester.location?.[0]?.reference === ward.reference) return referral;
  const moved = { ...requester, location: [{ reference: ward.reference, ...(ward.display ? { display: ward.display } : {}) }] };
  return session.put({ ...referral, contained: referral.contained.map((c: FhirResource) => (c === requester ? moved : c)) }, referral.meta?.versionId);
}

export const ADMISSION_CANCELLED = 'Admission cancelled';

/**
 * The stay the referral was made for was cancelled (HL7 A11: the admission was recorded in error). The
 * referral is not closed for the hospital: the person may be in hospital under another stay. Both sides are
 * told, once, so the council does not arrange care on a stay that never was.
 */
export async function noteAdmissionCancelledIn(session: RecordSession, ctx: DischargeContext, referralId: string): Promise<boolean> {
  const current = await loadReferral(session, referralId);
  const told = await session.search('Communication', [['based-on', `ServiceRequest/${referralId}`], ['category:text', ADMISSION_CANCELLED]]);
  if (told.length) return false;
  const text = 'The hospital cancelled the admission this referral was made for (recorded in error). The hospital should withdraw the referral, or refer again from the stay the person is on.';
  await fileCommunication(session, current, { text, category: ADMISSION_CANCELLED }, undefined, clock(ctx));
  return true;
}

/** The open discharge referral for a hospital stay, if there is one. */
export async function referralForEncounter(ctx: DischargeContext, encounterId: string): Promise<FhirResource | undefined> {
  return inRecordTransaction(ctx, 'read', (session) => referralForEncounterIn(session, encounterId));
}

export async function referralForEncounterIn(session: RecordSession, encounterId: string): Promise<FhirResource | undefined> {
  const found = await session.search('ServiceRequest', [['encounter', `Encounter/${encounterId}`], ['code', `${REFERRAL_CODE.system}|${REFERRAL_CODE.code}`]]);
  // The latest first. A stay has one referral or a few, so they are ordered here rather than by _sort,
  // which made this search, run for every change to every stay, twice as costly as the others.
  const latest = found.map((r) => ({ r, at: Date.parse(r.authoredOn ?? '') })).sort((a, b) => (b.at || 0) - (a.at || 0)).map(({ r }) => r);
  return latest.find((r) => r.status === 'active') ?? latest[0];
}

/**
 * Whether a referral's response is overdue now: still awaiting the triage response past its deadline, or
 * flagged overdue by a deadline that fired (a discharge notice's answer is due whatever the triage state,
 * and the flag stays until that answer is given).
 */
export function isOverdue(task: FhirResource, nowMs: number): boolean {
  const state = triageStateOf(task);
  if (!state || FINAL_STATES.has(state)) return false;
  const end = task.restriction?.period?.end;
  if (AWAITING_RESPONSE.has(state) && end && Date.parse(end) < nowMs) return true;
  return Boolean(task.meta?.tag?.some((t: { system?: string; code?: string }) => t.system === OVERDUE_TAG.system && t.code === OVERDUE_TAG.code));
}
