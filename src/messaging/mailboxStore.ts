// The built-in MESH mailbox's messages. A message is accepted once all its chunks are in; then, if its
// recipient is processed here, it moves into the inbound inbox in the same transaction and is marked
// acknowledged (this server is the recipient), else it waits in the recipient's inbox for download.
// Chunks are deleted once a message is acknowledged: the mailbox is a post office, not an archive. A message
// a workflow here says is not its business goes back to its recipient's inbox (holdForMailboxClient). One
// left uncollected too long expires, and its sender is sent a report; an upload never completed is
// discarded, chunks and all (mailboxExpiry.ts).
import { randomBytes } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import type { SqlDriver, SqlExecutor } from '../record/index.ts';
import { storeInbound } from './inbox.ts';

type SqlValue = NonNullable<Parameters<SqlExecutor['run']>[1]>[number];

export interface MessageHeaders {
  sender: string;
  recipient: string;
  workflowId: string;
  subject?: string;
  localId?: string;
  fileName?: string;
  contentType?: string;
  checksum?: string;
  /** 'gzip' when the sender compressed the message (Content-Encoding); it travels compressed. */
  contentEncoding?: 'gzip';
}

export interface StoredMessage extends MessageHeaders {
  messageId: string;
  chunkCount: number;
  /** expired: not acknowledged by its recipient in time; it left the inbox and its sender was sent a report. */
  status: 'uploading' | 'accepted' | 'acknowledged' | 'expired';
  createdAt: number;
  acceptedAt?: number;
  acknowledgedAt?: number;
  /** REPORT: MESH saying the message `linkedMessageId` was not delivered (it has no content). */
  messageType: 'DATA' | 'REPORT';
  linkedMessageId?: string;
  /** Why an expired message, or the report about one, was not delivered (MESH's status description). */
  statusDescription?: string;
  expiredAt?: number;
}

/** A MESH-style id: the time it was made and a random part, e.g. 20260301120000123_A1B2C3D4E5. */
export function newMessageId(now: number): string {
  return `${new Date(now).toISOString().replace(/\D/g, '').slice(0, 17)}_${randomBytes(5).toString('hex').toUpperCase()}`;
}

interface MessageRow {
  message_id: string; sender: string; recipient: string; workflow_id: string; subject: string | null; local_id: string | null;
  file_name: string | null; content_type: string | null; checksum: string | null; chunk_count: number; status: StoredMessage['status'];
  created_ms: number; accepted_ms: number | null; acknowledged_ms: number | null; content_encoding: string | null;
  message_type: StoredMessage['messageType']; linked_message_id: string | null; status_description: string | null; expired_ms: number | null;
}

function storedOf(r: MessageRow): StoredMessage {
  const optional = (value: string | null) => value ?? undefined;
  return {
    messageId: r.message_id, sender: r.sender, recipient: r.recipient, workflowId: r.workflow_id,
    subject: optional(r.subject), localId: optional(r.local_id), fileName: optional(r.file_name), contentType: optional(r.content_type), checksum: optional(r.checksum),
    ...(r.content_encoding === 'gzip' ? { contentEncoding: 'gzip' as const } : {}),
    chunkCount: Number(r.chunk_count), status: r.status, createdAt: Number(r.created_ms),
    acceptedAt: r.accepted_ms === null ? undefined : Number(r.accepted_ms), acknowledgedAt: r.acknowledged_ms === null ? undefined : Number(r.acknowledged_ms),
    messageType: r.message_type === 'REPORT' ? 'REPORT' : 'DATA',
    ...(r.linked_message_id !== null ? { linkedMessageId: r.linked_message_id } : {}),
    ...(r.status_description !== null ? { statusDescription: r.status_description } : {}),
    ...(r.expired_ms !== null ? { expiredAt: Number(r.expired_ms) } : {}),
  };
}

export async function findMessage(db: SqlExecutor, messageId: string): Promise<StoredMessage | undefined> {
  const row = await db.get<MessageRow>('SELECT * FROM mesh_messages WHERE message_id = ?', [messageId]);
  return row ? storedOf(row) : undefined;
}

