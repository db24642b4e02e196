// The discharge referrals a signed-in person may see, as rows for the board, the queue and the metrics:
// read through the record with the person's own access (a council's people see referrals to their
// council, a hospital's those from their hospital), each referral with its triage Task and person.
import {
  AWAITING_RESPONSE, REFERRAL_CODE, TRIAGE_DISPLAY, TRIAGE_TASK_CODE, MEDICALLY_READY_URL, EXPECTED_DISCHARGE_URL, PATHWAYS,
  extensionDate, isOverdue, londonDay, pathwayOf, triageStateOf, type TriageState,
} from '../../discharge/index.ts';
import type { UserActor } from '../../access/index.ts';
import type { RecordClient, Resource } from '../recordClient.ts';
import { personName, nhsNumberOf } from '../person/text.ts';
import { NotInRecord } from '../pageErrors.ts';

export type Side = 'hospital' | 'council';

/** Something the council owes the hospital now, and by when. */
export interface Owed {
  kind: 'response' | 'discharge-notice';
  /** What is owed, as a list says it before the due time ("Answer discharge notice by …"). */
  label: string;
  /** The same for a CSV cell. */
  what: string;
  due: string;
  overdue: boolean;
}

const OWED_TEXT: Record<Owed['kind'], { label: string; what: string }> = {
  response: { label: 'Respond to referral by', what: 'Response to referral' },
  'discharge-notice': { label: 'Answer discharge notice by', what: 'Answer to discharge notice' },
};

/**
 * When the council's answer to a waiting discharge notice is due, by referral id, read for many referrals
 * at once (the workflow's timers are not in the record).
 */
export type DischargeNoticesDue = (referralIds: string[]) => Promise<Map<string, number>>;

export interface ReferralRow {
  id: string;
  /** The triage Task's id (live updates tell a page when it changes). */
  taskId: string;
  /** The triage Task's version: forms send it back as If-Match. */
  version: string;
  patientId: string;
  name: string;
  nhsNumber?: string;
  ward: string;
  hospital: string;
  council: string;
  pathway?: number;
  pathwayLabel: string;
  state: TriageState;
  stateLabel: string;
  open: boolean;
  received: string;
  /** The response deadline the referral was given when it arrived (met or not). */
  deadline?: string;
  /**
   * What the council owes the hospital now, earliest first: its response to the referral while it has not
   * answered, and its answer to a discharge notice while one waits (hazard H-043).
   */
  owed: Owed[];
  /** The earliest due time in `owed`: what the queue sorts by. */
  nextDue?: string;
  /** Past a due time of something still owed (or flagged overdue by the deadline worker). */
  overdue: boolean;
  respondedAt?: string;
  hoursToRespond?: number;
  worker?: string;
  expectedDischarge?: string;
  medicallyReady?: string;
  discharged?: string;
  /** When a referral was withdrawn or rejected (the step that closed it without a discharge). */
  closedAt?: string;
  /**
   * Whole days from medically ready to discharge, to the withdrawal or rejection, or to now while the person
   * waits; undefined before medically ready.
   */
  daysDelayed?: number;
}

const DAY_MS = 86_400_000;
const FINAL: ReadonlySet<TriageState> = new Set(['rejected', 'discharged', 'withdrawn']);

/** The organisation the person acts for, from the record (any ODS identifier system). */
export async function organisationOf(record: RecordClient, actor: UserActor): Promise<Resource> {
  if (!actor.organisation) throw new NotInRecord('You are not signed in for an organisation. Sign out and choose the hospital or council you work for.');
  const { matches } = await record.search('Organization', [['identifier', actor.organisation]]);
  if (!matches[0]) throw new NotInRecord(`Your organisation (ODS code ${actor.organisation}) is not in the shared record yet. Ask your administrator to add it.`);
  return matches[0];
}

function hospitalRef(referral: Resource, task: Resource | undefined): { reference?: string; display?: string } {
  const requester = referral.contained?.find((c: Resource) => `#${c.id}` === referral.requester?.reference);
  return requester?.organization ?? task?.requester ?? {};
}

