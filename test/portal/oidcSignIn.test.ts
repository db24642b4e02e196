// The portal's "Sign in with your organisation's account": off to a real OpenID Connect provider
// (oidc-provider on a loopback port) and back, into a session for the linked account.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from '../support/server.ts';
import { startIdentityProvider, type TestIdentityProvider } from '../support/identityProvider.ts';
import { addOrganisation, addUser } from '../../src/access/index.ts';

describe('portal sign-in through an OpenID Connect provider', () => {
  let idp: TestIdentityProvider;
  let t: TestServer;
  before(async () => {
    idp = await startIdentityProvider();
    t = await startTestServer('sqlite', {
      CAREBRIDGE_OIDC_ISSUER: idp.issuer, CAREBRIDGE_OIDC_CLIENT_ID: idp.clientId, CAREBRIDGE_OIDC_CLIENT_SECRET: idp.clientSecret, CAREBRIDGE_OIDC_REDIRECT_URI: idp.redirectUri,
    });
    await addOrganisation(t.server.driver, { ods: 'VM101', name: 'Willow Lodge Care Home', kind: 'care-home' });
    const home = { resourceType: 'Organization', identifier: [{ system: 'https://fhir.nhs.uk/Id/ods-organization-code', value: 'VM101' }], name: 'Willow Lodge Care Home' };
    assert.equal((await t.fhir.post('Organization', home)).status, 201);
    await addUser(t.server.driver, { username: 'oidc.worker', name: 'Olive Idris', memberships: [{ organisation: 'VM101', role: 'care-home-staff' }], oidc: { issuer: idp.issuer, subject: 'olive-at-willow' } });
  });
  after(async () => {
    await t.close();
    await idp.close();
  });

  /** Follows the portal to the provider, signs in there as `account`, and brings the answer back to the portal. */
  const through = async (account: string) => {
    const page = await (await fetch(`${t.url}/sign-in`)).text();
    assert.match(page, /Sign in with your organisation’s account/);
    const start = await fetch(`${t.url}/auth/oidc/start`, { redirect: 'manual' });
    assert.equal(start.status, 303);
    const cookie = start.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ');
    const callback = new URL(await idp.signInAs(start.headers.get('location')!, account));
    return fetch(`${t.url}${callback.pathname}${callback.search}`, { redirect: 'manual', headers: { cookie } });
  };

  it('a linked account comes back signed in', async () => {
    const back = await through('olive-at-willow');
    assert.equal(back.status, 303);
    assert.equal(back.headers.get('location'), '/care-home');
    const session = back.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ');
    const home = await fetch(`${t.url}/care-home`, { headers: { cookie: session } });
    assert.equal(home.status, 200);
    assert.match(await home.text(), /Sign out/);
  });

  it('an account the provider knows but CareBridge does not is refused, and nothing is created', async () => {
    const back = await through('stranger-at-elsewhere');
    assert.equal(back.status, 401);
    assert.match(await back.text(), /There is a problem/);
    assert.equal(back.headers.getSetCookie().some((c) => c.startsWith('carebridge_session=') && !c.includes('Max-Age=0') && !c.includes('Expires=Thu, 01 Jan 1970')), false);
  });

  it('coming back without the handshake cookie is refused', async () => {
    const res = await fetch(`${t.url}/auth/oidc/callback?code=forged&state=forged`, { redirect: 'manual' });
    assert.equal(res.status, 303);
    assert.equal(res.headers.get('location'), '/sign-in?reason=oidc-failed');
  });
});
