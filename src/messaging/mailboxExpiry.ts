// Messages left uncollected in the built-in mailbox expire, as MESH's do: one its recipient has not
// downloaded and acknowledged within the expiry period (MESH's is 5 days) leaves the inbox, and its sender
// is sent a non-delivery report (a REPORT, status 14, naming the message, its workflow id and local id).
// A sender processed here gets the report in the inbound inbox, where its workflow's report handler settles
// the message (a notice marked failed on its referral); a sender whose MESH client polls it here finds it in
// its inbox, as MESH would put it there. Due is reckoned from the stored time a message was accepted, so a
// restart, or a server that was down when a message fell due, expires it at the next sweep. The expiry and
// its report are one transaction, and only a message still waiting is expired: two nodes sweeping one
// database, or a sweep cut short, give each message one report, never none and never two.
//
// The same sweep clears two things that would otherwise stay for ever. A chunked upload its sender never finished
// within the expiry period is discarded, chunks and all: a mailbox could otherwise fill the disk (a chunked
// message may be 20 GB) by never sending its last chunk. And a report left waiting uncollected in a polled
// sender's inbox for the expiry period leaves it, as any other message does, but with no report about it.
import type { SqlDriver, SqlExecutor } from '../record/index.ts';
import { storeInbound } from './inbox.ts';
import { findMessage, newMessageId, type StoredMessage } from './mailboxStore.ts';

/** MESH's status for a message its recipient did not collect: code 14, in the SEND event. */
export const NOT_COLLECTED = { code: '14', event: 'SEND' } as const;

export const DEFAULT_EXPIRY_DAYS = 5;

/** Messages listed at a time (each then expired in its own transaction). */
const SWEEP_BATCH = 200;

export function notCollectedDescription(expiryMs: number): string {
  const days = expiryMs / 86_400_000;
  return `Message not collected by recipient after ${Number.isInteger(days) ? days : days.toFixed(2)} days`;
}

export interface Sweep {
  /** Messages expired by this sweep (not those another node expired first). */
  expired: string[];
  /** Whether a report went to this server's own inbound inbox (wake the inbound worker). */
  reportedHere: boolean;
  /** Chunked uploads not completed in time that this sweep discarded (not those another node did first). */
  discardedUploads: string[];
  /** How many reports waiting for a polled sender's client this sweep expired. */
  expiredReports: number;
}

/**
 * Expires every message that has waited in an inbox longer than `expiryMs` at `now`, oldest first; then
 * discards the uploads not completed, and expires the reports not collected, in as long.
 */
export async function expireUncollected(driver: SqlDriver, now: number, expiryMs: number): Promise<Sweep> {
  const sweep: Sweep = { expired: [], reportedHere: false, discardedUploads: [], expiredReports: 0 };
  await expireData(driver, now, expiryMs, sweep);
  sweep.discardedUploads = await discardUnfinishedUploads(driver, now, expiryMs);
  sweep.expiredReports = await expireReports(driver, now, expiryMs);
  return sweep;
}

async function expireData(driver: SqlDriver, now: number, expiryMs: number, sweep: Sweep): Promise<void> {
  for (;;) {
    const due = await driver.all<{ message_id: string }>(
      "SELECT message_id FROM mesh_messages WHERE status = 'accepted' AND accepted_ms <= ? AND message_type = 'DATA' ORDER BY accepted_ms, message_id LIMIT ?",
      [now - expiryMs, SWEEP_BATCH],
    );
    for (const { message_id } of due) {
      const reported = await driver.transaction((tx) => expireOne(tx, message_id, now, expiryMs));
      if (reported === undefined) continue; // acknowledged, or expired by another node, since it was listed
      sweep.expired.push(message_id);
      sweep.reportedHere ||= reported === 'here';
    }
    // Every one listed is no longer waiting now, so the next batch lists others (after a long stop, thousands).
    if (due.length < SWEEP_BATCH) return;
  }
}

/**
 * Discards every chunked upload started more than `expiryMs` before `now` and still not complete: its chunks
 * go and so does the message, so a chunk sent afterwards is refused as for a message never started, and
 * tracking no longer finds it. Nobody is sent a report: the sender was never told the message was accepted
 * (that is the answer to its last chunk, never sent), so it has nothing to settle, and its recipient never
 * had it. Each
 * upload is discarded in its own transaction (a 20 GB one is a lot of chunks to hold in a batch's).
 */
