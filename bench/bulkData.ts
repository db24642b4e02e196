// Synthetic bulk data for the search benchmark: patients, each with obsPerPatient vital-sign and lab
// Observations (a mix of LOINC codes, dates spread over 2010–2024). Loaded through the real write path
// the way an import would: transaction Bundles of POSTs linked by urn:uuid references, posted to the server.
import { inParallel, log, postTransaction, seededRandom, type ChildServer } from './support.ts';

export const LOINC = [
  { code: '8867-4', display: 'Heart rate', unit: '/min', lo: 50, hi: 120, category: 'vital-signs' },
  { code: '8480-6', display: 'Systolic blood pressure', unit: 'mm[Hg]', lo: 95, hi: 180, category: 'vital-signs' },
  { code: '8462-4', display: 'Diastolic blood pressure', unit: 'mm[Hg]', lo: 55, hi: 110, category: 'vital-signs' },
  { code: '8310-5', display: 'Body temperature', unit: 'Cel', lo: 35.5, hi: 39.5, category: 'vital-signs' },
  { code: '9279-1', display: 'Respiratory rate', unit: '/min', lo: 10, hi: 30, category: 'vital-signs' },
  { code: '2708-6', display: 'Oxygen saturation in Arterial blood', unit: '%', lo: 85, hi: 100, category: 'vital-signs' },
  { code: '29463-7', display: 'Body weight', unit: 'kg', lo: 40, hi: 140, category: 'vital-signs' },
  { code: '8302-2', display: 'Body height', unit: 'cm', lo: 140, hi: 200, category: 'vital-signs' },
  { code: '39156-5', display: 'Body mass index (BMI) [Ratio]', unit: 'kg/m2', lo: 16, hi: 45, category: 'vital-signs' },
  { code: '2339-0', display: 'Glucose [Mass/volume] in Blood', unit: 'mg/dL', lo: 60, hi: 250, category: 'laboratory' },
];

const FROM = Date.UTC(2010, 0, 1);
const TO = Date.UTC(2025, 0, 1);
const GIVEN = ['Ada', 'Ben', 'Cara', 'Dev', 'Esme', 'Femi', 'Gwen', 'Hari', 'Isla', 'Jack'];
const FAMILY = ['Smith', 'Jones', 'Patel', 'Khan', 'Evans', 'Hughes', 'Wright', 'Brown', 'Okafor', 'Nowak'];

const fullUrl = (n: number) => `urn:uuid:00000000-0000-4000-8000-${n.toString(16).padStart(12, '0')}`;

function patient(n: number, random: () => number): Record<string, unknown> {
  const birth = new Date(Date.UTC(1930, 0, 1) + random() * 80 * 365.25 * 86_400_000).toISOString().slice(0, 10);
  return {
    resourceType: 'Patient',
    identifier: [{ system: 'https://carebridge.example/bench-patient', value: String(n) }],
    name: [{ family: FAMILY[n % 10], given: [GIVEN[Math.floor(n / 10) % 10]] }],
    gender: n % 2 ? 'female' : 'male',
    birthDate: birth,
  };
}

function observation(n: number, k: number, random: () => number): Record<string, unknown> {
  const test = LOINC[k % LOINC.length];
  const at = new Date(FROM + random() * (TO - FROM)).toISOString();
  return {
    resourceType: 'Observation',
    status: 'final',
    category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: test.category }] }],
    code: { coding: [{ system: 'http://loinc.org', code: test.code, display: test.display }], text: test.display },
    subject: { reference: fullUrl(n) },
    effectiveDateTime: at,
    issued: at,
    valueQuantity: { value: Math.round((test.lo + random() * (test.hi - test.lo)) * 10) / 10, unit: test.unit, system: 'http://unitsofmeasure.org', code: test.unit },
  };
}

/** A transaction Bundle (as JSON text) holding patients [from, to), each followed by its Observations. */
export function patientsBundle(from: number, to: number, obsPerPatient: number): string {
  const entry: unknown[] = [];
  for (let n = from; n < to; n++) {
    const random = seededRandom(n + 1);
    entry.push({ fullUrl: fullUrl(n), resource: patient(n, random), request: { method: 'POST', url: 'Patient' } });
    for (let k = 0; k < obsPerPatient; k++) entry.push({ resource: observation(n, k, random), request: { method: 'POST', url: 'Observation' } });
  }
  return JSON.stringify({ resourceType: 'Bundle', type: 'transaction', entry });
}

export interface BulkLoad { patientIds: string[]; resources: number; seconds: number; perSecond: number }

/**
 * Grows the database from `fromPatients` to `toPatients` patients, in transactions of about
 * `bundleEntries` entries with `inFlight` posted at once; returns the new patients' server ids.
 */
export async function loadPatients(server: ChildServer, fromPatients: number, toPatients: number, obsPerPatient: number, bundleEntries = 1000, inFlight = 2): Promise<BulkLoad> {
  const perBundle = Math.max(1, Math.floor(bundleEntries / (obsPerPatient + 1)));
  const starts: number[] = [];
  for (let n = fromPatients; n < toPatients; n += perBundle) starts.push(n);
  const patientIds: string[] = [];
  const start = performance.now();
  let done = 0;
  let lastLog = start;
  await inParallel(starts, inFlight, async (from) => {
    const to = Math.min(from + perBundle, toPatients);
    const locations = await postTransaction(server.url, patientsBundle(from, to, obsPerPatient));
    for (const l of locations) if (l.startsWith('Patient/')) patientIds.push(l.split('/')[1]);
    done += (to - from) * (obsPerPatient + 1);
    if (performance.now() - lastLog > 30_000) {
      lastLog = performance.now();
      const s = (lastLog - start) / 1000;
      log(`  loaded ${done.toLocaleString('en-GB')} resources in ${s.toFixed(0)} s (${Math.round(done / s)}/s)`);
    }
  });
  const seconds = (performance.now() - start) / 1000;
  const resources = (toPatients - fromPatients) * (obsPerPatient + 1);
  if (patientIds.length !== toPatients - fromPatients) throw new Error(`expected ${toPatients - fromPatients} new patients, the server reported ${patientIds.length}`);
  return { patientIds, resources, seconds, perSecond: resources / seconds };
}
