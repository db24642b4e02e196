// The shared care record: FHIR R4 storage, search, validation and the change feed.
// Other capabilities use the record only through what this file exports.
import { openSqlite } from './storage/sqliteDriver.ts';
import { migrationRefused, openPostgres, postgresUnavailable } from './storage/postgresDriver.ts';
import { migrate } from './storage/schema.ts';
import type { SqlDriver } from './storage/driver.ts';
import { definitions } from './definitions.ts';
import { validateResource } from './validation.ts';

export type { SqlDriver, SqlExecutor, Param } from './storage/driver.ts';
export { DatabaseUnavailable } from './storage/driver.ts';
export { migrate, type Migration } from './storage/schema.ts';
export { backupSqliteFiles, type CopiedFile } from './storage/sqliteBackup.ts';
export { fhirApi } from './http.ts';
export { handleFhirRequest, type FhirRequest, type FhirResponse } from './rest.ts';
export { FhirError, badRequest, notFound, isTemporaryOutage, toFhirError, OUTAGE_RETRY_AFTER_SECONDS } from './outcome.ts';
export type { ResourceTypeService, ResourceTypeServices, ServedSearch, ServedRead, ServedAnswer } from './typeService.ts';
// For services of other types: the record's search syntax, date precision and searchset Bundles.
export { escapeSearchValue, parseSearchRequest, type SearchRequest, type Filter, type QueryParams } from './search/request.ts';
export { dateCondition, dateMatcher } from './search/compile.ts';
export { searchsetBundle } from './bundle.ts';
export type { FoundResource, SearchResult } from './search/execute.ts';
/** Stores new resources (ids just assigned by the caller) in the caller's transaction, in one batch; not validated. */
export { createResources } from './storage/writePath.ts';
export { newId as newResourceId, lockCriteria } from './interactions.ts';
export { readChanges, latestChangeSeq, type RecordChange } from './changeFeed.ts';
export { UNRESTRICTED, forbidden, failedAccessEvents, type AccessControl, type AccessEvent, type RecordInteraction, type PatientScope, type RelationshipSearch, type RecordCaller } from './accessControl.ts';
export { DECISION_MS } from './scopeDecisions.ts';
export type { FhirOperation, FhirOperations, OperationCall } from './operations.ts';
export { isValidNhsNumber, generateSyntheticNhsNumber, NHS_NUMBER_SYSTEM, SYNTHETIC_TAG } from './nhsNumber.ts';
export { NHS_NUMBER_VERIFICATION_EXTENSION, NHS_NUMBER_VERIFICATION_SYSTEM, NHS_NUMBER_VERIFICATION_STATUSES } from './validation/ukCore.ts';

/**
 * Another connection to a database that openRecordStore has already migrated, without loading the R4
 * definitions (for worker threads that write their own tables).
 */
export function connectRecordDatabase(database: string): SqlDriver {
  return database.startsWith('sqlite:') ? openSqlite(database.slice('sqlite:'.length)) : openPostgres(database);
}

/**
 * Opens (and migrates) the database named by `sqlite:PATH` or a `postgres://` URL. A server warms up: the R4
 * definitions are loaded and compiled before its first request, not during it (about a second). A command
 * that may never touch a FHIR resource (`carebridge users list`) passes `warmUp: false`; they then load
 * on first use.
 */
export async function openRecordStore(database: string, options: { warmUp?: boolean } = {}): Promise<SqlDriver> {
  if (options.warmUp !== false) {
    definitions();
    validateResource({ resourceType: 'Patient' });
  }
  const driver = connectRecordDatabase(database);
  try {
    await migrate(driver);
  } catch (err) {
    // PostgreSQL connects at the first statement: a server that is not there, or that refuses the
    // connection or the migration, is found here.
    const unavailable = driver.dialect === 'postgres' &&
      // Asked first: a role refused CONNECT fails with the same code as one refused CREATE, and the
      // question migrationRefused asks the server tells them apart.
      (await migrationRefused(err, driver, database) ?? postgresUnavailable(err, database));
    await driver.close().catch(() => undefined);
    throw unavailable || err;
  }
  return driver;
}
