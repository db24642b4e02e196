// Shared set-up for the discharge tests: a real server per engine, the organisations and person the
// official ADW examples name, and ADW messages as the MESH inbox would hand them over.
import { readFileSync, readdirSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import { randomUUID } from 'node:crypto';
import { startTestServer, type Engine, type TestServer } from '../support/server.ts';
import type { DischargeContext, InboundMessage } from '../../src/discharge/index.ts';

const FIXTURES = new URL('../fixtures/adw/', import.meta.url);
export const EXAMPLES = Object.fromEntries(
  readdirSync(FIXTURES).filter((f) => f.endsWith('.xml')).map((f) => [f.replace(/^ADW-Message-|-Bundle-1-Example-1\.xml$/g, ''), readFileSync(new URL(f, FIXTURES), 'utf8')]),
) as Record<string, string>;

export const HOSPITAL_ODS = 'RFM8C2';
export const COUNCIL_ODS = 'V396BB';

export async function dischargeServer(engine: Engine): Promise<TestServer> {
  // Workers are run by the tests themselves (runWorkers), not by a timer.
  return startTestServer(engine, { CAREBRIDGE_DISCHARGE_POLL_SECONDS: '3600' });
}

export async function seedOrganisations(t: Pick<TestServer, 'fhir'>): Promise<{ hospital: string; council: string; ward: string }> {
  const put = async (resource: Record<string, unknown>) => {
    const r = await t.fhir.put(`${resource.resourceType}/${resource.id}`, resource);
    if (r.status >= 300) throw new Error(JSON.stringify(r.body));
  };
  await put({ resourceType: 'Organization', id: 'hebburn-hospital', identifier: [{ system: 'https://fhir.nhs.uk/Id/ods-site-code', value: HOSPITAL_ODS }], name: 'Hebburn Hospital' });
  await put({ resourceType: 'Organization', id: 'hebburn-council', identifier: [{ system: 'https://fhir.nhs.uk/Id/ods-organization-code', value: COUNCIL_ODS }], name: 'Hebburn Council' });
  await put({ resourceType: 'Location', id: 'collier-ward', name: 'Collier Ward', managingOrganization: { reference: 'Organization/hebburn-hospital' } });
  return { hospital: 'hebburn-hospital', council: 'hebburn-council', ward: 'collier-ward' };
}

export async function seedPatient(t: Pick<TestServer, 'fhir'>, id = 'barry', nhsNumber = '9449305552'): Promise<string> {
  const r = await t.fhir.put(`Patient/${id}`, {
    resourceType: 'Patient', id, identifier: [{ system: 'https://fhir.nhs.uk/Id/nhs-number', value: nhsNumber }],
    name: [{ family: 'Jones', given: ['Barry'] }], gender: 'male', birthDate: '1941-11-01',
    address: [{ line: ['1 Little Street'], city: 'Leeds', postalCode: 'LS6 1UR' }],
  });
  if (r.status >= 300) throw new Error(JSON.stringify(r.body));
  return id;
}

export function inbound(xml: string, extra: Partial<InboundMessage> = {}): InboundMessage {
  return {
    messageId: randomUUID(), mailbox: 'COUNCIL01', from: 'HOSPITAL01', to: 'COUNCIL01', workflowId: 'ADW_NOTICE',
    body: Buffer.from(xml, 'utf8'), receivedAt: Date.parse('2026-05-01T10:00:00Z'), ...extra,
  };
}

/** The same message with fresh MessageHeader ids (the examples reuse some ids across message types). */
export function withHeaderId(xml: string, oldId: string, newId: string): string {
  return xml.split(oldId).join(newId);
}

export function at(ctx: DischargeContext, iso: string): DischargeContext {
  const ms = Date.parse(iso);
  return { ...ctx, now: () => ms };
}

export interface OutRow { header_id: string; event_code: string; responds_to: string | null; status: string; body: string; peer_mailbox: string | null; detail: string | null; referral_identifier: string }

export async function outbound(t: TestServer): Promise<OutRow[]> {
  return t.server.driver.all<OutRow>("SELECT header_id, event_code, responds_to, status, body, peer_mailbox, detail, referral_identifier FROM discharge_adw_messages WHERE direction = 'out' ORDER BY at_ms, header_id");
}

export async function searchOne(t: TestServer, query: string): Promise<any> {
  const r = await t.fhir.get(query);
  if (r.status !== 200) throw new Error(JSON.stringify(r.body));
  return r.body.entry?.[0]?.resource;
}

/** The examples' ids, renamed consistently so each test has an episode of its own. */
const EXAMPLE_IDS = [
  '311fcae7-32a7-4a8e-a15c-eebae3a246b9', // ReferralRequest.identifier (the episode)
  '2562b8b6-c0db-424a-8c6b-0fa43b0d6c2f', // Encounter.identifier
  '5bfa2a2e-923b-440d-82d6-38e24b666be6', '19db5f65-1bad-4ce1-be05-92ff79ab1c8f', 'f30279eb-939c-4d46-804e-9a13fa7ce8a1',
  '236103d8-ea79-42d5-8078-2e9b0ed4d517', '2e46de3a-4457-4a29-9cd0-a3cdcf9883bf', '34e29318-9558-4536-b03f-5241b616b699',
];
export function episodeIds(): Record<string, string> {
  return Object.fromEntries(EXAMPLE_IDS.map((id) => [id, randomUUID()]));
}
export function renamed(xml: string, ids: Record<string, string>): string {
  let out = xml;
  for (const [from, to] of Object.entries(ids)) out = out.split(from).join(to);
  return out;
}

/** Restarts a test server over the same database (as after a crash or a deploy). */
export async function restartServer(t: TestServer): Promise<TestServer> {
  const { buildServer } = await import('../../src/server.ts');
  const { loadServerConfig } = await import('../../src/config.ts');
  const { fhirClient, clientToken, TEST_ADMIN } = await import('../support/server.ts');
  await t.server.close();
  const config = loadServerConfig({ port: 0, db: t.database }, { CAREBRIDGE_ADMIN_CLIENT_ID: TEST_ADMIN.id, CAREBRIDGE_ADMIN_CLIENT_SECRET: TEST_ADMIN.secret, CAREBRIDGE_DISCHARGE_POLL_SECONDS: '3600' });
  const server = await buildServer(config);
  const url = await server.app.listen({ host: '127.0.0.1', port: 0 });
  const auth = { authorization: `Bearer ${await clientToken(url, TEST_ADMIN.id, TEST_ADMIN.secret)}` };
  return {
    ...t, server, url, base: `${url}/fhir`, auth, fhir: fhirClient(`${url}/fhir`, auth),
    async close() {
      await server.close();
      if (t.database.startsWith('sqlite:')) rmSync(dirname(t.database.slice('sqlite:'.length)), { recursive: true, force: true });
    },
  };
}
