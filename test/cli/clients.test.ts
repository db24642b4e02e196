// carebridge clients: registering an app that signs people in (public, with redirect URIs), and refusals.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from './cli.ts';

describe('carebridge clients', () => {
  it('registers a public app with its redirect URIs, and refuses an unsafe one in one line', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'carebridge-clients-'));
    const db = `sqlite:${join(dir, 'c.db')}`;
    try {
      const added = await runCli(['clients', 'add', '--name', 'Ward tablet app', '--scopes', 'user/*.cruds', '--redirect-uri', 'https://app.example/cb', 'http://127.0.0.1:8765/cb', '--public', '--client-id', 'ward-app', '--db', db]);
      assert.equal(added.code, 0, added.stderr);
      assert.match(added.stdout, /client_id:\s+ward-app/);
      assert.match(added.stdout, /authentication: none \(a public app/);
      assert.match(added.stdout, /redirect URIs: https:\/\/app\.example\/cb http:\/\/127\.0\.0\.1:8765\/cb/);
      assert.doesNotMatch(added.stdout, /client_secret/);
      const unsafe = await runCli(['clients', 'add', '--name', 'Leaky', '--scopes', 'user/*.rs', '--redirect-uri', 'http://app.example/cb', '--db', db]);
      assert.equal(unsafe.code, 1);
      assert.equal(unsafe.stderr.trim().split('\n').length, 1);
      assert.match(unsafe.stderr, /must use https/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
