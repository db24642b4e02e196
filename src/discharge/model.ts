// The discharge-to-assess model in FHIR R4: the words (systems, codes, extensions) that the discharge
// workflow writes into the record and that other parts (portal, hl7v2, analytics) read back.
//
// A referral is a ServiceRequest (hospital ward → council team); the council's work on it is a Task whose
// businessStatus is the triage state; notes and requests for information are Communications; consent and
// consultation answers are a QuestionnaireResponse. See docs/architecture.md ("Discharge").

const CAREBRIDGE = 'https://carebridge.example/fhir';

/** Identifier system of a referral's id (a UUID; for ADW episodes, the ADW ReferralRequest.identifier value). */
export const DISCHARGE_REFERRAL_SYSTEM = `${CAREBRIDGE}/Id/discharge-referral`;
/** Expected discharge date, on an Encounter (written by hl7v2 from PV2-9) and copied onto the referral. */
export const EXPECTED_DISCHARGE_URL = `${CAREBRIDGE}/StructureDefinition/expected-discharge-date`;
/** The date the person was judged medically ready for discharge, on the referral. */
export const MEDICALLY_READY_URL = `${CAREBRIDGE}/StructureDefinition/medically-ready-date`;
/** Discharge-to-assess pathway 0–3, as a ServiceRequest.category coding. */
export const PATHWAY_SYSTEM = `${CAREBRIDGE}/CodeSystem/discharge-pathway`;
/** ServiceRequest.code and Task.code of the discharge workflow. */
export const DISCHARGE_CODE_SYSTEM = `${CAREBRIDGE}/CodeSystem/discharge`;
/** Task.businessStatus: the triage state of a referral. */
export const TRIAGE_STATE_SYSTEM = `${CAREBRIDGE}/CodeSystem/discharge-triage-state`;
/** meta.tag on a triage Task whose response deadline has passed. */
export const DISCHARGE_FLAG_SYSTEM = `${CAREBRIDGE}/CodeSystem/discharge-flag`;
export const OVERDUE_TAG = { system: DISCHARGE_FLAG_SYSTEM, code: 'overdue', display: 'Response overdue' };
/** The questionnaire the consent and consultation answers follow. */
export const CONSENT_QUESTIONNAIRE = `${CAREBRIDGE}/Questionnaire/discharge-consent`;

export const ODS_ORGANIZATION = 'https://fhir.nhs.uk/Id/ods-organization-code';
export const ODS_SITE = 'https://fhir.nhs.uk/Id/ods-site-code';
export const SNOMED = 'http://snomed.info/sct';

export const PATHWAYS = {
  0: 'Pathway 0: simple discharge, no new support',
  1: 'Pathway 1: home with new or restarted support',
  2: 'Pathway 2: short-term bed-based recovery',
  3: 'Pathway 3: new long-term care-home placement',
} as const;
export type Pathway = 0 | 1 | 2 | 3;

export const REFERRAL_CODE = { system: DISCHARGE_CODE_SYSTEM, code: 'discharge-to-assess', display: 'Discharge referral: assessment for care and support' };
export const TRIAGE_TASK_CODE = { system: DISCHARGE_CODE_SYSTEM, code: 'triage-referral', display: 'Respond to a discharge referral' };
export const ESCALATION_TASK_CODE = { system: DISCHARGE_CODE_SYSTEM, code: 'escalation', display: 'Discharge referral response overdue' };
export const REFERRAL_CATEGORY = { system: SNOMED, code: '3457005', display: 'Patient referral' };

/** The triage states, in the order a referral normally passes through them. */
export const TRIAGE_STATES = [
  'received',
  'more-information-requested',
  'accepted',
  'rejected',
  'assigned',
  'support-arranged',
  'ready',
  'discharged',
  'withdrawn',
] as const;
export type TriageState = (typeof TRIAGE_STATES)[number];

export const TRIAGE_DISPLAY: Record<TriageState, string> = {
  received: 'Received',
  'more-information-requested': 'More information requested',
  accepted: 'Accepted',
  rejected: 'Rejected',
  assigned: 'Worker assigned',
  'support-arranged': 'Support arranged',
  ready: 'Ready for discharge',
  discharged: 'Discharged',
  withdrawn: 'Withdrawn',
};

/** Task.status and ServiceRequest.status that go with each triage state. */
export const STATE_STATUS: Record<TriageState, { task: string; referral: string }> = {
  received: { task: 'requested', referral: 'active' },
  'more-information-requested': { task: 'on-hold', referral: 'active' },
  accepted: { task: 'accepted', referral: 'active' },
  rejected: { task: 'rejected', referral: 'revoked' },
  assigned: { task: 'in-progress', referral: 'active' },
  'support-arranged': { task: 'in-progress', referral: 'active' },
  ready: { task: 'in-progress', referral: 'active' },
  discharged: { task: 'completed', referral: 'completed' },
  withdrawn: { task: 'cancelled', referral: 'revoked' },
};

export const FINAL_STATES: ReadonlySet<TriageState> = new Set(['rejected', 'discharged', 'withdrawn']);

