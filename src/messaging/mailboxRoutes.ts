// The built-in MESH mailbox over HTTP, at /messageexchange/{mailbox}/…, as MESH clients call it:
//   GET      /messageexchange/_ping                               is it up (no credentials asked)
//   GET|POST /messageexchange/{mailbox}                          handshake
//   POST     …/outbox                    send (mex-To, mex-WorkflowID; mex-Chunk-Range 1:N for chunked)
//   POST     …/outbox/{id}/{chunk}       a further chunk
//   GET      …/inbox[?continue_from=…&max_results=…&workflow_filter=…]   ids waiting, 500 a page (links.next names the page after)
//   GET      …/inbox/{id}[/{chunk}]      download (206 while chunks remain)
//   PUT      …/inbox/{id}/status/acknowledged
//   GET      /messageexchange/endpointlookup/{ods}/{workflow}   an organisation's mailbox
//   GET      …/outbox/tracking?messageID=… (or ?localID=…, or /outbox/tracking/{message id or local id})
// A message left uncollected expires (mailboxExpiry.ts): tracking says so, and its sender gets a REPORT.
// Every other call carries an NHSMESH header for the mailbox in its path. Errors are MESH-style JSON.
import { randomUUID } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { isTemporaryOutage, OUTAGE_RETRY_AFTER_SECONDS, type SqlDriver } from '../record/index.ts';
import { hmacMatches, meshHmac, parseMeshAuthorisation, parseMeshTimestamp } from './meshAuth.ts';
import { findMailbox, mailboxOfOrganisation, unsealPassword } from './mailboxes.ts';
import { NOT_COLLECTED } from './mailboxExpiry.ts';
import {
  BadContinueFrom, BadWorkflowFilter, INBOX_PAGE_SIZE, MAX_INBOX_PAGE_SIZE, MAX_INFLATED_BYTES, MESH_SIZE_LIMITS, MIN_INBOX_PAGE_SIZE, UploadError, acknowledge, addChunk, downloadChunk, findMessage, inboxPage,
  parseWorkflowFilter, startUpload, trackSent, type StoredMessage, type Upload, type WorkflowFilter,
} from './mailboxStore.ts';

export const MESH_JSON = 'application/vnd.mesh.v2+json';
const PING_PATH = '/messageexchange/_ping';

export interface MailboxRouteOptions {
  driver: SqlDriver;
  sharedKey: string;
  clockSkewMinutes: number;
  /** How long a message waits in an inbox uncollected before it expires (tracking says when). */
  expiryMs: number;
  now: () => number;
  /** Told when a message was delivered into this server's own inbox. */
  delivered(): void;
}

export class MeshError extends Error {
  constructor(readonly status: number, readonly code: string, message: string, readonly event = 'SEND') {
    super(message);
  }
}

function errorBody(err: MeshError, messageId?: string) {
  // v1 clients read errorEvent/errorCode/errorDescription; v2 clients read detail[].
  return { errorEvent: err.event, errorCode: err.code, errorDescription: err.message, ...(messageId ? { messageID: messageId } : {}), detail: [{ event: err.event, code: err.code, msg: err.message }] };
}

function header(req: FastifyRequest, name: string): string | undefined {
  const value = req.headers[name];
  const text = Array.isArray(value) ? value[0] : value;
  return text?.trim() || undefined;
}

/**
 * Checks the NHSMESH header: known hosted mailbox = path mailbox, fresh timestamp, right HMAC, unused nonce.
 * The first time a mailbox signs in it is marked as used by a client (`seen` spares the write after that).
 */
