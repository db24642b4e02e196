// carebridge clients: registering an app that signs people in (public, with redirect URIs), and refusals.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { generateKeyPairSync } from 'node:crypto';
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

  it('refuses a JWKS with a private key, a symmetric key or no key at all, in one line, registering nothing', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'carebridge-clients-'));
    const db = `sqlite:${join(dir, 'c.db')}`;
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const cases: [string, unknown, RegExp][] = [
      ['private', { keys: [{ ...ec.privateKey.export({ format: 'jwk' }), alg: 'ES256' }] }, /private key material/],
      ['symmetric', { keys: [{ kty: 'oct', k: 'c2VjcmV0LXNlY3JldC1zZWNyZXQ', alg: 'HS256' }] }, /symmetric/],
      ['nonsense', { keys: [{ foo: 1 }] }, /not a usable public key/],
    ];
    try {
      for (const [what, jwks, message] of cases) {
        writeFileSync(join(dir, `${what}.json`), JSON.stringify(jwks));
        const r = await runCli(['clients', 'add', '--name', `Keys ${what}`, '--client-id', `keys-${what}`, '--jwks', join(dir, `${what}.json`), '--db', db]);
        assert.equal(r.code, 1, what);
        assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
        assert.match(r.stderr, message);
        assert.ok(!r.stderr.includes(String((ec.privateKey.export({ format: 'jwk' }) as { d: string }).d)), 'the private key is not echoed');
      }
      writeFileSync(join(dir, 'public.json'), JSON.stringify({ keys: [{ ...ec.publicKey.export({ format: 'jwk' }), kid: 'p1', alg: 'ES256' }] }));
      const ok = await runCli(['clients', 'add', '--name', 'Keys public', '--client-id', 'keys-public', '--jwks', join(dir, 'public.json'), '--db', db]);
      assert.equal(ok.code, 0, ok.stderr);
      assert.match(ok.stdout, /private_key_jwt/);
      const list = await runCli(['clients', 'list', '--db', db]);
      assert.deepEqual(list.stdout.trim().split('\n').map((l) => l.split('\t')[0]), ['keys-public']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
