// The audit chain's head, kept in the record's own database (access_audit_anchor: one row), outside the
// journal (on SQLite, another file). A hash chain shows an entry changed or removed anywhere but at its
// end; removing the last entries, with their index rows, leaves a shorter chain that still verifies. The
// anchor remembers how far the chain reached, so `audit verify` notices (up to the last ANCHOR_EVERY_MS of
// entries, see trail.ts). Whoever can change both databases can change both: the anchor raises the bar, as
// an operator copying `audit verify`'s head elsewhere raises it further.
import type { SqlExecutor } from '../../record/index.ts';
import { hashAfter, storedHead, type ChainHead } from './batchJournal.ts';

/**
 * Moves the anchor to `head`, unless it already reaches further (app nodes sharing one database anchor in any
 * order). Only along the chain it anchored: when the journal no longer holds the anchored entry (entries were
 * removed from the end and new ones written in their place), the anchor stays where it is, for `audit verify`
 * to report, and this throws.
 */
export async function anchorAuditHead(db: SqlExecutor, head: ChainHead): Promise<void> {
  const current = await anchoredHead(db);
  if (!current) {
    await db.run('INSERT INTO access_audit_anchor (id, seq, hash, anchored_ms) VALUES (1, ?, ?, ?) ON CONFLICT (id) DO NOTHING', [head.seq, head.hash, Date.now()]);
    return;
  }
  if (current.seq >= head.seq) return;
  if ((await hashAfter(db, current.seq)) !== current.hash) {
    throw new Error(`the audit journal no longer holds entry ${current.seq} as anchored on ${new Date(current.anchoredMs).toISOString()} (entries were removed or changed); the anchor stays there: run carebridge audit verify`);
  }
  // Compare-and-set: another node may have moved it meanwhile.
  await db.run(
    'UPDATE access_audit_anchor SET seq = ?, hash = ?, anchored_ms = ? WHERE id = 1 AND seq = ? AND hash = ?',
    [head.seq, head.hash, Date.now(), current.seq, current.hash],
  );
}

/** The anchored head, if any (none before the first anchor, or in a database from before anchors). */
export async function anchoredHead(db: SqlExecutor): Promise<(ChainHead & { anchoredMs: number }) | undefined> {
  const row = await db.get<{ seq: number; hash: string; anchored_ms: number }>('SELECT seq, hash, anchored_ms FROM access_audit_anchor WHERE id = 1');
  return row ? { seq: Number(row.seq), hash: row.hash, anchoredMs: Number(row.anchored_ms) } : undefined;
}

/**
 * How far the journal reaches and how far the record's anchor says it reached (entry numbers), for a
 * backup to show: a journal copied after its record reaches at least as far as the copy's anchor.
 */
export async function auditReach(journal: SqlExecutor, record: SqlExecutor): Promise<{ journal: number; anchored?: number }> {
  return { journal: (await storedHead(journal)).seq, anchored: (await anchoredHead(record))?.seq };
}
