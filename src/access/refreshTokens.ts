// Refresh tokens for apps a person signed in to (SMART online_access and offline_access). A refresh token
// is an opaque random string of which only a SHA-256 hash is stored, as session cookies are. Each is used
// once: using it gives the app a new one (rotation), and the old one then stops working. Every token that
// one sign-in leads to is of one family, which ends when the sign-in's lifetime does, however often it is
// refreshed. A token presented a second time means two parties hold it (the app and someone who copied
// it), and there is no telling which is the app, so the whole family is revoked (OAuth 2.0 Security Best
// Current Practice, refresh token rotation): the person signs in to the app again. A family also keeps the
// id of the authorization code it came from: that code presented again means it was stolen, and the family
// is revoked likewise (RFC 6749 section 4.1.2). Either way the sign-in ends: the access tokens it gave (each
// names its sign-in, `sid`) are refused from then on too, not left working until they expire.
import { randomBytes, randomUUID } from 'node:crypto';
import { storedTokenHash } from './secrets.ts';
import { TOKEN_LIFETIME_SECONDS } from './tokens.ts';
import type { SqlDriver, SqlExecutor } from '../record/index.ts';

/** The scopes that ask for a refresh token, and how long a sign-in's family of them lasts. */
export type RefreshKind = 'online' | 'offline';

/** CAREBRIDGE_ONLINE_ACCESS_MINUTES and CAREBRIDGE_OFFLINE_ACCESS_DAYS. */
export interface RefreshLifetimes { onlineMinutes: number; offlineDays: number }

export const DEFAULT_REFRESH_LIFETIMES: RefreshLifetimes = { onlineMinutes: 60, offlineDays: 30 };

/** What a refresh token stands for: the sign-in it came from, as the authorization code had it. */
export interface RefreshGrant {
  clientId: string;
  userId: string;
  organisation?: string;
  role: string;
  /** Everything the person granted the app at sign-in: a refresh may ask for less, never more. */
  scope: string;
  patient?: string;
}

interface RefreshRow {
  family_id: string;
  client_id: string;
  user_id: string;
  organisation: string | null;
  role: string;
  scope: string;
  patient: string | null;
  expires_ms: number | string;
  used_ms: number | string | null;
  revoked_ms: number | string | null;
  code_id: string | null;
}

/** A refresh token as presented, looked up: what it stands for and whether it may still be used. */
export interface PresentedRefresh {
  grant: RefreshGrant;
  familyId: string;
  familyExpiresMs: number;
  /** The authorization code (its jti) the family came from; absent for families stored before it was kept. */
  codeId?: string;
  /** Why it may not be used (checked before anything else is), or undefined while it may. */
  spent?: 'used' | 'revoked' | 'expired';
}

/** Which of online_access and offline_access a granted scope holds (offline, when it holds both). */
export function refreshKind(scope: string): RefreshKind | undefined {
  const scopes = scope.split(/\s+/);
  if (scopes.includes('offline_access')) return 'offline';
  if (scopes.includes('online_access')) return 'online';
  return undefined;
}

export function familyLifetimeMs(kind: RefreshKind, lifetimes: RefreshLifetimes): number {
  return kind === 'offline' ? lifetimes.offlineDays * 24 * 3_600_000 : lifetimes.onlineMinutes * 60_000;
}


/**
 * Stores a new refresh token for `grant` and answers it. A new sign-in starts a family (`lifetimeMs`, and
 * the code it was exchanged for); a rotation continues one, keeping its expiry and its code.
 */
export async function issueRefreshToken(db: SqlExecutor, grant: RefreshGrant, family: { id: string; expiresMs: number; codeId?: string } | { lifetimeMs: number; codeId: string }): Promise<string> {
  const token = randomBytes(32).toString('base64url');
  const now = Date.now();
  const { id, expiresMs } = 'id' in family ? family : { id: randomUUID(), expiresMs: now + family.lifetimeMs };
  await db.run(
    'INSERT INTO access_refresh_tokens (token_hash, family_id, client_id, user_id, organisation, role, scope, patient, created_ms, expires_ms, code_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
    [storedTokenHash(token), id, grant.clientId, grant.userId, grant.organisation ?? null, grant.role, grant.scope, grant.patient ?? null, now, expiresMs, family.codeId ?? null],
  );
  // Families past their time can never be used again, nor tell a reuse (they are refused as unknown).
  await db.run('DELETE FROM access_refresh_tokens WHERE expires_ms < ?', [now]);
  return token;
}

