// Walks the audit hash chain from its first entry, recomputing every hash from the AuditEvent as stored,
// and reports the first link that does not hold.
import type { SqlExecutor } from '../../record/index.ts';
import { CHAIN_EXTENSION, GENESIS_HASH, chainHash, chainPosition } from './chain.ts';

export type ChainCheck =
  | { intact: true; checked: number; head?: { seq: number; hash: string } }
  | { intact: false; checked: number; seq: number; auditId?: string; problem: string };

interface LinkRow { seq: number; audit_id: string; prev_hash: string; hash: string; content: string | null; version_id: number | null; deleted: number | null }

const PAGE = 1000;

export async function verifyAuditChain(db: SqlExecutor): Promise<ChainCheck> {
  let previous = GENESIS_HASH;
  let expected = 1;
  let checked = 0;
  let head: { seq: number; hash: string } | undefined;
  const broken = (seq: number, auditId: string | undefined, problem: string): ChainCheck => ({ intact: false, checked, seq, auditId, problem });
  for (;;) {
    const rows = await db.all<LinkRow>(
      `SELECT c.seq, c.audit_id, c.prev_hash, c.hash, r.content, r.version_id, r.deleted
         FROM access_audit_chain c LEFT JOIN resources r ON r.type = 'AuditEvent' AND r.id = c.audit_id
        WHERE c.seq >= ? ORDER BY c.seq LIMIT ${PAGE}`,
      [expected],
    );
    for (const row of rows) {
      const seq = Number(row.seq);
      if (seq !== expected) return broken(expected, await unchainedAuditEvent(db, expected), 'its chain row has been deleted');
      if (row.prev_hash !== previous) return broken(seq, row.audit_id, 'its chain row does not follow the entry before it (the chain row was changed)');
      if (row.content === null || row.content === undefined) {
        return broken(seq, row.audit_id, row.deleted === null || row.deleted === undefined ? 'the AuditEvent has been removed from the record' : 'the AuditEvent has been deleted');
      }
      let event: Record<string, any>;
      try {
        event = JSON.parse(row.content);
      } catch {
        return broken(seq, row.audit_id, 'the stored AuditEvent is not valid JSON');
      }
      if (event.id !== row.audit_id || chainHash(previous, event) !== row.hash) return broken(seq, row.audit_id, 'the stored AuditEvent does not match its hash (it was changed after it was recorded)');
      const position = chainPosition(event);
      if (position.seq !== seq || position.hash !== row.hash) return broken(seq, row.audit_id, 'the chain position recorded inside the AuditEvent was changed');
      if (Number(row.version_id) !== 1) return broken(seq, row.audit_id, `the AuditEvent was rewritten (it is at version ${row.version_id})`);
      previous = row.hash;
      head = { seq, hash: row.hash };
      expected += 1;
      checked += 1;
    }
    if (rows.length < PAGE) break;
  }
  // Chain rows removed from the end leave their AuditEvents behind, still saying where they belonged.
  const orphan = await firstUnchained(db);
  if (orphan) return broken(orphan.seq ?? expected, orphan.id, 'its chain row has been deleted');
  return { intact: true, checked, head };
}

/** AuditEvents that carry a chain position but have no chain row, lowest position first. */
async function unchainedAuditEvents(db: SqlExecutor): Promise<{ id: string; seq?: number }[]> {
  const rows = await db.all<{ id: string; content: string }>(
    `SELECT r.id, r.content FROM resources r
      WHERE r.type = 'AuditEvent' AND r.deleted = 0 AND r.content LIKE ?
        AND NOT EXISTS (SELECT 1 FROM access_audit_chain c WHERE c.audit_id = r.id)`,
    [`%${CHAIN_EXTENSION}%`],
  );
  return rows
    .map((r) => {
      try {
        return { id: r.id, seq: chainPosition(JSON.parse(r.content)).seq };
      } catch {
        return { id: r.id };
      }
    })
    .sort((a, b) => (a.seq ?? Infinity) - (b.seq ?? Infinity));
}

async function firstUnchained(db: SqlExecutor): Promise<{ id: string; seq?: number } | undefined> {
  return (await unchainedAuditEvents(db))[0];
}

async function unchainedAuditEvent(db: SqlExecutor, seq: number): Promise<string | undefined> {
  return (await unchainedAuditEvents(db)).find((o) => o.seq === seq)?.id;
}
