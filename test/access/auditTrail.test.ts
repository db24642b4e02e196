// The audit trail's parts on their own: canonical JSON, what a failed request was trying to do, and the
// buffer (batches, flush, an entry that can never be stored, backpressure). No database.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { canonicalJson, chainHash, GENESIS_HASH } from '../../src/access/audit/chain.ts';
import { requestInteraction, type AuditedRequest } from '../../src/access/audit/auditEvent.ts';
import { AuditTrail, BATCH_EVENTS } from '../../src/access/audit/trail.ts';
import type { AuditWriter } from '../../src/access/audit/writer.ts';
import { decodeBatch } from '../../src/access/audit/batchMessage.ts';

const request = (path: string, status = 200): AuditedRequest => ({ at: Date.now(), events: [], outcome: { status, method: 'GET', path, query: '' } });

describe('audit trail parts', () => {
  it('canonical JSON sorts keys at every level, keeps array order, and so hashes the same content alike', () => {
    assert.equal(canonicalJson({ b: 1, a: [{ d: 'x', c: null }, 2], e: undefined }), '{"a":[{"c":null,"d":"x"},2],"b":1}');
    const one = { resourceType: 'AuditEvent', agent: [{ requestor: true, altId: 'x' }], action: 'R' };
    const same = { action: 'R', agent: [{ altId: 'x', requestor: true }], resourceType: 'AuditEvent', meta: { versionId: '1', lastUpdated: '2026-01-01T00:00:00Z' } };
    assert.equal(chainHash(GENESIS_HASH, one), chainHash(GENESIS_HASH, same), 'key order and storage bookkeeping do not count');
    assert.notEqual(chainHash(GENESIS_HASH, one), chainHash(GENESIS_HASH, { ...one, action: 'U' }));
    assert.notEqual(chainHash(GENESIS_HASH, one), chainHash('1'.repeat(64), one), 'the previous hash counts');
  });

  it('names the FHIR interaction a request was attempting from its method and path', () => {
    const code = (method: string, path: string) => requestInteraction(method, path).code;
    assert.equal(code('GET', 'Patient/1'), 'read');
    assert.equal(code('GET', 'Patient/1/_history/2'), 'vread');
    assert.equal(code('GET', 'Patient/1/_history'), 'history-instance');
    assert.equal(code('GET', 'Patient/_history'), 'history-type');
    assert.equal(code('GET', '_history'), 'history-system');
    assert.equal(code('GET', 'Observation'), 'search-type');
    assert.equal(code('POST', 'Observation/_search'), 'search-type');
    assert.equal(code('GET', 'Patient/1/Observation'), 'search-type');
    assert.deepEqual(requestInteraction('GET', 'Patient/1/$everything'), { code: 'operation', resourceType: 'Patient', id: '1', operation: '$everything' });
    assert.equal(code('POST', 'Observation'), 'create');
    assert.equal(code('PUT', 'Observation/1'), 'update');
    assert.equal(code('PATCH', 'Observation/1'), 'patch');
    assert.equal(code('DELETE', 'Observation/1'), 'delete');
    assert.equal(code('POST', ''), 'transaction');
  });

  it('writes in batches, flushes on demand, and one entry that can never be stored does not stop the others', async () => {
    const written: string[][] = [];
    const writer: AuditWriter = {
      async write(batch) {
        const requests = decodeBatch(batch);
        if (requests.some((r) => r.outcome.path === 'poison')) throw Object.assign(new Error('invalid byte sequence'), { code: '22021' });
        written.push(requests.map((r) => r.outcome.path));
      },
      close: async () => undefined,
    };
    const logged: string[] = [];
    const trail = new AuditTrail(writer, (message) => logged.push(message));
    for (const path of ['a', 'b', 'poison', 'c']) trail.record(request(path));
    await trail.flush();
    assert.deepEqual(written.flat(), ['a', 'b', 'c'], 'in order, the bad one left out');
    assert.match(logged.join('\n'), /poison .*dropped/);
    written.length = 0;
    for (let i = 0; i < BATCH_EVENTS + 10; i++) trail.record(request(`r${i}`));
    await trail.flush();
    assert.deepEqual(written.map((b) => b.length), [BATCH_EVENTS, 10], 'at most BATCH_EVENTS per transaction');
    await trail.close();
  });

  it('drops an entry that can never be stored without stopping, when the writer took the batch\'s bytes (as the writer thread does)', async () => {
    const written: string[] = [];
    const writer: AuditWriter = {
      async write(batch) {
        // Moved, as postMessage with a transfer list moves them: the trail's copy is detached.
        const bytes = structuredClone(batch.bytes, { transfer: [batch.bytes.buffer] });
        const requests = decodeBatch({ ...batch, bytes });
        if (requests.some((r) => r.outcome.path === 'poison')) throw Object.assign(new Error('invalid byte sequence'), { code: '22021' });
        written.push(...requests.map((r) => r.outcome.path));
      },
      close: async () => undefined,
    };
    const logged: string[] = [];
    const trail = new AuditTrail(writer, (message) => logged.push(message));
    for (const path of ['a', 'poison', 'b']) trail.record(request(path));
    await trail.flush();
    assert.deepEqual(written, ['a', 'b'], 'in order, the bad one left out');
    assert.match(logged.join('\n'), /GET \/fhir\/poison .*dropped/);
    await trail.close();
  });

  it('keeps entries while the database is unreachable, and holds new requests back once the backlog is large', async () => {
    let down = true;
    const written: string[] = [];
    const writer: AuditWriter = {
      async write(batch) {
        const requests = decodeBatch(batch);
        if (down) throw Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
        written.push(...requests.map((r) => r.outcome.path));
      },
      close: async () => undefined,
    };
    const trail = new AuditTrail(writer, () => undefined);
    trail.record(request('kept'));
    await trail.flush();
    assert.deepEqual(written, []);
    assert.equal(await trail.admit(), true, 'a small backlog does not hold anyone back');
    for (let i = 0; i < 6000; i++) trail.record(request(`x${i}`));
    const started = Date.now();
    assert.equal(await trail.admit(), false, 'refused after waiting, while nothing can be written');
    assert.ok(Date.now() - started >= 1500);
    down = false;
    await trail.flush();
    assert.equal(written[0], 'kept', 'nothing lost, order kept');
    assert.equal(written.length, 6001);
    assert.equal(await trail.admit(), true);
    await trail.close();
  });
});
