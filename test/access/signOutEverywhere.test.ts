// Signed out everywhere: a password reset, disabling a person, or `carebridge users sign-out` (a lost or
// shared device) ends every app sign-in of theirs as well as their portal sessions. Before, an app signed in
// with the old password kept its refresh token (up to 30 days with offline_access) and its access tokens
// after the reset that was meant to shut out whoever knew that password. Real HTTP, both storage engines.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ENGINES, startTestServer, type TestServer } from '../support/server.ts';
import { addPerson, exchange, PERSON_PASSWORD, personCode, personSignIn, refreshToken, TEST_APP } from '../support/people.ts';
import { waitForAudit } from '../support/audit.ts';
import { runCli } from '../cli/cli.ts';
import { disableUser, enableUser, setPassword } from '../../src/access/index.ts';

/** Past the second the person was signed out in: a token's iat is in whole seconds. */
const nextSecond = () => new Promise((resolve) => setTimeout(resolve, 1000 - (Date.now() % 1000) + 50));

for (const engine of ENGINES) {
  describe(`signed out everywhere (${engine})`, () => {
    let t: TestServer;
    const answer = async (token: string) => {
      const res = await fetch(`${t.base}/Patient?_count=1`, { headers: { authorization: `Bearer ${token}` } });
      return { status: res.status, text: await res.text() };
    };
    const refresh = (token: string) => refreshToken(t, { refresh_token: token, client_id: TEST_APP.clientId });

    before(async () => {
      t = await startTestServer(engine, { CAREBRIDGE_TOKEN_RATE_LIMIT: '1000', CAREBRIDGE_SIGN_IN_RATE_LIMIT: '100' });
      for (const username of ['reset.nurse', 'other.nurse', 'leaver.nurse', 'lost.tablet']) await addPerson(t, { username, role: 'ward-nurse', org: 'RX9' });
    });
    after(() => t.close());

    it('a password reset ends the person\'s app sign-ins: their refresh and access tokens are refused; a new sign-in works, and nobody else is touched', async () => {
      const kept = await personSignIn(t, 'reset.nurse', { scope: 'user/*.rs online_access' });
      const short = await personSignIn(t, 'reset.nurse', { scope: 'user/*.rs' });
      const other = await personSignIn(t, 'other.nurse', { scope: 'user/*.rs online_access' });
      const pending = await personCode(t, 'reset.nurse', { scope: 'user/*.rs online_access' });
      await setPassword(t.server.driver, 'reset.nurse', PERSON_PASSWORD);
      const late = await exchange(t, { code: pending.code, ...pending.exchangeForm });
      assert.equal(late.body.error, 'invalid_grant', 'a code asked for before the reset, exchanged after it');
      assert.match(late.body.error_description, /signed out everywhere since this code was issued/);
      for (const token of [kept.access_token, short.access_token]) {
        const refused = await answer(token);
        assert.equal(refused.status, 401, 'an access token from before the reset');
        assert.match(refused.text, /signed out everywhere since it was issued/);
      }
      assert.equal((await refresh(kept.refresh_token)).body.error, 'invalid_grant', 'and the refresh token that would have outlived it by an hour, or 30 days');
      assert.equal((await answer(other.access_token)).status, 200, 'another person\'s sign-in goes on');
      assert.equal((await refresh(other.refresh_token)).status, 200);
      await nextSecond();
      const again = await personSignIn(t, 'reset.nurse', { scope: 'user/*.rs online_access' });
      assert.equal((await answer(again.access_token)).status, 200, 'signing in afresh works');
      assert.equal((await refresh(again.refresh_token)).status, 200);
    });

    it('disabled, then enabled again: the app sign-ins from before stay ended', async () => {
      const before = await personSignIn(t, 'leaver.nurse', { scope: 'user/*.rs online_access' });
      await disableUser(t.server.driver, 'leaver.nurse');
      await enableUser(t.server.driver, 'leaver.nurse');
      assert.equal((await refresh(before.refresh_token)).body.error, 'invalid_grant', 'not brought back by enabling them');
      assert.equal((await answer(before.access_token)).status, 401);
      await nextSecond();
      assert.equal((await answer((await personSignIn(t, 'leaver.nurse', { scope: 'user/*.rs' })).access_token)).status, 200);
    });

    it('carebridge users sign-out: everything ends, the account stays enabled, and the administrator\'s act is audited', async () => {
      const tablet = await personSignIn(t, 'lost.tablet', { scope: 'user/*.rs online_access' });
      const run = await runCli(['users', 'sign-out', 'lost.tablet', '--db', t.database]);
      assert.equal(run.code, 0, run.stderr);
      assert.match(run.stdout, /Signed lost.tablet out everywhere/);
      assert.equal((await answer(tablet.access_token)).status, 401);
      assert.equal((await refresh(tablet.refresh_token)).body.error, 'invalid_grant');
      await nextSecond();
      assert.equal((await answer((await personSignIn(t, 'lost.tablet', { scope: 'user/*.rs' })).access_token)).status, 200, 'still enabled');
      const events = await waitForAudit(t.fhir, '_sort=date', (es) => es.some((e) => /^signed out everywhere/.test(e.outcomeDesc ?? '')));
      const signedOut = events.filter((e) => /^signed out everywhere/.test(e.outcomeDesc ?? ''));
      assert.equal(signedOut.length, 1);
      assert.match(JSON.stringify(signedOut[0].entity), /lost\.tablet/);

      const unknown = await runCli(['users', 'sign-out', 'nobody.here', '--db', t.database]);
      assert.notEqual(unknown.code, 0);
      assert.match(unknown.stderr, /nobody\.here/);
    });
  });
}
