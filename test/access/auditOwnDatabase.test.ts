// On SQLite the audit journal is kept in a file of its own (x.db → x-audit.db): the record's writes never
// wait for the audit writer's commits, and a database from before the split has its journal moved, whole and
// still verifiable, the next time it starts, even when an earlier start stopped half-way through the move.
// The journal's file belongs to the record file it was made beside: a new or other record file beside it is
// refused with what to do, and the journal is left as it was.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, rmSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { startTestServer, testDatabase, TEST_ADMIN } from '../support/server.ts';
import { runCli } from '../cli/cli.ts';
import { batchedEntries, journalConnection } from '../support/auditJournal.ts';
import { migrateAccess, verifyAuditChain } from '../../src/access/index.ts';
import { ACCESS_MIGRATIONS } from '../../src/access/schema.ts';
import { JournalAppender, auditMigrations } from '../../src/access/audit/journal.ts';
import { SharedParts, journalEntryFor } from '../../src/access/audit/auditEvent.ts';
import { connectRecordDatabase, migrate, openRecordStore, type SqlDriver } from '../../src/record/index.ts';
import { buildServer } from '../../src/server.ts';
import { loadServerConfig } from '../../src/config.ts';

const JOURNAL_TABLES = ['audit_journal', 'audit_part', 'audit_patient', 'audit_entity', 'audit_batch', 'audit_batch_key'];
const fileOf = (database: string) => database.slice('sqlite:'.length);
const companionOf = (database: string) => fileOf(database).replace(/\.db$/, '-audit.db');

