// Two stateless app nodes on one PostgreSQL: each sees the other's writes at once, optimistic locking
// holds across nodes, and concurrent writers never lose a version or duplicate a conditional create.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { buildServer, type CareBridgeServer } from '../../src/server.ts';
import { loadServerConfig } from '../../src/config.ts';
import { TEST_ADMIN, clientToken, fhirClient, type FhirClient } from '../support/server.ts';
import { freshPostgresDatabase } from '../support/postgres.ts';
import { generateSyntheticNhsNumber, NHS_NUMBER_SYSTEM } from '../../src/record/nhsNumber.ts';
import { DECISION_MS } from '../../src/record/index.ts';
import { addPerson, personToken } from '../support/people.ts';
import type { TestServer } from '../support/server.ts';

describe('two app nodes on one PostgreSQL', () => {
  const servers: CareBridgeServer[] = [];
  let urls: string[] = [];
  let a: FhirClient;
  let b: FhirClient;
  before(async () => {
    const database = await freshPostgresDatabase();
    for (let i = 0; i < 2; i++) {
      // Behind a load balancer both nodes answer for one public URL, and tokens are issued for it.
      const env = { CAREBRIDGE_ADMIN_CLIENT_ID: TEST_ADMIN.id, CAREBRIDGE_ADMIN_CLIENT_SECRET: TEST_ADMIN.secret, CAREBRIDGE_BASE_URL: 'http://carebridge.test/fhir' };
      const server = await buildServer(loadServerConfig({ port: 0, db: database }, env));
      servers.push(server);
    }
    urls = await Promise.all(servers.map((s) => s.app.listen({ host: '127.0.0.1', port: 0 })));
    // A token from one node is good on the other: the signing keys live in the shared database.
    const token = await clientToken(urls[0], TEST_ADMIN.id, TEST_ADMIN.secret);
    [a, b] = urls.map((u) => fhirClient(`${u}/fhir`, { authorization: `Bearer ${token}` }));
  });
  after(async () => {
    for (const s of servers) await s.close();
  });

  // Each node remembers for a moment which people a caller's relationships reach (forgotten at once on its
  // own writes): another node's write is seen within DECISION_MS (hazard H-006).
  it('a relationship ended on one node ends access on the other within DECISION_MS', async () => {
    const home = await a.post('Organization', { resourceType: 'Organization', identifier: [{ system: 'https://fhir.nhs.uk/Id/ods-organization-code', value: 'VM950' }], name: 'Two Nodes Care Home' });
    const resident = await a.post('Patient', { resourceType: 'Patient', name: [{ family: 'Resident' }] });
    const stay = await a.post('EpisodeOfCare', { resourceType: 'EpisodeOfCare', status: 'active', patient: { reference: `Patient/${resident.body.id}` }, managingOrganization: { reference: `Organization/${home.body.id}` } });
    assert.deepEqual([home.status, resident.status, stay.status], [201, 201, 201]);
    const nodeA = { url: urls[0], base: 'http://carebridge.test/fhir', server: servers[0] } as TestServer;
    await addPerson(nodeA, { username: 'two-nodes-carer', role: 'care-home-staff', org: 'VM950' });
    const carer = fhirClient(`${urls[0]}/fhir`, { authorization: `Bearer ${await personToken(nodeA, 'two-nodes-carer')}` });
    assert.equal((await carer.get(`Patient/${resident.body.id}`)).status, 200, 'a resident of their home');

    const left = await b.put(`EpisodeOfCare/${stay.body.id}`, { ...stay.body, status: 'finished' });
    assert.equal(left.status, 200);
    await new Promise((resolve) => setTimeout(resolve, DECISION_MS + 200));
    assert.equal((await carer.get(`Patient/${resident.body.id}`)).status, 403, 'after the stay ended on the other node');
  });

  it('a write on one node is read and searched on the other', async () => {
    const created = await a.post('Patient', { resourceType: 'Patient', name: [{ family: 'Crossnode' }] });
    assert.equal((await b.get(`Patient/${created.body.id}`)).body.name[0].family, 'Crossnode');
    assert.equal((await b.get('Patient?family=crossnode')).body.total, 1);
  });

  it('If-Match from both nodes on one version: exactly one wins, the other gets 412', async () => {
    const created = await a.post('Patient', { resourceType: 'Patient', name: [{ family: 'Race' }] });
    const body = created.body;
    const results = await Promise.all([
      a.put(`Patient/${body.id}`, { ...body, gender: 'female' }, { 'if-match': 'W/"1"' }),
      b.put(`Patient/${body.id}`, { ...body, gender: 'male' }, { 'if-match': 'W/"1"' }),
    ]);
    assert.deepEqual(results.map((r) => r.status).sort(), [200, 412]);
  });

  it('many concurrent updates without If-Match all land as distinct versions', async () => {
    const created = await a.post('Patient', { resourceType: 'Patient', name: [{ family: 'Busy' }] });
    const n = 20;
    const results = await Promise.all(
      Array.from({ length: n }, (_, i) => (i % 2 ? a : b).put(`Patient/${created.body.id}`, { ...created.body, name: [{ family: 'Busy', given: [`v${i}`] }] })),
    );
    assert.ok(results.every((r) => r.status === 200), JSON.stringify(results.map((r) => r.status)));
    const versions = results.map((r) => Number(r.body.meta.versionId)).sort((x, y) => x - y);
    assert.deepEqual(versions, Array.from({ length: n }, (_, i) => i + 2));
    const history = await b.get(`Patient/${created.body.id}/_history?_count=100`);
    assert.equal(history.body.total, n + 1);
  });

  it('concurrent conditional creates of one person make one record', async () => {
    const nhs = generateSyntheticNhsNumber();
    const body = { resourceType: 'Patient', identifier: [{ system: NHS_NUMBER_SYSTEM, value: nhs }] };
    const results = await Promise.all(
      Array.from({ length: 8 }, (_, i) => (i % 2 ? a : b).post('Patient', body, { 'if-none-exist': `identifier=${NHS_NUMBER_SYSTEM}|${nhs}` })),
    );
    assert.ok(results.every((r) => r.status === 200 || r.status === 201), JSON.stringify(results.map((r) => r.status)));
    assert.equal(new Set(results.map((r) => r.body.id)).size, 1);
    assert.equal((await a.get(`Patient?identifier=${NHS_NUMBER_SYSTEM}|${nhs}`)).body.total, 1);
  });
});
