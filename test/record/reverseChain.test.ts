// _has (reverse chaining), one level, over HTTP on both engines, against the demo dataset.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ENGINES, startTestServer, type TestServer } from '../support/server.ts';
import { buildDemoDataset } from '../../src/demo/index.ts';

const { bundle } = buildDemoDataset();
const resources = bundle.entry.map((e) => e.resource as Record<string, any>);
const refId = (ref: any) => String(ref?.reference ?? '').split('/')[1];
const ids = (b: any) => (b.entry ?? []).map((e: any) => e.resource.id as string).sort();

for (const engine of ENGINES) {
  describe(`_has (${engine})`, () => {
    let t: TestServer;
    before(async () => {
      t = await startTestServer(engine);
      assert.equal((await t.fhir.post('', bundle, { prefer: 'return=minimal' })).status, 200);
    });
    after(() => t.close());

    it('finds the resources that matching resources point at', async () => {
      const atRisk = resources.filter((r) => r.resourceType === 'Condition' && r.code?.coding?.some((c: any) => c.code === '49436004')).map((r) => refId(r.subject));
      assert.ok(atRisk.length > 1);
      const found = await t.fhir.get('Patient?_has:Condition:subject:code=49436004&_count=100');
      assert.equal(found.status, 200);
      assert.deepEqual(ids(found.body), [...new Set(atRisk)].sort());
      const sharing = await t.fhir.get('Patient?_has:Consent:patient:category=OPTIN');
      assert.deepEqual(ids(sharing.body), resources.filter((r) => r.resourceType === 'Consent' && r.category[0].coding?.[0]?.code === 'OPTIN').map((r) => refId(r.patient)));
      const both = await t.fhir.get('Patient?_has:Condition:subject:code=49436004&_has:Consent:patient:category=OPTIN');
      assert.deepEqual(ids(both.body), ids(sharing.body).filter((id: string) => atRisk.includes(id)));
    });

    it('refuses what it cannot do, saying why', async () => {
      for (const [query, why] of [
        ['_has:Flag:subject:_has:Consent:patient:status=active', /one level/],
        ['_has:Nothing:subject:code=1', /Unknown resource type/],
        ['_has:Condition:code:code=1', /not a reference parameter/],
        ['_has:Flag:subject:nonsense=1', /not a search parameter of Flag/],
        ['_has:Flag', /takes the form/],
      ] as const) {
        const res = await t.fhir.get(`Patient?${query}`);
        assert.equal(res.status, 400, query);
        assert.match(res.body.issue[0].diagnostics, why);
      }
    });
  });
}
