// Versioned schema migrations, applied in order at start-up. The storage layout is documented table by
// table in docs/architecture.md; keep the two in step.
import type { SqlDriver } from './driver.ts';

export interface Migration {
  version: number;
  name: string;
  sql: string;
  /** Said on stderr before it is applied to a database that already holds data: for one that takes a while there. */
  announce?: string;
}

/** SQL written once for both engines; the few type names that differ are filled in per dialect. */
const RECORD_MIGRATIONS: Migration[] = [
  {
    version: 1,
    name: 'resources, history, search indexes, compartments, outbox',
    sql: `
CREATE TABLE resources (
  rid {{identity}},
  type TEXT NOT NULL,
  id TEXT NOT NULL,
  version_id INTEGER NOT NULL,
  last_updated_ms BIGINT NOT NULL,
  deleted SMALLINT NOT NULL DEFAULT 0,
  patient_id TEXT,
  content TEXT,
  UNIQUE (type, id)
);
CREATE INDEX resources_type_updated ON resources (type, last_updated_ms);
CREATE INDEX resources_patient ON resources (patient_id, type);

CREATE TABLE resource_history (
  rid BIGINT NOT NULL,
  type TEXT NOT NULL,
  id TEXT NOT NULL,
  version_id INTEGER NOT NULL,
  last_updated_ms BIGINT NOT NULL,
  method TEXT NOT NULL,
  content TEXT,
  PRIMARY KEY (type, id, version_id)
);
CREATE INDEX history_updated ON resource_history (last_updated_ms);
CREATE INDEX history_type_updated ON resource_history (type, last_updated_ms);

CREATE TABLE search_token (rid BIGINT NOT NULL, type TEXT NOT NULL, param TEXT NOT NULL, system TEXT, code TEXT, text TEXT {{bytes}});
CREATE INDEX search_token_code ON search_token (type, param, code);
CREATE INDEX search_token_rid ON search_token (rid);

CREATE TABLE search_string (rid BIGINT NOT NULL, type TEXT NOT NULL, param TEXT NOT NULL, value TEXT {{bytes}} NOT NULL, raw TEXT NOT NULL);
CREATE INDEX search_string_value ON search_string (type, param, value);
CREATE INDEX search_string_rid ON search_string (rid);

CREATE TABLE search_date (rid BIGINT NOT NULL, type TEXT NOT NULL, param TEXT NOT NULL, lo BIGINT NOT NULL, hi BIGINT NOT NULL);
CREATE INDEX search_date_lo ON search_date (type, param, lo);
CREATE INDEX search_date_hi ON search_date (type, param, hi);
CREATE INDEX search_date_rid ON search_date (rid);

CREATE TABLE search_reference (rid BIGINT NOT NULL, type TEXT NOT NULL, param TEXT NOT NULL, target_type TEXT, target_id TEXT, url TEXT);
CREATE INDEX search_reference_target ON search_reference (target_id, param, type);
CREATE INDEX search_reference_rid ON search_reference (rid);

CREATE TABLE search_number (rid BIGINT NOT NULL, type TEXT NOT NULL, param TEXT NOT NULL, value {{double}} NOT NULL);
CREATE INDEX search_number_value ON search_number (type, param, value);
CREATE INDEX search_number_rid ON search_number (rid);

CREATE TABLE search_quantity (rid BIGINT NOT NULL, type TEXT NOT NULL, param TEXT NOT NULL, value {{double}} NOT NULL, system TEXT, code TEXT, unit TEXT);
CREATE INDEX search_quantity_value ON search_quantity (type, param, value);
CREATE INDEX search_quantity_rid ON search_quantity (rid);

CREATE TABLE search_uri (rid BIGINT NOT NULL, type TEXT NOT NULL, param TEXT NOT NULL, value TEXT {{bytes}} NOT NULL);
CREATE INDEX search_uri_value ON search_uri (type, param, value);
CREATE INDEX search_uri_rid ON search_uri (rid);

CREATE TABLE compartment (rid BIGINT NOT NULL, patient_id TEXT NOT NULL, type TEXT NOT NULL);
CREATE INDEX compartment_patient ON compartment (patient_id, type, rid);
CREATE INDEX compartment_rid ON compartment (rid);

CREATE TABLE outbox (
  seq {{identity}},
  type TEXT NOT NULL,
  id TEXT NOT NULL,
  version_id INTEGER NOT NULL,
  action TEXT NOT NULL,
  patient_id TEXT,
  at_ms BIGINT NOT NULL
);
`,
  },
  {
    version: 2,
    name: 'rid indexes lead with what a probe by rid tests: (rid, param), and (rid, patient_id) for compartments',
    announce: 'rebuilding eight search indexes once (record migration 2); on a large database this takes a while.',
    // A search checks each row its most selective filter found by probing the other filters' tables by
    // rid (search/compile.ts), and a restricted caller's rows by probing their compartment rows
    // (search/visibility.ts). With (rid) alone a probe read every index row of the resource, ten or more,
    // each from the table, to find the one parameter it tests; the compartment check read its row from the
    // table too. Now a probe reads its own parameter's rows, and the compartment check the index alone.
    sql: [
      ...['token', 'string', 'date', 'reference', 'number', 'quantity', 'uri']
        .map((t) => `DROP INDEX search_${t}_rid; CREATE INDEX search_${t}_rid ON search_${t} (rid, param);`),
      'DROP INDEX compartment_rid; CREATE INDEX compartment_rid ON compartment (rid, patient_id);',
    ].join('\n'),
  },
];

