// Imports the 20 Synthea patients over HTTP as transactions into each engine, then checks counts and
// searches against values computed from the fixture files themselves.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { join } from 'node:path';
import { ENGINES, startTestServer, type TestServer } from '../support/server.ts';

const FIXTURES = join(import.meta.dirname, '../fixtures/synthea');
const SYNTHEA_ID_SYSTEM = 'https://github.com/synthetichealth/synthea';

const bundles: any[] = readdirSync(FIXTURES)
  .filter((f) => f.endsWith('.json.gz'))
  .sort()
  .map((f) => JSON.parse(gunzipSync(readFileSync(join(FIXTURES, f))).toString()));
const resources: any[] = bundles.flatMap((b) => b.entry.map((e: any) => e.resource));
const fullUrlOf = new Map<any, string>(bundles.flatMap((b) => b.entry.map((e: any) => [e.resource, e.fullUrl] as [any, string])));

function countBy<T>(items: T[], key: (x: T) => string): Map<string, number> {
  const m = new Map<string, number>();
  for (const x of items) m.set(key(x), (m.get(key(x)) ?? 0) + 1);
  return m;
}

for (const engine of ENGINES) {
  describe(`Synthea import (${engine})`, () => {
    let t: TestServer;
    before(async () => {
      t = await startTestServer(engine);
      for (const bundle of bundles) {
        const r = await t.fhir.post('', bundle, { prefer: 'return=minimal' });
        assert.equal(r.status, 200, JSON.stringify(r.body).slice(0, 500));
      }
    });
    after(async () => t?.close());

    it('stores every resource: counts per type match the files', async () => {
      assert.equal(resources.length, 6241);
      for (const [type, expected] of countBy(resources, (r) => r.resourceType)) {
        const r = await t.fhir.get(`${type}?_summary=count`);
        assert.equal(r.body.total, expected, `${type} count`);
      }
    });

    it('token search by LOINC code matches the files', async () => {
      const codes = countBy(
        resources.filter((r) => r.resourceType === 'Observation'),
        (r) => r.code.coding[0].code,
      );
      const sample = [...codes].sort((a, b) => b[1] - a[1]).slice(0, 5);
      for (const [code, expected] of sample) {
        const r = await t.fhir.get(`Observation?code=http://loinc.org|${code}&_summary=count`);
        assert.equal(r.body.total, expected, `Observation code ${code}`);
      }
    });

    it('date search with a prefix matches the files', async () => {
      const cutoff = Date.parse('2015-01-01T00:00:00Z');
      const expected = resources.filter((r) => r.resourceType === 'Observation' && Date.parse(r.effectiveDateTime) >= cutoff).length;
      const r = await t.fhir.get('Observation?date=ge2015-01-01T00:00:00Z&_summary=count');
      assert.equal(r.body.total, expected);
    });

    it("each patient's compartment and chained search hold exactly their resources", async () => {
      for (const bundle of bundles.slice(0, 5)) {
        const pat = bundle.entry[0].resource;
        assert.equal(pat.resourceType, 'Patient');
        const uuid = pat.identifier.find((i: any) => i.system === SYNTHEA_ID_SYSTEM).value;
        const found = await t.fhir.get(`Patient?identifier=${SYNTHEA_ID_SYSTEM}|${uuid}`);
        assert.equal(found.body.total, 1);
        const id = found.body.entry[0].resource.id;
        const patientUrl = fullUrlOf.get(pat);
        const expectedObs = bundle.entry.filter((e: any) => e.resource.resourceType === 'Observation' && e.resource.subject.reference === patientUrl).length;
        assert.equal((await t.fhir.get(`Patient/${id}/Observation?_summary=count`)).body.total, expectedObs);
        assert.equal((await t.fhir.get(`Observation?patient.identifier=${SYNTHEA_ID_SYSTEM}|${uuid}&_summary=count`)).body.total, expectedObs);
        const family = pat.name[0].family;
        const byName = await t.fhir.get(`Patient?family=${encodeURIComponent(family.slice(0, 4).toLowerCase())}&_count=100`);
        assert.ok(byName.body.entry.some((e: any) => e.resource.id === id), `${family} found by the start of the name`);
      }
    });

    it('$everything returns the whole compartment', async () => {
      const bundle = bundles[0];
      const pat = bundle.entry[0].resource;
      const uuid = pat.identifier.find((i: any) => i.system === SYNTHEA_ID_SYSTEM).value;
      const id = (await t.fhir.get(`Patient?identifier=${SYNTHEA_ID_SYSTEM}|${uuid}`)).body.entry[0].resource.id;
      const ev = await t.fhir.get(`Patient/${id}/$everything?_count=5000`);
      const got = countBy(ev.body.entry.map((e: any) => e.resource), (r: any) => r.resourceType);
      for (const type of ['Observation', 'Encounter', 'Condition', 'Claim', 'ExplanationOfBenefit']) {
        const expected = bundle.entry.filter((e: any) => e.resource.resourceType === type).length;
        assert.equal(got.get(type) ?? 0, expected, type);
      }
      assert.ok((got.get('Organization') ?? 0) >= 1, 'the organisations the record points at come too');
    });
  });
}