/**
 * Which state each workflow step may start from. A discharge or a withdrawal can happen at any open state
 * (people leave hospital whatever the council has done); everything else follows the triage order.
 */
export const ALLOWED_FROM: Record<string, readonly TriageState[]> = {
  accept: ['received', 'more-information-requested'],
  requestInformation: ['received', 'more-information-requested', 'accepted'],
  reject: ['received', 'more-information-requested'],
  assignWorker: ['accepted', 'assigned', 'support-arranged'],
  recordSupportArranged: ['assigned', 'support-arranged'],
  confirmReady: ['support-arranged', 'accepted', 'assigned'],
  recordDischarge: ['received', 'more-information-requested', 'accepted', 'assigned', 'support-arranged', 'ready'],
  withdraw: ['received', 'more-information-requested', 'accepted', 'assigned', 'support-arranged', 'ready'],
  cancelDischarge: ['discharged'],
};

/**
 * Steps that answer a discharge notice, allowed from these states only while one waits for the council's
 * answer. A council that confirmed the person ready before the hospital's notice came still owes the
 * hospital its answer to the date proposed, so it confirms again, or disagrees, at whatever stage it is.
 */
export const ANSWERING_DISCHARGE_NOTICE: Record<string, readonly TriageState[]> = {
  confirmReady: ['ready'],
  disagreeWithDischarge: ['received', 'more-information-requested', 'accepted', 'assigned', 'support-arranged', 'ready'],
};

/** States in which the council still owes the hospital a response (the deadline clock runs). */
export const AWAITING_RESPONSE: ReadonlySet<TriageState> = new Set(['received', 'more-information-requested']);

export function triageStateOf(task: Record<string, any>): TriageState | undefined {
  const code = (task.businessStatus?.coding as { system?: string; code?: string }[] | undefined)?.find((c) => c.system === TRIAGE_STATE_SYSTEM)?.code;
  return (TRIAGE_STATES as readonly string[]).includes(code ?? '') ? (code as TriageState) : undefined;
}

export function businessStatus(state: TriageState) {
  return { coding: [{ system: TRIAGE_STATE_SYSTEM, code: state, display: TRIAGE_DISPLAY[state] }], text: TRIAGE_DISPLAY[state] };
}

export function pathwayCoding(pathway: Pathway) {
  return { coding: [{ system: PATHWAY_SYSTEM, code: String(pathway), display: PATHWAYS[pathway] }] };
}

export function pathwayOf(referral: Record<string, any>): Pathway | undefined {
  for (const c of (referral.category ?? []) as { coding?: { system?: string; code?: string }[] }[]) {
    const code = c.coding?.find((x) => x.system === PATHWAY_SYSTEM)?.code;
    if (code !== undefined) return Number(code) as Pathway;
  }
  return undefined;
}

export function extensionDate(resource: Record<string, any>, url: string): string | undefined {
  return (resource.extension as { url: string; valueDateTime?: string }[] | undefined)?.find((e) => e.url === url)?.valueDateTime;
}

/** Sets (or, with undefined, removes) a valueDateTime extension. */
export function withExtensionDate<T extends Record<string, any>>(resource: T, url: string, value: string | undefined): T {
  const others = ((resource.extension ?? []) as { url: string }[]).filter((e) => e.url !== url);
  const extension = value ? [...others, { url, valueDateTime: value }] : others;
  const { extension: _old, ...rest } = resource;
  return (extension.length ? { ...rest, extension } : rest) as unknown as T;
}

/**
 * The yes/no questions of the ADW assessment notice that a referral made here answers (the portal's form
 * and $discharge-referral), coded as ADW codes them, so a referral to an ADW council goes out complete.
 */
export const REFERRAL_CONSENT_QUESTIONS = [
  { linkId: 'consulted', text: 'Has the patient been consulted about this referral?', system: 'https://fhir.nhs.uk/ADW-ConsultationStatus-1' },
  { linkId: 'consented', text: 'Has the patient consented to this referral?', system: 'https://fhir.nhs.uk/ADW-PatientConsentStatus-1' },
  { linkId: 'safeguarding', text: 'Are there any safeguarding concerns about the patient?', system: 'https://fhir.nhs.uk/ADW-ConsultationStatus-1' },
] as const;

/** One question's Y or N as the consent answer stored with the referral. */
export function consentAnswerOf(question: typeof REFERRAL_CONSENT_QUESTIONS[number], code: 'Y' | 'N') {
  return { linkId: question.linkId, text: question.text, system: question.system, code, display: code === 'Y' ? 'Yes' : 'No' };
}

/**
 * Who takes the workflow's steps, whichever way (portal or FHIR API): the council's social workers
 * triage, assign, record support and confirm readiness; the hospital's discharge coordinators refer,
 * record medically ready and discharge dates and withdraw. The record checks every write again.
 */
export const STEP_TAKERS: { council: ReadonlySet<string>; hospital: ReadonlySet<string> } = {
  council: new Set(['social-worker']),
  hospital: new Set(['discharge-coordinator']),
};