const DIALECT = {
  sqlite: { identity: 'INTEGER PRIMARY KEY', double: 'REAL', bytes: '' },
  // COLLATE "C" makes prefix ranges (value >= 'ab' AND value < 'ab' || U+10FFFF) use the index and compare by code point.
  postgres: { identity: 'BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY', double: 'DOUBLE PRECISION', bytes: 'COLLATE "C"' },
} as const;

/**
 * Applies a component's migrations in order, once each. Other capabilities (access, messaging…) keep
 * their tables in the same database and migrate them through here under their own component name.
 */
export async function migrate(db: SqlDriver, component = 'record', migrations: Migration[] = RECORD_MIGRATIONS): Promise<number[]> {
  const words = DIALECT[db.dialect];
  return db.transaction(async (tx) => {
    // Two app nodes starting together on one PostgreSQL must not both apply a migration, nor both create
    // the table that lists them: concurrent CREATE TABLE IF NOT EXISTS of one name can fail on PostgreSQL's
    // own catalogue ("duplicate key value violates unique constraint pg_type_typname_nsp_index").
    if (db.dialect === 'postgres') await tx.run('SELECT pg_advisory_xact_lock(727274)');
    // PostgreSQL checks CREATE on the schema even for a table that exists: a role allowed only to read and
    // write (its DBA migrated the database) must find it without asking.
    const listed = db.dialect === 'postgres' && (await tx.get<{ present: boolean }>("SELECT to_regclass('schema_migrations') IS NOT NULL AS present"))?.present;
    if (!listed) await tx.run('CREATE TABLE IF NOT EXISTS schema_migrations (component TEXT NOT NULL, version INTEGER NOT NULL, name TEXT NOT NULL, applied_ms BIGINT NOT NULL, PRIMARY KEY (component, version))');
    const rows = await tx.all<{ version: number }>('SELECT version FROM schema_migrations WHERE component = ?', [component]);
    const done = new Set(rows.map((r) => Number(r.version)));
    const applied: number[] = [];
    for (const m of migrations) {
      if (done.has(m.version)) continue;
      // An upgrade, not a new database: an operator watching a long start-up should know why.
      if (m.announce && done.size) process.stderr.write(`carebridge: ${m.announce}\n`);
      const sql = m.sql.replace(/\{\{(\w+)\}\}/g, (_, word: keyof typeof words) => words[word]);
      for (const statement of sql.split(';').map((s) => s.trim()).filter(Boolean)) await tx.run(statement);
      await tx.run('INSERT INTO schema_migrations (component, version, name, applied_ms) VALUES (?, ?, ?, ?)', [component, m.version, m.name, Date.now()]);
      applied.push(m.version);
    }
    return applied;
  });
}
