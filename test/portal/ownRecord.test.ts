// A person signed in to their own record, over real HTTP, both engines: they start on "who has looked at
// your record" (the audit trail of their record only, newest first, with who, where, role and why), open
// their own record summary, and no one else's.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ENGINES } from '../support/server.ts';
import { stopOwnPostgres } from '../support/postgres.ts';
import { WARD_NURSE, startPortalServer, textOf, type PortalTestServer, type TestPerson } from './portalServer.ts';

after(() => stopOwnPostgres());

const SELF: TestPerson = { username: 'test.self', name: 'Sam Self', role: 'person', fhirUser: 'Patient/demo-pat-vm101-04' };

async function get(t: PortalTestServer, path: string, cookie: string) {
  const res = await fetch(t.url + path, { headers: { cookie }, redirect: 'manual' });
  const html = await res.text();
  return { status: res.status, location: res.headers.get('location'), html, text: textOf(html) };
}

for (const engine of ENGINES) {
  describe(`a person's own record (${engine})`, () => {
    let t: PortalTestServer;
    before(async () => {
      t = await startPortalServer(engine);
    });
    after(() => t.close());

    it('lists who has looked at the record, newest first, and nobody else\'s record', async () => {
      const nurse = (await t.signIn(WARD_NURSE)).cookie;
      assert.equal((await get(t, '/hospital/patients/demo-pat-vm101-04', nurse)).status, 200);
      const self = (await t.signIn(SELF)).cookie;
      assert.equal((await get(t, '/', self)).location, '/me', 'a person starts on their own page');
      let page = await get(t, '/me', self);
      for (let i = 0; i < 50 && !page.text.includes('Test Nurse'); i++) {
        await new Promise((r) => setTimeout(r, 100)); // the audit trail is written in batches
        page = await get(t, '/me', self);
      }
      assert.equal(page.status, 200);
      assert.match(page.text, /Who Test Nurse Where they work RX9 Their role Ward nurse What they did (Read|Searched) \w+ Why Your care/, 'who, where, role, what and why');
      const nurseRows = async () => {
        await new Promise((r) => setTimeout(r, 500)); // let the audit trail's batch land
        return ((await get(t, '/me', self)).text.match(/Who Test Nurse/g) ?? []).length;
      };
      const wards = await get(t, '/hospital', nurse); // lists this person too: it is in their audit
      const before = await nurseRows();
      const other = [...wards.html.matchAll(/href="\/hospital\/patients\/([^"]+)"/g)].map((m) => m[1]).find((id) => id !== 'demo-pat-vm101-04');
      assert.ok(other, 'another inpatient');
      assert.equal((await get(t, `/hospital/patients/${other}`, nurse)).status, 200);
      assert.equal(await nurseRows(), before, 'the nurse looking at someone else adds nothing to this person\'s list');
      assert.equal((await get(t, '/hospital/patients/demo-pat-vm101-04', nurse)).status, 200);
      assert.ok(await nurseRows() > before, 'looking at this person again does');
      const rows = page.html.match(/<tr role="row" class="nhsuk-table__row">/g)?.length ?? 0;
      const times = [...page.html.matchAll(/When <\/span>([^<]+)<\/td>/g)].map((m) => m[1]);
      assert.ok(times.length === rows, 'every row has its time');
    });

    it('opens their own record summary, not someone else\'s', async () => {
      const self = (await t.signIn(SELF)).cookie;
      const start = await get(t, '/me/record', self);
      assert.equal(start.location, '/me/record/demo-pat-vm101-04');
      const own = await get(t, '/me/record/demo-pat-vm101-04', self);
      assert.equal(own.status, 200);
      assert.match(own.text, /Medicines/);
      const other = await get(t, '/me/record/demo-pat-vm101-01', self);
      assert.notEqual(other.status, 200, 'another person\'s record is not shown');
      const otherPatient = await t.fhir('GET', 'Patient/demo-pat-vm101-01');
      assert.ok(!other.text.includes(otherPatient.name[0].family), 'not even their name');
      assert.equal((await get(t, '/privacy-officer/audit?person=demo-pat-vm101-01', self)).status, 403, 'and no audit search');
    });
  });
}
