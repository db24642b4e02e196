// Time-based one-time passwords (RFC 6238: SHA-1, 6 digits, 30 s, as authenticator apps expect), with
// each code usable once: a code seen over someone's shoulder cannot be replayed within its window.
import { Secret, TOTP } from 'otpauth';

const ISSUER = 'CareBridge';
const PERIOD_SECONDS = 30;
/** Codes from one step either side are accepted, for phones whose clocks drift. */
const WINDOW = 1;

export function newTotpSecret(): string {
  return new Secret({ size: 20 }).base32;
}

/** The otpauth:// URI an authenticator app scans (as a QR code) or takes typed in. */
export function totpUri(secret: string, username: string): string {
  return new TOTP({ issuer: ISSUER, label: username, secret: Secret.fromBase32(secret), period: PERIOD_SECONDS }).toString();
}

/** The current code (for tests and for a person setting up an app by hand). */
export function totpCode(secret: string, at: number): string {
  return TOTP.generate({ secret: Secret.fromBase32(secret), period: PERIOD_SECONDS, timestamp: at });
}

/**
 * The time step the code belongs to when it is right at `at` and newer than `lastStep` (the step of the
 * last code accepted); undefined otherwise.
 */
export function acceptedTotpStep(secret: string, code: string, at: number, lastStep: number | undefined): number | undefined {
  const token = code.replace(/\s+/g, '');
  if (!/^\d{6}$/.test(token)) return undefined;
  const delta = TOTP.validate({ token, secret: Secret.fromBase32(secret), period: PERIOD_SECONDS, timestamp: at, window: WINDOW });
  if (delta === null) return undefined;
  const step = TOTP.counter({ period: PERIOD_SECONDS, timestamp: at }) + delta;
  return lastStep !== undefined && step <= lastStep ? undefined : step;
}
