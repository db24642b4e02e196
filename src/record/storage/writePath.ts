// A write = resource row + history row + index rows + compartment rows + outbox row, in the caller's
// database transaction, so a crash can never leave one without the others.
import type { Param, SqlExecutor } from './driver.ts';
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
  /** Lock the row while we decide (PostgreSQL); SQLite's writer is already exclusive. */
  lock: boolean;
}

const INDEX_TABLES = ['search_token', 'search_string', 'search_date', 'search_reference', 'search_number', 'search_quantity', 'search_uri', 'compartment'];

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
  const versionId = (current?.version_id ?? 0) + 1;
  const now = nextTimestamp(current?.last_updated_ms);
  const lastUpdated = new Date(now).toISOString();
  resource.meta = { ...(resource.meta ?? {}), versionId: String(versionId), lastUpdated };
  const content = JSON.stringify(resource);
  const index = extractIndex(resource);
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
  await tx.run('INSERT INTO resource_history (rid, type, id, version_id, last_updated_ms, method, content) VALUES (?, ?, ?, ?, ?, ?, ?)', [
    rid, type, id, versionId, now, current && !current.deleted ? 'PUT' : 'POST', content,
  ]);
  await writeIndex(tx, rid, type, index);
  await tx.run('INSERT INTO outbox (type, id, version_id, action, patient_id, at_ms) VALUES (?, ?, ?, ?, ?, ?)', [
    type, id, versionId, current && !current.deleted ? 'update' : 'create', patientId, now,
  ]);
  return { type, id, versionId, lastUpdated, content, created: !current || current.deleted === 1 };
}

export async function deleteResource(tx: SqlExecutor, type: string, id: string, options: WriteOptions): Promise<{ versionId: number } | undefined> {
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
  return { versionId };
}

export function assertNotDeleted(type: string, id: string, row: { deleted: number } | undefined): void {
  if (!row) throw notFound(`${type}/${id} is not known to this server.`);
  if (row.deleted) throw gone(`${type}/${id} has been deleted.`);
}

async function writeIndex(tx: SqlExecutor, rid: number, type: string, index: IndexRows): Promise<void> {
  const rows = <T>(list: T[], f: (x: T) => Param[]) => list.map((x) => [rid, type, ...f(x)]);
  await tx.insertMany('search_token', ['rid', 'type', 'param', 'system', 'code', 'text'], rows(index.token, (t) => [t.param, t.system, t.code, t.text]));
  await tx.insertMany('search_string', ['rid', 'type', 'param', 'value', 'raw'], rows(index.string, (s) => [s.param, s.value, s.raw]));
  await tx.insertMany('search_date', ['rid', 'type', 'param', 'lo', 'hi'], rows(index.date, (d) => [d.param, d.lo, d.hi]));
  await tx.insertMany('search_reference', ['rid', 'type', 'param', 'target_type', 'target_id', 'url'], rows(index.reference, (r) => [r.param, r.targetType, r.targetId, r.url]));
  await tx.insertMany('search_number', ['rid', 'type', 'param', 'value'], rows(index.number, (n) => [n.param, n.value]));
  await tx.insertMany('search_quantity', ['rid', 'type', 'param', 'value', 'system', 'code', 'unit'], rows(index.quantity, (q) => [q.param, q.value, q.system, q.code, q.unit]));
  await tx.insertMany('search_uri', ['rid', 'type', 'param', 'value'], rows(index.uri, (u) => [u.param, u.value]));
  await tx.insertMany('compartment', ['rid', 'patient_id', 'type'], index.compartments.map((p) => [rid, p, type]));
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
