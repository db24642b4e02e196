// People signing in: the pieces of this folder assembled with the configured policy, for setUpAccess.
import type { SqlDriver } from '../../record/index.ts';
import type { AuditTrail } from '../audit/trail.ts';
import { oidcSignIn, type OidcSettings, type PeopleOidc } from './oidc.ts';
import { argon2Hasher, type PasswordHasher } from './passwords.ts';
import { sessionStore, type Sessions } from './sessions.ts';
import { passwordSignIn, type SignInRequest, type SignInResult } from './signIn.ts';

export interface PeopleOptions {
  /** Failed attempts in a row before an account is locked (default 5). */
  lockoutFailures?: number;
  /** How long a lockout lasts (default 15 minutes). */
  lockoutMinutes?: number;
  /** A session ends after this long without a request (default 30 minutes)… */
  sessionIdleMinutes?: number;
  /** …and this long after it started, whatever happens (default 12 hours). */
  sessionMaxHours?: number;
  /** Sign-in through an external OpenID Connect provider, when configured. */
  oidc?: OidcSettings;
  /** The clock (tests move it instead of sleeping). */
  now?: () => number;
  /** The password hasher (tests wrap the real one to count verifications). */
  passwords?: PasswordHasher;
}

export interface People {
  signIn(request: SignInRequest): Promise<SignInResult>;
  /** Present when an OpenID Connect provider is configured. */
  oidc?: PeopleOidc;
}

const MINUTE = 60_000;

export function setUpPeople(driver: SqlDriver, options: PeopleOptions = {}, audit?: AuditTrail): { people: People; sessions: Sessions } {
  const now = options.now ?? Date.now;
  const signIn = passwordSignIn({
    driver,
    passwords: options.passwords ?? argon2Hasher,
    lockout: { failures: options.lockoutFailures ?? 5, lockMs: (options.lockoutMinutes ?? 15) * MINUTE },
    now,
    audit,
  });
  const sessions = sessionStore(driver, { idleMs: (options.sessionIdleMinutes ?? 30) * MINUTE, absoluteMs: (options.sessionMaxHours ?? 12) * 60 * MINUTE }, now, audit);
  return { people: { signIn, ...(options.oidc ? { oidc: oidcSignIn(driver, options.oidc, audit) } : {}) }, sessions };
}
