// The transfer pack: a FHIR document (Bundle type document, Composition first) built from the resident's
// record at the moment of sending, with the PRSB care-home-to-hospital transfer sections under UK Core
// record-standard headings where one exists. Each section's narrative is a two-column table (label,
// value): the screen and the PDF render those same rows, so what is printed matches what is shown.
import { randomUUID } from 'node:crypto';
import { SYNTHETIC_TAG, type RecordCaller } from '../record/index.ts';
import { BASELINE_DOMAINS, DESTINATION_EXTENSION, NHS_NUMBER_SYSTEM, RED_BAG_IDENTIFIER, RED_BAG_SECTION, TRANSFER_PACK_TYPE, UK_CORE_HEADINGS, type BaselineDomain } from './codes.ts';
import type { TransferDetails } from './details.ts';
import type { ResidentRecord } from './gather.ts';
import type { SafetyFinding } from './checks.ts';
import { lastMedicationReview } from './checks.ts';
import { referenceTo, type Resource } from './recordCalls.ts';
import { addressText, conceptText, dosageText, isResuscitationDecision, lastDose, latestVitals, medicationText, news2Summary, personName, telecomText } from './readings.ts';

export interface PackRow { label: string; value: string }
export interface PackSection { key: string; title: string; rows: PackRow[]; entries: Resource[] }

export interface PackInput {
  record: ResidentRecord;
  details: TransferDetails;
  destination?: Resource;
  findings: SafetyFinding[];
  caller?: RecordCaller;
  now: number;
  base: string;
  /** preliminary: a draft; final: the pack as sent. */
  status: 'preliminary' | 'final';
  /** The document's identifier (kept by the DocumentReference that stores a sent pack). */
  identifier?: string;
}

/** Sections coded with a UK Core record-standard heading; the others with CareBridge's local codes. */
const UK_CORE_SECTIONS = new Set(['person-demographics', 'reason-for-handover', 'observations', 'medications-and-medical-devices', 'allergies-and-adverse-reaction', 'safety-alerts', 'professional-contacts', 'person-completing-record']);

const XHTML = 'http://www.w3.org/1999/xhtml';

function escapeHtml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function narrative(rows: PackRow[]): string {
  const body = rows.map((r) => `<tr><th>${escapeHtml(r.label)}</th><td>${escapeHtml(r.value)}</td></tr>`).join('');
  return `<div xmlns="${XHTML}"><table><tbody>${body}</tbody></table></div>`;
}

/** The rows of a section's narrative, as built above. */
export function rowsOf(div: string | undefined): PackRow[] {
  const unescape = (s: string) => s.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&amp;/g, '&');
  return [...(div ?? '').matchAll(/<tr><th>(.*?)<\/th><td>(.*?)<\/td><\/tr>/g)].map((m) => ({ label: unescape(m[1]), value: unescape(m[2]) }));
}

function ukDateTime(value: string | undefined): string {
  if (!value) return '';
  if (!value.includes('T')) return new Date(`${value}T12:00:00Z`).toLocaleDateString('en-GB', { timeZone: 'Europe/London', day: 'numeric', month: 'long', year: 'numeric' });
  const ms = Date.parse(value);
  return Number.isFinite(ms) ? new Date(ms).toLocaleString('en-GB', { timeZone: 'Europe/London', day: 'numeric', month: 'short', year: 'numeric', hour: '2-digit', minute: '2-digit', hour12: false }) : value;
}

function ageOn(birthDate: string | undefined, now: number): string {
  if (!birthDate) return '';
  const b = new Date(`${birthDate}T00:00:00Z`);
  const n = new Date(now);
  let age = n.getUTCFullYear() - b.getUTCFullYear();
  if (n.getUTCMonth() < b.getUTCMonth() || (n.getUTCMonth() === b.getUTCMonth() && n.getUTCDate() < b.getUTCDate())) age--;
  return ` (aged ${age})`;
}

