// People's passwords: argon2id hashes (OWASP's baseline parameters: 19 MiB, 2 passes, 1 lane), the rules
// a new password must meet, and a verification that costs the same whether or not the account exists.
import argon2 from 'argon2';
import { randomBytes } from 'node:crypto';

export const MIN_PASSWORD_LENGTH = 12;
// argon2 accepts any length; a cap stops a megabyte "password" being hashed on every attempt.
export const MAX_PASSWORD_LENGTH = 256;

const OPTIONS = { type: argon2.argon2id, memoryCost: 19456, timeCost: 2, parallelism: 1 } as const;

/** What sign-in needs from a password hash; tests wrap the real one to count verifications. */
export interface PasswordHasher {
  hash(password: string): Promise<string>;
  verify(hash: string, password: string): Promise<boolean>;
  /** Whether the hash was made with weaker or other parameters than today's, so it should be replaced. */
  outdated(hash: string): boolean;
}

export const argon2Hasher: PasswordHasher = {
  hash: (password) => argon2.hash(password, OPTIONS),
  async verify(hash, password) {
    try {
      return await argon2.verify(hash, password);
    } catch {
      return false; // a malformed stored hash never signs anyone in
    }
  },
  outdated: (hash) => argon2.needsRehash(hash, OPTIONS),
};

/** Throws a sentence saying what is wrong with a new password, or returns nothing. */
export function checkNewPassword(password: string, username?: string): void {
  if (typeof password !== 'string' || password.length < MIN_PASSWORD_LENGTH) {
    throw new Error(`The password must be at least ${MIN_PASSWORD_LENGTH} characters long.`);
  }
  if (password.length > MAX_PASSWORD_LENGTH) throw new Error(`The password must be at most ${MAX_PASSWORD_LENGTH} characters long.`);
  if (!password.trim()) throw new Error('The password cannot be only spaces.');
  if (username && password.toLowerCase().includes(username.toLowerCase())) throw new Error('The password must not contain the username.');
  if (new Set(password).size < 4) throw new Error('The password must not be one or two characters repeated.');
}

/** A random password for an account created without one (about 120 bits), shown once. */
export function generatePassword(): string {
  return randomBytes(15).toString('base64url').replace(/^-+/, 'x'); // no leading '-' that a shell would read as a flag
}

/**
 * A hash of a password nobody knows, made once, checked against when the username is unknown (or has no
 * password) so the answer takes as long as for a real account and does not reveal which usernames exist.
 */
export function decoyHash(hasher: PasswordHasher): () => Promise<string> {
  let decoy: Promise<string> | undefined;
  return () => (decoy ??= hasher.hash(randomBytes(24).toString('base64url')));
}
