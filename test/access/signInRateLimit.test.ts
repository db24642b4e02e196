// Sign-in attempts are limited per address, in the portal and at /oauth2/authorize: lockout protects each
// account, this keeps one address from trying many accounts.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from '../support/server.ts';

describe('sign-in rate limit', () => {
  let t: TestServer;
  before(async () => (t = await startTestServer('sqlite', { CAREBRIDGE_SIGN_IN_RATE_LIMIT: '3' })));
  after(() => t.close());

  /** A real attempt: the portal's form carries its CSRF token and cookie (without them nothing is tried). */
  const post = async (path: string) => {
    let extra = '';
    let cookie = '';
    if (path === '/sign-in') {
      const page = await fetch(`${t.url}/sign-in`);
      cookie = (page.headers.getSetCookie?.() ?? []).map((c) => c.split(';')[0]).join('; ');
      extra = `&_csrf=${encodeURIComponent(/name="_csrf" value="([^"]+)"/.exec(await page.text())![1])}`;
    }
    return fetch(`${t.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', cookie }, body: `username=someone&password=guess-guess-guess${extra}` });
  };

  for (const path of ['/sign-in', '/oauth2/authorize']) {
    it(`${path}: the fourth attempt in a minute is refused with a page that says why`, async () => {
      for (let i = 0; i < 3; i++) assert.notEqual((await post(path)).status, 429, `attempt ${i + 1}`);
      const refused = await post(path);
      assert.equal(refused.status, 429);
      assert.match(await refused.text(), /Too many (sign-in )?attempts/i);
    });
  }
});