function tablesIn(file: string): string[] {
  const db = new Database(file, { readonly: true });
  try {
    return (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'audit_%' ORDER BY name").all() as { name: string }[]).map((r) => r.name);
  } finally {
    db.close();
  }
}

async function journalLength(driver: SqlDriver): Promise<number> {
  return Number((await driver.get<{ n: number }>('SELECT COUNT(*) AS n FROM audit_journal'))!.n);
}

/** The three entries of databaseFromBeforeTheSplit are in the journal's own file once each, the record file holds none, and the chain verifies. */
async function assertMovedWhole(driver: SqlDriver, database: string): Promise<void> {
  assert.equal(await journalLength(driver), 3, 'each entry once');
  assert.deepEqual(tablesIn(fileOf(database)).filter((n) => JOURNAL_TABLES.includes(n)), []);
  const verified = await verifyAuditChain(driver);
  assert.deepEqual(verified.intact && verified.checked, 3, JSON.stringify(verified));
}

/** A database as this version found it before the split: the journal's tables and three chained entries in the record's file. */
async function databaseFromBeforeTheSplit(): Promise<{ database: string; cleanup(): void }> {
  const db = await testDatabase('sqlite');
  const driver = await openRecordStore(db.database);
  try {
    await migrate(driver, 'access', ACCESS_MIGRATIONS);
    await migrate(driver, 'audit', auditMigrations('sqlite'));
    const parts = new SharedParts('old node');
    for (const id of ['p1', 'p2', 'p3']) {
      await new JournalAppender(driver).append([journalEntryFor({ at: Date.now(), events: [{ interaction: 'read', resourceType: 'Patient', id, patientIds: [id] }], outcome: { status: 200, method: 'GET', path: `Patient/${id}`, query: '' } }, parts)]);
    }
  } finally {
    await driver.close();
  }
  assert.deepEqual(tablesIn(fileOf(db.database)).filter((t) => JOURNAL_TABLES.includes(t)).length, JOURNAL_TABLES.length, 'the journal starts in the record file');
  return db;
}

describe('the audit journal in its own SQLite file', () => {
  it('holds what the server audits, and the record file holds none of it', async () => {
    const t = await startTestServer('sqlite');
    try {
      assert.equal((await t.fhir.get('Patient?_count=1')).status, 200);
      await t.server.close(); // writes what is buffered
      assert.deepEqual(tablesIn(fileOf(t.database)).filter((n) => JOURNAL_TABLES.includes(n)), [], 'no journal table in the record file');
      assert.ok(existsSync(companionOf(t.database)), 'the journal file sits beside the record file');
      const journal = connectRecordDatabase(`sqlite:${companionOf(t.database)}`);
      try {
        const searches = (await batchedEntries(journal)).filter((e) => e.entry.subtype === 'search-type');
        assert.ok(searches.length >= 1, 'the search is in the journal file');
      } finally {
        await journal.close();
      }
    } finally {
      await t.close().catch(() => undefined);
    }
  });

  it("lets the record's writes go on while the journal's file is locked for writing", async () => {
    const t = await startTestServer('sqlite');
    // Another writer holds the journal file's write lock, as the audit writer thread does while it commits.
    const holder = new Database(companionOf(t.database));
    try {
      holder.exec('BEGIN IMMEDIATE');
      const created = await t.fhir.post('Patient', { resourceType: 'Patient', name: [{ family: 'Lockless' }] });
      assert.equal(created.status, 201, 'the record write did not wait for the journal lock');
      assert.equal((await t.fhir.get(`Patient/${created.body.id}`)).body.name[0].family, 'Lockless');
    } finally {
      holder.exec('ROLLBACK');
      holder.close();
      await t.close();
    }
  });

  it('is moved there from a database that kept it in the record file, with its chain intact, and the chain continues', async () => {
    const db = await databaseFromBeforeTheSplit();
    const driver = await openRecordStore(db.database);
    try {
      const location = await migrateAccess(driver, db.database);
      assert.equal(location, `sqlite:${companionOf(db.database)}`);
      assert.deepEqual(tablesIn(fileOf(db.database)).filter((n) => JOURNAL_TABLES.includes(n)), []);
      assert.deepEqual(tablesIn(companionOf(db.database)), JOURNAL_TABLES.slice().sort());
      const verified = await verifyAuditChain(driver);
      assert.deepEqual(verified.intact && verified.checked, 3, JSON.stringify(verified));
      const journal = await journalConnection(driver);
      await new JournalAppender(journal.db).append([journalEntryFor({ at: Date.now(), events: [], outcome: { status: 200, method: 'GET', path: 'metadata', query: '' } }, new SharedParts('new node'))]);
      await journal.close();
      const continued = await verifyAuditChain(driver);
      assert.deepEqual(continued.intact && continued.checked, 4, JSON.stringify(continued));
    } finally {
      await driver.close();
      db.cleanup();
    }
  });

  it('finishes a move that stopped after copying, without doubling any entry', async () => {
    const db = await databaseFromBeforeTheSplit();
    // The first of the move's two transactions committed (the rows are in both files), the second never ran.
    const raw = new Database(fileOf(db.database));
    raw.prepare('ATTACH DATABASE ? AS audit').run(companionOf(db.database));
    for (const { sql } of raw.prepare("SELECT sql FROM main.sqlite_master WHERE tbl_name LIKE 'audit_%' AND type = 'table'").all() as { sql: string }[]) {
      raw.exec(sql.replace(/^CREATE TABLE (\w+)/, 'CREATE TABLE audit.$1'));
    }
    for (const table of JOURNAL_TABLES) raw.exec(`INSERT INTO audit.${table} SELECT * FROM main.${table}`);
    raw.close();

    const driver = await openRecordStore(db.database);
    try {
      await migrateAccess(driver, db.database);
      await assertMovedWhole(driver, db.database);
    } finally {
      await driver.close();
      db.cleanup();
    }
  });

  it('starts on a record file put back from a backup taken before the move, beside the journal file that has moved on since: nothing taken twice, the chain intact', async () => {
    const db = await databaseFromBeforeTheSplit();
    const backup = `${fileOf(db.database)}.backup`;
    copyFileSync(fileOf(db.database), backup);
    let driver = await openRecordStore(db.database);
    await migrateAccess(driver, db.database); // the move, and the journal's own migrations (a column added to audit_batch)
    await driver.close();
    for (const suffix of ['', '-wal', '-shm']) rmSync(`${fileOf(db.database)}${suffix}`, { force: true });
    copyFileSync(backup, fileOf(db.database));
    driver = await openRecordStore(db.database);
    try {
      await migrateAccess(driver, db.database);
      await assertMovedWhole(driver, db.database);
    } finally {
      await driver.close();
      rmSync(backup, { force: true });
      db.cleanup();
    }
  });

  it('is moved once when two starts move it at the same moment: the second finds nothing left, and no error', async () => {
    const db = await databaseFromBeforeTheSplit();
    const driver = await openRecordStore(db.database);
    await migrate(driver); // before the other process takes the write lock, so that the move is what waits for it
    // Another process has copied the journal across and dropped it from the record file, and has not yet
    // committed: this start sees the tables still in the record file, then waits for the write lock.
    const mover = new Worker(`
      const { parentPort, workerData } = require('node:worker_threads');
      const Database = require('better-sqlite3');
      const raw = new Database(workerData.file);
      raw.prepare('ATTACH DATABASE ? AS audit').run(workerData.companion);
      raw.exec('PRAGMA audit.journal_mode = WAL');
      raw.exec('BEGIN IMMEDIATE');
      for (const { name, sql } of raw.prepare("SELECT name, sql FROM main.sqlite_master WHERE tbl_name LIKE 'audit_%' AND type = 'table'").all()) {
        raw.exec(sql.replace(/^CREATE TABLE (\\w+)/, 'CREATE TABLE audit.$1'));
        raw.exec('INSERT INTO audit.' + name + ' SELECT * FROM main.' + name);
        raw.exec('DROP TABLE main.' + name);
      }
      parentPort.postMessage('holding');
      setTimeout(() => { raw.exec('COMMIT'); raw.close(); parentPort.postMessage('committed'); }, 400);
    `, { eval: true, workerData: { file: fileOf(db.database), companion: companionOf(db.database) } });
    const messages: string[] = [];
    const committed = new Promise<void>((resolve, reject) => {
      mover.on('message', (m: string) => { messages.push(m); if (m === 'committed') resolve(); });
      mover.on('error', reject);
    });
    try {
      await new Promise<void>((resolve) => mover.once('message', () => resolve()));
      assert.equal(await driver.attachCompanion!('audit', JOURNAL_TABLES), `sqlite:${companionOf(db.database)}`);
      await committed;
      assert.deepEqual(messages, ['holding', 'committed'], 'the move waited for the other one to commit');
      await migrateAccess(driver, db.database); // the journal's own migrations (audit 3 on), which verify reads; the move is already done
      await assertMovedWhole(driver, db.database);
    } finally {
      await driver.close();
      await mover.terminate();
      db.cleanup();
    }
  });

  describe('belongs to the record file it was made beside', () => {
    const start = (database: string) => buildServer(loadServerConfig({ port: 0, db: database }, { CAREBRIDGE_ADMIN_CLIENT_ID: TEST_ADMIN.id, CAREBRIDGE_ADMIN_CLIENT_SECRET: TEST_ADMIN.secret }));
    const rawCompanion = (database: string, work: (db: Database.Database) => unknown) => {
      const db = new Database(companionOf(database));
      try {
        return work(db);
      } finally {
        db.close();
      }
    };
    const journalRows = (database: string) => rawCompanion(database, (db) => db.prepare('SELECT (SELECT COUNT(*) FROM audit_batch) AS b, (SELECT COUNT(*) FROM audit_journal) AS j').get());
    /** `work` on a database whose server audited a search and stopped: its journal file is left with entries in it. */
    async function withJournalLeftBehind(work: (database: string) => Promise<void>): Promise<void> {
      const t = await startTestServer('sqlite');
      try {
        assert.equal((await t.fhir.get('Patient?_count=1')).status, 200);
        await t.server.close();
        await work(t.database);
      } finally {
        await t.close().catch(() => undefined);
      }
    }
    const startAfresh = (database: string) => {
      for (const suffix of ['', '-wal', '-shm']) rmSync(fileOf(database) + suffix, { force: true });
    };
    const OTHERS = /-audit\.db is the audit database of another database \(.*\), not of .*carebridge\.db \(created .*\): move it away/;

    it('refuses a new record file started beside it, and leaves it as it was', () => withJournalLeftBehind(async (database) => {
      const before = journalRows(database);
      startAfresh(database); // an operator starting over, the old journal still beside the new file
      await assert.rejects(start(database), (err: Error) => (assert.match(err.message, OTHERS), assert.match(err.message, /one created /), true));
      assert.deepEqual(journalRows(database), before, 'nothing moved into or out of the old journal');
      const verify = await runCli(['audit', 'verify', '--db', database]);
      assert.notEqual(verify.code, 0);
      assert.equal(verify.stderr.trim().split('\n').length, 1, verify.stderr);
      assert.match(verify.stderr, /^carebridge: .*-audit\.db is the audit database of another database/);
    }));

    it('refuses it too when it is from before the mark, by its own migrations being older than the record file', () => withJournalLeftBehind(async (database) => {
      rawCompanion(database, (db) => db.exec('DROP TABLE companion_of'));
      startAfresh(database);
      await assert.rejects(start(database), (err: Error) => (assert.match(err.message, OTHERS), assert.match(err.message, /before this one was created/), true));
    }));

    it('takes a journal file from before the mark beside its own record file as its own, and marks it', () => withJournalLeftBehind(async (database) => {
      rawCompanion(database, (db) => db.exec('DROP TABLE companion_of'));
      const server = await start(database);
      await server.close();
      const record = new Database(fileOf(database), { readonly: true });
      const made = (record.prepare("SELECT applied_ms FROM schema_migrations WHERE component = 'record' AND version = 1").get() as { applied_ms: number }).applied_ms;
      record.close();
      assert.deepEqual(rawCompanion(database, (db) => db.prepare('SELECT record_created_ms FROM companion_of').all()), [{ record_created_ms: made }]);
    }));
  });
});
