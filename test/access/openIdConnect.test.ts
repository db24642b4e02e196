// SMART's OpenID Connect: an app that signs a person in with openid and fhirUser (or profile) learns who
// they are from an id_token it can check against the server's published keys, and reads their resource.
// Real HTTP against the test server, both storage engines.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { ENGINES, startTestServer, type TestServer } from '../support/server.ts';
import { addPerson, authorize, personSignIn, pkce, TEST_APP } from '../support/people.ts';

/** What fhirclient's client.user.fhirUser answers for an id_token: its fhirUser claim's last two segments. */
const fhirclientUser = (idToken: string) => (decode(idToken).fhirUser as string).split('/').slice(-2).join('/');
const decode = (jwt: string) => JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString());

for (const engine of ENGINES) {
  describe(`OpenID Connect for people signing in to apps (${engine})`, () => {
    let t: TestServer;
    let nurseId: string;

    before(async () => {
      t = await startTestServer(engine, { CAREBRIDGE_TOKEN_RATE_LIMIT: '1000' });
      assert.equal((await t.fhir.put('Practitioner/oidc-nurse', { resourceType: 'Practitioner', id: 'oidc-nurse', name: [{ family: 'Oidc' }] })).status, 201);
      nurseId = await addPerson(t, { username: 'oidc.nurse', name: 'Olive Nurse', role: 'ward-nurse', org: 'RX9', fhirUser: 'Practitioner/oidc-nurse' });
      await addPerson(t, { username: 'oidc.unlinked', role: 'ward-nurse', org: 'RX9' });
    });
    after(() => t.close());

    it('the SMART configuration names the issuer and its keys, and discovery at the issuer says the same', async () => {
      const smart = await (await fetch(`${t.base}/.well-known/smart-configuration`)).json();
      for (const capability of ['sso-openid-connect', 'permission-online', 'permission-offline']) assert.ok(smart.capabilities.includes(capability), capability);
      assert.equal(smart.issuer, t.url);
      assert.equal(smart.jwks_uri, `${t.url}/oauth2/jwks`);
      for (const scope of ['openid', 'fhirUser', 'profile', 'online_access', 'offline_access']) assert.ok(smart.scopes_supported.includes(scope), scope);
      assert.ok(smart.grant_types_supported.includes('refresh_token'));

      const res = await fetch(`${smart.issuer}/.well-known/openid-configuration`, { headers: { origin: 'https://app.example' } });
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('access-control-allow-origin'), '*', 'a browser app reads it from anywhere');
      const oidc = await res.json();
      assert.equal(oidc.issuer, smart.issuer, 'OpenID Connect requires the issuer it was fetched under');
      assert.equal(oidc.jwks_uri, smart.jwks_uri);
      assert.equal(oidc.authorization_endpoint, smart.authorization_endpoint);
      assert.equal(oidc.token_endpoint, smart.token_endpoint);
      assert.deepEqual(oidc.response_types_supported, ['code']);
      assert.deepEqual(oidc.subject_types_supported, ['public']);
      assert.deepEqual(oidc.id_token_signing_alg_values_supported, ['ES256']);
      for (const claim of ['sub', 'fhirUser', 'nonce']) assert.ok(oidc.claims_supported.includes(claim), claim);
      assert.ok(oidc.scopes_supported.includes('openid'));
    });

    it('openid fhirUser gives an id_token for the app, signed with a published key, naming the person and their resource', async () => {
      const smart = await (await fetch(`${t.base}/.well-known/smart-configuration`)).json();
      const response = await personSignIn(t, 'oidc.nurse', { scope: 'openid fhirUser user/*.rs', nonce: 'n-0S6_WzA2Mj' });
      assert.equal(response.scope, 'user/*.rs openid fhirUser');
      assert.ok(response.id_token, JSON.stringify(response));
      const { payload, protectedHeader } = await jwtVerify(response.id_token, createRemoteJWKSet(new URL(smart.jwks_uri)), { issuer: smart.issuer, audience: TEST_APP.clientId, algorithms: ['ES256'] });
      assert.equal(protectedHeader.alg, 'ES256');
      assert.equal(payload.sub, nurseId);
      assert.equal(payload.nonce, 'n-0S6_WzA2Mj');
      assert.equal(payload.fhirUser, `${t.base}/Practitioner/oidc-nurse`);
      assert.ok(payload.iat! <= Date.now() / 1000 + 1 && payload.exp! > payload.iat!, 'iat, and exp after it');
      assert.equal(payload.name, undefined, 'no profile asked for, so no name');
      assert.equal(fhirclientUser(response.id_token), 'Practitioner/oidc-nurse', 'what fhirclient gives as client.user.fhirUser');
      // The app reads who signed in, with the access token, at the address the id_token gives.
      const self = await fetch(payload.fhirUser as string, { headers: { authorization: `Bearer ${response.access_token}` } });
      assert.equal(self.status, 200);
      assert.equal((await self.json()).id, 'oidc-nurse');
    });

    it('openid profile gives the name; no nonce asked for, none given; a person not linked to a resource gets no fhirUser', async () => {
      const response = await personSignIn(t, 'oidc.unlinked', { scope: 'user/*.rs openid profile fhirUser' });
      const claims = decode(response.id_token);
      assert.equal(claims.name, 'oidc.unlinked');
      assert.equal(claims.nonce, undefined);
      assert.equal(claims.fhirUser, undefined);
      assert.ok(claims.sub);
    });

    it('no id_token without openid; openid alone gives one naming the account only (sub), as OpenID Connect requires', async () => {
      for (const scope of ['user/*.rs', 'user/*.rs fhirUser']) {
        const response = await personSignIn(t, 'oidc.nurse', { scope });
        assert.equal(response.id_token, undefined, scope);
        assert.ok(response.access_token, scope);
      }
      const response = await personSignIn(t, 'oidc.nurse', { scope: 'user/*.rs openid' });
      const claims = decode(response.id_token);
      assert.equal(claims.sub, nurseId);
      assert.equal(claims.aud, TEST_APP.clientId);
      assert.equal(claims.fhirUser, undefined, 'not asked for');
      assert.equal(claims.name, undefined, 'not asked for');
    });

    it('an id_token is not an access token: the FHIR API refuses it', async () => {
      const response = await personSignIn(t, 'oidc.nurse', { scope: 'openid fhirUser user/*.rs' });
      const res = await fetch(`${t.base}/Practitioner/oidc-nurse`, { headers: { authorization: `Bearer ${response.id_token}` } });
      assert.equal(res.status, 401);
    });

    it('a nonce longer than 256 characters is refused back to the app', async () => {
      const { challenge } = pkce();
      const { res } = await authorize(t, { response_type: 'code', client_id: TEST_APP.clientId, redirect_uri: TEST_APP.redirectUri, scope: 'openid fhirUser user/*.rs', state: 'st', code_challenge: challenge, code_challenge_method: 'S256', aud: t.base, nonce: 'n'.repeat(257) });
      assert.equal(res.status, 303);
      const back = new URL(res.headers.get('location')!);
      assert.equal(back.searchParams.get('error'), 'invalid_request');
      assert.match(back.searchParams.get('error_description')!, /nonce/);
    });
  });
}
