// Break-glass in the portal over real HTTP, with real accounts signed in through the sign-in form: the
// prompt when the record refuses a person outside the user's care relationships, its checks (nothing
// granted on bad input or without the CSRF token), the warning on every page of the record while the
// grant lasts, and the privacy officer's review of the alert. Both storage engines.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ENGINES } from '../support/server.ts';
import { stopOwnPostgres } from '../support/postgres.ts';
import { CARE_HOME_CARER, PRIVACY_OFFICER, csrfTokenIn, startPortalServer, textOf, type PortalTestServer } from './portalServer.ts';

after(() => stopOwnPostgres());

const OUTSIDER = 'demo-pat-vm102-02';
const PROMPT = /You do not have a care relationship with this person/;

async function get(t: PortalTestServer, path: string, cookie: string) {
  const res = await fetch(t.url + path, { headers: { cookie }, redirect: 'manual' });
  return { status: res.status, location: res.headers.get('location'), html: await res.text() };
}

async function post(t: PortalTestServer, path: string, cookie: string, form: Record<string, string>) {
  const res = await fetch(t.url + path, { method: 'POST', headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(form).toString(), redirect: 'manual' });
  return { status: res.status, location: res.headers.get('location'), html: await res.text() };
}

for (const engine of ENGINES) {
  describe(`break-glass in the portal (${engine})`, () => {
    let t: PortalTestServer;
    let carer: string;
    let officer: string;

    before(async () => {
      t = await startPortalServer(engine);
      carer = (await t.signIn(CARE_HOME_CARER)).cookie;
      officer = (await t.signIn(PRIVACY_OFFICER)).cookie;
    });
    after(() => t.close());

    it('asks for a reason instead of showing a resident of another home, and grants nothing on bad input or without the CSRF token', async () => {
      const prompt = await get(t, `/care-home/residents/${OUTSIDER}`, carer);
      assert.equal(prompt.status, 403);
      assert.match(textOf(prompt.html), PROMPT);
      assert.doesNotMatch(textOf(prompt.html), /Personal details|NHS number/, 'nothing of the record is shown');
      for (const label of ['Emergency care: the person needs care now', 'A safeguarding concern']) assert.ok(textOf(prompt.html).includes(label), label);
      const csrf = csrfTokenIn(prompt.html);

      const bad = await post(t, `/care-home/residents/${OUTSIDER}/break-glass`, carer, { _csrf: csrf, reason: 'Urgent' });
      assert.equal(bad.status, 400);
      assert.match(textOf(bad.html), /There is a problem .*Select why you need to see this record .*Explain why in at least 10 characters/);
      assert.ok(bad.html.includes('href="#reasonCode"') && bad.html.includes('>Urgent</textarea>'), 'the summary links to the fields; what was typed is kept');
      const wrongCode = await post(t, `/care-home/residents/${OUTSIDER}/break-glass`, carer, { _csrf: csrf, reasonCode: 'curiosity', reason: 'I would like to see it please' });
      assert.equal(wrongCode.status, 400);
      const noToken = await post(t, `/care-home/residents/${OUTSIDER}/break-glass`, carer, { reasonCode: 'emergency', reason: 'Found collapsed at the day centre' });
      assert.equal(noToken.status, 403);
      assert.deepEqual(await t.access.breakGlass.list({ patientId: OUTSIDER }), []);
      assert.equal((await get(t, `/care-home/residents/${OUTSIDER}`, carer)).status, 403);
    });

    it('shows the record after the glass is broken, with the warning on each of its pages; only for that user', async () => {
      const prompt = await get(t, `/care-home/residents/${OUTSIDER}/news2`, carer);
      assert.equal(prompt.status, 403, 'the NEWS2 form is refused the same way');
      const submission = /name="submission" value="([^"]+)"/.exec(prompt.html)?.[1];
      assert.match(submission ?? '', /^[0-9a-f-]{36}$/, 'the prompt carries its own submission id');
      // Two clicks of the button at once: one grant, one alert for the privacy officer.
      const form = { _csrf: csrfTokenIn(prompt.html), submission: submission!, reasonCode: 'emergency', reason: 'Found collapsed at the day centre' };
      const answers = await Promise.all([1, 2].map(() => post(t, `/care-home/residents/${OUTSIDER}/break-glass`, carer, form)));
      for (const res of answers) {
        assert.equal(res.status, 303);
        assert.equal(res.location, `/care-home/residents/${OUTSIDER}`);
      }
      const grants = await t.access.breakGlass.list({ patientId: OUTSIDER });
      assert.equal(grants.length, 1, 'one grant for two clicks');
      const [grant] = grants;
      assert.equal(grant.reasonCode, 'emergency');
      assert.equal(grant.userName, 'Test Carer');
      for (const path of [`/care-home/residents/${OUTSIDER}`, `/care-home/residents/${OUTSIDER}/news2`]) {
        const page = await get(t, path, carer);
        assert.equal(page.status, 200, path);
        assert.match(textOf(page.html), /You are viewing this record using break-glass: Found collapsed at the day centre, until \d+ \w+ \d{4} at \d\d:\d\d/, path);
      }
      assert.doesNotMatch(textOf((await get(t, '/care-home/residents/demo-pat-vm101-01', carer)).html), /using break-glass/, 'not on the home’s own residents');
      const colleague = (await t.signIn({ username: 'colleague', name: 'A Colleague', organisation: 'VM101', role: 'care-home-staff' })).cookie;
      assert.equal((await get(t, `/care-home/residents/${OUTSIDER}`, colleague)).status, 403, 'the grant is the carer’s own');
    });

    it('puts the alert before the privacy officer, who reviews it; a note is needed to call it inappropriate', async () => {
      assert.equal((await get(t, '/privacy-officer', carer)).status, 403, 'care-home staff cannot see the queue');
      const queue = await get(t, '/privacy-officer', officer);
      assert.equal(queue.status, 200);
      assert.match(textOf(queue.html), new RegExp(`Test Carer Care home staff VM101 ${OUTSIDER} Emergency care: the person needs care now Found collapsed at the day centre`));
      const [grant] = await t.access.breakGlass.list({ open: true });
      const path = `/privacy-officer/alerts/${grant.id}/review`;
      const noNote = await post(t, path, officer, { _csrf: csrfTokenIn(queue.html), outcome: 'inappropriate' });
      assert.equal(noNote.status, 400);
      assert.match(textOf(noNote.html), /There is a problem .*Say what was inappropriate/);
      assert.ok(noNote.html.includes(`href="#note-${grant.id}"`));
      assert.equal((await t.access.breakGlass.list({ open: true })).length, 1, 'still open');
      const done = await post(t, path, officer, { _csrf: csrfTokenIn(queue.html), outcome: 'inappropriate', note: 'No emergency was recorded by the day centre' });
      assert.equal(done.status, 303);
      assert.deepEqual(await t.access.breakGlass.list({ open: true }), []);
      const after = textOf((await get(t, done.location!, officer)).html);
      assert.match(after, /Review saved .*There are no break-glass alerts waiting for review/);
      assert.match(after, /Inappropriate: No emergency was recorded by the day centre Pat Privacy/);
      const again = await post(t, path, officer, { _csrf: csrfTokenIn(queue.html), outcome: 'appropriate' });
      assert.equal(again.status, 400);
      assert.match(textOf(again.html), /already reviewed by Pat Privacy/);
    });

    it('the audit search tells the declaration apart from what was read under it', async () => {
      let text = '';
      for (let i = 0; i < 100 && !/under break-glass/.test(text); i++) {
        if (i) await new Promise((r) => setTimeout(r, 50));
        text = textOf((await get(t, `/privacy-officer/audit?person=${OUTSIDER}`, officer)).html);
      }
      assert.equal(text.match(/Declared break-glass/g)?.length, 1, 'one declaration');
      assert.match(text, /Searched Observation \(under break-glass\)/, 'the reads under the grant, said as such');
      assert.match(text, /Read demo-pat-vm102-02 Failed \(HTTP 403: GET Patient\/demo-pat-vm102-02\)/, 'the refused attempts before it, under the person');
    });

    it('the privacy officer\'s review is in the audit under the person: who reviewed, the outcome and the note', async () => {
      let text = '';
      for (let i = 0; i < 100 && !/alert reviewed/.test(text); i++) {
        if (i) await new Promise((r) => setTimeout(r, 50));
        text = textOf((await get(t, `/privacy-officer/audit?person=${OUTSIDER}`, officer)).html);
      }
      assert.match(text, new RegExp(`Pat Privacy (\\S+ )?Privacy officer LA918 HOPERAT Break-glass alert reviewed: [0-9a-f-]{36} \\(inappropriate: No emergency was recorded by the day centre; Patient/${OUTSIDER}; declared by Test Carer`));
    });
  });
}
