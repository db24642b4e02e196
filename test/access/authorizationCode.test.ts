// SMART authorization code flow with PKCE: an app signs a person in and acts for them through the API.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ENGINES, startTestServer, type TestServer } from '../support/server.ts';
import { addPerson, authorize, exchange, hiddenField, personToken, pkce, postAuthorize, PERSON_PASSWORD, TEST_APP } from '../support/people.ts';
import { addClient, disableUser } from '../../src/access/index.ts';

for (const engine of ENGINES) {
  describe(`authorization code flow (${engine})`, () => {
    let t: TestServer;
    const start = (over: Record<string, string> = {}) => {
      const { verifier, challenge } = pkce();
      const params = { response_type: 'code', client_id: TEST_APP.clientId, redirect_uri: TEST_APP.redirectUri, scope: 'user/*.cruds', state: 'opaque-state', code_challenge: challenge, code_challenge_method: 'S256', aud: t.base, ...over };
      return { verifier, params };
    };
    const signIn = async (username: string, over: Record<string, string> = {}) => {
      const { verifier, params } = start(over);
      const page = await authorize(t, params);
      const res = await postAuthorize(t, page.cookie, { request: hiddenField(page.html, 'request'), csrf: hiddenField(page.html, 'csrf'), username, password: PERSON_PASSWORD });
      return { verifier, res, page };
    };

    before(async () => {
      t = await startTestServer(engine);
      await addPerson(t, { username: 'sam.carer', role: 'care-home-staff', org: 'VM101', alsoAs: [{ org: 'VM102', role: 'care-home-manager' }] });
      await addPerson(t, { username: 'una.single', role: 'ward-nurse', org: 'RX9' });
    });
    after(() => t.close());

    it('never sends anyone to an unregistered address', async () => {
      const unknownClient = await authorize(t, start({ client_id: 'nobody' }).params);
      assert.equal(unknownClient.res.status, 400);
      assert.match(unknownClient.html, /not registered/);
      const elsewhere = await authorize(t, start({ redirect_uri: 'https://attacker.example/cb' }).params);
      assert.equal(elsewhere.res.status, 400);
      assert.equal(elsewhere.res.headers.get('location'), null);
    });

    it('errors in the request go back to the app, with its state', async () => {
      for (const [over, error] of [[{ code_challenge: '' }, 'invalid_request'], [{ response_type: 'token' }, 'unsupported_response_type'], [{ scope: 'system/*.cruds' }, 'invalid_scope'], [{ aud: 'https://other.example/fhir' }, 'invalid_request']] as const) {
        const { res } = await authorize(t, start(over).params);
        assert.equal(res.status, 303, JSON.stringify(over));
        const back = new URL(res.headers.get('location')!);
        assert.equal(back.origin + back.pathname, TEST_APP.redirectUri);
        assert.equal(back.searchParams.get('error'), error);
        assert.equal(back.searchParams.get('state'), 'opaque-state');
      }
    });

    it('a request without aud (the FHIR base the app means) gets no code: SMART requires it', async () => {
      const { aud: _aud, ...withoutAud } = start().params;
      for (const params of [withoutAud, start({ aud: '' }).params]) {
        const { res } = await authorize(t, params);
        assert.equal(res.status, 303, JSON.stringify(params));
        const back = new URL(res.headers.get('location')!);
        assert.equal(back.origin + back.pathname, TEST_APP.redirectUri);
        assert.equal(back.searchParams.get('code'), null);
        assert.equal(back.searchParams.get('error'), 'invalid_request');
        assert.match(back.searchParams.get('error_description')!, /aud is required/);
        assert.equal(back.searchParams.get('state'), 'opaque-state');
      }
      // The base as apps write it, with or without its final slash, is this server's.
      assert.equal((await authorize(t, start({ aud: `${t.base}/` }).params)).res.status, 200);
    });

    it('a parameter sent twice is refused with a clear error, never guessed at', async () => {
      const twice = (name: string, value: string) => fetch(`${t.url}/oauth2/authorize?${new URLSearchParams(start().params)}&${name}=${encodeURIComponent(value)}`, { redirect: 'manual' });
      for (const [name, value] of [['scope', 'user/*.rs'], ['aud', 'https://other.example/fhir'], ['state', 'second-state'], ['code_challenge', pkce().challenge]]) {
        const res = await twice(name, value);
        assert.equal(res.status, 303, name);
        const back = new URL(res.headers.get('location')!);
        assert.equal(back.origin + back.pathname, TEST_APP.redirectUri, name);
        assert.equal(back.searchParams.get('code'), null, `${name}: no code`);
        assert.equal(back.searchParams.get('error'), 'invalid_request', name);
        assert.match(back.searchParams.get('error_description')!, new RegExp(`${name} came more than once`), name);
        assert.equal(back.searchParams.get('state'), name === 'state' ? null : 'opaque-state', `${name}: an ambiguous state is not echoed`);
      }
      for (const [name, value] of [['client_id', 'other-app'], ['redirect_uri', 'https://attacker.example/cb']]) {
        const res = await twice(name, value);
        assert.equal(res.status, 400, name);
        assert.equal(res.headers.get('location'), null, `${name}: sent nowhere`);
        assert.match(res.headers.get('content-type')!, /^text\/html/, name);
        assert.match(await res.text(), /more than once/, name);
      }
    });

    it('signs a person in, lets them choose a role, and the token acts as them', async () => {
      const wrong = await (async () => {
        const { params } = start();
        const page = await authorize(t, params);
        return postAuthorize(t, page.cookie, { request: hiddenField(page.html, 'request'), csrf: hiddenField(page.html, 'csrf'), username: 'sam.carer', password: 'not the password at all' });
      })();
      assert.equal(wrong.status, 401);
      assert.match(await wrong.text(), /There is a problem/);

      const token = await personToken(t, 'sam.carer', 'user/*.cruds', 'care-home-manager');
      const claims = JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString());
      assert.equal(claims.role, 'care-home-manager');
      assert.equal(claims.org, 'VM102');
      const res = await fetch(`${t.base}/Patient?_count=1`, { headers: { authorization: `Bearer ${token}` } });
      assert.equal(res.status, 200);
      const config = await (await fetch(`${t.url}/.well-known/smart-configuration`)).json();
      assert.equal(config.authorization_endpoint, `${t.url}/oauth2/authorize`);
      assert.ok(config.code_challenge_methods_supported.includes('S256'));
    });

    it('a code is single-use, bound to its verifier, redirect URI and client', async () => {
      const { verifier, res } = await signIn('una.single');
      assert.equal(res.status, 303);
      const code = new URL(res.headers.get('location')!).searchParams.get('code')!;
      assert.equal(new URL(res.headers.get('location')!).searchParams.get('state'), 'opaque-state');
      const base = { code, redirect_uri: TEST_APP.redirectUri, client_id: TEST_APP.clientId };
      assert.equal((await exchange(t, { ...base, code_verifier: 'x'.repeat(43) })).body.error, 'invalid_grant', 'wrong verifier');
      assert.equal((await exchange(t, { ...base, redirect_uri: 'http://127.0.0.1:9/other', code_verifier: verifier })).body.error, 'invalid_grant', 'wrong redirect');
      await addClient(t.server.driver, { clientId: 'other-app', name: 'Other', scopes: 'user/*.cruds', redirectUris: [TEST_APP.redirectUri], publicClient: true });
      assert.equal((await exchange(t, { ...base, client_id: 'other-app', code_verifier: verifier })).body.error, 'invalid_grant', 'another client');
      const ok = await exchange(t, { ...base, code_verifier: verifier });
      assert.equal(ok.status, 200);
      assert.equal(ok.body.token_type, 'Bearer');
      const again = await exchange(t, { ...base, code_verifier: verifier });
      assert.equal(again.body.error, 'invalid_grant', 'replayed code');
      assert.match(again.body.error_description, /used already/);
    });

    it("a browser app reads its token response, or why it was refused, from its own origin only (CORS)", async () => {
      const appOrigin = new URL(TEST_APP.redirectUri).origin;
      const tokenFrom = async (origin: string, form: Record<string, string>) => {
        const res = await fetch(`${t.url}/oauth2/token`, { method: 'POST', headers: { origin, 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ grant_type: 'authorization_code', ...form }).toString() });
        return { res, body: await res.json() };
      };
      const { verifier, res } = await signIn('una.single');
      const code = new URL(res.headers.get('location')!).searchParams.get('code')!;
      const form = { code, redirect_uri: TEST_APP.redirectUri, client_id: TEST_APP.clientId, code_verifier: verifier };

      const refused = await tokenFrom(appOrigin, { ...form, code_verifier: 'x'.repeat(43) });
      assert.equal(refused.body.error, 'invalid_grant');
      assert.equal(refused.res.headers.get('access-control-allow-origin'), appOrigin, 'the app can read why');
      const elsewhere = await tokenFrom('https://attacker.example', { ...form, code: 'not-a-code' });
      assert.equal(elsewhere.body.error, 'invalid_grant');
      assert.equal(elsewhere.res.headers.get('access-control-allow-origin'), null, 'an origin the client did not register reads nothing');

      const issued = await tokenFrom(appOrigin, form);
      assert.equal(issued.res.status, 200, JSON.stringify(issued.body));
      assert.equal(issued.res.headers.get('access-control-allow-origin'), appOrigin);
      assert.equal(issued.res.headers.get('access-control-allow-credentials'), null, 'never with cookies');
      assert.match(issued.res.headers.get('vary')!, /Origin/i);
    });

    it('a browser app reads the record with its token from its own origin (CORS on the FHIR API), errors too; a page from elsewhere reads nothing, a preflight needs no token', async () => {
      const appOrigin = new URL(TEST_APP.redirectUri).origin;
      const token = await personToken(t, 'una.single');
      const fhirFrom = (origin: string, path: string, init: RequestInit = {}) => fetch(`${t.base}/${path}`, { ...init, headers: { origin, ...(init.headers as Record<string, string>) } });

      const preflight = await fhirFrom(appOrigin, 'Patient', { method: 'OPTIONS', headers: { 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type, if-match' } });
      assert.equal(preflight.status, 204);
      assert.equal(preflight.headers.get('access-control-allow-origin'), appOrigin);
      for (const name of ['authorization', 'content-type', 'if-match']) assert.match(preflight.headers.get('access-control-allow-headers')!, new RegExp(`\\b${name}\\b`), name);
      assert.match(preflight.headers.get('access-control-allow-methods')!, /\bPOST\b/);
      assert.equal(preflight.headers.get('access-control-allow-credentials'), null, 'never with cookies');

      const read = await fhirFrom(appOrigin, 'Patient?_count=1', { headers: { authorization: `Bearer ${token}` } });
      assert.equal(read.status, 200);
      assert.equal(read.headers.get('access-control-allow-origin'), appOrigin);
      assert.match(read.headers.get('vary')!, /Origin/i);
      const created = await fhirFrom(appOrigin, 'Basic', { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/fhir+json' }, body: JSON.stringify({ resourceType: 'Basic', code: { text: 'cors' } }) });
      assert.match(created.headers.get('access-control-expose-headers')!, /\betag\b.*\blocation\b/i, 'the app can read ETag and Location');
      const unauthenticated = await fhirFrom(appOrigin, 'Patient');
      assert.equal(unauthenticated.status, 401);
      assert.equal(unauthenticated.headers.get('access-control-allow-origin'), appOrigin, 'the app can read why it was refused');

      const elsewhere = await fhirFrom('https://attacker.example', 'Patient?_count=1', { headers: { authorization: `Bearer ${token}` } });
      assert.equal(elsewhere.headers.get('access-control-allow-origin'), null, 'an origin no client registered reads nothing');
      const elsewherePreflight = await fhirFrom('https://attacker.example', 'Patient', { method: 'OPTIONS', headers: { 'access-control-request-method': 'GET' } });
      assert.equal(elsewherePreflight.status, 204);
      assert.equal(elsewherePreflight.headers.get('access-control-allow-origin'), null);
      assert.equal((await fhirFrom('https://attacker.example', 'metadata')).headers.get('access-control-allow-origin'), '*', 'the CapabilityStatement is public');
      assert.equal((await fetch(`${t.base}/Patient?_count=1`, { headers: { authorization: `Bearer ${token}` } })).headers.get('access-control-allow-origin'), null, 'no Origin, no CORS');
    });

    describe('SMART patient context (patient/ scopes, launch/patient)', () => {
      const PATIENT_APP = { clientId: 'patient-app', redirectUri: TEST_APP.redirectUri };
      /** Signs `username` in to the patient app asking for `scope`: the redirect back to the app, and the PKCE verifier. */
      const appSignIn = async (username: string, scope: string) => {
        const { verifier, params } = start({ client_id: PATIENT_APP.clientId, scope });
        const page = await authorize(t, params);
        assert.equal(page.res.status, 200, page.html.slice(0, 300));
        const res = await postAuthorize(t, page.cookie, { request: hiddenField(page.html, 'request'), csrf: hiddenField(page.html, 'csrf'), username, password: PERSON_PASSWORD });
        assert.equal(res.status, 303);
        return { back: new URL(res.headers.get('location')!), verifier };
      };

      before(async () => {
        await addClient(t.server.driver, { clientId: PATIENT_APP.clientId, name: 'Patient app', scopes: 'patient/*.rs user/*.rs', redirectUris: [PATIENT_APP.redirectUri], publicClient: true });
        for (const id of ['ctx-p1', 'ctx-p2']) {
          assert.equal((await t.fhir.put(`Patient/${id}`, { resourceType: 'Patient', id, name: [{ family: id }] })).status, 201);
          assert.equal((await t.fhir.post('Observation', { resourceType: 'Observation', status: 'final', code: { text: 'pulse' }, subject: { reference: `Patient/${id}` }, valueQuantity: { value: 70 } })).status, 201);
        }
        // A care home whose resident ctx-p2 is: staff there may see them through user/ scopes.
        assert.equal((await t.fhir.put('Organization/ctx-home', { resourceType: 'Organization', id: 'ctx-home', identifier: [{ system: 'https://fhir.nhs.uk/Id/ods-organization-code', value: 'VM101' }], name: 'Home' })).status, 201);
        assert.equal((await t.fhir.post('EpisodeOfCare', { resourceType: 'EpisodeOfCare', status: 'active', patient: { reference: 'Patient/ctx-p2' }, managingOrganization: { reference: 'Organization/ctx-home' } })).status, 201);
        await addPerson(t, { username: 'pat.self', role: 'person', fhirUser: 'Patient/ctx-p1' });
        await addPerson(t, { username: 'home.staff', role: 'care-home-staff', org: 'VM101' });
      });

      it("a person's patient/ token names them as its patient and reads their own record, no one else's", async () => {
        const { back, verifier } = await appSignIn('pat.self', 'launch/patient patient/Observation.rs patient/Patient.rs');
        const token = await exchange(t, { code: back.searchParams.get('code')!, redirect_uri: PATIENT_APP.redirectUri, client_id: PATIENT_APP.clientId, code_verifier: verifier });
        assert.equal(token.status, 200, JSON.stringify(token.body));
        assert.equal(token.body.patient, 'ctx-p1', 'the token response carries the patient context');
        assert.deepEqual(token.body.scope.split(' ').sort(), ['launch/patient', 'patient/Observation.rs', 'patient/Patient.rs'], 'the granted scope names the patient context it was given');
        const as = { authorization: `Bearer ${token.body.access_token}` };
        const own = await fetch(`${t.base}/Observation?patient=ctx-p1&_total=accurate`, { headers: as }).then((r) => r.json());
        assert.equal(own.total, 1, 'their own observation');
        assert.equal((await fetch(`${t.base}/Patient/ctx-p1`, { headers: as })).status, 200);
        assert.equal((await fetch(`${t.base}/Patient/ctx-p2`, { headers: as })).status, 403, "another person's record is refused");
        const all = await fetch(`${t.base}/Observation?_total=accurate`, { headers: as }).then((r) => r.json());
        assert.deepEqual(all.entry.map((e: any) => e.resource.subject.reference), ['Patient/ctx-p1'], 'a search finds only theirs');
      });

      it('anyone else asking for a patient context is refused invalid_scope, rather than given every record they may see', async () => {
        for (const scope of ['launch/patient patient/Observation.rs', 'patient/*.rs', 'launch/patient user/*.rs']) {
          const { back } = await appSignIn('home.staff', scope);
          assert.equal(back.origin + back.pathname, PATIENT_APP.redirectUri, scope);
          assert.equal(back.searchParams.get('code'), null, `${scope}: no code`);
          assert.equal(back.searchParams.get('error'), 'invalid_scope', scope);
          assert.match(back.searchParams.get('error_description')!, /patient context.*own record/, scope);
          assert.equal(back.searchParams.get('state'), 'opaque-state');
        }
        // The same person asking for user/ scopes still reads their resident, as before.
        const { back, verifier } = await appSignIn('home.staff', 'user/*.rs');
        const token = await exchange(t, { code: back.searchParams.get('code')!, redirect_uri: PATIENT_APP.redirectUri, client_id: PATIENT_APP.clientId, code_verifier: verifier });
        assert.equal(token.body.patient, undefined);
        assert.equal((await fetch(`${t.base}/Patient/ctx-p2`, { headers: { authorization: `Bearer ${token.body.access_token}` } })).status, 200);
      });

      it('the SMART configuration advertises patient context, as given to people for their own record', async () => {
        const config = await (await fetch(`${t.url}/.well-known/smart-configuration`)).json();
        for (const capability of ['launch-standalone', 'context-standalone-patient', 'permission-patient']) assert.ok(config.capabilities.includes(capability), capability);
        assert.ok(config.scopes_supported.includes('patient/*.rs'));
        assert.ok(config.scopes_supported.includes('launch/patient'));
      });
    });

    it('the choice-of-role ticket after the password gives one code, and only for the request it was issued in', async () => {
      const { page, res } = await signIn('sam.carer');
      assert.equal(res.status, 200, 'asked to choose a role');
      const ticket = hiddenField(await res.text(), 'ticket');
      const form = { request: hiddenField(page.html, 'request'), csrf: hiddenField(page.html, 'csrf'), ticket, membership: '0' };

      // Another app's request (or the same app's with another PKCE challenge), with the ticket but no password.
      await addClient(t.server.driver, { clientId: 'ticket-taker', name: 'Ticket Taker', scopes: 'user/*.cruds', redirectUris: ['http://127.0.0.1:9/taker'], publicClient: true });
      const other = await authorize(t, start({ client_id: 'ticket-taker', redirect_uri: 'http://127.0.0.1:9/taker' }).params);
      const elsewhere = await postAuthorize(t, other.cookie, { request: hiddenField(other.html, 'request'), csrf: hiddenField(other.html, 'csrf'), ticket, membership: '0' });
      assert.equal(elsewhere.status, 400, 'not for another app');
      assert.equal(elsewhere.headers.get('location'), null, 'no code');
      const sameApp = await authorize(t, start().params);
      const otherChallenge = await postAuthorize(t, sameApp.cookie, { request: hiddenField(sameApp.html, 'request'), csrf: hiddenField(sameApp.html, 'csrf'), ticket, membership: '0' });
      assert.equal(otherChallenge.status, 400, 'not for another request of the same app');
      assert.equal(otherChallenge.headers.get('location'), null);

      const first = await postAuthorize(t, page.cookie, form);
      assert.equal(first.status, 303);
      assert.ok(new URL(first.headers.get('location')!).searchParams.get('code'), 'the request it was issued in gets its code');
      const again = await postAuthorize(t, page.cookie, { ...form, membership: '1' });
      assert.equal(again.status, 400, 'the ticket is spent');
      assert.equal(again.headers.get('location'), null, 'no second code');
    });

    it('refuses altered pages, missing cookies, and people disabled before the exchange', async () => {
      const { params } = start();
      const page = await authorize(t, params);
      const form = { request: hiddenField(page.html, 'request'), csrf: hiddenField(page.html, 'csrf'), username: 'una.single', password: PERSON_PASSWORD };
      assert.equal((await postAuthorize(t, page.cookie, { ...form, request: form.request.slice(0, -4) + 'AAAA' })).status, 400, 'altered request');
      assert.equal((await postAuthorize(t, '', form)).status, 400, 'no cookie (cross-site post)');
      await addPerson(t, { username: 'leaver', role: 'ward-nurse', org: 'RX9' });
      const { verifier, res } = await signIn('leaver');
      const code = new URL(res.headers.get('location')!).searchParams.get('code')!;
      await disableUser(t.server.driver, 'leaver');
      const refused = await exchange(t, { code, redirect_uri: TEST_APP.redirectUri, client_id: TEST_APP.clientId, code_verifier: verifier });
      assert.equal(refused.body.error, 'invalid_grant');
    });
  });
}
