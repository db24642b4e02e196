// Answered requests packed into bytes while they wait, and written from the audit writer thread: what the
// thread stores is what was recorded (sign-ins included), on both engines.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { PackedRequests, decodeBatch } from '../../src/access/audit/batchMessage.ts';
import type { AuditedRequest } from '../../src/access/audit/auditEvent.ts';
import { AUDIT_WRITER_NICE, threadWriter } from '../../src/access/audit/writer.ts';
import { authenticationRequest } from '../../src/access/people/authenticationAudit.ts';
import { administrationRequest } from '../../src/access/administrationAudit.ts';
import { auditEventService } from '../../src/access/audit/search.ts';
import { migrateAccess } from '../../src/access/index.ts';
import { handleFhirRequest, openRecordStore, UNRESTRICTED } from '../../src/record/index.ts';
import type { Actor } from '../../src/access/actor.ts';
import { ENGINES, testDatabase } from '../support/server.ts';
import { THREAD_PRIORITIES, threadNiceness } from '../support/threadPriority.ts';

const nurse: Actor = { kind: 'user', userId: 'u-1', name: 'Nina Nurse', organisation: 'RX9', role: 'ward-nurse', fhirUser: 'Practitioner/n1', purpose: 'TREAT', scope: 'user/*.rs' };
const client: Actor = { kind: 'system', clientId: 'c-1', name: 'Ward system', purpose: 'TREAT', scope: 'system/*.rs' };
const administrator: Actor = { kind: 'user', userId: 'u-9', name: 'Ada Admin', role: 'admin', purpose: 'HSYSADMIN', scope: 'user/*.cruds' };

const requests: AuditedRequest[] = [
  { at: 1_790_000_000_123, actor: nurse, address: '10.0.0.1', events: [{ interaction: 'read', resourceType: 'Patient', id: 'p1', patientIds: ['p1'] }], outcome: { status: 200, method: 'GET', path: 'Patient/p1', query: '' } },
  { at: 1_790_000_000_124, actor: client, address: '10.0.0.2', events: [{ interaction: 'search', resourceType: 'Observation', query: 'subject=Patient/p1&note=Zoë – ☃ 𝄞', patientIds: ['p1', 'p2'] }], outcome: { status: 200, method: 'GET', path: 'Observation', query: 'subject=Patient/p1&note=Zoë – ☃ 𝄞' } },
  { at: 1_790_000_000_125, address: '10.0.0.3', events: [], outcome: { status: 401, method: 'GET', path: 'Substance/bad\u0000\u0007', query: 'x=\u0001' } },
  { at: 1_790_000_000_126, actor: nurse, address: '10.0.0.1', events: [{ interaction: 'create', resourceType: 'Observation', id: 'o1', patientIds: ['p1'] }, { interaction: 'update', resourceType: 'Organization', id: 'org1', patientIds: [] }], outcome: { status: 200, method: 'POST', path: '', query: '' } },
  authenticationRequest(1_790_000_000_127, '10.0.0.4', { action: 'login', method: 'password', ok: false, username: 'no.such.person', detail: 'no such user' }),
  administrationRequest(1_790_000_000_128, '10.0.0.5', { action: 'user-added', target: 'zoë.nurse', targetId: 'u-2', detail: 'ward-nurse at RX9, discharge-coordinator at RX9', ok: true }, administrator),
];

// Compared as JSON: an absent field may come back as an undefined one.
const unpacked = (packed: PackedRequests, n: number) => JSON.parse(JSON.stringify(decodeBatch(packed.message(n))));
const json = (value: unknown) => JSON.parse(JSON.stringify(value));

describe('audit batches', () => {
  it('unpack exactly as recorded (actors, non-ASCII and control characters, transactions, sign-ins, administrators\' changes), and the oldest leave only when dropped', () => {
    const packed = new PackedRequests();
    for (const r of requests) packed.push(r);
    assert.equal(packed.length, requests.length);
    assert.equal(packed.weight(3), 2, 'a request weighs what it touched');
    assert.deepEqual(unpacked(packed, requests.length), json(requests));
    assert.deepEqual(unpacked(packed, 2), json(requests.slice(0, 2)));
    packed.drop(2);
    packed.push(requests[0]);
    assert.deepEqual(unpacked(packed, packed.length), json([...requests.slice(2), requests[0]]));
    packed.drop(packed.length);
    assert.equal(packed.length, 0);
  });
});

