// The care-home pages over real HTTP, rendered for a signed-in care-home worker through the real record
// (its access checks and audit trail included): residents list and search, a resident's summary with
// where each item came from, and NEWS2 entry (validation, scoring, rise flag, all-or-nothing write).
// CSRF and session expiry too. Both storage engines.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ENGINES } from '../support/server.ts';
import { stopOwnPostgres } from '../support/postgres.ts';
import { CARE_HOME_CARER, csrfTokenIn, startPortalServer, textOf, type PortalTestServer } from './portalServer.ts';

after(() => stopOwnPostgres());

const NEWS2 = 'http://snomed.info/sct|1104051000000101';

async function get(t: PortalTestServer, path: string, cookie: string) {
  const res = await fetch(t.url + path, { headers: { cookie }, redirect: 'manual' });
  return { status: res.status, location: res.headers.get('location'), html: await res.text() };
}

async function post(t: PortalTestServer, path: string, cookie: string, form: Record<string, string>) {
  const res = await fetch(t.url + path, { method: 'POST', headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(form).toString(), redirect: 'manual' });
  return { status: res.status, location: res.headers.get('location'), html: await res.text() };
}

async function news2Count(t: PortalTestServer, patientId: string): Promise<number> {
  const bundle = await t.fhir('GET', 'Observation', [['patient', patientId], ['code', NEWS2], ['_summary', 'count']]);
  return bundle.total;
}

