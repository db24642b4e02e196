// The red bag pages over real HTTP on both engines, as signed-in people: a care home sends from a
// resident's page (prefilled; only reason, belongings and the confirmation typed), the ward sees it at
// once and acknowledges, a second nurse acting on the old version is told rather than overwriting, the
// discharge summary comes back to the home, which closes it; the PDF; other organisations are refused.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ENGINES } from '../support/server.ts';
import { stopOwnPostgres } from '../support/postgres.ts';
import { CARE_HOME_CARER, csrfTokenIn, startPortalServer, textOf, type PortalTestServer, type TestPerson } from './portalServer.ts';
import { pdfText } from '../redbag/pdfText.ts';

after(() => stopOwnPostgres());

const NURSE: TestPerson = { username: 'test.nurse', name: 'Nora Nurse', organisation: 'RX9', role: 'ward-nurse' };
const NURSE2: TestPerson = { username: 'test.nurse2', name: 'Ned Nurse', organisation: 'RX9', role: 'ward-nurse' };
const MANAGER: TestPerson = { username: 'test.manager', name: 'Mia Manager', organisation: 'VM101', role: 'care-home-manager' };
const OTHER_HOME: TestPerson = { username: 'test.other', name: 'Olive Other', organisation: 'VM102', role: 'care-home-staff' };

async function get(t: PortalTestServer, path: string, cookie: string) {
  const res = await fetch(t.url + path, { headers: { cookie }, redirect: 'manual' });
  return { status: res.status, location: res.headers.get('location'), type: res.headers.get('content-type'), body: Buffer.from(await res.arrayBuffer()) };
}
const html = async (t: PortalTestServer, path: string, cookie: string) => {
  const r = await get(t, path, cookie);
  return { ...r, html: r.body.toString('utf8') };
};

async function post(t: PortalTestServer, path: string, cookie: string, form: [string, string][]) {
  const res = await fetch(t.url + path, { method: 'POST', headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(form).toString(), redirect: 'manual' });
  return { status: res.status, location: res.headers.get('location'), html: await res.text() };
}

