// Administrators' changes made through the portal's admin pages land in the hash-chained audit trail: a
// privacy officer searching AuditEvent?type=110113 sees who added, disabled, enabled and revoked what, with
// no password or secret stored, and the chain stays intact. Refused attempts are there too: a change the
// access layer turned down (minor failure, with the reason) and one posted by someone whose role may not
// administer (serious failure, by that person).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ENGINES } from '../support/server.ts';
import { stopOwnPostgres } from '../support/postgres.ts';
import { handleFhirRequest } from '../../src/record/index.ts';
import { findUser, listClients, verifyAuditChain } from '../../src/access/index.ts';
import { ADMIN, BROKER, PRIVACY_OFFICER, WARD_NURSE, csrfTokenIn, startPortalServer, textOf, type PortalTestServer } from './portalServer.ts';
import { storedJournalTexts } from '../support/auditJournal.ts';

after(() => stopOwnPostgres());

async function get(t: PortalTestServer, path: string, cookie: string) {
  const res = await fetch(t.url + path, { headers: { cookie }, redirect: 'manual' });
  return { status: res.status, html: await res.text() };
}

async function post(t: PortalTestServer, path: string, cookie: string, form: Record<string, string>) {
  const res = await fetch(t.url + path, { method: 'POST', headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(form).toString(), redirect: 'manual' });
  return { status: res.status, html: await res.text() };
}

/** AuditEvents found by a FHIR search with the privacy officer's own access, oldest first. */
async function searchAsPrivacyOfficer(t: PortalTestServer, sessionId: string, query: [string, string][]): Promise<any[]> {
  const officer = await t.access.sessions.actor(sessionId);
  assert.ok(officer, 'the privacy officer is signed in');
  const res = await handleFhirRequest({ base: `${t.url}/fhir`, driver: t.driver, access: await t.access.controlFor(officer), services: t.access.services }, {
    method: 'GET', path: 'AuditEvent', query: [...query, ['_sort', 'date'], ['_count', '100']],
  });
  const body = typeof res.body === 'string' ? JSON.parse(res.body) : res.body;
  assert.equal(res.status, 200, JSON.stringify(body));
  return (body.entry ?? []).map((e: any) => e.resource);
}

