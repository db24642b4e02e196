// On SQLite the audit journal lives in a database file of its own beside the record's (`x.db` →
// `x-audit.db`; see attachCompanion in the record's storage driver). Why: the writer thread appends
// thousands of rows a second; in the record's file its commits held the one write lock that the record's
// own writes wait for (a busy discharge intake queued behind them) and grew the WAL every record read
// consults. Searches and `audit verify` read the journal through the record's reading connection, where the
// file is attached. PostgreSQL has no such lock and keeps the journal in the record's database.
import { connectRecordDatabase, migrate, type SqlDriver } from '../../record/index.ts';
import { entryDigestMigration } from './batchJournal.ts';

/** The companion's name: the journal's file is the record's with `-audit` before `.db`. */
export const AUDIT_COMPANION = 'audit';

/** The journal's tables. */
export const JOURNAL_TABLES = ['audit_journal', 'audit_part', 'audit_patient', 'audit_entity', 'audit_batch', 'audit_batch_key'] as const;

/**
 * The audit migrations that change the journal's tables once they exist (from version 3), applied where
 * the tables are and recorded there: on SQLite in the journal's own file, which the record's writing
 * connection does not attach (an ALTER TABLE through it would find no such table); elsewhere in the one database, after
 * versions 1 and 2 (auditMigrations), which create the tables in the record's file before they move.
 */
const JOURNAL_MIGRATIONS = [entryDigestMigration()];

/**
 * Moves the journal into its own file when the record's still holds it (every database from before the
 * move, and each new one: migration 'audit' v1 creates the tables in the record's file) and attaches it for
 * reading. Resolves to where the journal is written: its own file on SQLite, `database` on PostgreSQL, and
 * undefined for an in-memory database, which keeps it in the record's (written in process). Then applies
 * JOURNAL_MIGRATIONS where the journal is.
 */
export async function useOwnAuditDatabase(driver: SqlDriver, database?: string): Promise<string | undefined> {
  if (!driver.attachCompanion) {
    await migrate(driver, 'audit', JOURNAL_MIGRATIONS);
    return driver.dialect === 'postgres' ? database : undefined;
  }
  const location = await driver.attachCompanion(AUDIT_COMPANION, JOURNAL_TABLES);
  const own = connectRecordDatabase(location);
  try {
    await migrate(own, 'audit', JOURNAL_MIGRATIONS);
  } finally {
    await own.close();
  }
  return location;
}

