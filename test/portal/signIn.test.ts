// Signing in to the portal and the session cookie it leaves, over real HTTP: how long the browser keeps
// the cookie, what a form sent after the session ended does, and which sessions signing in again ends.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ADMIN, TEST_PASSWORD, WARD_NURSE, csrfTokenIn, startPortalServer, textOf, type PortalTestServer } from './portalServer.ts';
import { ENGINES } from '../support/server.ts';
import { addUser } from '../../src/access/index.ts';
import { stopOwnPostgres } from '../support/postgres.ts';

after(stopOwnPostgres);

const MINUTE = 60_000;

/** The Cookie header value that sends back what a response set. */
const cookiesFrom = (res: Response) => res.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ');

const get = (t: PortalTestServer, path: string, cookie: string) => fetch(`${t.url}${path}`, { redirect: 'manual', headers: { cookie } });

const post = (t: PortalTestServer, path: string, cookie: string, fields: Record<string, string>) =>
  fetch(`${t.url}${path}`, { method: 'POST', redirect: 'manual', headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(fields).toString() });

for (const engine of ENGINES) {
  describe(`portal sign-in and the session cookie (${engine})`, () => {
    let t: PortalTestServer;
    before(async () => {
      t = await startPortalServer(engine);
      await t.addPerson(WARD_NURSE);
      await t.addPerson(ADMIN);
    });
    after(() => t?.close());

    it('the session cookie lasts as long as the server keeps the session, not 30 minutes from sign-in', async () => {
      const form = await fetch(`${t.url}/sign-in`);
      const res = await post(t, '/sign-in', cookiesFrom(form), { _csrf: csrfTokenIn(await form.text()), username: WARD_NURSE.username, password: TEST_PASSWORD });
      assert.equal(res.status, 303);
      const set = res.headers.getSetCookie().find((c) => c.startsWith('carebridge_session='))!;
      assert.ok(set, 'a session cookie is set');
      // A browser-session cookie: the browser keeps it while it is open, and the server's idle (30 minutes)
      // and absolute (12 hours) expiry decide when it stops working.
      assert.doesNotMatch(set, /max-age|expires/i, set);
      assert.match(set, /HttpOnly/i);
      const cookie = set.split(';')[0];
      for (let i = 0; i < 3; i++) {
        t.advanceClock(20 * MINUTE);
        assert.equal((await get(t, '/home', cookie)).status, 200, `still signed in ${(i + 1) * 20} minutes in, being active`);
      }
    });

    it('a form sent after the session ended takes the person to sign in, saying why', async () => {
      const { cookie } = await t.signIn(ADMIN);
      const page = await get(t, '/admin/users/new', cookie);
      assert.equal(page.status, 200);
      const csrf = csrfTokenIn(await page.text());
      t.advanceClock(31 * MINUTE); // idle for longer than the session lasts
      const sent = await post(t, '/admin/users', cookie, { _csrf: csrf, username: 'half.filled', name: 'Half Filled' });
      assert.equal(sent.status, 303, 'not a bare "form not accepted" refusal');
      assert.equal(sent.headers.get('location'), '/sign-in?reason=expired');
      const signInPage = await get(t, '/sign-in?reason=expired', cookiesFrom(sent));
      assert.match(textOf(await signInPage.text()), /Your session has ended, so you have been signed out\. Sign in again to continue\./);
    });

    it('signing in again in the same browser ends the session it held', async () => {
      const old = await t.signIn(WARD_NURSE);
      const home = await get(t, '/home', old.cookie);
      assert.equal(home.status, 200);
      const csrf = /_csrf=([^"&]+)/.exec(await home.text())![1];
      const again = await post(t, '/sign-in', old.cookie, { _csrf: csrf, username: WARD_NURSE.username, password: TEST_PASSWORD });
      assert.equal(again.status, 303);
      const fresh = cookiesFrom(again);
      assert.match(fresh, /carebridge_session=/);
      assert.notEqual(fresh, old.cookie, 'a new session id');
      assert.equal((await get(t, '/home', fresh)).status, 200);
      const stale = await get(t, '/home', old.cookie);
      assert.equal(stale.status, 303, 'the old session id no longer signs anyone in');
      assert.match(stale.headers.get('location') ?? '', /^\/sign-in/);
    });

    /** Password accepted for someone with two roles: the cookies that carry the pending choice of role. */
    const passwordForTwoRoles = async () => {
      const form = await fetch(`${t.url}/sign-in`);
      const formCookie = cookiesFrom(form);
      const res = await post(t, '/sign-in', formCookie, { _csrf: csrfTokenIn(await form.text()), username: 'two.roles', password: TEST_PASSWORD });
      assert.equal(res.status, 303);
      assert.equal(res.headers.get('location'), '/sign-in/choose');
      const cookie = `${formCookie}; ${cookiesFrom(res)}`;
      const choose = await get(t, '/sign-in/choose', cookie);
      assert.equal(choose.status, 200);
      return { cookie, csrf: csrfTokenIn(await choose.text()) };
    };
    const sessionSet = (res: Response) => res.headers.getSetCookie().some((c) => /^carebridge_session=[^;]/.test(c));

    it('the choice of role after the password starts one session: sending the same cookie again starts none', async () => {
      await addUser(t.driver, { username: 'two.roles', name: 'Two Roles', password: TEST_PASSWORD, memberships: [{ organisation: 'RX9', role: 'ward-nurse' }, { organisation: 'RX9', role: 'discharge-coordinator' }] });
      const { cookie, csrf } = await passwordForTwoRoles();
      const first = await post(t, '/sign-in/choose', cookie, { _csrf: csrf, membership: '0' });
      assert.equal(first.status, 303);
      assert.ok(sessionSet(first), 'signed in');
      const replay = await post(t, '/sign-in/choose', cookie, { _csrf: csrf, membership: '1' });
      assert.equal(replay.status, 303);
      assert.equal(replay.headers.get('location'), '/sign-in?reason=choice-expired');
      assert.ok(!sessionSet(replay), 'a copy of the cookie does not start another session');
    });

    it('signing out before choosing a role spends the pending sign-in', async () => {
      const { cookie, csrf } = await passwordForTwoRoles();
      const out = await post(t, `/sign-out?_csrf=${encodeURIComponent(csrf)}`, cookie, {});
      assert.equal(out.status, 303);
      const after = await post(t, '/sign-in/choose', cookie, { _csrf: csrf, membership: '0' });
      assert.equal(after.headers.get('location'), '/sign-in?reason=choice-expired');
      assert.ok(!sessionSet(after), 'no session from a sign-in abandoned by signing out');
    });
  });
}
