// Discharge on the FHIR API, for integrators (a council's case-management system, a trust's discharge
// system), as operations the record runs with the caller's own access and audit:
//   POST Patient/{id}/$discharge-referral   refer the patient to a council; 201 with the ServiceRequest
//   POST Task/{id}/$discharge-step          one workflow step on a referral's triage Task, If-Match required
// Both take a Parameters resource. The steps are the workflow's own functions, so the state rules, deadlines,
// notes, ADW responses and history are exactly those of the portal.
import { FhirError, type FhirOperation, type FhirResponse, type OperationCall } from '../record/index.ts';
import { PATHWAYS, REFERRAL_CONSENT_QUESTIONS, STEP_TAKERS, TRIAGE_TASK_CODE, consentAnswerOf, type Pathway } from './model.ts';
import {
  addNote, assignWorker, confirmReady, createReferral, disagreeWithDischarge, recordDischarge, recordSupportArranged, setMedicallyReady, triage, withdrawReferral,
  type ConsentAnswer, type NewReferral, type Referral, type StepOptions,
} from './referrals.ts';
import type { DischargeContext, FhirResource } from './recordSession.ts';

type Parameter = { name?: string; valueCode?: string; valueString?: string; valueDate?: string; valueReference?: { reference?: string; display?: string } };

/** Who takes which step (the record checks every read and write again): the same split as the portal's. */
const COUNCIL_STEPS = new Set(['accept', 'request-information', 'reject', 'assign-worker', 'support-arranged', 'ready', 'disagree-discharge']);
const HOSPITAL_STEPS = new Set(['medically-ready', 'discharged', 'withdraw']);
const COUNCIL_ROLES = STEP_TAKERS.council;
const HOSPITAL_ROLES = STEP_TAKERS.hospital;
const STEPS = [...COUNCIL_STEPS, ...HOSPITAL_STEPS, 'note'];

function invalid(diagnostics: string, expression?: string): FhirError {
  return new FhirError(400, [{ severity: 'error', code: 'invalid', diagnostics, ...(expression ? { expression: [expression] } : {}) }]);
}

function parametersOf(body: unknown, what: string): Parameter[] {
  const p = body as { resourceType?: string; parameter?: unknown } | undefined;
  if (!p || p.resourceType !== 'Parameters' || !Array.isArray(p.parameter)) throw invalid(`Send a Parameters resource: ${what}.`);
  return p.parameter as Parameter[];
}

function textOf(params: Parameter[], name: string): string | undefined {
  const found = params.filter((p) => p?.name === name);
  if (found.length > 1) throw invalid(`'${name}' is given ${found.length} times; give it once.`, name);
  const p = found[0];
  if (!p) return undefined;
  const value = p.valueCode ?? p.valueString ?? p.valueDate ?? p.valueReference?.reference;
  if (typeof value !== 'string' || !value.trim()) throw invalid(`'${name}' must have a value (valueCode, valueString, valueDate or valueReference).`, name);
  return value.trim();
}

function required(params: Parameter[], name: string, why: string): string {
  const value = textOf(params, name);
  if (value === undefined) throw invalid(`'${name}' is required: ${why}.`, name);
  return value;
}

const DATE = /^\d{4}-\d{2}-\d{2}$/;
function dateParam(params: Parameter[], name: string): string | undefined {
  const value = textOf(params, name);
  if (value !== undefined && (!DATE.test(value) || new Date(`${value}T00:00:00Z`).toISOString().slice(0, 10) !== value)) throw invalid(`'${name}' must be a date (YYYY-MM-DD), not '${value}'.`, name);
  return value;
}

function version(ifMatch: string | undefined): string {
  if (!ifMatch) throw new FhirError(428, [{ severity: 'error', code: 'required', diagnostics: 'Send If-Match with the version of the triage Task you are acting on (its ETag, e.g. W/"2"), so a change made meanwhile by someone else is not overwritten.' }]);
  const seen = /^(?:W\/)?"?(\d{1,9})"?$/.exec(ifMatch.trim())?.[1];
  if (!seen) throw invalid(`If-Match must be an ETag such as W/"3", not '${ifMatch}'.`, 'If-Match');
  return seen;
}

function taskAnswer(task: FhirResource, base: string, status = 200): FhirResponse {
  const v = task.meta?.versionId;
  return { status, body: task, headers: { ETag: `W/"${v}"`, Location: `${base}/Task/${task.id}/_history/${v}` } };
}