for (const engine of ENGINES) {
  describe(`audit writer thread (${engine})`, () => {
    it('stores what was recorded, sign-ins as authentication events and administrators\' changes as security alerts', async () => {
      const db = await testDatabase(engine);
      const driver = await openRecordStore(db.database);
      const journalDatabase = await migrateAccess(driver, db.database); // on SQLite, the journal's own file
      const writer = threadWriter(journalDatabase!, 'test-node');
      try {
        const packed = new PackedRequests();
        for (const r of requests) packed.push(r);
        await writer.write(packed.message(packed.length));
        const res = await handleFhirRequest({ base: 'http://localhost/fhir', driver, access: UNRESTRICTED, services: { AuditEvent: auditEventService(driver) } }, {
          method: 'GET', path: 'AuditEvent', query: [['_count', '100'], ['_sort', 'date']],
        });
        const events = (typeof res.body === 'string' ? JSON.parse(res.body) : res.body).entry.map((e: any) => e.resource);
        assert.equal(events.length, requests.length, 'one AuditEvent per request');
        assert.deepEqual(events.map((e: any) => e.subtype?.[0]?.code), ['read', 'search-type', 'read', 'transaction', '110122', '110137']);
        assert.equal(events[0].agent[0].who.reference, 'Practitioner/n1');
        assert.equal(Buffer.from(events[1].entity.find((x: any) => x.query).query, 'base64').toString('utf8'), 'subject=Patient/p1&note=Zoë – ☃ 𝄞');
        assert.equal(events[2].entity[0].name, 'Substance/bad\ufffd\ufffd', 'what a refused request asked for, made safe');
        assert.equal(events[4].type.code, '110114', 'a sign-in is an authentication event');
        assert.equal(events[4].agent[0].who.display, 'no.such.person (no such user)');
        assert.equal(events[5].type.code, '110113', 'an administrator\'s change is a security alert');
        assert.equal(events[5].agent[0].altId, 'u-9', 'made by the administrator');
        assert.deepEqual([events[5].entity[0].name, events[5].entity[0].what.identifier.value, events[5].entity[0].description], ['zoë.nurse', 'u-2', 'ward-nurse at RX9, discharge-coordinator at RX9']);
      } finally {
        await writer.close();
        await driver.close();
        db.cleanup();
      }
    });
  });
}

describe('audit writer thread priority', { skip: THREAD_PRIORITIES }, () => {
  // On a machine with no idle core the writer's batches must not preempt the threads answering requests
  // (measured: the request thread's CPU per read rose by a third when they did); nobody waits for the writer.
  it('runs below the priority of the threads serving requests, and leaves theirs as it was', async () => {
    const db = await testDatabase('sqlite');
    const driver = await openRecordStore(db.database);
    const journalDatabase = await migrateAccess(driver, db.database);
    const before = threadNiceness();
    const writer = threadWriter(journalDatabase!, 'test-node');
    try {
      const packed = new PackedRequests();
      packed.push(requests[0]);
      await writer.write(packed.message(1)); // the thread starts on first use
      const started = [...threadNiceness()].filter(([tid]) => !before.has(tid));
      assert.ok(started.some(([, nice]) => nice === AUDIT_WRITER_NICE), `a new thread at nice ${AUDIT_WRITER_NICE}: ${JSON.stringify(started)}`);
      assert.equal(threadNiceness().get(process.pid), before.get(process.pid), 'the request thread keeps its priority');
      assert.ok(AUDIT_WRITER_NICE > (before.get(process.pid) ?? 0), 'lower than the request thread\'s');
    } finally {
      await writer.close();
      await driver.close();
      db.cleanup();
    }
  });
});
