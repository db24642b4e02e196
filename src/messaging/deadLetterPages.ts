// The dead-letter queue a page at a time, for the portal's staff pages: newest dead letter first (one that
// failed again on replay comes back to the top), each with the organisations its mailboxes are linked to,
// and never a body. And what became of a replayed message, waited for briefly so the administrator who
// replayed it is told at once whether it was processed or failed again, and why.
import type { SqlExecutor } from '../record/index.ts';
import type { DeadLetter, InboxStatus } from './inbox.ts';

export interface ListedDeadLetter extends DeadLetter {
  /** ODS code of the organisation the sender's mailbox is linked to, when this server knows that mailbox. */
  fromOds?: string;
  /** ODS code of the organisation the mailbox it arrived in is linked to. */
  mailboxOds?: string;
}

export interface DeadLetterPage { total: number; deadLetters: ListedDeadLetter[] }

/** The most a page may hold (the HTTP API's own cap). */
export const MAX_DEAD_LETTER_PAGE = 500;

interface Row {
  message_id: string; mailbox: string; sender: string; recipient: string; workflow_id: string; subject: string | null; local_id: string | null;
  file_name: string | null; content_type: string | null; received_ms: number; attempts: number; last_error: string | null; finished_ms: number;
  size: number; sender_ods: string | null; mailbox_ods: string | null;
}

/** Dead letters `offset`… (at most `limit`, up to MAX_DEAD_LETTER_PAGE), newest first, and how many there are in all. */
export async function pageOfDeadLetters(db: SqlExecutor, page: { offset: number; limit: number }): Promise<DeadLetterPage> {
  const limit = Math.max(1, Math.min(MAX_DEAD_LETTER_PAGE, Math.floor(page.limit)));
  const offset = Math.max(0, Math.floor(page.offset));
  const total = await countDeadLetters(db);
  const rows = await db.all<Row>(
    `SELECT i.message_id, i.mailbox, i.sender, i.recipient, i.workflow_id, i.subject, i.local_id, i.file_name, i.content_type, i.received_ms, i.attempts,
            i.last_error, i.finished_ms, LENGTH(b.body) AS size, f.ods AS sender_ods, m.ods AS mailbox_ods
       FROM messaging_inbox i JOIN messaging_inbox_bodies b ON b.message_id = i.message_id
       LEFT JOIN mesh_mailboxes f ON f.mailbox_id = i.sender LEFT JOIN mesh_mailboxes m ON m.mailbox_id = i.mailbox
      WHERE i.status = 'dead' ORDER BY i.finished_ms DESC, i.message_id DESC LIMIT ? OFFSET ?`,
    [limit, offset],
  );
  return {
    total,
    deadLetters: rows.map((r) => ({
      messageId: r.message_id, mailbox: r.mailbox, from: r.sender, to: r.recipient, workflowId: r.workflow_id,
      ...(r.subject !== null ? { subject: r.subject } : {}), ...(r.local_id !== null ? { localId: r.local_id } : {}),
      ...(r.file_name !== null ? { fileName: r.file_name } : {}), ...(r.content_type !== null ? { contentType: r.content_type } : {}),
      receivedAt: Number(r.received_ms), attempts: Number(r.attempts), reason: r.last_error ?? '', deadAt: Number(r.finished_ms), size: Number(r.size),
      ...(r.sender_ods !== null ? { fromOds: r.sender_ods } : {}), ...(r.mailbox_ods !== null ? { mailboxOds: r.mailbox_ods } : {}),
    })),
  };
}

export async function countDeadLetters(db: SqlExecutor): Promise<number> {
  return Number((await db.get<{ n: number }>("SELECT COUNT(*) AS n FROM messaging_inbox WHERE status = 'dead'"))?.n ?? 0);
}

/**
 * Where a message stands after a replay: processed; dead again (with the new reason); failed and due to be
 * tried again (with the error); held in its mailbox for a MESH client; or not yet tried.
 */
export type ReplayOutcome =
  | { messageId: string; state: 'processed' }
  | { messageId: string; state: 'dead'; reason: string }
  | { messageId: string; state: 'retrying'; reason: string; attempts: number }
  | { messageId: string; state: 'held'; reason: string }
  | { messageId: string; state: 'waiting' };

/** The message's outcome now; undefined when the inbox has no such message. */
export async function replayOutcome(db: SqlExecutor, messageId: string): Promise<ReplayOutcome | undefined> {
  const row = await db.get<{ status: InboxStatus; attempts: number; last_error: string | null; lease_until_ms: number | null }>(
    'SELECT status, attempts, last_error, lease_until_ms FROM messaging_inbox WHERE message_id = ?', [messageId],
  );
  if (!row) return undefined;
  const reason = row.last_error ?? '';
  if (row.status === 'done') return { messageId, state: 'processed' };
  if (row.status === 'dead') return { messageId, state: 'dead', reason };
  if (row.status === 'held-for-client') return { messageId, state: 'held', reason };
  // Pending: a replay resets the attempts, so one counted and no lease held means it was tried and failed.
  if (Number(row.attempts) > 0 && row.lease_until_ms === null) return { messageId, state: 'retrying', reason, attempts: Number(row.attempts) };
  return { messageId, state: 'waiting' };
}

/** Waits (up to `timeoutMs`) for a replayed message to be tried, and says how it went. */
export async function awaitReplayOutcome(db: SqlExecutor, messageId: string, timeoutMs = 5000): Promise<ReplayOutcome | undefined> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const outcome = await replayOutcome(db, messageId);
    if (outcome?.state !== 'waiting' || Date.now() >= until) return outcome;
    await new Promise((r) => setTimeout(r, 50));
  }
}
