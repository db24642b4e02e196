// Password sign-in: argon2id verification, lockout after repeated failures, TOTP when enrolled, and an
// audit entry for every refusal and every lockout. An unknown username costs the same hash as a known one.
import type { SqlDriver, SqlExecutor } from '../../record/index.ts';
import type { AuditTrail } from '../audit/trail.ts';
import type { Role } from '../actor.ts';
import { authenticationRequest, type AuthenticationAttempt } from './authenticationAudit.ts';
import { decoyHash, MAX_PASSWORD_LENGTH, type PasswordHasher } from './passwords.ts';
import { acceptedTotpStep } from './totp.ts';
import { findUserRow, membershipsOf, type UserRow } from './users.ts';

export type SignInFailure = 'invalid' | 'locked' | 'totp-required' | 'totp-invalid' | 'disabled';

export type SignInResult =
  | { ok: true; user: { userId: string; username: string; name: string; fhirUser?: string }; memberships: { organisation?: string; organisationName?: string; role: Role }[] }
  | { ok: false; reason: SignInFailure; message: string };

export interface SignInRequest { username: string; password: string; totp?: string; address: string }

export interface LockoutPolicy {
  /** Failed attempts in a row that lock the account. */
  failures: number;
  /** How long a lockout lasts. */
  lockMs: number;
}

export interface SignInContext {
  driver: SqlDriver;
  passwords: PasswordHasher;
  lockout: LockoutPolicy;
  now: () => number;
  audit?: AuditTrail;
}

const INVALID = 'The username or password is not right.';
/** The account is not locked at the time given as this condition's parameter. */
const UNLOCKED = '(locked_until_ms IS NULL OR locked_until_ms <= ?)';

function refused(reason: SignInFailure, message: string): SignInResult {
  return { ok: false, reason, message };
}

function lockedMessage(until: number, now: number): string {
  const minutes = Math.max(1, Math.ceil((until - now) / 60_000));
  return `Too many failed attempts: this account is locked for ${minutes} more minute${minutes === 1 ? '' : 's'}. An administrator can unlock it sooner.`;
}

/** The signed-in user and the memberships they may choose from. */
export async function signedIn(driver: SqlDriver, row: UserRow): Promise<SignInResult> {
  return {
    ok: true,
    user: { userId: row.user_id, username: row.username, name: row.name, ...(row.fhir_user ? { fhirUser: row.fhir_user } : {}) },
    memberships: await membershipsOf(driver, row.user_id),
  };
}