async function readTriageTask(call: OperationCall): Promise<FhirResource> {
  const answer = await call.fhir({ method: 'GET', path: `Task/${encodeURIComponent(call.id)}`, query: [] });
  // The record answers with the body as it sends it: JSON text, or an object.
  const body = typeof answer.body === 'string' ? JSON.parse(answer.body) : answer.body;
  if (answer.status !== 200) throw new FhirError(answer.status, body?.issue ?? [{ severity: 'error', code: 'not-found', diagnostics: `Task/${call.id} is not in the record.` }]);
  const task = body as FhirResource;
  const isTriage = task.code?.coding?.some((c: { system?: string; code?: string }) => c.system === TRIAGE_TASK_CODE.system && c.code === TRIAGE_TASK_CODE.code);
  const focus = String(task.focus?.reference ?? '');
  if (!isTriage || !focus.startsWith('ServiceRequest/')) throw new FhirError(404, [{ severity: 'error', code: 'not-found', diagnostics: `Task/${call.id} is not a discharge referral's triage Task (code ${TRIAGE_TASK_CODE.system}|${TRIAGE_TASK_CODE.code}).` }]);
  return task;
}

function mayTake(call: OperationCall, step: string): void {
  const role = call.access.caller?.role;
  if (!role || role === 'system') return; // a system client acts for its organisation, within its scopes
  const allowed = step === 'note' ? COUNCIL_ROLES.has(role) || HOSPITAL_ROLES.has(role) : COUNCIL_STEPS.has(step) ? COUNCIL_ROLES.has(role) : HOSPITAL_ROLES.has(role);
  if (!allowed) {
    const who = step === 'note' ? 'council social workers and hospital discharge coordinators' : COUNCIL_STEPS.has(step) ? 'the council\'s social workers' : 'the hospital\'s discharge coordinators';
    throw new FhirError(403, [{ severity: 'error', code: 'forbidden', diagnostics: `The step '${step}' is taken by ${who}, not by a ${role}.` }]);
  }
}

async function takeStep(ctx: DischargeContext, referralId: string, step: string, params: Parameter[], options: StepOptions): Promise<Referral | FhirResource> {
  const text = (why: string) => required(params, 'text', why);
  switch (step) {
    case 'accept': { const note = textOf(params, 'text'); return triage(ctx, referralId, { action: 'accept', ...(note ? { note } : {}) }, options); }
    case 'request-information': return triage(ctx, referralId, { action: 'requestInformation', request: text('say what information is needed') }, options);
    case 'reject': return triage(ctx, referralId, { action: 'reject', reason: text('a referral is only rejected with a reason') }, options);
    case 'assign-worker': {
      const worker = params.find((p) => p?.name === 'worker')?.valueReference;
      if (!worker?.reference) throw invalid("'worker' is required: a valueReference to the Practitioner or PractitionerRole.", 'worker');
      return assignWorker(ctx, referralId, worker, options);
    }
    case 'support-arranged': return recordSupportArranged(ctx, referralId, text('describe the support arranged'), options);
    case 'ready': { const note = textOf(params, 'text'); return confirmReady(ctx, referralId, { ...options, ...(note ? { note } : {}) }); }
    case 'disagree-discharge': return disagreeWithDischarge(ctx, referralId, text('say why the council cannot agree to the proposed discharge'), options);
    case 'medically-ready': return setMedicallyReady(ctx, referralId, dateParam(params, 'date') ?? required(params, 'date', 'the day the patient became medically ready'), options);
    case 'discharged': return recordDischarge(ctx, referralId, dateParam(params, 'date') ?? required(params, 'date', 'the day the patient left hospital'), options);
    case 'withdraw': return withdrawReferral(ctx, referralId, text('say why the referral is withdrawn'), options);
    case 'note': return addNote(ctx, referralId, text('the note'), options);
    default: throw invalid(`'step' must be one of ${STEPS.join(', ')}, not '${step}'.`, 'step');
  }
}

