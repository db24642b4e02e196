// The ward list: the patients with an active Encounter at the user's hospital, grouped by ward (the
// Encounter's current location), each with their latest NEWS2 score and their alerts as tags.
import { news2Band, type News2Band } from '../../monitoring/index.ts';
import type { UserActor } from '../../access/index.ts';
import type { RecordClient, Resource } from '../recordClient.ts';
import { NEWS2_TOTAL } from '../careHome/codes.ts';
import { organisationOf } from '../person/organisation.ts';
import { nhsNumberOf, personName } from '../person/text.ts';
import { alertsFor, type Alert } from '../person/alerts.ts';

/** Encounter statuses that mean the person is with the hospital now (as the access relationship reads them). */
export const ACTIVE_ENCOUNTER = 'arrived,triaged,in-progress,onleave';
const PAGE = 500;
const NO_WARD = 'Ward not recorded';

export interface WardPatient {
  id: string;
  name: string;
  sortName: string;
  nhsNumber?: string;
  admitted?: string;
  reason?: string;
  news2?: { total: number; band: News2Band; at: string };
  alerts: Alert[];
}

export interface WardListView {
  hospital: { id: string; name: string };
  wards: { name: string; patients: WardPatient[] }[];
  count: number;
  /** More admissions than one page holds (the page says so rather than silently cut the list). */
  more: boolean;
}

/** The ward an Encounter is on now: its active location, else its latest one. */
function wardOf(encounter: Resource): string {
  const locations: any[] = encounter.location ?? [];
  const current = locations.find((l) => l.status === 'active') ?? locations[locations.length - 1];
  return current?.location?.display ?? NO_WARD;
}

export async function wardListView(record: RecordClient, actor: UserActor): Promise<WardListView> {
  const hospital = await organisationOf(record, actor);
  const found = await record.search('Encounter', [
    ['service-provider', `Organization/${hospital.id}`],
    ['status', ACTIVE_ENCOUNTER],
    ['_include', 'Encounter:subject'],
    ['_count', String(PAGE)],
  ]);
  const patients = new Map(found.included.filter((r) => r.resourceType === 'Patient').map((p) => [p.id, p]));
  const ids = [...patients.keys()];
  const [alerts, news2] = await Promise.all([alertsFor(record, ids), latestNews2(record, ids)]);
  const wards = new Map<string, WardPatient[]>();
  const seen = new Set<string>();
  for (const encounter of found.matches) {
    const id = String(encounter.subject?.reference ?? '').replace(/^Patient\//, '');
    const patient = patients.get(id);
    if (!patient || seen.has(id)) continue; // one row per person, even with two open encounters
    seen.add(id);
    const ward = wardOf(encounter);
    const row: WardPatient = {
      id,
      name: personName(patient),
      sortName: `${patient.name?.[0]?.family ?? ''} ${(patient.name?.[0]?.given ?? []).join(' ')}`.toLowerCase(),
      nhsNumber: nhsNumberOf(patient),
      admitted: encounter.period?.start,
      reason: (encounter.reasonCode ?? []).map((c: any) => c.text ?? c.coding?.[0]?.display).filter(Boolean).join(', ') || undefined,
      news2: news2.get(id),
      alerts: alerts.get(id) ?? [],
    };
    wards.set(ward, [...(wards.get(ward) ?? []), row]);
  }
  return {
    hospital: { id: hospital.id, name: hospital.name ?? actor.organisation ?? '' },
    wards: [...wards.entries()]
      .sort(([a], [b]) => (a === NO_WARD ? 1 : b === NO_WARD ? -1 : a.localeCompare(b, 'en-GB')))
      .map(([name, rows]) => ({ name, patients: rows.sort((x, y) => x.sortName.localeCompare(y.sortName, 'en-GB')) })),
    count: seen.size,
    more: found.more,
  };
}

/**
 * Each patient's latest NEWS2 score: one small search per patient (the newest one), so a patient with many
 * readings cannot push another's latest out of a shared page of results.
 */
async function latestNews2(record: RecordClient, ids: string[]): Promise<Map<string, WardPatient['news2']>> {
  const latest = new Map<string, WardPatient['news2']>();
  await Promise.all(
    ids.map(async (id) => {
      const { matches } = await record.search('Observation', [['patient', id], ['code', `${NEWS2_TOTAL.system}|${NEWS2_TOTAL.code}`], ['_sort', '-date'], ['_count', '1']]);
      const o = matches[0];
      if (!o) return;
      const total = Number(o.valueInteger);
      if (!Number.isInteger(total) || total < 0) return; // not a score the page could band
      const red = (o.component ?? []).some((c: any) => c.valueInteger === 3);
      latest.set(id, { total, band: news2Band(total, red), at: o.effectiveDateTime });
    }),
  );
  return latest;
}

/** The ids of the patients in the hospital now (for the live ward list: who is on the page). */
export async function inpatientIds(record: RecordClient, actor: UserActor): Promise<Set<string>> {
  const hospital = await organisationOf(record, actor);
  const { matches } = await record.search('Encounter', [['service-provider', `Organization/${hospital.id}`], ['status', ACTIVE_ENCOUNTER], ['_elements', 'subject'], ['_count', String(PAGE)]]);
  return new Set(matches.map((e) => String(e.subject?.reference ?? '').replace(/^Patient\//, '')).filter(Boolean));
}