export function passwordSignIn(ctx: SignInContext): (request: SignInRequest) => Promise<SignInResult> {
  const decoy = decoyHash(ctx.passwords);
  const audit = (request: SignInRequest, attempt: Omit<AuthenticationAttempt, 'action' | 'method'>) =>
    ctx.audit?.record(authenticationRequest(ctx.now(), request.address, { action: 'login', method: 'password', ...attempt }));

  /** When the account's lock ends, as stored now (0 when it is not locked). */
  const lockedUntil = async (db: SqlExecutor, userId: string): Promise<number> => {
    const row = await db.get<{ locked_until_ms: number | string | null }>('SELECT locked_until_ms FROM access_users WHERE user_id = ?', [userId]);
    return row?.locked_until_ms == null ? 0 : Number(row.locked_until_ms);
  };

  const lockedOut = (request: SignInRequest, row: UserRow, until: number, now: number): SignInResult => {
    audit(request, { username: row.username, userId: row.user_id, ok: false, detail: 'account locked' });
    return refused('locked', lockedMessage(until, now));
  };

  /**
   * Counts a failure unless the account is locked by now, and locks it when it is the last allowed. The
   * lock is looked at in the statement that counts: a guess whose hash was being checked while others
   * locked the account is not counted towards another lock.
   */
  const countFailure = (row: UserRow, now: number): Promise<{ until: number; already: boolean } | undefined> =>
    ctx.driver.transaction(async (tx) => {
      if (!(await tx.run(`UPDATE access_users SET failed_attempts = failed_attempts + 1 WHERE user_id = ? AND ${UNLOCKED}`, [row.user_id, now]))) {
        const until = await lockedUntil(tx, row.user_id);
        return until > now ? { until, already: true } : undefined;
      }
      const { failed_attempts } = (await tx.get<{ failed_attempts: number }>('SELECT failed_attempts FROM access_users WHERE user_id = ?', [row.user_id]))!;
      if (Number(failed_attempts) < ctx.lockout.failures) return undefined;
      // The count starts again after the lock, so each lockout is earned by a fresh run of failures.
      const until = now + ctx.lockout.lockMs;
      await tx.run('UPDATE access_users SET failed_attempts = 0, locked_until_ms = ? WHERE user_id = ?', [until, row.user_id]);
      return { until, already: false };
    });

  const fail = async (request: SignInRequest, row: UserRow, now: number, reason: 'invalid' | 'totp-invalid', what: string): Promise<SignInResult> => {
    const lock = await countFailure(row, now);
    if (lock?.already) return lockedOut(request, row, lock.until, now);
    const detail = lock ? `${what}; account locked until ${new Date(lock.until).toISOString()}` : what;
    audit(request, { username: row.username, userId: row.user_id, ok: false, detail });
    if (lock) return refused('locked', lockedMessage(lock.until, now));
    return refused(reason, reason === 'invalid' ? INVALID : 'That code is not right, or was already used: enter the current 6-digit code from your authenticator app.');
  };

  /**
   * Clears the failure count (and an expired lock), unless the account is locked by now: then returns when
   * the lock ends, and the right password does not lift a lock that guesses made while it was checked.
   */
  const succeed = (row: UserRow, now: number, newHash: string | null): Promise<number> =>
    ctx.driver.transaction(async (tx) => {
      const cleared = await tx.run(
        `UPDATE access_users SET failed_attempts = 0, locked_until_ms = NULL, password_hash = COALESCE(?, password_hash) WHERE user_id = ? AND ${UNLOCKED}`,
        [newHash, row.user_id, now],
      );
      return cleared ? 0 : lockedUntil(tx, row.user_id);
    });

  const noAccount = new NoAccountLocks(ctx.lockout);

  return async (request) => {
    const username = typeof request.username === 'string' ? request.username : '';
    const password = typeof request.password === 'string' && request.password.length <= MAX_PASSWORD_LENGTH ? request.password : '';
    const row = username && username.length <= 64 ? await findUserRow(ctx.driver, username) : undefined;
    if (!row || !row.password_hash) {
      await ctx.passwords.verify(await decoy(), password); // the same work as for a real account
      const now = ctx.now();
      const lock = noAccount.fail(username.slice(0, 64).toLowerCase(), now);
      const why = row ? 'the account has no password (it signs in through its identity provider)' : 'no such user';
      audit(request, { username: username.slice(0, 64), userId: row?.user_id, ok: false, detail: lock ? `${why}; refused as locked until ${new Date(lock).toISOString()}` : why });
      return lock ? refused('locked', lockedMessage(lock, now)) : refused('invalid', INVALID);
    }
    const right = await ctx.passwords.verify(row.password_hash, password);
    const now = ctx.now();
    // Looked at again after the hash: other guesses may have locked the account while it was checked.
    const until = await lockedUntil(ctx.driver, row.user_id);
    if (until > now) return lockedOut(request, row, until, now);
    if (!right) return fail(request, row, now, 'invalid', 'wrong password');
    // Only someone who knows the password learns that the account is disabled or needs a code.
    if (Number(row.disabled)) {
      audit(request, { username: row.username, userId: row.user_id, ok: false, detail: 'account disabled' });
      return refused('disabled', 'This account has been disabled: ask your organisation\'s CareBridge administrator.');
    }
    if (row.totp_secret) {
      if (!request.totp) return refused('totp-required', 'Enter the 6-digit code from your authenticator app.');
      const lastStep = row.totp_last_step === null ? undefined : Number(row.totp_last_step);
      const step = acceptedTotpStep(row.totp_secret, String(request.totp), now, lastStep);
      // Recording the step only if it is newer than the stored one makes a code single-use even when two
      // sign-ins race with it.
      const claimed = step !== undefined && (await ctx.driver.run(
        'UPDATE access_users SET totp_last_step = ? WHERE user_id = ? AND (totp_last_step IS NULL OR totp_last_step < ?)',
        [step, row.user_id, step],
      ));
      if (!claimed) return fail(request, row, now, 'totp-invalid', 'wrong or reused TOTP code');
    }
    const newHash = ctx.passwords.outdated(row.password_hash) ? await ctx.passwords.hash(password) : null;
    const lockEnds = await succeed(row, now, newHash);
    if (lockEnds) return lockedOut(request, row, lockEnds, now);
    audit(request, { username: row.username, userId: row.user_id, ok: true });
    return signedIn(ctx.driver, row);
  };
}

/**
 * Names that are no account here (or an account without a password) are refused as an account would be,
 * locked after as many failures and for as long, so the "locked" answer does not tell a guesser which
 * usernames exist. Held in memory, per node, and bounded: it only has to answer as a real account would.
 */
class NoAccountLocks {
  private static readonly MAX_NAMES = 10_000;
  private names = new Map<string, { failures: number; until: number }>();
  constructor(private readonly policy: LockoutPolicy) {}

  /** Counts a failure for the name; returns when its lock ends when it is (or now becomes) locked, else 0. */
  fail(name: string, now: number): number {
    let entry = this.names.get(name);
    if (entry && entry.until > now) return entry.until;
    if (!entry || entry.until) entry = { failures: 0, until: 0 };
    this.names.delete(name); // re-inserted last: the oldest names are forgotten first
    if (this.names.size >= NoAccountLocks.MAX_NAMES) this.names.delete(this.names.keys().next().value!);
    entry.failures += 1;
    if (entry.failures >= this.policy.failures) entry = { failures: 0, until: now + this.policy.lockMs };
    this.names.set(name, entry);
    return entry.until;
  }
}