function newReferralFrom(call: OperationCall, params: Parameter[]): NewReferral {
  const hospitalOds = textOf(params, 'hospital') ?? call.access.caller?.organisation;
  if (!hospitalOds) throw invalid("'hospital' is required (the referring hospital's ODS code) when the caller acts for no organisation.", 'hospital');
  const pathwayText = textOf(params, 'pathway');
  if (pathwayText !== undefined && !(pathwayText in PATHWAYS)) throw invalid(`'pathway' must be 0, 1, 2 or 3, not '${pathwayText}'.`, 'pathway');
  const reference = (name: string, type: string) => {
    const value = textOf(params, name);
    if (value !== undefined && !value.startsWith(`${type}/`)) throw invalid(`'${name}' must reference a ${type} (${type}/…), not '${value}'.`, name);
    return value;
  };
  const consent: ConsentAnswer[] = [];
  for (const q of REFERRAL_CONSENT_QUESTIONS) {
    const code = textOf(params, q.linkId);
    if (code === undefined) continue;
    if (code !== 'Y' && code !== 'N') throw invalid(`'${q.linkId}' must be Y or N, not '${code}'.`, q.linkId);
    consent.push(consentAnswerOf(q, code));
  }
  const encounter = reference('encounter', 'Encounter');
  const ward = reference('ward', 'Location');
  const expectedDischarge = dateParam(params, 'expected-discharge');
  const medicallyReady = dateParam(params, 'medically-ready');
  const needs = params.filter((p) => p?.name === 'need').map((p) => p.valueString?.trim()).filter((n): n is string => Boolean(n));
  return {
    patient: `Patient/${call.id}`, hospitalOds, councilOds: required(params, 'council', "the council's ODS code"),
    reason: required(params, 'reason', 'why the patient needs care and support after discharge'),
    ...(encounter ? { encounter } : {}), ...(ward ? { ward } : {}),
    ...(pathwayText !== undefined ? { pathway: Number(pathwayText) as Pathway } : {}),
    ...(expectedDischarge ? { expectedDischarge } : {}), ...(medicallyReady ? { medicallyReady } : {}),
    ...(needs.length ? { needs } : {}), ...(consent.length ? { consent } : {}),
    referrer: { ...(call.access.caller?.reference?.startsWith('Practitioner/') ? { practitioner: call.access.caller.reference } : {}), ...(call.access.caller?.display ? { name: call.access.caller.display } : {}) },
  };
}

/** The operations, acting through the discharge workflow with each caller's own access. */
export function dischargeOperations(contextFor: (call: OperationCall) => DischargeContext): FhirOperation[] {
  return [
    {
      name: 'discharge-step', resourceType: 'Task', methods: ['POST'],
      async invoke(call) {
        const params = parametersOf(call.body, `'step' (${STEPS.join(', ')}), with 'text', 'worker' or 'date' as the step needs`);
        const step = required(params, 'step', `one of ${STEPS.join(', ')}`);
        if (!STEPS.includes(step)) throw invalid(`'step' must be one of ${STEPS.join(', ')}, not '${step}'.`, 'step');
        mayTake(call, step);
        const ifMatch = version(call.ifMatch);
        const task = await readTriageTask(call);
        const by = call.access.caller ? { ...(call.access.caller.reference ? { reference: call.access.caller.reference } : {}), display: call.access.caller.display } : undefined;
        const result = await takeStep(contextFor(call), String(task.focus.reference).slice('ServiceRequest/'.length), step, params, { ifMatch, ...(by ? { by } : {}) });
        const after = 'task' in result ? (result as Referral).task : await readTriageTask(call);
        return taskAnswer(after, call.base);
      },
    },
    {
      name: 'discharge-referral', resourceType: 'Patient', methods: ['POST'],
      async invoke(call) {
        const role = call.access.caller?.role;
        if (role && role !== 'system' && !HOSPITAL_ROLES.has(role)) throw new FhirError(403, [{ severity: 'error', code: 'forbidden', diagnostics: `Referrals for discharge support are made by hospital discharge coordinators, not by a ${role}.` }]);
        const params = parametersOf(call.body, "'council' (ODS code), 'reason', and optionally 'hospital', 'encounter', 'ward', 'pathway', 'expected-discharge', 'medically-ready', 'need', 'consulted', 'consented', 'safeguarding'");
        const created = await createReferral(contextFor(call), newReferralFrom(call, params));
        const v = created.referral.meta?.versionId;
        return { status: 201, body: created.referral, headers: { ETag: `W/"${v}"`, Location: `${call.base}/ServiceRequest/${created.referral.id}/_history/${v}` } };
      },
    },
  ];
}
