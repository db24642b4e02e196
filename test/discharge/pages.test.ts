// The discharge pages over real HTTP on a whole CareBridge server, both engines: a council social worker's
// referral queue and triage (validation with the NHS error summary, a stale page refused with nothing
// overwritten, worker and note), a hospital discharge coordinator's board, the figures with their CSV, and
// live updates by Server-Sent Events. Each person sees only their own organisation's referrals.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { ENGINES, startTestServer, type TestServer } from '../support/server.ts';
import { stopOwnPostgres } from '../support/postgres.ts';
import { createReferral, londonDay, recordDischarge, triage, triageStateOf, withdrawReferral, MEDICALLY_READY_URL } from '../../src/discharge/index.ts';
import { handleFhirRequest, UNRESTRICTED } from '../../src/record/index.ts';
import { csrfTokenIn, textOf } from '../portal/portalServer.ts';
import { waitForAudit } from '../support/audit.ts';
import { COUNCIL, HOSPITAL, ODS_ORG, OTHER_COUNCIL, ownHospital, seedDischargePages, signIn } from './pagesSeed.ts';
import { addOrganisation, addUser, disableUser, setPassword } from '../../src/access/index.ts';
import { TEST_PASSWORD } from '../portal/portalServer.ts';
import { REFERRAL_PAGE, delayedDays, type ReferralRow } from '../../src/portal/discharge/referralRows.ts';
import { dischargeMetrics } from '../../src/portal/discharge/metrics.ts';

after(stopOwnPostgres);

interface Page { status: number; location: string | null; html: string; text: string }

async function get(t: TestServer, path: string, cookie: string): Promise<Page> {
  const res = await fetch(t.url + path, { headers: { cookie }, redirect: 'manual' });
  const html = await res.text();
  return { status: res.status, location: res.headers.get('location'), html, text: textOf(html) };
}

async function post(t: TestServer, path: string, cookie: string, form: Record<string, string>): Promise<Page> {
  const res = await fetch(t.url + path, { method: 'POST', headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(form).toString(), redirect: 'manual' });
  const html = await res.text();
  return { status: res.status, location: res.headers.get('location'), html, text: textOf(html) };
}

const hidden = (html: string, name: string) => new RegExp(`name="${name}" value="([^"]*)"`).exec(html)?.[1] ?? '';

/** An open /discharge/events stream: what it has sent so far, and whether the server has closed it. */
async function openStream(t: TestServer, cookie: string) {
  const controller = new AbortController();
  const res = await fetch(`${t.url}/discharge/events`, { headers: { cookie }, signal: controller.signal, redirect: 'manual' });
  const stream = { status: res.status, text: '', closed: false, close: () => controller.abort() };
  if (res.status !== 200) return (await res.body?.cancel(), stream);
  const reader = res.body!.getReader();
  void (async () => {
    for (;;) {
      const { value, done } = await reader.read().catch(() => ({ value: undefined, done: true }));
      if (done) break;
      stream.text += new TextDecoder().decode(value);
    }
    stream.closed = true;
  })();
  await new Promise((r) => setTimeout(r, 300)); // the server is listening to the change feed
  return stream;
}

const until = async (ok: () => boolean, ms = 10_000) => {
  for (const deadline = Date.now() + ms; !ok() && Date.now() < deadline;) await new Promise((r) => setTimeout(r, 100));
};

describe('delayed days', () => {
  it('count UK local days: a discharge at 00:30 BST is on that day, not the day before', () => {
    assert.equal(delayedDays('2026-05-01', Date.parse('2026-05-04T23:30:00Z')), 4, '00:30 BST on 5 May');
    assert.equal(delayedDays('2026-01-02', Date.parse('2026-01-06')), 4, 'a discharge recorded as a day');
    assert.equal(delayedDays('2026-03-28', Date.parse('2026-03-29T23:30:00Z')), 2, 'across the clocks going forward');
    assert.equal(delayedDays('2026-05-01T23:30:00Z', Date.parse('2026-05-04T12:00:00Z')), 2, 'medically ready at 00:30 BST on 2 May');
    assert.equal(delayedDays('2026-05-04', Date.parse('2026-05-04T08:00:00Z')), 0);
  });
});

/** A closed referral at Riverside's Heron Ward, as the figures read it. */
const row = (over: Partial<ReferralRow>): ReferralRow => ({
  id: 'r', taskId: 'triage-r', version: '1', patientId: 'p', name: 'N', ward: 'Heron Ward', hospital: 'Riverside Hospital', council: 'Eastshire Council',
  pathway: 1, pathwayLabel: 'Pathway 1', state: 'discharged', stateLabel: 'Discharged', open: false, received: '2026-02-02T09:00:00Z', owed: [], overdue: false, ...over,
});

describe('discharge figures', () => {
  it('the median of an even count is halfway between the two middle values; "90% within" is an actual value (nearest rank)', () => {
    const m = dischargeMetrics([row({ hoursToRespond: 1, daysDelayed: 2 }), row({ hoursToRespond: 3, daysDelayed: 10 })]);
    assert.deepEqual(m.respond.map((s) => [s.group, s.count, s.median, s.p90, s.max]), [['Eastshire Council', 2, 2, 3, 3]], 'responses in 1 and 3 hours: median 2, not 1');
    const byWard = m.delayed.find((d) => d.by === 'Ward')!.groups;
    assert.deepEqual(byWard.map((s) => [s.group, s.count, s.mean, s.median, s.max]), [['Riverside Hospital: Heron Ward', 2, 6, 6, 10]], 'delays of 2 and 10 days: median 6, not 2');
    const odd = dischargeMetrics([1, 4, 3].map((h) => row({ hoursToRespond: h }))).respond[0];
    assert.equal(odd.median, 3, 'an odd count: the middle value');
    const ten = dischargeMetrics([10, 9, 8, 7, 6, 5, 4, 3, 2, 1].map((h) => row({ hoursToRespond: h }))).respond[0];
    assert.equal(ten.p90, 9, 'of ten responses, nine came within 9 hours');
    assert.equal(ten.median, 5.5);
  });
});

