// The inbound inbox: every message for this server's workflows, stored before anyone acknowledges it,
// keyed by MESH message id so a second delivery of the same message is a no-op. Workers claim due
// messages with a lease (so several nodes on one database never run one message at the same time, and a
// node that dies hands it back when the lease runs out), then mark them done, due again later, or dead.
// A message's body is kept apart from its row (messaging_inbox_bodies): it is written once, while the row
// changes with every claim and outcome.
import type { SqlDriver, SqlExecutor } from '../record/index.ts';
import type { InboundMessage, MeshReport } from './contract.ts';

/** A value the drivers bind; both bind a Buffer as bytes (BLOB, BYTEA), though the shared type does not say so. */
type SqlValue = NonNullable<Parameters<SqlExecutor['run']>[1]>[number];

/** held-for-client: a handler said it is not this service's business; it waits in its mailbox for the mailbox's MESH client. */
export type InboxStatus = 'pending' | 'done' | 'dead' | 'held-for-client';

export interface DeadLetter extends Omit<InboundMessage, 'body'> {
  attempts: number;
  reason: string;
  deadAt: number;
  size: number;
}

interface InboxRow {
  message_id: string; mailbox: string; sender: string; recipient: string; workflow_id: string;
  subject: string | null; local_id: string | null; file_name: string | null; content_type: string | null;
  body: Buffer | Uint8Array; received_ms: number; attempts: number; last_error: string | null; finished_ms: number | null; report: string | null;
}

const COLUMNS = 'i.message_id, mailbox, sender, recipient, workflow_id, subject, local_id, file_name, content_type, received_ms, attempts, last_error, finished_ms, report';

function messageOf(row: InboxRow): InboundMessage {
  return { ...headersOf(row), body: Buffer.from(row.body) };
}

function headersOf(row: Omit<InboxRow, 'body'>): Omit<InboundMessage, 'body'> {
  return {
    messageId: row.message_id,
    mailbox: row.mailbox,
    from: row.sender,
    to: row.recipient,
    workflowId: row.workflow_id,
    ...(row.subject !== null ? { subject: row.subject } : {}),
    ...(row.local_id !== null ? { localId: row.local_id } : {}),
    ...(row.file_name !== null ? { fileName: row.file_name } : {}),
    ...(row.content_type !== null ? { contentType: row.content_type } : {}),
    receivedAt: Number(row.received_ms),
    ...(row.report !== null ? { report: JSON.parse(row.report) as MeshReport } : {}),
  };
}

/** Stores a message in the caller's transaction; false when its id was already there (a duplicate). */
export async function storeInbound(tx: SqlExecutor, msg: InboundMessage): Promise<boolean> {
  const changed = await tx.run(
    `INSERT INTO messaging_inbox (message_id, mailbox, sender, recipient, workflow_id, subject, local_id, file_name, content_type, received_ms, status, attempts, next_attempt_ms, report)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', 0, ?, ?) ON CONFLICT (message_id) DO NOTHING`,
    [msg.messageId, msg.mailbox, msg.from, msg.to, msg.workflowId, msg.subject ?? null, msg.localId ?? null, msg.fileName ?? null, msg.contentType ?? null, msg.receivedAt, msg.receivedAt, msg.report ? JSON.stringify(msg.report) : null],
  );
  if (!changed) return false;
  await tx.run('INSERT INTO messaging_inbox_bodies (message_id, body) VALUES (?, ?)', [msg.messageId, msg.body as unknown as SqlValue]);
  return true;
}

/** Claims up to `limit` due messages for `leaseMs`, oldest first; each claim counts as an attempt. */
export async function claimDue(driver: SqlDriver, now: number, leaseMs: number, limit: number): Promise<Array<InboundMessage & { attempts: number }>> {
  const due = await driver.all<{ message_id: string }>(
    "SELECT message_id FROM messaging_inbox WHERE status = 'pending' AND next_attempt_ms <= ? AND (lease_until_ms IS NULL OR lease_until_ms < ?) ORDER BY received_ms, message_id LIMIT ?",
    [now, now, limit],
  );
  if (!due.length) return [];
  return driver.transaction(async (tx) => {
    const claimed: Array<InboundMessage & { attempts: number }> = [];
    for (const { message_id } of due) {
      const won = await tx.run(
        "UPDATE messaging_inbox SET lease_until_ms = ?, attempts = attempts + 1 WHERE message_id = ? AND status = 'pending' AND (lease_until_ms IS NULL OR lease_until_ms < ?)",
        [now + leaseMs, message_id, now],
      );
      if (!won) continue; // another node took it first
      const row = await tx.get<InboxRow>(`SELECT ${COLUMNS}, b.body FROM messaging_inbox i JOIN messaging_inbox_bodies b ON b.message_id = i.message_id WHERE i.message_id = ?`, [message_id]);
      if (row) claimed.push({ ...messageOf(row), attempts: Number(row.attempts) });
    }
    return claimed;
  });
}

