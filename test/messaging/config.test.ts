// MESH settings read from the environment: an incomplete external MESH is refused by name at start.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { loadServerConfig } from '../../src/config.ts';

describe('MESH configuration', () => {
  it('serves no built-in mailbox without a shared key, and reads an external MESH in full', () => {
    assert.equal(loadServerConfig({}, {}).messaging.sharedKey, undefined);
    assert.equal(loadServerConfig({}, {}).messaging.client, undefined);
    const c = loadServerConfig({}, {
      CAREBRIDGE_MESH_SHARED_KEY: 'k', CAREBRIDGE_MESH_URL: 'https://mesh.example.nhs.uk/', CAREBRIDGE_MESH_MAILBOX: 'X26ABC1', CAREBRIDGE_MESH_PASSWORD: 'pw',
      CAREBRIDGE_MESH_WORKFLOW_IDS: 'TOC_FHIR_ADW, TOC_FHIR_ADW_ACK', CAREBRIDGE_MESH_CLIENT_CERT: '/etc/mesh/cert.pem', CAREBRIDGE_MESH_CLIENT_KEY: '/etc/mesh/key.pem',
    }).messaging;
    assert.deepEqual(c.client, {
      url: 'https://mesh.example.nhs.uk', mailbox: 'X26ABC1', password: 'pw', sharedKey: 'k', workflowIds: ['TOC_FHIR_ADW', 'TOC_FHIR_ADW_ACK'],
      pollMs: 60_000, chunkBytes: 20 * 1024 * 1024, tls: { certFile: '/etc/mesh/cert.pem', keyFile: '/etc/mesh/key.pem' },
    });
  });

  it('refuses an incomplete or malformed external MESH, naming what is missing', () => {
    assert.throws(() => loadServerConfig({}, { CAREBRIDGE_MESH_URL: 'https://mesh.example' }), /needs CAREBRIDGE_MESH_MAILBOX, CAREBRIDGE_MESH_PASSWORD and a shared key/);
    assert.throws(() => loadServerConfig({}, { CAREBRIDGE_MESH_URL: 'mesh.example' }), /must be an http\(s\) URL/);
    const base = { CAREBRIDGE_MESH_URL: 'https://m', CAREBRIDGE_MESH_MAILBOX: 'X', CAREBRIDGE_MESH_PASSWORD: 'p', CAREBRIDGE_MESH_SHARED_KEY: 'k' };
    assert.throws(() => loadServerConfig({}, { ...base, CAREBRIDGE_MESH_CLIENT_CERT: '/c.pem' }), /both CAREBRIDGE_MESH_CLIENT_CERT and CAREBRIDGE_MESH_CLIENT_KEY/);
    assert.throws(() => loadServerConfig({}, { ...base, CAREBRIDGE_MESH_POLL_MS: 'soon' }), /CAREBRIDGE_MESH_POLL_MS must be a whole number/);
    assert.throws(() => loadServerConfig({}, { CAREBRIDGE_MESSAGING_MAX_ATTEMPTS: '0' }), /CAREBRIDGE_MESSAGING_MAX_ATTEMPTS must be a whole number from 1/);
  });
});
