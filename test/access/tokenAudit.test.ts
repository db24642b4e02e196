// Every token request at POST /oauth2/token is in the audit trail, as people's sign-ins are (DICOM 110114 User
// Authentication, 110122 Login): guesses at a system client's secret, the token it then gets (a system
// token reaches every record), a replayed client assertion, forged, mismatched and replayed authorization
// codes, refused scopes. What an information-governance lead needs: who (client, and the person for a code),
// from where, issued or refused and why, the scopes granted; never the secret, assertion, code or token.
// Real HTTP against the test server, both storage engines; `carebridge audit verify` still passes after.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import { ENGINES, TEST_ADMIN, startTestServer, type TestServer } from '../support/server.ts';
import { stopOwnPostgres } from '../support/postgres.ts';
import { waitForAudit } from '../support/audit.ts';
import { addPerson, authorize, exchange, hiddenField, pkce, postAuthorize, PERSON_PASSWORD, TEST_APP } from '../support/people.ts';
import { runCli } from '../cli/cli.ts';
import { addClient, revokeClient } from '../../src/access/index.ts';
import { storedJournalTexts } from '../support/auditJournal.ts';

after(() => stopOwnPostgres());

const DCM = 'http://dicom.nema.org/resources/ontology/DCM';
const LOGIN = `type=${encodeURIComponent(`${DCM}|110114`)}&subtype=${encodeURIComponent(`${DCM}|110122`)}`;
const FORM = { 'content-type': 'application/x-www-form-urlencoded' };
const ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

async function tokenRequest(origin: string, fields: Record<string, string>, headers: Record<string, string> = {}) {
  const res = await fetch(`${origin}/oauth2/token`, { method: 'POST', headers: { ...FORM, ...headers }, body: new URLSearchParams(fields).toString() });
  return { status: res.status, body: await res.json() };
}

const basic = (id: string, secret: string) => ({ authorization: `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}` });
const claims = (token: string) => JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString());
/** One line per event, as an IG lead reads the trail: outcome, who, why. */
const line = (e: any) => `${e.outcome} ${e.agent[0].who.display}: ${e.outcomeDesc}`;

