// Signed-in sessions: an opaque random token for the browser's cookie, of which only a SHA-256 hash is
// stored; each session acts in one membership (organisation + role). Sessions end after 30 minutes idle
// or 12 hours in all, when signed out, or at once when the user is disabled or loses that membership.
// Something held open for a session (a live page's event stream) watches it, to end when the session does.
import { randomBytes, randomUUID } from 'node:crypto';
import { storedTokenHash } from '../secrets.ts';
import type { SqlDriver } from '../../record/index.ts';
import { isRole, ROLE_PURPOSE, type Role, type UserActor } from '../actor.ts';
import type { AuditTrail } from '../audit/trail.ts';
import { authenticationRequest } from './authenticationAudit.ts';
import { normaliseOds } from './organisations.ts';

/** What a signed-in person may do in the record until the lead's role mapping narrows it. */
export const USER_SCOPE = 'user/*.cruds';
// A session seen again within this long is not rewritten: one write a minute per session, not per request.
const REFRESH_AFTER_MS = 60_000;
/**
 * How often watched sessions are read again, all in one query (per 500) whatever their number: a session
 * ended where this store cannot see it (an account disabled or its password reset, by the command line or
 * another server; its membership removed; its time up) is noticed within this long. One ended through this
 * store (sign-out, sign-in again) is noticed at once. Before saying anything, a watcher can also ask for
 * them to be read now (confirm): the askers of one moment share one query.
 */
export const WATCH_MS = 2000;
const WATCH_BATCH = 500;

/** A watched session: whether it still stands, as last read, without asking the database. */
export interface SessionWatch {
  /** False once it has ended or its time is up (as last read, at most WATCH_MS ago, against the clock now). */
  standing(): boolean;
  /**
   * Whether it still stands, read from the database after this call (one query shared by every watcher
   * asking at the same moment, such as every open stream hearing of the same change).
   */
  confirm(): Promise<boolean>;
  /** Stops watching; `ended` is not called after this. */
  stop(): void;
}

export interface SessionPolicy { idleMs: number; absoluteMs: number }

export interface Sessions {
  /** Starts a session for a signed-in user in one of their memberships; `id` goes in the cookie. */
  start(userId: string, membership: { organisation?: string; role: Role }, context: { address: string }): Promise<{ id: string; expiresAt: number }>;
  /** Who the session acts as, refreshing its idle expiry; undefined when expired, ended, or the user is disabled. */
  actor(id: string): Promise<UserActor | undefined>;
  /** Signs out: the id stops working at once. */
  end(id: string, context?: { address?: string }): Promise<void>;
  /**
   * Marks a one-time step of signing in (such as the choice of role after the password) as used, for the
   * `forMs` it could still be presented; false when it was used already, so a copied cookie cannot start a
   * second session.
   */
  claimOnce(key: string, forMs: number): Promise<boolean>;
  /**
   * Calls `ended` once when the session stops standing for any reason: at once when ended through this
   * store, otherwise within WATCH_MS (and at once if it already has). Watching neither reads the session
   * per call nor keeps it in use: it still runs out when idle.
   */
  watch(id: string, ended: () => void): SessionWatch;
}

/** One watched session: who to tell, and until when it stands as last read (0 until first read). */
interface Watched { listeners: Set<() => void>; until: number; ended: boolean }

interface SessionRow {
  session_id: string;
  user_id: string;
  organisation: string;
  role: string;
  seen_ms: number | string;
  idle_expires_ms: number | string;
  absolute_expires_ms: number | string;
  ended_ms: number | string | null;
  name: string;
  fhir_user: string | null;
  disabled: number;
  member: number | null;
}


function actorOf(row: SessionRow): UserActor {
  const role = row.role as Role;
  return {
    kind: 'user',
    userId: row.user_id,
    name: row.name,
    ...(row.organisation ? { organisation: row.organisation } : {}),
    role,
    ...(row.fhir_user ? { fhirUser: row.fhir_user } : {}),
    purpose: ROLE_PURPOSE[role],
    scope: USER_SCOPE,
    sessionId: row.session_id,
  };
}

