// Refresh tokens (SMART online_access, offline_access): an app a person signed in to keeps working past its
// access token's five minutes, for no longer and no more widely than the sign-in allowed. Each refresh token
// is used once; a copied one presented again ends the whole sign-in. Real HTTP, both storage engines.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ENGINES, startTestServer, type TestServer } from '../support/server.ts';
import { addPerson, exchange, personCode, personSignIn, refreshToken, TEST_APP } from '../support/people.ts';
import { waitForAudit } from '../support/audit.ts';
import { addClient, disableUser, enableUser, revokeClient } from '../../src/access/index.ts';

const DCM = 'http://dicom.nema.org/resources/ontology/DCM';
const LOGIN = `type=${encodeURIComponent(`${DCM}|110114`)}&subtype=${encodeURIComponent(`${DCM}|110122`)}`;
const OFFLINE_APP = { clientId: 'offline-app', redirectUri: 'http://127.0.0.1:9/offline' };
const MINUTE = 60_000;

for (const engine of ENGINES) {
  describe(`refresh tokens (${engine})`, () => {
    let t: TestServer;
    let nurseId: string;
    const read = (token: string, path = 'Patient?_count=1') => fetch(`${t.base}/${path}`, { headers: { authorization: `Bearer ${token}` } }).then((r) => r.status);
    /** The stored row for a refresh token's family, by its newest token's hash. */
    const family = async (clientId: string) => t.server.driver.all<{ token_hash: string; family_id: string; created_ms: string | number; expires_ms: string | number }>(
      'SELECT token_hash, family_id, created_ms, expires_ms FROM access_refresh_tokens WHERE client_id = ? ORDER BY created_ms DESC', [clientId]);

    before(async () => {
      t = await startTestServer(engine, { CAREBRIDGE_TOKEN_RATE_LIMIT: '1000', CAREBRIDGE_SIGN_IN_RATE_LIMIT: '100', CAREBRIDGE_ONLINE_ACCESS_MINUTES: '15', CAREBRIDGE_OFFLINE_ACCESS_DAYS: '7' });
      nurseId = await addPerson(t, { username: 'refresh.nurse', role: 'ward-nurse', org: 'RX9' });
      await addClient(t.server.driver, { clientId: OFFLINE_APP.clientId, name: 'Offline app', scopes: 'user/*.rs offline_access', redirectUris: [OFFLINE_APP.redirectUri], publicClient: true });
    });
    after(() => t.close());

    it('no refresh token unless the app asked for online_access or offline_access', async () => {
      const response = await personSignIn(t, 'refresh.nurse', { scope: 'user/*.rs' });
      assert.equal(response.refresh_token, undefined);
    });

    it('online_access: a refresh gives a new access token and a new refresh token; the old one stops working', async () => {
      const first = await personSignIn(t, 'refresh.nurse', { scope: 'user/*.rs online_access' });
      assert.equal(first.scope, 'user/*.rs online_access');
      assert.ok(first.refresh_token);
      const refreshed = await refreshToken(t, { refresh_token: first.refresh_token, client_id: TEST_APP.clientId });
      assert.equal(refreshed.status, 200, JSON.stringify(refreshed.body));
      assert.equal(refreshed.body.token_type, 'Bearer');
      assert.equal(refreshed.body.scope, 'user/*.rs online_access');
      assert.ok(refreshed.body.refresh_token && refreshed.body.refresh_token !== first.refresh_token, 'rotated');
      assert.notEqual(refreshed.body.access_token, first.access_token);
      assert.equal(await read(refreshed.body.access_token), 200, 'the new access token acts for the person');
      const claims = JSON.parse(Buffer.from(refreshed.body.access_token.split('.')[1], 'base64url').toString());
      assert.equal(claims.sub, nurseId);
      assert.equal(claims.role, 'ward-nurse');

      const next = await refreshToken(t, { refresh_token: refreshed.body.refresh_token, client_id: TEST_APP.clientId });
      assert.equal(next.status, 200, 'the new one works once');
    });

    it('a refresh token used twice revokes every refresh token of that sign-in, the newest too', async () => {
      const first = await personSignIn(t, 'refresh.nurse', { scope: 'user/*.rs online_access' });
      const second = await refreshToken(t, { refresh_token: first.refresh_token, client_id: TEST_APP.clientId });
      assert.equal(second.status, 200);
      const replayed = await refreshToken(t, { refresh_token: first.refresh_token, client_id: TEST_APP.clientId });
      assert.equal(replayed.status, 400);
      assert.equal(replayed.body.error, 'invalid_grant');
      assert.match(replayed.body.error_description, /used already/);
      const newest = await refreshToken(t, { refresh_token: second.body.refresh_token, client_id: TEST_APP.clientId });
      assert.equal(newest.body.error, 'invalid_grant', 'the family is revoked: whoever copied the token gets nothing more');
      // Another sign-in of the same person to the same app is not touched.
      const other = await personSignIn(t, 'refresh.nurse', { scope: 'user/*.rs online_access' });
      assert.equal((await refreshToken(t, { refresh_token: other.refresh_token, client_id: TEST_APP.clientId })).status, 200);
    });

    it('an authorization code presented again ends its sign-in: the access and refresh tokens it gave, rotated or not; a code never replayed keeps its own', async () => {
      const auditee = await addPerson(t, { username: 'refresh.copied', role: 'ward-nurse', org: 'RX9' });
      const signIn = () => personCode(t, 'refresh.copied', { scope: 'user/*.rs offline_access', app: OFFLINE_APP });
      const copied = await signIn();
      const first = await exchange(t, { code: copied.code, ...copied.exchangeForm });
      assert.equal(first.status, 200, JSON.stringify(first.body));
      assert.ok(first.body.refresh_token);
      const untouched = await signIn();
      const kept = await exchange(t, { code: untouched.code, ...untouched.exchangeForm });
      const rotated = await signIn();
      const rotatedFirst = await exchange(t, { code: rotated.code, ...rotated.exchangeForm });
      const rotatedNext = await refreshToken(t, { refresh_token: rotatedFirst.body.refresh_token, client_id: OFFLINE_APP.clientId });
      assert.equal(rotatedNext.status, 200);

      const replayed = await exchange(t, { code: copied.code, ...copied.exchangeForm });
      assert.equal(replayed.status, 400);
      assert.equal(replayed.body.error, 'invalid_grant');
      assert.match(replayed.body.error_description, /used already, so the sign-in it began has ended: its access and refresh tokens are revoked/);
      assert.equal(replayed.body.access_token, undefined);
      const refused = await fetch(`${t.base}/Patient?_count=1`, { headers: { authorization: `Bearer ${first.body.access_token}` } });
      assert.equal(refused.status, 401, 'the first exchange\'s access token is refused at once, not left working for its five minutes');
      assert.match(JSON.stringify(await refused.json()), /sign-in this token comes from has ended/);
      assert.equal(await read(rotatedNext.body.access_token), 200, 'not yet: that code has not been replayed');
      const afterReplay = await refreshToken(t, { refresh_token: first.body.refresh_token, client_id: OFFLINE_APP.clientId });
      assert.equal(afterReplay.status, 400);
      assert.equal(afterReplay.body.error, 'invalid_grant', 'whoever got the first exchange\'s refresh token gets nothing more');

      assert.equal((await exchange(t, { code: rotated.code, ...rotated.exchangeForm })).body.error, 'invalid_grant');
      assert.equal((await refreshToken(t, { refresh_token: rotatedNext.body.refresh_token, client_id: OFFLINE_APP.clientId })).body.error, 'invalid_grant', 'the family\'s newest token too');
      assert.equal(await read(rotatedFirst.body.access_token), 401, 'the access token of the code\'s own exchange');

      const stillWorks = await refreshToken(t, { refresh_token: kept.body.refresh_token, client_id: OFFLINE_APP.clientId });
      assert.equal(stillWorks.status, 200, 'another sign-in of the same person to the same app is not touched');
      assert.equal(await read(kept.body.access_token), 200, 'nor its access tokens');
      assert.equal(await read(stillWorks.body.access_token), 200);

      const events = await waitForAudit(t.fhir, `altid=${auditee}&${LOGIN}&_sort=date`, (es) => es.filter((e) => /replayed/.test(e.outcomeDesc)).length >= 2);
      const replays = events.filter((e) => /replayed/.test(e.outcomeDesc));
      assert.deepEqual(replays.map((e) => `${e.outcome} ${e.outcomeDesc}`), Array(2).fill('4 token request (authorization_code): authorization code used already (replayed): the sign-in ended, its access and refresh tokens revoked'));
      for (const e of replays) assert.equal(e.agent[1].who.identifier.value, OFFLINE_APP.clientId, 'the app is the second participant');
    });

    it('a refresh token used twice ends the sign-in: every access token it gave is refused from then on, another sign-in\'s is not', async () => {
      const first = await personSignIn(t, 'refresh.nurse', { scope: 'user/*.rs online_access' });
      const second = await refreshToken(t, { refresh_token: first.refresh_token, client_id: TEST_APP.clientId });
      assert.equal(second.status, 200);
      const other = await personSignIn(t, 'refresh.nurse', { scope: 'user/*.rs online_access' });
      assert.equal((await refreshToken(t, { refresh_token: first.refresh_token, client_id: TEST_APP.clientId })).status, 400);
      for (const token of [first.access_token, second.body.access_token]) {
        const refused = await fetch(`${t.base}/Patient?_count=1`, { headers: { authorization: `Bearer ${token}` } });
        assert.equal(refused.status, 401, 'whoever holds an access token of the copied sign-in loses it too');
        assert.match(JSON.stringify(await refused.json()), /sign-in this token comes from has ended/);
      }
      assert.equal(await read(other.access_token), 200, 'the person\'s other sign-in goes on');
    });

    it('a code without offline or online access, presented again: the access token its exchange gave is refused', async () => {
      const copied = await personCode(t, 'refresh.nurse', { scope: 'user/*.rs' });
      const first = await exchange(t, { code: copied.code, ...copied.exchangeForm });
      assert.equal(first.status, 200, JSON.stringify(first.body));
      const replayed = await exchange(t, { code: copied.code, ...copied.exchangeForm });
      assert.equal(replayed.body.error, 'invalid_grant');
      assert.match(replayed.body.error_description, /used already, so the sign-in it began has ended: its access token is revoked/);
      assert.equal(await read(first.body.access_token), 401);
    });

    it('an authorization code sent twice at once: one exchange is given, and its refresh token is then revoked', async () => {
      const copied = await personCode(t, 'refresh.nurse', { scope: 'user/*.rs offline_access', app: OFFLINE_APP });
      const both = await Promise.all([1, 2].map(() => exchange(t, { code: copied.code, ...copied.exchangeForm })));
      assert.deepEqual(both.map((r) => r.status).sort(), [200, 400]);
      const given = both.find((r) => r.status === 200)!;
      assert.equal(both.find((r) => r.status === 400)!.body.error, 'invalid_grant');
      assert.equal((await refreshToken(t, { refresh_token: given.body.refresh_token, client_id: OFFLINE_APP.clientId })).body.error, 'invalid_grant');
      assert.equal(await read(given.body.access_token), 401, 'and its access token');
    });

    it('the same refresh token sent twice at once: one refresh is given, and then the whole sign-in is revoked', async () => {
      const first = await personSignIn(t, 'refresh.nurse', { scope: 'user/*.rs online_access' });
      const both = await Promise.all([1, 2].map(() => refreshToken(t, { refresh_token: first.refresh_token, client_id: TEST_APP.clientId })));
      assert.deepEqual(both.map((r) => r.status).sort(), [200, 400]);
      const given = both.find((r) => r.status === 200)!;
      assert.equal(both.find((r) => r.status === 400)!.body.error, 'invalid_grant');
      assert.equal((await refreshToken(t, { refresh_token: given.body.refresh_token, client_id: TEST_APP.clientId })).body.error, 'invalid_grant');
    });

    it('a refresh may narrow the scopes, never widen them (invalid_scope, and the refresh token still works)', async () => {
      const first = await personSignIn(t, 'refresh.nurse', { scope: 'user/*.rs online_access' });
      for (const wider of ['user/*.cruds', 'user/Patient.cruds', 'system/*.rs', 'patient/*.rs', 'offline_access', 'user/*.rs openid fhirUser']) {
        const refused = await refreshToken(t, { refresh_token: first.refresh_token, client_id: TEST_APP.clientId, scope: wider });
        assert.equal(refused.status, 400, wider);
        assert.equal(refused.body.error, 'invalid_scope', wider);
        assert.equal(refused.body.access_token, undefined, wider);
      }
      const narrower = await refreshToken(t, { refresh_token: first.refresh_token, client_id: TEST_APP.clientId, scope: 'user/Patient.rs' });
      assert.equal(narrower.status, 200, JSON.stringify(narrower.body));
      assert.equal(narrower.body.scope, 'user/Patient.rs');
      assert.equal(await read(narrower.body.access_token), 200);
      assert.equal(await read(narrower.body.access_token, 'Observation?_count=1'), 403, 'only what it asked for');
      // The sign-in's grant stands: the next refresh may ask for all of it again.
      const whole = await refreshToken(t, { refresh_token: narrower.body.refresh_token, client_id: TEST_APP.clientId });
      assert.equal(whole.body.scope, 'user/*.rs online_access');
    });

    it('offline_access only for an app registered with it; it lasts days, online_access minutes, as configured', async () => {
      const unregistered = await personSignIn(t, 'refresh.nurse', { scope: 'user/*.rs offline_access' });
      assert.equal(unregistered.scope, 'user/*.rs', 'the test app is not registered for offline_access');
      assert.equal(unregistered.refresh_token, undefined);

      const offline = await personSignIn(t, 'refresh.nurse', { scope: 'user/*.rs offline_access online_access', app: OFFLINE_APP });
      assert.equal(offline.scope, 'user/*.rs offline_access');
      assert.ok(offline.refresh_token);
      const [offlineRow] = await family(OFFLINE_APP.clientId);
      assert.equal(Number(offlineRow.expires_ms) - Number(offlineRow.created_ms), 7 * 24 * 60 * MINUTE, 'CAREBRIDGE_OFFLINE_ACCESS_DAYS');

      const online = await personSignIn(t, 'refresh.nurse', { scope: 'user/*.rs online_access' });
      const [onlineRow] = await family(TEST_APP.clientId);
      assert.equal(Number(onlineRow.expires_ms) - Number(onlineRow.created_ms), 15 * MINUTE, 'CAREBRIDGE_ONLINE_ACCESS_MINUTES');

      // A rotation keeps the sign-in's end: refreshing never makes it last longer.
      const rotated = await refreshToken(t, { refresh_token: online.refresh_token, client_id: TEST_APP.clientId });
      const [rotatedRow] = await family(TEST_APP.clientId);
      assert.ok(rotated.body.refresh_token);
      assert.equal(rotatedRow.family_id, onlineRow.family_id);
      assert.equal(Number(rotatedRow.expires_ms), Number(onlineRow.expires_ms));

      // Past its end, refused.
      await t.server.driver.run('UPDATE access_refresh_tokens SET expires_ms = ? WHERE family_id = ?', [Date.now() - 1, rotatedRow.family_id]);
      const expired = await refreshToken(t, { refresh_token: rotated.body.refresh_token, client_id: TEST_APP.clientId });
      assert.equal(expired.body.error, 'invalid_grant');
    });

    it('only hashes are stored, never a refresh token', async () => {
      const response = await personSignIn(t, 'refresh.nurse', { scope: 'user/*.rs online_access' });
      const rows = await t.server.driver.all<Record<string, unknown>>('SELECT * FROM access_refresh_tokens');
      assert.ok(rows.length > 0);
      assert.ok(!JSON.stringify(rows).includes(response.refresh_token));
    });

    it('refused for a person disabled since (for good: enabling them again does not bring it back), a revoked app, or another app', async () => {
      await addPerson(t, { username: 'refresh.leaver', role: 'ward-nurse', org: 'RX9' });
      const leaver = await personSignIn(t, 'refresh.leaver', { scope: 'user/*.rs online_access' });
      await disableUser(t.server.driver, 'refresh.leaver');
      const disabled = await refreshToken(t, { refresh_token: leaver.refresh_token, client_id: TEST_APP.clientId });
      assert.equal(disabled.status, 400);
      assert.equal(disabled.body.error, 'invalid_grant');
      await enableUser(t.server.driver, 'refresh.leaver');
      assert.equal((await refreshToken(t, { refresh_token: leaver.refresh_token, client_id: TEST_APP.clientId })).body.error, 'invalid_grant');

      const revocable = { clientId: 'revocable-app', redirectUri: 'http://127.0.0.1:9/revocable' };
      await addClient(t.server.driver, { clientId: revocable.clientId, name: 'Revocable', scopes: 'user/*.rs', redirectUris: [revocable.redirectUri], publicClient: true });
      const viaRevocable = await personSignIn(t, 'refresh.nurse', { scope: 'user/*.rs online_access', app: revocable });
      const elsewhere = await refreshToken(t, { refresh_token: viaRevocable.refresh_token, client_id: TEST_APP.clientId });
      assert.equal(elsewhere.body.error, 'invalid_grant', 'not for another app');
      await revokeClient(t.server.driver, revocable.clientId);
      const revoked = await refreshToken(t, { refresh_token: viaRevocable.refresh_token, client_id: revocable.clientId });
      assert.equal(revoked.status, 400);
      assert.equal(revoked.body.error, 'invalid_grant');

      assert.equal((await refreshToken(t, { refresh_token: 'not-a-refresh-token', client_id: TEST_APP.clientId })).body.error, 'invalid_grant');
      assert.equal((await refreshToken(t, { client_id: TEST_APP.clientId })).body.error, 'invalid_grant');
    });

    it('a confidential app authenticates to refresh, as to exchange its code', async () => {
      const confidential = { clientId: 'confidential-app', redirectUri: 'http://127.0.0.1:9/confidential' };
      const { secret } = await addClient(t.server.driver, { clientId: confidential.clientId, name: 'Confidential', scopes: 'user/*.rs', redirectUris: [confidential.redirectUri] });
      const response = await personSignIn(t, 'refresh.nurse', { scope: 'user/*.rs online_access', app: confidential, form: { client_secret: secret! } });
      const without = await refreshToken(t, { refresh_token: response.refresh_token, client_id: confidential.clientId });
      assert.equal(without.status, 401);
      assert.equal(without.body.error, 'invalid_client');
      const basic = { authorization: `Basic ${Buffer.from(`${confidential.clientId}:${secret}`).toString('base64')}` };
      assert.equal((await refreshToken(t, { refresh_token: response.refresh_token }, basic)).status, 200, 'not spent by the refused try');
    });

    it('every refresh, given or refused, is in the audit trail under the person, with the app beside them', async () => {
      const auditee = await addPerson(t, { username: 'refresh.audited', role: 'ward-nurse', org: 'RX9' });
      const first = await personSignIn(t, 'refresh.audited', { scope: 'user/*.rs online_access' });
      const second = await refreshToken(t, { refresh_token: first.refresh_token, client_id: TEST_APP.clientId });
      assert.equal(second.status, 200);
      assert.equal((await refreshToken(t, { refresh_token: first.refresh_token, client_id: TEST_APP.clientId })).status, 400);
      const events = await waitForAudit(t.fhir, `altid=${auditee}&${LOGIN}&_sort=date`, (es) => es.filter((e) => e.outcomeDesc.startsWith('token request (refresh_token)')).length >= 2);
      const refreshes = events.filter((e) => e.outcomeDesc.startsWith('token request (refresh_token)'));
      assert.deepEqual(refreshes.map((e) => `${e.outcome} ${e.outcomeDesc}`), [
        '0 token request (refresh_token): refreshed: token issued as ward-nurse at RX9 for user/*.rs online_access',
        '4 token request (refresh_token): refresh token used already (replayed): every refresh token of the sign-in revoked',
      ]);
      for (const e of refreshes) assert.equal(e.agent[1].who.identifier.value, TEST_APP.clientId, 'the app is the second participant');
      const claims = JSON.parse(Buffer.from(second.body.access_token.split('.')[1], 'base64url').toString());
      assert.equal(refreshes[0].agent[0].policy[0], `urn:uuid:${claims.jti}`, 'the new token\'s calls are tied to this entry');
    });
  });
}
