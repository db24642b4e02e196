// carebridge backup DIR: an online copy of a SQLite deployment (the record's file, then its audit journal's)
// that `--db` can point at as it stands. PostgreSQL is backed up with its own tools.
import type { Command } from 'commander';
import { AUDIT_COMPANION, auditReach } from '../access/index.ts';
import { backupSqliteFiles, connectRecordDatabase, type CopiedFile } from '../record/index.ts';
import { DB_OPTION_HELP, databaseFrom, describeDatabase, plainErrors } from './store.ts';

export function backupCommand(program: Command): void {
  plainErrors(
    program
      .command('backup')
      .description('Copy a SQLite database and its audit journal into DIRECTORY, safely while the server runs. (PostgreSQL: use pg_dump.)')
      .argument('<directory>', 'where to write the copies (made if missing; must not already hold this database)')
      .option('--db <database>', DB_OPTION_HELP)
      .action(async (directory: string, flags: { db?: string }) => {
        const database = databaseFrom(flags.db);
        if (!database.startsWith('sqlite:')) {
          throw new Error(`backup copies SQLite files; ${describeDatabase(database)} is PostgreSQL: back it up with pg_dump (the database server's own tool).`);
        }
        const copied = await backupSqliteFiles(database.slice('sqlite:'.length), directory, [AUDIT_COMPANION]);
        console.log(`Backed up ${database} into ${directory}:`);
        for (const file of copied) console.log(`  ${file.copy}  ${file.bytes.toLocaleString('en-GB')} bytes`);
        console.log(await describeAuditCopy(copied));
      }),
  );
}

/**
 * The audit journal's reach in the copies: its head, at least where the record's copy anchored it. The copies
 * are read as they are, never migrated: a backup taken with a newer CLI before an upgrade must still open
 * with the version it was taken from.
 */
async function describeAuditCopy(copied: CopiedFile[]): Promise<string> {
  if (copied.length < 2) return 'No audit journal file was beside the database; the record alone was copied.';
  const [record, journal] = copied.map((file) => connectRecordDatabase(`sqlite:${file.copy}`));
  try {
    const reach = await auditReach(journal, record);
    const anchored = reach.anchored === undefined ? 'no anchor yet' : `the record's copy anchors entry ${reach.anchored}`;
    return `Audit head: entry ${reach.journal} (${anchored}).`;
  } catch (err) {
    return `The copies were written; their audit head could not be read (${(err as Error).message}).`;
  } finally {
    await Promise.all([record.close(), journal.close()]);
  }
}
