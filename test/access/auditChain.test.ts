// The audit journal is hash-chained: `carebridge audit verify` (the real command) passes on an intact
// chain, and names the entry whose stored request was changed (inside a batch, by the entry digests the
// batch keeps), the batch whose callers or digests were changed, exactly the entry where a deleted batch
// began, and the first entry hidden by removing a patient key (both storage engines). Two app nodes on one
// PostgreSQL extend one chain. A deployment's AuditEvents from before the journal move into it and stay
// verifiable, and so do batches from before the entry digests (a change in one is named by its batch).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { ENGINES, TEST_ADMIN, clientToken, fhirClient, startTestServer, testDatabase, type TestServer } from '../support/server.ts';
import { stopOwnPostgres } from '../support/postgres.ts';
import { runCli } from '../cli/cli.ts';
import { appendUndigestedBatch, batchHolding, batchedEntries, forgeBatchEntry, journalConnection, journalEntryCount } from '../support/auditJournal.ts';
import { buildServer, type CareBridgeServer } from '../../src/server.ts';
import { loadServerConfig } from '../../src/config.ts';
import { migrateAccess, verifyAuditChain } from '../../src/access/index.ts';
import { ACCESS_MIGRATIONS } from '../../src/access/schema.ts';
import { CHAIN_EXTENSION, GENESIS_HASH, chainHash } from '../../src/access/audit/chain.ts';
import { JournalAppender, auditMigrations } from '../../src/access/audit/journal.ts';
import { ANCHOR_EVERY_MS } from '../../src/access/audit/trail.ts';
import { SharedParts, journalEntryFor, type AuditedRequest } from '../../src/access/audit/auditEvent.ts';
import { BatchAppender } from '../../src/access/audit/batchJournal.ts';
import { PackedRequests } from '../../src/access/audit/batchMessage.ts';
import { createResources, migrate, openRecordStore, type SqlDriver } from '../../src/record/index.ts';

after(() => stopOwnPostgres());

const verify = async (database: string) => {
  const r = await runCli(['audit', 'verify', '--db', database]);
  return { ...r, lines: r.stdout.trim().split('\n').filter(Boolean) };
};

