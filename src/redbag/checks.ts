// Safety checks before a red bag is sent (docs/clinical-safety/hazard-log.md, H-030 and H-031). Missing
// mandatory content stops the sending and is listed plainly; stale or absent clinical content is flagged
// on screen and inside the pack itself, so the hospital knows what not to rely on.
import { isValidNhsNumber } from '../record/index.ts';
import { BASELINE_DOMAINS, NHS_NUMBER_SYSTEM, type BaselineDomain } from './codes.ts';
import type { TransferDetails } from './details.ts';
import type { ResidentRecord } from './gather.ts';
import type { Resource } from './recordCalls.ts';
import { isNews2Total, isResuscitationDecision } from './readings.ts';

export interface SafetyFinding {
  /** Stable rule id, quoted in the hazard log and tests. */
  rule: string;
  /** missing: the pack cannot be sent; stale: it can, flagged. */
  severity: 'missing' | 'stale';
  text: string;
}

const HOUR = 3600_000;
const DAY = 24 * HOUR;
export const OBSERVATIONS_STALE_AFTER_MS = 24 * HOUR;
export const MEDICATION_REVIEW_STALE_AFTER_MS = 30 * DAY;

export function checkTransfer(record: ResidentRecord, details: TransferDetails, destination: Resource | undefined, now: number, sending: boolean): SafetyFinding[] {
  const findings: SafetyFinding[] = [];
  const missing = (rule: string, text: string) => findings.push({ rule, severity: 'missing', text });
  const stale = (rule: string, text: string) => findings.push({ rule, severity: 'stale', text });

  const nhs = record.patient.identifier?.find((i: { system?: string }) => i.system === NHS_NUMBER_SYSTEM)?.value;
  if (!nhs || !isValidNhsNumber(nhs)) missing('RB-M1', 'The NHS number is missing or not valid: the hospital could not be sure who this is.');
  if (!record.careHome) missing('RB-M2', 'The person is not a resident of a care home on the record (no active episode of care), so there is no home to send from.');
  if (!details.reason) missing('RB-M3', 'The reason for transfer is missing: say what has happened and why the person is going to hospital.');
  if (!details.destination) missing('RB-M4', 'No receiving hospital is chosen.');
  else if (!destination) missing('RB-M4', `No hospital with ODS code ${details.destination} is on the record.`);
  if (!record.gp) missing('RB-M5', 'No GP practice is recorded for the person.');
  if (sending && !details.attested) missing('RB-M6', 'The person sending the pack has not confirmed it is accurate and complete.');

  const latest = record.observations.find(isNews2Total) ?? record.observations[0];
  const at = Date.parse(latest?.effectiveDateTime ?? '');
  if (!latest || !Number.isFinite(at)) stale('RB-S1', 'No observations are recorded: take a set of observations (NEWS2) before the person leaves, if it is safe to.');
  else if (now - at > OBSERVATIONS_STALE_AFTER_MS) stale('RB-S1', `The latest observations are more than 24 hours old (${latest.effectiveDateTime}): do not rely on them as current.`);

  if (!record.medications.length) stale('RB-S2', 'No current medicines are recorded: if the person takes none, say so in the handover.');
  else {
    const reviewed = lastMedicationReview(record);
    if (reviewed === undefined || now - reviewed > MEDICATION_REVIEW_STALE_AFTER_MS) stale('RB-S2', 'The medication list has not been reviewed in the last 30 days: the hospital should check it with the GP record.');
  }
  if (!record.consents.some(isResuscitationDecision)) stale('RB-S3', 'No DNACPR or ReSPECT decision is recorded: the hospital must not assume one either way.');
  const unrecorded = (Object.keys(BASELINE_DOMAINS) as BaselineDomain[]).filter((d) => !details.baseline[d]);
  if (unrecorded.length) stale('RB-S4', `Baseline when well is not recorded for: ${unrecorded.map((d) => BASELINE_DOMAINS[d].toLowerCase()).join(', ')}.`);
  if (!record.allergies.length) stale('RB-S5', 'No allergies are recorded: confirm "no known allergies" with the GP record before any medicine is given.');
  return findings;
}

/** The latest of a recorded medication review and the newest current prescription, in ms. */
export function lastMedicationReview(record: ResidentRecord): number | undefined {
  const dates = [record.medicationReview?.performedDateTime ?? record.medicationReview?.performedPeriod?.end, ...record.medications.map((m) => m.authoredOn)]
    .map((d) => Date.parse(d ?? ''))
    .filter(Number.isFinite);
  return dates.length ? Math.max(...dates) : undefined;
}

export function blocking(findings: SafetyFinding[]): SafetyFinding[] {
  return findings.filter((f) => f.severity === 'missing');
}
