// Administrators' changes made through the portal's admin pages land in the hash-chained audit trail: a
// privacy officer searching AuditEvent?type=110113 sees who added, disabled, enabled and revoked what, with
// no password or secret stored, and the chain stays intact; refused changes record nothing.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ENGINES } from '../support/server.ts';
import { stopOwnPostgres } from '../support/postgres.ts';
import { handleFhirRequest } from '../../src/record/index.ts';
import { verifyAuditChain } from '../../src/access/index.ts';
import { ADMIN, PRIVACY_OFFICER, csrfTokenIn, startPortalServer, textOf, type PortalTestServer } from './portalServer.ts';

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
      // Refused changes changed nothing, so they are not administrators' changes to audit.
      assert.equal((await post(t, '/admin/organisations', admin, { _csrf: csrf, ods: 'rx9', name: 'Taken', kind: 'hospital' })).status, 400);
      assert.equal((await post(t, '/admin/clients', admin, { _csrf: csrf, name: 'Nothing', scopes: 'everything please' })).status, 400);

      let events: any[] = [];
      for (let i = 0; i < 100 && events.length < 6; i++) {
        await new Promise((r) => setTimeout(r, 50)); // the audit is written in batches
        events = await searchAsPrivacyOfficer(t, officerSession, [['type', '110113']]);
      }
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
      assert.deepEqual((await searchAsPrivacyOfficer(t, officerSession, [['type', '110113'], ['subtype', '110129']])).length, 3, 'searchable by subtype');
      assert.deepEqual((await searchAsPrivacyOfficer(t, officerSession, [['entity-name', 'audited.nurse']])).map((e) => e.outcomeDesc.split(':')[0]), ['user added', 'user disabled', 'user enabled'], 'and by whom was changed');
      assert.equal((await searchAsPrivacyOfficer(t, officerSession, [['altid', adminId], ['type', '110113']])).length, 6, 'and by the administrator');

      // The privacy officer's audit page, asked what the administrator did, says it in words.
      const page = await fetch(`${t.url}/privacy-officer/audit?user=${adminId}`, { headers: { cookie: `carebridge_session=${officerSession}` } });
      const text = textOf(await page.text());
      assert.match(text, /User added: audited\.nurse \(ward-nurse at RX9\)/);
      assert.match(text, new RegExp(`System client revoked: ${clientId}`));

      // Nothing stored anywhere in the trail holds the password or the secret.
      const stored = [
        ...(await t.driver.all<{ content: string }>('SELECT content FROM audit_journal')).map((r) => r.content),
        ...(await t.driver.all<{ content: string }>('SELECT content FROM audit_part')).map((r) => r.content),
      ].join('\n');
      assert.ok(stored.includes('audited.nurse'), 'the stored trail was read');
      assert.ok(!stored.includes(password), 'no password stored');
      assert.ok(!stored.includes(secret), 'no client secret stored');
      const chain = await verifyAuditChain(t.driver);
      assert.equal(chain.intact, true, JSON.stringify(chain));
    });
  });
}