export function sessionStore(driver: SqlDriver, policy: SessionPolicy, now: () => number, audit?: AuditTrail): Sessions {
  const lookup = (id: unknown) => {
    if (typeof id !== 'string' || !/^[A-Za-z0-9_-]{20,100}$/.test(id)) return Promise.resolve(undefined);
    return driver.get<SessionRow>(
      `SELECT s.session_id, s.user_id, s.organisation, s.role, s.seen_ms, s.idle_expires_ms, s.absolute_expires_ms, s.ended_ms, u.name, u.fhir_user, u.disabled,
              (SELECT 1 FROM access_memberships m WHERE m.user_id = s.user_id AND m.organisation = s.organisation AND m.role = s.role) AS member
       FROM access_sessions s JOIN access_users u ON u.user_id = s.user_id WHERE s.token_hash = ?`,
      [storedTokenHash(id)],
    );
  };

  const watched = new Map<string, Watched>();
  let watchTimer: NodeJS.Timeout | undefined;
  const stops = (hash: string) => {
    const w = watched.get(hash);
    if (!w) return;
    watched.delete(hash);
    w.ended = true;
    for (const listener of w.listeners) {
      try {
        listener();
      } catch {
        // one listener's failure does not keep the others open
      }
    }
    if (!watched.size && watchTimer) {
      clearInterval(watchTimer);
      watchTimer = undefined;
    }
  };
  /** Reads every watched session again: those no longer standing are told. */
  const check = async () => {
    try {
      const hashes = [...watched.keys()];
      for (let i = 0; i < hashes.length; i += WATCH_BATCH) {
        const batch = hashes.slice(i, i + WATCH_BATCH);
        const rows = await driver.all<{ token_hash: string; idle_expires_ms: number | string; absolute_expires_ms: number | string; ended_ms: number | string | null; disabled: number; member: number | null }>(
          `SELECT s.token_hash, s.idle_expires_ms, s.absolute_expires_ms, s.ended_ms, u.disabled,
                  (SELECT 1 FROM access_memberships m WHERE m.user_id = s.user_id AND m.organisation = s.organisation AND m.role = s.role) AS member
           FROM access_sessions s JOIN access_users u ON u.user_id = s.user_id WHERE s.token_hash IN (${batch.map(() => '?').join(', ')})`,
          batch,
        );
        const found = new Map(rows.map((r) => [r.token_hash, r]));
        const at = now();
        for (const hash of batch) {
          const row = found.get(hash);
          const until = row && row.ended_ms === null && !Number(row.disabled) && row.member ? Math.min(Number(row.idle_expires_ms), Number(row.absolute_expires_ms)) : 0;
          if (at >= until) stops(hash);
          else {
            const w = watched.get(hash);
            if (w) w.until = until;
          }
        }
      }
    } catch {
      // The database busy or restarting: read again on the next tick (standing() still honours the expiry).
    }
  };
  // One read at a time. Whoever asks joins the next read to start (after the current one, if any), so a
  // read they wait for began after they asked, and everyone asking in the same turn shares it.
  let running: Promise<void> | undefined;
  let next: Promise<void> | undefined;
  const checkSoon = (): Promise<void> => {
    next ??= (async () => {
      await new Promise((r) => setImmediate(r));
      while (running) await running;
      next = undefined;
      running = check().finally(() => (running = undefined));
      await running;
    })();
    return next;
  };

  return {
    watch(id, ended) {
      const hash = storedTokenHash(String(id));
      let w = watched.get(hash);
      const fresh = !w;
      if (!w) watched.set(hash, (w = { listeners: new Set(), until: 0, ended: false }));
      const entry = w;
      entry.listeners.add(ended);
      if (!watchTimer) {
        watchTimer = setInterval(() => void (running ?? checkSoon()), WATCH_MS);
        watchTimer.unref();
      }
      if (fresh) void checkSoon();
      let stopped = false;
      // Until the first read it stands: the caller has just checked the session itself.
      const standing = () => !stopped && !entry.ended && (entry.until === 0 || now() < entry.until);
      return {
        standing,
        async confirm() {
          if (!standing()) return false;
          await checkSoon();
          return standing();
        },
        stop() {
          if (stopped) return;
          stopped = true;
          entry.listeners.delete(ended);
          if (!entry.listeners.size && watched.get(hash) === entry) {
            watched.delete(hash);
            if (!watched.size && watchTimer) {
              clearInterval(watchTimer);
              watchTimer = undefined;
            }
          }
        },
      };
    },

    async start(userId, membership, context) {
      if (!isRole(membership?.role)) throw new Error(`'${membership?.role}' is not a role.`);
      const organisation = membership.organisation ? normaliseOds(membership.organisation) : '';
      const user = await driver.get<{ disabled: number; name: string }>('SELECT disabled, name FROM access_users WHERE user_id = ?', [userId]);
      if (!user) throw new Error('No such user.');
      if (Number(user.disabled)) throw new Error('This account has been disabled.');
      const member = await driver.get('SELECT 1 AS one FROM access_memberships WHERE user_id = ? AND organisation = ? AND role = ?', [userId, organisation, membership.role]);
      if (!member) throw new Error(`This user is not a ${membership.role}${organisation ? ` at ${organisation}` : ''}.`);
      const at = now();
      const id = randomBytes(32).toString('base64url');
      const sessionId = randomUUID();
      const idle = Math.min(at + policy.idleMs, at + policy.absoluteMs);
      // Old sessions are swept as new ones start, so the table holds only the live and the recently ended.
      await driver.run('DELETE FROM access_sessions WHERE absolute_expires_ms < ?', [at]);
      await driver.run(
        'INSERT INTO access_sessions (session_id, token_hash, user_id, organisation, role, address, created_ms, seen_ms, idle_expires_ms, absolute_expires_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
        [sessionId, storedTokenHash(id), userId, organisation, membership.role, context.address ?? null, at, at, idle, at + policy.absoluteMs],
      );
      const row = (await lookup(id))!;
      audit?.record(authenticationRequest(at, context.address, { action: 'login', userId, ok: true, detail: `session started as ${membership.role}${organisation ? ` at ${organisation}` : ''}` }, actorOf(row)));
      return { id, expiresAt: idle };
    },

    async actor(id) {
      const row = await lookup(id);
      if (!row || row.ended_ms !== null || Number(row.disabled) || !row.member) return undefined;
      const at = now();
      const absolute = Number(row.absolute_expires_ms);
      if (at >= Number(row.idle_expires_ms) || at >= absolute) return undefined;
      if (at - Number(row.seen_ms) >= REFRESH_AFTER_MS) {
        await driver.run('UPDATE access_sessions SET seen_ms = ?, idle_expires_ms = ? WHERE session_id = ?', [at, Math.min(at + policy.idleMs, absolute), row.session_id]);
      }
      return actorOf(row);
    },

    async claimOnce(key, forMs) {
      // The table single-use codes and client assertions share; ON CONFLICT makes the claim atomic, so two
      // requests racing with the same step cannot both win.
      const at = now();
      await driver.run('DELETE FROM access_used_assertions WHERE expires_ms < ?', [at]);
      return Boolean(await driver.run('INSERT INTO access_used_assertions (jti, expires_ms) VALUES (?, ?) ON CONFLICT (jti) DO NOTHING', [`sign-in:${key}`, at + Math.max(0, forMs)]));
    },

    async end(id, context = {}) {
      const row = await lookup(id);
      if (!row || row.ended_ms !== null) return;
      const at = now();
      await driver.run('UPDATE access_sessions SET ended_ms = ? WHERE session_id = ? AND ended_ms IS NULL', [at, row.session_id]);
      stops(storedTokenHash(id));
      audit?.record(authenticationRequest(at, context.address ?? 'internal', { action: 'logout', userId: row.user_id, ok: true }, actorOf(row)));
    },
  };
}
