// A person's record summary, the same for every role that reads records (care home, hospital, council):
// demographics, alerts, medicines, allergies, conditions, latest observations with the NEWS2 trend, care
// plan, About Me and recent events. Every item says where it came from (organisation, author, time) as far
// as the record tells. A section the role may not read is marked as withheld, never shown as empty: "no
// allergies recorded" must only ever mean the record holds none (hazard H-014).
import { news2Band, news2Trend, type News2Band, type News2Trend } from '../../monitoring/index.ts';
import type { RecordClient, Resource } from '../recordClient.ts';
import { ageOn, conceptText, nhsNumberOf, personName } from './text.ts';
import { alertsFor, type Alert } from './alerts.ts';
import { NEWS2_TOTAL, VITALS } from '../careHome/codes.ts';

export interface Provenance {
  organisation?: string;
  author?: string;
  /** A FHIR date or dateTime. */
  at?: string;
}

export interface SummaryItem {
  text: string;
  detail?: string;
  provenance: Provenance;
}

export interface News2Reading {
  id: string;
  total: number;
  band: News2Band;
  anySingleParameterScored3: boolean;
  at: string;
  provenance: Provenance;
}

/** Sections of the summary, each read from one resource type; `withheld` lists those the role may not read. */
export const SECTION_TYPES = {
  alerts: 'Consent',
  nextOfKin: 'RelatedPerson',
  observations: 'Observation',
  medications: 'MedicationRequest',
  allergies: 'AllergyIntolerance',
  conditions: 'Condition',
  carePlan: 'CarePlan',
  events: 'Encounter',
} as const;
export type SummarySection = keyof typeof SECTION_TYPES;

export interface RecordSummary {
  patient: { id: string; name: string; nhsNumber?: string; birthDate?: string; age?: number; gender?: string; address?: string; gp?: string; careHome?: string };
  nextOfKin: { name: string; relationship: string; phone?: string }[];
  alerts: Alert[];
  medications: SummaryItem[];
  allergies: SummaryItem[];
  conditions: SummaryItem[];
  latestNews2?: News2Reading & { trend: News2Trend; vitals: { label: string; value: string }[] };
  news2History: News2Reading[];
  carePlans: (SummaryItem & { activities: string[] })[];
  aboutMe?: SummaryItem;
  events: SummaryItem[];
  /** Whether SpO2 is to be scored on NEWS2 scale 2: only when the record holds that clinical decision. */
  spo2Scale2?: { reason: string };
  /** Sections the signed-in role may not read (shown as withheld, not as empty); alerts: DNACPR decisions only. */
  withheld: Partial<Record<SummarySection, true>>;
}

/** Readings within this time before the latest one make the window the NEWS2 trend compares against. */
const TREND_WINDOW_MS = 72 * 3600 * 1000;

/** An active Flag carrying the clinician's decision to score SpO2 on scale 2 (see hazard H-001, H-003). */
export function isScale2Decision(flag: Resource): boolean {
  return flag.status === 'active' && /NEWS2 scale 2/i.test(conceptText(flag.code));
}

/**
 * The summary of `patientId`'s record as the caller may see it (undefined when the record shows no such
 * person to them). `mayRead` is the caller's role's read permission by resource type.
 */