async function checkAuthorisation(req: FastifyRequest, options: MailboxRouteOptions, seen: Set<string>): Promise<string> {
  const auth = parseMeshAuthorisation(header(req, 'authorization'));
  if (!auth) throw new MeshError(401, 'EPL-101', 'Send an Authorization header: NHSMESH mailbox:nonce:nonce_count:yyyyMMddHHmm:hmac.', 'AUTH');
  // The endpoint lookup names no mailbox in its path: any mailbox hosted here may ask it.
  const inPath = (req.params as { mailbox?: string }).mailbox;
  const mailboxParam = String(inPath ?? auth.mailbox).toUpperCase();
  if (auth.mailbox.toUpperCase() !== mailboxParam) throw new MeshError(403, 'EPL-102', `The Authorization header is for mailbox ${auth.mailbox}, not ${mailboxParam}.`, 'AUTH');
  const at = parseMeshTimestamp(auth.timestamp);
  const now = options.now();
  const skewMs = options.clockSkewMinutes * 60_000;
  if (at === undefined) throw new MeshError(403, 'EPL-103', `'${auth.timestamp}' is not a timestamp (yyyyMMddHHmm, UTC).`, 'AUTH');
  if (Math.abs(now - at) > skewMs) throw new MeshError(403, 'EPL-103', `The timestamp ${auth.timestamp} is more than ${options.clockSkewMinutes} minutes from this server's clock (UTC); check the sender's clock.`, 'AUTH');
  const mailbox = await findMailbox(options.driver, mailboxParam);
  const password = mailbox?.sealedPassword ? unsealPassword(mailbox.sealedPassword, options.sharedKey) : undefined;
  // One answer for an unknown mailbox and a wrong password, so callers cannot probe for mailbox ids.
  if (!password || !hmacMatches(meshHmac(options.sharedKey, auth, password), auth.hmac)) {
    throw new MeshError(403, 'EPL-104', `The Authorization header was refused for mailbox ${mailboxParam}: check the mailbox id, password and shared key.`, 'AUTH');
  }
  // A nonce is good once within the time its timestamp is accepted; after that the timestamp check refuses it.
  const fresh = await options.driver.transaction(async (tx) => {
    await tx.run('DELETE FROM mesh_nonces WHERE expires_ms < ?', [now]);
    if (!seen.has(mailboxParam)) await tx.run('UPDATE mesh_mailboxes SET client_seen_ms = ? WHERE mailbox_id = ? AND client_seen_ms IS NULL', [now, mailboxParam]);
    return tx.run('INSERT INTO mesh_nonces (mailbox_id, nonce, nonce_count, expires_ms) VALUES (?, ?, ?, ?) ON CONFLICT (mailbox_id, nonce, nonce_count) DO NOTHING', [mailboxParam, auth.nonce, auth.nonceCount, at + skewMs + 60_000]);
  });
  seen.add(mailboxParam);
  if (!fresh) throw new MeshError(403, 'EPL-105', 'This Authorization header (nonce and nonce count) has been used before; make a new one for each request.', 'AUTH');
  return mailboxParam;
}

function messageHeaders(reply: FastifyReply, m: StoredMessage, chunkNo: number, gzip: boolean): void {
  reply.header('mex-messageid', m.messageId).header('mex-from', m.sender).header('mex-to', m.recipient).header('mex-workflowid', m.workflowId)
    .header('mex-messagetype', m.messageType).header('mex-chunk-range', `${chunkNo}:${m.chunkCount}`).header('content-type', m.contentType ?? 'application/octet-stream');
  if (m.messageType === 'REPORT') {
    // As MESH's error reports say it: which message was not delivered, and why.
    reply.header('mex-linkedmsgid', m.linkedMessageId ?? '').header('mex-statuscode', NOT_COLLECTED.code).header('mex-statusevent', NOT_COLLECTED.event)
      .header('mex-statusdescription', m.statusDescription ?? '').header('mex-statussuccess', 'ERROR').header('mex-statustimestamp', stamp(m.createdAt) ?? '');
  }
  if (m.contentType !== undefined) reply.header('mex-content-type', m.contentType);
  if (m.subject !== undefined) reply.header('mex-subject', m.subject);
  if (m.localId !== undefined) reply.header('mex-localid', m.localId);
  if (m.fileName !== undefined) reply.header('mex-filename', m.fileName);
  if (m.checksum !== undefined) reply.header('mex-content-checksum', m.checksum);
  if (gzip) reply.header('content-encoding', 'gzip').header('mex-content-compressed', 'Y');
}

/** Whether the downloader takes gzip: Accept-Encoding names gzip, x-gzip or *, not at q=0. */
function acceptsGzip(req: FastifyRequest): boolean {
  return (header(req, 'accept-encoding') ?? '').split(',').some((part) => {
    const [coding, ...params] = part.toLowerCase().split(';').map((p) => p.trim());
    const q = params.map((p) => /^q=([\d.]+)$/.exec(p)?.[1]).find((v) => v !== undefined);
    return ['gzip', 'x-gzip', '*'].includes(coding ?? '') && (q === undefined || Number(q) > 0);
  });
}

/**
 * A chunk as its downloader can read it. MESH has each chunk of a compressed message gzipped on its own, and
 * inflates it for a downloader that does not take gzip (curl, or a client that saves what it is sent). A
 * chunk that is not whole gzip by itself (its sender cut one gzip stream into chunks) can only go as it came.
 */