export function transferSections(input: PackInput): PackSection[] {
  const { record, details, destination, findings, caller, now } = input;
  const { patient, careHome, gp } = record;
  const nhs = patient.identifier?.find((i: { system?: string }) => i.system === NHS_NUMBER_SYSTEM)?.value ?? '';
  const news2 = news2Summary(record.observations);
  const vitals = latestVitals(record.observations);
  const decisions = record.consents.filter(isResuscitationDecision);
  const nextOfKin = record.relatedPeople.map((r) => ({ r, relationship: (r.relationship ?? []).map(conceptText).filter((t: string) => t && t !== 'Next-of-Kin').join(', ') || 'Related person' }));
  const notRecorded = 'Not recorded';
  const decisionText = decisions.length ? decisions.map((c) => `${(c.category ?? []).map(conceptText).join(', ')}${c.dateTime ? ` (${ukDateTime(c.dateTime)})` : ''}`).join('; ') : 'No DNACPR or ReSPECT decision recorded';
  const allergyText = record.allergies.length ? record.allergies.map((a) => conceptText(a.code)).join(', ') : 'None recorded';
  const aboutMe = record.carePlans.find((c) => c.description) ?? record.carePlans[0];
  const problems = record.conditions.map((c) => conceptText(c.code)).filter(Boolean);
  const background = details.background ?? [`Lives at ${careHome?.name ?? 'a care home'}.`, problems.length ? `Problems: ${problems.join(', ')}.` : ''].filter(Boolean).join(' ');
  const missingOrStale = findings.length;

  const sections: PackSection[] = [
    { key: 'summary', title: 'Summary', entries: [], rows: [
      { label: 'Name', value: personName(patient) },
      { label: 'NHS number', value: nhs.replace(/^(\d{3})(\d{3})(\d{4})$/, '$1 $2 $3') || notRecorded },
      { label: 'Date of birth', value: `${ukDateTime(patient.birthDate)}${ageOn(patient.birthDate, now)}` },
      { label: 'From', value: [careHome?.name, telecomText(careHome)].filter(Boolean).join(', ') || notRecorded },
      { label: 'To', value: destination?.name ?? notRecorded },
      { label: 'Reason for transfer', value: details.reason ?? notRecorded },
      { label: 'Observations', value: news2.text },
      { label: 'Allergies', value: allergyText },
      { label: 'DNACPR / ReSPECT', value: decisionText },
      { label: 'Safety alerts', value: record.flags.map((f) => conceptText(f.code)).join('; ') || 'None recorded' },
      { label: 'Next of kin', value: nextOfKin.map(({ r, relationship }) => `${personName(r)} (${relationship}) ${telecomText(r)}`.trim()).join('; ') || notRecorded },
      { label: 'Checks before sending', value: missingOrStale ? `${missingOrStale} to note: see "Checks before sending"` : 'Nothing missing or out of date' },
    ] },
    { key: 'person-demographics', title: 'Person demographics and GP', entries: [patient, ...(gp ? [gp] : []), ...(careHome ? [careHome] : [])], rows: [
      { label: 'Name', value: personName(patient) },
      { label: 'NHS number', value: nhs || notRecorded },
      { label: 'Date of birth', value: ukDateTime(patient.birthDate) || notRecorded },
      { label: 'Gender', value: patient.gender ?? notRecorded },
      { label: 'Address', value: addressText(patient.address) || notRecorded },
      { label: 'Care home', value: [careHome?.name, telecomText(careHome)].filter(Boolean).join(', ') || notRecorded },
      { label: 'GP practice', value: gp ? [gp.name ?? personName(gp), telecomText(gp)].filter(Boolean).join(', ') : notRecorded },
    ] },
    { key: 'reason-for-handover', title: 'Reason for transfer (SBARD)', entries: [], rows: [
      { label: 'Situation', value: details.reason ?? notRecorded },
      { label: 'Background', value: background },
      { label: 'Assessment', value: details.assessment ?? news2.text },
      { label: 'Recommendation', value: details.recommendation ?? 'Not given' },
      { label: 'Decision', value: details.decision ?? decisionText },
    ] },
    { key: 'baseline-when-well', title: 'Baseline when well', entries: [], rows: (Object.keys(BASELINE_DOMAINS) as BaselineDomain[]).map((d) => ({ label: BASELINE_DOMAINS[d], value: details.baseline[d] ?? notRecorded })) },
    { key: 'observations', title: 'Latest observations and NEWS2', entries: [...vitals.map((v) => v.resource), ...(news2.latest ? [news2.latest] : [])], rows: [
      ...vitals.map((v) => ({ label: v.label, value: `${v.value}${v.at ? ` at ${ukDateTime(v.at)}` : ''}` })),
      { label: 'NEWS2', value: news2.text },
      { label: 'Recent NEWS2 scores', value: news2.totals.map((t) => `${t.total} (${ukDateTime(t.at)})`).join(', ') || 'None' },
    ] },
    { key: 'medications-and-medical-devices', title: 'Current medicines', entries: record.medications, rows: [
      ...record.medications.map((m) => {
        const dose = lastDose(m, record.administrations);
        return { label: medicationText(m), value: `${dosageText(m) || 'Dose not recorded'}. Last dose given: ${dose ? ukDateTime(dose.effectiveDateTime ?? dose.effectivePeriod?.start) : 'not recorded in the last 7 days'}` };
      }),
      ...(record.medications.length ? [] : [{ label: 'Medicines', value: 'None recorded' }]),
      { label: 'Medication list last reviewed', value: ukDateTime(lastMedicationReviewIso(record)) || notRecorded },
    ] },
    { key: 'allergies-and-adverse-reaction', title: 'Allergies and adverse reactions', entries: record.allergies, rows: record.allergies.length
      ? record.allergies.map((a) => ({ label: conceptText(a.code), value: [(a.reaction ?? []).flatMap((r: any) => (r.manifestation ?? []).map(conceptText)).join(', '), a.criticality ? `criticality ${a.criticality}` : ''].filter(Boolean).join('; ') || 'Reaction not recorded' }))
      : [{ label: 'Allergies', value: 'None recorded' }] },
    { key: 'dnacpr-respect', title: 'DNACPR, ReSPECT and advance decisions', entries: decisions, rows: decisions.length
      ? decisions.map((c) => ({ label: (c.category ?? []).map(conceptText).join(', ') || 'Decision', value: [c.policyRule?.text, c.dateTime ? `Recorded ${ukDateTime(c.dateTime)}` : ''].filter(Boolean).join(' ') }))
      : [{ label: 'Status', value: 'No DNACPR or ReSPECT decision recorded' }] },
    { key: 'about-me', title: 'About me', entries: aboutMe ? [aboutMe] : [], rows: aboutMe
      ? [{ label: 'About me', value: aboutMe.description ?? aboutMe.title ?? '' }, ...(aboutMe.activity ?? []).map((a: any) => ({ label: 'How to support me', value: a.detail?.description ?? '' })).filter((r: PackRow) => r.value)]
      : [{ label: 'About me', value: notRecorded }] },
    { key: 'safety-alerts', title: 'Safety alerts', entries: record.flags, rows: record.flags.length
      ? record.flags.map((f) => ({ label: (f.category ?? []).map(conceptText).join(', ') || 'Alert', value: conceptText(f.code) }))
      : [{ label: 'Alerts', value: 'None recorded' }] },
    { key: 'problems', title: 'Problems and diagnoses', entries: record.conditions, rows: problems.length ? problems.map((p) => ({ label: 'Problem', value: p })) : [{ label: 'Problems', value: 'None recorded' }] },
    { key: 'professional-contacts', title: 'Professional contacts and next of kin', entries: [...record.careTeams, ...record.relatedPeople], rows: [
      ...record.careTeams.flatMap((t) => (t.participant ?? []).filter((p: any) => !p.member?.reference?.startsWith('RelatedPerson/')).map((p: any) => ({ label: (p.role ?? []).map(conceptText).join(', ') || 'Contact', value: [p.member?.display, p.onBehalfOf?.display].filter(Boolean).join(', ') }))),
      ...nextOfKin.map(({ r, relationship }) => ({ label: `Next of kin (${relationship})`, value: [personName(r), telecomText(r)].filter(Boolean).join(', ') })),
    ] },
    { key: 'belongings', title: 'Belongings in the bag', entries: [], rows: details.belongings.length ? details.belongings.map((b) => ({ label: 'In the bag', value: b })) : [{ label: 'Belongings', value: 'None listed' }] },
    { key: 'checks', title: 'Checks before sending', entries: [], rows: findings.length ? findings.map((f) => ({ label: f.severity === 'missing' ? 'Missing' : 'Check', value: f.text })) : [{ label: 'Result', value: 'Nothing missing or out of date' }] },
    { key: 'person-completing-record', title: 'Person completing the record', entries: [], rows: [
      { label: 'Completed by', value: caller ? `${caller.display}${caller.organisation ? ` (${caller.role}, ${caller.organisation})` : ''}` : notRecorded },
      { label: 'Attested', value: details.attested ? `Yes, ${ukDateTime(new Date(now).toISOString())}` : 'No (draft)' },
    ] },
  ];
  for (const s of sections) if (!s.rows.length) s.rows.push({ label: s.title, value: notRecorded });
  return sections;
}