export async function recordSummary(record: RecordClient, patientId: string, mayRead: (type: string) => boolean): Promise<RecordSummary | undefined> {
  const withheld: RecordSummary['withheld'] = {};
  for (const [section, type] of Object.entries(SECTION_TYPES)) if (!mayRead(type)) withheld[section as SummarySection] = true;
  const included = ['Flag', 'AllergyIntolerance', 'Condition', 'MedicationRequest', 'CarePlan', 'EpisodeOfCare', 'Encounter', 'RelatedPerson'].filter(mayRead);
  const [everything, news2] = await Promise.all([
    record.search('Patient', [['_id', patientId], ...included.map((t): [string, string] => ['_revinclude', `${t}:patient`]), ['_count', '1']]),
    withheld.observations
      ? { matches: [], included: [], more: false }
      : record.search('Observation', [['patient', patientId], ['code', `${NEWS2_TOTAL.system}|${NEWS2_TOTAL.code}`], ['_sort', '-date'], ['_count', '10'], ['_include', 'Observation:derived-from']]),
  ]);
  const patient = everything.matches[0];
  if (!patient) return undefined;
  const of = (type: string) => everything.included.filter((r) => r.resourceType === type);
  const organisationOf = await practitionerOrganisations(record, [...everything.included, ...news2.matches]);
  const provenance = (who: any, at: string | undefined, organisation?: any): Provenance => ({
    author: who?.reference?.startsWith('Organization/') ? undefined : who?.display,
    organisation: organisation?.display ?? (who?.reference?.startsWith('Organization/') ? who.display : organisationOf.get(who?.reference)),
    at,
  });

  const alerts = (await alertsFor(record, [patient.id], mayRead)).get(patient.id) ?? [];
  const flags = of('Flag').filter((f) => f.status === 'active');
  const scale2 = flags.find(isScale2Decision);

  const readings: News2Reading[] = news2.matches.map((o) => {
    const total = Number(o.valueInteger);
    const red = (o.component ?? []).some((c: any) => c.valueInteger === 3);
    return { id: o.id, total, anySingleParameterScored3: red, band: news2Band(total, red), at: o.effectiveDateTime, provenance: provenance(o.performer?.[0], o.effectiveDateTime, o.performer?.[1]) };
  });
  const [latest, ...earlier] = readings;
  let latestNews2: RecordSummary['latestNews2'];
  if (latest) {
    const windowStart = Date.parse(latest.at) - TREND_WINDOW_MS;
    // The window's readings, oldest first; and always the one before, however old, so a rise from it shows.
    const inWindow = earlier.filter((r) => Date.parse(r.at) >= windowStart);
    const previous = (inWindow.length ? inWindow : earlier.slice(0, 1)).reverse();
    const derived = new Map(news2.included.map((r) => [`Observation/${r.id}`, r]));
    const vitals = (news2.matches[0].derivedFrom ?? []).map((ref: any) => derived.get(ref.reference)).filter(Boolean).map(vitalRow);
    latestNews2 = { ...latest, trend: news2Trend(previous, latest), vitals };
  }

  const kin = of('RelatedPerson');
  const episode = of('EpisodeOfCare').find((e) => e.status === 'active');
  const carePlans = of('CarePlan').filter((c) => c.status === 'active');
  const address = patient.address?.[0];
  return {
    patient: {
      id: patient.id,
      name: personName(patient),
      nhsNumber: nhsNumberOf(patient),
      birthDate: patient.birthDate,
      age: ageOn(patient.birthDate),
      gender: patient.gender,
      address: address ? [...(address.line ?? []), address.city, address.postalCode].filter(Boolean).join(', ') : undefined,
      gp: patient.generalPractitioner?.[0]?.display,
      careHome: patient.managingOrganization?.display,
    },
    nextOfKin: kin.map((k) => ({
      name: personName(k),
      relationship: (k.relationship ?? []).map(conceptText).filter((t: string) => t && t !== 'Next-of-Kin').join(', ') || 'Next of kin',
      phone: k.telecom?.find((t: any) => t.system === 'phone')?.value,
    })),
    alerts,
    medications: of('MedicationRequest')
      .filter((m) => m.status === 'active')
      .map((m) => ({ text: conceptText(m.medicationCodeableConcept), detail: m.dosageInstruction?.[0]?.text, provenance: provenance(m.requester, m.authoredOn) })),
    allergies: of('AllergyIntolerance').map((a) => ({
      text: conceptText(a.code),
      detail: [(a.reaction ?? []).flatMap((r: any) => r.manifestation ?? []).map(conceptText).join(', '), a.criticality ? `${a.criticality} criticality` : ''].filter(Boolean).join('; '),
      provenance: provenance(a.recorder, a.recordedDate),
    })),
    conditions: of('Condition').map((c) => ({
      text: conceptText(c.code),
      detail: [conceptText(c.clinicalStatus), c.onsetDateTime ? `since ${c.onsetDateTime.slice(0, 4)}` : ''].filter(Boolean).join(', '),
      provenance: provenance(c.recorder, c.recordedDate),
    })),
    latestNews2,
    news2History: readings,
    carePlans: carePlans.map((c) => ({
      text: c.title ?? conceptText(c.category?.[0]) ?? 'Care plan',
      activities: (c.activity ?? []).map((a: any) => a.detail?.description).filter(Boolean),
      provenance: provenance(c.author, c.period?.start ?? c.meta?.lastUpdated),
    })),
    aboutMe: carePlans.find((c) => c.description) ? { text: carePlans.find((c) => c.description)!.description, provenance: provenance(carePlans.find((c) => c.description)!.author, carePlans.find((c) => c.description)!.meta?.lastUpdated) } : undefined,
    events: recentEvents(of('Encounter'), episode),
    spo2Scale2: scale2 ? { reason: conceptText(scale2.code) } : undefined,
    withheld,
  };
}

