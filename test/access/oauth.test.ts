// System clients get tokens from /oauth2/token and use the API within their SMART scopes; forged,
// expired, misdirected or replayed credentials are refused. Both storage engines.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { SignJWT, exportJWK, generateKeyPair, importJWK, type CryptoKey } from 'jose';
import { ENGINES, clientToken, fhirClient, startTestServer, TEST_ADMIN, type TestServer } from '../support/server.ts';
import { addClient, revokeClient } from '../../src/access/index.ts';
import { TokenService } from '../../src/access/tokens.ts';

const form = (fields: Record<string, string>) => new URLSearchParams(fields).toString();
const FORM = { 'content-type': 'application/x-www-form-urlencoded' };

async function tokenRequest(origin: string, fields: Record<string, string>, headers: Record<string, string> = {}) {
  const res = await fetch(`${origin}/oauth2/token`, { method: 'POST', headers: { ...FORM, ...headers }, body: form(fields) });
  return { status: res.status, body: await res.json() };
}

for (const engine of ENGINES) {
  describe(`OAuth2 and SMART scopes (${engine})`, () => {
    let t: TestServer;
    let reader: { clientId: string; secret: string };
    before(async () => {
      t = await startTestServer(engine, { CAREBRIDGE_TOKEN_RATE_LIMIT: '1000' });
      const { client, secret } = await addClient(t.server.driver, { name: 'Patient reader', scopes: 'system/Patient.rs' });
      reader = { clientId: client.clientId, secret: secret! };
      await t.fhir.post('Patient', { resourceType: 'Patient', name: [{ family: 'Scope' }] });
    });
    after(async () => t?.close());

    it('publishes its SMART configuration and leaves the CapabilityStatement open', async () => {
      const conf = await fetch(`${t.url}/.well-known/smart-configuration`).then((r) => r.json());
      assert.equal(conf.token_endpoint, `${t.url}/oauth2/token`);
      assert.ok(conf.token_endpoint_auth_methods_supported.includes('private_key_jwt'));
      assert.equal((await fetch(`${t.base}/metadata`)).status, 200);
    });

    it('publishes its SMART configuration under the FHIR base, where SMART apps (fhirclient) look for it, without a token', async () => {
      const res = await fetch(`${t.base}/.well-known/smart-configuration`, { headers: { accept: 'application/json' } });
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-type')!, /^application\/json/);
      const conf = await res.json();
      assert.equal(conf.authorization_endpoint, `${t.url}/oauth2/authorize`);
      assert.equal(conf.token_endpoint, `${t.url}/oauth2/token`);
      assert.deepEqual(conf, await fetch(`${t.url}/.well-known/smart-configuration`).then((r) => r.json()), 'the same document as at the root');
    });

    it('discovery can be read by a browser app from any origin (CORS), with no credentials', async () => {
      const origin = { origin: 'https://app.example' };
      for (const url of [`${t.base}/.well-known/smart-configuration`, `${t.url}/.well-known/smart-configuration`, `${t.url}/.well-known/openid-configuration`, `${t.url}/oauth2/jwks`]) {
        const res = await fetch(url, { headers: { ...origin, accept: 'application/json' } });
        assert.equal(res.status, 200, url);
        assert.equal(res.headers.get('access-control-allow-origin'), '*', url);
        assert.equal(res.headers.get('access-control-allow-credentials'), null, url);
        const preflight = await fetch(url, { method: 'OPTIONS', headers: { ...origin, 'access-control-request-method': 'GET', 'access-control-request-headers': 'accept' } });
        assert.equal(preflight.status, 204, `${url} preflight`);
        assert.equal(preflight.headers.get('access-control-allow-origin'), '*', `${url} preflight`);
        assert.match(preflight.headers.get('access-control-allow-methods')!, /GET/, `${url} preflight`);
      }
    });

    it('the SMART configuration has the fields SMART requires, and the issuer and keys sso-openid-connect needs', async () => {
      const conf = await fetch(`${t.base}/.well-known/smart-configuration`).then((r) => r.json());
      assert.ok(conf.capabilities.includes('sso-openid-connect'));
      for (const field of ['issuer', 'jwks_uri', 'authorization_endpoint', 'token_endpoint', 'grant_types_supported', 'token_endpoint_auth_methods_supported', 'scopes_supported', 'response_types_supported', 'capabilities', 'code_challenge_methods_supported']) {
        assert.ok(conf[field], `${field} is published`);
      }
    });

    it('without a token the API answers 401 with an OperationOutcome and WWW-Authenticate', async () => {
      const res = await fetch(`${t.base}/Patient`);
      assert.equal(res.status, 401);
      assert.match(res.headers.get('www-authenticate')!, /^Bearer/);
      assert.equal((await res.json()).resourceType, 'OperationOutcome');
    });

    it('issues a token for a client secret (HTTP Basic or form) and refuses a wrong one', async () => {
      const basic = await tokenRequest(t.url, { grant_type: 'client_credentials' }, { authorization: `Basic ${Buffer.from(`${reader.clientId}:${reader.secret}`).toString('base64')}` });
      assert.equal(basic.status, 200);
      assert.equal(basic.body.token_type, 'Bearer');
      assert.equal(basic.body.scope, 'system/Patient.rs');
      assert.ok(basic.body.expires_in <= 300);
      const post = await tokenRequest(t.url, { grant_type: 'client_credentials', client_id: reader.clientId, client_secret: reader.secret });
      assert.equal(post.status, 200);
      const wrong = await tokenRequest(t.url, { grant_type: 'client_credentials', client_id: reader.clientId, client_secret: 'guess' });
      assert.equal(wrong.status, 401);
      assert.equal(wrong.body.error, 'invalid_client');
      const grant = await tokenRequest(t.url, { grant_type: 'password', client_id: reader.clientId, client_secret: reader.secret });
      assert.equal(grant.body.error, 'unsupported_grant_type');
    });

    it('a parameter sent twice, or no grant_type, is invalid_request and issues nothing', async () => {
      const raw = async (body: string, contentType = 'application/x-www-form-urlencoded; charset=UTF-8') => {
        const res = await fetch(`${t.url}/oauth2/token`, { method: 'POST', headers: { 'content-type': contentType }, body });
        return { status: res.status, body: await res.json() };
      };
      const credentials = `client_id=${encodeURIComponent(reader.clientId)}&client_secret=${encodeURIComponent(reader.secret)}`;
      assert.equal((await raw(`grant_type=client_credentials&${credentials}`)).status, 200, 'the same request once is fine, charset and all');
      for (const body of [
        `grant_type=authorization_code&grant_type=client_credentials&${credentials}`,
        `grant_type=client_credentials&${credentials}&scope=system/Patient.rs&scope=system/*.cruds`,
        `grant_type=client_credentials&${credentials}&client_id=${TEST_ADMIN.id}`,
      ]) {
        const res = await raw(body);
        assert.equal(res.status, 400, body);
        assert.equal(res.body.error, 'invalid_request', body);
        assert.match(res.body.error_description, /came more than once/, body);
        assert.equal(res.body.access_token, undefined);
      }
      const none = await raw(credentials);
      assert.equal(none.status, 400);
      assert.equal(none.body.error, 'invalid_request');
      assert.match(none.body.error_description, /grant_type is required/);
    });

    it('HTTP Basic credentials that do not decode are refused as invalid_client, not a server error', async () => {
      for (const credentials of ['%E0%A4%A:secret', `${reader.clientId}%:${reader.secret}`, 'no-colon-at-all']) {
        const res = await tokenRequest(t.url, { grant_type: 'client_credentials' }, { authorization: `Basic ${Buffer.from(credentials).toString('base64')}` });
        assert.equal(res.status, 401, credentials);
        assert.equal(res.body.error, 'invalid_client', credentials);
      }
    });

    it('a token request can narrow its scopes but never escalate them', async () => {
      const narrowed = await tokenRequest(t.url, { grant_type: 'client_credentials', client_id: reader.clientId, client_secret: reader.secret, scope: 'system/Patient.r' });
      assert.equal(narrowed.body.scope, 'system/Patient.r');
      const escalate = await tokenRequest(t.url, { grant_type: 'client_credentials', client_id: reader.clientId, client_secret: reader.secret, scope: 'system/*.cruds' });
      assert.equal(escalate.status, 400);
      assert.equal(escalate.body.error, 'invalid_scope');
    });

    it("a client made for people's sign-in gets no client_credentials token, and user/ scopes grant a client's own token nothing", async () => {
      const ward = await addClient(t.server.driver, { name: 'Ward app', scopes: 'user/*.rs', redirectUris: ['https://ward.example/cb'] });
      const ask = (client: { clientId: string }, secret: string, scope?: string) =>
        tokenRequest(t.url, { grant_type: 'client_credentials', client_id: client.clientId, client_secret: secret, ...(scope ? { scope } : {}) });
      const held = await ask(ward.client, ward.secret!);
      assert.equal(held.status, 400);
      assert.equal(held.body.error, 'unauthorized_client');
      assert.match(held.body.error_description, /only for people's sign-in/);
      assert.equal(held.body.access_token, undefined);
      const named = await ask(ward.client, ward.secret!, 'user/*.rs');
      assert.equal(named.status, 400);
      assert.equal(named.body.error, 'invalid_scope');
      assert.match(named.body.error_description, /only system\/ scopes/);

      const both = await addClient(t.server.driver, { name: 'Ward app with a feed', scopes: 'user/*.rs system/Patient.rs', redirectUris: ['https://ward.example/cb'] });
      const own = await ask(both.client, both.secret!);
      assert.equal(own.status, 200);
      assert.equal(own.body.scope, 'system/Patient.rs', 'only the system/ scopes it holds');
      assert.equal((await ask(both.client, both.secret!, 'system/Patient.rs user/*.rs')).body.error, 'invalid_scope');

      // A client's own token that carries user/ scopes anyway (issued before this rule) reads no one.
      const { token } = await new TokenService(t.server.driver).issue({ issuer: t.url, audience: t.base, clientId: ward.client.clientId, scope: 'user/*.rs' });
      const count = await fhirClient(t.base, { authorization: `Bearer ${token}` }).get('Patient?_summary=count');
      assert.equal(count.status, 403);
    });

    it('scopes decide what the record allows, including through includes, transactions and history', async () => {
      const fhir = fhirClient(t.base, { authorization: `Bearer ${await clientToken(t.url, reader.clientId, reader.secret)}` });
      const found = await fhir.get('Patient?family=scope');
      assert.equal(found.status, 200);
      assert.equal(found.body.total, 1);
      const pid = found.body.entry[0].resource.id;
      await t.fhir.post('Observation', { resourceType: 'Observation', status: 'final', code: { text: 'pulse' }, subject: { reference: `Patient/${pid}` } });
      assert.equal((await fhir.post('Patient', { resourceType: 'Patient' })).status, 403);
      assert.equal((await fhir.get('Observation')).status, 403);
      const denied = await fhir.get(`Observation?subject=${pid}`);
      assert.equal(denied.status, 403);
      assert.match(denied.body.issue[0].diagnostics, /search on Observation/);
      const rev = await fhir.get(`Patient?_id=${pid}&_revinclude=Observation:subject`);
      assert.equal(rev.status, 200);
      assert.deepEqual(rev.body.entry.map((e: any) => e.resource.resourceType), ['Patient'], 'Observations are not revealed by _revinclude');
      const ev = await fhir.get(`Patient/${pid}/$everything`);
      assert.deepEqual([...new Set(ev.body.entry.map((e: any) => e.resource.resourceType))], ['Patient']);
      assert.equal((await fhir.get('_history')).status, 403);
      assert.equal((await fhir.get(`Patient/${pid}/Observation`)).status, 403);
      const chained = await fhir.get('Patient?general-practitioner.name=x');
      assert.equal(chained.status, 403, 'a chain through Practitioner needs search on Practitioner');
      const before = (await t.fhir.get('Observation?_summary=count')).body.total;
      const tx = await fhir.post('', {
        resourceType: 'Bundle', type: 'transaction',
        entry: [{ resource: { resourceType: 'Observation', status: 'final', code: { text: 'x' } }, request: { method: 'POST', url: 'Observation' } }],
      });
      assert.equal(tx.status, 403);
      assert.equal((await t.fhir.get('Observation?_summary=count')).body.total, before, 'nothing stored');
    });

    it('refuses forged, tampered, expired and misdirected tokens', async () => {
      const good = await clientToken(t.url, reader.clientId, reader.secret);
      const call = (token: string) => fetch(`${t.base}/Patient`, { headers: { authorization: `Bearer ${token}` } }).then((r) => r.status);
      assert.equal(await call(good), 200);
      const [header, payload, signature] = good.split('.');
      const claims = JSON.parse(Buffer.from(payload, 'base64url').toString());
      const escalated = Buffer.from(JSON.stringify({ ...claims, scope: 'system/*.cruds' })).toString('base64url');
      assert.equal(await call(`${header}.${escalated}.${signature}`), 401, 'tampered scope');
      const none = Buffer.from(JSON.stringify({ alg: 'none', typ: 'at+jwt' })).toString('base64url');
      assert.equal(await call(`${none}.${payload}.`), 401, 'alg none');
      const { privateKey } = await generateKeyPair('ES256');
      const kid = JSON.parse(Buffer.from(header, 'base64url').toString()).kid;
      const sign = (key: CryptoKey, c: Record<string, unknown>, exp: string | number = '5m') =>
        new SignJWT(c).setProtectedHeader({ alg: 'ES256', kid, typ: 'at+jwt' }).setIssuedAt().setExpirationTime(exp).sign(key);
      assert.equal(await call(await sign(privateKey, claims)), 401, 'signed by a key that is not ours');
      const stored = await t.server.driver.get<{ private_jwk: string }>('SELECT private_jwk FROM access_signing_keys WHERE kid = ?', [kid]);
      const ourKey = (await importJWK(JSON.parse(stored!.private_jwk), 'ES256')) as CryptoKey;
      const { exp: _exp, iat: _iat, ...rest } = claims;
      assert.equal(await call(await sign(ourKey, rest)), 200, 'control: our key, right claims');
      assert.equal(await call(await sign(ourKey, rest, Math.floor(Date.now() / 1000) - 60)), 401, 'expired');
      assert.equal(await call(await sign(ourKey, { ...rest, aud: 'https://elsewhere.example/fhir' })), 401, 'wrong audience');
      assert.equal(await call(await sign(ourKey, { ...rest, iss: 'https://elsewhere.example' })), 401, 'wrong issuer');
      const hmac = await new SignJWT(rest).setProtectedHeader({ alg: 'HS256', kid, typ: 'at+jwt' }).setExpirationTime('5m').sign(new TextEncoder().encode(stored!.private_jwk));
      assert.equal(await call(hmac), 401, 'HS256 algorithm confusion');
    });

    it('a revoked client gets no token and its tokens stop working', async () => {
      const { client, secret } = await addClient(t.server.driver, { name: 'Soon revoked', scopes: 'system/*.rs' });
      const token = await clientToken(t.url, client.clientId, secret!);
      await revokeClient(t.server.driver, client.clientId);
      assert.equal((await fetch(`${t.base}/Patient`, { headers: { authorization: `Bearer ${token}` } })).status, 401);
      assert.equal((await tokenRequest(t.url, { grant_type: 'client_credentials', client_id: client.clientId, client_secret: secret! })).status, 401);
    });

    it('private_key_jwt: a signed client assertion gets a token once; replay and wrong audience are refused', async () => {
      const { publicKey, privateKey } = await generateKeyPair('RS384');
      const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'RS384' };
      const { client } = await addClient(t.server.driver, { name: 'Key client', scopes: 'system/Patient.rs', jwks: { keys: [jwk] } });
      const assertion = (aud: string, jti: string) =>
        new SignJWT({}).setProtectedHeader({ alg: 'RS384', kid: 'k1' }).setIssuer(client.clientId).setSubject(client.clientId).setAudience(aud).setJti(jti).setIssuedAt().setExpirationTime('2m').sign(privateKey);
      const fields = (a: string) => ({ grant_type: 'client_credentials', client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: a });
      const first = await assertion(`${t.url}/oauth2/token`, 'jti-1');
      const ok = await tokenRequest(t.url, fields(first));
      assert.equal(ok.status, 200, JSON.stringify(ok.body));
      assert.equal((await fetch(`${t.base}/Patient`, { headers: { authorization: `Bearer ${ok.body.access_token}` } })).status, 200);
      assert.equal((await tokenRequest(t.url, fields(first))).status, 401, 'replayed assertion');
      assert.equal((await tokenRequest(t.url, fields(await assertion('https://elsewhere.example/token', 'jti-2')))).status, 401, 'wrong audience');
    });

    // NHS national APIs have their clients sign assertions RS512 with a kid (the API Platform's signed JWT
    // pattern): such a client must work here unchanged.
    it('private_key_jwt: an assertion signed RS512, as NHS national APIs ask, gets a token', async () => {
      const { publicKey, privateKey } = await generateKeyPair('RS512');
      const { client } = await addClient(t.server.driver, { name: 'NHS-style key client', scopes: 'system/Patient.rs', jwks: { keys: [{ ...(await exportJWK(publicKey)), kid: 'nhs-1', alg: 'RS512', use: 'sig' }] } });
      const assertion = await new SignJWT({}).setProtectedHeader({ alg: 'RS512', typ: 'JWT', kid: 'nhs-1' }).setIssuer(client.clientId).setSubject(client.clientId)
        .setAudience(`${t.url}/oauth2/token`).setJti(`nhs-${Date.now()}`).setExpirationTime('5m').sign(privateKey);
      const answer = await tokenRequest(t.url, { grant_type: 'client_credentials', client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: assertion });
      assert.equal(answer.status, 200, JSON.stringify(answer.body));
      assert.equal((await fetch(`${t.base}/Patient`, { headers: { authorization: `Bearer ${answer.body.access_token}` } })).status, 200);
    });

    it('refuses to register keys that could never verify an assertion, or that are private', async () => {
      const rsa = await generateKeyPair('RS384', { extractable: true });
      const ec = await generateKeyPair('ES256', { extractable: true });
      const refused: [string, Record<string, unknown>, RegExp][] = [
        ['not a key', { foo: 1 }, /key 1 .*not a usable public key/i],
        ['a symmetric key', { kty: 'oct', k: 'c2VjcmV0LXNlY3JldC1zZWNyZXQ', alg: 'HS256' }, /key 1 .*symmetric/i],
        ['a private EC key', { ...(await exportJWK(ec.privateKey)), alg: 'ES256' }, /key 1 .*private/i],
        ['a private RSA key', { ...(await exportJWK(rsa.privateKey)), alg: 'RS384' }, /key 1 .*private/i],
        ['an alg not accepted for assertions', { ...(await exportJWK(rsa.publicKey)), alg: 'PS256' }, /key 1 .*PS256/],
      ];
      for (const [what, key, message] of refused) {
        const name = `Bad keys: ${what}`;
        await assert.rejects(addClient(t.server.driver, { name, scopes: 'system/Patient.rs', jwks: { keys: [key] } }), message, what);
        const stored = await t.server.driver.get('SELECT client_id FROM access_clients WHERE name = ?', [name]);
        assert.equal(stored, undefined, `${what}: nothing stored`);
      }
      const ok = await addClient(t.server.driver, { name: 'Good keys', scopes: 'system/Patient.rs', jwks: { keys: [{ ...(await exportJWK(ec.publicKey)), kid: 'e1', alg: 'ES256' }, await exportJWK(rsa.publicKey)] } });
      assert.equal(ok.client.jwks!.keys.length, 2);
    });
  });
}

describe('token endpoint rate limit', () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer('sqlite', { CAREBRIDGE_TOKEN_RATE_LIMIT: '4' }); // the harness uses one for its own token
  });
  after(async () => t?.close());

  it('answers 429 once an address has asked too often', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) statuses.push((await tokenRequest(t.url, { grant_type: 'client_credentials', client_id: 'x', client_secret: 'y' })).status);
    assert.deepEqual(statuses, [401, 401, 401, 429]);
  });
});

describe('token endpoint rate limit and discovery', () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer('sqlite', { CAREBRIDGE_TOKEN_RATE_LIMIT: '2' }); // the harness uses one for its own token
  });
  after(async () => t?.close());

  it('reading the discovery documents does not use up the token requests an address may make', async () => {
    for (let i = 0; i < 4; i++) assert.equal((await fetch(`${t.url}/.well-known/smart-configuration`)).status, 200, `discovery ${i + 1}`);
    assert.equal((await fetch(`${t.url}/oauth2/jwks`)).status, 200);
    const token = await tokenRequest(t.url, { grant_type: 'client_credentials', client_id: TEST_ADMIN.id, client_secret: TEST_ADMIN.secret });
    assert.equal(token.status, 200, JSON.stringify(token.body));
  });
});
