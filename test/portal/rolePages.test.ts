// The hospital, council and administrator pages over real HTTP, for people signed in through the sign-in
// form, with the record's own access checks: the ward list (by ward, NEWS2, alerts), the council's
// referrals, the shared person summary with the parts a role may not read marked as withheld, break-glass
// outside a relationship, and the admin forms (checks, what was typed kept, secrets shown once, CSRF).
// Both storage engines.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ENGINES } from '../support/server.ts';
import { stopOwnPostgres } from '../support/postgres.ts';
import { ADMIN, BROKER, CARE_HOME_CARER, SOCIAL_WORKER, WARD_NURSE, csrfTokenIn, startPortalServer, textOf, type PortalTestServer } from './portalServer.ts';

after(() => stopOwnPostgres());


async function get(t: PortalTestServer, path: string, cookie: string) {
  const res = await fetch(t.url + path, { headers: { cookie }, redirect: 'manual' });
  return { status: res.status, location: res.headers.get('location'), html: await res.text() };
}

async function post(t: PortalTestServer, path: string, cookie: string, form: Record<string, string>) {
  const res = await fetch(t.url + path, { method: 'POST', headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(form).toString(), redirect: 'manual' });
  return { status: res.status, location: res.headers.get('location'), html: await res.text() };
}

/** Signs in through the form with a password, as a person would; the session cookie, or undefined when refused. */
async function signInWith(t: PortalTestServer, username: string, password: string): Promise<string | undefined> {
  const form = await fetch(`${t.url}/sign-in`);
  const cookie = form.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ');
  const res = await fetch(`${t.url}/sign-in`, { method: 'POST', redirect: 'manual', headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ _csrf: csrfTokenIn(await form.text()), username, password }).toString() });
  const id = /carebridge_session=([^;]+)/.exec(res.headers.getSetCookie().join('\n'))?.[1];
  return res.status === 303 && id ? `carebridge_session=${id}` : undefined;
}