for (const engine of ENGINES) {
  describe(`care-home pages (${engine})`, () => {
    let t: PortalTestServer;
    let cookie: string;
    let residents: any[];

    before(async () => {
      t = await startPortalServer(engine);
      cookie = (await t.signIn(CARE_HOME_CARER)).cookie;
      const episodes = await t.fhir('GET', 'EpisodeOfCare', [['organization', 'Organization/demo-org-vm101'], ['status', 'active'], ['_include', 'EpisodeOfCare:patient']]);
      residents = episodes.entry.map((e: any) => e.resource).filter((r: any) => r.resourceType === 'Patient');
    });
    after(() => t.close());

    it('lists the care home’s residents, with their alerts as tags, and no one else’s', async () => {
      const page = await get(t, '/care-home', cookie);
      assert.equal(page.status, 200);
      const text = textOf(page.html);
      assert.match(text, /Willow Lodge Care Home Residents/);
      assert.equal(residents.length, 8);
      for (const r of residents) assert.ok(page.html.includes(`/care-home/residents/${r.id}"`), `${r.id} listed`);
      assert.ok(!page.html.includes('demo-pat-vm102'), 'residents of other homes are not listed');
      const flags = await t.fhir('GET', 'Flag', [['patient', residents.map((r) => r.id).join(',')], ['status', 'active']]);
      assert.ok(flags.total > 0);
      for (const f of flags.entry) assert.ok(text.includes(f.resource.code.text ?? f.resource.code.coding[0].display), `alert “${f.resource.code.text}” shown`);
      assert.match(page.html, /<title>Residents – CareBridge<\/title>/);
    });

    it('finds a resident by name or by NHS number (spaced as people write it), and explains a wrong number', async () => {
      const [someone] = residents;
      const byName = await get(t, `/care-home?q=${encodeURIComponent(someone.name[0].family)}`, cookie);
      assert.equal(byName.status, 200);
      assert.ok(byName.html.includes(`/care-home/residents/${someone.id}"`));
      const nhs: string = someone.identifier[0].value;
      const spaced = `${nhs.slice(0, 3)} ${nhs.slice(3, 6)} ${nhs.slice(6)}`;
      const byNumber = await get(t, `/care-home?q=${encodeURIComponent(spaced)}`, cookie);
      assert.equal((byNumber.html.match(/\/care-home\/residents\/[^"]+"/g) ?? []).length, 1);
      assert.ok(byNumber.html.includes(`/care-home/residents/${someone.id}"`));
      const wrong = await get(t, `/care-home?q=${nhs.slice(0, 9)}${(Number(nhs[9]) + 1) % 10}`, cookie);
      assert.equal(wrong.status, 400);
      assert.match(textOf(wrong.html), /There is a problem .*Check the NHS number: it is not a valid NHS number/);
      assert.match(wrong.html, /<title>Error: Residents – CareBridge<\/title>/);
      assert.ok(wrong.html.includes(`value="${nhs.slice(0, 9)}`), 'what was typed is kept');
    });

    it('shows a resident’s summary, each item with the organisation, author and time it came from', async () => {
      const meds = await t.fhir('GET', 'MedicationRequest', [['patient', 'demo-pat-vm101-01'], ['status', 'active']]);
      const page = await get(t, '/care-home/residents/demo-pat-vm101-01', cookie);
      assert.equal(page.status, 200);
      const text = textOf(page.html);
      for (const heading of ['Alerts', 'Personal details', 'Latest observations', 'Medicines', 'Allergies and adverse reactions', 'Conditions', 'Care plan', 'About me', 'Recent events']) {
        assert.ok(text.includes(heading), `section ${heading}`);
      }
      for (const e of meds.entry) {
        const m = e.resource;
        assert.ok(text.includes(m.medicationCodeableConcept.text), `medicine ${m.medicationCodeableConcept.text}`);
        assert.ok(text.includes(`Riverside Medical Practice, ${m.requester.display}`), 'prescriber and their practice');
      }
      assert.match(text, /NEWS2 score \d+ – (low|low-medium|medium|high) clinical risk/);
      const missing = await get(t, '/care-home/residents/no-such-person', cookie);
      assert.equal(missing.status, 404);
    });

    it('refuses NEWS2 readings that are missing or impossible, lists every problem, keeps what was typed and writes nothing', async () => {
      const before = await news2Count(t, 'demo-pat-vm101-02');
      const form = await get(t, '/care-home/residents/demo-pat-vm101-02/news2', cookie);
      const csrf = csrfTokenIn(form.html);
      const res = await post(t, '/care-home/residents/demo-pat-vm101-02/news2', cookie, { _csrf: csrf, respirationRate: '18.5', spo2: '101', systolicBP: '', pulse: 'fast', temperature: '98.6' });
      assert.equal(res.status, 400);
      const text = textOf(res.html);
      for (const message of [
        'The respiration rate must be a whole number',
        'The oxygen saturation (SpO2) must be between 0 and 100 %',
        'Select whether the resident is on oxygen',
        'Enter the systolic blood pressure',
        'The pulse must be a number, like 18',
        'Select the level of consciousness (ACVPU)',
        'The temperature must be between 10 and 45 °C',
      ]) assert.ok(text.includes(message), message);
      assert.ok(res.html.includes('href="#respirationRate"'), 'the error summary links to the field');
      assert.ok(res.html.includes('value="18.5"') && res.html.includes('value="98.6"'), 'typed values are kept');
      assert.equal(await news2Count(t, 'demo-pat-vm101-02'), before);
    });

    it('scores NEWS2 readings, stores them with the score derived from them, and flags the rise', async () => {
      const scale2 = await t.fhir('GET', 'Flag', [['status', 'active'], ['_count', '1000']]);
      const onScale2 = new Set(scale2.entry.filter((e: any) => /scale 2/.test(e.resource.code.text ?? '')).map((e: any) => e.resource.subject.reference));
      const patient = residents.find((r) => !onScale2.has(`Patient/${r.id}`) && r.id !== 'demo-pat-vm101-01').id;
      const before = await news2Count(t, patient);
      const form = await get(t, `/care-home/residents/${patient}/news2`, cookie);
      // RR 25 (3), SpO2 91 (3, scale 1), air (0), systolic 95 (2), pulse 115 (2), alert (0), 38.5 (1) = 11: high.
      const res = await post(t, `/care-home/residents/${patient}/news2`, cookie, { _csrf: csrfTokenIn(form.html), respirationRate: '25', spo2: '91', oxygen: 'no', systolicBP: '95', diastolicBP: '60', pulse: '115', consciousness: 'A', temperature: '38.5' });
      assert.equal(res.status, 303);
      assert.equal(res.location, `/care-home/residents/${patient}?recorded=news2#observations`);
      const summary = textOf((await get(t, res.location!.replace(/#.*/, ''), cookie)).html);
      assert.match(summary, /NEWS2 observations recorded: score 11 \(high clinical risk\)/);
      assert.match(summary, /NEWS2 is rising .*NEWS2 rose by \d+ since the last score/);
      assert.match(summary, /Willow Lodge Care Home, Test Carer/);
      assert.equal(await news2Count(t, patient), before + 1);
      const latest = await t.fhir('GET', 'Observation', [['patient', patient], ['code', NEWS2], ['_sort', '-date'], ['_count', '1'], ['_include', 'Observation:derived-from']]);
      const score = latest.entry[0].resource;
      assert.equal(score.valueInteger, 11);
      assert.deepEqual(score.performer.map((p: any) => p.reference), ['Practitioner/demo-prac-vm101-senior-carer', 'Organization/demo-org-vm101']);
      assert.equal(latest.entry.length, 7, 'the score links to the six readings it was computed from');
    });

    it('a double click on "Save" records the readings once', async () => {
      const patient = residents.find((r) => r.id !== 'demo-pat-vm101-01').id;
      const before = await news2Count(t, patient);
      const readingsBefore = (await t.fhir('GET', 'Observation', [['patient', patient], ['_summary', 'count']])).total;
      const form = await get(t, `/care-home/residents/${patient}/news2`, cookie);
      const submission = /name="submission" value="([^"]+)"/.exec(form.html)?.[1];
      assert.match(submission ?? '', /^[0-9a-f-]{36}$/, 'the form carries its own submission id');
      assert.match(form.html, /data-prevent-double-click="true"/, 'and, with JavaScript, its button ignores a second click');
      const readings = { _csrf: csrfTokenIn(form.html), submission: submission!, respirationRate: '18', spo2: '96', oxygen: 'no', systolicBP: '125', pulse: '80', consciousness: 'A', temperature: '37.2' };
      const answers = await Promise.all([1, 2].map(() => post(t, `/care-home/residents/${patient}/news2`, cookie, readings)));
      assert.deepEqual(answers.map((a) => [a.status, a.location]), answers.map(() => [303, `/care-home/residents/${patient}?recorded=news2#observations`]), 'both clicks lead back to the resident');
      assert.equal(await news2Count(t, patient), before + 1, 'one NEWS2 score');
      assert.equal((await t.fhir('GET', 'Observation', [['patient', patient], ['_summary', 'count']])).total, readingsBefore + 7, 'six readings and their score, once');
      // The same readings sent again later from a fresh form are a new set, as they should be.
      const again = await get(t, `/care-home/residents/${patient}/news2`, cookie);
      assert.notEqual(/name="submission" value="([^"]+)"/.exec(again.html)?.[1], submission, 'each form is a new submission');
    });

    it('scores SpO2 on scale 2 only for a resident whose record holds that decision', async () => {
      const flags = await t.fhir('GET', 'Flag', [['status', 'active'], ['_count', '1000']]);
      const scale2 = flags.entry.map((e: any) => e.resource).find((f: any) => /NEWS2 scale 2/.test(f.code.text ?? ''));
      assert.ok(scale2, 'the demo data has a resident with a scale 2 decision');
      const who = scale2.subject.reference.replace('Patient/', '');
      const ods = who.slice('demo-pat-'.length, who.lastIndexOf('-')).toUpperCase();
      const carer = (await t.signIn({ username: `carer.${ods.toLowerCase()}`, name: 'Another Carer', organisation: ods, role: 'care-home-staff' })).cookie;
      const form = await get(t, `/care-home/residents/${who}/news2`, carer);
      assert.match(textOf(form.html), /SpO2 will be scored on NEWS2 scale 2/);
      // SpO2 89 on air: scale 2 scores 0 (scale 1 would score 3). Everything else normal: total 0.
      const res = await post(t, `/care-home/residents/${who}/news2`, carer, { _csrf: csrfTokenIn(form.html), respirationRate: '16', spo2: '89', oxygen: 'no', systolicBP: '130', pulse: '70', consciousness: 'A', temperature: '37.0' });
      assert.equal(res.status, 303);
      const latest = await t.fhir('GET', 'Observation', [['patient', who], ['code', NEWS2], ['_sort', '-date'], ['_count', '1']]);
      assert.equal(latest.entry[0].resource.valueInteger, 0);
      assert.equal(latest.entry[0].resource.method.text, 'NEWS2 SpO2 scale 2');
    });

    it('refuses NEWS2 for a resident who left the home while the form was open: the break-glass prompt, nothing written', async () => {
      const before = await news2Count(t, 'demo-pat-vm101-04');
      const form = await get(t, '/care-home/residents/demo-pat-vm101-04/news2', cookie);
      assert.equal(form.status, 200);
      const episodes = await t.fhir('GET', 'EpisodeOfCare', [['patient', 'demo-pat-vm101-04'], ['status', 'active']]);
      for (const { resource } of episodes.entry) await t.fhir('PUT', `EpisodeOfCare/${resource.id}`, [], { ...resource, status: 'finished' });
      const res = await post(t, '/care-home/residents/demo-pat-vm101-04/news2', cookie, { _csrf: csrfTokenIn(form.html), respirationRate: '16', spo2: '97', oxygen: 'no', systolicBP: '130', pulse: '70', consciousness: 'A', temperature: '37.0' });
      assert.equal(res.status, 403);
      assert.match(textOf(res.html), /You do not have a care relationship with this person/);
      assert.equal(await news2Count(t, 'demo-pat-vm101-04'), before);
    });

    it('refuses a form without this session’s CSRF token, or posted from another site', async () => {
      const before = await news2Count(t, 'demo-pat-vm101-05');
      const readings = { respirationRate: '16', spo2: '97', oxygen: 'no', systolicBP: '130', pulse: '70', consciousness: 'A', temperature: '37.0' };
      const other = (await t.signIn(CARE_HOME_CARER)).cookie;
      const othersToken = csrfTokenIn((await get(t, '/care-home/residents/demo-pat-vm101-05/news2', other)).html);
      assert.equal((await post(t, '/care-home/residents/demo-pat-vm101-05/news2', cookie, readings)).status, 403);
      assert.equal((await post(t, '/care-home/residents/demo-pat-vm101-05/news2', cookie, { ...readings, _csrf: othersToken })).status, 403);
      const mine = csrfTokenIn((await get(t, '/care-home/residents/demo-pat-vm101-05/news2', cookie)).html);
      const crossSite = await fetch(`${t.url}/care-home/residents/demo-pat-vm101-05/news2`, { method: 'POST', redirect: 'manual', headers: { cookie, origin: 'https://elsewhere.example', 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ ...readings, _csrf: mine }).toString() });
      assert.equal(crossSite.status, 403);
      assert.equal(await news2Count(t, 'demo-pat-vm101-05'), before);
    });

    it('sends a person whose session has ended back to sign in, saying why; signed out, pages ask for sign-in', async () => {
      const session = await t.signIn(CARE_HOME_CARER);
      assert.equal((await get(t, '/care-home', session.cookie)).status, 200);
      t.advanceClock(31 * 60_000); // sessions end after 30 minutes idle
      const res = await get(t, '/care-home', session.cookie);
      assert.equal(res.status, 303);
      assert.equal(res.location, '/sign-in?reason=expired');
      const signIn = await get(t, res.location!, '');
      assert.match(textOf(signIn.html), /Your session has ended, so you have been signed out/);
      assert.equal((await get(t, '/care-home/residents/demo-pat-vm101-01', '')).location, '/sign-in');
    });

    it('signs out: the session ends and its cookie goes', async () => {
      const session = await t.signIn(CARE_HOME_CARER);
      const page = await get(t, '/care-home', session.cookie);
      const action = /action="(\/sign-out\?_csrf=[^"]+)"/.exec(page.html)![1];
      const res = await fetch(t.url + action.replace(/&amp;/g, '&'), { method: 'POST', headers: { cookie: session.cookie }, redirect: 'manual' });
      assert.equal(res.status, 303);
      assert.equal(res.headers.get('location'), '/sign-in?reason=signed-out');
      assert.match(res.headers.get('set-cookie') ?? '', /carebridge_session=;/);
      assert.equal((await get(t, '/care-home', session.cookie)).location, '/sign-in?reason=expired');
    });
  });
}