/** Result of a completed upload: whether it went straight to this server's inbox (wake the worker). */
export interface Upload { messageId: string; complete: boolean; deliveredHere: boolean }

/**
 * The sizes MESH takes: a request (a message, or one chunk of it) up to 100 MB, and a chunked message up to
 * 20 GB, what MESH's own client takes (its API says more; its documentation for chunks says 20 GB). A message
 * processed here is joined, inflated when gzip, and kept as one inbox body, so it may be 100 MB in all, MESH's
 * limit for a message that is not chunked; one waiting for a client is kept and given out chunk by chunk.
 */
export interface SizeLimits { chunkBytes: number; messageBytes: number; processedHereBytes: number }

export const MESH_SIZE_LIMITS: SizeLimits = { chunkBytes: 100 * 1024 * 1024, messageBytes: 20 * 1024 ** 3, processedHereBytes: 100 * 1024 * 1024 };

/** The most a message to `recipient` may hold in all. */
async function largestMessage(tx: SqlExecutor, recipient: string, limits: SizeLimits): Promise<number> {
  const box = await tx.get<{ polled: number; password_sealed: string | null }>('SELECT polled, password_sealed FROM mesh_mailboxes WHERE mailbox_id = ?', [recipient]);
  return box && box.password_sealed !== null && !Number(box.polled) ? limits.processedHereBytes : limits.messageBytes;
}

function sizeText(bytes: number): string {
  return bytes >= 1024 ** 3 ? `${Math.round(bytes / 1024 ** 3)} GB` : bytes >= 1024 * 1024 ? `${Math.round(bytes / 1024 / 1024)} MB` : `${bytes} bytes`;
}

/** Stores a new message with its first chunk; `chunkCount` > 1 waits for the rest. */
export async function startUpload(driver: SqlDriver, headers: MessageHeaders, chunkCount: number, firstChunk: Buffer, now: number, limits = MESH_SIZE_LIMITS): Promise<Upload> {
  const messageId = newMessageId(now);
  return driver.transaction(async (tx) => {
    const largest = Math.min(limits.chunkBytes, await largestMessage(tx, headers.recipient, limits));
    if (firstChunk.length > largest) throw new UploadError(413, 'EPL-156', `The ${chunkCount > 1 ? 'chunk' : 'message'} is ${firstChunk.length} bytes, more than the ${sizeText(largest)} a ${chunkCount > 1 ? 'chunk' : 'message'} to mailbox ${headers.recipient} may be; nothing was stored.`);
    await tx.run(
      `INSERT INTO mesh_messages (message_id, sender, recipient, workflow_id, subject, local_id, file_name, content_type, checksum, chunk_count, status, created_ms, content_encoding)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'uploading', ?, ?)`,
      [messageId, headers.sender, headers.recipient, headers.workflowId, headers.subject ?? null, headers.localId ?? null, headers.fileName ?? null, headers.contentType ?? null, headers.checksum ?? null, chunkCount, now, headers.contentEncoding ?? null],
    );
    if (chunkCount === 1) return { messageId, complete: true, deliveredHere: await completeUpload(tx, messageId, now, firstChunk) };
    await tx.run('INSERT INTO mesh_chunks (message_id, chunk_no, body) VALUES (?, ?, ?)', [messageId, 1, firstChunk as unknown as SqlValue]);
    return { messageId, complete: false, deliveredHere: false };
  });
}

export class UploadError extends Error {
  constructor(readonly status: number, readonly code: string, message: string) {
    super(message);
  }
}

/**
 * Adds chunk `chunkNo` (2..N) of a message `sender` is uploading; the last one completes it. A message whose
 * joined chunks cannot be decoded, or that grows larger than its recipient takes, can never complete, so it is
 * discarded, chunks and all, rather than left uploading for ever; so is one whose sender stops sending
 * chunks, once the expiry sweep finds it not completed in time (mailboxExpiry.ts).
 */