for (const engine of ENGINES) {
  describe(`hospital, council and admin pages (${engine})`, () => {
    let t: PortalTestServer;
    let inpatients: { id: string; ward: string; name: string }[];

    before(async () => {
      t = await startPortalServer(engine);
      const encounters = await t.fhir('GET', 'Encounter', [['status', 'in-progress'], ['_include', 'Encounter:subject']]);
      const patients = new Map(encounters.entry.filter((e: any) => e.resource.resourceType === 'Patient').map((e: any) => [e.resource.id, e.resource]));
      inpatients = encounters.entry.filter((e: any) => e.resource.resourceType === 'Encounter').map((e: any) => {
        const id = e.resource.subject.reference.replace('Patient/', '');
        return { id, ward: e.resource.location[0].location.display, name: (patients.get(id) as any).name[0].family };
      });
    });
    after(() => t.close());

    it('starts each role on its own home page', async () => {
      for (const [person, path] of [[WARD_NURSE, '/hospital'], [SOCIAL_WORKER, '/council'], [BROKER, '/council'], [ADMIN, '/admin']] as const) {
        const { cookie } = await t.signIn(person);
        assert.equal((await get(t, '/', cookie)).location, path, person.role);
        assert.equal((await get(t, path, cookie)).status, 200, person.role);
      }
      const carer = (await t.signIn(CARE_HOME_CARER)).cookie;
      for (const path of ['/hospital', '/council', '/admin/users']) assert.equal((await get(t, path, carer)).status, 403, `care-home staff kept out of ${path}`);
    });

    it('gives each role header links to its own pages, each of which opens, with the current one marked', async () => {
      const expected = [
        [WARD_NURSE, '/hospital', ['Ward list', 'Red bags', 'Discharge board', 'Discharge figures']],
        [SOCIAL_WORKER, '/council', ['People referred', 'Referral queue', 'Discharge figures']],
        [ADMIN, '/admin/users', ['People', 'System clients', 'Organisations', 'Dead letters']],
        [CARE_HOME_CARER, '/care-home', ['Residents', 'Red bags']],
      ] as const;
      for (const [person, start, texts] of expected) {
        const { cookie } = await t.signIn(person);
        const page = await get(t, start, cookie);
        const nav = /<nav class="nhsuk-header__navigation"[^>]*aria-label="Your pages"[\s\S]*?<\/nav>/.exec(page.html)?.[0] ?? '';
        const links = [...nav.matchAll(/<a[^>]*href="([^"]+)"[^>]*>([\s\S]*?)<\/a>/g)].map((m) => ({ href: m[1]!, text: textOf(m[2]!).trim(), current: /aria-current="page"/.test(m[0]) }));
        assert.deepEqual(links.map((l) => l.text), [...texts], person.role);
        assert.deepEqual(links.filter((l) => l.current).map((l) => l.href), [start], `${person.role}: the page shown is marked current`);
        for (const link of links) assert.equal((await get(t, link.href, cookie)).status, 200, `${person.role} opens ${link.href}`);
      }
    });

    it('lists the hospital’s inpatients by ward, with their latest NEWS2 and alerts, and no one else', async () => {
      assert.ok(inpatients.length >= 2, 'the demo data has people in hospital');
      const { cookie } = await t.signIn(WARD_NURSE);
      const page = await get(t, '/hospital', cookie);
      assert.equal(page.status, 200);
      const text = textOf(page.html);
      assert.match(text, /Northshire Hospitals NHS Foundation Trust Ward list/);
      assert.match(text, new RegExp(`${inpatients.length} patients in hospital now`));
      for (const p of inpatients) {
        assert.ok(page.html.includes(`/hospital/patients/${p.id}"`), `${p.id} listed`);
        const wardHeading = text.indexOf(` ${p.ward} `);
        assert.ok(wardHeading >= 0 && wardHeading < text.indexOf(p.name), `${p.name} under ${p.ward}`);
      }
      const latest = await t.fhir('GET', 'Observation', [['patient', inpatients[0].id], ['code', 'http://snomed.info/sct|1104051000000101'], ['_sort', '-date'], ['_count', '1']]);
      const row = page.html.slice(page.html.indexOf(`/hospital/patients/${inpatients[0].id}"`)).split('</tr>')[0];
      assert.match(textOf(row), new RegExp(`Latest NEWS2 ${latest.entry[0].resource.valueInteger} (low|low-medium|medium|high)`));
      assert.ok(!page.html.includes('demo-pat-vm101-01"') || inpatients.some((p) => p.id === 'demo-pat-vm101-01'), 'residents who are not in hospital are not listed');
    });

    it('shows an inpatient’s shared record; a person outside the hospital gets the break-glass prompt', async () => {
      const { cookie } = await t.signIn(WARD_NURSE);
      const page = await get(t, `/hospital/patients/${inpatients[0].id}`, cookie);
      assert.equal(page.status, 200);
      const text = textOf(page.html);
      for (const heading of ['Alerts', 'Personal details', 'Latest observations', 'Medicines', 'Allergies and adverse reactions', 'Conditions', 'Care plan', 'Recent events']) assert.ok(text.includes(heading), heading);
      assert.ok(page.html.includes('href="/hospital"'), 'the breadcrumb leads back to the ward list');
      assert.ok(!text.includes('Record NEWS2 observations'), 'the care home’s NEWS2 form is not offered here');
      const outsider = (await t.fhir('GET', 'EpisodeOfCare', [['status', 'active'], ['_count', '100']])).entry
        .map((e: any) => e.resource.patient.reference.replace('Patient/', ''))
        .find((id: string) => !inpatients.some((p) => p.id === id));
      const refused = await get(t, `/hospital/patients/${outsider}`, cookie);
      assert.equal(refused.status, 403);
      assert.match(textOf(refused.html), /You do not have a care relationship with this person/);
      assert.ok(refused.html.includes(`action="/hospital/patients/${outsider}/break-glass"`));
      const granted = await post(t, `/hospital/patients/${outsider}/break-glass`, cookie, { _csrf: csrfTokenIn(refused.html), reasonCode: 'emergency', reason: 'Brought in by ambulance, not yet admitted' });
      assert.equal(granted.status, 303);
      assert.match(textOf((await get(t, granted.location!, cookie)).html), /You are viewing this record using break-glass: Brought in by ambulance/);
    });

    it('lists the people referred to the council; a broker’s summary marks what the role may not read, never as empty', async () => {
      const social = (await t.signIn(SOCIAL_WORKER)).cookie;
      const list = await get(t, '/council', social);
      assert.equal(list.status, 200);
      const referrals = await t.fhir('GET', 'ServiceRequest', [['performer', 'Organization/demo-org-la918'], ['status', 'active']]);
      assert.ok(referrals.total > 0);
      for (const e of referrals.entry) assert.ok(list.html.includes(`/council/people/${e.resource.subject.reference.replace('Patient/', '')}"`));
      assert.match(textOf(list.html), /Discharge referral: assessment for care and support/);
      const someone = referrals.entry[0].resource.subject.reference.replace('Patient/', '');
      const full = textOf((await get(t, `/council/people/${someone}`, social)).html);
      assert.doesNotMatch(full, /Not shown: your role/);
      const broker = (await t.signIn(BROKER)).cookie;
      const page = await get(t, `/council/people/${someone}`, broker);
      assert.equal(page.status, 200);
      const text = textOf(page.html);
      for (const section of ['Latest observations', 'Medicines', 'Allergies and adverse reactions', 'Conditions']) {
        assert.match(text, new RegExp(`${section} Not shown: your role does not give you access to this part of the record`), section);
      }
      assert.doesNotMatch(text, /No allergies recorded|No current medicines recorded|No conditions recorded/);
      assert.match(text, /DNACPR decisions are not shown/);
    });

    it('adds a user: each problem in the error summary with what was typed kept, nothing made; then the password once, and it signs in', async () => {
      const admin = (await t.signIn(ADMIN)).cookie;
      const form = await get(t, '/admin/users/new', admin);
      const csrf = csrfTokenIn(form.html);
      const bad = await post(t, '/admin/users', admin, { _csrf: csrf, username: 'x', name: '', organisation1: 'RX9', role1: '', fhirUser: 'Doctor/1' });
      assert.equal(bad.status, 400);
      const text = textOf(bad.html);
      for (const message of ['The username must be 3 to 64 letters', 'Enter the person’s name', 'Select the role held at RX9', 'The record link must look like']) assert.ok(text.includes(message), message);
      assert.ok(bad.html.includes('href="#role1"') && bad.html.includes('value="Doctor/1"') && /<option value="RX9"\s+selected>/.test(bad.html), 'summary links to fields; typed values kept');
      const carerWithOrg = await post(t, '/admin/users', admin, { _csrf: csrf, username: 'new.carer', name: 'New Carer', organisation1: 'VM101', role1: 'carer' });
      assert.match(textOf(carerWithOrg.html), /A carer acts for themself: choose no organisation/);
      const unknownLink = await post(t, '/admin/users', admin, { _csrf: csrf, username: 'new.nurse', name: 'New Nurse', organisation1: 'RX9', role1: 'ward-nurse', fhirUser: 'Practitioner/nobody-here' });
      assert.equal(unknownLink.status, 400);
      assert.match(textOf(unknownLink.html), /Practitioner\/nobody-here is not in the record/);
      assert.ok(unknownLink.html.includes('href="#fhirUser"'), 'src/access’s refusal is placed against its field');
      assert.equal(await t.access.people.signIn({ username: 'new.nurse', password: 'x', address: '127.0.0.1' }).then((r) => r.ok), false);

      const added = await post(t, '/admin/users', admin, { _csrf: csrf, username: 'new.nurse', name: 'New Nurse', organisation1: 'RX9', role1: 'ward-nurse', organisation2: 'RX9', role2: 'discharge-coordinator' });
      assert.equal(added.status, 200);
      const password = /id="new-password">([^<]+)</.exec(added.html)?.[1];
      assert.ok(password && password.length >= 12, 'the password is shown');
      assert.match(textOf(added.html), /new\.nurse Name New Nurse Organisations and roles Discharge coordinator at Northshire Hospitals NHS Foundation Trust; Ward nurse at Northshire/);
      assert.ok(!(await get(t, '/admin/users', admin)).html.includes(password), 'and only once');
      const signIn = await t.access.people.signIn({ username: 'new.nurse', password, address: '127.0.0.1' });
      assert.ok(signIn.ok && signIn.memberships.length === 2);
    });

    it('disables and enables an account (its sessions end), and refuses an administrator disabling themself', async () => {
      const admin = (await t.signIn(ADMIN)).cookie;
      const nurse = (await t.signIn(WARD_NURSE)).cookie;
      const csrf = csrfTokenIn((await get(t, '/admin/users', admin)).html);
      const noToken = await post(t, `/admin/users/${WARD_NURSE.username}/disable`, admin, {});
      assert.equal(noToken.status, 403);
      assert.equal((await get(t, '/hospital', nurse)).status, 200, 'nothing changed without the CSRF token');
      const done = await post(t, `/admin/users/${WARD_NURSE.username}/disable`, admin, { _csrf: csrf });
      assert.equal(done.status, 303);
      assert.match(textOf((await get(t, done.location!, admin)).html), /Account disabled: its sessions and apps' sign-ins have ended .*test\.nurse Name Test Nurse .* Status Disabled Action Enable test\.nurse/);
      assert.equal((await get(t, '/hospital', nurse)).location, '/sign-in?reason=expired');
      assert.equal(await signInWith(t, WARD_NURSE.username, 'synthetic-test-passphrase-7'), undefined);
      assert.equal((await post(t, `/admin/users/${WARD_NURSE.username}/enable`, admin, { _csrf: csrf })).status, 303);
      assert.ok(await signInWith(t, WARD_NURSE.username, 'synthetic-test-passphrase-7'));
      const self = await post(t, `/admin/users/${ADMIN.username}/disable`, admin, { _csrf: csrf });
      assert.equal(self.status, 403);
      assert.match(textOf(self.html), /You cannot disable your own account/);
      assert.equal((await post(t, '/admin/users/nobody.at.all/disable', admin, { _csrf: csrf })).status, 404);
    });

    it('adds a system client showing its secret once, refuses scopes that grant nothing, and revokes it', async () => {
      const admin = (await t.signIn(ADMIN)).cookie;
      const csrf = csrfTokenIn((await get(t, '/admin/clients/new', admin)).html);
      const before = (await get(t, "/admin/clients", admin)).html.match(/<tr role="row" class="nhsuk-table__row">/g)?.length ?? 0;
      const bad = await post(t, '/admin/clients', admin, { _csrf: csrf, name: 'Ward tablets', scopes: 'everything please' });
      assert.equal(bad.status, 400);
      assert.ok(bad.html.includes('href="#scopes"') && bad.html.includes('value="Ward tablets"'));
      assert.match(textOf(bad.html), /grants nothing/);
      const added = await post(t, '/admin/clients', admin, { _csrf: csrf, name: 'Ward tablets', scopes: 'system/Patient.rs system/Observation.rs', organization: 'RX9' });
      assert.equal(added.status, 200);
      const secret = /id="new-secret">([^<]+)</.exec(added.html)?.[1];
      assert.ok(secret && secret.length >= 20, 'the secret is shown');
      const list = await get(t, '/admin/clients', admin);
      assert.ok(!list.html.includes(secret), 'and only once');
      assert.equal(list.html.match(/<tr role="row" class="nhsuk-table__row">/g)?.length, before + 1);
      const clientId = /Client id:<\/strong> <code>([^<]+)</.exec(added.html)![1];
      const revoked = await post(t, `/admin/clients/${clientId}/revoke`, admin, { _csrf: csrf });
      assert.equal(revoked.status, 303);
      const after = textOf((await get(t, revoked.location!, admin)).html);
      assert.match(after, new RegExp(`Client revoked: it can get no more tokens .*Ward tablets \\(RX9\\) Client id ${clientId} Scopes system/Patient.rs system/Observation.rs .* Status Revoked`));
    });

    it('adds an organisation; a bad or taken ODS code is explained against its field', async () => {
      const admin = (await t.signIn(ADMIN)).cookie;
      const csrf = csrfTokenIn((await get(t, '/admin/organisations/new', admin)).html);
      const bad = await post(t, '/admin/organisations', admin, { _csrf: csrf, ods: 'R!', name: 'Somewhere' });
      assert.equal(bad.status, 400);
      assert.match(textOf(bad.html), /There is a problem The ODS code must be 3 to 10 letters and digits, like RX9 or VM101 Select what kind of organisation it is/);
      assert.ok(bad.html.includes('value="R!"') && bad.html.includes('value="Somewhere"'));
      const taken = await post(t, '/admin/organisations', admin, { _csrf: csrf, ods: 'rx9', name: 'Another trust', kind: 'hospital' });
      assert.equal(taken.status, 400);
      assert.match(textOf(taken.html), /An organisation RX9 already exists/);
      assert.ok(taken.html.includes('href="#ods"'));
      const added = await post(t, '/admin/organisations', admin, { _csrf: csrf, ods: 'vm777', name: 'Elm Court Care Home', kind: 'care-home' });
      assert.equal(added.status, 303);
      assert.match(textOf((await get(t, added.location!, admin)).html), /Organisation added .*VM777 Elm Court Care Home Care home/);
    });
  });
}
