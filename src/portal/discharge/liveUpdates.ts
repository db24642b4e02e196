// Live updates for the discharge pages, by Server-Sent Events from the record's change feed: when a
// referral, its Task or a note changes, each open page is told "changed" (nothing more, so nothing leaks
// past the person's access) and its script fetches the page again through the normal access checks.
// Without script the pages work as they are, and a reload shows the latest.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { latestChangeSeq, readChanges, type SqlDriver } from '../../record/index.ts';

const WATCHED: ReadonlySet<string> = new Set(['ServiceRequest', 'Task', 'Communication']);

export interface LiveUpdates {
  /** Streams events to this request until the browser leaves or the server stops. */
  stream(req: FastifyRequest, reply: FastifyReply): Promise<void>;
}

/** One change-feed reader for all open pages; started with the first page, stopped with the last. */
export function liveUpdates(app: FastifyInstance, driver: SqlDriver, pollMs = 1000, heartbeatMs = 20_000): LiveUpdates {
  const listeners = new Set<(seq: number) => void>();
  const ends = new Set<() => void>();
  let timer: NodeJS.Timeout | undefined;
  let cursor = 0;
  let reading = false;

  const poll = async () => {
    if (reading) return;
    reading = true;
    try {
      const changes = await readChanges(driver, cursor, 1000);
      if (changes.length) cursor = changes[changes.length - 1].seq;
      const relevant = changes.filter((c) => WATCHED.has(c.type));
      if (relevant.length) for (const listener of listeners) listener(cursor);
    } catch (err) {
      app.log.error({ err }, 'discharge live updates: reading the change feed failed');
    } finally {
      reading = false;
    }
  };

  app.addHook('preClose', async () => {
    for (const end of [...ends]) end();
    clearInterval(timer);
    timer = undefined;
  });

  return {
    async stream(req, reply) {
      if (!timer) {
        cursor = await latestChangeSeq(driver);
        timer = setInterval(() => void poll(), pollMs);
        timer.unref();
      }
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', 'x-content-type-options': 'nosniff', connection: 'keep-alive' });
      res.write('retry: 5000\n\n');
      const listener = (seq: number) => res.write(`event: changed\nid: ${seq}\ndata: ${seq}\n\n`);
      const beat = setInterval(() => res.write(': still here\n\n'), heartbeatMs);
      const end = () => {
        clearInterval(beat);
        listeners.delete(listener);
        ends.delete(end);
        if (!res.writableEnded) res.end();
        if (!listeners.size && timer) {
          clearInterval(timer);
          timer = undefined;
        }
      };
      listeners.add(listener);
      ends.add(end);
      req.raw.on('close', end);
    },
  };
}