export async function addChunk(driver: SqlDriver, sender: string, messageId: string, chunkNo: number, body: Buffer, now: number, limits = MESH_SIZE_LIMITS): Promise<Upload> {
  try {
    return await driver.transaction(async (tx) => {
      const row = await tx.get<MessageRow>(`SELECT * FROM mesh_messages WHERE message_id = ?${driver.dialect === 'postgres' ? ' FOR UPDATE' : ''}`, [messageId]);
      if (!row || row.sender !== sender) throw new UploadError(404, 'EPL-153', `No message ${messageId} is being sent from mailbox ${sender}.`);
      if (row.status !== 'uploading') throw new UploadError(409, 'EPL-155', `Message ${messageId} is already complete.`);
      if (!(chunkNo >= 2 && chunkNo <= Number(row.chunk_count))) throw new UploadError(400, 'EPL-154', `Chunk ${chunkNo} is outside 2 to ${row.chunk_count} for message ${messageId}.`);
      if (body.length > limits.chunkBytes) throw new UploadError(413, 'EPL-156', `Chunk ${chunkNo} is ${body.length} bytes, more than the ${sizeText(limits.chunkBytes)} a chunk may be; send the message in smaller chunks.`);
      const added = await tx.run('INSERT INTO mesh_chunks (message_id, chunk_no, body) VALUES (?, ?, ?) ON CONFLICT (message_id, chunk_no) DO NOTHING', [messageId, chunkNo, body as unknown as SqlValue]);
      if (!added) throw new UploadError(409, 'EPL-155', `Chunk ${chunkNo} of message ${messageId} was already sent.`);
      // The sizes as stored (LENGTH reads no chunk's bytes on either engine).
      const have = await tx.get<{ n: number; bytes: number }>('SELECT COUNT(*) AS n, COALESCE(SUM(LENGTH(body)), 0) AS bytes FROM mesh_chunks WHERE message_id = ?', [messageId]);
      const largest = await largestMessage(tx, row.recipient, limits);
      if (Number(have?.bytes) > largest) throw new UploadNeverCompletes(413, 'EPL-156', `Message ${messageId} is more than the ${sizeText(largest)} a message to mailbox ${row.recipient} may be, with chunk ${chunkNo} of ${row.chunk_count}`, 'send what it carries as several smaller messages');
      if (Number(have?.n) < Number(row.chunk_count)) return { messageId, complete: false, deliveredHere: false };
      return { messageId, complete: true, deliveredHere: await completeUpload(tx, messageId, now) };
    });
  } catch (err) {
    if (!(err instanceof UploadNeverCompletes)) throw err;
    await driver.transaction(async (tx) => {
      await tx.run('DELETE FROM mesh_chunks WHERE message_id = ?', [messageId]);
      await tx.run("DELETE FROM mesh_messages WHERE message_id = ? AND status = 'uploading'", [messageId]);
    });
    throw new UploadError(err.status, err.code, `${err.why}; the message was discarded with the chunks sent before: ${err.advice}.`);
  }
}

/**
 * All chunks in: deliver to this server's inbox when the recipient is processed here, else hold for download.
 * `single` is the body of a message sent in one chunk, not yet stored: delivered here, it is written once,
 * into the inbox, instead of as a chunk that is read back and deleted in the same transaction.
 */
async function completeUpload(tx: SqlExecutor, messageId: string, now: number, single?: Buffer): Promise<boolean> {
  const message = storedOf((await tx.get<MessageRow>('SELECT * FROM mesh_messages WHERE message_id = ?', [messageId]))!);
  const recipient = await tx.get<{ polled: number; password_sealed: string | null }>('SELECT polled, password_sealed FROM mesh_mailboxes WHERE mailbox_id = ?', [message.recipient]);
  const processedHere = recipient && recipient.password_sealed !== null && !Number(recipient.polled);
  if (!processedHere) {
    if (single) await tx.run('INSERT INTO mesh_chunks (message_id, chunk_no, body) VALUES (?, ?, ?)', [messageId, 1, single as unknown as SqlValue]);
    await tx.run("UPDATE mesh_messages SET status = 'accepted', accepted_ms = ? WHERE message_id = ?", [now, messageId]);
    return false;
  }
  const sent = single ?? await readBody(tx, messageId);
  const body = message.contentEncoding === 'gzip' ? inflated(sent, messageId) : sent;
  await storeInbound(tx, {
    messageId, mailbox: message.recipient, from: message.sender, to: message.recipient, workflowId: message.workflowId,
    ...(message.subject !== undefined ? { subject: message.subject } : {}),
    ...(message.localId !== undefined ? { localId: message.localId } : {}),
    ...(message.fileName !== undefined ? { fileName: message.fileName } : {}),
    ...(message.contentType !== undefined ? { contentType: message.contentType } : {}),
    body, receivedAt: now,
  });
  await tx.run("UPDATE mesh_messages SET status = 'acknowledged', accepted_ms = ?, acknowledged_ms = ? WHERE message_id = ?", [now, now, messageId]);
  if (!single) await tx.run('DELETE FROM mesh_chunks WHERE message_id = ?', [messageId]);
  return true;
}

