// Behind a TLS-terminating proxy (CAREBRIDGE_TRUST_PROXY) the caller's address and protocol come from the
// proxy's X-Forwarded-* headers: cookies are Secure and sessions, the audit trail and rate limits record
// the person's address. Without the setting those headers are anyone's to write, so they are ignored.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ENGINES, startTestServer, type TestServer } from '../support/server.ts';
import { addPerson, authorize, pkce, PERSON_PASSWORD, TEST_APP } from '../support/people.ts';
import { waitForAudit } from '../support/audit.ts';
import { loadServerConfig } from '../../src/config.ts';

const FORWARDED = { 'x-forwarded-proto': 'https', 'x-forwarded-for': '203.0.113.7' };

/** Signs in through the portal's form, the request carrying `headers`; answers the session cookie as set. */
async function signIn(t: TestServer, username: string, headers: Record<string, string>): Promise<string | undefined> {
  const page = await fetch(`${t.url}/sign-in`, { headers });
  const cookie = page.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ');
  const csrf = /name="_csrf" value="([^"]+)"/.exec(await page.text())![1];
  const res = await fetch(`${t.url}/sign-in`, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded', cookie, ...headers },
    body: new URLSearchParams({ username, password: PERSON_PASSWORD, _csrf: csrf }).toString(),
  });
  assert.equal(res.status, 303, await res.text());
  return res.headers.getSetCookie().find((c) => c.startsWith('carebridge_session='));
}

async function sessionAddress(t: TestServer, username: string): Promise<string> {
  const row = await t.server.driver.get<{ address: string }>('SELECT s.address FROM access_sessions s JOIN access_users u ON u.user_id = s.user_id WHERE u.username = ?', [username]);
  return row!.address;
}

for (const engine of ENGINES) {
  describe(`behind a trusted proxy (${engine})`, () => {
    let t: TestServer;
    before(async () => (t = await startTestServer(engine, { CAREBRIDGE_TRUST_PROXY: 'true' })));
    after(() => t?.close());

    it('a sign-in forwarded as https from 203.0.113.7 gets a Secure session cookie, and the session and audit trail record 203.0.113.7', async () => {
      await addPerson(t, { username: 'proxied.nurse', role: 'ward-nurse', org: 'RX9' });
      const session = await signIn(t, 'proxied.nurse', FORWARDED);
      assert.ok(session, 'a session cookie is set');
      assert.match(session, /;\s*Secure/i);
      assert.equal(await sessionAddress(t, 'proxied.nurse'), '203.0.113.7');
      await waitForAudit(t.fhir, 'AuditEvent?_count=1000', (events) => events.some((e) => JSON.stringify(e).includes('"203.0.113.7"')));
    });
  });

  describe(`without CAREBRIDGE_TRUST_PROXY (${engine})`, () => {
    let t: TestServer;
    before(async () => (t = await startTestServer(engine)));
    after(() => t?.close());

    it('X-Forwarded-For and X-Forwarded-Proto are ignored: the address stays the connection\'s and the cookie is not marked https-only by a header', async () => {
      await addPerson(t, { username: 'direct.nurse', role: 'ward-nurse', org: 'RX9' });
      const session = await signIn(t, 'direct.nurse', FORWARDED);
      assert.ok(session, 'a session cookie is set');
      assert.doesNotMatch(session, /;\s*Secure/i);
      assert.equal(await sessionAddress(t, 'direct.nurse'), '127.0.0.1');
    });
  });
}

describe('an https base URL', () => {
  let t: TestServer;
  before(async () => (t = await startTestServer('sqlite', { CAREBRIDGE_BASE_URL: 'https://carebridge.example/fhir' })));
  after(() => t?.close());

  it('makes the portal\'s cookies Secure even when no proxy says the request was https', async () => {
    const page = await fetch(`${t.url}/sign-in`);
    const form = page.headers.getSetCookie().find((c) => c.startsWith('carebridge_form='));
    assert.ok(form, 'the sign-in form sets its cookie');
    assert.match(form, /;\s*Secure/i);
  });

  it('makes the SMART sign-in page\'s cookie Secure too', async () => {
    await addPerson(t, { username: 'app.nurse', role: 'ward-nurse', org: 'RX9' });
    const { res } = await authorize(t, { response_type: 'code', client_id: TEST_APP.clientId, redirect_uri: TEST_APP.redirectUri, scope: 'user/*.rs', code_challenge: pkce().challenge, code_challenge_method: 'S256', aud: 'https://carebridge.example/fhir' });
    assert.equal(res.status, 200);
    const csrf = res.headers.getSetCookie().find((c) => c.startsWith('cb_authorize='));
    assert.ok(csrf, 'the sign-in page sets its cookie');
    assert.match(csrf, /;\s*Secure/i);
  });
});

describe('CAREBRIDGE_TRUST_PROXY', () => {
  const trust = (value?: string) => loadServerConfig({}, value === undefined ? {} : { CAREBRIDGE_TRUST_PROXY: value }).trustProxy;
  it('is off by default, and takes true, a hop count, or addresses and CIDR ranges', () => {
    assert.equal(trust(), false);
    assert.equal(trust('true'), true);
    assert.equal(trust('2'), 2);
    assert.deepEqual(trust('10.0.0.1, 10.1.0.0/16,::1'), ['10.0.0.1', '10.1.0.0/16', '::1']);
  });
  it('refuses anything else rather than trusting the wrong proxies', () => {
    assert.throws(() => trust('10.0.0.300'), /CAREBRIDGE_TRUST_PROXY/);
    assert.throws(() => trust('10.0.0.0/40'), /CAREBRIDGE_TRUST_PROXY/);
    assert.throws(() => trust('yes please'), /CAREBRIDGE_TRUST_PROXY/);
  });
});
