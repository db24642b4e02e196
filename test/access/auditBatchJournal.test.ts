// The audit journal's batches (one row per batch of requests, src/access/audit/batchJournal.ts): what a
// batch is indexed by is what its entries hold; a search over one-row entries from before and batches
// gives one order, newest or oldest first, page by page, even when batches' times overlap; a total is
// given when counting it stays cheap or is asked for; an entry inside a batch is read by its id
// (both storage engines).
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { handleFhirRequest, openRecordStore, UNRESTRICTED, type SqlDriver } from '../../src/record/index.ts';
import { migrateAccess, setUpAccess } from '../../src/access/index.ts';
import { SharedParts, entryValuesFor, journalEntryFor, type AuditedRequest } from '../../src/access/audit/auditEvent.ts';
import { BatchAppender } from '../../src/access/audit/batchJournal.ts';
import { COUNT_BATCHES, searchBatches } from '../../src/access/audit/batchSearch.ts';
import { JournalAppender } from '../../src/access/audit/journal.ts';
import { PackedRequests } from '../../src/access/audit/batchMessage.ts';
import { ENGINES, testDatabase } from '../support/server.ts';
import { stopOwnPostgres } from '../support/postgres.ts';
import { journalConnection } from '../support/auditJournal.ts';

after(() => stopOwnPostgres());

const carer = { kind: 'user', userId: 'u-carer', name: 'Carer', organisation: 'VM101', role: 'care-home-staff', fhirUser: 'Practitioner/p-carer', purpose: 'TREAT', scope: 'user/*.rs' } as const;
const client = { kind: 'system', clientId: 'c-1', name: 'Integrator', purpose: 'TREAT', scope: 'system/*.rs' } as const;
const person = { kind: 'user', userId: 'u-self', name: 'Self', role: 'person', fhirUser: 'Patient/pat-self', patient: 'pat-self', purpose: 'PATRQT', scope: 'patient/*.rs' } as const;

const read = (at: number, id: string, actor: AuditedRequest['actor'] = carer): AuditedRequest => ({
  at, actor, address: '10.0.0.1', events: [{ interaction: 'read', resourceType: 'Patient', id, patientIds: [id] }], outcome: { status: 200, method: 'GET', path: `Patient/${id}`, query: '' },
});

/** Requests of every shape the trail records. */
const SHAPES: AuditedRequest[] = [
  read(1_000, 'pat-1'),
  { at: 2_000, actor: client, address: '10.0.0.2', events: [{ interaction: 'search', resourceType: 'Observation', query: 'patient=pat-1&code=x', patientIds: ['pat-1', 'pat-2'] }], outcome: { status: 200, method: 'GET', path: 'Observation', query: 'patient=pat-1&code=x' } },
  { at: 3_000, actor: carer, events: [{ interaction: 'read', resourceType: 'Observation', id: 'obs-9', patientIds: ['pat-9'] }], outcome: { status: 403, method: 'GET', path: 'Observation/obs-9', query: '' } },
  { at: 4_000, events: [], outcome: { status: 401, method: 'GET', path: 'Patient/pat-1', query: '' } },
  { at: 5_000, actor: client, events: [{ interaction: 'create', resourceType: 'Observation', id: 'obs-1', patientIds: ['pat-1'] }, { interaction: 'refused', resourceType: 'Patient', id: 'pat-3', patientIds: ['pat-3'] }], outcome: { status: 200, method: 'POST', path: '', query: '' } },
  { at: 6_000, actor: person, events: [{ interaction: 'everything', resourceType: 'Patient', id: 'pat-self', patientIds: ['pat-self'] }], outcome: { status: 200, method: 'GET', path: 'Patient/pat-self/$everything', query: '' } },
  { at: 7_000, actor: carer, events: [{ interaction: 'export', resourceType: 'Patient', id: 'pat-1', patientIds: ['pat-1'] }], outcome: { status: 200, method: 'GET', path: 'Patient/pat-1', query: '' }, purpose: 'BTG' },
  { at: 8_000, actor: carer, address: '10.0.0.1', events: [], outcome: { status: 200, method: 'POST', path: 'oauth2/authorize', query: '' }, authentication: { action: 'login', method: 'password', ok: false, username: 'someone', detail: 'wrong password' } },
];

describe('the values a batch is indexed by', () => {
  it('are the ones its entries hold when built in full, for every shape of request', () => {
    for (const request of SHAPES) {
      const { tail: _tail, part: _part, ...full } = journalEntryFor(request, new SharedParts('node'));
      assert.deepEqual(entryValuesFor(request, 'node'), full, request.outcome.path);
    }
  });
});

async function appendBatch(appender: BatchAppender, requests: AuditedRequest[]): Promise<void> {
  const packed = new PackedRequests();
  for (const r of requests) packed.push(r);
  await appender.append(packed.message(requests.length));
}

