// Security headers on every answer: the API's own defaults, and the portal's pages keep their policy.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from '../support/server.ts';

describe('security headers', () => {
  let t: TestServer;
  before(async () => (t = await startTestServer('sqlite')));
  after(() => t.close());

  it('the API answers are neither sniffed, framed nor cached', async () => {
    for (const [url, init] of [
      [`${t.base}/metadata`, {}],
      [`${t.base}/Patient?_count=1`, { headers: t.auth }],
      [`${t.base}/Patient/nobody`, { headers: t.auth }],
      [`${t.url}/oauth2/token`, { method: 'POST', body: 'grant_type=client_credentials', headers: { 'content-type': 'application/x-www-form-urlencoded' } }],
    ] as const) {
      const res = await fetch(url, init as RequestInit);
      assert.equal(res.headers.get('x-content-type-options'), 'nosniff', url);
      assert.equal(res.headers.get('cache-control'), 'no-store', url);
      assert.match(res.headers.get('content-security-policy') ?? '', /frame-ancestors 'none'/, url);
      assert.equal(res.headers.get('referrer-policy'), 'no-referrer', url);
    }
  });

  it('portal pages keep their own policy (styles and scripts from this site)', async () => {
    const res = await fetch(`${t.url}/sign-in`);
    assert.equal(res.status, 200);
    const csp = res.headers.get('content-security-policy') ?? '';
    assert.match(csp, /default-src 'self'/);
    assert.equal(res.headers.get('cache-control'), 'no-store');
  });
});
