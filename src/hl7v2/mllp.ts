// MLLP over TCP: each message travels as <VT> message <FS><CR>, and the reply comes back framed the same
// way on the same connection. This framer is our own (not @medplum/hl7's Hl7Server) because the listener
// must bind to a chosen address, bound the size of a frame, survive a frame that ends across two reads
// or a garbled one, and answer messages on a connection one at a time in the order they came.
import { createServer, type Server, type Socket } from 'node:net';

const VT = 0x0b;
const FS = 0x1c;
const CR = 0x0d;

/** One frame as received: its bytes, or the fact that it was larger than the limit (only its start kept). */
export type MllpFrame = { bytes: Buffer; oversized: false } | { bytes: Buffer; oversized: true; size: number };

/** Turns a frame into the reply to send back (unframed); must not throw. */
export type MllpHandler = (frame: MllpFrame, peer: string) => Promise<string>;

export interface MllpListener {
  host: string;
  port: number;
  close(): Promise<void>;
}

export interface MllpOptions {
  host: string;
  port: number;
  maxMessageBytes: number;
  /** Simultaneous connections; more are refused (a PAS or interface engine holds one or a few). */
  maxConnections?: number;
  /** Told about a connection-level problem (e.g. a frame cut off by a closed connection). */
  onProblem?: (text: string) => void;
}

/** How much of an oversized frame is kept, to read its header for the reply and for the record of it. */
const KEEP_OF_OVERSIZED = 4096;
const MAX_WAITING = 200;

export async function listenMllp(options: MllpOptions, handle: MllpHandler): Promise<MllpListener> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    serveConnection(socket, options, handle);
  });
  server.maxConnections = options.maxConnections ?? 32;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : options.port;
  return {
    host: options.host,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      }),
  };
}

function serveConnection(socket: Socket, options: MllpOptions, handle: MllpHandler): void {
  const peer = `${socket.remoteAddress ?? 'unknown'}:${socket.remotePort ?? 0}`;
  socket.setKeepAlive(true, 60_000);
  socket.on('error', () => undefined); // a reset by the peer is the peer's business; the listener goes on
  let chunks: Buffer[] = [];
  let size = 0;
  let cut = false;
  let inFrame = false;
  // Replies leave in the order the messages came, each after the one before it was handled.
  let queue: Promise<void> = Promise.resolve();
  let waiting = 0;

  const reset = () => {
    chunks = [];
    size = 0;
    cut = false;
  };

  const finish = () => {
    const bytes = Buffer.concat(chunks);
    const frame: MllpFrame = cut ? { bytes, oversized: true, size } : { bytes, oversized: false };
    reset();
    inFrame = false;
    // MLLP senders wait for each reply; one that pushes hundreds without reading is not a feed.
    if (++waiting > MAX_WAITING) {
      options.onProblem?.(`MLLP connection from ${peer} closed: more than ${MAX_WAITING} messages sent without waiting for replies`);
      socket.destroy();
      return;
    }
    queue = queue
      .then(async () => {
        const reply = await handle(frame, peer);
        if (!socket.destroyed) socket.write(Buffer.concat([Buffer.from([VT]), Buffer.from(reply, 'utf8'), Buffer.from([FS, CR])]));
      })
      .catch((err) => options.onProblem?.(`MLLP reply to ${peer} failed: ${(err as Error).message}`))
      .finally(() => waiting--);
  };

  const keep = (part: Buffer) => {
    size += part.length;
    if (size <= options.maxMessageBytes) {
      chunks.push(part);
    } else if (!cut) {
      // Past the limit only the start is kept: enough to read the header and reply, never the whole thing.
      chunks = [Buffer.from(Buffer.concat([...chunks, part]).subarray(0, KEEP_OF_OVERSIZED))];
      cut = true;
    }
  };

  socket.on('data', (data: Buffer) => {
    let at = 0;
    while (at < data.length) {
      if (!inFrame) {
        const start = data.indexOf(VT, at);
        if (start < 0) return; // bytes between frames (a stray CR after FS, noise) are not a message
        inFrame = true;
        at = start + 1;
        continue;
      }
      const end = data.indexOf(FS, at);
      const restart = data.indexOf(VT, at);
      if (restart >= 0 && (end < 0 || restart < end)) {
        // A new frame began before this one ended: the sender gave up on it, so it gets no reply.
        options.onProblem?.(`MLLP frame from ${peer} abandoned after ${size + restart - at} bytes (a new frame began)`);
        reset();
        at = restart + 1;
        continue;
      }
      if (end < 0) {
        keep(data.subarray(at));
        return;
      }
      keep(data.subarray(at, end));
      at = end + 1;
      if (data[at] === CR) at++;
      finish();
    }
  });
  socket.on('end', () => {
    if (inFrame && size > 0) options.onProblem?.(`MLLP connection from ${peer} closed in the middle of a frame (${size} bytes discarded, no reply)`);
  });
}
