// A server with the demo dataset (its "now" is the test's now, so observations are fresh), and the people
// who send and receive red bags, signed in through the real authorization code flow.
import assert from 'node:assert/strict';
import { buildDemoDataset } from '../../src/demo/index.ts';
import { fhirClient, startTestServer, type Engine, type FhirClient, type TestServer } from '../support/server.ts';
import { addPerson, personToken } from '../support/people.ts';
import type { Role } from '../../src/access/index.ts';
import { detailsToParameters, type TransferDetails } from '../../src/redbag/index.ts';

export function demoNow(): { bundle: ReturnType<typeof buildDemoDataset>['bundle']; resources: any[] } {
  const { bundle } = buildDemoDataset({ referenceDate: new Date(Date.now() - 60_000).toISOString() });
  return { bundle, resources: bundle.entry.map((e) => e.resource as any) };
}

const refId = (ref: any) => String(ref?.reference ?? '').split('/')[1];

/** A VM101 resident not in hospital (so a ward sees them only through a red bag), with a DNACPR decision when one exists. */
export function residentAtHome(resources: any[]): string {
  const inHospital = new Set(resources.filter((r) => r.resourceType === 'Encounter').map((e) => refId(e.subject)));
  const dissent = new Set(resources.filter((r) => r.resourceType === 'Consent' && r.category?.[0]?.coding?.[0]?.code === 'OPTOUT').map((c) => refId(c.patient)));
  const candidates = resources.filter((r) => r.resourceType === 'Patient' && r.id.startsWith('demo-pat-vm101-') && !inHospital.has(r.id) && !dissent.has(r.id)).map((p) => p.id as string);
  const withDnacpr = candidates.find((id) => resources.some((r) => r.resourceType === 'Consent' && refId(r.patient) === id && r.id.endsWith('-dnacpr')));
  return withDnacpr ?? candidates[0];
}

export const PEOPLE: Record<string, { role: Role; org: string; fhirUser?: string }> = {
  carer: { role: 'care-home-staff', org: 'VM101', fhirUser: 'Practitioner/demo-prac-vm101-senior-carer' },
  manager: { role: 'care-home-manager', org: 'VM101' },
  nurse: { role: 'ward-nurse', org: 'RX9' },
  nurse2: { role: 'ward-nurse', org: 'RX9' },
  otherHome: { role: 'care-home-staff', org: 'VM102' },
  otherHospital: { role: 'ward-nurse', org: 'RX8' },
};

export interface RedBagServer { t: TestServer; as: Record<string, FhirClient>; resources: any[]; resident: string; close(): Promise<void> }

export async function startRedBagServer(engine: Engine, data = demoNow(), env: Record<string, string> = {}): Promise<RedBagServer> {
  const t = await startTestServer(engine, env);
  const loaded = await t.fhir.post('', data.bundle, { prefer: 'return=minimal' });
  assert.equal(loaded.status, 200);
  const as: Record<string, FhirClient> = {};
  for (const [name, p] of Object.entries(PEOPLE)) {
    await addPerson(t, { username: name, role: p.role, org: p.org, fhirUser: p.fhirUser, name: `Test ${name}` });
    as[name] = fhirClient(t.base, { authorization: `Bearer ${await personToken(t, name)}` });
  }
  return { t, as, resources: data.resources, resident: residentAtHome(data.resources), close: () => t.close() };
}

export const COMPLETE: Partial<TransferDetails> = {
  reason: 'Found on the floor at 06:10, new confusion, NEWS2 rising; GP advised 999.',
  destination: 'RX9',
  belongings: ['Glasses', 'Hearing aids', 'Clothes for discharge'],
  baseline: { mobility: 'Walks with a frame', cognition: 'Mild memory loss; knows staff', communication: 'Clear speech; hard of hearing left side', continence: 'Continent with prompting', eating: 'Normal diet, thin fluids', skin: 'Intact' },
  attested: true,
};

export const params = (d: Partial<TransferDetails>) => detailsToParameters(d);
