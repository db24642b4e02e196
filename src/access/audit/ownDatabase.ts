// On SQLite the audit journal lives in a database file of its own beside the record's (`x.db` →
// `x-audit.db`; see attachCompanion in the record's storage driver). Why: the writer thread appends
// thousands of rows a second; in the record's file its commits held the one write lock that the record's
// own writes wait for (a busy discharge intake queued behind them) and grew the WAL every record read
// consults. Searches and `audit verify` read the journal through the record's reading connection, where the
// file is attached. PostgreSQL has no such lock and keeps the journal in the record's database.
import type { SqlDriver } from '../../record/index.ts';

/** The journal's tables. */
export const JOURNAL_TABLES = ['audit_journal', 'audit_part', 'audit_patient', 'audit_entity', 'audit_batch', 'audit_batch_key'] as const;

/**
 * Moves the journal into its own file when the record's still holds it (every database from before the
 * move, and each new one: migration 'audit' v1 creates the tables in the record's file) and attaches it for
 * reading. Resolves to where the journal is written: its own file on SQLite, `database` on PostgreSQL, and
 * undefined for an in-memory database, which keeps it in the record's (written in process).
 */
export async function useOwnAuditDatabase(driver: SqlDriver, database?: string): Promise<string | undefined> {
  if (driver.attachCompanion) return driver.attachCompanion('audit', JOURNAL_TABLES);
  return driver.dialect === 'postgres' ? database : undefined;
}
