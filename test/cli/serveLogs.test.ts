// What `carebridge serve` writes to its log, at info level, must never hold a secret, a password or a token.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from './cli.ts';
import { freePort } from '../support/postgres.ts';

describe('serve logs', () => {
  it('log requests without client secrets, passwords or access tokens', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'carebridge-logs-'));
    const port = await freePort();
    const secret = 'log-test-secret-9f8e7d6c5b4a';
    const basic = Buffer.from(`log-admin:${secret}`).toString('base64');
    const env = { ...process.env, CAREBRIDGE_LOG_LEVEL: 'info', CAREBRIDGE_ADMIN_CLIENT_ID: 'log-admin', CAREBRIDGE_ADMIN_CLIENT_SECRET: secret };
    delete (env as Record<string, string | undefined>).NODE_TEST_CONTEXT;
    const child = spawn(process.execPath, [join(ROOT, 'bin/carebridge.mjs'), 'serve', '--port', String(port), '--db', `sqlite:${join(dir, 'c.db')}`, '--no-demo'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d) => (out += d));
    try {
      for (let i = 0; i < 300 && !out.includes('CareBridge listening'); i++) await new Promise((r) => setTimeout(r, 100));
      assert.match(out, /CareBridge listening/);
      const base = `http://127.0.0.1:${port}`;
      const token = (await (await fetch(`${base}/oauth2/token`, { method: 'POST', headers: { authorization: `Basic ${basic}`, 'content-type': 'application/x-www-form-urlencoded' }, body: 'grant_type=client_credentials' })).json()).access_token;
      assert.ok(token);
      await fetch(`${base}/oauth2/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `grant_type=client_credentials&client_id=log-admin&client_secret=${secret}` });
      assert.equal((await fetch(`${base}/fhir/Patient?name=Smith`, { headers: { authorization: `Bearer ${token}` } })).status, 200);
      await fetch(`${base}/sign-in`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'username=someone&password=hunter2-hunter2-hunter2' });
      await new Promise((r) => setTimeout(r, 300));
    } finally {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('close', r));
      rmSync(dir, { recursive: true, force: true });
    }
    assert.match(out, /\/fhir\/Patient\?name=Smith/, 'requests are logged');
    assert.ok(!out.includes(secret), 'no client secret');
    assert.ok(!out.includes('hunter2'), 'no password');
    assert.ok(!out.includes(basic), 'no Basic credentials');
    assert.ok(!/eyJ[A-Za-z0-9_-]{20,}\.[A-Za-z0-9_-]{20,}\./.test(out), 'no JWT');
  });
});