/**
 * Puts a message this server took from its recipient's mailbox back there, for the mailbox's MESH client to
 * download (a handler said it is not this service's business). Only when the message came through the
 * built-in mailbox and a client has signed in to that mailbox; false otherwise (the caller dead-letters it).
 * Its chunks are cut again from the stored body, as many as it was sent in; the inbox row is closed as
 * held-for-client with `reason`, in the same transaction.
 */
export async function holdForMailboxClient(driver: SqlDriver, messageId: string, reason: string, now: number): Promise<boolean> {
  return driver.transaction((tx) => holdForMailboxClientIn(tx, messageId, reason, now));
}

/** holdForMailboxClient inside a transaction the caller runs (an inbound batch's). */
export async function holdForMailboxClientIn(tx: SqlExecutor, messageId: string, reason: string, now: number): Promise<boolean> {
  const held = await tx.get<{ chunk_count: number; body: Buffer | Uint8Array }>(
    `SELECT m.chunk_count, ib.body FROM mesh_messages m
       JOIN mesh_mailboxes b ON b.mailbox_id = m.recipient
       JOIN messaging_inbox i ON i.message_id = m.message_id AND i.mailbox = m.recipient
       JOIN messaging_inbox_bodies ib ON ib.message_id = m.message_id
     WHERE m.message_id = ? AND m.status = 'acknowledged' AND b.password_sealed IS NOT NULL AND b.client_seen_ms IS NOT NULL`,
    [messageId],
  );
  if (!held) return false;
  const chunks = splitIntoChunks(Buffer.from(held.body), Number(held.chunk_count));
  for (const [i, chunk] of chunks.entries()) {
    await tx.run('INSERT INTO mesh_chunks (message_id, chunk_no, body) VALUES (?, ?, ?) ON CONFLICT (message_id, chunk_no) DO NOTHING', [messageId, i + 1, chunk as unknown as SqlValue]);
  }
  // Cut again from the inflated body the inbox kept, so it goes out uncompressed.
  await tx.run("UPDATE mesh_messages SET status = 'accepted', acknowledged_ms = NULL, content_encoding = NULL WHERE message_id = ?", [messageId]);
  await tx.run("UPDATE messaging_inbox SET status = 'held-for-client', lease_until_ms = NULL, last_error = ?, finished_ms = ? WHERE message_id = ?", [reason, now, messageId]);
  return true;
}

/** `count` non-empty pieces (every chunk was non-empty, so the body has at least `count` bytes). */
function splitIntoChunks(body: Buffer, count: number): Buffer[] {
  const n = Math.max(1, Math.min(count, body.length));
  return Array.from({ length: n }, (_, i) => body.subarray(Math.floor((i * body.length) / n), Math.floor(((i + 1) * body.length) / n)));
}

/** The most a compressed message may inflate to, here or when the MESH client downloads one: a bound on what a few KB of gzip can ask this server to hold. */
export const MAX_INFLATED_BYTES = 100 * 1024 * 1024;

/** An upload that cannot complete, whatever chunks follow: the message is discarded, and the sender told `why`. */
class UploadNeverCompletes extends UploadError {
  constructor(status: number, code: string, readonly why: string, readonly advice: string) {
    super(status, code, `${why}; nothing was stored.`);
  }
}