/** Referrals read per search: the record's largest page. */
export const REFERRAL_PAGE = 500;

/**
 * Referrals for the person's side: to their council, or from their hospital; newest first. Every page is
 * read: an old referral still open must stay in the queue, and the figures count them all.
 */
export async function loadReferralRows(
  record: RecordClient, side: Side, organisation: Resource,
  { noticesDue, now = Date.now(), pageSize = REFERRAL_PAGE }: { noticesDue?: DischargeNoticesDue; now?: number; pageSize?: number } = {},
): Promise<ReferralRow[]> {
  const mine = `Organization/${organisation.id}`;
  const params: [string, string][] = [
    ['code', `${REFERRAL_CODE.system}|${REFERRAL_CODE.code}`], ['_include', 'ServiceRequest:subject'], ['_revinclude', 'Task:focus'], ['_sort', '-authored'], ['_count', String(pageSize)],
  ];
  if (side === 'council') params.push(['performer', mine]);
  const matches: Resource[] = [];
  const seen = new Set<string>();
  const tasks = new Map<string, Resource>();
  const people = new Map<string, Resource>();
  for (let offset = 0, more = true; more; offset += pageSize) {
    const page = await record.search('ServiceRequest', offset ? [...params, ['_offset', String(offset)]] : params);
    more = page.more && page.matches.length > 0;
    // A referral made while paging pushes the rest down a place: the one seen twice is kept once.
    for (const m of page.matches) if (!seen.has(m.id)) (seen.add(m.id), matches.push(m));
    for (const r of page.included) {
      if (r.resourceType === 'Task' && r.code?.coding?.some((c: any) => c.code === TRIAGE_TASK_CODE.code)) tasks.set(r.focus?.reference, r);
      if (r.resourceType === 'Patient') people.set(`Patient/${r.id}`, r);
    }
  }
  const wards = await wardNames(record, matches);
  const shown: { referral: Resource; task: Resource; hospital: string }[] = [];
  for (const referral of matches) {
    const task = tasks.get(`ServiceRequest/${referral.id}`);
    if (!task) continue;
    const hospital = hospitalRef(referral, task);
    if (side === 'hospital' && hospital.reference !== mine) continue;
    shown.push({ referral, task, hospital: hospital.display ?? '' });
  }
  // Discharge notices waiting for the council's answer: one query for the page's open referrals.
  const open = shown.filter((s) => !FINAL.has(triageStateOf(s.task) ?? 'received')).map((s) => s.referral.id);
  const notices = noticesDue && open.length ? await noticesDue(open) : new Map<string, number>();
  return shown.map((s) => rowOf(s.referral, s.task, people.get(s.referral.subject?.reference), s.hospital, wards, now, notices.get(s.referral.id)));
}

async function wardNames(record: RecordClient, referrals: Resource[]): Promise<Map<string, string>> {
  const names = new Map<string, string>();
  const unnamed = new Set<string>();
  for (const r of referrals) {
    for (const loc of r.contained?.[0]?.location ?? []) {
      if (loc.display) names.set(loc.reference, loc.display);
      else if (loc.reference?.startsWith('Location/')) unnamed.add(loc.reference.slice('Location/'.length));
    }
  }
  const ids = [...unnamed];
  for (let i = 0; i < ids.length; i += 100) {
    const some = ids.slice(i, i + 100);
    const { matches } = await record.search('Location', [['_id', some.join(',')], ['_count', String(some.length)]]);
    for (const l of matches) names.set(`Location/${l.id}`, l.name ?? l.id);
  }
  return names;
}

/**
 * Whole days from the day the person was medically ready to the day they left (or today), both as UK local
 * dates: a discharge at 00:30 BST is on that day, which 24-hour steps from UTC midnight put on the day before.
 */
export function delayedDays(medicallyReady: string, endMs: number): number {
  const day = (text: string) => (text.length === 10 ? text : londonDay(Date.parse(text)));
  const from = Date.parse(day(medicallyReady));
  const to = Date.parse(londonDay(endMs));
  return Math.max(0, Math.round((to - from) / DAY_MS));
}

