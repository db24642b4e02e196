// Live pages: GET /live/<board> is a Server-Sent Events stream that says "changed" (and nothing else)
// when an Observation, Encounter or Flag about someone on the user's page is written; the page's script
// then fetches the page again, through the same access checks as any page. Without JavaScript nothing
// here is used. A stream ends after LIVE_MINUTES, so an unattended screen stops asking and its session
// can run out; the script starts it again when someone uses the page.
//
// A stream speaks for its session only while the session stands: it watches it (Sessions.watch: no
// database read per stream; one query every WATCH_MS, and one per batch of changes, for all open streams),
// says nothing once it has ended, and says "ended" and closes at once when the session is signed out or
// replaced through this server, and within WATCH_MS (2 s) when it ends any other way (expired, account
// disabled, password reset, membership removed, signed out on another server). The script then takes the
// browser to the sign-in page, and a new stream is refused with a redirect there.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { SqlDriver } from '../../record/index.ts';
import { recordFor, type RecordConnection } from '../recordClient.ts';
import { signedInAs } from '../person/recordPages.ts';
import { PageNotFound } from '../pageErrors.ts';
import { visitOf } from '../visit.ts';
import { changeWatcher, type ChangeWatcher } from './changeWatcher.ts';
import { LIVE_BOARDS } from './boards.ts';

export const LIVE_MINUTES = 10;
const HEARTBEAT_MS = 25_000;
/** Open streams one session may hold (a few tabs), and in all, so streams cannot exhaust the server. */
const PER_SESSION = 4;
const IN_ALL = 1000;

export interface LiveOptions {
  driver: SqlDriver;
  connection: (req: FastifyRequest) => RecordConnection;
  /** How often the change feed is read (default 1 s). */
  pollMs?: number;
}

export function liveRoutes(app: FastifyInstance, { driver, connection, pollMs }: LiveOptions): ChangeWatcher {
  const watcher = changeWatcher(driver, pollMs);
  const open = new Map<string, number>();
  const enders = new Set<() => void>();
  app.addHook('preClose', async () => {
    watcher.close();
    for (const end of [...enders]) end();
  });

  app.get<{ Params: { board: string } }>('/live/:board', async (req, reply) => {
    const board = Object.hasOwn(LIVE_BOARDS, req.params.board) ? LIVE_BOARDS[req.params.board] : undefined;
    if (!board) throw new PageNotFound('There is no live page with this name.');
    const actor = signedInAs(req, reply, board.roles, 'This live list is not for your role.');
    if (!actor) return reply;
    const session = visitOf(req).sessionId ?? '';
    const sessions = connection(req).access.accounts?.sessions;
    if (!session || !sessions) return reply.redirect('/sign-in', 303);
    const streams = open.get(session) ?? 0;
    const total = [...open.values()].reduce((a, b) => a + b, 0);
    if (streams >= PER_SESSION || total >= IN_ALL) return reply.code(429).type('text/plain; charset=utf-8').send('Too many live pages are open. Close some tabs.');
    const record = recordFor(connection(req), actor, req.ip);
    let visible = await board.people(record, actor);

    reply.hijack();
    const raw = reply.raw;
    raw.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      'x-content-type-options': 'nosniff',
      'x-accel-buffering': 'no',
    });
    raw.write('retry: 5000\n\n');
    open.set(session, streams + 1);

    let ended = false;
    const sessionWatch = sessions.watch(session, () => {
      if (!ended) raw.write('event: ended\ndata: {}\n\n');
      end();
    });
    // Batches are handled one at a time, in order, so two re-reads of who is on the page never race.
    let queue = Promise.resolve();
    const unsubscribe = watcher.subscribe((changes) => {
      const relevant = changes.filter((c) => c.patientId && board.types.has(c.type));
      if (!relevant.length) return;
      queue = queue.then(async () => {
        // Nothing is said for a session that has ended, however it ended: read again before speaking (one
        // query for every stream hearing this batch), and the watch then ends the stream.
        if (ended || !(await sessionWatch.confirm())) return;
        const before = visible;
        if (relevant.some((c) => c.type === board.membership)) visible = await board.people(record, actor);
        if (ended || !sessionWatch.standing()) return;
        if (relevant.some((c) => before.has(c.patientId!) || visible.has(c.patientId!))) raw.write('event: changed\ndata: {}\n\n');
      }).catch(() => end());
    });
    const heartbeat = setInterval(() => raw.write(': still here\n\n'), HEARTBEAT_MS);
    const idle = setTimeout(() => {
      raw.write('event: idle\ndata: {}\n\n');
      end();
    }, LIVE_MINUTES * 60_000);
    function end() {
      if (ended) return;
      ended = true;
      sessionWatch.stop();
      unsubscribe();
      clearInterval(heartbeat);
      clearTimeout(idle);
      enders.delete(end);
      const left = (open.get(session) ?? 1) - 1;
      if (left > 0) open.set(session, left);
      else open.delete(session);
      raw.end();
    }
    enders.add(end);
    raw.on('close', end);
    return reply;
  });
  return watcher;
}