function readableChunk(req: FastifyRequest, m: StoredMessage, body: Buffer): { body: Buffer; gzip: boolean } {
  if (!m.contentEncoding || acceptsGzip(req)) return { body, gzip: Boolean(m.contentEncoding) };
  try {
    return { body: gunzipSync(body, { maxOutputLength: MAX_INFLATED_BYTES }), gzip: false };
  } catch {
    return { body, gzip: true };
  }
}

/**
 * What the content is. MESH clients send a chunked message's chunks as application/octet-stream and say what
 * the whole is in Mex-Content-Type, which MESH passes on in preference to Content-Type.
 */
function contentTypeOf(req: FastifyRequest): string | undefined {
  return header(req, 'mex-content-type') ?? header(req, 'content-type');
}

/** Whether the caller asked for MESH API v2's answers (Accept: application/vnd.mesh.v2+json, or later). */
function acceptsMeshV2(req: FastifyRequest): boolean {
  const version = /application\/vnd\.mesh\.v(\d+)\+json/i.exec(header(req, 'accept') ?? '')?.[1];
  return version !== undefined && Number(version) >= 2;
}

/**
 * A sent message's tracking. MESH v2 names the status in lower case (uploading, accepted, acknowledged, and
 * here expired) and says status_success; v1 callers have always had it capitalised here, so they keep that.
 */
function trackingBody(m: StoredMessage, v2: boolean, expiryMs: number) {
  const status = v2 ? m.status : m.status.charAt(0).toUpperCase() + m.status.slice(1);
  const expired = m.status === 'expired';
  // MESH gives the time a waiting message will leave the inbox uncollected, and the status of one that did.
  const expiresAt = m.status === 'accepted' && m.acceptedAt !== undefined ? m.acceptedAt + expiryMs : m.expiredAt;
  return {
    message_id: m.messageId, local_id: m.localId ?? null, sender: m.sender, recipient: m.recipient, workflow_id: m.workflowId,
    status, status_code: expired ? NOT_COLLECTED.code : null, chunk_count: m.chunkCount, file_name: m.fileName ?? null, subject: m.subject ?? null,
    ...(v2
      ? {
        filename: m.fileName ?? null, status_success: !expired, status_event: expired ? NOT_COLLECTED.event : null, status_description: m.statusDescription ?? null,
        status_timestamp: expired ? new Date(m.expiredAt!).toISOString() : null, expiry_time: expiresAt !== undefined ? new Date(expiresAt).toISOString() : null,
      }
      : { ...v1Tracking(m), statusCode: expired ? NOT_COLLECTED.code : null, statusEvent: expired ? NOT_COLLECTED.event : null, statusDescription: m.statusDescription ?? null, statusSuccess: expired ? 'ERROR' : null, expiryTime: stamp(expiresAt) }),
    upload_timestamp: new Date(m.createdAt).toISOString(),
    accepted_timestamp: m.acceptedAt !== undefined ? new Date(m.acceptedAt).toISOString() : null,
    acknowledged_timestamp: m.acknowledgedAt !== undefined ? new Date(m.acknowledgedAt).toISOString() : null,
  };
}

/** yyyyMMddHHmmss, as MESH v1 gives times. */
function stamp(at: number | undefined): string | null {
  return at === undefined ? null : new Date(at).toISOString().replace(/\D/g, '').slice(0, 14);
}

/** The names MESH v1's tracking answer gives (camel case, yyyyMMddHHmmss times), which v1 clients read. */
function v1Tracking(m: StoredMessage) {
  return {
    messageId: m.messageId, dtsId: m.messageId, localId: m.localId ?? null, workflowId: m.workflowId, fileName: m.fileName ?? null,
    messageType: 'DATA', chunkCount: m.chunkCount, checksum: m.checksum ?? null, contentEncoding: m.contentEncoding ?? null,
    uploadTimestamp: stamp(m.createdAt), downloadTimestamp: stamp(m.acknowledgedAt),
  };
}

function queryText(query: Record<string, unknown>, name: string): string | undefined {
  const value = query[name];
  const text = Array.isArray(value) ? value[0] : value;
  return typeof text === 'string' && text.trim() ? text.trim() : undefined;
}