function lastMedicationReviewIso(record: ResidentRecord): string | undefined {
  const ms = lastMedicationReview(record);
  return ms === undefined ? undefined : new Date(ms).toISOString();
}

function sectionCode(key: string) {
  return { coding: [{ system: UK_CORE_SECTIONS.has(key) ? UK_CORE_HEADINGS : RED_BAG_SECTION, code: key }] };
}

/** The pack as a FHIR document Bundle. */
export function transferPackBundle(input: PackInput): Resource {
  const { record, destination, caller, now, base } = input;
  const sections = transferSections(input);
  const identifier = input.identifier ?? randomUUID();
  const at = new Date(now).toISOString();
  const synthetic = (record.patient.meta?.tag ?? []).some((t: { system?: string; code?: string }) => t.system === SYNTHETIC_TAG.system && t.code === SYNTHETIC_TAG.code);
  const meta = synthetic ? { tag: [{ ...SYNTHETIC_TAG }] } : undefined;
  const ref = (r: Resource | undefined) => (r ? { reference: referenceTo(r), display: r.name && typeof r.name === 'string' ? r.name : personName(r) } : undefined);
  const callerRef = caller ? { ...(caller.reference?.startsWith('Practitioner/') ? { reference: caller.reference } : {}), display: caller.display } : undefined;
  const composition = {
    resourceType: 'Composition',
    id: identifier,
    ...(meta ? { meta } : {}),
    identifier: { system: RED_BAG_IDENTIFIER, value: identifier },
    status: input.status,
    type: { coding: [TRANSFER_PACK_TYPE], text: 'Care home to hospital transfer (red bag)' },
    subject: ref(record.patient),
    date: at,
    author: [ref(record.careHome), callerRef].filter(Boolean),
    title: `Care home to hospital transfer: ${personName(record.patient)}`,
    ...(input.details.attested && callerRef ? { attester: [{ mode: 'professional', time: at, party: callerRef }] } : {}),
    ...(record.careHome ? { custodian: ref(record.careHome) } : {}),
    ...(destination ? { extension: [{ url: DESTINATION_EXTENSION, valueReference: ref(destination) }] } : {}),
    section: sections.map((s) => ({
      title: s.title,
      code: sectionCode(s.key),
      text: { status: 'generated', div: narrative(s.rows) },
      ...(s.entries.length ? { entry: s.entries.map((e) => ({ reference: referenceTo(e) })) } : {}),
    })),
  };
  const included = new Map<string, Resource>();
  for (const r of [record.patient, record.careHome, record.gp, destination, ...sections.flatMap((s) => s.entries)]) if (r) included.set(referenceTo(r), r);
  return {
    resourceType: 'Bundle',
    id: identifier,
    ...(meta ? { meta } : {}),
    identifier: { system: RED_BAG_IDENTIFIER, value: identifier },
    type: 'document',
    timestamp: at,
    entry: [
      { fullUrl: `urn:uuid:${identifier}`, resource: composition },
      ...[...included.values()].map((r) => ({ fullUrl: `${base}/${referenceTo(r)}`, resource: r })),
    ],
  } as Resource;
}

/** A pack's sections back from its document Bundle (for the screen and the PDF). */
export function sectionsOfPack(bundle: Resource): { title: string; key: string; rows: PackRow[] }[] {
  const composition = bundle.entry?.[0]?.resource;
  return (composition?.section ?? []).map((s: any) => ({ title: s.title, key: s.code?.coding?.[0]?.code ?? '', rows: rowsOf(s.text?.div) }));
}
