// Live updates for the discharge pages, by Server-Sent Events from the record's change feed: when a
// referral, its Task or a note changes, each open page is told "changed" (nothing more, so nothing leaks
// past the person's access) and its script fetches the page again through the normal access checks.
// Without script the pages work as they are, and a reload shows the latest.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { SqlDriver } from '../../record/index.ts';
import { changeWatcher } from '../live/changeWatcher.ts';

const WATCHED: ReadonlySet<string> = new Set(['ServiceRequest', 'Task', 'Communication']);

export interface LiveUpdates {
  /** Streams events to this request until the browser leaves or the server stops. */
  stream(req: FastifyRequest, reply: FastifyReply): Promise<void>;
}

/**
 * One change-feed reader for all open pages (the portal's change watcher: it also catches a change whose seq
 * becomes visible after higher ones, as on PostgreSQL, which reading on from the newest seq seen missed).
 */
export function liveUpdates(app: FastifyInstance, driver: SqlDriver, pollMs = 1000, heartbeatMs = 20_000): LiveUpdates {
  const watcher = changeWatcher(driver, pollMs);
  const ends = new Set<() => void>();

  app.addHook('preClose', async () => {
    for (const end of [...ends]) end();
    watcher.close();
  });

  return {
    async stream(req, reply) {
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', 'x-content-type-options': 'nosniff', connection: 'keep-alive' });
      res.write('retry: 5000\n\n');
      const unsubscribe = watcher.subscribe((changes) => {
        const relevant = changes.filter((c) => WATCHED.has(c.type));
        if (!relevant.length) return;
        const seq = Math.max(...relevant.map((c) => c.seq));
        res.write(`event: changed\nid: ${seq}\ndata: ${seq}\n\n`);
      });
      const beat = setInterval(() => res.write(': still here\n\n'), heartbeatMs);
      const end = () => {
        clearInterval(beat);
        unsubscribe();
        ends.delete(end);
        if (!res.writableEnded) res.end();
      };
      ends.add(end);
      req.raw.on('close', end);
    },
  };
}
