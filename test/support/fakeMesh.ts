// A stand-in for the national MESH, for what the built-in mailbox cannot do: it answers the inbox list the
// way MESH v2 does (500 ids a page, links.next with an opaque continue_from, approx_inbox_count), serves
// REPORT messages (non-delivery), takes sends, and records every request. No authentication is checked.
import { createServer, type IncomingMessage, type Server } from 'node:http';

export interface FakeMeshMessage {
  id: string;
  workflowId: string;
  /** 'REPORT' for a non-delivery report (empty body, the mex-Status* and mex-LinkedMsgID headers). */
  messageType?: 'DATA' | 'REPORT';
  body?: string;
  /** Further mex- headers as MESH sends them (mex-linkedmsgid, mex-statuscode, mex-localid…). */
  headers?: Record<string, string>;
}

export interface FakeMesh {
  url: string;
  /** What waits in the mailbox, oldest first; acknowledging takes a message out. */
  inbox: FakeMeshMessage[];
  /** "METHOD path?query" of every request, in order. */
  requests: string[];
  /** The headers of each handshake (mailbox validation), in order. */
  handshakes: IncomingMessage['headers'][];
  /** Messages sent to it, with the id it gave each. */
  sent: Array<{ messageId: string; headers: IncomingMessage['headers']; body: string }>;
  close(): Promise<void>;
}

export async function startFakeMesh(mailbox: string, pageSize = 500): Promise<FakeMesh> {
  const inbox: FakeMeshMessage[] = [];
  const requests: string[] = [];
  const sent: FakeMesh['sent'] = [];
  const handshakes: FakeMesh['handshakes'] = [];
  const prefix = `/messageexchange/${mailbox}`;
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      requests.push(`${req.method} ${req.url}`);
      const url = new URL(req.url ?? '/', 'http://fake');
      const json = (status: number, body: unknown) => res.writeHead(status, { 'content-type': 'application/vnd.mesh.v2+json' }).end(JSON.stringify(body));
      const path = url.pathname.startsWith(prefix) ? url.pathname.slice(prefix.length) : undefined;
      if (req.method === 'POST' && path === '') {
        handshakes.push(req.headers);
        return json(200, {});
      }
      if (req.method === 'GET' && path === '/inbox') {
        // Opaque to the client, as MESH's own tokens are: here, the last id of the page before, reversed.
        const token = url.searchParams.get('continue_from');
        const after = token ? inbox.findIndex((m) => m.id === [...token].reverse().join('')) + 1 : 0;
        const page = inbox.slice(after, after + pageSize);
        const more = after + pageSize < inbox.length;
        const links: Record<string, string> = { self: `${prefix}/inbox` };
        if (more) links.next = `${prefix}/inbox?continue_from=${[...page[page.length - 1]!.id].reverse().join('')}`;
        return json(200, { messages: page.map((m) => m.id), approx_inbox_count: inbox.length, links });
      }
      const download = path && /^\/inbox\/([^/]+)$/.exec(path);
      if (req.method === 'GET' && download) {
        const m = inbox.find((x) => x.id === decodeURIComponent(download[1]!));
        if (!m) return json(404, { errorDescription: 'no such message' });
        return res.writeHead(200, {
          'mex-messageid': m.id, 'mex-workflowid': m.workflowId, 'mex-to': mailbox, 'mex-from': 'SENDER01', 'mex-messagetype': m.messageType ?? 'DATA',
          'mex-chunk-range': '1:1', 'content-type': 'application/octet-stream', ...m.headers,
        }).end(m.body ?? '');
      }
      const ack = path && /^\/inbox\/([^/]+)\/status\/acknowledged$/.exec(path);
      if (req.method === 'PUT' && ack) {
        const at = inbox.findIndex((x) => x.id === decodeURIComponent(ack[1]!));
        if (at >= 0) inbox.splice(at, 1);
        return json(200, {});
      }
      if (req.method === 'POST' && path === '/outbox') {
        const messageId = `FAKE_SENT_${sent.length + 1}`;
        sent.push({ messageId, headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
        return json(202, { message_id: messageId });
      }
      json(404, { errorDescription: `not faked: ${req.method} ${req.url}` });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`, inbox, requests, sent, handshakes,
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}