for (const engine of ENGINES) {
  describe(`token requests in the audit trail (${engine})`, () => {
    let t: TestServer;
    /** Everything the trail stores, as text, to look for credentials in. */
    const storedText = async () => (await storedJournalTexts(t.server.driver)).join('\n');

    before(async () => {
      t = await startTestServer(engine, { CAREBRIDGE_TOKEN_RATE_LIMIT: '1000' });
    });
    after(async () => t?.close());

    it("wrong secrets for the admin client, then its token: each refusal and the issue are found under the client, never the secret", async () => {
      const guesses = Array.from({ length: 10 }, (_, i) => `guess-${i}-${'x'.repeat(20)}`);
      for (const guess of guesses) assert.equal((await tokenRequest(t.url, { grant_type: 'client_credentials' }, basic(TEST_ADMIN.id, guess))).status, 401);
      const ok = await tokenRequest(t.url, { grant_type: 'client_credentials', client_id: TEST_ADMIN.id, client_secret: TEST_ADMIN.secret });
      assert.equal(ok.status, 200);

      const refused = await waitForAudit(t.fhir, `altid=${TEST_ADMIN.id}&${LOGIN}&outcome=4`, (es) => es.length >= 10);
      assert.equal(refused.length, 10, refused.map(line).join('\n'));
      for (const e of refused) {
        assert.equal(e.outcomeDesc, 'token request (client_credentials, client secret): wrong client secret');
        assert.equal(e.agent[0].who.identifier.value, TEST_ADMIN.id);
        assert.equal(e.agent[0].type.coding[0].code, '110150', 'the agent is an application');
        assert.equal(e.agent[0].network.address, '127.0.0.1');
        assert.equal(e.action, 'E');
      }
      const issued = await waitForAudit(t.fhir, `altid=${TEST_ADMIN.id}&${LOGIN}&outcome=0`, (es) => es.some((e) => e.agent[0].policy?.[0] === `urn:uuid:${claims(ok.body.access_token).jti}`));
      const event = issued.find((e) => e.agent[0].policy?.[0] === `urn:uuid:${claims(ok.body.access_token).jti}`)!;
      assert.equal(event.outcomeDesc, 'token request (client_credentials, client secret): token issued for system/*.cruds');
      assert.equal(event.agent[0].role[0].text, 'system/*.cruds', 'the scopes granted');
      assert.equal(event.agent[0].network.address, '127.0.0.1');

      // The token's own calls carry the same session id, so the issue ties to what the token did.
      const read = await fetch(`${t.base}/Patient?_count=1`, { headers: { authorization: `Bearer ${ok.body.access_token}` } });
      assert.equal(read.status, 200);
      await waitForAudit(t.fhir, `altid=${TEST_ADMIN.id}&type=rest&subtype=search-type`, (es) => es.some((e) => e.agent[0].policy?.[0] === event.agent[0].policy[0]));

      const text = await storedText();
      for (const secret of [TEST_ADMIN.secret, ...guesses, ok.body.access_token]) assert.ok(!text.includes(secret), 'no secret or token is stored');
    });

    it('an unknown client, a revoked client and a refused scope are refused with their reason', async () => {
      const reader = await addClient(t.server.driver, { name: 'Audit test reader', scopes: 'system/Patient.rs' });
      const revoked = await addClient(t.server.driver, { name: 'Audit test revoked', scopes: 'system/Patient.rs' });
      await revokeClient(t.server.driver, revoked.client.clientId);
      assert.equal((await tokenRequest(t.url, { grant_type: 'client_credentials', client_id: 'no-such-client', client_secret: 'whatever-it-is' })).status, 401);
      assert.equal((await tokenRequest(t.url, { grant_type: 'client_credentials' }, basic(revoked.client.clientId, revoked.secret!))).status, 401);
      const escalate = await tokenRequest(t.url, { grant_type: 'client_credentials', scope: 'system/*.cruds' }, basic(reader.client.clientId, reader.secret!));
      assert.equal(escalate.status, 400);

      const unknown = await waitForAudit(t.fhir, `${LOGIN}&outcome=4`, (es) => es.some((e) => e.agent[0].who.display === 'no-such-client (no such client)'));
      const e = unknown.find((x) => x.agent[0].who.display === 'no-such-client (no such client)')!;
      assert.equal(e.outcomeDesc, 'token request (client_credentials, client secret): unknown client');
      assert.equal(e.agent[0].altId, undefined, 'an unregistered id is not indexed as an agent');
      const [gone] = await waitForAudit(t.fhir, `altid=${revoked.client.clientId}&${LOGIN}`);
      assert.equal(line(gone), '4 Audit test revoked: token request (client_credentials, client secret): client revoked');
      const [scope] = await waitForAudit(t.fhir, `altid=${reader.client.clientId}&${LOGIN}`);
      assert.equal(line(scope), "4 Audit test reader: token request (client_credentials, client secret): scope refused: 'system/*.cruds' not granted to this client");
      const text = await storedText();
      assert.ok(!text.includes(reader.secret!) && !text.includes(revoked.secret!) && !text.includes('whatever-it-is'));
    });

    it('private_key_jwt: the token is audited, and a replayed assertion (jti) is refused and recorded, never the assertion', async () => {
      const { publicKey, privateKey } = await generateKeyPair('ES256');
      const { client } = await addClient(t.server.driver, { name: 'Audit key client', scopes: 'system/Patient.rs', jwks: { keys: [{ ...(await exportJWK(publicKey)), kid: 'a1', alg: 'ES256' }] } });
      const assertion = await new SignJWT({}).setProtectedHeader({ alg: 'ES256', kid: 'a1' }).setIssuer(client.clientId).setSubject(client.clientId)
        .setAudience(`${t.url}/oauth2/token`).setJti('audit-jti-1').setIssuedAt().setExpirationTime('2m').sign(privateKey);
      const fields = { grant_type: 'client_credentials', client_assertion_type: ASSERTION_TYPE, client_assertion: assertion };
      assert.equal((await tokenRequest(t.url, fields)).status, 200);
      assert.equal((await tokenRequest(t.url, fields)).status, 401, 'replayed');
      const forged = await new SignJWT({}).setProtectedHeader({ alg: 'ES256', kid: 'a1' }).setIssuer(client.clientId).setSubject(client.clientId)
        .setAudience(`${t.url}/oauth2/token`).setJti('audit-jti-2').setIssuedAt().setExpirationTime('2m').sign((await generateKeyPair('ES256')).privateKey);
      assert.equal((await tokenRequest(t.url, { ...fields, client_assertion: forged })).status, 401, 'signed by another key');

      const events = await waitForAudit(t.fhir, `altid=${client.clientId}&${LOGIN}&_sort=date`, (es) => es.length >= 3);
      assert.deepEqual(events.map(line), [
        '0 Audit key client: token request (client_credentials, private_key_jwt): token issued for system/Patient.rs',
        "4 Audit key client: token request (client_credentials, private_key_jwt): client assertion replayed: jti 'audit-jti-1' used before",
        '4 Audit key client: token request (client_credentials, private_key_jwt): bad client assertion: signature verification failed',
      ]);
      const text = await storedText();
      assert.ok(!text.includes(assertion) && !text.includes(forged), 'no assertion is stored');
    });

    it("forged, mismatched and replayed authorization codes are refused and recorded under the app and the person, never the code", async () => {
      assert.equal((await t.fhir.put('Practitioner/audit-nurse', { resourceType: 'Practitioner', id: 'audit-nurse', name: [{ family: 'Nurse' }] })).status, 201);
      const userId = await addPerson(t, { username: 'audit.nurse', role: 'ward-nurse', org: 'RX9', fhirUser: 'Practitioner/audit-nurse' });
      const forgedCode = 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.forged-signature-text';
      const forged = await exchange(t, { code: forgedCode, redirect_uri: TEST_APP.redirectUri, client_id: TEST_APP.clientId, code_verifier: 'v'.repeat(43) });
      assert.equal(forged.status, 400);

      const { verifier, challenge } = pkce();
      const page = await authorize(t, { response_type: 'code', client_id: TEST_APP.clientId, redirect_uri: TEST_APP.redirectUri, scope: 'user/*.rs', state: 's', code_challenge: challenge, code_challenge_method: 'S256', aud: t.base });
      const back = await postAuthorize(t, page.cookie, { request: hiddenField(page.html, 'request'), csrf: hiddenField(page.html, 'csrf'), username: 'audit.nurse', password: PERSON_PASSWORD });
      assert.equal(back.status, 303);
      const code = new URL(back.headers.get('location')!).searchParams.get('code')!;
      const base = { code, redirect_uri: TEST_APP.redirectUri, client_id: TEST_APP.clientId };
      assert.equal((await exchange(t, { ...base, code_verifier: 'w'.repeat(43) })).status, 400, 'PKCE mismatch');
      const ok = await exchange(t, { ...base, code_verifier: verifier });
      assert.equal(ok.status, 200);
      assert.equal((await exchange(t, { ...base, code_verifier: verifier })).status, 400, 'replayed code');

      // Under the app when no person could be told from the code.
      const [bad] = await waitForAudit(t.fhir, `altid=${TEST_APP.clientId}&${LOGIN}`);
      assert.equal(line(bad), '4 Test app: token request (authorization_code): authorization code not valid or expired');
      // Under the person (their id, and who they are in the record) once the code names them, the app beside them.
      const theirs = await waitForAudit(t.fhir, `altid=${userId}&${LOGIN}&_sort=date`, (es) => es.filter((e) => e.outcomeDesc.startsWith('token request')).length >= 3);
      const exchanges = theirs.filter((e) => e.outcomeDesc.startsWith('token request'));
      assert.deepEqual(exchanges.map((e) => `${e.outcome} ${e.outcomeDesc}`), [
        '4 token request (authorization_code): PKCE code_verifier does not match',
        '0 token request (authorization_code): token issued as ward-nurse at RX9 for user/*.rs',
        '4 token request (authorization_code): authorization code used already (replayed): the sign-in ended, its access token revoked',
      ]);
      for (const e of exchanges) {
        assert.equal(e.agent[0].who.reference, 'Practitioner/audit-nurse');
        assert.equal(e.agent[1].who.identifier.value, TEST_APP.clientId, 'the app is the second participant');
        assert.equal(e.agent[1].requestor, false);
      }
      assert.equal(exchanges[1].agent[0].policy[0], `urn:uuid:${claims(ok.body.access_token).jti}`);
      const byAgent = await waitForAudit(t.fhir, `agent=Practitioner/audit-nurse&${LOGIN}`, (es) => es.length >= 3);
      assert.ok(byAgent.length >= 3, 'found by who they are in the record');
      const text = await storedText();
      for (const secret of [forgedCode, code, verifier, ok.body.access_token]) assert.ok(!text.includes(secret), 'no code, verifier or token is stored');
    });

    it('an unsupported grant type is recorded, and `carebridge audit verify` passes over all of this', async () => {
      assert.equal((await tokenRequest(t.url, { grant_type: 'password', client_id: TEST_ADMIN.id, username: 'u', password: 'p' })).status, 400);
      const events = await waitForAudit(t.fhir, `altid=${TEST_ADMIN.id}&${LOGIN}`, (es) => es.some((e) => /unsupported grant_type/.test(e.outcomeDesc)));
      assert.equal(events.find((e) => /unsupported grant_type/.test(e.outcomeDesc)).outcomeDesc, "token request: unsupported grant_type 'password'");
      await new Promise((r) => setTimeout(r, 1100)); // past the next anchor of the chain's head
      const verified = await runCli(['audit', 'verify', '--db', t.database]);
      assert.equal(verified.code, 0, verified.stdout + verified.stderr);
    });
  });
}