for (const engine of ENGINES) {
  describe(`red bag pages (${engine})`, () => {
    let t: PortalTestServer;
    const cookies: Record<string, string> = {};
    let resident: any;

    before(async () => {
      t = await startPortalServer(engine);
      for (const p of [CARE_HOME_CARER, NURSE, NURSE2, MANAGER, OTHER_HOME]) cookies[p.username] = (await t.signIn(p)).cookie;
      const encounters = await t.fhir('GET', 'Encounter', [['_count', '100']]);
      const inHospital = new Set(encounters.entry.map((e: any) => e.resource.subject.reference));
      const episodes = await t.fhir('GET', 'EpisodeOfCare', [['organization', 'Organization/demo-org-vm101'], ['status', 'active'], ['_include', 'EpisodeOfCare:patient']]);
      resident = episodes.entry.map((e: any) => e.resource).find((r: any) => r.resourceType === 'Patient' && !inHospital.has(`Patient/${r.id}`) && r.id !== 'demo-pat-vm101-02');
    });
    after(() => t.close());

    let taskPath = '';
    it('starts from the resident’s page, prefilled from the record, and lists what is missing before sending', async () => {
      const carer = cookies[CARE_HOME_CARER.username];
      const residentPage = await html(t, `/care-home/residents/${resident.id}`, carer);
      assert.ok(residentPage.html.includes(`/care-home/residents/${resident.id}/red-bag`), 'a way in from the resident’s page');
      const start = await html(t, `/care-home/residents/${resident.id}/red-bag`, carer);
      assert.equal(start.status, 200);
      const text = textOf(start.html);
      const meds = await t.fhir('GET', 'MedicationRequest', [['patient', resident.id], ['status', 'active']]);
      for (const m of meds.entry) assert.ok(text.includes(m.resource.medicationCodeableConcept.text), 'medicines prefilled');
      assert.match(text, /Northshire Hospitals NHS Foundation Trust/);
      assert.match(text, /more than 24 hours old/, 'the demo data’s observations are flagged as stale');
      const submission = /name="submission" value="([^"]+)"/.exec(start.html)?.[1];
      assert.match(submission ?? '', /^[0-9a-f-]{36}$/, 'the form carries its own submission id');
      const refused = await post(t, `/care-home/residents/${resident.id}/red-bag`, carer, [['_csrf', csrfTokenIn(start.html)], ['submission', submission!], ['destination', 'RX9'], ['belongings', 'Glasses']]);
      assert.equal(refused.status, 400);
      assert.match(textOf(refused.html), /There is a problem.*reason for transfer is missing.*has not confirmed/);
      assert.equal((await t.fhir('GET', 'Task', [['code', 'https://carebridge.example/CodeSystem/red-bag-task|'], ['_summary', 'count']])).total, 0, 'nothing sent half-built (the demo data has discharge Tasks of its own)');
      assert.ok(refused.html.includes(`name="submission" value="${submission}"`), 'and keeps it when shown again with errors');
      const form: [string, string][] = [
        ['_csrf', csrfTokenIn(start.html)], ['submission', submission!], ['destination', 'RX9'], ['reason', 'Fall at 06:10, new confusion'], ['belongings', 'Glasses'], ['belongings', 'Dentures'], ['belongingsOther', 'Blue cardigan'], ['attest', 'yes'],
      ];
      // A double click on "Send red bag to hospital": both requests at once.
      const [sent, again] = await Promise.all([1, 2].map(() => post(t, `/care-home/residents/${resident.id}/red-bag`, carer, form)));
      assert.equal(sent.status, 303, sent.html.slice(0, 300));
      assert.equal(again.status, 303, again.html.slice(0, 300));
      assert.equal(again.location, sent.location, 'the second click leads to the same red bag');
      const lifecycle = await t.fhir('GET', 'Task', [['patient', resident.id], ['code', 'https://carebridge.example/CodeSystem/red-bag-task|red-bag']]);
      assert.equal(lifecycle.entry?.length, 1, 'one red bag for the transfer');
      const reminders = await t.fhir('GET', 'Task', [['patient', resident.id], ['code', 'https://carebridge.example/CodeSystem/red-bag-task|acknowledge-red-bag']]);
      assert.equal(reminders.entry?.length, 1, 'one reminder to acknowledge it');
      const packs = await t.fhir('GET', 'DocumentReference', [['patient', resident.id], ['type', 'http://loinc.org|18761-7']]);
      assert.equal(packs.entry?.length, 1, 'one transfer pack');
      taskPath = sent.location!.split('?')[0];
      const page = await html(t, sent.location!, carer);
      assert.match(textOf(page.html), /Red bag sent to Northshire Hospitals NHS Foundation Trust.*Sent to hospital/);
      assert.match(textOf(page.html), /Blue cardigan/);
    });

    it('the ward sees it at once and acknowledges; a nurse acting on the old version is told, not overwritten', async () => {
      const list = await html(t, '/red-bag', cookies[NURSE.username]);
      assert.ok(list.html.includes(`href="${taskPath}"`), 'listed as incoming');
      const wards = await html(t, '/hospital', cookies[NURSE.username]);
      const incoming = wards.html.slice(wards.html.indexOf('id="incoming"'), wards.html.indexOf('All red bags for this hospital'));
      assert.ok(incoming.includes(`href="${taskPath}"`), 'the ward list\'s home page shows it under incoming transfers');
      assert.match(textOf(incoming), /Sent to hospital/);
      const first = await html(t, taskPath, cookies[NURSE.username]);
      const second = await html(t, taskPath, cookies[NURSE2.username]);
      const form = (page: string) => [['_csrf', csrfTokenIn(page)], ['step', 'received'], ['version', /name="version" value="(\d+)"/.exec(page)![1]]] as [string, string][];
      const ack = await post(t, taskPath, cookies[NURSE.username], form(first.html));
      assert.equal(ack.status, 303);
      const late = await post(t, taskPath, cookies[NURSE2.username], form(second.html));
      assert.equal(late.status, 409);
      assert.match(textOf(late.html), /Someone else updated this red bag/);
      const task = await t.fhir('GET', taskPath.replace('/red-bag/', 'Task/'));
      assert.equal(task.meta.versionId, '2');
      assert.match(task.note[1].text, /Received by the hospital, by Nora Nurse/);
      const after = await html(t, '/hospital', cookies[NURSE.username]);
      assert.match(textOf(after.html.slice(after.html.indexOf('id="incoming"'))), /Received/, 'still incoming until it is on a ward, now marked received');
    });

    it('the discharge summary returns to the home, which closes the red bag; print; outsiders refused', async () => {
      const nurse = cookies[NURSE.username];
      let page = await html(t, taskPath, nurse);
      const version = () => /name="version" value="(\d+)"/.exec(page.html)![1];
      const blank = await post(t, taskPath, nurse, [['_csrf', csrfTokenIn(page.html)], ['step', 'discharge-summary-attached'], ['version', version()], ['dischargeSummary', '']]);
      assert.equal(blank.status, 400);
      assert.match(textOf(blank.html), /Attach the discharge summary/);
      assert.equal((await post(t, taskPath, nurse, [['_csrf', csrfTokenIn(page.html)], ['step', 'discharge-summary-attached'], ['version', version()], ['dischargeSummary', 'UTI treated; new antibiotic for 3 days']])).status, 303);
      const home = cookies[CARE_HOME_CARER.username];
      page = await html(t, taskPath, home);
      assert.match(textOf(page.html), /Discharge summary UTI treated; new antibiotic for 3 days/);
      assert.equal((await post(t, taskPath, home, [['_csrf', csrfTokenIn(page.html)], ['step', 'returned'], ['version', version()]])).status, 303);
      page = await html(t, taskPath, cookies[MANAGER.username]);
      assert.equal((await post(t, taskPath, cookies[MANAGER.username], [['_csrf', csrfTokenIn(page.html)], ['step', 'closed'], ['version', version()]])).status, 303);
      page = await html(t, taskPath, home);
      assert.match(textOf(page.html), /Closed/);
      const pdf = await get(t, `${taskPath}/pdf`, home);
      assert.equal(pdf.type, 'application/pdf');
      const pages = await pdfText(pdf.body);
      assert.match(pages[0], new RegExp(resident.name[0].family));
      assert.match(pages.join('\n'), /Dentures/);
      // The printed pack leaves the record with the carer: audited as an export under the resident.
      const taskId = taskPath.split('/').pop()!;
      let exported: any[] = [];
      for (let i = 0; i < 100 && !exported.length; i++) {
        if (i) await new Promise((r) => setTimeout(r, 50));
        exported = ((await t.fhir('GET', 'AuditEvent', [['type', '110106'], ['patient', `Patient/${resident.id}`], ['entity', `Task/${taskId}`]])).entry ?? []).map((e: any) => e.resource);
      }
      assert.equal(exported.length, 1, 'one export for one print');
      assert.equal(Buffer.from(exported[0].entity.find((x: any) => x.query).query, 'base64').toString(), `red-bag-${taskId}.pdf`);
      assert.equal((await html(t, taskPath, cookies[OTHER_HOME.username])).status, 403, 'another care home');
      assert.equal((await get(t, `${taskPath}/pdf`, cookies[OTHER_HOME.username])).status, 403);
    });
  });
}
