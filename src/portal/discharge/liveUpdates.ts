// Live updates for the discharge pages, by Server-Sent Events from the record's change feed: when one of
// the person's own referrals, its Task or a note about one of its people changes, each of their open pages
// is told "changed" (nothing more) and its script fetches the page again through the normal access checks.
// Without script the pages work as they are, and a reload shows the latest.
//
// A stream speaks for a session, so it watches it (Sessions.watch: one query every WATCH_MS, and one per
// batch of changes, for all open streams; not a read per stream): it says nothing once the session has
// ended (read again before each event), and says "ended" and closes at once when the session is signed
// out or replaced through this server, and within WATCH_MS (2 s) when it ends any other way (expired,
// account disabled, password reset, membership removed). Watching does not keep the session in use. As
// the other live pages do (src/portal/live/routes.ts), a stream also ends after LIVE_MINUTES and the
// script starts it again when someone uses the page.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { RecordChange, SqlDriver } from '../../record/index.ts';
import type { SessionWatch } from '../../access/index.ts';
import { changeWatcher } from '../live/changeWatcher.ts';
import { LIVE_MINUTES } from '../live/routes.ts';

const WATCHED: ReadonlySet<string> = new Set(['ServiceRequest', 'Task', 'Communication']);
/** Open streams one session may hold (a few tabs), and in all, so streams cannot exhaust the server (as /live/:board). */
const PER_SESSION = 4;
const IN_ALL = 1000;

/** What a person's discharge pages show: their own organisation's referrals, as read with their access. */
export interface Visible {
  referrals: ReadonlySet<string>;
  /** The referrals' triage Tasks. */
  tasks: ReadonlySet<string>;
  /** The people referred (notes are matched by person: which referral a note is on is not in the change feed). */
  patients: ReadonlySet<string>;
}

export interface Viewer {
  /** The session the stream speaks for (its cookie value). */
  session: string;
  /** Watches that session: `ended` is called once it no longer stands (signed out, expired, account disabled…). */
  watch(ended: () => void): SessionWatch;
  /** The person's referrals now, read through the record with their access. */
  visible(): Promise<Visible>;
}

export interface LiveUpdates {
  /** Streams events to this request until the browser leaves, the session ends, or the server stops. */
  stream(req: FastifyRequest, reply: FastifyReply, viewer: Viewer): Promise<FastifyReply>;
}

export interface LiveTimings { pollMs?: number; heartbeatMs?: number; idleMs?: number }

/** Whether a change is about something the person's pages show (before or after a re-read of them). */
function concerns(c: RecordChange, seen: Visible): boolean {
  if (c.type === 'ServiceRequest') return seen.referrals.has(c.id);
  if (c.type === 'Task') return seen.tasks.has(c.id);
  return c.patientId !== null && seen.patients.has(c.patientId);
}

/**
 * One change-feed reader for all open pages (the portal's change watcher: it also catches a change whose seq
 * becomes visible after higher ones, as on PostgreSQL, which reading on from the newest seq seen missed).
 */
export function liveUpdates(app: FastifyInstance, driver: SqlDriver, { pollMs = 1000, heartbeatMs = 20_000, idleMs = LIVE_MINUTES * 60_000 }: LiveTimings = {}): LiveUpdates {
  const watcher = changeWatcher(driver, pollMs);
  const ends = new Set<() => void>();
  const open = new Map<string, number>();

  app.addHook('preClose', async () => {
    for (const end of [...ends]) end();
    watcher.close();
  });

  return {
    async stream(req, reply, viewer) {
      const streams = open.get(viewer.session) ?? 0;
      const total = [...open.values()].reduce((a, b) => a + b, 0);
      if (streams >= PER_SESSION || total >= IN_ALL) return reply.code(429).type('text/plain; charset=utf-8').send('Too many live pages are open. Close some tabs.');
      // Read before the stream starts, so a person whose organisation is not in the record gets the error page.
      let visible = await viewer.visible();

      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', 'x-content-type-options': 'nosniff', 'x-accel-buffering': 'no', connection: 'keep-alive' });
      res.write('retry: 5000\n\n');
      open.set(viewer.session, streams + 1);

      let ended = false;
      const sessionWatch = viewer.watch(() => {
        if (!ended) res.write('event: ended\ndata: {}\n\n');
        end();
      });
      const end = () => {
        if (ended) return;
        ended = true;
        sessionWatch.stop();
        clearInterval(beat);
        clearTimeout(idle);
        unsubscribe();
        ends.delete(end);
        const left = (open.get(viewer.session) ?? 1) - 1;
        if (left > 0) open.set(viewer.session, left);
        else open.delete(viewer.session);
        if (!res.writableEnded) res.end();
      };
      /** Whether the stream may still speak: a session past its time or ended hears nothing more. */
      const stillSignedIn = () => !ended && sessionWatch.standing();

      // Batches are handled one at a time, in order, so two re-reads of the person's referrals never race.
      let queue = Promise.resolve();
      const unsubscribe = watcher.subscribe((changes) => {
        const relevant = changes.filter((c) => WATCHED.has(c.type));
        if (!relevant.length) return;
        queue = queue.then(async () => {
          if (ended || !(await sessionWatch.confirm())) return;
          const before = visible;
          // A referral not among theirs may be a new one to (or from) their organisation: read them again.
          if (relevant.some((c) => c.type === 'ServiceRequest' && !before.referrals.has(c.id))) visible = await viewer.visible();
          const told = relevant.filter((c) => concerns(c, before) || concerns(c, visible));
          if (!told.length || !stillSignedIn()) return;
          const seq = Math.max(...told.map((c) => c.seq));
          res.write(`event: changed\nid: ${seq}\ndata: ${seq}\n\n`);
        }).catch(() => end());
      });
      const beat = setInterval(() => {
        if (stillSignedIn()) res.write(': still here\n\n');
      }, heartbeatMs);
      const idle = setTimeout(() => {
        if (!ended) res.write('event: idle\ndata: {}\n\n');
        end();
      }, idleMs);
      ends.add(end);
      req.raw.on('close', end);
      return reply;
    },
  };
}
