// Upgrading a database made by an earlier version: record migration 2 rebuilds the search tables' rid
// indexes as (rid, param), keeps every row findable, and says on stderr that it is doing so (it can take a
// while on a large database). A new database, or one already upgraded, starts without a word.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { connectRecordDatabase, handleFhirRequest, migrate, openRecordStore, UNRESTRICTED, type SqlDriver } from '../../src/record/index.ts';
import { freshPostgresDatabase } from '../support/postgres.ts';

const TABLES = ['token', 'string', 'date', 'reference', 'number', 'quantity', 'uri'];

/** Opens the record store, returning it with what it wrote to stderr meanwhile. */
async function openNoting(database: string): Promise<{ driver: SqlDriver; said: string }> {
  const said: string[] = [];
  const write = process.stderr.write;
  process.stderr.write = ((chunk: string | Uint8Array) => (said.push(String(chunk)), true)) as typeof process.stderr.write;
  try {
    return { driver: await openRecordStore(database), said: said.join('') };
  } finally {
    process.stderr.write = write;
  }
}

describe('record migration 2 on an older database', () => {
  it('rebuilds the rid indexes, keeps the data searchable, and says so once', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'carebridge-upgrade-'));
    const database = `sqlite:${join(dir, 'record.db')}`;
    try {
      const fresh = await openNoting(database);
      assert.equal(fresh.said, '', 'a new database starts without a word');
      const put = { method: 'PUT', path: 'Patient/p1', query: [], contentType: 'application/fhir+json', body: { resourceType: 'Patient', id: 'p1', name: [{ family: 'Upgraded' }], birthDate: '1940-02-03' } };
      await handleFhirRequest({ base: 'http://x/fhir', driver: fresh.driver, access: UNRESTRICTED }, put);
      await fresh.driver.close();

      // As version 1 left it: rid indexes on (rid) alone, and no record of migration 2.
      const old = new Database(join(dir, 'record.db'));
      for (const t of TABLES) old.exec(`DROP INDEX search_${t}_rid; CREATE INDEX search_${t}_rid ON search_${t} (rid)`);
      old.exec("DROP INDEX compartment_rid; CREATE INDEX compartment_rid ON compartment (rid); DELETE FROM schema_migrations WHERE component = 'record' AND version = 2");
      old.close();

      const upgraded = await openNoting(database);
      try {
        assert.match(upgraded.said, /^carebridge: rebuilding eight search indexes once \(record migration 2\)/);
        assert.equal(upgraded.said.split('\n').filter(Boolean).length, 1, upgraded.said);
        const columns = async (index: string) => (await upgraded.driver.all<{ name: string }>(`SELECT name FROM pragma_index_info('${index}') ORDER BY seqno`)).map((r) => r.name);
        for (const t of TABLES) assert.deepEqual(await columns(`search_${t}_rid`), ['rid', 'param'], t);
        assert.deepEqual(await columns('compartment_rid'), ['rid', 'patient_id']);
        const found = await handleFhirRequest({ base: 'http://x/fhir', driver: upgraded.driver, access: UNRESTRICTED }, { method: 'GET', path: 'Patient', query: [['family', 'upgraded'], ['birthdate', '1940']] });
        const bundle = typeof found.body === 'string' ? JSON.parse(found.body) : found.body;
        assert.deepEqual(bundle.entry.map((e: { resource: { id: string } }) => e.resource.id), ['p1']);
      } finally {
        await upgraded.driver.close();
      }

      const again = await openNoting(database);
      await again.driver.close();
      assert.equal(again.said, '', 'an upgraded database starts without a word');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

// Two app nodes started together on a new PostgreSQL database both created the table listing migrations
// before either took the migration lock: one failed to start with "duplicate key value violates unique
// constraint pg_type_typname_nsp_index", PostgreSQL's catalogue refusing the second table of that name.
describe('nodes migrating one new PostgreSQL database at once', () => {
  it('all start, and each migration is applied once', async () => {
    for (let round = 0; round < 5; round++) {
      const database = await freshPostgresDatabase();
      const nodes = Array.from({ length: 4 }, () => connectRecordDatabase(database));
      try {
        // Connected first, so that the migrations, not the connections, are what start together.
        await Promise.all(nodes.map((node) => node.get('SELECT 1')));
        const applied = await Promise.all(nodes.map((node) => migrate(node)));
        assert.deepEqual(applied.flat().sort(), [1, 2], `round ${round}: ${JSON.stringify(applied)}`);
      } finally {
        await Promise.all(nodes.map((node) => node.close()));
      }
    }
  });
});

// A DBA migrates the database and the app runs as a role that may only read and write: PostgreSQL checks
// CREATE on the schema even for CREATE TABLE IF NOT EXISTS of a table that is there, so that role could
// not open a database with nothing left to migrate ("permission denied for schema public").
describe('a migrated PostgreSQL database opened by a role without CREATE', () => {
  it('opens, migrating nothing', async () => {
    const database = await freshPostgresDatabase();
    await (await openRecordStore(database, { warmUp: false })).close();
    const role = `dml_${process.pid}`;
    const name = new URL(database).pathname.slice(1);
    const owner = connectRecordDatabase(database);
    try {
      await owner.exec(`CREATE ROLE ${role} LOGIN PASSWORD 'pw'; GRANT CONNECT ON DATABASE ${name} TO ${role}; GRANT USAGE ON SCHEMA public TO ${role}; GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO ${role}`);
      const asRole = Object.assign(new URL(database), { username: role, password: 'pw' }).href;
      const driver = await openRecordStore(asRole, { warmUp: false });
      await driver.close();
    } finally {
      await owner.exec(`DROP OWNED BY ${role}; DROP ROLE ${role}`);
      await owner.close();
    }
  });
});