/** Marks a message done in the caller's transaction (a batch) or, given the driver, in one of its own. */
export async function markDone(db: SqlDriver | SqlExecutor, messageId: string, now: number): Promise<void> {
  await inTransaction(db, (tx) => tx.run("UPDATE messaging_inbox SET status = 'done', lease_until_ms = NULL, last_error = NULL, finished_ms = ? WHERE message_id = ?", [now, messageId]));
}

export async function markDead(db: SqlDriver | SqlExecutor, messageId: string, reason: string, now: number): Promise<void> {
  await inTransaction(db, (tx) => tx.run("UPDATE messaging_inbox SET status = 'dead', lease_until_ms = NULL, last_error = ?, finished_ms = ? WHERE message_id = ?", [reason, now, messageId]));
}

export async function markRetry(db: SqlDriver | SqlExecutor, messageId: string, reason: string, at: number): Promise<void> {
  await inTransaction(db, (tx) => tx.run('UPDATE messaging_inbox SET lease_until_ms = NULL, last_error = ?, next_attempt_ms = ? WHERE message_id = ?', [reason, at, messageId]));
}

function inTransaction<T>(db: SqlDriver | SqlExecutor, work: (tx: SqlExecutor) => Promise<T>): Promise<T> {
  return 'transaction' in db ? db.transaction(work) : work(db);
}

/** Hands messages back at once (a stopping server), without counting the attempt it could not finish. */
export async function releaseClaims(driver: SqlDriver, messageIds: string[]): Promise<void> {
  if (!messageIds.length) return;
  await driver.transaction(async (tx) => {
    for (const id of messageIds) await tx.run("UPDATE messaging_inbox SET lease_until_ms = NULL, attempts = attempts - 1 WHERE message_id = ? AND status = 'pending'", [id]);
  });
}

/** The dead letters, oldest first, with each body's size but not the body: a full list would otherwise read megabytes. */
export async function listDeadLetters(db: SqlExecutor, limit = 500): Promise<DeadLetter[]> {
  const rows = await db.all<Omit<InboxRow, 'body'> & { size: number }>(
    `SELECT ${COLUMNS}, LENGTH(b.body) AS size FROM messaging_inbox i JOIN messaging_inbox_bodies b ON b.message_id = i.message_id
     WHERE status = 'dead' ORDER BY finished_ms, i.message_id LIMIT ?`,
    [limit],
  );
  return rows.map((row) => ({ ...headersOf(row), attempts: Number(row.attempts), reason: row.last_error ?? '', deadAt: Number(row.finished_ms), size: Number(row.size) }));
}

/** Puts a dead letter back in the queue, due at once, with its attempts reset; throws when there is none. */
export async function replayDeadLetter(driver: SqlDriver, messageId: string, now: number): Promise<void> {
  const changed = await driver.transaction((tx) =>
    tx.run("UPDATE messaging_inbox SET status = 'pending', attempts = 0, next_attempt_ms = ?, lease_until_ms = NULL, finished_ms = NULL WHERE message_id = ? AND status = 'dead'", [now, messageId]),
  );
  if (!changed) throw new Error(`There is no dead letter with message id ${messageId}.`);
}

/** A message's state in the inbox, for staff and tests: status, attempts and the last error. */
export async function inboxState(db: SqlExecutor, messageId: string): Promise<{ status: InboxStatus; attempts: number; lastError?: string } | undefined> {
  const row = await db.get<{ status: InboxStatus; attempts: number; last_error: string | null }>('SELECT status, attempts, last_error FROM messaging_inbox WHERE message_id = ?', [messageId]);
  return row ? { status: row.status, attempts: Number(row.attempts), ...(row.last_error ? { lastError: row.last_error } : {}) } : undefined;
}