/** The inbox list's query, as MESH v2 takes it: continue_from, max_results (10 to 5000), workflow_filter. */
function inboxListing(query: Record<string, unknown>): { continueFrom?: string; pageSize: number; workflow?: WorkflowFilter; kept: Record<string, string> } {
  const maxResults = queryText(query, 'max_results');
  const filter = queryText(query, 'workflow_filter');
  const pageSize = maxResults === undefined ? INBOX_PAGE_SIZE : Number(maxResults);
  if (!(Number.isInteger(pageSize) && pageSize >= MIN_INBOX_PAGE_SIZE && pageSize <= MAX_INBOX_PAGE_SIZE)) {
    throw new MeshError(400, 'EPL-154', `max_results must be a whole number from ${MIN_INBOX_PAGE_SIZE} to ${MAX_INBOX_PAGE_SIZE}, not '${String(maxResults).slice(0, 20)}'.`, 'RECEIVE');
  }
  let workflow: WorkflowFilter | undefined;
  try {
    workflow = filter === undefined ? undefined : parseWorkflowFilter(filter);
  } catch (err) {
    throw err instanceof BadWorkflowFilter ? new MeshError(400, 'EPL-154', err.message, 'RECEIVE') : err;
  }
  return {
    continueFrom: queryText(query, 'continue_from'), pageSize, workflow,
    kept: { ...(maxResults !== undefined ? { max_results: String(pageSize) } : {}), ...(filter !== undefined ? { workflow_filter: filter } : {}) },
  };
}

/**
 * A message is sent from the mailbox that signed in. MESH refuses a Mex-From naming another (its error 07,
 * Invalid From Address), rather than send as that mailbox or quietly as this one: either way the recipient
 * would answer someone the sender did not mean. Without Mex-From the sender is the mailbox signed in.
 */
function checkFrom(req: FastifyRequest, signedIn: string): void {
  const from = header(req, 'mex-from');
  if (from !== undefined && from.toUpperCase() !== signedIn) {
    throw new MeshError(417, '07', `Invalid From Address: mex-From is ${from.slice(0, 40)}, but the request signed in as mailbox ${signedIn}; a message is sent from the mailbox that signs in. Nothing was sent.`);
  }
}

function positiveInt(text: string, what: string): number {
  if (!/^[1-9]\d{0,5}$/.test(text)) throw new MeshError(400, 'EPL-154', `${what} must be a whole number from 1, not '${text}'.`);
  return Number(text);
}