/** Content said to be gzip that is not (or inflates too far): the upload cannot complete. */
class UndecodableUpload extends UploadNeverCompletes {
  constructor(why: string) {
    super(400, 'EPL-158', why, 'send it again, as a new message');
  }
}

/** A gzip message's content, for the workflow that processes it here; refused (nothing stored) when it is not gzip. */
function inflated(body: Buffer, messageId: string): Buffer {
  try {
    return gunzipSync(body, { maxOutputLength: MAX_INFLATED_BYTES });
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE' ? `inflates to more than ${MAX_INFLATED_BYTES / 1024 / 1024} MB` : 'is not gzip data';
    throw new UndecodableUpload(`Message ${messageId} was sent with Content-Encoding: gzip, but its content ${reason}`);
  }
}

async function readBody(db: SqlExecutor, messageId: string): Promise<Buffer> {
  const chunks = await db.all<{ body: Buffer | Uint8Array }>('SELECT body FROM mesh_chunks WHERE message_id = ? ORDER BY chunk_no', [messageId]);
  return Buffer.concat(chunks.map((c) => Buffer.from(c.body)));
}

/** The most ids one inbox page lists, as MESH pages them, unless the client asks for fewer or more (max_results). */
export const INBOX_PAGE_SIZE = 500;
export const MIN_INBOX_PAGE_SIZE = 10;
export const MAX_INBOX_PAGE_SIZE = 5000;

/** One page of a mailbox's inbox: ids oldest first, the token of the page after it (if any), and how many wait in all. */
export interface InboxPage { ids: string[]; continueFrom?: string; total: number }

/**
 * MESH's workflow_filter, as clients that share a mailbox with other systems list it: WF (equals), WF* (begins
 * with), *WF* (contains), each negated by a leading !. Case matters, as it does in MESH.
 */
export interface WorkflowFilter { match: 'equals' | 'begins' | 'contains'; text: string; negated: boolean }

export class BadWorkflowFilter extends Error {}

export function parseWorkflowFilter(filter: string): WorkflowFilter {
  const negated = filter.startsWith('!');
  const pattern = negated ? filter.slice(1) : filter;
  const contains = /^\*([^*]+)\*$/.exec(pattern);
  const begins = /^([^*]+)\*$/.exec(pattern);
  const match = contains ? 'contains' : begins ? 'begins' : /^[^*]+$/.test(pattern) ? 'equals' : undefined;
  if (!match) {
    throw new BadWorkflowFilter(`workflow_filter '${filter.slice(0, 60)}' is not one MESH takes: WF (equals), WF* (begins with) or *WF* (contains), each with a leading ! to negate.`);
  }
  return { match, text: contains?.[1] ?? begins?.[1] ?? pattern, negated };
}

/** SQL that both engines read alike: replace and substr compare exactly, where SQLite's LIKE ignores case. */
function workflowCondition(filter: WorkflowFilter): { sql: string; params: Array<string | number> } {
  const [sql, params]: [string, Array<string | number>] = filter.match === 'equals' ? ['workflow_id = ?', [filter.text]]
    : filter.match === 'begins' ? ['substr(workflow_id, 1, ?) = ?', [filter.text.length, filter.text]]
    : ["replace(workflow_id, ?, '') <> workflow_id", [filter.text]];
  return { sql: filter.negated ? `NOT (${sql})` : sql, params };
}

/**
 * The messages waiting in a mailbox's inbox, a page at a time, oldest first. `continueFrom` is the token the
 * previous page gave: the last id it listed and when that message was accepted, so a page follows on from
 * where the last one stopped even when messages before it were acknowledged meanwhile. A client that left
 * 500 messages of other workflows in the mailbox still reaches the ones behind them. With a workflow filter
 * only the messages it matches are listed, so a client that shares the mailbox never sees, downloads or
 * acknowledges another system's messages; approx_inbox_count still counts the whole inbox, as MESH's does.
 */
