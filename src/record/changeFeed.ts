// The change feed: one outbox row per write, in the same transaction as the write. Workflows read it to
// react to changes without polling every table. On PostgreSQL a row's seq is assigned at insert but seen
// at commit, so a reader must allow for a lower seq appearing late (see docs/architecture.md).
import type { SqlExecutor } from './storage/driver.ts';

export interface RecordChange {
  seq: number;
  type: string;
  id: string;
  versionId: number;
  action: string;
  patientId: string | null;
  atMs: number;
}

/** Changes after `afterSeq`, oldest first, at most `limit`. */
export async function readChanges(db: SqlExecutor, afterSeq: number, limit: number): Promise<RecordChange[]> {
  const rows = await db.all<{ seq: number | string; type: string; id: string; version_id: number | string; action: string; patient_id: string | null; at_ms: number | string }>(
    'SELECT seq, type, id, version_id, action, patient_id, at_ms FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?',
    [afterSeq, limit],
  );
  return rows.map((r) => ({ seq: Number(r.seq), type: r.type, id: r.id, versionId: Number(r.version_id), action: r.action, patientId: r.patient_id, atMs: Number(r.at_ms) }));
}

/** The newest change's seq (0 when there is none): where a reader that wants only what happens next starts. */
export async function latestChangeSeq(db: SqlExecutor): Promise<number> {
  const row = await db.get<{ seq: number | string | null }>('SELECT MAX(seq) AS seq FROM outbox');
  return Number(row?.seq ?? 0);
}
