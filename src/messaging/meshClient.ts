// A client for an external MESH mailbox (the national MESH, or another CareBridge's built-in one):
// list, download (every chunk), acknowledge, send (in chunks when large). TLS with a client certificate
// when one is configured, as the national MESH requires.
import { readFileSync } from 'node:fs';
import { arch, release, type } from 'node:os';
import { gunzipSync } from 'node:zlib';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { Agent as HttpAgent, request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import type { MeshClientConfig } from '../config.ts';
import { meshAuthorisationHeader } from './meshAuth.ts';
import { MAX_INFLATED_BYTES } from './mailboxStore.ts';
import type { MeshReport, OutboundMessage } from './contract.ts';

export interface MeshReply { status: number; headers: IncomingHttpHeaders; body: Buffer }

export interface DownloadedMessage {
  messageId: string;
  from: string;
  to: string;
  workflowId: string;
  subject?: string;
  localId?: string;
  fileName?: string;
  contentType?: string;
  /** 'gzip' until downloadRest has inflated the joined chunks. */
  contentEncoding?: 'gzip';
  body: Buffer;
  /** A report (mex-MessageType REPORT), not data: MESH saying a message sent from this mailbox was not delivered. */
  report?: MeshReport;
}

const TIMEOUT_MS = 30_000;

/** Who is calling, as MESH's handshake asks (Mex-ClientVersion is "name==version"). */
function clientVersion(): string {
  try {
    return `CareBridge==${JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')).version}`;
  } catch {
    return 'CareBridge==unknown';
  }
}

/** The headers that say what a MESH report is about. */
function reportOf(h: (name: string) => string | undefined): MeshReport {
  const report: MeshReport = {};
  const fields: Array<[keyof MeshReport, string]> = [['linkedMessageId', 'mex-linkedmsgid'], ['statusCode', 'mex-statuscode'], ['statusEvent', 'mex-statusevent'], ['statusDescription', 'mex-statusdescription']];
  for (const [field, name] of fields) {
    const value = h(name);
    if (value) report[field] = value;
  }
  return report;
}

/**
 * A message downloaded whole whose content cannot be decoded (it says gzip and is not): downloading it again
 * gives the same bytes, so the poller keeps it as received, dead-lettered with `message` as the reason.
 */
export class UndecodableMessage extends Error {
  constructor(readonly received: Omit<DownloadedMessage, 'contentEncoding'>, message: string) {
    super(message);
  }
}

export class MeshClient {
  private readonly agent: HttpAgent | HttpsAgent;
  private readonly base: URL;

  constructor(private readonly config: MeshClientConfig) {
    this.base = new URL(config.url);
    const tls = config.tls;
    this.agent = this.base.protocol === 'https:'
      ? new HttpsAgent({ keepAlive: true, ...(tls ? { cert: readFileSync(tls.certFile), key: readFileSync(tls.keyFile), ...(tls.caFile ? { ca: readFileSync(tls.caFile) } : {}) } : {}) })
      : new HttpAgent({ keepAlive: true });
  }

  get mailbox(): string {
    return this.config.mailbox;
  }

  private path(suffix: string): string {
    return `${this.base.pathname.replace(/\/+$/, '')}/messageexchange/${encodeURIComponent(this.config.mailbox)}${suffix}`;
  }

  private call(method: string, suffix: string, headers: Record<string, string> = {}, body?: Buffer): Promise<MeshReply> {
    const request = this.base.protocol === 'https:' ? httpsRequest : httpRequest;
    const allHeaders: Record<string, string | number> = {
      accept: 'application/vnd.mesh.v2+json',
      authorization: meshAuthorisationHeader(this.config.mailbox, this.config.password, this.config.sharedKey),
      ...headers,
      ...(body ? { 'content-length': body.length } : {}),
    };
    return new Promise((resolve, reject) => {
      const req = request({ protocol: this.base.protocol, hostname: this.base.hostname, port: this.base.port, method, path: this.path(suffix), headers: allHeaders, agent: this.agent, timeout: TIMEOUT_MS }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      });
      req.on('timeout', () => req.destroy(new Error(`MESH at ${this.base.origin} did not answer within ${TIMEOUT_MS / 1000} s.`)));
      req.on('error', reject);
      req.end(body);
    });
  }

  private failure(what: string, reply: MeshReply): Error {
    let detail = reply.body.toString('utf8').slice(0, 300);
    try {
      const json = JSON.parse(detail);
      detail = json.errorDescription ?? json.detail?.[0]?.msg ?? detail;
    } catch { /* not JSON: keep the text */ }
    return new Error(`MESH ${what} failed with HTTP ${reply.status}: ${detail}`);
  }

  /**
   * One page of the inbox list (MESH v2: at most 500 ids, and links.next while more follow), from the start
   * or from the token the previous page gave. Only continue_from is taken from links.next: the link is
   * relative to MESH's own root, not to the URL configured here (a proxy, a path prefix), and following an
   * absolute link would send this mailbox's credentials wherever an answer pointed.
   */
  async inboxPage(continueFrom?: string): Promise<{ ids: string[]; continueFrom?: string; approxCount?: number }> {
    const reply = await this.call('GET', `/inbox${continueFrom ? `?continue_from=${encodeURIComponent(continueFrom)}` : ''}`);
    if (reply.status !== 200) throw this.failure('inbox list', reply);
    const answer = JSON.parse(reply.body.toString('utf8')) as { messages?: string[]; links?: { next?: string }; approx_inbox_count?: number };
    const next = answer.links?.next ? new URL(answer.links.next, 'http://mesh.invalid').searchParams.get('continue_from') || undefined : undefined;
    return {
      ids: answer.messages ?? [],
      ...(next ? { continueFrom: next } : {}),
      ...(typeof answer.approx_inbox_count === 'number' ? { approxCount: answer.approx_inbox_count } : {}),
    };
  }

  /** The headers and first chunk only, to decide whether to take a message before fetching the rest. */
  async downloadFirst(messageId: string): Promise<{ message: DownloadedMessage; chunkCount: number }> {
    const reply = await this.call('GET', `/inbox/${encodeURIComponent(messageId)}`);
    if (reply.status !== 200 && reply.status !== 206) throw this.failure(`download of ${messageId}`, reply);
    const h = (name: string) => {
      const value = reply.headers[name];
      return (Array.isArray(value) ? value[0] : value) || undefined;
    };
    const range = /^(\d+):(\d+)$/.exec(h('mex-chunk-range') ?? '1:1');
    const report = h('mex-messagetype')?.toUpperCase() === 'REPORT' ? reportOf(h) : undefined;
    // MESH says what a chunked message is in Mex-Content-Type; its Content-Type is then application/octet-stream.
    const contentType = h('mex-content-type') ?? h('content-type');
    return {
      // A report has no content: nothing more to fetch, whatever its chunk range says.
      chunkCount: range && !report ? Number(range[2]) : 1,
      message: {
        messageId: h('mex-messageid') ?? messageId,
        from: h('mex-from') ?? '',
        to: h('mex-to') ?? this.config.mailbox,
        workflowId: h('mex-workflowid') ?? '',
        ...(h('mex-subject') ? { subject: h('mex-subject') } : {}),
        ...(h('mex-localid') ? { localId: h('mex-localid') } : {}),
        ...(h('mex-filename') ? { fileName: h('mex-filename') } : {}),
        ...(contentType ? { contentType } : {}),
        ...(h('content-encoding')?.toLowerCase() === 'gzip' && !report ? { contentEncoding: 'gzip' as const } : {}),
        body: reply.body,
        ...(report ? { report } : {}),
      },
    };
  }

  async downloadRest(first: { message: DownloadedMessage; chunkCount: number }): Promise<DownloadedMessage> {
    const parts = [first.message.body];
    for (let n = 2; n <= first.chunkCount; n++) {
      const reply = await this.call('GET', `/inbox/${encodeURIComponent(first.message.messageId)}/${n}`);
      if (reply.status !== 200 && reply.status !== 206) throw this.failure(`download of ${first.message.messageId} chunk ${n}`, reply);
      parts.push(reply.body);
    }
    const { contentEncoding, ...message } = first.message;
    const joined = Buffer.concat(parts);
    // MESH has each chunk gzipped on its own (and some senders cut one gzip stream instead): joined, either
    // is gzip that inflates whole, where a piece of one stream would not inflate by itself.
    if (!contentEncoding) return { ...message, body: joined };
    try {
      return { ...message, body: gunzipSync(joined, { maxOutputLength: MAX_INFLATED_BYTES }) };
    } catch (err) {
      const why = (err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE' ? `it inflates to more than ${MAX_INFLATED_BYTES / 1024 / 1024} MB` : (err as Error).message;
      throw new UndecodableMessage({ ...message, body: joined }, `MESH message ${message.messageId} came with Content-Encoding: gzip but could not be inflated (${why})`);
    }
  }

  /**
   * Validates the mailbox (MESH's handshake), which MESH asks every client to do once a day: it is how Spine
   * knows a quiet mailbox is still in use.
   */
  async handshake(): Promise<void> {
    const reply = await this.call('POST', '', {
      'mex-clientversion': clientVersion(), 'mex-osname': type(), 'mex-osversion': release(), 'mex-osarchitecture': arch(), 'mex-javaversion': 'N/A',
    });
    if (reply.status !== 200) throw this.failure('handshake', reply);
  }

  async acknowledge(messageId: string): Promise<void> {
    const reply = await this.call('PUT', `/inbox/${encodeURIComponent(messageId)}/status/acknowledged`);
    if (reply.status !== 200) throw this.failure(`acknowledgement of ${messageId}`, reply);
  }

  /** Sends from this client's mailbox; chunks of at most chunkBytes. */
  async send(msg: Omit<OutboundMessage, 'from'>): Promise<{ messageId: string }> {
    const size = this.config.chunkBytes;
    const chunkCount = Math.max(1, Math.ceil(msg.body.length / size));
    const chunk = (n: number) => msg.body.subarray((n - 1) * size, n * size);
    const headers: Record<string, string> = {
      'content-type': msg.contentType ?? 'application/octet-stream',
      ...(msg.contentType ? { 'mex-content-type': msg.contentType } : {}),
      'mex-to': msg.to,
      'mex-workflowid': msg.workflowId,
      'mex-chunk-range': `1:${chunkCount}`,
      ...(msg.subject ? { 'mex-subject': msg.subject } : {}),
      ...(msg.localId ? { 'mex-localid': msg.localId } : {}),
      ...(msg.fileName ? { 'mex-filename': msg.fileName } : {}),
    };
    const first = await this.call('POST', '/outbox', headers, chunk(1));
    if (first.status !== 202 && first.status !== 200) throw this.failure(`send to ${msg.to}`, first);
    const answer = JSON.parse(first.body.toString('utf8')) as { message_id?: string; messageID?: string };
    const messageId = answer.message_id ?? answer.messageID;
    if (!messageId) throw new Error('MESH accepted the message but gave no message id.');
    for (let n = 2; n <= chunkCount; n++) {
      const reply = await this.call('POST', `/outbox/${encodeURIComponent(messageId)}/${n}`, { 'content-type': 'application/octet-stream', 'mex-chunk-range': `${n}:${chunkCount}` }, chunk(n));
      if (reply.status !== 202 && reply.status !== 200) throw this.failure(`chunk ${n} of ${messageId}`, reply);
    }
    return { messageId };
  }

  close(): void {
    this.agent.destroy();
  }
}
