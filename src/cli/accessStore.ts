// What the commands managing accounts, clients and organisations share: the store with the access tables,
// and writing each change they make to the audit trail as the command line's, before the command exits
// (there is no server here whose trail would write it later).
import { userInfo } from 'node:os';
import { auditAdministrationNow, auditDeadLettersViewedNow, migrateAccess, type AdministrativeChange, type DeadLetterView, type SystemActor } from '../access/index.ts';
import type { SqlDriver } from '../record/index.ts';
import { databaseFrom, databaseSetting, openStore, withStore } from './store.ts';

/** The store named by --db (or CAREBRIDGE_DB), with the access tables, for `work`; closed after. */
export const withAccessStore = <T>(db: string | undefined, work: (driver: SqlDriver) => Promise<T>) => withStore(db, (d) => migrateAccess(d), work);

/** Who ran the command, as far as the operating system says; the account may have no name (a container's uid). */
function osUser(): string {
  try {
    return userInfo().username;
  } catch {
    return process.env.USER ?? process.env.USERNAME ?? 'unknown';
  }
}

/**
 * The audit agent for a change made at the command line: not a person CareBridge knows, so a system agent
 * (altId `carebridge-cli`, searchable like any client) naming the command and the OS user who ran it.
 */
export function commandLineActor(command: string): SystemActor {
  return { kind: 'system', clientId: 'carebridge-cli', name: `carebridge ${command} (OS user ${osUser()})`, purpose: 'HSYSADMIN', scope: 'command line' };
}

/**
 * Makes one administrative change and writes it to the audit trail, committed before this resolves. A
 * refused change (it throws) changed nothing and is not audited here, unlike the portal's: whoever runs the
 * command line already holds the database file itself. `describe` runs after the change, with the store
 * still open.
 */
export async function administer<T>(db: string | undefined, command: string, change: (driver: SqlDriver) => Promise<T>, describe: (result: T, driver: SqlDriver) => Promise<AdministrativeChange> | AdministrativeChange): Promise<T> {
  return withAuditedStore(db, async (driver, journal) => {
    const result = await change(driver);
    const made = await describe(result, driver);
    try {
      await auditAdministrationNow(driver, journal, commandLineActor(command), made);
    } catch (err) {
      throw new Error(`the change was made (${made.action} ${made.target}) but could not be written to the audit trail: ${(err as Error).message}`);
    }
    return result;
  });
}

/**
 * Reads the MESH dead-letter queue for a command to show, and writes the view (`describe`: which dead letters
 * it shows, and the text it prints of them, in which the people whose NHS numbers it shows are found) to the
 * audit trail as the command line's, committed before this resolves: a reason can name a person, and the
 * API's and the portal's views are audited the same way. Nothing is shown when the view could not be
 * audited (this throws).
 */
export async function viewDeadLetters<T>(db: string | undefined, command: string, read: (driver: SqlDriver) => Promise<T>, describe: (result: T) => { view: DeadLetterView; shownText: string[] }): Promise<T> {
  return withAuditedStore(db, async (driver, journal) => {
    const result = await read(driver);
    try {
      const { view, shownText } = describe(result);
      await auditDeadLettersViewedNow(driver, journal, commandLineActor(command), view, shownText);
    } catch (err) {
      throw new Error(`the dead letters were not shown: their view could not be written to the audit trail: ${(err as Error).message}`);
    }
    return result;
  });
}

/** Opens the store with the access tables (and the audit journal, `journal`: what migrateAccess returned) ready, for `work`. */
async function withAuditedStore<T>(db: string | undefined, work: (driver: SqlDriver, journal: string | undefined) => Promise<T>): Promise<T> {
  const database = databaseFrom(db);
  const driver = await openStore(database, databaseSetting(db));
  try {
    return await work(driver, await migrateAccess(driver, database));
  } finally {
    await driver.close();
  }
}
