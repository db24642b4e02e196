// Signing out of an app (OAuth 2.0 Token Revocation, RFC 7009, at POST /oauth2/revoke): on a shared care-home
// PC, an app's "sign out" must end the sign-in there and then, its access tokens as well as its refresh
// tokens, and only the app the tokens were issued to may do it. Real HTTP, both storage engines.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ENGINES, TEST_ADMIN, clientToken, startTestServer, type TestServer } from '../support/server.ts';
import { addPerson, personSignIn, refreshToken, TEST_APP } from '../support/people.ts';
import { waitForAudit } from '../support/audit.ts';
import { addClient } from '../../src/access/index.ts';

const DCM = 'http://dicom.nema.org/resources/ontology/DCM';
const LOGOUT = `type=${encodeURIComponent(`${DCM}|110114`)}&subtype=${encodeURIComponent(`${DCM}|110123`)}`;
const OTHER_APP = { clientId: 'other-app', redirectUri: 'http://127.0.0.1:9/other' };

for (const engine of ENGINES) {
  describe(`signing out of an app: token revocation (${engine})`, () => {
    let t: TestServer;
    const read = (token: string) => fetch(`${t.base}/Patient?_count=1`, { headers: { authorization: `Bearer ${token}` } }).then((r) => r.status);
    const revoke = async (form: Record<string, string>, headers: Record<string, string> = {}) => {
      const res = await fetch(`${t.url}/oauth2/revoke`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, body: new URLSearchParams(form).toString() });
      const text = await res.text();
      return { status: res.status, body: text ? JSON.parse(text) : undefined, cacheControl: res.headers.get('cache-control') };
    };

    before(async () => {
      t = await startTestServer(engine, { CAREBRIDGE_TOKEN_RATE_LIMIT: '1000', CAREBRIDGE_SIGN_IN_RATE_LIMIT: '100' });
      await addPerson(t, { username: 'revoke.nurse', role: 'ward-nurse', org: 'RX9' });
      await addClient(t.server.driver, { clientId: OTHER_APP.clientId, name: 'Other app', scopes: 'user/*.rs', redirectUris: [OTHER_APP.redirectUri], publicClient: true });
    });
    after(() => t.close());

    it('with its refresh token: the sign-in ends, its access token is refused and its refresh token spent; another sign-in goes on', async () => {
      const signIn = await personSignIn(t, 'revoke.nurse', { scope: 'user/*.rs online_access' });
      const other = await personSignIn(t, 'revoke.nurse', { scope: 'user/*.rs online_access' });
      const answer = await revoke({ token: signIn.refresh_token, token_type_hint: 'refresh_token', client_id: TEST_APP.clientId });
      assert.equal(answer.status, 200);
      assert.equal(answer.body, undefined, 'RFC 7009: an empty 200');
      assert.equal(answer.cacheControl, 'no-store');
      assert.equal((await refreshToken(t, { refresh_token: signIn.refresh_token, client_id: TEST_APP.clientId })).body.error, 'invalid_grant');
      // (A token in use at that moment is refused once its standing is looked at again: within 10 s.)
      assert.equal(await read(signIn.access_token), 401);
      assert.equal(await read(other.access_token), 200, 'the person\'s other sign-in is not touched');
      assert.equal((await refreshToken(t, { refresh_token: other.refresh_token, client_id: TEST_APP.clientId })).status, 200);
    });

    it('with its access token, unused since: refused at once, and the sign-in\'s refresh token with it', async () => {
      const signIn = await personSignIn(t, 'revoke.nurse', { scope: 'user/*.rs online_access' });
      const answer = await revoke({ token: signIn.access_token, token_type_hint: 'access_token', client_id: TEST_APP.clientId });
      assert.equal(answer.status, 200);
      assert.equal(await read(signIn.access_token), 401);
      assert.equal((await refreshToken(t, { refresh_token: signIn.refresh_token, client_id: TEST_APP.clientId })).body.error, 'invalid_grant');
      // A sign-in with no refresh token at all ends the same way; the hint is only where to look first.
      const short = await personSignIn(t, 'revoke.nurse', { scope: 'user/*.rs' });
      assert.equal((await revoke({ token: short.access_token, token_type_hint: 'refresh_token', client_id: TEST_APP.clientId })).status, 200);
      assert.equal(await read(short.access_token), 401);
    });

    it('only by the app the token was issued to; a confidential app authenticates', async () => {
      const signIn = await personSignIn(t, 'revoke.nurse', { scope: 'user/*.rs online_access' });
      const stranger = await revoke({ token: signIn.refresh_token, client_id: OTHER_APP.clientId });
      assert.equal(stranger.status, 400);
      assert.equal(stranger.body.error, 'unauthorized_client');
      const strangerAccess = await revoke({ token: signIn.access_token, client_id: OTHER_APP.clientId });
      assert.equal(strangerAccess.body.error, 'unauthorized_client');
      assert.equal(await read(signIn.access_token), 200, 'still signed in');
      assert.equal((await refreshToken(t, { refresh_token: signIn.refresh_token, client_id: TEST_APP.clientId })).status, 200);

      const confidential = { clientId: 'revoking-confidential', redirectUri: 'http://127.0.0.1:9/confidential' };
      const { secret } = await addClient(t.server.driver, { clientId: confidential.clientId, name: 'Confidential', scopes: 'user/*.rs', redirectUris: [confidential.redirectUri] });
      const theirs = await personSignIn(t, 'revoke.nurse', { scope: 'user/*.rs online_access', app: confidential, form: { client_secret: secret! } });
      const unauthenticated = await revoke({ token: theirs.refresh_token, client_id: confidential.clientId });
      assert.equal(unauthenticated.status, 401);
      assert.equal(unauthenticated.body.error, 'invalid_client');
      assert.equal(await read(theirs.access_token), 200, 'nothing revoked by an unauthenticated request');
      const basic = { authorization: `Basic ${Buffer.from(`${confidential.clientId}:${secret}`).toString('base64')}` };
      assert.equal((await revoke({ token: theirs.refresh_token }, basic)).status, 200);
      assert.equal((await refreshToken(t, { refresh_token: theirs.refresh_token }, basic)).body.error, 'invalid_grant');
    });

    it('a token unknown, expired or revoked already: 200 and nothing else; no token or no client: refused', async () => {
      const signIn = await personSignIn(t, 'revoke.nurse', { scope: 'user/*.rs online_access' });
      assert.equal((await revoke({ token: 'not-a-token-of-ours', client_id: TEST_APP.clientId })).status, 200);
      assert.equal(await read(signIn.access_token), 200, 'an unknown token ends nobody\'s sign-in');
      assert.equal((await revoke({ token: signIn.refresh_token, client_id: TEST_APP.clientId })).status, 200);
      assert.equal((await revoke({ token: signIn.refresh_token, client_id: TEST_APP.clientId })).status, 200, 'twice is fine');

      const noToken = await revoke({ client_id: TEST_APP.clientId });
      assert.equal(noToken.status, 400);
      assert.equal(noToken.body.error, 'invalid_request');
      const noClient = await revoke({ token: 'not-a-token-of-ours' });
      assert.equal(noClient.status, 401);
      assert.equal(noClient.body.error, 'invalid_client');
    });

    it('a system client\'s own access token names no sign-in: unsupported_token_type, and it keeps working', async () => {
      const token = await clientToken(t.url, TEST_ADMIN.id, TEST_ADMIN.secret);
      const basic = { authorization: `Basic ${Buffer.from(`${TEST_ADMIN.id}:${TEST_ADMIN.secret}`).toString('base64')}` };
      const answer = await revoke({ token }, basic);
      assert.equal(answer.status, 400);
      assert.equal(answer.body.error, 'unsupported_token_type');
      assert.match(answer.body.error_description, /carebridge clients revoke/);
      assert.equal(await read(token), 200);
    });

    it('discovery names the endpoint, and each sign-out is a Logout in the audit under the person, with the app beside them', async () => {
      for (const path of ['/fhir/.well-known/smart-configuration', '/.well-known/openid-configuration']) {
        const discovery = await (await fetch(`${t.url}${path}`)).json();
        assert.equal(discovery.revocation_endpoint, `${t.url}/oauth2/revoke`, path);
      }
      const auditee = await addPerson(t, { username: 'revoke.audited', role: 'ward-nurse', org: 'RX9' });
      const signIn = await personSignIn(t, 'revoke.audited', { scope: 'user/*.rs online_access' });
      await revoke({ token: signIn.refresh_token, client_id: OTHER_APP.clientId });
      await revoke({ token: signIn.refresh_token, client_id: TEST_APP.clientId });
      const events = await waitForAudit(t.fhir, `altid=${auditee}&${LOGOUT}&_sort=date`, (es) => es.length >= 2);
      assert.deepEqual(events.map((e) => [e.outcome, e.outcomeDesc.replace(/\(.*\)/, '(…)')]), [
        ['4', 'token revocation: token issued to another client'],
        ['0', 'token revocation: refresh token revoked: the sign-in ended (…), its access and refresh tokens with it'],
      ]);
      assert.deepEqual(events.map((e) => e.agent[1].who.identifier.value), [OTHER_APP.clientId, TEST_APP.clientId], 'the app is the second participant');
      assert.ok(!JSON.stringify(events).includes(signIn.refresh_token), 'never the token');
    });
  });
}
