// What the red bag pages show, from the record: hospitals to send to, a pack's status and history, and
// the lists of packs each side is dealing with.
import { RED_BAG_STEPS, RED_BAG_TASK_CODE, ACKNOWLEDGE_REMINDER_CODE, ODS_SYSTEM, sectionsOfPack, stepOf, TRANSITIONS, type RedBagStep, type Resource } from '../../redbag/index.ts';
import type { RecordClient } from '../recordClient.ts';
import type { UserActor } from '../../access/index.ts';

export const CARE_HOME_ROLES = new Set(['care-home-staff', 'care-home-manager']);
export const HOSPITAL_ROLES = new Set(['ward-nurse', 'discharge-coordinator']);
const TASK_CODE = `${RED_BAG_TASK_CODE.system}|${RED_BAG_TASK_CODE.code}`;
const OPEN = 'requested,accepted,in-progress';

/** Hospitals on the record (organisations whose type says trust or hospital) with their ODS codes. */
export async function hospitals(record: RecordClient): Promise<{ value: string; text: string }[]> {
  const found = await record.search('Organization', [['type', 'http://terminology.hl7.org/CodeSystem/organization-type|prov'], ['_count', '200']]);
  return found.matches
    .filter((o) => (o.type ?? []).some((t: { text?: string }) => /trust|hospital/i.test(t.text ?? '')))
    .map((o) => ({ value: o.identifier?.find((i: { system?: string }) => i.system === ODS_SYSTEM)?.value, text: o.name }))
    .filter((h) => h.value);
}

const TAG_COLOURS: Record<RedBagStep, string> = { sent: 'orange', 'not-delivered': 'red', received: 'blue', 'in-hospital': 'blue', 'discharge-summary-attached': 'purple', returned: 'green', closed: 'grey' };

export function statusTag(task: Resource): { text: string; colour: string } {
  const step = stepOf(task);
  return step ? { text: RED_BAG_STEPS[step].display, colour: TAG_COLOURS[step] } : { text: 'Unknown', colour: 'red' };
}

/** Open packs for the user's organisation: sent by it (a care home) or to it (a hospital). */
export async function openRedBags(record: RecordClient, actor: UserActor, now: number) {
  const side = CARE_HOME_ROLES.has(actor.role) ? 'requester' : 'owner';
  const found = await record.search('Task', [['code', TASK_CODE], ['status', OPEN], [`${side}:Organization.identifier`, `${ODS_SYSTEM}|${actor.organisation}`], ['_sort', '-authored-on'], ['_count', '100']]);
  const reminders = found.matches.length
    ? await record.search('Task', [['code', `${ACKNOWLEDGE_REMINDER_CODE.system}|${ACKNOWLEDGE_REMINDER_CODE.code}`], ['status', 'requested'], ['part-of', found.matches.map((t) => `Task/${t.id}`).join(',')], ['_count', '100']])
    : { matches: [] as Resource[] };
  return found.matches.map((t) => {
    const reminder = reminders.matches.find((r) => r.partOf?.[0]?.reference === `Task/${t.id}`);
    const due = reminder?.restriction?.period?.end;
    return { id: t.id, step: stepOf(t), person: t.for?.display ?? '', from: t.requester?.display ?? '', to: t.owner?.display ?? '', sent: t.authoredOn, reason: t.description ?? '', tag: statusTag(t), overdue: due && Date.parse(due) < now ? due : undefined };
  });
}

/** The steps this person can take now, given their side and the pack's step. */
export function actionsFor(task: Resource, actor: UserActor): string[] {
  const step = stepOf(task);
  const side = CARE_HOME_ROLES.has(actor.role) ? 'care-home' : 'hospital';
  const ours = side === 'care-home' ? task.requester?.identifier?.value : task.owner?.identifier?.value;
  if (!step || ours !== actor.organisation) return [];
  // A pack MESH reported the hospital never received: its home can send it again (H-042).
  const again = step === 'not-delivered' && side === 'care-home' ? ['sent'] : [];
  return [...again, ...Object.entries(TRANSITIONS).filter(([, rule]) => rule.side === side && rule.from.includes(step)).map(([name]) => name)];
}

export function transferView(task: Resource, pack: Resource) {
  const input = (label: string) => (task.input ?? []).find((i: any) => i.type?.text === label);
  return {
    id: task.id,
    version: task.meta?.versionId,
    person: task.for?.display ?? '',
    patientId: String(task.for?.reference ?? '').split('/')[1],
    from: task.requester?.display,
    to: task.owner?.display,
    tag: statusTag(task),
    step: stepOf(task),
    /** Why the hospital did not receive it (MESH's report), when it did not. */
    notReceived: stepOf(task) === 'not-delivered' ? String(task.statusReason?.text ?? 'MESH reported that it was not delivered') : undefined,
    ward: input('Ward')?.valueString,
    expectedDischarge: input('Expected discharge')?.valueDate,
    dischargeSummary: (task.output ?? []).find((o: any) => o.type?.text === 'Discharge summary')?.valueReference?.reference,
    history: (task.note ?? []).map((n: { time?: string; text?: string }) => ({ at: n.time, text: n.text })),
    sections: sectionsOfPack(pack),
  };
}

export const STEP_LABELS: Record<string, string> = {
  sent: 'Send the red bag again',
  received: 'Acknowledge: the pack has arrived',
  'in-hospital': 'Update ward and expected discharge',
  'discharge-summary-attached': 'Attach the discharge summary',
  returned: 'The resident is back at the home',
  closed: 'Close the red bag',
};
