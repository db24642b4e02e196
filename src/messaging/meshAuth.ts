// The NHSMESH authorisation header, as MESH defines it:
//   NHSMESH {mailbox}:{nonce}:{nonce_count}:{yyyyMMddHHmm}:{hmac}
// hmac = hex HMAC-SHA256, keyed with the shared key, over "mailbox:nonce:nonce_count:password:timestamp".
// Used by the built-in mailbox to check callers and by the client to call an external MESH.
import { createHmac, randomUUID, timingSafeEqual } from 'node:crypto';

export interface MeshAuthorisation {
  mailbox: string;
  nonce: string;
  nonceCount: string;
  timestamp: string;
  hmac: string;
}

/** yyyyMMddHHmm in UTC. */
export function meshTimestamp(at: number): string {
  return new Date(at).toISOString().replace(/[-:T]/g, '').slice(0, 12);
}

/** The instant a MESH timestamp denotes, or undefined when it is not one. */
export function parseMeshTimestamp(text: string): number | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})$/.exec(text);
  if (!m) return undefined;
  const at = Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5]);
  return meshTimestamp(at) === text ? at : undefined;
}

export function meshHmac(sharedKey: string, a: Omit<MeshAuthorisation, 'hmac'>, password: string): string {
  return createHmac('sha256', sharedKey).update(`${a.mailbox}:${a.nonce}:${a.nonceCount}:${password}:${a.timestamp}`).digest('hex');
}

export function meshAuthorisationHeader(mailbox: string, password: string, sharedKey: string, at = Date.now()): string {
  const parts = { mailbox, nonce: randomUUID(), nonceCount: '0', timestamp: meshTimestamp(at) };
  return `NHSMESH ${parts.mailbox}:${parts.nonce}:${parts.nonceCount}:${parts.timestamp}:${meshHmac(sharedKey, parts, password)}`;
}

export function parseMeshAuthorisation(header: string | undefined): MeshAuthorisation | undefined {
  const m = /^NHSMESH ([^:\s]+):([^:\s]+):([^:\s]+):([^:\s]+):([0-9a-fA-F]{64})$/.exec(header?.trim() ?? '');
  return m ? { mailbox: m[1], nonce: m[2], nonceCount: m[3], timestamp: m[4], hmac: m[5].toLowerCase() } : undefined;
}

/** Compares in constant time, so the answer's timing reveals nothing about the expected value. */
export function hmacMatches(expected: string, given: string): boolean {
  const a = Buffer.from(expected, 'hex');
  const b = Buffer.from(given, 'hex');
  return a.length === b.length && timingSafeEqual(a, b);
}