/** The refresh token `token` stands for, or undefined when it is not one of ours (or its family has gone). */
export async function presentedRefresh(db: SqlExecutor, token: string): Promise<PresentedRefresh | undefined> {
  if (!token) return undefined;
  const row = await db.get<RefreshRow>(
    'SELECT family_id, client_id, user_id, organisation, role, scope, patient, expires_ms, used_ms, revoked_ms, code_id FROM access_refresh_tokens WHERE token_hash = ?',
    [storedTokenHash(token)],
  );
  if (!row) return undefined;
  const familyExpiresMs = Number(row.expires_ms);
  const spent = row.revoked_ms !== null ? 'revoked' : row.used_ms !== null ? 'used' : familyExpiresMs <= Date.now() ? 'expired' : undefined;
  return {
    grant: {
      clientId: row.client_id, userId: row.user_id, role: row.role, scope: row.scope,
      ...(row.organisation ? { organisation: row.organisation } : {}), ...(row.patient ? { patient: row.patient } : {}),
    },
    familyId: row.family_id,
    familyExpiresMs,
    ...(row.code_id ? { codeId: row.code_id } : {}),
    ...(spent ? { spent } : {}),
  };
}

/**
 * Marks `token` used, atomically: false when it was used (or revoked) meanwhile, by a request racing this
 * one, which is a reuse like any other.
 */
export async function claimRefreshToken(db: SqlExecutor, token: string): Promise<boolean> {
  return Boolean(await db.run('UPDATE access_refresh_tokens SET used_ms = ? WHERE token_hash = ? AND used_ms IS NULL AND revoked_ms IS NULL', [Date.now(), storedTokenHash(token)]));
}

/**
 * The sign-in a refresh token's access tokens name (`sid`): the authorization code it began with, or, for a
 * family stored before codes were kept with it, the family.
 */
export function signInOf(family: { familyId: string; codeId?: string }): string {
  return family.codeId ?? family.familyId;
}

/**
 * Every token of the family stops working, the current one included, and the access tokens of its sign-in,
 * together: the family is its sign-in's (one per authorization code), so this is revokeSignIn.
 */
export async function revokeRefreshFamily(driver: SqlDriver, family: { familyId: string; codeId?: string }): Promise<void> {
  await revokeSignIn(driver, signInOf(family));
}

/**
 * Every token of the family that authorization code `codeId` started stops working, and the access tokens
 * of that sign-in; answers how many refresh tokens were still in force (0 when the code gave none, or its
 * family had ended already).
 */
export async function revokeCodeFamily(db: SqlExecutor, codeId: string): Promise<number> {
  const revoked = await db.run('UPDATE access_refresh_tokens SET revoked_ms = ? WHERE code_id = ? AND revoked_ms IS NULL', [Date.now(), codeId]);
  await endSignIn(db, codeId);
  return revoked;
}

/**
 * Ends sign-in `signIn` (an app signing the person out, RFC 7009): every refresh token it led to stops
 * working, and every access token it gave, together.
 */
export async function revokeSignIn(driver: SqlDriver, signIn: string): Promise<void> {
  await driver.transaction(async (tx) => {
    await tx.run('UPDATE access_refresh_tokens SET revoked_ms = ? WHERE (code_id = ? OR family_id = ?) AND revoked_ms IS NULL', [Date.now(), signIn, signIn]);
    await endSignIn(tx, signIn);
  });
}

/** Every refresh token of the person's, for every app (their sign-ins' access tokens are refused by iat, users.ts). */
export async function revokeRefreshTokensOf(db: SqlExecutor, userId: string): Promise<void> {
  await db.run('UPDATE access_refresh_tokens SET revoked_ms = ? WHERE user_id = ? AND revoked_ms IS NULL', [Date.now(), userId]);
}

/** How long past its end a sign-in is remembered: until the last access token it gave has expired, with a minute for clocks. */
const ENDED_KEPT_MS = (TOKEN_LIFETIME_SECONDS + 60) * 1000;

async function endSignIn(db: SqlExecutor, signIn: string): Promise<void> {
  const now = Date.now();
  await db.run('INSERT INTO access_ended_sign_ins (sign_in, ended_ms, expires_ms) VALUES (?, ?, ?) ON CONFLICT (sign_in) DO NOTHING', [signIn, now, now + ENDED_KEPT_MS]);
  await db.run('DELETE FROM access_ended_sign_ins WHERE expires_ms < ?', [now]);
}

/** Whether sign-in `signIn` has ended (a replayed code or refresh token), so its access tokens are refused. */
export async function signInEnded(db: SqlExecutor, signIn: string): Promise<boolean> {
  return Boolean(await db.get('SELECT 1 AS ended FROM access_ended_sign_ins WHERE sign_in = ?', [signIn]));
}