export async function inboxPage(db: SqlExecutor, mailbox: string, continueFrom?: string, pageSize = INBOX_PAGE_SIZE, workflow?: WorkflowFilter): Promise<InboxPage> {
  const after = continueFrom === undefined ? undefined : positionOf(continueFrom);
  const filter = workflow ? workflowCondition(workflow) : undefined;
  const rows = await db.all<{ message_id: string; accepted_ms: number }>(
    `SELECT message_id, accepted_ms FROM mesh_messages WHERE recipient = ? AND status = 'accepted'${after ? ' AND (accepted_ms > ? OR (accepted_ms = ? AND message_id > ?))' : ''}${filter ? ` AND ${filter.sql}` : ''}
     ORDER BY accepted_ms, message_id LIMIT ?`,
    [mailbox, ...(after ? [after.acceptedMs, after.acceptedMs, after.messageId] : []), ...(filter?.params ?? []), pageSize + 1],
  );
  const total = await db.get<{ n: number }>("SELECT COUNT(*) AS n FROM mesh_messages WHERE recipient = ? AND status = 'accepted'", [mailbox]);
  const page = rows.slice(0, pageSize);
  const last = page[page.length - 1];
  return {
    ids: page.map((r) => r.message_id),
    ...(rows.length > pageSize && last ? { continueFrom: tokenOf(Number(last.accepted_ms), last.message_id) } : {}),
    total: Number(total?.n ?? 0),
  };
}

/** Opaque to clients (MESH's own tokens are): base64url of "acceptedMs:messageId". */
function tokenOf(acceptedMs: number, messageId: string): string {
  return Buffer.from(`${acceptedMs}:${messageId}`, 'utf8').toString('base64url');
}

export class BadContinueFrom extends Error {}

function positionOf(token: string): { acceptedMs: number; messageId: string } {
  const m = /^(\d{1,16}):(.+)$/.exec(Buffer.from(token, 'base64url').toString('utf8'));
  if (!m) throw new BadContinueFrom(`continue_from '${token.slice(0, 60)}' is not a token an inbox page gave.`);
  return { acceptedMs: Number(m[1]), messageId: m[2]! };
}

/** One chunk of a message waiting in `mailbox`'s inbox, with its headers; undefined when there is none. */
export async function downloadChunk(db: SqlExecutor, mailbox: string, messageId: string, chunkNo: number): Promise<{ message: StoredMessage; body: Buffer } | undefined> {
  const message = await findMessage(db, messageId);
  if (!message || message.recipient !== mailbox || message.status !== 'accepted') return undefined;
  if (message.messageType === 'REPORT') return chunkNo === 1 ? { message, body: Buffer.alloc(0) } : undefined; // a report has no content
  const chunk = await db.get<{ body: Buffer | Uint8Array }>('SELECT body FROM mesh_chunks WHERE message_id = ? AND chunk_no = ?', [messageId, chunkNo]);
  return chunk ? { message, body: Buffer.from(chunk.body) } : undefined;
}

/** Acknowledges a message in `mailbox`'s inbox: it leaves the inbox; false when there was none. */
export async function acknowledge(driver: SqlDriver, mailbox: string, messageId: string, now: number): Promise<boolean> {
  return driver.transaction(async (tx) => {
    const changed = await tx.run("UPDATE mesh_messages SET status = 'acknowledged', acknowledged_ms = ? WHERE message_id = ? AND recipient = ? AND status = 'accepted'", [now, messageId, mailbox]);
    if (changed) await tx.run('DELETE FROM mesh_chunks WHERE message_id = ?', [messageId]);
    return changed > 0;
  });
}

/** A message `mailbox` sent, found by message id or by its local id (never a report MESH sent it about one). */
export async function trackSent(db: SqlExecutor, mailbox: string, by: { messageId?: string; localId?: string }): Promise<StoredMessage | undefined> {
  const row = by.messageId
    ? await db.get<MessageRow>("SELECT * FROM mesh_messages WHERE message_id = ? AND sender = ? AND message_type = 'DATA'", [by.messageId, mailbox])
    : await db.get<MessageRow>("SELECT * FROM mesh_messages WHERE sender = ? AND local_id = ? AND message_type = 'DATA' ORDER BY created_ms DESC LIMIT 1", [mailbox, by.localId ?? '']);
  return row ? storedOf(row) : undefined;
}
