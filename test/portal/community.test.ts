// GP practice and carer pages over real HTTP, both engines: a GP sees the practice's registered patients
// (exactly those the record registers with it) and opens one's record, not another practice's patient's
// without break-glass; a carer sees the person who named them in an opt-in consent in force and reads what
// a carer may, and no one else.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ENGINES } from '../support/server.ts';
import { stopOwnPostgres } from '../support/postgres.ts';
import { startPortalServer, textOf, type PortalTestServer, type TestPerson } from './portalServer.ts';

after(() => stopOwnPostgres());

const GP: TestPerson = { username: 'test.gp', name: 'Test GP', organisation: 'Y01234', role: 'gp', fhirUser: 'Practitioner/demo-prac-y01234-gp' };
const CARER: TestPerson = { username: 'test.family', name: 'Test Family Carer', role: 'carer', fhirUser: 'RelatedPerson/demo-rp-vm101-01-nok' };

async function get(t: PortalTestServer, path: string, cookie: string) {
  const res = await fetch(t.url + path, { headers: { cookie }, redirect: 'manual' });
  const html = await res.text();
  return { status: res.status, location: res.headers.get('location'), html, text: textOf(html) };
}

const linked = (html: string, base: string) => [...html.matchAll(new RegExp(`href="${base}/([^"]+)"`, 'g'))].map((m) => decodeURIComponent(m[1]!)).sort();

for (const engine of ENGINES) {
  describe(`GP and carer pages (${engine})`, () => {
    let t: PortalTestServer;
    before(async () => {
      t = await startPortalServer(engine);
    });
    after(() => t.close());

    it('a GP starts on the practice\'s registered patients, exactly those registered, and opens their records', async () => {
      const practice = (await t.fhir('GET', 'Organization', [['identifier', 'Y01234']])).entry[0].resource;
      const registered = (await t.fhir('GET', 'Patient', [['general-practitioner', `Organization/${practice.id}`], ['_count', '1000']])).entry?.map((e: any) => e.resource.id).sort() ?? [];
      assert.ok(registered.length >= 2, 'the demo practice has patients');
      const gp = (await t.signIn(GP)).cookie;
      assert.equal((await get(t, '/', gp)).location, '/gp');
      const page = await get(t, '/gp', gp);
      assert.equal(page.status, 200);
      assert.deepEqual(linked(page.html, '/gp/patients'), registered);
      const record = await get(t, `/gp/patients/${registered[0]}`, gp);
      assert.equal(record.status, 200);
      assert.match(record.text, /Medicines/);
      const others = (await t.fhir('GET', 'Patient', [['_count', '1000']])).entry.map((e: any) => e.resource.id).filter((id: string) => !registered.includes(id));
      if (others.length) assert.equal((await get(t, `/gp/patients/${others[0]}`, gp)).status, 403, 'another practice\'s patient: the break-glass prompt, not the record');
    });

    it('a carer sees the person who named them and what a carer may read, and no one else', async () => {
      const carer = (await t.signIn(CARER)).cookie;
      assert.equal((await get(t, '/', carer)).location, '/carer');
      const page = await get(t, '/carer', carer);
      assert.deepEqual(linked(page.html, '/carer/people'), ['demo-pat-vm101-01']);
      const record = await get(t, '/carer/people/demo-pat-vm101-01', carer);
      assert.equal(record.status, 200);
      assert.match(record.text, /Not shown: your role does not give you access to this part of the record/, 'parts a carer may not read say so');
      const other = await get(t, '/carer/people/demo-pat-vm101-02', carer);
      assert.notEqual(other.status, 200);
      assert.ok(!other.html.includes('name="reasonCode"'), 'no break-glass for carers');
      assert.equal((await get(t, '/gp', carer)).status, 403);
    });

    it('a carer is not offered, nor let into, the record of someone whose opt-in for them has ended (H-039)', async () => {
      const ended = await t.fhir('POST', 'Consent', [], {
        resourceType: 'Consent', status: 'active', scope: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/consentscope', code: 'patient-privacy' }] },
        category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'OPTIN' }] }], patient: { reference: 'Patient/demo-pat-vm101-02' },
        provision: { type: 'permit', period: { start: '2020-01-01', end: '2021-01-01' }, actor: [{ role: { text: 'agent' }, reference: { reference: CARER.fhirUser } }] },
      });
      assert.equal(ended.resourceType, 'Consent');
      const carer = (await t.signIn(CARER)).cookie;
      assert.deepEqual(linked((await get(t, '/carer', carer)).html, '/carer/people'), ['demo-pat-vm101-01'], 'only the person whose opt-in is in force');
      assert.notEqual((await get(t, '/carer/people/demo-pat-vm101-02', carer)).status, 200);
    });
  });
}
