// The administrator's view of the MESH dead-letter queue (issue 4: a message that cannot be processed is
// kept with its reason, visible to staff and replayable): newest first, a page at a time, each with where it
// came from and went to, its workflow, ids, attempts and reason, and a Replay button. A replay puts the
// message back in the inbox, is audited as the administrator's, and the page then says whether it was
// processed or failed again, and why. No message body is ever shown: bodies are care records (names, NHS
// numbers, assessments), and administrators never see care records; the headers, size and reason are
// enough to find what went wrong, and a replay needs no body. A reason can still name a person, so each
// view of the page is audited as the viewer's before the page is sent (one entry per page, naming the dead
// letters on it and the people whose NHS numbers the page shows), and so is a view refused to someone who
// is not an administrator.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ListedDeadLetter, ReplayOutcome } from '../../messaging/index.ts';
import type { DeadLetterView, Role, UserActor } from '../../access/index.ts';
import type { SendPage } from '../page.ts';
import { NotAllowedHere, PageNotFound } from '../pageErrors.ts';
import { signedInAs } from '../person/recordPages.ts';
import type { Administrator, PortalAdministration } from '../portalAccess.ts';
import { visitOf } from '../visit.ts';

/** The dead-letter queue as the portal uses it (wired in server.ts over src/messaging, audited through src/access). */
export interface PortalDeadLetters {
  /** Dead letters `offset`… (at most `limit`), newest first, and how many there are in all. */
  page(offset: number, limit: number): Promise<{ total: number; deadLetters: ListedDeadLetter[] }>;
  count(): Promise<number>;
  /**
   * Puts the dead letter back in the inbox and waits a few seconds for it to be tried; audited as `by`'s
   * (a refused one too). Throws when there is no dead letter with this id.
   */
  replay(messageId: string, by: Administrator): Promise<ReplayOutcome | undefined>;
  /** Where the message stands now (undefined: no such message). */
  outcome(messageId: string): Promise<ReplayOutcome | undefined>;
  /**
   * Records in the audit trail that `viewer` was shown the queue, or refused it, naming the people whose NHS
   * numbers are in `shownText` (the text the page shows; never kept). Send the page once this resolves; it
   * rejects only when those people could not be looked up, and then nothing may be shown.
   */
  viewed(viewer: { actor: UserActor; address: string }, view: DeadLetterView, shownText?: readonly string[]): Promise<void>;
}

export interface DeadLetterPageOptions {
  send: SendPage;
  deadLetters?: PortalDeadLetters;
  administration?: PortalAdministration;
}

const ADMIN: ReadonlySet<Role> = new Set(['admin']);
const REFUSAL = 'These pages are for administrators.';
const PAGE_PATH = '/admin/dead-letters';
export const DEAD_LETTERS_PER_PAGE = 25;
/** MESH message ids are short (20 to 40 characters); anything longer is not one. */
const MESSAGE_ID = /^[A-Za-z0-9_.:-]{1,100}$/;