for (const engine of ENGINES) {
  describe(`searching the journal's batches (${engine})`, () => {
    async function withJournal(fn: (driver: SqlDriver, journal: SqlDriver) => Promise<void>): Promise<void> {
      const db = await testDatabase(engine);
      const driver = await openRecordStore(db.database);
      try {
        await migrateAccess(driver, db.database);
        const journal = await journalConnection(driver);
        try {
          await fn(driver, journal.db);
        } finally {
          await journal.close();
        }
      } finally {
        await driver.close();
        db.cleanup();
      }
    }
    const search = async (driver: SqlDriver, query: [string, string][]) => {
      const access = await setUpAccess(driver, { tokenRequestsPerMinute: 60, audit: false });
      const res = await handleFhirRequest({ base: 'http://localhost/fhir', driver, access: UNRESTRICTED, services: access.services }, { method: 'GET', path: 'AuditEvent', query });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      return typeof res.body === 'string' ? JSON.parse(res.body) : res.body;
    };
    const ids = (bundle: any) => (bundle.entry ?? []).map((e: any) => e.resource.id);

    it('gives one order across one-row entries and batches whose times overlap, page by page, with the total', async () => {
      await withJournal(async (driver, journal) => {
        // Two one-row entries (a deployment from before the batches): seq 1 at 1 s, seq 2 at 8 s.
        const legacy = new JournalAppender(journal);
        await legacy.append([journalEntryFor(read(1_000, 'pat-1'), new SharedParts('old'))]);
        await legacy.append([journalEntryFor(read(8_000, 'pat-1'), new SharedParts('old'))]);
        // Batches: seq 3–5 at 2, 9 and 5 s; seq 6–7 at 4 and 7 s (answered while the first was written); seq 8 at 3 s.
        const appender = new BatchAppender(journal, 'node');
        await appendBatch(appender, [read(2_000, 'pat-1'), read(9_000, 'pat-1'), read(5_000, 'pat-2')]);
        await appendBatch(appender, [read(4_000, 'pat-1'), read(7_000, 'pat-1')]);
        await appendBatch(appender, [read(3_000, 'pat-1', client)]);

        const newestFirst = ['4', '2', '7', '5', '6', '8', '3', '1'];
        assert.deepEqual(ids(await search(driver, [['_count', '100']])), newestFirst);
        assert.deepEqual(ids(await search(driver, [['_sort', 'date'], ['_count', '100']])), [...newestFirst].reverse());
        const pages: string[] = [];
        for (let offset = 0; offset < 8; offset += 3) {
          const page = await search(driver, [['_count', '3'], ['_offset', String(offset)]]);
          assert.equal(page.total, 8);
          pages.push(...ids(page));
        }
        assert.deepEqual(pages, newestFirst, 'pages of three, in order, nothing twice or missed');
        // Read a batch at a time, stopping as soon as the page is certain (no total wanted).
        for (const descending of [true, false]) {
          for (let need = 1; need <= 6; need++) {
            const found = await searchBatches(driver, { filters: [], visible: undefined, descending, need, count: 'none', batchesAtOnce: 1 });
            const order = descending ? ['4', '7', '5', '6', '8', '3'] : ['3', '8', '6', '5', '7', '4'];
            assert.deepEqual(found.matches.map((m) => String(m.seq)), order.slice(0, need), `${descending ? 'newest' : 'oldest'} ${need}`);
          }
        }

        const aboutOne = await search(driver, [['patient', 'pat-1'], ['date', 'ge1970-01-01T00:00:04Z'], ['_sort', 'date']]);
        assert.deepEqual(ids(aboutOne), ['6', '7', '2', '4']);
        assert.equal(aboutOne.total, 4);
        assert.deepEqual(ids(await search(driver, [['altid', 'c-1']])), ['8']);
        assert.deepEqual(ids(await search(driver, [['agent', 'Practitioner/p-carer'], ['patient', 'pat-2']])), ['5']);
        assert.deepEqual(ids(await search(driver, [['outcome', '4']])), []);
        assert.equal((await search(driver, [['_summary', 'count']])).total, 8);
      });
    });

    it('reads an entry inside a batch by its id, with its batch\'s place in the chain', async () => {
      await withJournal(async (driver, journal) => {
        await appendBatch(new BatchAppender(journal, 'node'), SHAPES);
        const access = await setUpAccess(driver, { tokenRequestsPerMinute: 60, audit: false });
        const res = await handleFhirRequest({ base: 'http://localhost/fhir', driver, access: UNRESTRICTED, services: access.services }, { method: 'GET', path: 'AuditEvent/3', query: [] });
        const event = typeof res.body === 'string' ? JSON.parse(res.body) : res.body;
        assert.equal(res.status, 200);
        assert.equal(event.id, '3');
        assert.equal(event.outcome, '4', 'the refused read (HTTP 403)');
        assert.equal(event.recorded, new Date(3_000).toISOString());
        assert.deepEqual(event.entity.map((e: any) => e.what?.reference ?? e.name), ['Patient/pat-9', 'Observation/obs-9']);
        await assert.rejects(handleFhirRequest({ base: 'http://localhost/fhir', driver, access: UNRESTRICTED, services: access.services }, { method: 'GET', path: 'AuditEvent/9', query: [] }), /AuditEvent\/9 is not known/);
      });
    });

    it('counts a total from the batches\' keys, reading only batches a date filter cuts through, and leaves it out when that is many', async () => {
      await withJournal(async (driver, journal) => {
        const appender = new BatchAppender(journal, 'node');
        const batches = COUNT_BATCHES + 20;
        // Each batch: one entry at 1 s, one at 100 s and later; a search from 50 s cuts through every batch.
        for (let i = 0; i < batches; i++) await appendBatch(appender, [read(1_000, 'pat-1'), read(100_000 + i, i % 2 ? 'pat-1' : 'pat-2')]);
        const page = await search(driver, [['_count', '2']]);
        assert.deepEqual(ids(page), [String(2 * batches), String(2 * batches - 2)]);
        assert.equal(page.total, 2 * batches, 'counted from the keys');
        assert.equal((await search(driver, [['patient', 'pat-2'], ['_count', '1']])).total, batches / 2, 'half the batches\' second entries');
        const late = [['date', `ge${new Date(50_000).toISOString()}`], ['_count', '2']] as [string, string][];
        assert.equal((await search(driver, late)).total, undefined, 'no total: counting would read every batch');
        assert.equal((await search(driver, [...late, ['_total', 'accurate']])).total, batches);
        assert.equal((await search(driver, [['_summary', 'count'], ['date', `ge${new Date(50_000).toISOString()}`]])).total, batches);
      });
    });
  });
}
