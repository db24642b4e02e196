// Sign-in through a real OpenID Connect provider (oidc-provider on a loopback port) on both engines:
// authorization code with PKCE, state and nonce; only subjects linked to a local user get in.
import { auditEventService } from '../../src/access/audit/search.ts';
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { openRecordStore, handleFhirRequest, UNRESTRICTED, type SqlDriver } from '../../src/record/index.ts';
import { addOrganisation, addUser, disableUser, setUpAccess, type Access } from '../../src/access/index.ts';
import { ENGINES, testDatabase } from '../support/server.ts';
import { stopOwnPostgres } from '../support/postgres.ts';
import { startIdentityProvider, type TestIdentityProvider } from '../support/identityProvider.ts';
import { loadServerConfig } from '../../src/config.ts';

let idp: TestIdentityProvider;
before(async () => {
  idp = await startIdentityProvider();
});
after(async () => {
  await idp?.close();
  await stopOwnPostgres();
});

const ADDRESS = '192.0.2.20';

describe('people settings from the environment', () => {
  it('refuses half an OpenID Connect configuration and out-of-range lockout settings, naming the variable', () => {
    assert.throws(() => loadServerConfig({}, { CAREBRIDGE_OIDC_ISSUER: 'https://login.example' }), /Set all of CAREBRIDGE_OIDC_ISSUER, CAREBRIDGE_OIDC_CLIENT_ID and CAREBRIDGE_OIDC_CLIENT_SECRET, or none\./);
    assert.throws(() => loadServerConfig({}, { CAREBRIDGE_LOCKOUT_FAILURES: '0' }), /CAREBRIDGE_LOCKOUT_FAILURES must be a whole number from 1 to 100, not '0'\./);
    assert.throws(() => loadServerConfig({}, { CAREBRIDGE_SESSION_IDLE_MINUTES: 'soon' }), /CAREBRIDGE_SESSION_IDLE_MINUTES must be a whole number/);
    const defaults = loadServerConfig({ baseUrl: 'https://carebridge.example/fhir' }, { CAREBRIDGE_OIDC_ISSUER: 'https://login.example', CAREBRIDGE_OIDC_CLIENT_ID: 'c', CAREBRIDGE_OIDC_CLIENT_SECRET: 's' }).people;
    assert.deepEqual(defaults, {
      lockoutFailures: 5, lockoutMinutes: 15, sessionIdleMinutes: 30, sessionMaxHours: 12,
      oidc: { issuer: 'https://login.example', clientId: 'c', clientSecret: 's', redirectUri: 'https://carebridge.example/auth/oidc/callback' },
    });
  });
});