function recentEvents(encounters: Resource[], episode: Resource | undefined): SummaryItem[] {
  const events: SummaryItem[] = encounters.map((e) => {
    const ward = e.location?.[0]?.location?.display;
    const reason = (e.reasonCode ?? []).map(conceptText).join(', ');
    const inHospital = e.status === 'in-progress';
    return {
      text: `${inHospital ? 'In hospital' : 'Hospital stay'}${ward ? `: ${ward}` : ''}`,
      detail: [conceptText(e.type?.[0]), reason].filter(Boolean).join(': '),
      provenance: { organisation: e.serviceProvider?.display, at: e.period?.start },
    };
  });
  if (episode) events.push({ text: `Moved in: ${conceptText(episode.type?.[0])}`, provenance: { organisation: episode.managingOrganization?.display, at: episode.period?.start } });
  return events.sort((a, b) => String(b.provenance.at ?? '').localeCompare(String(a.provenance.at ?? '')));
}

const VITAL_LABELS: [string, string][] = [
  [VITALS.respirationRate.code, 'Respiration rate'],
  [VITALS.spo2.code, 'SpO2'],
  [VITALS.bloodPressure.code, 'Blood pressure'],
  [VITALS.heartRate.code, 'Pulse'],
  [VITALS.acvpu.code, 'Consciousness (ACVPU)'],
  [VITALS.temperature.code, 'Temperature'],
];

function vitalRow(o: Resource): { label: string; value: string } {
  const codes = (o.code?.coding ?? []).map((c: any) => c.code);
  const label = VITAL_LABELS.find(([code]) => codes.includes(code))?.[1] ?? conceptText(o.code);
  const quantity = (q: any) => (q ? `${q.value} ${q.unit ?? ''}`.trim() : '');
  if (o.component && codes.includes(VITALS.bloodPressure.code)) return { label, value: `${o.component.map((c: any) => c.valueQuantity?.value).join('/')} mmHg` };
  if (o.valueCodeableConcept) return { label, value: conceptText(o.valueCodeableConcept) };
  return { label, value: quantity(o.valueQuantity) };
}

/** Practitioner reference → the organisation they work for, from their PractitionerRoles. */
async function practitionerOrganisations(record: RecordClient, resources: Resource[]): Promise<Map<string, string>> {
  const refs = new Set<string>();
  const collect = (r: any) => {
    if (typeof r?.reference === 'string' && r.reference.startsWith('Practitioner/')) refs.add(r.reference);
  };
  for (const r of resources) [r.recorder, r.requester, r.author, ...(r.performer ?? [])].forEach(collect);
  const map = new Map<string, string>();
  const ids = [...refs].slice(0, 100);
  if (!ids.length) return map;
  const { matches } = await record.search('PractitionerRole', [['practitioner', ids.join(',')], ['_count', '1000']]);
  for (const role of matches) {
    const who = role.practitioner?.reference;
    if (who && role.organization?.display && !map.has(who)) map.set(who, role.organization.display);
  }
  return map;
}