for (const engine of ENGINES) {
  describe(`administrators' changes in the audit trail (${engine})`, () => {
    let t: PortalTestServer;
    before(async () => {
      t = await startPortalServer(engine);
    });
    after(() => t.close());

    it('lists each change made through the admin pages as a Security Alert by the administrator, with no secret stored', async () => {
      const officerSession = (await t.signIn(PRIVACY_OFFICER)).id;
      const adminSession = await t.signIn(ADMIN);
      const admin = adminSession.cookie;
      const adminId = (await t.access.sessions.actor(adminSession.id))!.userId;
      const csrf = csrfTokenIn((await get(t, '/admin/users/new', admin)).html);

      const addedUser = await post(t, '/admin/users', admin, { _csrf: csrf, username: 'audited.nurse', name: 'Audited Nurse', organisation1: 'RX9', role1: 'ward-nurse' });
      assert.equal(addedUser.status, 200);
      const password = /id="new-password">([^<]+)</.exec(addedUser.html)![1];
      assert.equal((await post(t, '/admin/users/audited.nurse/disable', admin, { _csrf: csrf })).status, 303);
      assert.equal((await post(t, '/admin/users/audited.nurse/enable', admin, { _csrf: csrf })).status, 303);
      const addedClient = await post(t, '/admin/clients', admin, { _csrf: csrf, name: 'Audited tablets', scopes: 'system/Patient.rs', organization: 'RX9' });
      const secret = /id="new-secret">([^<]+)</.exec(addedClient.html)![1];
      const clientId = /Client id:<\/strong> <code>([^<]+)</.exec(addedClient.html)![1];
      assert.equal((await post(t, `/admin/clients/${clientId}/revoke`, admin, { _csrf: csrf })).status, 303);
      assert.equal((await post(t, '/admin/organisations', admin, { _csrf: csrf, ods: 'AUD1', name: 'Audit Test Home', kind: 'care-home' })).status, 303);
      // Changes the access layer refuses changed nothing, but were attempted: both are audited as refused.
      assert.equal((await post(t, '/admin/clients', admin, { _csrf: csrf, name: 'Nothing', scopes: 'everything please' })).status, 400);
      assert.equal((await post(t, '/admin/organisations', admin, { _csrf: csrf, ods: 'rx9', name: 'Taken', kind: 'hospital' })).status, 400);

      let all: any[] = [];
      for (let i = 0; i < 100 && all.length < 8; i++) {
        await new Promise((r) => setTimeout(r, 50)); // the audit is written in batches
        all = await searchAsPrivacyOfficer(t, officerSession, [['type', '110113']]);
      }
      const events = all.filter((e) => e.outcome === '0');
      const refused = all.filter((e) => e.outcome !== '0');
      assert.deepEqual(refused.map((e) => [e.outcome, e.entity[0].name, e.agent[0].altId]), [['4', 'Nothing', adminId], ['4', 'RX9', adminId]], 'the refused client and organisation, by the administrator');
      assert.equal(refused[0].entity[0].what, undefined, 'a client refused has no id to name');
      assert.match(refused[0].outcomeDesc, /^system client added, refused: Nothing \(.*scope/i, 'with the reason');
      assert.match(refused[1].outcomeDesc, /^organisation added, refused: RX9 \(.*exists/i, 'with the reason');
      const summary = events.map((e) => [e.subtype[0].code, e.action, e.outcome, e.entity[0].name, e.entity[0].what?.identifier?.value]);
      const userId = events[0]?.entity[0].what?.identifier?.value;
      assert.ok(userId && userId !== 'audited.nurse', 'the new account is named by its id as well as its username');
      assert.deepEqual(summary, [
        ['110137', 'E', '0', 'audited.nurse', userId],
        ['110137', 'E', '0', 'audited.nurse', userId],
        ['110137', 'E', '0', 'audited.nurse', userId],
        ['110129', 'E', '0', clientId, clientId],
        ['110129', 'E', '0', clientId, clientId],
        ['110129', 'E', '0', 'AUD1', 'AUD1'],
      ]);
      assert.deepEqual(events.map((e) => e.outcomeDesc.split(':')[0]), ['user added', 'user disabled', 'user enabled', 'system client added', 'system client revoked', 'organisation added']);
      assert.equal(events[0].entity[0].description, 'ward-nurse at RX9', 'who was given what access');
      assert.match(events[3].entity[0].description, /scopes system\/Patient\.rs; organisation RX9/);
      for (const e of events) {
        assert.equal(e.type.code, '110113');
        assert.equal(e.type.system, 'http://dicom.nema.org/resources/ontology/DCM');
        assert.equal(e.agent.length, 1);
        assert.equal(e.agent[0].altId, adminId, 'the administrator made the change');
        assert.equal(e.agent[0].who.display, ADMIN.name);
        assert.equal(e.agent[0].requestor, true);
        assert.equal(e.agent[0].network.address, '127.0.0.1', 'from where');
      }
      assert.deepEqual((await searchAsPrivacyOfficer(t, officerSession, [['type', '110113'], ['subtype', '110129']])).filter((e) => e.outcome === '0').length, 3, 'searchable by subtype');
      assert.deepEqual((await searchAsPrivacyOfficer(t, officerSession, [['entity-name', 'audited.nurse']])).map((e) => e.outcomeDesc.split(':')[0]), ['user added', 'user disabled', 'user enabled'], 'and by whom was changed');
      assert.equal((await searchAsPrivacyOfficer(t, officerSession, [['altid', adminId], ['type', '110113']])).length, 8, 'and by the administrator, the refusals included');

      // The privacy officer's audit page, asked what the administrator did, says it in words.
      const page = await fetch(`${t.url}/privacy-officer/audit?user=${adminId}`, { headers: { cookie: `carebridge_session=${officerSession}` } });
      const text = textOf(await page.text());
      assert.match(text, /User added: audited\.nurse \(ward-nurse at RX9\)/);
      assert.match(text, new RegExp(`System client revoked: ${clientId}`));

      // Nothing stored anywhere in the trail holds the password or the secret.
      const stored = (await storedJournalTexts(t.driver)).join('\n');
      assert.ok(stored.includes('audited.nurse'), 'the stored trail was read');
      assert.ok(!stored.includes(password), 'no password stored');
      assert.ok(!stored.includes(secret), 'no client secret stored');
      const chain = await verifyAuditChain(t.driver);
      assert.equal(chain.intact, true, JSON.stringify(chain));
    });

    it('records as refused a change posted by someone who may not administer, and an administrator disabling their own account', async () => {
      const officerSession = (await t.signIn(PRIVACY_OFFICER)).id;
      const nurseSession = await t.signIn(WARD_NURSE);
      const nurseId = (await t.access.sessions.actor(nurseSession.id))!.userId;
      const nurseCsrf = /_csrf=([^"&]+)/.exec((await get(t, '/hospital', nurseSession.cookie)).html)![1]; // the sign-out form's token
      const attempt = await post(t, '/admin/users', nurseSession.cookie, { _csrf: nurseCsrf, username: 'sneaky.admin', name: 'Sneaky', role1: 'admin' });
      assert.equal(attempt.status, 403);
      assert.equal(await findUser(t.driver, 'sneaky.admin'), undefined, 'no account was made');

      const adminSession = await t.signIn(ADMIN);
      const adminId = (await t.access.sessions.actor(adminSession.id))!.userId;
      const csrf = csrfTokenIn((await get(t, '/admin/users/new', adminSession.cookie)).html);
      assert.equal((await post(t, `/admin/users/${ADMIN.username}/disable`, adminSession.cookie, { _csrf: csrf })).status, 403);

      let refused: any[] = [];
      for (let i = 0; i < 100 && refused.length < 2; i++) {
        await new Promise((r) => setTimeout(r, 50));
        refused = (await searchAsPrivacyOfficer(t, officerSession, [['type', '110113']])).filter((e) => e.outcome !== '0' && ['sneaky.admin', ADMIN.username].includes(e.entity[0].name));
      }
      assert.deepEqual(refused.map((e) => [e.outcome, e.outcomeDesc.split(':')[0], e.entity[0].name, e.agent[0].altId]), [
        ['8', 'user added, refused', 'sneaky.admin', nurseId],
        ['4', 'user disabled, refused', ADMIN.username, adminId],
      ]);
      assert.match(refused[0].outcomeDesc, /for administrators/, 'why: the role');
      assert.match(refused[1].outcomeDesc, /your own account/, 'why: their own account');
      const page = textOf(await (await fetch(`${t.url}/privacy-officer/audit?user=${nurseId}`, { headers: { cookie: `carebridge_session=${officerSession}` } })).text());
      assert.match(page, /User added, refused: sneaky\.admin/, 'the audit page says it in words');
      const chain = await verifyAuditChain(t.driver);
      assert.equal(chain.intact, true, JSON.stringify(chain));
    });

    it('"Sign out everywhere" ends the person\'s portal sessions (their app sign-ins with them), leaves the account enabled, and is audited', async () => {
      const brokerSession = await t.signIn(BROKER);
      const brokerId = (await t.access.sessions.actor(brokerSession.id))!.userId;
      assert.equal((await get(t, '/council', brokerSession.cookie)).status, 200, 'signed in');
      const adminSession = await t.signIn(ADMIN);
      const list = (await get(t, '/admin/users', adminSession.cookie)).html;
      assert.match(textOf(list), new RegExp(`Sign out everywhere ${BROKER.username.replace('.', '\\.')}`), 'a button for each enabled account');
      const done = await post(t, `/admin/users/${BROKER.username}/sign-out`, adminSession.cookie, { _csrf: csrfTokenIn(list) });
      assert.equal(done.status, 303);
      assert.match(textOf((await get(t, '/admin/users?done=signed-out', adminSession.cookie)).html), /Signed out everywhere: their sessions and apps' sign-ins have ended/);
      const after = await get(t, '/council', brokerSession.cookie);
      assert.notEqual(after.status, 200, 'the broker\'s session has ended');
      assert.equal((await findUser(t.driver, BROKER.username))?.disabled, false, 'the account stays enabled');
      assert.equal((await get(t, '/council', (await t.signIn(BROKER)).cookie)).status, 200, 'and they can sign in again');

      const officerSession = (await t.signIn(PRIVACY_OFFICER)).id;
      let events: any[] = [];
      for (let i = 0; i < 100 && !events.length; i++) {
        await new Promise((r) => setTimeout(r, 50));
        events = (await searchAsPrivacyOfficer(t, officerSession, [['type', '110113']])).filter((e) => e.outcomeDesc.startsWith('signed out everywhere'));
      }
      assert.deepEqual(events.map((e) => [e.outcome, e.entity[0].name, e.entity[0].what.identifier.value]), [['0', BROKER.username, brokerId]], 'the account, by name and id');
    });

    it('one "Add client" form sent twice, at once or again later, adds one client and says so instead of showing a second secret', async () => {
      const admin = (await t.signIn(ADMIN)).cookie;
      const form = (await get(t, '/admin/clients/new', admin)).html;
      const submission = /name="submission" value="([^"]+)"/.exec(form)![1];
      const fields = { _csrf: csrfTokenIn(form), submission, name: 'Twice-clicked tablets', scopes: 'system/Patient.rs' };
      const answers = await Promise.all([post(t, '/admin/clients', admin, fields), post(t, '/admin/clients', admin, fields)]);
      const again = await post(t, '/admin/clients', admin, fields);

      const clients = (await listClients(t.driver)).filter((c) => c.name === 'Twice-clicked tablets');
      assert.deepEqual(clients.map((c) => c.clientId), [submission], 'one client, whose id is the form\'s');
      for (const a of [...answers, again]) assert.equal(a.status, 200);
      const withSecret = [...answers, again].filter((a) => /id="new-secret"/.test(a.html));
      assert.equal(withSecret.length, 1, 'the secret is shown once');
      for (const a of [...answers, again].filter((x) => !withSecret.includes(x))) {
        assert.match(textOf(a.html), /This form was sent more than once; its first sending added the client, and nothing more was added\./);
        assert.match(textOf(a.html), new RegExp(`If nobody copied it, revoke client ${submission} and add another`));
      }
    });

    it('a locked-out user is given a new password, shown once: it signs them in, the old one no longer does, and the change is audited', async () => {
      const officerSession = (await t.signIn(PRIVACY_OFFICER)).id;
      const adminSession = await t.signIn(ADMIN);
      const admin = adminSession.cookie;
      const adminId = (await t.access.sessions.actor(adminSession.id))!.userId;
      const passwordSignIn = async (username: string, password: string) => {
        const form = await fetch(`${t.url}/sign-in`);
        const cookie = form.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ');
        const res = await fetch(`${t.url}/sign-in`, { method: 'POST', redirect: 'manual', headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ _csrf: csrfTokenIn(await form.text()), username, password }).toString() });
        return res.status === 303 ? 'signed in' : 'refused';
      };
      const csrf = csrfTokenIn((await get(t, '/admin/users/new', admin)).html);
      const added = await post(t, '/admin/users', admin, { _csrf: csrf, username: 'forgetful.nurse', name: 'Forgetful Nurse', organisation1: 'RX9', role1: 'ward-nurse' });
      const first = /id="new-password">([^<]+)</.exec(added.html)![1];
      const twice = await post(t, '/admin/users', admin, { _csrf: csrf, username: 'forgetful.nurse', name: 'Forgetful Nurse', organisation1: 'RX9', role1: 'ward-nurse' });
      assert.equal(twice.status, 400);
      assert.match(textOf(twice.html), /A user 'forgetful\.nurse' already exists\. If you added them just now and did not see their password, give them a new one from the list of users\./);

      for (let i = 0; i < 5; i++) assert.equal(await passwordSignIn('forgetful.nurse', 'not the password at all'), 'refused');
      assert.equal(await passwordSignIn('forgetful.nurse', first), 'refused', 'locked out');
      assert.match(textOf((await get(t, '/admin/users', admin)).html), /forgetful\.nurse Name Forgetful Nurse .*? Status Locked/);

      const renewed = await post(t, '/admin/users/forgetful.nurse/new-password', admin, { _csrf: csrf });
      assert.equal(renewed.status, 200);
      assert.match(textOf(renewed.html), /New password for forgetful\.nurse Give them this password in a safe way\. It is shown only now/);
      const second = /id="new-password">([^<]+)</.exec(renewed.html)![1];
      assert.notEqual(second, first);
      assert.equal(await passwordSignIn('forgetful.nurse', first), 'refused', 'the old password is gone');
      assert.equal(await passwordSignIn('forgetful.nurse', second), 'signed in', 'the new one works at once: the lockout is lifted');
      assert.equal((await post(t, '/admin/users/nobody.here/new-password', admin, { _csrf: csrf })).status, 404);

      let set: any[] = [];
      for (let i = 0; i < 100 && !set.length; i++) {
        await new Promise((r) => setTimeout(r, 50)); // the audit is written in batches
        set = (await searchAsPrivacyOfficer(t, officerSession, [['type', '110113']])).filter((e) => e.outcomeDesc.startsWith('password set'));
      }
      assert.deepEqual(set.map((e) => [e.outcome, e.entity[0].name, e.agent[0].altId]), [['0', 'forgetful.nurse', adminId]]);
      assert.doesNotMatch(JSON.stringify(set), new RegExp(second), 'no password in the audit trail');
    });
  });
}
