// A write = resource row + history row + index rows + compartment rows + outbox row, in the caller's
// database transaction, so a crash can never leave one without the others.
import type { Param, SqlExecutor, TableRows } from './driver.ts';
import { extractIndex, type IndexRows } from '../indexing.ts';
import { conflict, gone, notFound, preconditionFailed } from '../outcome.ts';

export interface CurrentRow {
  rid: number;
  version_id: number;
  deleted: number;
  last_updated_ms: number;
}

export interface WrittenResource {
  type: string;
  id: string;
  versionId: number;
  lastUpdated: string;
  content: string;
  created: boolean;
  /** The patient whose record this is (resources.patient_id), for the audit trail. */
  patientId: string | null;
}

export async function currentRow(tx: SqlExecutor, type: string, id: string, lock: boolean): Promise<CurrentRow | undefined> {
  return tx.get<CurrentRow>(
    `SELECT rid, version_id, deleted, last_updated_ms FROM resources WHERE type = ? AND id = ?${lock ? ' FOR UPDATE' : ''}`,
    [type, id],
  );
}

export interface WriteOptions {
  /** Expected current version (If-Match); a mismatch is a 412. */
  ifMatch?: number;
  /** If-None-Match: *: write only if there is no current version (absent, or deleted); otherwise a 412. */
  createOnly?: boolean;
  /** Lock the row while we decide (PostgreSQL); SQLite's writer is already exclusive. */
  lock: boolean;
  /** Decides on the new content's people before anything of it is stored (see Admit). */
  admit?: Admit;
}

/**
 * Told, before anything is stored, each resource about to be written with the patients whose records its
 * new content is in (its compartment, as indexing finds it); throws to refuse the write. Called before the
 * rows change, so what is being written is not yet in the record the decision reads.
 */
export type Admit = (resources: { type: string; id: string; patients: string[] }[]) => Promise<void>;

const INDEX_TABLES = ['search_token', 'search_string', 'search_date', 'search_reference', 'search_number', 'search_quantity', 'search_uri', 'compartment'];
const HISTORY_COLUMNS = ['rid', 'type', 'id', 'version_id', 'last_updated_ms', 'method', 'content'];
const OUTBOX_COLUMNS = ['type', 'id', 'version_id', 'action', 'patient_id', 'at_ms'];

export async function putResource(tx: SqlExecutor, resource: Record<string, any>, options: WriteOptions): Promise<WrittenResource> {
  const type: string = resource.resourceType;
  const id: string = resource.id;
  const current = await currentRow(tx, type, id, options.lock);
  if (options.ifMatch !== undefined && (current?.version_id ?? 0) !== options.ifMatch) {
    throw preconditionFailed(
      current
        ? `${type}/${id} is at version ${current.version_id}, not ${options.ifMatch}: someone else changed it. Read it again and reapply your change.`
        : `${type}/${id} does not exist, so it cannot be at version ${options.ifMatch}.`,
    );
  }
  if (options.createOnly && current && !current.deleted) {
    throw preconditionFailed(`${type}/${id} exists already (version ${current.version_id}), and If-None-Match: * asked to create it only if it did not. Read it, then update it with If-Match.`);
  }
  const versionId = (current?.version_id ?? 0) + 1;
  const now = nextTimestamp(current?.last_updated_ms);
  const lastUpdated = new Date(now).toISOString();
  resource.meta = { ...(resource.meta ?? {}), versionId: String(versionId), lastUpdated };
  const content = JSON.stringify(resource);
  const index = extractIndex(resource);
  if (options.admit) await options.admit([{ type, id, patients: index.compartments }]);
  const patientId = index.compartments[0] ?? null;

  let rid: number;
  if (current) {
    rid = current.rid;
    await tx.run('UPDATE resources SET version_id = ?, last_updated_ms = ?, deleted = 0, patient_id = ?, content = ? WHERE rid = ?', [versionId, now, patientId, content, rid]);
    for (const table of INDEX_TABLES) await tx.run(`DELETE FROM ${table} WHERE rid = ?`, [rid]);
  } else {
    try {
      const row = await tx.get<{ rid: number }>(
        'INSERT INTO resources (type, id, version_id, last_updated_ms, deleted, patient_id, content) VALUES (?, ?, ?, ?, 0, ?, ?) RETURNING rid',
        [type, id, versionId, now, patientId, content],
      );
      rid = Number(row!.rid);
    } catch (err) {
      if (isUniqueViolation(err)) throw conflict(`${type}/${id} was created by another request at the same moment; retry.`);
      throw err;
    }
  }
  const updated = Boolean(current && !current.deleted);
  // One round trip on PostgreSQL for the history, index and outbox rows.
  await tx.insertTables([
    { table: 'resource_history', columns: HISTORY_COLUMNS, rows: [[rid, type, id, versionId, now, updated ? 'PUT' : 'POST', content]] },
    ...indexRows([{ rid, type, index }]),
    { table: 'outbox', columns: OUTBOX_COLUMNS, rows: [[type, id, versionId, updated ? 'update' : 'create', patientId, now]] },
  ]);
  return { type, id, versionId, lastUpdated, content, created: !current || current.deleted === 1, patientId };
}

