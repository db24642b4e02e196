// Stopping `carebridge serve` (SIGTERM) writes out what answered requests buffered, even when the stop
// comes while the demo is still being loaded into a new database: the audit trail keeps every request the
// server answered.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from './cli.ts';
import { freePort } from '../support/postgres.ts';
import { batchedEntries } from '../support/auditJournal.ts';
import { connectRecordDatabase } from '../../src/record/index.ts';

describe('serve stops cleanly', () => {
  it('a search answered while the demo loads is in the audit trail after SIGTERM', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'carebridge-stop-'));
    const port = await freePort();
    const secret = 'stop-test-secret-0123456789ab';
    const env = { ...process.env, CAREBRIDGE_ADMIN_CLIENT_ID: 'stop-admin', CAREBRIDGE_ADMIN_CLIENT_SECRET: secret };
    delete (env as Record<string, string | undefined>).NODE_TEST_CONTEXT;
    const child = spawn(process.execPath, [join(ROOT, 'bin/carebridge.mjs'), 'serve', '--port', String(port), '--db', `sqlite:${join(dir, 'c.db')}`], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d) => (out += d));
    const closed = new Promise((r) => child.once('close', r));
    try {
      const base = `http://127.0.0.1:${port}`;
      for (let i = 0; i < 600; i++) {
        if (await fetch(`${base}/fhir/metadata`).then((r) => r.ok, () => false)) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      const basic = Buffer.from(`stop-admin:${secret}`).toString('base64');
      const token = (await (await fetch(`${base}/oauth2/token`, { method: 'POST', headers: { authorization: `Basic ${basic}`, 'content-type': 'application/x-www-form-urlencoded' }, body: 'grant_type=client_credentials' })).json()).access_token;
      assert.equal((await fetch(`${base}/fhir/Patient?name=Stopping`, { headers: { authorization: `Bearer ${token}` } })).status, 200);
      assert.doesNotMatch(out, /CareBridge listening/, 'the demo is still loading (the case this test is about)');
    } finally {
      child.kill('SIGTERM');
      await closed;
    }
    const audit = connectRecordDatabase(`sqlite:${join(dir, 'c-audit.db')}`);
    try {
      const searches = (await batchedEntries(audit)).filter((e) => e.entry.subtype === 'search-type');
      assert.equal(searches.length, 1, 'the answered search was audited');
    } finally {
      await audit.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
