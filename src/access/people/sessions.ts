// Signed-in sessions: an opaque random token for the browser's cookie, of which only a SHA-256 hash is
// stored; each session acts in one membership (organisation + role). Sessions end after 30 minutes idle
// or 12 hours in all, when signed out, or at once when the user is disabled or loses that membership.
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { SqlDriver } from '../../record/index.ts';
import { isRole, ROLE_PURPOSE, type Role, type UserActor } from '../actor.ts';
import type { AuditTrail } from '../audit/trail.ts';
import { authenticationRequest } from './authenticationAudit.ts';
import { normaliseOds } from './organisations.ts';

/** What a signed-in person may do in the record until the lead's role mapping narrows it. */
export const USER_SCOPE = 'user/*.cruds';
// A session seen again within this long is not rewritten: one write a minute per session, not per request.
const REFRESH_AFTER_MS = 60_000;

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
}

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

const tokenHash = (id: string) => createHash('sha256').update(id).digest('hex');

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
      [tokenHash(id)],
    );
  };

  return {
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
        [sessionId, tokenHash(id), userId, organisation, membership.role, context.address ?? null, at, at, idle, at + policy.absoluteMs],
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
      audit?.record(authenticationRequest(at, context.address ?? 'internal', { action: 'logout', userId: row.user_id, ok: true }, actorOf(row)));
    },
  };
}
