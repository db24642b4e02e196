// Reading record resources into the plain words a transfer pack shows.
import { NEWS2_CODES, news2Band, news2Trend } from '../monitoring/index.ts';
import type { Resource } from './recordCalls.ts';

export function conceptText(concept: any): string {
  return concept?.text ?? concept?.coding?.find((c: { display?: string }) => c.display)?.display ?? concept?.coding?.[0]?.code ?? '';
}

export function personName(r: Resource | undefined): string {
  const n = r?.name?.find((x: { use?: string }) => x.use === 'official') ?? r?.name?.[0];
  if (!n) return typeof r?.name === 'string' ? r.name : '';
  if (n.text) return n.text;
  return [...(n.prefix ?? []), ...(n.given ?? []), n.family].filter(Boolean).join(' ');
}

function hasCode(r: Resource, code: { system: string; code: string }): boolean {
  return (r.code?.coding ?? []).some((c: { system?: string; code?: string }) => c.system === code.system && c.code === code.code);
}

export function isNews2Total(o: Resource): boolean {
  return hasCode(o, NEWS2_CODES.news2) && typeof o.valueInteger === 'number';
}

/** DNACPR or ReSPECT: an advance-directive Consent, or one whose category or policy names either. */
export function isResuscitationDecision(c: Resource): boolean {
  const words = [conceptText(c.scope), ...(c.category ?? []).map(conceptText), ...(c.category ?? []).flatMap((x: any) => (x.coding ?? []).map((k: any) => k.code)), c.policyRule?.text ?? ''].join(' ');
  return /\b(dnr|dnacpr|respect|adr|advance)/i.test(words) || (c.scope?.coding ?? []).some((k: any) => k.code === 'adr');
}

/** The NEWS2 totals, newest first, and a sentence on their trend. */
export function news2Summary(observations: Resource[]): { latest?: Resource; text: string; totals: { at: string; total: number }[] } {
  const totals = observations.filter(isNews2Total).map((o) => ({ at: o.effectiveDateTime as string, total: o.valueInteger as number, o }));
  if (!totals.length) return { text: 'No NEWS2 score recorded.', totals: [] };
  const [latest, ...earlier] = totals;
  const point = (t: (typeof totals)[number]) => ({ total: t.total, anySingleParameterScored3: (t.o.component ?? []).some((c: any) => c.valueInteger === 3) });
  const windowStart = Date.parse(latest.at) - 72 * 3600_000;
  const previous = earlier.filter((t) => Date.parse(t.at) >= windowStart).reverse().map(point);
  const trend = news2Trend(previous, point(latest));
  const band = news2Band(latest.total, point(latest).anySingleParameterScored3);
  const change = trend.changeFromBaseline === undefined ? 'no earlier score in the last 72 hours' : trend.rising ? `rising: ${trend.reasons.join('; ')}` : `not rising (lowest in the last 72 hours ${trend.baseline})`;
  return { latest: latest.o, text: `NEWS2 ${latest.total} (${band} clinical risk), ${change}.`, totals: totals.slice(0, 10).map(({ at, total }) => ({ at, total })) };
}

const VITAL_LABELS: [keyof typeof NEWS2_CODES, string][] = [
  ['respirationRate', 'Respiration rate'],
  ['spo2', 'SpO2'],
  ['bloodPressure', 'Blood pressure'],
  ['heartRate', 'Pulse'],
  ['temperature', 'Temperature'],
  ['acvpu', 'Consciousness (ACVPU)'],
];

/** The newest reading of each NEWS2 vital sign, as label and value with its time. */
export function latestVitals(observations: Resource[]): { label: string; value: string; at?: string; resource: Resource }[] {
  const out: { label: string; value: string; at?: string; resource: Resource }[] = [];
  for (const [key, label] of VITAL_LABELS) {
    const o = observations.find((x) => hasCode(x, NEWS2_CODES[key]));
    if (o) out.push({ label, value: observationValue(o), at: o.effectiveDateTime, resource: o });
  }
  return out;
}

export function observationValue(o: Resource): string {
  const q = (v: any) => (v ? `${v.value}${v.unit ? ' ' + v.unit : ''}` : '');
  if (o.valueQuantity) {
    const oxygen = (o.component ?? []).find((c: any) => c.valueQuantity && /oxygen/i.test(conceptText(c.code)));
    return `${q(o.valueQuantity)}${oxygen ? ` on oxygen ${q(oxygen.valueQuantity)}` : ''}`;
  }
  if (o.valueCodeableConcept) return conceptText(o.valueCodeableConcept);
  if (typeof o.valueInteger === 'number') return String(o.valueInteger);
  if (o.component?.length === 2) return `${o.component[0].valueQuantity?.value}/${o.component[1].valueQuantity?.value} mmHg`;
  return '';
}

export function medicationText(m: Resource): string {
  return conceptText(m.medicationCodeableConcept) || m.medicationReference?.display || 'Medicine (name not recorded)';
}

export function dosageText(m: Resource): string {
  return (m.dosageInstruction ?? []).map((d: { text?: string }) => d.text).filter(Boolean).join('; ');
}

/** The newest administration of this prescription (by reference, else by the same medicine's name). */
export function lastDose(m: Resource, administrations: Resource[]): Resource | undefined {
  const name = medicationText(m).toLowerCase();
  return administrations.find((a) => a.request?.reference === `MedicationRequest/${m.id}`) ?? administrations.find((a) => conceptText(a.medicationCodeableConcept).toLowerCase() === name);
}

export function telecomText(r: Resource | undefined): string {
  return (r?.telecom ?? []).filter((t: { system?: string }) => t.system === 'phone').map((t: { value?: string }) => t.value).join(', ');
}

export function addressText(address: any): string {
  const a = Array.isArray(address) ? address[0] : address;
  return a ? [...(a.line ?? []), a.city, a.postalCode].filter(Boolean).join(', ') : '';
}