async function discardUnfinishedUploads(driver: SqlDriver, now: number, expiryMs: number): Promise<string[]> {
  const discarded: string[] = [];
  for (;;) {
    const due = await driver.all<{ message_id: string }>(
      "SELECT message_id FROM mesh_messages WHERE status = 'uploading' AND chunk_count > 1 AND created_ms <= ? ORDER BY created_ms, message_id LIMIT ?",
      [now - expiryMs, SWEEP_BATCH],
    );
    for (const { message_id } of due) {
      if (await driver.transaction((tx) => discardUpload(tx, message_id, now - expiryMs))) discarded.push(message_id);
    }
    if (due.length < SWEEP_BATCH) return discarded;
  }
}

/**
 * The DELETE's condition is the guard, as expireOne's UPDATE is: a second node's DELETE finds the message
 * gone, and on PostgreSQL one whose last chunk is being added (addChunk holds the row FOR UPDATE) waits and
 * then finds it complete, so it is left alone. False when it was no longer uploading.
 */
async function discardUpload(tx: SqlExecutor, messageId: string, startedBy: number): Promise<boolean> {
  const removed = await tx.run("DELETE FROM mesh_messages WHERE message_id = ? AND status = 'uploading' AND created_ms <= ?", [messageId, startedBy]);
  if (!removed) return false;
  await tx.run('DELETE FROM mesh_chunks WHERE message_id = ?', [messageId]);
  return true;
}

/**
 * Expires the reports waiting in a polled sender's inbox longer than `expiryMs`: they leave the inbox as an
 * uncollected message does. One statement, and nothing else to do per report (a report has no chunks, and is
 * never itself reported), so the guard is its condition and a second node's finds none left.
 */
async function expireReports(driver: SqlDriver, now: number, expiryMs: number): Promise<number> {
  return driver.run(
    "UPDATE mesh_messages SET status = 'expired', expired_ms = ? WHERE status = 'accepted' AND message_type = 'REPORT' AND accepted_ms <= ?",
    [now, now - expiryMs],
  );
}

/**
 * Expires one message and reports it to its sender, in `tx`; undefined when it was no longer waiting. The
 * UPDATE's condition is the guard: on PostgreSQL a second node's UPDATE waits for the first's commit and
 * then finds the message expired already; SQLite runs one writer at a time.
 */
async function expireOne(tx: SqlExecutor, messageId: string, now: number, expiryMs: number): Promise<'here' | 'mailbox' | undefined> {
  const description = notCollectedDescription(expiryMs);
  const changed = await tx.run(
    "UPDATE mesh_messages SET status = 'expired', expired_ms = ?, status_description = ? WHERE message_id = ? AND status = 'accepted' AND accepted_ms <= ?",
    [now, description, messageId, now - expiryMs],
  );
  if (!changed) return undefined;
  await tx.run('DELETE FROM mesh_chunks WHERE message_id = ?', [messageId]);
  const message = (await findMessage(tx, messageId))!;
  const sender = await tx.get<{ polled: number; password_sealed: string | null }>('SELECT polled, password_sealed FROM mesh_mailboxes WHERE mailbox_id = ?', [message.sender]);
  if (sender && sender.password_sealed !== null && Number(sender.polled)) {
    await reportToMailbox(tx, message, description, now);
    return 'mailbox';
  }
  // Processed here, or a mailbox this server sent from without hosting it: this server sent the message.
  await storeInbound(tx, {
    messageId: newMessageId(now), mailbox: message.sender, from: message.recipient, to: message.sender, workflowId: message.workflowId,
    ...(message.subject !== undefined ? { subject: message.subject } : {}),
    ...(message.localId !== undefined ? { localId: message.localId } : {}),
    body: Buffer.alloc(0), receivedAt: now,
    report: { linkedMessageId: messageId, statusCode: NOT_COLLECTED.code, statusEvent: NOT_COLLECTED.event, statusDescription: description },
  });
  return 'here';
}

/**
 * The report waits in the sender's inbox for its MESH client, as a message from the recipient that did not
 * collect: REPORT, no content, the undelivered message's workflow id, subject and local id. Left uncollected
 * it expires too (expireReports), but not into another report.
 */
async function reportToMailbox(tx: SqlExecutor, message: StoredMessage, description: string, now: number): Promise<void> {
  await tx.run(
    `INSERT INTO mesh_messages (message_id, sender, recipient, workflow_id, subject, local_id, chunk_count, status, created_ms, accepted_ms, message_type, linked_message_id, status_description)
     VALUES (?, ?, ?, ?, ?, ?, 1, 'accepted', ?, ?, 'REPORT', ?, ?)`,
    [newMessageId(now), message.recipient, message.sender, message.workflowId, message.subject ?? null, message.localId ?? null, now, now, message.messageId, description],
  );
}
