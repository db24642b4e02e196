// MESH settings read from the environment: an incomplete external MESH is refused by name at start.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadServerConfig } from '../../src/config.ts';

/** A client certificate and key as files (their contents are read only when the client connects). */
function tlsFiles(): { cert: string; key: string; cleanup(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'carebridge-mesh-tls-'));
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  writeFileSync(cert, '-----BEGIN CERTIFICATE-----\n');
  writeFileSync(key, '-----BEGIN PRIVATE KEY-----\n');
  return { cert, key, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

describe('MESH configuration', () => {
  it('serves no built-in mailbox without a shared key, and reads an external MESH in full', () => {
    assert.equal(loadServerConfig({}, {}).messaging.sharedKey, undefined);
    assert.equal(loadServerConfig({}, {}).messaging.client, undefined);
    const tls = tlsFiles();
    try {
      const c = loadServerConfig({}, {
        CAREBRIDGE_MESH_SHARED_KEY: 'k', CAREBRIDGE_MESH_URL: 'https://mesh.example.nhs.uk/', CAREBRIDGE_MESH_MAILBOX: 'X26ABC1', CAREBRIDGE_MESH_PASSWORD: 'pw',
        CAREBRIDGE_MESH_WORKFLOW_IDS: 'TOC_FHIR_ADW, TOC_FHIR_ADW_ACK', CAREBRIDGE_MESH_CLIENT_CERT: tls.cert, CAREBRIDGE_MESH_CLIENT_KEY: tls.key,
      }).messaging;
      assert.deepEqual(c.client, {
        url: 'https://mesh.example.nhs.uk', mailbox: 'X26ABC1', password: 'pw', sharedKey: 'k', workflowIds: ['TOC_FHIR_ADW', 'TOC_FHIR_ADW_ACK'],
        pollMs: 60_000, chunkBytes: 20 * 1024 * 1024, tls: { certFile: tls.cert, keyFile: tls.key },
      });
    } finally {
      tls.cleanup();
    }
  });

  it('refuses an incomplete or malformed external MESH, naming what is missing', () => {
    assert.throws(() => loadServerConfig({}, { CAREBRIDGE_MESH_URL: 'https://mesh.example' }), /needs CAREBRIDGE_MESH_MAILBOX, CAREBRIDGE_MESH_PASSWORD and a shared key/);
    assert.throws(() => loadServerConfig({}, { CAREBRIDGE_MESH_URL: 'mesh.example' }), /must be an http\(s\) URL/);
    const base = { CAREBRIDGE_MESH_URL: 'https://m', CAREBRIDGE_MESH_MAILBOX: 'X', CAREBRIDGE_MESH_PASSWORD: 'p', CAREBRIDGE_MESH_SHARED_KEY: 'k' };
    assert.throws(() => loadServerConfig({}, { ...base, CAREBRIDGE_MESH_CLIENT_CERT: '/c.pem' }), /both CAREBRIDGE_MESH_CLIENT_CERT and CAREBRIDGE_MESH_CLIENT_KEY/);
    assert.throws(() => loadServerConfig({}, { ...base, CAREBRIDGE_MESH_POLL_MS: 'soon' }), /CAREBRIDGE_MESH_POLL_MS must be a whole number/);
    // A certificate that is not there is found at start, not at the first poll.
    const tls = tlsFiles();
    try {
      assert.throws(() => loadServerConfig({}, { ...base, CAREBRIDGE_MESH_CLIENT_CERT: tls.cert, CAREBRIDGE_MESH_CLIENT_KEY: `${tls.key}.missing` }), /^Error: CAREBRIDGE_MESH_CLIENT_KEY names '.*key\.pem\.missing', which cannot be read \(no such file\)\.$/);
      assert.throws(() => loadServerConfig({}, { ...base, CAREBRIDGE_MESH_CLIENT_CERT: tls.cert, CAREBRIDGE_MESH_CLIENT_KEY: tls.key, CAREBRIDGE_MESH_CA: '/nonexistent/ca.pem' }), /CAREBRIDGE_MESH_CA names '\/nonexistent\/ca\.pem', which cannot be read/);
    } finally {
      tls.cleanup();
    }
    assert.throws(() => loadServerConfig({}, { CAREBRIDGE_MESSAGING_MAX_ATTEMPTS: '0' }), /CAREBRIDGE_MESSAGING_MAX_ATTEMPTS must be a whole number from 1/);
  });

  it('expires uncollected messages after MESH\'s 5 days unless told otherwise', () => {
    assert.equal(loadServerConfig({}, {}).messaging.expiryDays, 5);
    assert.equal(loadServerConfig({}, { CAREBRIDGE_MESH_EXPIRY_DAYS: '10' }).messaging.expiryDays, 10);
    assert.throws(() => loadServerConfig({}, { CAREBRIDGE_MESH_EXPIRY_DAYS: '0' }), /CAREBRIDGE_MESH_EXPIRY_DAYS must be a whole number from 1 to 30/);
  });
});
