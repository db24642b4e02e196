// What the commands that work on the database directly (import, demo) share: the --db option, opening
// the store with errors a person can act on, and a context for handleFhirRequest.
import type { Command } from 'commander';
import { resolveDatabase } from '../config.ts';
import { DatabaseUnavailable, openRecordStore, UNRESTRICTED, type handleFhirRequest, type SqlDriver } from '../record/index.ts';

export type StoreContext = Parameters<typeof handleFhirRequest>[0];

export const DB_OPTION_HELP = 'sqlite:PATH or postgres://… (env CAREBRIDGE_DB; default sqlite:./data/carebridge.db)';

/** Base URL the record uses for Location headers in answers; nothing stored depends on it. */
const LOCAL_BASE = 'http://localhost/fhir';

/** The database named by --db, else CAREBRIDGE_DB, else the default; throws a one-line message when malformed. */
export function databaseFrom(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  return resolveDatabase(flag ?? env.CAREBRIDGE_DB, flag !== undefined);
}

/** The setting that named the database (as databaseFrom chose it), for messages; undefined for the default. */
export function databaseSetting(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (flag !== undefined) return '--db';
  return env.CAREBRIDGE_DB !== undefined ? 'CAREBRIDGE_DB' : undefined;
}

/** The database name with any password hidden, for messages. */
export function describeDatabase(database: string): string {
  return database.startsWith('sqlite:') ? database : database.replace(/\/\/([^:@/]*):[^@/]*@/, '//$1:***@');
}

/** The store at `database`, migrated; `setting` (databaseSetting's) is named when it cannot be opened or reached. */
export async function openStore(database: string, setting?: string): Promise<SqlDriver> {
  try {
    return await openRecordStore(database, { warmUp: false });
  } catch (err) {
    throw new Error(err instanceof DatabaseUnavailable ? err.givenBy(setting) : `cannot open the database ${describeDatabase(database)}: ${errorMessage(err)}`);
  }
}

/** The store named by --db (or CAREBRIDGE_DB), with a capability's tables migrated, for `work`; closed after. */
export async function withStore<T>(db: string | undefined, migrate: (driver: SqlDriver) => Promise<unknown>, work: (driver: SqlDriver) => Promise<T>): Promise<T> {
  const driver = await openStore(databaseFrom(db), databaseSetting(db));
  try {
    await migrate(driver);
    return await work(driver);
  } finally {
    await driver.close();
  }
}

export function storeContext(driver: SqlDriver): StoreContext {
  // The operator running import or demo on the database directly is not subject to API access rules
  // (import still writes what it did to the audit trail: see auditImport in import.ts).
  return { base: process.env.CAREBRIDGE_BASE_URL ?? LOCAL_BASE, driver, access: UNRESTRICTED };
}

/** A one-line message for anything thrown (AggregateError from a refused connection has an empty message). */
export function errorMessage(err: unknown): string {
  if (err instanceof AggregateError && !err.message && err.errors.length) return errorMessage(err.errors[0]);
  if (err instanceof Error) return oneLine(err.message || (err as NodeJS.ErrnoException).code || err.name);
  return oneLine(String(err));
}

export function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ').trim();
}

/**
 * Makes commander's own usage errors ("unknown option", "missing required argument") follow the
 * command's rule: one plain line, `carebridge: <message>`.
 */
export function plainErrors(command: Command): Command {
  return command.configureOutput({
    outputError: (str, write) => write(`carebridge: ${oneLine(str.replace(/^error:\s*/, ''))}\n`),
  });
}