async function waitForJournal(driver: SqlDriver, atLeast: number): Promise<void> {
  const deadline = Date.now() + 10_000;
  while ((await journalEntryCount(driver)) < atLeast) {
    if (Date.now() > deadline) assert.fail(`the audit journal did not reach ${atLeast} entries`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * What `AuditEvent?patient=<pid>&_summary=count` will answer next while nothing changes. A count is audited
 * too, as an event about the person, and stored a moment after it answers (a later count may or may not
 * include it: it failed once as 23, not 22): counted twice, each time once its own entry is stored, the
 * difference is what each count adds.
 */
async function nextCountAbout(t: TestServer, pid: string): Promise<number> {
  const settledCount = async () => {
    // Once what earlier requests left in the trail's buffer is stored (it writes every 100 ms), the next
    // entry is this count's own.
    let written = await journalEntryCount(t.server.driver);
    for (let stable = 0; stable < 2;) {
      await new Promise((r) => setTimeout(r, 150));
      const now = await journalEntryCount(t.server.driver);
      stable = now === written ? stable + 1 : 0;
      written = now;
    }
    const total = Number((await t.fhir.get(`AuditEvent?patient=${pid}&_summary=count`)).body.total);
    await waitForJournal(t.server.driver, written + 1);
    return total;
  };
  const first = await settledCount();
  const second = await settledCount();
  return second + (second - first);
}

/** Entry seqs in order, and the batch each is stored in. */
async function batchesBySeq(driver: SqlDriver): Promise<{ first: number; last: number; hash: string }[]> {
  return (await driver.all<{ first_seq: number; last_seq: number; hash: string }>('SELECT first_seq, last_seq, hash FROM audit_batch ORDER BY first_seq'))
    .map((b) => ({ first: Number(b.first_seq), last: Number(b.last_seq), hash: b.hash }));
}

for (const engine of ENGINES) {
  describe(`audit hash chain (${engine})`, { concurrency: 1 }, () => {
    let t: TestServer;
    let pid: string;
    let journal: Awaited<ReturnType<typeof journalConnection>>;
    before(async () => {
      t = await startTestServer(engine);
      journal = await journalConnection(t.server.driver);
      pid = (await t.fhir.post('Patient', { resourceType: 'Patient', name: [{ family: 'Chained' }] })).body.id;
      // Each once the one before is written, so the trail writes them in batches of their own.
      await waitForJournal(t.server.driver, await journalEntryCount(t.server.driver));
      for (let i = 0; i < 6; i++) {
        const written = await journalEntryCount(t.server.driver);
        await t.fhir.get(`Patient/${pid}`);
        await waitForJournal(t.server.driver, written + 1);
      }
      assert.ok((await batchesBySeq(t.server.driver)).length >= 5, 'several batches to tamper with');
    });
    after(async () => {
      await journal?.close();
      await t?.close();
    });

    it('verify passes on an intact chain', async () => {
      const r = await verify(t.database);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.match(r.stdout, /intact: \d+ entries checked/);
    });

    it('verify names the entry whose stored request was changed', async () => {
      const batches = await batchesBySeq(t.server.driver);
      const target = batches[3];
      const restore = await forgeBatchEntry(journal.db, target.last, (r) => ({ ...r, outcome: { ...r.outcome, status: 500 } }));
      try {
        assert.equal((await t.fhir.get(`AuditEvent/${target.last}`)).body.outcome, '8', 'the forgery is what is served…');
        const r = await verify(t.database);
        assert.equal(r.code, 1, r.stdout + r.stderr);
        assert.equal(r.lines.length, 1, r.stdout);
        assert.match(r.lines[0], new RegExp(`seq ${target.last} \\(AuditEvent ${target.last}\\): this entry was changed after it was recorded`));
        assert.match(r.lines[0], new RegExp(`its batch \\(entries ${target.first} to ${target.last}, stored as one batch\\)`));
      } finally {
        await restore();
      }
      assert.equal((await verify(t.database)).code, 0, 'intact again once restored');
    });

    it('verify names the entry changed in the middle of a batch, and the first of two', async () => {
      const { first, last } = await appendBatch(journal.db, Array.from({ length: 7 }, (_, i) => readOf(pid, i)));
      const middle = first + 3;
      const restore = await forgeBatchEntry(journal.db, middle, (r) => ({ ...r, outcome: { ...r.outcome, status: 404 } }));
      try {
        assert.equal((await t.fhir.get(`AuditEvent/${middle}`)).body.outcome, '4', 'the forgery is what is served…');
        const r = await verify(t.database);
        assert.equal(r.code, 1, r.stdout + r.stderr);
        assert.equal(r.lines.length, 1, r.stdout);
        assert.match(r.lines[0], new RegExp(`BROKEN at seq ${middle} \\(AuditEvent ${middle}\\): this entry was changed after it was recorded`));
        assert.match(r.lines[0], new RegExp(`its batch \\(entries ${first} to ${last}, stored as one batch\\)`));
        assert.doesNotMatch(r.lines[0], /more of its entries/);
        const restoreLater = await forgeBatchEntry(journal.db, last, (r) => ({ ...r, address: '10.9.9.9' }));
        try {
          const both = await verifyAuditChain(t.server.driver);
          assert.equal(!both.intact && both.seq, middle, 'the first changed entry');
          assert.equal(!both.intact && both.auditId, String(middle));
          assert.match(!both.intact ? both.problem : '', new RegExp(`1 more of its entries were changed too, the next at seq ${last}`));
        } finally {
          await restoreLater();
        }
      } finally {
        await restore();
      }
      assert.equal((await verify(t.database)).code, 0, 'intact again once restored');
    });

    it('verify names the batch whose entry digests no longer decode', async () => {
      const { first, last } = await appendBatch(journal.db, Array.from({ length: 3 }, (_, i) => readOf(pid, i)));
      const { entry_digests: digests } = (await t.server.driver.get<{ entry_digests: string }>('SELECT entry_digests FROM audit_batch WHERE first_seq = ?', [first]))!;
      assert.equal(Buffer.from(digests, 'base64').length, 4 * (last - first + 1), 'a digest per entry');
      const setDigests = (text: string) => journal.db.transaction((tx) => tx.run('UPDATE audit_batch SET entry_digests = ? WHERE first_seq = ?', [text, first]));
      await setDigests(`${digests.slice(0, -4)}!!!!`);
      try {
        const r = await verify(t.database);
        assert.equal(r.code, 1, r.stdout + r.stderr);
        assert.match(r.lines[0], new RegExp(`seq ${first} \\(AuditEvent ${first}\\): its batch \\(entries ${first} to ${last}, stored as one batch\\) does not match its hash`));
      } finally {
        await setDigests(digests);
      }
      assert.equal((await verify(t.database)).code, 0, 'intact again once restored');
    });

    it('verify names exactly the entry where a deleted batch began', async () => {
      const [, , target] = await batchesBySeq(t.server.driver);
      const row = (await t.server.driver.get<Record<string, any>>('SELECT * FROM audit_batch WHERE first_seq = ?', [target.first]))!;
      await journal.db.transaction((tx) => tx.run('DELETE FROM audit_batch WHERE first_seq = ?', [target.first]));
      try {
        const r = await verify(t.database);
        assert.equal(r.code, 1, r.stdout + r.stderr);
        assert.equal(r.lines.length, 1, r.stdout);
        assert.match(r.lines[0], new RegExp(`seq ${target.first} \\(AuditEvent ${target.first}\\)`));
        assert.match(r.lines[0], /journal row has been deleted/);
      } finally {
        const columns = Object.keys(row);
        await journal.db.transaction((tx) => tx.insertMany('audit_batch', columns, [columns.map((c) => row[c])]));
      }
      assert.equal((await verify(t.database)).code, 0, 'intact again once restored');
    });

    it('verify notices entries removed from the end with their index rows, from the head anchored in the record', async () => {
      await new Promise((r) => setTimeout(r, ANCHOR_EVERY_MS + 100));
      for (let i = 0; i < 3; i++) await t.fhir.get(`Patient/${pid}`);
      const last = async () => Number((await t.server.driver.get<{ seq: number }>('SELECT MAX(last_seq) AS seq FROM audit_batch'))!.seq);
      const deadline = Date.now() + 10_000;
      let anchored: number | undefined;
      // The anchor follows the chain's head after a write, at most once a second.
      while ((anchored = Number((await t.server.driver.get<{ seq: number }>('SELECT seq FROM access_audit_anchor WHERE id = 1'))?.seq ?? 0)) !== await last() || anchored < 8) {
        if (Date.now() > deadline) assert.fail(`the anchor (${anchored}) did not reach the chain's head (${await last()})`);
        await t.fhir.get(`Patient/${pid}`);
        await new Promise((r) => setTimeout(r, 300));
      }
      // The batch that ends at the anchor, and any after it.
      const from = (await batchesBySeq(t.server.driver)).find((b) => b.last === anchored)!.first;
      const batches = await t.server.driver.all<Record<string, any>>('SELECT * FROM audit_batch WHERE first_seq >= ? ORDER BY first_seq', [from]);
      const keys = await t.server.driver.all<Record<string, any>>('SELECT * FROM audit_batch_key WHERE first_seq >= ?', [from]);
      // Quiet while the rows are out: nothing new is written on top of the shortened chain.
      await journal.db.transaction(async (tx) => {
        for (const table of ['audit_batch', 'audit_batch_key']) await tx.run(`DELETE FROM ${table} WHERE first_seq >= ?`, [from]);
      });
      try {
        const r = await verify(t.database);
        assert.equal(r.code, 1, r.stdout + r.stderr);
        // (verify itself is audited: its own entry may already sit on the shortened chain)
        assert.match(r.lines[0], new RegExp(`the record's anchor says the chain reached entry ${anchored}|not the entry the record anchored`));
      } finally {
        await journal.db.transaction(async (tx) => {
          for (const table of ['audit_batch', 'audit_batch_key']) await tx.run(`DELETE FROM ${table} WHERE first_seq >= ?`, [from]);
          for (const [table, list] of [['audit_batch', batches], ['audit_batch_key', keys]] as const) {
            if (list.length) await tx.insertMany(table, Object.keys(list[0]), list.map((row) => Object.keys(list[0]).map((c) => row[c])));
          }
        });
      }
      assert.equal((await verify(t.database)).code, 0, 'intact again once restored');
    });

    it('verify notices an event hidden from a person\'s audit by removing its batch\'s patient key', async () => {
      const about = (await batchedEntries(t.server.driver)).filter((e) => e.entry.patients.includes(pid));
      const batch = await batchHolding(t.server.driver, about[1].seq);
      const firstAbout = about.find((e) => e.seq >= Number(batch.first_seq))!.seq;
      const inBatch = about.filter((e) => e.seq <= Number(batch.last_seq) && e.seq >= Number(batch.first_seq)).length;
      const before = await nextCountAbout(t, pid);
      const { positions } = (await t.server.driver.get<{ positions: string }>('SELECT positions FROM audit_batch_key WHERE key = ? AND first_seq = ?', [`P|${pid}`, batch.first_seq]))!;
      await journal.db.transaction((tx) => tx.run('DELETE FROM audit_batch_key WHERE key = ? AND first_seq = ?', [`P|${pid}`, batch.first_seq]));
      try {
        assert.equal((await t.fhir.get(`AuditEvent?patient=${pid}&_summary=count`)).body.total, before - inBatch, 'the batch\'s events no longer show for the patient');
        const result = await verifyAuditChain(t.server.driver);
        assert.equal(result.intact, false);
        assert.equal(!result.intact && result.seq, firstAbout);
        assert.match(!result.intact ? result.problem : '', new RegExp(`patient index has lost its row for Patient/${pid}`));
      } finally {
        await journal.db.transaction((tx) => tx.insertMany('audit_batch_key', ['key', 'first_seq', 'positions'], [[`P|${pid}`, batch.first_seq, positions]]));
      }
      assert.equal((await verifyAuditChain(t.server.driver)).intact, true);
    });

    it('verify of a live trail does not take a batch written while it runs for entries removed from the end', async () => {
      // A server keeps writing while `audit verify` reads: a batch committed after verify walked the chain
      // must not look like index rows left behind by deleted entries. The batch is written (by this server's
      // own trail, for a real read) just before verify looks for such rows.
      let appended = false;
      const driver = t.server.driver;
      const racing = new Proxy(driver, {
        get(target, prop) {
          const value = Reflect.get(target, prop);
          if (prop !== 'get') return typeof value === 'function' ? value.bind(target) : value;
          return async (sql: string, params?: unknown[]) => {
            if (!appended && /MIN\(seq\)/.test(sql)) {
              appended = true;
              const written = await journalEntryCount(driver);
              await t.fhir.get(`Patient/${pid}`);
              await waitForJournal(driver, written + 1);
            }
            return target.get(sql, params as never);
          };
        },
      });
      const result = await verifyAuditChain(racing);
      assert.ok(appended, 'a batch was written while verify ran');
      assert.equal(result.intact, true, JSON.stringify(result));
      assert.equal((await verifyAuditChain(driver)).intact, true);
    });

    it('verify notices an event hidden from a person\'s audit by taking its position out of the patient key', async () => {
      const about = (await batchedEntries(t.server.driver)).filter((e) => e.entry.patients.includes(pid));
      const hidden = about[about.length - 1];
      const batch = await batchHolding(t.server.driver, hidden.seq);
      const row = (await t.server.driver.get<{ positions: string }>('SELECT positions FROM audit_batch_key WHERE key = ? AND first_seq = ?', [`P|${pid}`, batch.first_seq]))!;
      const kept = row.positions.split(',').filter((p) => Number(p) !== hidden.seq - Number(batch.first_seq)).join(',');
      const before = await nextCountAbout(t, pid);
      const setPositions = (text: string) => journal.db.transaction((tx) => tx.run('UPDATE audit_batch_key SET positions = ? WHERE key = ? AND first_seq = ?', [text, `P|${pid}`, batch.first_seq]));
      await setPositions(kept);
      try {
        assert.equal((await t.fhir.get(`AuditEvent?patient=${pid}&_summary=count`)).body.total, before - 1, 'the event no longer shows for the patient');
        assert.ok(!(await t.fhir.get(`AuditEvent?patient=${pid}&_count=100`)).body.entry.some((e: any) => e.resource.id === String(hidden.seq)));
        const result = await verifyAuditChain(t.server.driver);
        assert.equal(!result.intact && result.seq, hidden.seq);
        assert.match(!result.intact ? result.problem : '', new RegExp(`patient index has lost its row for Patient/${pid}`));
      } finally {
        await setPositions(row.positions);
      }
      assert.equal((await verifyAuditChain(t.server.driver)).intact, true);
    });

    it('verify names the batch whose callers were changed', async () => {
      const [, , , , target] = await batchesBySeq(t.server.driver);
      const { actors } = (await t.server.driver.get<{ actors: string }>('SELECT actors FROM audit_batch WHERE first_seq = ?', [target.first]))!;
      assert.ok(actors.includes(TEST_ADMIN.id));
      const setActors = (text: string) => journal.db.transaction((tx) => tx.run('UPDATE audit_batch SET actors = ? WHERE first_seq = ?', [text, target.first]));
      await setActors(actors.replaceAll(TEST_ADMIN.id, 'someone-else'));
      try {
        const r = await verify(t.database);
        assert.equal(r.code, 1, r.stdout + r.stderr);
        assert.match(r.lines[0], new RegExp(`seq ${target.first} \\(AuditEvent ${target.first}\\)`));
        assert.match(r.lines[0], /does not match its hash/);
      } finally {
        await setActors(actors);
      }
    });

    it('the chain position is served in each AuditEvent and matches the journal', async () => {
      const batches = await batchesBySeq(t.server.driver);
      const last = batches[batches.length - 1];
      for (const seq of [last.first, last.last]) {
        const event = (await t.fhir.get(`AuditEvent/${seq}`)).body;
        const chain = event.extension.find((e: any) => e.url === CHAIN_EXTENSION);
        assert.deepEqual(chain.extension, [{ url: 'seq', valueDecimal: seq }, { url: 'hash', valueString: last.hash }]);
      }
    });
  });

  describe(`audit batches from before the entry digests (${engine})`, () => {
    it('verify passes over them once migrated, names such a batch when one of its entries is changed, and names the entry in the batches after them', async () => {
      const db = await testDatabase(engine);
      const driver = await openRecordStore(db.database);
      try {
        await migrate(driver, 'access', ACCESS_MIGRATIONS);
        await migrate(driver, 'audit', auditMigrations(driver.dialect)); // a journal at audit migration 2
        const pid = randomUUID();
        const old = await appendUndigestedBatch(driver, 'old node', Array.from({ length: 5 }, (_, i) => readOf(pid, i)));
        await migrateAccess(driver, db.database);
        const journal = await journalConnection(driver);
        try {
          const stored = await driver.get<{ format: number; entry_digests: string | null }>('SELECT format, entry_digests FROM audit_batch WHERE first_seq = ?', [old.first]);
          assert.deepEqual({ format: Number(stored!.format), digests: stored!.entry_digests }, { format: 3, digests: null }, 'kept as it was written');
          const intact = await verifyAuditChain(driver);
          assert.deepEqual(intact.intact && intact.checked, 5, JSON.stringify(intact));

          const restore = await forgeBatchEntry(journal.db, old.first + 2, (r) => ({ ...r, outcome: { ...r.outcome, status: 404 } }));
          try {
            const r = await verify(db.database);
            assert.equal(r.code, 1, r.stdout + r.stderr);
            assert.match(r.lines[0], new RegExp(`seq ${old.first} \\(AuditEvent ${old.first}\\): its batch \\(entries ${old.first} to ${old.last}, stored as one batch\\) does not match its hash`));
          } finally {
            await restore();
          }

          const next = await appendBatch(journal.db, Array.from({ length: 4 }, (_, i) => readOf(pid, i)));
          const continued = await verifyAuditChain(driver);
          assert.deepEqual(continued.intact && continued.checked, 9, JSON.stringify(continued));
          const restoreNext = await forgeBatchEntry(journal.db, next.first + 1, (r) => ({ ...r, outcome: { ...r.outcome, status: 404 } }));
          try {
            const named = await verifyAuditChain(driver);
            assert.equal(!named.intact && named.seq, next.first + 1, JSON.stringify(named));
          } finally {
            await restoreNext();
          }
        } finally {
          await journal.close();
        }
      } finally {
        await driver.close();
        db.cleanup();
      }
    });
  });

  describe(`audit entries from before the journal (${engine})`, () => {
    it('move into the journal with their hashes, stay verifiable and searchable, and the chain continues from them', async () => {
      const db = await testDatabase(engine);
      const driver = await openRecordStore(db.database);
      try {
        await migrate(driver, 'access', ACCESS_MIGRATIONS); // a deployment from before the journal
        const pid = randomUUID();
        const legacy = await appendLegacyChain(driver, [0, 1, 2].map((i) => ({
          resourceType: 'AuditEvent', type: { system: 'http://terminology.hl7.org/CodeSystem/audit-event-type', code: 'rest' },
          subtype: [{ system: 'http://hl7.org/fhir/restful-interaction', code: 'read' }], action: 'R', recorded: new Date(Date.UTC(2026, 0, 1 + i)).toISOString(), outcome: '0',
          agent: [{ altId: 'legacy-client', requestor: true, who: { display: 'Legacy' } }], source: { observer: { display: 'old node' } },
          entity: [{ what: { reference: `Patient/${pid}` } }, { what: { reference: `Observation/obs-${i}` } }],
        })));
        await migrateAccess(driver);
        const journal = await journalConnection(driver);
        const verified = await verifyAuditChain(driver);
        assert.deepEqual(verified.intact && verified.checked, 3, JSON.stringify(verified));
        assert.equal(Number((await driver.get<{ n: number }>("SELECT COUNT(*) AS n FROM resources WHERE type = 'AuditEvent'"))!.n), 0, 'no longer in the record');

        await new JournalAppender(journal.db).append([journalEntryFor({ at: Date.now(), events: [{ interaction: 'read', resourceType: 'Patient', id: pid, patientIds: [pid] }], outcome: { status: 200, method: 'GET', path: `Patient/${pid}`, query: '' } }, new SharedParts('test'))]);
        await journal.close();
        const continued = await verifyAuditChain(driver);
        assert.deepEqual(continued.intact && continued.checked, 4, JSON.stringify(continued));
        const head = (await driver.get<{ prev_hash: string }>('SELECT prev_hash FROM audit_journal WHERE seq = 4'))!;
        assert.equal(head.prev_hash, legacy[2].hash, 'the new entry links to the last legacy one');

        await driver.close();
        const server = await buildServer(loadServerConfig({ port: 0, db: db.database }, { CAREBRIDGE_ADMIN_CLIENT_ID: TEST_ADMIN.id, CAREBRIDGE_ADMIN_CLIENT_SECRET: TEST_ADMIN.secret }));
        try {
          const url = await server.app.listen({ host: '127.0.0.1', port: 0 });
          const fhir = fhirClient(`${url}/fhir`, { authorization: `Bearer ${await clientToken(url, TEST_ADMIN.id, TEST_ADMIN.secret)}` });
          const found = await fhir.get(`AuditEvent?patient=${pid}&_sort=-date`);
          assert.deepEqual(found.body.entry.map((e: any) => e.resource.id), ['4', legacy[2].id, legacy[1].id, legacy[0].id], 'newest first, old and new alike');
          assert.equal((await fhir.get(`AuditEvent?entity=Observation/obs-1`)).body.entry[0].resource.id, legacy[1].id);
          assert.equal((await fhir.get(`AuditEvent?altid=legacy-client&date=2026-01-03`)).body.entry[0].resource.id, legacy[2].id);
          const read = await fhir.get(`AuditEvent/${legacy[0].id}`);
          assert.equal(read.status, 200);
          assert.equal(read.body.recorded, '2026-01-01T00:00:00.000Z');
        } finally {
          await server.close();
        }
      } finally {
        await driver.close().catch(() => undefined);
        db.cleanup();
      }
    });
  });
}

/** A read of Patient `pid` as the trail records one (the i-th of a batch). */
function readOf(pid: string, i: number): AuditedRequest {
  return { at: Date.now() + i, address: '127.0.0.1', events: [{ interaction: 'read', resourceType: 'Patient', id: pid, patientIds: [pid] }], outcome: { status: 200, method: 'GET', path: `Patient/${pid}`, query: `_i=${i}` } };
}

/** Appends `requests` as one batch, as the writer thread does; resolves to its first and last seq. */
async function appendBatch(db: SqlDriver, requests: AuditedRequest[]): Promise<{ first: number; last: number }> {
  const packed = new PackedRequests();
  for (const r of requests) packed.push(r);
  const head = (await new BatchAppender(db, 'test node').append(packed.message(requests.length)))!;
  return { first: head.seq - requests.length + 1, last: head.seq };
}

/** What the audit trail wrote before the journal: AuditEvents as record resources, chained in access_audit_chain. */
async function appendLegacyChain(driver: SqlDriver, events: Record<string, any>[]): Promise<{ id: string; hash: string }[]> {
  return driver.transaction(async (tx) => {
    let previous = GENESIS_HASH;
    const links: [number, string, string, string, number][] = [];
    events.forEach((event, i) => {
      event.id = randomUUID();
      const hash = chainHash(previous, event);
      event.extension = [{ url: CHAIN_EXTENSION, extension: [{ url: 'seq', valueDecimal: i + 1 }, { url: 'hash', valueString: hash }] }];
      links.push([i + 1, event.id, previous, hash, Date.now()]);
      previous = hash;
    });
    await createResources(tx, events);
    await tx.insertMany('access_audit_chain', ['seq', 'audit_id', 'prev_hash', 'hash', 'at_ms'], links);
    return links.map(([, id, , hash]) => ({ id, hash }));
  });
}

// Several app nodes share one database only on PostgreSQL (SQLite is one process per file).
describe('two app nodes on one PostgreSQL extend one chain', () => {
  const engine = 'postgres';
  let database: string;
  let cleanup: () => void;
  const servers: CareBridgeServer[] = [];
  before(async () => {
    ({ database, cleanup } = await testDatabase(engine));
  });
  after(() => cleanup?.());

  it('appends racing from two connection pools are serialised into one chain', async () => {
    const db = await testDatabase(engine);
    const pools = [await openRecordStore(db.database), await openRecordStore(db.database)];
    try {
      await migrateAccess(pools[0]);
      const appenders = pools.map((p, i) => new BatchAppender(p, `node ${i}`));
      const batch = (i: number) => {
        const packed = new PackedRequests();
        for (let k = 0; k < 5; k++) packed.push({ at: Date.now(), events: [], outcome: { status: 404, method: 'GET', path: `Patient/racer-${i}`, query: '' } });
        return packed.message(5);
      };
      await Promise.all(Array.from({ length: 20 }, (_, i) => appenders[i % 2].append(batch(i))));
      const result = await verifyAuditChain(pools[1]);
      assert.deepEqual(result.intact && result.checked, 100, JSON.stringify(result));
    } finally {
      for (const p of pools) await p.close();
      db.cleanup();
    }
  });

  it('concurrent requests through both nodes leave one intact, dense chain; deleting its last entry is noticed', async () => {
    const env = { CAREBRIDGE_ADMIN_CLIENT_ID: TEST_ADMIN.id, CAREBRIDGE_ADMIN_CLIENT_SECRET: TEST_ADMIN.secret };
    for (let i = 0; i < 2; i++) servers.push(await buildServer(loadServerConfig({ port: 0, db: database }, env)));
    const clients = await Promise.all(servers.map(async (s) => {
      const url = await s.app.listen({ host: '127.0.0.1', port: 0 });
      return fhirClient(`${url}/fhir`, { authorization: `Bearer ${await clientToken(url, TEST_ADMIN.id, TEST_ADMIN.secret)}` });
    }));
    const pid = (await clients[0].post('Patient', { resourceType: 'Patient', name: [{ family: 'Twice' }] })).body.id;
    const PER_NODE = 60;
    const statuses = await Promise.all(clients.flatMap((c) => Array.from({ length: PER_NODE }, () => c.get(`Patient/${pid}`).then((r) => r.status))));
    assert.ok(statuses.every((s) => s === 200));
    for (const s of servers) await s.close(); // each flushes what it buffered

    const r = await verify(database);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const checked = Number(/(\d+) entries checked/.exec(r.stdout)![1]);
    // The administrative client made at the first start, each node's token request, the Patient created, then every read.
    assert.equal(checked, 1 + 2 + 1 + 2 * PER_NODE, 'one entry per request, none lost, no fork');

    const driver = await openRecordStore(database);
    let lastBatch = 0;
    try {
      const last = (await driver.get<{ first_seq: number; last_seq: number }>('SELECT first_seq, last_seq FROM audit_batch ORDER BY first_seq DESC LIMIT 1'))!;
      assert.equal(Number(last.last_seq), checked, 'seq is dense');
      lastBatch = Number(last.first_seq);
      await driver.transaction((tx) => tx.run('DELETE FROM audit_batch WHERE first_seq = ?', [last.first_seq]));
    } finally {
      await driver.close();
    }
    const tail = await verify(database);
    assert.equal(tail.code, 1);
    assert.match(tail.lines[0], new RegExp(`seq ${lastBatch} \\(AuditEvent ${lastBatch}\\)`));
  });
});