export function deadLetterRoutes(app: FastifyInstance, { send, deadLetters, administration }: DeadLetterPageOptions): void {
  /**
   * The signed-in administrator (undefined: the reply is sent); anyone else signed in is refused, and their
   * attempt audited: a replay as a refused change, a view as a refused view.
   */
  const admin = async (req: FastifyRequest, reply: FastifyReply, attempt: { replaying: string } | { viewing: string }) => {
    let actor;
    try {
      actor = signedInAs(req, reply, ADMIN, REFUSAL);
    } catch (err) {
      const visitor = visitOf(req).actor;
      if (err instanceof NotAllowedHere && visitor) {
        const by = { actor: visitor, address: req.ip };
        if ('replaying' in attempt) administration?.refused(by, { action: 'dead-letter-replayed', target: attempt.replaying, reason: REFUSAL, permitted: false });
        else await deadLetters?.viewed(by, { path: PAGE_PATH, query: attempt.viewing || undefined, messageIds: [], ok: false, reason: REFUSAL });
      }
      throw err;
    }
    if (!actor) return undefined;
    if (!deadLetters) throw new NotAllowedHere('The MESH dead-letter queue is not available on this server.');
    return { deadLetters, by: { actor, address: req.ip } };
  };

  app.get<{ Querystring: { page?: string; replayed?: string } }>(PAGE_PATH, async (req, reply) => {
    const a = await admin(req, reply, { viewing: queryOf(req.url) });
    if (!a) return reply;
    const asked = Number.parseInt(String(req.query.page ?? '1'), 10);
    const total = await a.deadLetters.count();
    const pages = Math.max(1, Math.ceil(total / DEAD_LETTERS_PER_PAGE));
    const page = Number.isFinite(asked) ? Math.min(Math.max(asked, 1), pages) : 1;
    const { deadLetters: letters, total: now } = await a.deadLetters.page((page - 1) * DEAD_LETTERS_PER_PAGE, DEAD_LETTERS_PER_PAGE);
    const replayedId = String(req.query.replayed ?? '');
    const replayed = MESSAGE_ID.test(replayedId) ? await a.deadLetters.outcome(replayedId) : undefined;
    const first = letters.length ? (page - 1) * DEAD_LETTERS_PER_PAGE + 1 : 0;
    const last = (page - 1) * DEAD_LETTERS_PER_PAGE + letters.length;
    // One entry for the page, naming every dead letter on it and the one whose outcome is shown (with its
    // reason), and the people whose NHS numbers the page shows (in what the template shows of each).
    const shownText = [
      ...letters.flatMap((l) => [l.messageId, l.localId ?? '', l.from, l.mailbox, l.workflowId, l.reason]),
      ...(replayed ? [replayed.messageId, 'reason' in replayed ? replayed.reason : ''] : []),
    ];
    await a.deadLetters.viewed(a.by, {
      path: PAGE_PATH,
      query: `page=${page}`,
      shown: `page ${page} of ${pages}, ${letters.length ? `dead letters ${first} to ${last} of ${now}` : 'no dead letters'}`,
      messageIds: letters.map((l) => l.messageId),
      ...(replayed ? { outcomeOf: replayed.messageId } : {}),
      ok: true,
    }, shownText);
    const organisations = new Map((await administration?.organisations.list() ?? []).map((o) => [o.ods, o.name]));
    const named = (ods?: string) => (ods ? `${organisations.get(ods) ?? ods} (${ods})` : undefined);
    return send(req, reply, 'pages/admin/dead-letters.njk', {
      pageTitle: page > 1 ? `Dead letters (page ${page} of ${pages})` : 'Dead letters',
      total: now,
      first,
      last,
      page,
      pages,
      previous: page > 1 ? `/admin/dead-letters?page=${page - 1}` : undefined,
      next: page < pages ? `/admin/dead-letters?page=${page + 1}` : undefined,
      replayed,
      letters: letters.map((l) => ({
        ...l,
        receivedAt: new Date(l.receivedAt).toISOString(),
        deadAt: new Date(l.deadAt).toISOString(),
        sender: named(l.fromOds),
        recipient: named(l.mailboxOds),
        size: sizeInWords(l.size),
      })),
    });
  });

  app.post<{ Params: { messageId: string } }>('/admin/dead-letters/:messageId/replay', async (req, reply) => {
    const messageId = req.params.messageId;
    const a = await admin(req, reply, { replaying: messageId });
    if (!a) return reply;
    if (!MESSAGE_ID.test(messageId)) throw new PageNotFound('There is no dead letter with this message id.');
    try {
      await a.deadLetters.replay(messageId, a.by);
    } catch {
      throw new PageNotFound(`There is no dead letter with message id ${messageId}: it may have been replayed already.`);
    }
    return reply.redirect(`/admin/dead-letters?replayed=${encodeURIComponent(messageId)}`, 303);
  });
}

/** The query the page was asked with (`page=2`), as sent: what a refused viewer was after. */
function queryOf(url: string): string {
  const q = url.indexOf('?');
  return q < 0 ? '' : url.slice(q + 1, q + 1 + 300);
}

function sizeInWords(bytes: number): string {
  if (bytes < 1024) return `${bytes} bytes`;
  if (bytes < 1024 * 1024) return `${Math.round(bytes / 1024)} KB`;
  return `${(bytes / (1024 * 1024)).toFixed(1)} MB`;
}