export async function deleteResource(tx: SqlExecutor, type: string, id: string, options: WriteOptions): Promise<{ versionId: number; patientId: string | null } | undefined> {
  const current = await currentRow(tx, type, id, options.lock);
  if (!current) throw notFound(`${type}/${id} does not exist.`);
  if (options.ifMatch !== undefined && current.version_id !== options.ifMatch) {
    throw preconditionFailed(`${type}/${id} is at version ${current.version_id}, not ${options.ifMatch}.`);
  }
  if (current.deleted) return undefined; // deleting twice changes nothing
  const versionId = current.version_id + 1;
  const now = nextTimestamp(current.last_updated_ms);
  await tx.run('UPDATE resources SET version_id = ?, last_updated_ms = ?, deleted = 1, content = NULL WHERE rid = ?', [versionId, now, current.rid]);
  for (const table of INDEX_TABLES) await tx.run(`DELETE FROM ${table} WHERE rid = ?`, [current.rid]);
  await tx.run('INSERT INTO resource_history (rid, type, id, version_id, last_updated_ms, method, content) VALUES (?, ?, ?, ?, ?, ?, NULL)', [
    current.rid, type, id, versionId, now, 'DELETE',
  ]);
  const patient = await tx.get<{ patient_id: string | null }>('SELECT patient_id FROM resources WHERE rid = ?', [current.rid]);
  await tx.run('INSERT INTO outbox (type, id, version_id, action, patient_id, at_ms) VALUES (?, ?, ?, ?, ?, ?)', [
    type, id, versionId, 'delete', patient?.patient_id ?? null, now,
  ]);
  return { versionId, patientId: patient?.patient_id ?? null };
}

export function assertNotDeleted(type: string, id: string, row: { deleted: number } | undefined): void {
  if (!row) throw notFound(`${type}/${id} is not known to this server.`);
  if (row.deleted) throw gone(`${type}/${id} has been deleted.`);
}

