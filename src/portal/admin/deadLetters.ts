// The administrator's view of the MESH dead-letter queue (issue 4: a message that cannot be processed is
// kept with its reason, visible to staff and replayable): newest first, a page at a time, each with where it
// came from and went to, its workflow, ids, attempts and reason, and a Replay button. A replay puts the
// message back in the inbox, is audited as the administrator's, and the page then says whether it was
// processed or failed again, and why. No message body is ever shown: bodies are care records (names, NHS
// numbers, assessments), and administrators never see care records; the headers, size and reason are
// enough to find what went wrong, and a replay needs no body.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ListedDeadLetter, ReplayOutcome } from '../../messaging/index.ts';
import type { Role } from '../../access/index.ts';
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
}

export interface DeadLetterPageOptions {
  send: SendPage;
  deadLetters?: PortalDeadLetters;
  administration?: PortalAdministration;
}

const ADMIN: ReadonlySet<Role> = new Set(['admin']);
const REFUSAL = 'These pages are for administrators.';
export const DEAD_LETTERS_PER_PAGE = 25;
/** MESH message ids are short (20 to 40 characters); anything longer is not one. */
const MESSAGE_ID = /^[A-Za-z0-9_.:-]{1,100}$/;

export function deadLetterRoutes(app: FastifyInstance, { send, deadLetters, administration }: DeadLetterPageOptions): void {
  /** The signed-in administrator (undefined: the reply is sent); a replay posted by anyone else is audited as refused. */
  const admin = (req: FastifyRequest, reply: FastifyReply, replaying?: string) => {
    let actor;
    try {
      actor = signedInAs(req, reply, ADMIN, REFUSAL);
    } catch (err) {
      const visitor = visitOf(req).actor;
      if (err instanceof NotAllowedHere && replaying !== undefined && visitor) {
        administration?.refused({ actor: visitor, address: req.ip }, { action: 'dead-letter-replayed', target: replaying, reason: REFUSAL, permitted: false });
      }
      throw err;
    }
    if (!actor) return undefined;
    if (!deadLetters) throw new NotAllowedHere('The MESH dead-letter queue is not available on this server.');
    return { deadLetters, by: { actor, address: req.ip } };
  };

  app.get<{ Querystring: { page?: string; replayed?: string } }>('/admin/dead-letters', async (req, reply) => {
    const a = admin(req, reply);
    if (!a) return reply;
    const asked = Number.parseInt(String(req.query.page ?? '1'), 10);
    const total = await a.deadLetters.count();
    const pages = Math.max(1, Math.ceil(total / DEAD_LETTERS_PER_PAGE));
    const page = Number.isFinite(asked) ? Math.min(Math.max(asked, 1), pages) : 1;
    const { deadLetters: letters, total: now } = await a.deadLetters.page((page - 1) * DEAD_LETTERS_PER_PAGE, DEAD_LETTERS_PER_PAGE);
    const replayedId = String(req.query.replayed ?? '');
    const replayed = MESSAGE_ID.test(replayedId) ? await a.deadLetters.outcome(replayedId) : undefined;
    const organisations = new Map((await administration?.organisations.list() ?? []).map((o) => [o.ods, o.name]));
    const named = (ods?: string) => (ods ? `${organisations.get(ods) ?? ods} (${ods})` : undefined);
    return send(req, reply, 'pages/admin/dead-letters.njk', {
      pageTitle: page > 1 ? `Dead letters (page ${page} of ${pages})` : 'Dead letters',
      total: now,
      first: letters.length ? (page - 1) * DEAD_LETTERS_PER_PAGE + 1 : 0,
      last: (page - 1) * DEAD_LETTERS_PER_PAGE + letters.length,
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
    const a = admin(req, reply, messageId);
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

function sizeInWords(bytes: number): string {
  if (bytes < 1024) return `${bytes} bytes`;
  if (bytes < 1024 * 1024) return `${Math.round(bytes / 1024)} KB`;
  return `${(bytes / (1024 * 1024)).toFixed(1)} MB`;
}