for (const engine of ENGINES) {
  describe(`OpenID Connect sign-in (${engine})`, () => {
    let driver: SqlDriver;
    let cleanup: () => void;
    let access: Access;
    before(async () => {
      const db = await testDatabase(engine);
      cleanup = db.cleanup;
      driver = await openRecordStore(db.database);
      // The settings come from the environment, as in production.
      const config = loadServerConfig({ db: db.database }, {
        CAREBRIDGE_OIDC_ISSUER: idp.issuer, CAREBRIDGE_OIDC_CLIENT_ID: idp.clientId, CAREBRIDGE_OIDC_CLIENT_SECRET: idp.clientSecret, CAREBRIDGE_OIDC_REDIRECT_URI: idp.redirectUri,
      });
      access = await setUpAccess(driver, { tokenRequestsPerMinute: 60, people: config.people });
      await addOrganisation(driver, { ods: 'RX9', name: 'Northshire Hospitals', kind: 'hospital' });
      await addUser(driver, { username: 'dee.discharge', name: 'Dee Discharge', memberships: [{ organisation: 'RX9', role: 'discharge-coordinator' }], oidc: { issuer: `${idp.issuer}/`, subject: 'dee-at-trust' } });
      await addUser(driver, { username: 'gone.user', name: 'Gone User', memberships: [{ organisation: 'RX9', role: 'ward-nurse' }], oidc: { issuer: idp.issuer, subject: 'gone-at-trust' } });
      await disableUser(driver, 'gone.user');
    });
    after(async () => {
      await access?.close();
      await driver?.close();
      cleanup?.();
    });

    it('asks the provider for a code with PKCE (S256), state and nonce, and only returns to a local path', async () => {
      const { url, state } = await access.people.oidc!.start({ returnTo: '/residents?home=VM101' });
      const params = new URL(url).searchParams;
      assert.equal(new URL(url).origin, idp.issuer);
      assert.equal(params.get('response_type'), 'code');
      assert.equal(params.get('code_challenge_method'), 'S256');
      assert.equal(params.get('state'), state.state);
      assert.equal(params.get('nonce'), state.nonce);
      assert.equal(params.get('redirect_uri'), idp.redirectUri);
      assert.equal(state.returnTo, '/residents?home=VM101');
      await assert.rejects(access.people.oidc!.start({ returnTo: 'https://evil.example/' }), /a path on this site/);
      await assert.rejects(access.people.oidc!.start({ returnTo: '//evil.example/' }), /a path on this site/);
    });

    it('a subject linked to a local user signs in as that user, with their memberships', async () => {
      const { url, state } = await access.people.oidc!.start({ returnTo: '/' });
      const callback = await idp.signInAs(url, 'dee-at-trust');
      const result = await access.people.oidc!.finish(callback, state, { address: ADDRESS });
      assert.ok(result.ok, JSON.stringify(result));
      assert.equal(result.user.username, 'dee.discharge');
      assert.deepEqual(result.memberships, [{ organisation: 'RX9', organisationName: 'Northshire Hospitals', role: 'discharge-coordinator' }]);
      const session = await access.sessions.start(result.user.userId, result.memberships[0], { address: ADDRESS });
      assert.equal((await access.sessions.actor(session.id))?.role, 'discharge-coordinator');
    });

    it('an unknown subject is refused and no account is made for it', async () => {
      const { url, state } = await access.people.oidc!.start({});
      const result = await access.people.oidc!.finish(await idp.signInAs(url, 'stranger-at-trust'), state, { address: ADDRESS });
      assert.equal(result.ok, false);
      assert.equal((result as { reason: string }).reason, 'invalid');
      assert.match((result as { message: string }).message, /not linked to a CareBridge user/);
      const count = await driver.get<{ n: number }>('SELECT COUNT(*) AS n FROM access_users');
      assert.equal(Number(count!.n), 2);
    });

    it('a disabled user is refused', async () => {
      const { url, state } = await access.people.oidc!.start({});
      const result = await access.people.oidc!.finish(await idp.signInAs(url, 'gone-at-trust'), state, { address: ADDRESS });
      assert.equal((result as { reason?: string }).reason, 'disabled');
    });

    it('a callback for another sign-in (wrong state) or replayed code is refused', async () => {
      const first = await access.people.oidc!.start({});
      const second = await access.people.oidc!.start({});
      const callback = await idp.signInAs(first.url, 'dee-at-trust');
      const crossed = await access.people.oidc!.finish(callback, second.state, { address: ADDRESS });
      assert.equal((crossed as { reason?: string }).reason, 'invalid');
      assert.ok((await access.people.oidc!.finish(callback, first.state, { address: ADDRESS })).ok);
      const replayed = await access.people.oidc!.finish(callback, first.state, { address: ADDRESS });
      assert.equal((replayed as { reason?: string }).reason, 'invalid', 'a code works once');
    });

    it('OpenID Connect sign-ins and refusals are audited', async () => {
      await access.close();
      const res = await handleFhirRequest({ base: 'http://localhost/fhir', driver, access: UNRESTRICTED, services: { AuditEvent: auditEventService(driver) } }, {
        method: 'GET', path: 'AuditEvent', query: [['type', 'http://dicom.nema.org/resources/ontology/DCM|110114'], ['_count', '100']],
      });
      const body = typeof res.body === 'string' ? JSON.parse(res.body) : res.body;
      const desc = body.entry.map((e: any) => `${e.resource.outcome} ${e.resource.agent[0].who.display} ${e.resource.outcomeDesc}`);
      assert.ok(desc.includes('0 dee.discharge OpenID Connect'), desc.join('\n'));
      assert.ok(desc.some((d: string) => d.startsWith('4 stranger-at-trust (no such user) OpenID Connect: no local user is linked to stranger-at-trust')), desc.join('\n'));
      assert.ok(desc.includes('4 gone.user OpenID Connect: account disabled'));
      access = await setUpAccess(driver, { tokenRequestsPerMinute: 60 });
    });
  });
}