export async function mailboxRoutes(app: FastifyInstance, options: MailboxRouteOptions): Promise<void> {
  const clientsSeen = new Set<string>();
  // The NHSMESH header is checked (and its nonce used up) once, before the body is read: a caller without
  // valid credentials is refused without its message being received, and so is one sending as another
  // mailbox (mex-From). Handlers take the mailbox from here.
  const signedIn = new WeakMap<FastifyRequest, string>();
  app.addHook('onRequest', async (req, reply) => {
    if (req.routeOptions.url === PING_PATH) return;
    try {
      const mailbox = await checkAuthorisation(req, options, clientsSeen);
      if (req.method === 'POST' && req.routeOptions.url?.startsWith('/messageexchange/:mailbox/outbox')) checkFrom(req, mailbox);
      signedIn.set(req, mailbox);
    } catch (err) {
      if (req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0) reply.header('connection', 'close'); // nor is the unread body drained
      throw err;
    }
  });
  const authenticate = async (req: FastifyRequest) => {
    const mailbox = signedIn.get(req);
    if (mailbox === undefined) throw new Error('A mailbox route ran without its authentication hook.');
    return mailbox;
  };
  // A MESH body is whatever the sender sent (XML, JSON, zip…): take every content type as raw bytes.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));

  app.setErrorHandler((err, _req, reply) => {
    const mesh = err instanceof MeshError ? err
      : err instanceof UploadError ? new MeshError(err.status, err.code, err.message)
      : (err as { statusCode?: number }).statusCode === 413 ? new MeshError(413, 'EPL-156', `The request is larger than the ${MESH_SIZE_LIMITS.chunkBytes / 1024 / 1024} MB MESH takes in one; send the message in smaller chunks (mex-Chunk-Range). Nothing was stored.`)
      : isTemporaryOutage(err) ? new MeshError(503, 'EPL-503', 'The mailbox cannot be reached just now; try again shortly.', 'SERVER')
      : undefined;
    if (!mesh || mesh.status === 503) reply.log.error(err);
    if (mesh?.status === 503) reply.header('retry-after', String(OUTAGE_RETRY_AFTER_SECONDS));
    const e = mesh ?? new MeshError(500, 'EPL-500', 'The mailbox could not complete the request; try again.', 'SERVER');
    reply.code(e.status).header('content-type', MESH_JSON).send(errorBody(e));
  });

  // Clients and load balancers check MESH is up here before signing in; the mesh-client library sends its
  // mailbox's NHSMESH header anyway, which this path does not read (nor spend a nonce of).
  app.get(PING_PATH, async (_req, reply) => {
    reply.header('content-type', MESH_JSON);
    return { status: 'running', outcome: 'Yes' };
  });

  // MESH's endpoint lookup: the mailbox of an organisation (ODS code) for a workflow. This server knows each
  // mailbox's organisation but not which workflows it takes, so it answers with the organisation's mailbox
  // (the one processed here first), whatever the workflow; none when it knows no mailbox of that organisation.
  app.get('/messageexchange/endpointlookup/:ods/:workflow', async (req, reply) => {
    await authenticate(req);
    const { ods } = req.params as { ods: string; workflow: string };
    const mailbox = await mailboxOfOrganisation(options.driver, ods);
    reply.header('content-type', MESH_JSON);
    return {
      query_id: randomUUID(),
      results: mailbox ? [{ endpoint_type: 'MESH', description: `Mailbox of ${ods.trim().toUpperCase()}`, address: mailbox }] : [],
    };
  });

  const handshake = async (req: FastifyRequest) => {
    const mailbox = await authenticate(req);
    return { mailbox_id: mailbox };
  };
  app.get('/messageexchange/:mailbox', handshake);
  app.post('/messageexchange/:mailbox', handshake);

  // A message or chunk may be as large as MESH takes in one request, whatever the server's limit for other
  // bodies (CAREBRIDGE_BODY_LIMIT_MB); one declared larger is refused before it is read.
  const meshSized = { bodyLimit: MESH_SIZE_LIMITS.chunkBytes };
  app.post('/messageexchange/:mailbox/outbox', meshSized, async (req, reply) => {
    const sender = await authenticate(req);
    const to = header(req, 'mex-to')?.toUpperCase();
    const workflowId = header(req, 'mex-workflowid');
    if (!to) throw new MeshError(417, 'EPL-151', 'Say who the message is for in mex-To (a mailbox id).');
    if (!workflowId) throw new MeshError(417, 'EPL-152', 'Say what the message is in mex-WorkflowID.');
    const recipient = await findMailbox(options.driver, to);
    if (!recipient?.hosted) throw new MeshError(417, 'EPL-151', `Mailbox ${to} is not hosted by this MESH mailbox server.`);
    const range = header(req, 'mex-chunk-range') ?? '1:1';
    const m = /^1:(\d{1,6})$/.exec(range);
    if (!m || Number(m[1]) < 1) throw new MeshError(400, 'EPL-154', `mex-Chunk-Range on a new message must be 1:N (N chunks in all), not '${range}'.`);
    const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    if (!body.length) throw new MeshError(400, 'EPL-157', 'The message has no content.');
    const encoding = header(req, 'content-encoding')?.toLowerCase();
    if (encoding && encoding !== 'gzip' && encoding !== 'identity') throw new MeshError(415, 'EPL-158', `Content-Encoding '${encoding}' is not one MESH takes: send the content as it is, or gzip it (Content-Encoding: gzip).`);
    const upload = await startUpload(options.driver, {
      sender, recipient: to, workflowId,
      subject: header(req, 'mex-subject'), localId: header(req, 'mex-localid'), fileName: header(req, 'mex-filename'),
      contentType: contentTypeOf(req), checksum: header(req, 'mex-content-checksum'),
      ...(encoding === 'gzip' ? { contentEncoding: 'gzip' as const } : {}),
    }, Number(m[1]), body, options.now());
    if (upload.deliveredHere) options.delivered();
    reply.code(202).header('content-type', MESH_JSON);
    return { message_id: upload.messageId, messageID: upload.messageId };
  });

  app.post('/messageexchange/:mailbox/outbox/:messageId/:chunk', meshSized, async (req, reply) => {
    const sender = await authenticate(req);
    const { messageId, chunk } = req.params as { messageId: string; chunk: string };
    const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    if (!body.length) throw new MeshError(400, 'EPL-157', 'The chunk has no content.');
    const upload: Upload = await addChunk(options.driver, sender, messageId, positiveInt(chunk, 'The chunk number'), body, options.now());
    if (upload.deliveredHere) options.delivered();
    reply.code(202).header('content-type', MESH_JSON);
    return { message_id: messageId, messageID: messageId, blocksReceived: Number(chunk) };
  });

  app.get('/messageexchange/:mailbox/inbox', async (req, reply) => {
    const mailbox = await authenticate(req);
    const listing = inboxListing(req.query as Record<string, unknown>);
    const page = await inboxPage(options.driver, mailbox, listing.continueFrom, listing.pageSize, listing.workflow).catch((err) => {
      throw err instanceof BadContinueFrom ? new MeshError(400, 'EPL-154', err.message, 'RECEIVE') : err;
    });
    const self = `/messageexchange/${encodeURIComponent(mailbox)}/inbox`;
    // Clients follow links.next as given, so it keeps the filter and page size they asked for: without them
    // the second page would list every workflow's messages to a client that asked for one.
    const kept = new URLSearchParams(listing.kept).toString();
    const link = (continueFrom?: string) => {
      const query = [continueFrom ? `continue_from=${encodeURIComponent(continueFrom)}` : '', kept].filter(Boolean).join('&');
      return query ? `${self}?${query}` : self;
    };
    reply.header('content-type', MESH_JSON);
    // As MESH v2 answers: links.next only while more pages follow; approx_inbox_count counts every page.
    return {
      messages: page.ids,
      approx_inbox_count: page.total,
      links: { self: link(), ...(page.continueFrom ? { next: link(page.continueFrom) } : {}) },
    };
  });

  const download = async (req: FastifyRequest, reply: FastifyReply) => {
    const mailbox = await authenticate(req);
    const { messageId, chunk } = req.params as { messageId: string; chunk?: string };
    const chunkNo = chunk === undefined ? 1 : positiveInt(chunk, 'The chunk number');
    const found = await downloadChunk(options.driver, mailbox, messageId, chunkNo);
    if (!found) throw new MeshError(404, 'EPL-153', `Message ${messageId}${chunk ? ` chunk ${chunkNo}` : ''} is not in the inbox of mailbox ${mailbox}.`, 'RECEIVE');
    const chunkToSend = readableChunk(req, found.message, found.body);
    messageHeaders(reply, found.message, chunkNo, chunkToSend.gzip);
    reply.code(chunkNo < found.message.chunkCount ? 206 : 200);
    return chunkToSend.body;
  };
  app.get('/messageexchange/:mailbox/inbox/:messageId', download);
  app.get('/messageexchange/:mailbox/inbox/:messageId/:chunk', download);

  app.put('/messageexchange/:mailbox/inbox/:messageId/status/acknowledged', async (req, reply) => {
    const mailbox = await authenticate(req);
    const { messageId } = req.params as { messageId: string };
    if (!(await acknowledge(options.driver, mailbox, messageId, options.now()))) {
      // Acknowledging twice (a lost answer, retried) is fine; acknowledging someone else's message is not.
      const known = await findMessage(options.driver, messageId);
      if (!known || known.recipient !== mailbox || known.status !== 'acknowledged') throw new MeshError(404, 'EPL-153', `Message ${messageId} is not in the inbox of mailbox ${mailbox}.`, 'ACK');
    }
    reply.header('content-type', MESH_JSON);
    return { message_id: messageId, messageId };
  });

  const tracking = async (req: FastifyRequest, reply: FastifyReply) => {
    const mailbox = await authenticate(req);
    const query = req.query as Record<string, string | undefined>;
    // MESH's /outbox/tracking/{id} names a local id (a deprecated form still in use); it was ours for a message id.
    const inPath = (req.params as { id?: string }).id;
    const messageId = query.messageID ?? query.messageId ?? query.message_id;
    const localId = query.localID ?? query.localId ?? query.local_id;
    if (!inPath && !messageId && !localId) throw new MeshError(400, 'EPL-154', 'Say which message to track: ?messageID=… or ?localID=….', 'TRACK');
    const found = inPath
      ? (await trackSent(options.driver, mailbox, { messageId: inPath })) ?? (await trackSent(options.driver, mailbox, { localId: inPath }))
      : await trackSent(options.driver, mailbox, messageId ? { messageId } : { localId });
    const asked = inPath ?? messageId ?? `with local id ${localId}`;
    if (!found) throw new MeshError(404, 'EPL-153', `Mailbox ${mailbox} sent no message ${asked}${inPath ? ' (as message id or local id)' : ''}.`, 'TRACK');
    reply.header('content-type', MESH_JSON);
    return trackingBody(found, acceptsMeshV2(req), options.expiryMs);
  };
  app.get('/messageexchange/:mailbox/outbox/tracking', tracking);
  app.get('/messageexchange/:mailbox/outbox/tracking/:id', tracking);
}
