// A FHIR client written by someone else (fhir-kit-client) doing CRUD, search, paging, history,
// compartments, CapabilityStatement checks and transactions against each engine.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Client, CapabilityTool } from 'fhir-kit-client';
import { ENGINES, startTestServer, type TestServer } from '../support/server.ts';
import { generateSyntheticNhsNumber, NHS_NUMBER_SYSTEM, SYNTHETIC_TAG } from '../../src/record/nhsNumber.ts';

for (const engine of ENGINES) {
  describe(`fhir-kit-client against CareBridge (${engine})`, () => {
    let t: TestServer;
    let client: Client;
    before(async () => {
      t = await startTestServer(engine);
      client = new Client({ baseUrl: t.base, customHeaders: t.auth });
    });
    after(async () => t?.close());

    it('reads the CapabilityStatement and finds the interactions it will use', async () => {
      const capabilities = new CapabilityTool((await client.capabilityStatement()) as any);
      assert.equal(capabilities.resourceCan('Patient', 'read'), true);
      assert.equal(capabilities.resourceCan('Observation', 'search-type'), true);
      assert.equal(capabilities.serverCan('transaction'), true);
      assert.equal(capabilities.resourceSearch('Patient', 'family'), true);
    });

    it('create, read, update, vread, patch, delete', async () => {
      const nhs = generateSyntheticNhsNumber();
      const created: any = await client.create({
        resourceType: 'Patient',
        body: { resourceType: 'Patient', meta: { tag: [SYNTHETIC_TAG] }, identifier: [{ system: NHS_NUMBER_SYSTEM, value: nhs }], name: [{ family: 'Nwosu', given: ['Grace'] }] },
      });
      assert.ok(created.id);
      const read: any = await client.read({ resourceType: 'Patient', id: created.id });
      assert.equal(read.name[0].family, 'Nwosu');
      const updated: any = await client.update({ resourceType: 'Patient', id: created.id, body: { ...read, gender: 'female' } });
      assert.equal(updated.meta.versionId, '2');
      const v1: any = await client.vread({ resourceType: 'Patient', id: created.id, version: '1' });
      assert.equal(v1.gender, undefined);
      const patched: any = await client.patch({ resourceType: 'Patient', id: created.id, jsonPatch: [{ op: 'add', path: '/birthDate', value: '1944-02-29' }] });
      assert.equal(patched.birthDate, '1944-02-29');
      await client.delete({ resourceType: 'Patient', id: created.id });
      await assert.rejects(client.read({ resourceType: 'Patient', id: created.id }), (err: any) => err.response?.status === 410);
      const history: any = await client.history({ resourceType: 'Patient', id: created.id });
      assert.equal(history.total, 4);
    });

    it('transaction, search with paging, compartment search', async () => {
      const entries = [
        { fullUrl: 'urn:uuid:0b7d2b1e-3c3f-4d53-9d7e-8d0f5a1b2c3d', resource: { resourceType: 'Patient', name: [{ family: 'Pagewell' }] }, request: { method: 'POST', url: 'Patient' } },
        ...Array.from({ length: 7 }, (_, i) => ({
          resource: {
            resourceType: 'Observation', status: 'final',
            code: { coding: [{ system: 'http://loinc.org', code: '8867-4' }] },
            subject: { reference: 'urn:uuid:0b7d2b1e-3c3f-4d53-9d7e-8d0f5a1b2c3d' },
            effectiveDateTime: `2026-11-0${i + 1}T08:00:00Z`,
            valueQuantity: { value: 60 + i, unit: '/min' },
          },
          request: { method: 'POST', url: 'Observation' },
        })),
      ];
      const response: any = await client.transaction({ body: { resourceType: 'Bundle', type: 'transaction', entry: entries } });
      assert.equal(response.entry.length, 8);
      const patientId = response.entry[0].response.location.split('/')[1];
      let page: any = await client.search({ resourceType: 'Observation', searchParams: { subject: `Patient/${patientId}`, _count: 3, _sort: 'date' } });
      assert.equal(page.total, 7);
      const seen: number[] = [];
      while (page) {
        seen.push(...page.entry.map((e: any) => e.resource.valueQuantity.value));
        page = await client.nextPage({ bundle: page });
      }
      assert.deepEqual(seen, [60, 61, 62, 63, 64, 65, 66]);
      const compartment: any = await client.compartmentSearch({ resourceType: 'Observation', compartment: { resourceType: 'Patient', id: patientId }, searchParams: { date: 'ge2026-11-05' } });
      assert.equal(compartment.total, 3);
    });
  });
}