/**
 * When a withdrawn or rejected referral closed. The closing step sets the Task's lastModified, and the
 * workflow takes no further step on a closed referral (notes are Communications; dates are refused), so it
 * stays the time of that step; ADW's answer to a notice after a rejection reads it the same way.
 */
function closedWithoutDischarge(state: TriageState, task: Resource): string | undefined {
  if (state !== 'withdrawn' && state !== 'rejected') return undefined;
  return task.lastModified ?? task.meta?.lastUpdated;
}

/**
 * What the council owes on an open referral, earliest first: the response to the referral while it is
 * unanswered (received, or more information requested), and the answer to a waiting discharge notice.
 */
function owedOn(state: TriageState, deadline: string | undefined, noticeDueMs: number | undefined, now: number): Owed[] {
  if (FINAL.has(state)) return [];
  const owed: { kind: Owed['kind']; ms: number }[] = [];
  const deadlineMs = deadline ? Date.parse(deadline) : NaN;
  if (AWAITING_RESPONSE.has(state) && Number.isFinite(deadlineMs)) owed.push({ kind: 'response', ms: deadlineMs });
  if (noticeDueMs !== undefined && Number.isFinite(noticeDueMs)) owed.push({ kind: 'discharge-notice', ms: noticeDueMs });
  return owed.sort((a, b) => a.ms - b.ms).map(({ kind, ms }) => ({ kind, ...OWED_TEXT[kind], due: new Date(ms).toISOString(), overdue: ms < now }));
}

function rowOf(referral: Resource, task: Resource, patient: Resource | undefined, hospital: string, wards: Map<string, string>, now: number, noticeDueMs?: number): ReferralRow {
  const state = triageStateOf(task) ?? 'received';
  const pathway = pathwayOf(referral);
  const ready = extensionDate(referral, MEDICALLY_READY_URL);
  const discharged = referral.occurrencePeriod?.end ?? task.executionPeriod?.end;
  const respondedAt = task.executionPeriod?.start;
  const wardRef = referral.contained?.[0]?.location?.[0]?.reference;
  const closedAt = closedWithoutDischarge(state, task);
  // A person withdrawn or rejected after being medically ready waited too: their delay runs to that step.
  const end = discharged ? Date.parse(discharged) : closedAt ? Date.parse(closedAt) : FINAL.has(state) ? undefined : now;
  const owner = task.owner?.reference?.startsWith('Practitioner') ? task.owner.display ?? task.owner.reference : undefined;
  const deadline = task.restriction?.period?.end;
  const owed = owedOn(state, deadline, noticeDueMs, now);
  return {
    id: referral.id,
    taskId: task.id,
    version: task.meta?.versionId ?? '',
    patientId: referral.subject?.reference?.replace(/^Patient\//, '') ?? '',
    name: personName(patient),
    nhsNumber: patient ? nhsNumberOf(patient) : undefined,
    ward: (wardRef && wards.get(wardRef)) ?? 'Ward not recorded',
    hospital,
    council: referral.performer?.[0]?.display ?? '',
    pathway,
    pathwayLabel: pathway === undefined ? 'Pathway not set' : PATHWAYS[pathway as keyof typeof PATHWAYS],
    state,
    stateLabel: TRIAGE_DISPLAY[state],
    open: !FINAL.has(state),
    received: referral.authoredOn,
    deadline,
    owed,
    nextDue: owed[0]?.due,
    overdue: isOverdue(task as any, now) || owed.some((o) => o.overdue),
    respondedAt,
    hoursToRespond: respondedAt && referral.authoredOn ? Math.max(0, (Date.parse(respondedAt) - Date.parse(referral.authoredOn)) / 3_600_000) : undefined,
    worker: owner,
    expectedDischarge: extensionDate(referral, EXPECTED_DISCHARGE_URL),
    medicallyReady: ready,
    discharged,
    closedAt,
    daysDelayed: ready && end !== undefined && Number.isFinite(end) ? delayedDays(ready, end) : undefined,
  };
}
