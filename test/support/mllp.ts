// A plain MLLP client over a real TCP socket, for tests: sends framed (or deliberately broken) bytes and
// reads each framed reply in order. Independent of the listener's own framing code.
import { connect, type Socket } from 'node:net';

export const VT = '\x0b';
export const END = '\x1c\r';

export class MllpTestClient {
  private buffer = '';
  private readonly replies: string[] = [];
  private readonly waiting: ((reply: string) => void)[] = [];
  private closed = false;

  private constructor(private readonly socket: Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (data: string) => {
      this.buffer += data;
      for (;;) {
        const start = this.buffer.indexOf(VT);
        const end = this.buffer.indexOf(END, start);
        if (start < 0 || end < 0) break;
        const reply = this.buffer.slice(start + 1, end);
        this.buffer = this.buffer.slice(end + END.length);
        const waiter = this.waiting.shift();
        if (waiter) waiter(reply);
        else this.replies.push(reply);
      }
    });
    socket.on('close', () => (this.closed = true));
    socket.on('error', () => undefined);
  }

  static connect(port: number, host = '127.0.0.1'): Promise<MllpTestClient> {
    return new Promise((resolve, reject) => {
      const socket = connect({ port, host }, () => resolve(new MllpTestClient(socket)));
      socket.once('error', reject);
    });
  }

  /**
   * Sends one message in an MLLP frame, each segment ended by a carriage return as HL7 v2 writes them (the
   * last one too), and waits for its reply.
   */
  send(message: string): Promise<string> {
    this.write(VT + message.replace(/\r?\n/g, '\r').replace(/\r?$/, '\r') + END);
    return this.nextReply();
  }

  /** Raw bytes, framed or not. */
  write(data: string | Buffer): void {
    this.socket.write(data);
  }

  nextReply(timeoutMs = 15_000): Promise<string> {
    const ready = this.replies.shift();
    if (ready !== undefined) return Promise.resolve(ready);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no MLLP reply in time')), timeoutMs);
      this.waiting.push((reply) => {
        clearTimeout(timer);
        resolve(reply);
      });
    });
  }

  get isClosed(): boolean {
    return this.closed;
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      if (this.closed) return resolve();
      this.socket.once('close', () => resolve());
      this.socket.end();
    });
  }
}

/** The fields of a reply's segments: ack('MSA')[1] is MSA-1. */
export function segmentOf(reply: string, name: string): string[] | undefined {
  return reply.split('\r').find((s) => s.startsWith(`${name}|`))?.split('|');
}