/** The index and compartment rows of written resources, table by table. */
function indexRows(written: { rid: number; type: string; index: IndexRows }[]): TableRows[] {
  const rows = <T>(pick: (i: IndexRows) => T[], f: (x: T) => Param[]) =>
    written.flatMap(({ rid, type, index }) => pick(index).map((x) => [rid, type, ...f(x)]));
  return [
    { table: 'search_token', columns: ['rid', 'type', 'param', 'system', 'code', 'text'], rows: rows((i) => i.token, (t) => [t.param, t.system, t.code, t.text]) },
    { table: 'search_string', columns: ['rid', 'type', 'param', 'value', 'raw'], rows: rows((i) => i.string, (s) => [s.param, s.value, s.raw]) },
    { table: 'search_date', columns: ['rid', 'type', 'param', 'lo', 'hi'], rows: rows((i) => i.date, (d) => [d.param, d.lo, d.hi]) },
    { table: 'search_reference', columns: ['rid', 'type', 'param', 'target_type', 'target_id', 'url'], rows: rows((i) => i.reference, (r) => [r.param, r.targetType, r.targetId, r.url]) },
    { table: 'search_number', columns: ['rid', 'type', 'param', 'value'], rows: rows((i) => i.number, (n) => [n.param, n.value]) },
    { table: 'search_quantity', columns: ['rid', 'type', 'param', 'value', 'system', 'code', 'unit'], rows: rows((i) => i.quantity, (q) => [q.param, q.value, q.system, q.code, q.unit]) },
    { table: 'search_uri', columns: ['rid', 'type', 'param', 'value'], rows: rows((i) => i.uri, (u) => [u.param, u.value]) },
    { table: 'compartment', columns: ['rid', 'patient_id', 'type'], rows: written.flatMap(({ rid, type, index }) => index.compartments.map((p) => [rid, p, type])) },
  ];
}

/**
 * Creates many resources whose ids the server has just assigned (so none can exist yet) with one
 * multi-row INSERT per table: a transaction Bundle of 500 new resources costs a handful of round trips
 * on PostgreSQL instead of thousands.
 */
export async function createResources(tx: SqlExecutor, resources: Record<string, any>[], admit?: Admit): Promise<WrittenResource[]> {
  if (!resources.length) return [];
  const now = Date.now();
  const lastUpdated = new Date(now).toISOString();
  const prepared = resources.map((resource) => {
    resource.meta = { ...(resource.meta ?? {}), versionId: '1', lastUpdated };
    const index = extractIndex(resource);
    return { type: resource.resourceType as string, id: resource.id as string, content: JSON.stringify(resource), index, patientId: index.compartments[0] ?? null };
  });
  if (admit) await admit(prepared.map((p) => ({ type: p.type, id: p.id, patients: p.index.compartments })));
  let inserted: { rid: number; type: string; id: string }[];
  try {
    inserted = await tx.insertManyReturning<{ rid: number; type: string; id: string }>(
      'resources', ['type', 'id', 'version_id', 'last_updated_ms', 'deleted', 'patient_id', 'content'],
      prepared.map((p) => [p.type, p.id, 1, now, 0, p.patientId, p.content]), 'rid, type, id',
    );
  } catch (err) {
    if (isUniqueViolation(err)) throw conflict('A resource with one of these ids was created by another request at the same moment; retry.');
    throw err;
  }
  const ridOf = new Map(inserted.map((r) => [`${r.type}/${r.id}`, Number(r.rid)]));
  const written = prepared.map((p) => ({ ...p, rid: ridOf.get(`${p.type}/${p.id}`)! }));
  await tx.insertTables([
    { table: 'resource_history', columns: HISTORY_COLUMNS, rows: written.map((w) => [w.rid, w.type, w.id, 1, now, 'POST', w.content]) },
    ...indexRows(written),
    { table: 'outbox', columns: OUTBOX_COLUMNS, rows: written.map((w) => [w.type, w.id, 1, 'create', w.patientId, now]) },
  ]);
  return written.map((w) => ({ type: w.type, id: w.id, versionId: 1, lastUpdated, content: w.content, created: true, patientId: w.patientId }));
}

/** Versions of one resource get strictly increasing timestamps even within one millisecond. */
function nextTimestamp(previous: number | undefined): number {
  const now = Date.now();
  return previous !== undefined && previous >= now ? previous + 1 : now;
}

function isUniqueViolation(err: unknown): boolean {
  const e = err as { code?: string };
  return e?.code === '23505' || e?.code === 'SQLITE_CONSTRAINT_UNIQUE' || e?.code === 'SQLITE_CONSTRAINT_PRIMARYKEY';
}