for (const engine of ENGINES) {
  describe(`discharge pages (${engine})`, () => {
    let t: TestServer;
    let worker: string;
    let coordinator: string;
    const ids: Record<string, string> = {};

    before(async () => {
      t = await startTestServer(engine, { CAREBRIDGE_DISCHARGE_POLL_SECONDS: '3600' });
      Object.assign(ids, await seedDischargePages(t));
      worker = await signIn(t, 'sam.social');
      coordinator = await signIn(t, 'cath.coord');
    });
    after(() => t?.close());

    it('the council\'s queue lists referrals to this council only, overdue first', async () => {
      const page = await get(t, '/discharge/referrals', worker);
      assert.equal(page.status, 200);
      assert.match(page.text, /Eastshire Council Discharge referrals/);
      assert.ok(page.html.includes(`/discharge/referrals/${ids.alice}"`));
      assert.ok(!page.html.includes(ids.cora), 'a referral to another council is not shown');
      assert.ok(!page.html.includes(ids.bert), 'a discharged person\'s referral leaves the council\'s view (access follows open referrals)');
      assert.match(page.text, /1 referral is past the response deadline/);
      assert.match(page.text, /Overdue/);
      const board = await get(t, '/discharge/board', worker);
      assert.equal(board.location, '/discharge/referrals', 'the board is the hospital\'s');
    });

    it('triage: the error summary names what is missing; a stale page is refused and nothing is overwritten; then accept, assign, note', async () => {
      const path = `/discharge/referrals/${ids.alice}`;
      let page = await get(t, path, worker);
      const form = { _csrf: csrfTokenIn(page.html), version: hidden(page.html, 'version') };

      let answer = await post(t, `${path}/triage`, worker, { ...form });
      assert.equal(answer.status, 400);
      assert.match(answer.html, /nhsuk-error-summary/);
      assert.match(answer.html, /href="#decision">\s*Select whether to accept the referral/);
      answer = await post(t, `${path}/triage`, worker, { ...form, decision: 'reject' });
      assert.match(answer.html, /href="#details">\s*Enter the reason for rejecting the referral/);

      // Someone else answers first (here: asks for more information through the workflow).
      await post(t, `${path}/triage`, worker, { ...form, decision: 'requestInformation', details: 'Is there a package of care already?' });
      answer = await post(t, `${path}/triage`, worker, { ...form, decision: 'reject', details: 'Not our area' });
      assert.equal(answer.status, 409);
      assert.match(answer.text, /changed by someone else while you had it open/);
      assert.match(answer.html, /Not our area<\/textarea>/, 'what the person typed is kept');
      const task = async () => (await t.fhir.get(`Task?focus=ServiceRequest/${ids.alice}&code=triage-referral`)).body.entry[0].resource;
      assert.equal(triageStateOf(await task()), 'more-information-requested', 'the stale decision was not applied');

      page = await get(t, path, worker);
      answer = await post(t, `${path}/triage`, worker, { _csrf: csrfTokenIn(page.html), version: hidden(page.html, 'version'), decision: 'accept' });
      assert.equal(answer.status, 303);
      assert.equal(answer.location, `${path}?done=triage`);
      const accepted = await task();
      assert.equal(triageStateOf(accepted), 'accepted');
      assert.ok(accepted.executionPeriod.start, 'the time of the first response is kept for the figures');

      page = await get(t, `${path}?done=triage`, worker);
      assert.match(page.text, /Your decision was saved/);
      assert.match(page.html, /<option value="Practitioner\/ola-other">Ola Other \(Social worker\)<\/option>/);
      answer = await post(t, `${path}/assign`, worker, { _csrf: csrfTokenIn(page.html), version: hidden(page.html, 'version'), worker: 'Practitioner/not-offered' });
      assert.match(answer.html, /href="#worker">\s*Select the worker to assign/);
      answer = await post(t, `${path}/assign`, worker, { _csrf: csrfTokenIn(page.html), version: hidden(page.html, 'version'), worker: 'Practitioner/ola-other' });
      assert.equal(answer.status, 303);
      assert.equal((await task()).owner.reference, 'Practitioner/ola-other');

      page = await get(t, path, worker);
      answer = await post(t, `${path}/note`, worker, { _csrf: csrfTokenIn(page.html), version: hidden(page.html, 'version'), note: 'Family visiting on Friday' });
      assert.equal(answer.status, 303);
      page = await get(t, path, worker);
      assert.match(page.text, /Note Family visiting on Friday/);
      assert.match(page.text, /Sam Social/);
      assert.match(page.text, /Request for more information Is there a package of care already\?/);
    });

    // H-038: a council or hospital that can see the person still cannot act on a referral that is not theirs.
    it('another council or hospital cannot reject, note or withdraw a referral that is not theirs: a refusal page, nothing changed; the referral\'s own council can', async () => {
      // Cora is referred by Riverside to Westshire (LA888). Eastshire (Sam's council) also supports her at
      // home, and she has a stay at Yarrow (RYY): both can see her.
      await t.fhir.put('EpisodeOfCare/cora-la777', { resourceType: 'EpisodeOfCare', id: 'cora-la777', status: 'active', patient: { reference: 'Patient/cora' }, managingOrganization: { reference: 'Organization/la777' } });
      await t.fhir.put('Organization/ryy', { resourceType: 'Organization', id: 'ryy', identifier: [{ system: ODS_ORG, value: 'RYY' }], name: 'Yarrow Hospital' });
      await t.fhir.put('Encounter/cora-ryy', { resourceType: 'Encounter', id: 'cora-ryy', status: 'in-progress', class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'IMP' }, subject: { reference: 'Patient/cora' }, serviceProvider: { reference: 'Organization/ryy' } });
      await addOrganisation(t.server.driver, { ods: 'RYY', name: 'Yarrow Hospital', kind: 'hospital' });
      await addOrganisation(t.server.driver, { ods: OTHER_COUNCIL, name: 'Westshire Council', kind: 'council' });
      await addUser(t.server.driver, { username: 'yan.yarrow', name: 'Yan Yarrow', password: TEST_PASSWORD, memberships: [{ organisation: 'RYY', role: 'discharge-coordinator' }] });
      await addUser(t.server.driver, { username: 'wes.west', name: 'Wes West', password: TEST_PASSWORD, memberships: [{ organisation: OTHER_COUNCIL, role: 'social-worker' }] });
      const yarrow = await signIn(t, 'yan.yarrow');
      const west = await signIn(t, 'wes.west');
      const path = `/discharge/referrals/${ids.cora}`;
      const task = async () => (await t.fhir.get(`Task?focus=ServiceRequest/${ids.cora}&code=triage-referral`)).body.entry[0].resource;
      const notes = async () => (await t.fhir.get(`Communication?based-on=ServiceRequest/${ids.cora}`)).body.entry?.length ?? 0;
      const before = { task: await task(), notes: await notes() };
      const csrfOf = async (cookie: string) => decodeURIComponent(/sign-out\?_csrf=([^"&]+)/.exec((await get(t, '/discharge/metrics', cookie)).html)![1]);
      const version = before.task.meta.versionId;

      assert.equal((await get(t, path, worker)).status, 404, 'Sam\'s council does not see the referral page');
      let answer = await post(t, `${path}/triage`, worker, { _csrf: await csrfOf(worker), version, decision: 'reject', details: 'Not known to us' });
      assert.equal(answer.status, 403, answer.text);
      assert.match(answer.text, /You cannot use this page .*Only Westshire Council can reject this referral; you act for LA777/);
      answer = await post(t, `${path}/note`, worker, { _csrf: await csrfOf(worker), version, note: 'Closing this' });
      assert.equal(answer.status, 403, answer.text);
      answer = await post(t, `${path}/withdraw`, yarrow, { _csrf: await csrfOf(yarrow), version, reasonCode: '11', reason: 'Going home' });
      assert.equal(answer.status, 403, answer.text);
      assert.match(answer.text, /Only Riverside Hospital can withdraw this referral; you act for RYY/);
      // A referral that is not there at all (a stale or mistyped address): the page is not found, not a server error.
      answer = await post(t, '/discharge/referrals/no-such-referral/note', worker, { _csrf: await csrfOf(worker), version, note: 'Hello' });
      assert.equal(answer.status, 404, answer.text);
      assert.match(answer.text, /There is no discharge referral you can see with this identifier/);
      const after = await task();
      assert.equal(after.meta.versionId, version, 'the Task is untouched');
      assert.equal(triageStateOf(after), 'received');
      assert.equal((await t.fhir.get(`ServiceRequest/${ids.cora}`)).body.status, 'active');
      assert.equal(await notes(), before.notes, 'no note was filed');

      const page = await get(t, path, west);
      assert.equal(page.status, 200, 'Westshire, the council it is addressed to, sees it');
      answer = await post(t, `${path}/note`, west, { _csrf: csrfTokenIn(page.html), version: hidden(page.html, 'version'), note: 'We will call the ward' });
      assert.equal(answer.status, 303, answer.text);
      assert.equal(await notes(), before.notes + 1);
      // Sam's council stops supporting Cora and her Yarrow stay ends: the tests after this one see the seed as it was.
      await t.fhir.put('EpisodeOfCare/cora-la777', { resourceType: 'EpisodeOfCare', id: 'cora-la777', status: 'finished', patient: { reference: 'Patient/cora' }, managingOrganization: { reference: 'Organization/la777' } });
      await t.fhir.put('Encounter/cora-ryy', { ...(await t.fhir.get('Encounter/cora-ryy')).body, status: 'finished' });
    });

    it('the hospital\'s board groups its referrals by ward with days delayed, and filters', async () => {
      const page = await get(t, '/discharge/board', coordinator);
      assert.equal(page.status, 200);
      assert.match(page.text, /Riverside Hospital Discharge board/);
      assert.ok(page.html.includes(ids.alice) && page.html.includes(ids.cora), 'referrals to any council, from this hospital');
      assert.ok(!page.html.includes(ids.bert), 'the discharged person is not on the open board');
      assert.match(page.html, /<caption[^>]*>Heron Ward<\/caption>/);
      const all = await get(t, '/discharge/board?status=', coordinator);
      assert.ok(all.html.includes(ids.bert));
      const discharged = await get(t, '/discharge/board?status=discharged', coordinator);
      assert.ok(discharged.html.includes(ids.bert) && !discharged.html.includes(ids.alice));
      assert.match(discharged.text, /=Kestrel Ward .*Bert Smith .* 4 /, 'medically ready 2 January, discharged 6 January: 4 days');
      const pathway3 = await get(t, '/discharge/board?status=&pathway=3', coordinator);
      assert.ok(pathway3.html.includes(ids.bert) && !pathway3.html.includes(ids.alice));
      assert.equal((await post(t, `/discharge/referrals/${ids.alice}/triage`, coordinator, { _csrf: decodeURIComponent(/sign-out\?_csrf=([^"&]+)/.exec(page.html)![1]), decision: 'accept' })).status, 403, 'the hospital does not triage');
    });

    it('figures: open referrals by pathway and status, response time, delayed days; the CSV has every referral and no formulas', async () => {
      const page = await get(t, '/discharge/metrics', coordinator);
      assert.equal(page.status, 200);
      assert.match(page.html, /<svg role="img"/);
      assert.match(page.text, /Pathway 1: home with new or restarted support (\d+ )+2 /, 'two open pathway 1 referrals');
      assert.match(page.text, /Delayed days by ward .*Riverside Hospital: =Kestrel Ward 1 4 4 4/);
      const csv = await fetch(`${t.url}/discharge/metrics.csv`, { headers: { cookie: coordinator } });
      assert.equal(csv.headers.get('content-type'), 'text/csv; charset=utf-8');
      const lines = (await csv.text()).trim().split('\r\n');
      assert.equal(lines.length, 4);
      assert.match(lines[0], /^"Referral","Hospital","Ward","Council"/);
      const bert = lines.find((l) => l.startsWith(`"${ids.bert}"`))!;
      assert.match(bert, /"'=Kestrel Ward"/, 'a cell a spreadsheet would run is made text');
      assert.match(bert, /"2026-01-02","2026-01-06T10:00:00Z","4"$/);
      assert.ok(!lines.join().includes('Bert Smith'), 'no names in the export');
      const council = await (await fetch(`${t.url}/discharge/metrics.csv`, { headers: { cookie: worker } })).text();
      assert.ok(!council.includes(ids.cora), 'the council\'s figures hold only its referrals');
      // Each download is audited as an export (DICOM 110106) under every person in it.
      const bertPatient = (await t.fhir.get(`ServiceRequest/${ids.bert}`)).body.subject.reference;
      const all = await waitForAudit(t.fhir, 'type=110106&_sort=-date', (e) => e.length >= 2);
      assert.equal(all.length, 2, 'one for each download');
      const exports = await waitForAudit(t.fhir, `type=110106&patient=${bertPatient}`);
      assert.equal(exports.length, 1, 'filed under Bert: the hospital\'s file, not the council\'s (he is not in it)');
      const [e] = exports;
      assert.equal(e.type.display, 'Export');
      assert.equal(e.action, 'R');
      assert.equal(Buffer.from(e.entity.find((x: any) => x.query).query, 'base64').toString(), 'discharge-referrals.csv');
      assert.equal(e.entity.filter((x: any) => x.what?.reference?.startsWith('Patient/')).length, lines.length - 1, 'every person in the file');
    });

    it('the CSV starts with a UTF-8 byte-order mark, so a spreadsheet shows non-ASCII hospital and ward names as written', async () => {
      // Excel opens a CSV without a BOM as Windows-1252: "Côte (Llŷn)" became "CÃ´te (LlÅ·n)".
      const hospital = await ownHospital(t, 'RYC', 'Ysbyty Côte');
      await t.fhir.put('Location/ryc-wren', { resourceType: 'Location', id: 'ryc-wren', name: 'Ward 7 – Côte (Llŷn)', managingOrganization: { reference: 'Organization/ryc' } });
      const id = await hospital.refer('ffion');
      const res = await fetch(`${t.url}/discharge/metrics.csv`, { headers: { cookie: await signIn(t, hospital.username) } });
      const bytes = Buffer.from(await res.arrayBuffer());
      assert.deepEqual([...bytes.subarray(0, 3)], [0xef, 0xbb, 0xbf], 'the file starts with the UTF-8 byte-order mark');
      const text = bytes.subarray(3).toString('utf8');
      assert.match(text, /^"Referral","Hospital","Ward"/, 'the header follows it directly');
      assert.ok(text.split('\r\n').find((l) => l.startsWith(`"${id}"`))?.startsWith(`"${id}","Ysbyty Côte","Ward 7 – Côte (Llŷn)",`), 'names as written, in UTF-8');
    });

    it('live updates: an open page is told when a referral changes', async () => {
      const controller = new AbortController();
      const res = await fetch(`${t.url}/discharge/events`, { headers: { cookie: worker }, signal: controller.signal });
      assert.equal(res.headers.get('content-type'), 'text/event-stream; charset=utf-8');
      const reader = res.body!.getReader();
      let received = '';
      const changed = (async () => {
        while (!received.includes('event: changed')) {
          const { value, done } = await reader.read();
          if (done) break;
          received += new TextDecoder().decode(value);
        }
      })();
      await new Promise((r) => setTimeout(r, 300));
      await t.fhir.put(`ServiceRequest/${ids.alice}`, { ...(await t.fhir.get(`ServiceRequest/${ids.alice}`)).body, extension: [{ url: MEDICALLY_READY_URL, valueDateTime: '2026-01-03' }] });
      await Promise.race([changed, new Promise((_, reject) => setTimeout(() => reject(new Error(`no change event: ${received}`)), 10_000))]);
      assert.match(received, /event: changed\nid: \d+\ndata: \d+/);
      controller.abort();
      const anonymous = await fetch(`${t.url}/discharge/events`, { redirect: 'manual' });
      assert.equal(anonymous.status, 303, 'signed-out visitors get no stream');
    });

    it('live updates: a person is told only about their own organisation\'s referrals', async () => {
      const stream = await openStream(t, worker);
      const touch = async (id: string) => t.fhir.put(`ServiceRequest/${id}`, { ...(await t.fhir.get(`ServiceRequest/${id}`)).body, note: [{ text: `touched ${Date.now()}` }] });
      await touch(ids.cora); // Cora's referral is to Westshire, not Sam's council
      await new Promise((r) => setTimeout(r, 2500)); // more than one read of the change feed
      assert.doesNotMatch(stream.text, /event: changed/, 'nothing said about another council\'s referral');
      await touch(ids.alice);
      await until(() => stream.text.includes('event: changed'));
      stream.close();
      assert.match(stream.text, /event: changed/, 'a change to Sam\'s council\'s referral is told');
    });

    it('live updates: signing out ends an open stream, which says so and tells nothing more', async () => {
      const session = await signIn(t, 'sam.social');
      const stream = await openStream(t, session);
      const csrf = decodeURIComponent(/sign-out\?_csrf=([^"&]+)/.exec((await get(t, '/discharge/referrals', session)).html)![1]);
      const out = await fetch(`${t.url}/sign-out?_csrf=${encodeURIComponent(csrf)}`, { method: 'POST', headers: { cookie: session }, redirect: 'manual' });
      assert.equal(out.status, 303);
      await t.fhir.put(`ServiceRequest/${ids.alice}`, { ...(await t.fhir.get(`ServiceRequest/${ids.alice}`)).body, note: [{ text: 'after sign-out' }] });
      await until(() => stream.closed);
      stream.close();
      assert.ok(stream.closed, `the server closed the stream: ${stream.text}`);
      assert.match(stream.text, /event: ended/);
      assert.doesNotMatch(stream.text, /event: changed/, 'not even a change to a referral Sam could see while signed in');
      assert.equal((await openStream(t, session)).status, 303, 'and a new stream is refused');
    });

    it('live updates: disabling the account or resetting its password ends an open stream within seconds, with no change written', async () => {
      const streams = [];
      for (const username of [`disabled.${engine}`, `reset.${engine}`]) {
        await addUser(t.server.driver, { username, name: 'Sam Social', password: TEST_PASSWORD, fhirUser: 'Practitioner/sam-social', memberships: [{ organisation: COUNCIL, role: 'social-worker' }] });
        const session = await signIn(t, username);
        streams.push({ session, stream: await openStream(t, session) });
      }
      await disableUser(t.server.driver, `disabled.${engine}`);
      await setPassword(t.server.driver, `reset.${engine}`, 'another-synthetic-passphrase-8');
      for (const { session, stream } of streams) {
        await until(() => stream.closed, 15_000); // generous: the server ends it within WATCH_MS (2 s)
        stream.close();
        assert.ok(stream.closed, `the server closed the stream without waiting for a change or a heartbeat: ${stream.text}`);
        assert.match(stream.text, /event: ended/);
        assert.equal((await openStream(t, session)).status, 303, 'and a new stream is refused');
      }
    });

    it('live updates: one session opens at most four streams', async () => {
      const session = await signIn(t, 'sam.social');
      const streams = [];
      for (let i = 0; i < 4; i++) streams.push(await openStream(t, session));
      assert.deepEqual(streams.map((s) => s.status), [200, 200, 200, 200]);
      const fifth = await openStream(t, session);
      assert.equal(fifth.status, 429, 'a fifth tab gets no stream');
      streams.pop()!.close();
      await new Promise((r) => setTimeout(r, 200));
      const again = await openStream(t, session);
      assert.equal(again.status, 200, 'closing a tab frees its place');
      for (const s of [...streams, again]) s.close();
    });

    if (engine === 'postgres') it('live updates: a change committed after a later one is still told (PostgreSQL numbers changes when written, not when committed)', async () => {
      const controller = new AbortController();
      const res = await fetch(`${t.url}/discharge/events`, { headers: { cookie: worker }, signal: controller.signal });
      const reader = res.body!.getReader();
      let received = '';
      void (async () => {
        for (;;) {
          const { value, done } = await reader.read().catch(() => ({ value: undefined, done: true }));
          if (done) break;
          received += new TextDecoder().decode(value);
        }
      })();
      await new Promise((r) => setTimeout(r, 300));
      let release!: () => void;
      const held = new Promise<void>((resolve) => (release = resolve));
      let written!: () => void;
      const isWritten = new Promise<void>((resolve) => (written = resolve));
      // A note written first and committed last; meanwhile a later change (a person's record, not watched) commits.
      const early = t.server.driver.transaction(async (tx) => {
        await handleFhirRequest({ base: t.base, driver: t.server.driver, access: UNRESTRICTED, tx }, { method: 'PUT', path: 'Communication/late-note', query: [], body: { resourceType: 'Communication', id: 'late-note', status: 'completed', subject: { reference: 'Patient/alice' }, basedOn: [{ reference: `ServiceRequest/${ids.alice}` }], payload: [{ contentString: 'Family visiting' }] }, contentType: 'application/fhir+json' });
        written();
        await held;
      });
      await isWritten;
      const dora = (await t.fhir.get('Patient/dora')).body;
      await t.fhir.put('Patient/dora', { ...dora, gender: 'female' });
      await new Promise((r) => setTimeout(r, 1500)); // a poll reads past the note's number
      assert.doesNotMatch(received, /event: changed/, 'nothing watched has committed yet');
      release();
      await early;
      const deadline = Date.now() + 5000;
      while (!received.includes('event: changed') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      controller.abort();
      assert.match(received, /event: changed/, 'the note, committed late, is told');
    });

    it('the hospital records medically ready, answers with a note and withdraws; the council arranges support and confirms ready; the hospital records the discharge', async () => {
      const coraPath = `/discharge/referrals/${ids.cora}`;
      let page = await get(t, coraPath, coordinator);
      assert.match(page.text, /Medically ready Not yet/);
      const form = () => ({ _csrf: csrfTokenIn(page.html), version: hidden(page.html, 'version') });
      let answer = await post(t, `${coraPath}/medically-ready`, coordinator, { ...form() });
      assert.equal(answer.status, 400);
      assert.match(answer.html, /href="#ready-day">\s*Enter the date the patient became medically ready/);
      answer = await post(t, `${coraPath}/medically-ready`, coordinator, { ...form(), 'ready-day': '31', 'ready-month': '2', 'ready-year': '2026' });
      assert.match(answer.text, /must be a real date/);
      assert.match(answer.html, /name="ready-day"[^>]*value="31"|value="31"[^>]*name="ready-day"/, 'what was typed is kept');
      answer = await post(t, `${coraPath}/medically-ready`, coordinator, { ...form(), 'ready-day': '1', 'ready-month': '1', 'ready-year': '2099' });
      assert.match(answer.text, /must be today or in the past/);
      answer = await post(t, `${coraPath}/medically-ready`, coordinator, { ...form(), 'ready-day': '5', 'ready-month': '1', 'ready-year': '2026' });
      assert.equal(answer.status, 303);
      const referral = (await t.fhir.get(`ServiceRequest/${ids.cora}`)).body;
      assert.equal(referral.extension.find((e: any) => e.url === MEDICALLY_READY_URL).valueDateTime, '2026-01-05');
      answer = await post(t, `${coraPath}/medically-ready`, coordinator, { ...form(), 'ready-day': '6', 'ready-month': '1', 'ready-year': '2026' });
      assert.equal(answer.status, 409, 'the page that set the date is now out of date: a second change from it is refused');
      assert.match((await get(t, '/discharge/board', coordinator)).text, /Cora West .*Medically ready 5 January 2026/, 'the board shows the date it counts from');

      page = await get(t, coraPath, coordinator);
      answer = await post(t, `${coraPath}/note`, coordinator, { ...form(), note: 'Daughter will collect her' });
      assert.equal(answer.status, 303);
      page = await get(t, coraPath, coordinator);
      // The reasons are ADW's thirteen, so a council is sent the code ("Other" needs words of its own).
      assert.match(textOf(page.html), /Why is the referral being withdrawn\? .*Patient has died .*Patient has made their own arrangements .*Notice sent in error .*Other/);
      answer = await post(t, `${coraPath}/withdraw`, coordinator, { ...form(), reason: 'Going to live with her daughter' });
      assert.match(answer.html, /href="#reasonCode">\s*Select why the referral is being withdrawn/);
      answer = await post(t, `${coraPath}/withdraw`, coordinator, { ...form(), reasonCode: '13' });
      assert.match(answer.html, /href="#reason">\s*Enter why the referral is being withdrawn/);
      answer = await post(t, `${coraPath}/withdraw`, coordinator, { ...form(), reasonCode: '11', reason: 'Going to live with her daughter' });
      assert.equal(answer.status, 303);
      const coraTask = (await t.fhir.get(`Task?focus=ServiceRequest/${ids.cora}&code=triage-referral`)).body.entry[0].resource;
      assert.equal(triageStateOf(coraTask), 'withdrawn');
      assert.equal(coraTask.statusReason.text, '11 Patient has made their own arrangements: Going to live with her daughter');
      page = await get(t, `${coraPath}?done=withdraw`, coordinator);
      assert.match(page.text, /The referral was withdrawn/);
      assert.match(page.text, /Note Daughter will collect her/);
      assert.ok(!page.html.includes(`${coraPath}/withdraw"`), 'a withdrawn referral offers no more steps');

      const alicePath = `/discharge/referrals/${ids.alice}`;
      page = await get(t, alicePath, worker);
      assert.ok(!page.html.includes(`${alicePath}/medically-ready"`), 'the council does not set hospital dates');
      answer = await post(t, `${alicePath}/support`, worker, { ...form() });
      assert.match(answer.html, /href="#support">\s*Describe the support arranged/);
      answer = await post(t, `${alicePath}/support`, worker, { ...form(), support: 'Four calls a day from Monday' });
      assert.equal(answer.status, 303);
      page = await get(t, alicePath, worker);
      answer = await post(t, `${alicePath}/ready`, worker, { ...form(), 'ready-note': 'Package starts Monday' });
      assert.equal(answer.status, 303);
      page = await get(t, alicePath, coordinator);
      assert.match(page.text, /Status Ready for discharge|Status Ready/);
      assert.equal((await post(t, `${alicePath}/ready`, coordinator, { ...form() })).status, 403, 'the hospital does not confirm for the council');
      answer = await post(t, `${alicePath}/discharged`, coordinator, { ...form(), 'discharged-day': '7', 'discharged-month': '1', 'discharged-year': '2026' });
      assert.equal(answer.status, 303);
      const aliceTask = (await t.fhir.get(`Task?focus=ServiceRequest/${ids.alice}&code=triage-referral`)).body.entry[0].resource;
      assert.equal(triageStateOf(aliceTask), 'discharged');
      assert.equal(aliceTask.executionPeriod.end, '2026-01-07');
      assert.match((await get(t, '/discharge/board?status=discharged', coordinator)).text, /Alice Jones/);
    });

    it('a discharge coordinator refers a patient from their record page; the form checks every answer; a stay is referred once', async () => {
      let page = await get(t, '/hospital/patients/dora', coordinator);
      assert.equal(page.status, 200);
      assert.ok(page.html.includes('href="/discharge/referrals/new?patient=dora"'), 'the record page offers the referral');
      assert.ok(!(await get(t, `/council/people/alice`, worker)).html.includes('/discharge/referrals/new'), 'the council is not offered it');
      page = await get(t, '/discharge/referrals/new?patient=dora', coordinator);
      assert.equal(page.status, 200);
      const councils = [...page.html.matchAll(/<option value="([^"]*)"/g)].map((m) => m[1]);
      assert.deepEqual(councils, ['', 'LA777', 'LA888'], 'councils with an ODS code, not their teams');
      const csrf = csrfTokenIn(page.html);
      const submission = hidden(page.html, 'submission');
      assert.match(submission, /^[0-9a-f-]{36}$/, 'the form carries its own submission id');
      let answer = await post(t, '/discharge/referrals/new?patient=dora', coordinator, { _csrf: csrf, submission, 'expected-day': '30', 'expected-month': '2', 'expected-year': '2026', needs: 'Help to wash' });
      assert.equal(answer.status, 400);
      for (const field of ['council', 'pathway', 'expected-day', 'reason', 'consulted', 'consented', 'safeguarding']) assert.match(answer.html, new RegExp(`href="#${field}"`), field);
      assert.match(answer.html, /Help to wash<\/textarea>/, 'what was typed is kept');
      assert.equal(hidden(answer.html, 'submission'), submission, 'and keeps it when shown again with errors');
      const form = {
        _csrf: csrf, submission, council: 'LA777', pathway: '1', 'expected-day': '20', 'expected-month': '1', 'expected-year': '2026',
        reason: 'Lives alone; needs help at home after a fall', needs: 'Help to wash and dress', consulted: 'Y', consented: 'Y', safeguarding: 'N',
      };
      // A double click on "Send referral": both requests at once.
      const [first, second] = await Promise.all([1, 2].map(() => post(t, '/discharge/referrals/new?patient=dora', coordinator, form)));
      answer = first;
      assert.equal(answer.status, 303, answer.text);
      const id = /\/discharge\/referrals\/([^?]+)\?done=referred/.exec(answer.location ?? '')?.[1];
      assert.ok(id, `redirected to the new referral: ${answer.location}`);
      assert.equal(second.status, 303, second.text);
      assert.equal(second.location, answer.location, 'the second click leads to the same referral');
      const forStay = (await t.fhir.get('ServiceRequest?encounter=Encounter/dora-stay')).body.entry ?? [];
      assert.deepEqual(forStay.map((e: any) => e.resource.id), [id], 'one referral for the stay');
      const referral = (await t.fhir.get(`ServiceRequest/${id}`)).body;
      assert.equal(referral.subject.reference, 'Patient/dora');
      assert.equal(referral.encounter.reference, 'Encounter/dora-stay');
      assert.equal(referral.reasonCode[0].text, 'Lives alone; needs help at home after a fall');
      assert.equal(referral.performer[0].reference, 'Organization/la777');
      const consent = (await t.fhir.get(referral.supportingInfo[0].reference)).body;
      assert.deepEqual(consent.item.map((i: any) => [i.linkId, i.answer[0].valueCoding.code]), [['consulted', 'Y'], ['consented', 'Y'], ['safeguarding', 'N']]);
      const task = (await t.fhir.get(`Task?focus=ServiceRequest/${id}&code=triage-referral`)).body.entry[0].resource;
      assert.equal(triageStateOf(task), 'received');
      assert.ok(task.restriction.period.end, 'the council has a response deadline');
      page = await get(t, `/discharge/referrals/${id}?done=referred`, coordinator);
      assert.match(page.text, /The referral was sent to the council/);
      assert.match(page.text, /Pathway 1/);
      page = await get(t, '/discharge/referrals/new?patient=dora', coordinator);
      assert.match(page.text, /already has an open referral/);
      assert.ok(!page.html.includes('name="council"'), 'no second referral for the same stay');
      // A form opened before the referral was sent (another submission) is not sent on top of it.
      const late = await post(t, '/discharge/referrals/new?patient=dora', coordinator, { ...form, submission: randomUUID(), reason: 'Sent from an older tab' });
      assert.equal(late.status, 409);
      assert.match(late.text, /already has an open referral/);
      assert.equal((await t.fhir.get('ServiceRequest?encounter=Encounter/dora-stay')).body.entry.length, 1, 'still one referral for the stay');
      assert.ok((await get(t, '/discharge/referrals', worker)).html.includes(`/discharge/referrals/${id}"`), 'the council sees it in its queue');
      assert.equal((await get(t, '/discharge/referrals/new?patient=alice', worker)).status, 403, 'councils do not refer');
    });
    it('figures on the page: with two responses and two discharges, the medians are halfway between them', async () => {
      // Northgate's own referrals: received 09:00 on 2 February, answered after 1 and 3 hours; medically
      // ready 3 February, discharged 5 and 13 February (2 and 10 days delayed).
      const northgate = await ownHospital(t, 'RNG', 'Northgate Hospital');
      const ctx = t.server.discharge.context;
      for (const [person, hours, discharged] of [['ann', 1, '2026-02-05T10:00:00Z'], ['ben', 3, '2026-02-13T10:00:00Z']] as const) {
        const id = await northgate.refer(person, { medicallyReady: '2026-02-03', receivedAt: Date.parse('2026-02-02T09:00:00Z') });
        await triage({ ...ctx, now: () => Date.parse('2026-02-02T09:00:00Z') + hours * 3_600_000 }, id, { action: 'accept' });
        await recordDischarge(ctx, id, discharged);
      }
      const page = await get(t, '/discharge/metrics', await signIn(t, northgate.username));
      assert.equal(page.status, 200);
      // Council, responses, median, 90% within, longest.
      assert.match(page.text, /by council Council Responses Median hours 90% within \(hours\) Longest \(hours\) Eastshire Council 2 2 3 3 /);
      // Hospital, referrals, mean, median, longest.
      assert.match(page.text, /Delayed days by hospital .* Northgate Hospital 2 6 6 10 /);
      assert.match(page.text, /nearest actual response time/, 'the page says what "90% within" means');
    });

    it('a referral withdrawn or rejected after the person was medically ready keeps its delayed days, counted to that step, on the board, the CSV and the figures', async () => {
      // Southgate's own referrals, all medically ready: Dee discharged after 2 days; Eli rejected by the
      // council 4 days after (7 February); Fay withdrawn from the page today, 3 days after. Gus was never
      // medically ready and is withdrawn.
      const southgate = await ownHospital(t, 'RSG', 'Southgate Hospital');
      const ctx = t.server.discharge.context;
      const dee = await southgate.refer('dee', { medicallyReady: '2026-02-03' });
      await recordDischarge(ctx, dee, '2026-02-05T10:00:00Z');
      const eli = await southgate.refer('eli', { medicallyReady: '2026-02-03' });
      await triage({ ...ctx, now: () => Date.parse('2026-02-07T15:00:00Z') }, eli, { action: 'reject', reason: 'Not our area' });
      const threeDaysAgo = londonDay(Date.now() - 3 * 86_400_000);
      const fay = await southgate.refer('fay', { medicallyReady: threeDaysAgo });
      const gus = await southgate.refer('gus');
      await withdrawReferral(ctx, gus, 'Sent in error');
      const coordinator = await signIn(t, southgate.username);
      const page = await get(t, `/discharge/referrals/${fay}`, coordinator);
      const answer = await post(t, `/discharge/referrals/${fay}/withdraw`, coordinator, { _csrf: csrfTokenIn(page.html), version: hidden(page.html, 'version'), reasonCode: '11', reason: 'Going to live with her daughter' });
      assert.equal(answer.status, 303, answer.text);

      const withdrawn = await get(t, '/discharge/board?status=withdrawn', coordinator);
      assert.match(withdrawn.text, /fay Southgate Hospital .*Days delayed 3 Medically ready \d+ \w+ 2026; withdrawn \d+ \w+ 2026/, 'medically ready 3 days before the withdrawal');
      assert.match(withdrawn.text, /gus Southgate Hospital .*Days delayed Not medically ready/, 'never medically ready: said so');
      const rejected = await get(t, '/discharge/board?status=rejected', coordinator);
      assert.match(rejected.text, /eli Southgate Hospital .*Days delayed 4 Medically ready 3 February 2026; rejected 7 February 2026/, 'counted to the rejection, not to today');
      assert.match((await get(t, `/discharge/referrals/${eli}`, coordinator)).text, /Days delayed 4, to the day the referral was rejected/);

      const csv = (await (await fetch(`${t.url}/discharge/metrics.csv`, { headers: { cookie: coordinator } })).text()).trim().split('\r\n');
      const line = (id: string) => csv.find((l) => l.startsWith(`"${id}"`))!;
      assert.match(line(eli), /"2026-02-03",,"4"$/, 'Medically ready, Discharged (none), Days delayed');
      assert.match(line(fay), new RegExp(`"${threeDaysAgo}",,"3"$`));
      assert.match(line(gus), /,,,$/, 'never medically ready: no delay');

      // Delays of 2 (discharged), 4 (rejected) and 3 (withdrawn) days: referrals, mean, median, longest.
      const figures = await get(t, '/discharge/metrics', coordinator);
      assert.match(figures.text, /Delayed days by hospital Hospital Referrals Mean days Median days Longest Southgate Hospital 3 3 3 4 /);
      assert.match(figures.text, /or to the date the referral was withdrawn or rejected/, 'the page says which delays count');
    });

    it('the queue and the board still show an old open referral after more than a page of newer ones', async () => {
      // Eve's referral, received in January and still open; then copies of it, each with its triage Task, made
      // after hers: over one page of the record's search.
      await t.fhir.put('Patient/eve', { resourceType: 'Patient', id: 'eve', name: [{ text: 'Eve Early' }] });
      await t.fhir.put('Encounter/eve-stay', { resourceType: 'Encounter', id: 'eve-stay', status: 'in-progress', class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'IMP' }, subject: { reference: 'Patient/eve' }, serviceProvider: { reference: 'Organization/rhx' }, location: [{ location: { reference: 'Location/heron' } }] });
      const eve = (await createReferral(t.server.discharge.context, { patient: 'Patient/eve', encounter: 'Encounter/eve-stay', hospitalOds: HOSPITAL, councilOds: COUNCIL, ward: 'Location/heron', pathway: 1, reason: 'Needs support at home', receivedAt: Date.parse('2026-01-05T09:00:00Z') })).referral.id;
      const referral = (await t.fhir.get(`ServiceRequest/${eve}`)).body;
      const task = (await t.fhir.get(`Task?focus=ServiceRequest/${eve}&code=triage-referral`)).body.entry[0].resource;
      const { meta: _m, id: _i, encounter: _e, identifier: _r, ...referralCopy } = referral;
      const { meta: _tm, id: _ti, restriction: _d, identifier: _t, ...taskCopy } = task;
      const entry: unknown[] = [];
      for (let i = 0; i < REFERRAL_PAGE + 3; i++) {
        const fullUrl = `urn:uuid:${randomUUID()}`;
        entry.push({ fullUrl, resource: { ...referralCopy, authoredOn: '2026-03-01T09:00:00Z' }, request: { method: 'POST', url: 'ServiceRequest' } });
        entry.push({ resource: { ...taskCopy, focus: { reference: fullUrl } }, request: { method: 'POST', url: 'Task' } });
      }
      const written = await t.fhir.post('', { resourceType: 'Bundle', type: 'transaction', entry });
      assert.equal(written.status, 200);
      const queue = await get(t, '/discharge/referrals', worker);
      assert.ok(queue.html.includes(`/discharge/referrals/${eve}"`), 'the oldest open referral is still in the council\'s queue');
      const board = await get(t, '/discharge/board', coordinator);
      assert.ok(board.html.includes(eve), 'and on the hospital\'s board');
    });
  });
}
