// The privacy officer's audit search in the portal: who looked at a person's record, found through the
// audit trail's FHIR search with the officer's own access; refused to everyone else; bad input explained.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { stopOwnPostgres } from '../support/postgres.ts';
import { CARE_HOME_CARER, PRIVACY_OFFICER, startPortalServer, textOf, type PortalTestServer } from './portalServer.ts';

after(() => stopOwnPostgres());

async function get(t: PortalTestServer, path: string, cookie: string) {
  const res = await fetch(t.url + path, { headers: { cookie }, redirect: 'manual' });
  return { status: res.status, html: await res.text() };
}

describe('audit search in the portal', () => {
  let t: PortalTestServer;
  let carer: string;
  let officer: string;
  const resident = 'demo-pat-vm101-03';

  before(async () => {
    t = await startPortalServer('sqlite');
    carer = (await t.signIn(CARE_HOME_CARER)).cookie;
    officer = (await t.signIn(PRIVACY_OFFICER)).cookie;
  });
  after(() => t.close());

  it('shows who looked at a person’s record, newest first', async () => {
    assert.equal((await get(t, `/care-home/residents/${resident}`, carer)).status, 200);
    let text = '';
    for (let i = 0; i < 50 && !text.includes(CARE_HOME_CARER.name); i++) {
      await new Promise((r) => setTimeout(r, 100)); // the audit is written in batches
      const page = await get(t, `/privacy-officer/audit?person=${resident}`, officer);
      assert.equal(page.status, 200);
      text = textOf(page.html);
    }
    assert.match(text, new RegExp(`${CARE_HOME_CARER.name}.*Care home`), 'the carer who opened the record, with their role');
    assert.match(text, /VM101/);
    assert.match(text, /TREAT/);
    assert.match(text, /Searched Observation/, 'what they did, in words');
    const other = textOf((await get(t, '/privacy-officer/audit?person=demo-pat-vm103-07', officer)).html);
    assert.doesNotMatch(other, new RegExp(CARE_HOME_CARER.name), 'nobody from that home looked at a resident of another');
  });

  it('explains bad input, keeps what was typed, and is only for privacy officers', async () => {
    const bad = await get(t, '/privacy-officer/audit?person=&user=&from=yesterday', officer);
    assert.equal(bad.status, 400);
    assert.match(textOf(bad.html), /There is a problem.*From must be a date/);
    assert.match(bad.html, /value="yesterday"/);
    assert.equal((await get(t, `/privacy-officer/audit?person=${resident}`, carer)).status, 403);
  });
});
