// A connection that may write the audit journal's tables, for tests that tamper with them: on SQLite the
// journal is in a file of its own, only read through the record's driver (src/access/audit/ownDatabase.ts).
import { connectRecordDatabase, type SqlDriver } from '../../src/record/index.ts';
import { JOURNAL_TABLES } from '../../src/access/audit/ownDatabase.ts';

export async function journalConnection(driver: SqlDriver): Promise<{ db: SqlDriver; close(): Promise<void> }> {
  const location = await driver.attachCompanion?.('audit', JOURNAL_TABLES);
  if (!location) return { db: driver, close: async () => undefined };
  const db = connectRecordDatabase(location);
  return { db, close: () => db.close() };
}
