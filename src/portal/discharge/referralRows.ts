// The discharge referrals a signed-in person may see, as rows for the board, the queue and the metrics:
// read through the record with the person's own access (a council's people see referrals to their
// council, a hospital's those from their hospital), each referral with its triage Task and person.
import {
  REFERRAL_CODE, TRIAGE_DISPLAY, TRIAGE_TASK_CODE, MEDICALLY_READY_URL, EXPECTED_DISCHARGE_URL, PATHWAYS,
  extensionDate, isOverdue, londonDay, pathwayOf, triageStateOf, type TriageState,
} from '../../discharge/index.ts';
import type { UserActor } from '../../access/index.ts';
import type { RecordClient, Resource } from '../recordClient.ts';
import { personName, nhsNumberOf } from '../person/text.ts';
import { NotInRecord } from '../pageErrors.ts';

export type Side = 'hospital' | 'council';

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
  deadline?: string;
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
export async function loadReferralRows(record: RecordClient, side: Side, organisation: Resource, now = Date.now(), pageSize = REFERRAL_PAGE): Promise<ReferralRow[]> {
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
  const rows: ReferralRow[] = [];
  for (const referral of matches) {
    const task = tasks.get(`ServiceRequest/${referral.id}`);
    if (!task) continue;
    const hospital = hospitalRef(referral, task);
    if (side === 'hospital' && hospital.reference !== mine) continue;
    rows.push(rowOf(referral, task, people.get(referral.subject?.reference), hospital.display ?? '', wards, now));
  }
  return rows;
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

function rowOf(referral: Resource, task: Resource, patient: Resource | undefined, hospital: string, wards: Map<string, string>, now: number): ReferralRow {
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
    deadline: task.restriction?.period?.end,
    overdue: isOverdue(task as any, now),
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
