// How the discharge workflow reads and writes the record: through the record's own FHIR interactions
// (handleFhirRequest) with an AccessControl, so every change is checked, versioned, in the record's history
// and in the audit trail, exactly as if it came over the API. A workflow step runs in one database
// transaction together with the workflow's own rows (timers, ADW messages): all of it happens, or none.
import type { DeadlineRule } from './calendar.ts';
import { FhirError, handleFhirRequest, lockCriteria, newResourceId, type AccessControl, type AccessEvent, type FhirResponse, type SqlDriver, type SqlExecutor } from '../record/index.ts';

export interface FhirResource {
  resourceType: string;
  id: string;
  meta?: { versionId?: string; lastUpdated?: string; tag?: { system?: string; code?: string; display?: string }[] };
  [element: string]: any;
}

/** Where the workflow runs: the database, the FHIR base for links, and who is acting. */
export interface DischargeContext {
  driver: SqlDriver;
  base: string;
  access: AccessControl;
  /** The clock, so tests can move time; Date.now by default. */
  now?: () => number;
  /** Deadline rules for councils without their own (CAREBRIDGE_DISCHARGE_*_DEADLINE). */
  deadlines?: { assessment: DeadlineRule; discharge: DeadlineRule };
  /** Told after a step that queued an outbound ADW message commits: the delivery worker sends it at once. */
  committed?: () => void;
}

/** A discharge referral: its ServiceRequest and the council's triage Task. */
export interface Referral { referral: FhirResource; task: FhirResource }

export interface RecordSession {
  /** The workflow's own tables, in the same transaction. */
  tx: SqlExecutor;
  read(type: string, id: string): Promise<FhirResource | undefined>;
  /** One version of a resource, as it was then; undefined when there is no such version. */
  readVersion(type: string, id: string, versionId: string): Promise<FhirResource | undefined>;
  search(type: string, params: [string, string][]): Promise<FhirResource[]>;
  /**
   * For a find-or-create: what `search` finds; when it finds nothing, the criteria are then held until the
   * transaction ends and searched again, so no other transaction (another inbox worker or app node on
   * PostgreSQL, a conditional create over the API) can create a match before this one commits its own.
   */
  searchBeforeCreate(type: string, params: [string, string][]): Promise<FhirResource[]>;
  /** Creates or updates; with `ifMatch` (a version id) a change made meanwhile by someone else is a 412. */
  put(resource: FhirResource, ifMatch?: string): Promise<FhirResource>;
  /** A fresh id for a resource about to be created. */
  newId(): string;
  /** Says this step queued an outbound message, so the delivery worker is woken once the step commits. */
  queuedOutbound(): void;
}

function body(response: FhirResponse): any {
  return typeof response.body === 'string' ? JSON.parse(response.body) : response.body;
}

export function clock(ctx: DischargeContext): number {
  return (ctx.now ?? Date.now)();
}

/** The record's FHIR interactions on `tx`, each reported to `events` (for the audit once `tx` commits). */
function sessionOn(ctx: DischargeContext, tx: SqlExecutor, events: AccessEvent[], queued: { outbound: boolean }): RecordSession {
  const rest = { base: ctx.base, driver: ctx.driver, access: ctx.access, tx, onAccess: (e: AccessEvent) => events.push(e) };
  const call = (method: string, path: string, query: [string, string][] = [], payload?: unknown, ifMatch?: string) =>
    handleFhirRequest(rest, { method, path, query, body: payload, ifMatch, contentType: payload === undefined ? undefined : 'application/fhir+json' });
  const search = async (type: string, params: [string, string][]): Promise<FhirResource[]> => {
    const bundle = body(await call('GET', type, params));
    return (bundle.entry ?? []).filter((e: any) => e.search?.mode !== 'include').map((e: any) => e.resource);
  };
  return {
    tx,
    async read(type, id) {
      try {
        return body(await call('GET', `${type}/${encodeURIComponent(id)}`));
      } catch (err) {
        if (err instanceof FhirError && (err.status === 404 || err.status === 410)) return undefined;
        throw err;
      }
    },
    async readVersion(type, id, versionId) {
      try {
        return body(await call('GET', `${type}/${encodeURIComponent(id)}/_history/${encodeURIComponent(versionId)}`));
      } catch (err) {
        if (err instanceof FhirError && (err.status === 404 || err.status === 410)) return undefined;
        throw err;
      }
    },
    search,
    async searchBeforeCreate(type, params) {
      const found = await search(type, params);
      // SQLite's one writer already runs transactions one at a time.
      if (found.length || ctx.driver.dialect !== 'postgres') return found;
      await lockCriteria(tx, type, params);
      return search(type, params);
    },
    async put(resource, ifMatch) {
      const { meta, ...rest } = resource;
      const kept = meta?.tag?.length ? { ...rest, meta: { tag: meta.tag } } : rest;
      return body(await call('PUT', `${resource.resourceType}/${encodeURIComponent(resource.id)}`, [], kept, ifMatch === undefined ? undefined : `W/"${ifMatch}"`));
    },
    newId: newResourceId,
    queuedOutbound: () => void (queued.outbound = true),
  };
}

function outcomeOf(label: string) {
  return { status: 200, method: 'POST', path: `$discharge-${label}`, query: '' };
}

/**
 * Runs `step` in one database transaction and reports what it touched to the access control's audit once
 * it has committed (a step that fails is reported with its status and nothing touched).
 */
export async function inRecordTransaction<T>(ctx: DischargeContext, label: string, step: (session: RecordSession) => Promise<T>): Promise<T> {
  const events: AccessEvent[] = [];
  const outcome = outcomeOf(label);
  const queued = { outbound: false };
  try {
    const result = await ctx.driver.transaction((tx) => step(sessionOn(ctx, tx, events, queued)));
    if (queued.outbound) ctx.committed?.();
    return result;
  } catch (err) {
    outcome.status = err instanceof FhirError ? err.status : 500;
    events.length = 0;
    throw err;
  } finally {
    ctx.access.accessed?.(events, outcome);
  }
}

/** A transaction someone else owns and commits (messaging's, for a batch of inbound messages). */
export interface SharedTransaction {
  tx: SqlExecutor;
  afterCommit(fn: () => void): void;
}

/**
 * Runs `step` in a transaction owned by the caller (its writes commit, or roll back, with everything else
 * in it): audited as inRecordTransaction, once that transaction has committed; a step that fails is
 * reported at once with its status and nothing touched (the owner undoes its writes).
 */
export async function inSharedTransaction<T>(ctx: DischargeContext, label: string, shared: SharedTransaction, step: (session: RecordSession) => Promise<T>): Promise<T> {
  const events: AccessEvent[] = [];
  const outcome = outcomeOf(label);
  const queued = { outbound: false };
  let result: T;
  try {
    result = await step(sessionOn(ctx, shared.tx, events, queued));
  } catch (err) {
    ctx.access.accessed?.([], { ...outcome, status: err instanceof FhirError ? err.status : 500 });
    throw err;
  }
  shared.afterCommit(() => {
    if (queued.outbound) ctx.committed?.();
    ctx.access.accessed?.(events, outcome);
  });
  return result;
}
