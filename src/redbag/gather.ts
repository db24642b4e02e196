// Everything a transfer pack needs about one resident, read from the record at the moment of building:
// bounded searches (latest observations, current medicines, …), so a long history costs no more than a
// short one.
import { NEWS2_CODES } from '../monitoring/index.ts';
import { MEDICATION_REVIEW, ODS_SYSTEM } from './codes.ts';
import { read, search, type RecordCall, type Resource } from './recordCalls.ts';

export interface ResidentRecord {
  patient: Resource;
  gp?: Resource;
  /** The care home: the organisation managing the resident's active EpisodeOfCare. */
  careHome?: Resource;
  conditions: Resource[];
  medications: Resource[];
  /** Administrations in the last LAST_DOSE_DAYS, newest first (for each medicine's last dose). */
  administrations: Resource[];
  /** The latest medication review (Procedure), if any. */
  medicationReview?: Resource;
  allergies: Resource[];
  /** Active Consents: DNACPR / ReSPECT / advance decisions, and sharing decisions. */
  consents: Resource[];
  flags: Resource[];
  carePlans: Resource[];
  relatedPeople: Resource[];
  careTeams: Resource[];
  /** NEWS2 vital signs and totals of the last OBSERVATION_DAYS, newest first; else the latest set. */
  observations: Resource[];
}

/** How far back the pack looks for observations (the NEWS2 trend) and for each medicine's last dose. */
export const OBSERVATION_DAYS = 14;
export const LAST_DOSE_DAYS = 7;

const VITAL_CODES = Object.values(NEWS2_CODES).filter((c) => c !== NEWS2_CODES.oxygenFlow && c !== NEWS2_CODES.systolic && c !== NEWS2_CODES.diastolic && c !== NEWS2_CODES.spo2Generic).map((c) => `${c.system}|${c.code}`).join(',');

/**
 * Reads the resident's record as the caller: a refusal (403, with the break-glass advice) or a missing
 * person (404) comes from the record's own read of the Patient.
 */
export async function gatherResident(call: RecordCall, patientId: string, now: number, actingFor?: string): Promise<ResidentRecord> {
  // Bounded by date, the searches read the recent rows only, however long the history (docs/performance.md).
  const since = (days: number) => `ge${new Date(now - days * 86_400_000).toISOString()}`;
  const patient = await read(call, `Patient/${encodeURIComponent(patientId)}`);
  const p = `Patient/${patient.id}`;
  const gpRef: string | undefined = patient.generalPractitioner?.[0]?.reference;
  const [gp, episodes, conditions, medications, administrations, review, allergies, consents, flags, carePlans, relatedPeople, careTeams, observations] = await Promise.all([
    gpRef && /^(Organization|Practitioner|PractitionerRole)\/[A-Za-z0-9\-.]{1,64}$/.test(gpRef) ? read(call, gpRef).catch(() => undefined) : Promise.resolve(undefined),
    search(call, 'EpisodeOfCare', [['patient', p], ['status', 'active'], ['_include', 'EpisodeOfCare:organization']]),
    search(call, 'Condition', [['patient', p], ['clinical-status', 'active'], ['_count', '50']]),
    search(call, 'MedicationRequest', [['patient', p], ['status', 'active'], ['_count', '100']]),
    search(call, 'MedicationAdministration', [['patient', p], ['effective-time', since(LAST_DOSE_DAYS)], ['_sort', '-effective-time'], ['_count', '100']]),
    search(call, 'Procedure', [['patient', p], ['code', `${MEDICATION_REVIEW.system}|${MEDICATION_REVIEW.code}`], ['_sort', '-date'], ['_count', '1']]),
    search(call, 'AllergyIntolerance', [['patient', p], ['_count', '100']]),
    search(call, 'Consent', [['patient', p], ['status', 'active'], ['_count', '50']]),
    search(call, 'Flag', [['patient', p], ['status', 'active'], ['_count', '50']]),
    search(call, 'CarePlan', [['patient', p], ['status', 'active'], ['_count', '20']]),
    search(call, 'RelatedPerson', [['patient', p], ['_count', '20']]),
    search(call, 'CareTeam', [['patient', p], ['status', 'active'], ['_count', '10']]),
    search(call, 'Observation', [['patient', p], ['code', VITAL_CODES], ['date', since(OBSERVATION_DAYS)], ['_sort', '-date'], ['_count', '100']]),
  ]);
  // Nothing recent: the latest set whenever it was, so the pack can say how old it is.
  const latestObservations = observations.matches.length ? observations : await search(call, 'Observation', [['patient', p], ['code', VITAL_CODES], ['_sort', '-date'], ['_count', '7']]);
  const homes = episodes.included.filter((r) => r.resourceType === 'Organization');
  const careHome = homes.find((o) => o.identifier?.some((i: { system?: string; value?: string }) => i.system === ODS_SYSTEM && i.value === actingFor)) ?? homes[0];
  return {
    patient, gp, careHome,
    conditions: conditions.matches, medications: medications.matches, administrations: administrations.matches,
    medicationReview: review.matches[0], allergies: allergies.matches.filter((a) => a.clinicalStatus?.coding?.[0]?.code !== 'inactive' && a.clinicalStatus?.coding?.[0]?.code !== 'resolved'),
    consents: consents.matches, flags: flags.matches, carePlans: carePlans.matches, relatedPeople: relatedPeople.matches.filter((r) => r.active !== false),
    careTeams: careTeams.matches, observations: latestObservations.matches,
  };
}
