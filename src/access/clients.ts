// The register of system clients (integrations that call the API with OAuth2 client_credentials).
import { randomUUID } from 'node:crypto';
import { importJWK, type JWK } from 'jose';
import type { SqlExecutor } from '../record/index.ts';
import { generateSecret, hashSecret, verifySecret } from './secrets.ts';
import { parseScopes } from './scopes.ts';

export interface SystemClient {
  clientId: string;
  name: string;
  scopes: string;
  organization: string | null;
  /** Public keys (a JWKS) for private_key_jwt; null for secret-based clients. */
  jwks: { keys: Record<string, unknown>[] } | null;
  hasSecret: boolean;
  /** Where people signing in through this client may be sent back (exact match); empty for system-only clients. */
  redirectUris: string[];
  revoked: boolean;
  createdAt: string;
}

interface ClientRow { client_id: string; name: string; secret_hash: string | null; jwks: string | null; scopes: string; organization: string | null; revoked: number; created_ms: number; redirect_uris: string | null }

export const ADMIN_SCOPES = 'system/*.cruds';

function toClient(r: ClientRow): SystemClient {
  return {
    clientId: r.client_id,
    name: r.name,
    scopes: r.scopes,
    organization: r.organization,
    jwks: r.jwks ? JSON.parse(r.jwks) : null,
    hasSecret: Boolean(r.secret_hash),
    redirectUris: r.redirect_uris ? JSON.parse(r.redirect_uris) : [],
    revoked: Boolean(Number(r.revoked)),
    createdAt: new Date(Number(r.created_ms)).toISOString(),
  };
}

export interface NewClient {
  name: string;
  scopes: string;
  organization?: string;
  clientId?: string;
  /** Register public keys for private_key_jwt instead of issuing a secret. */
  jwks?: { keys: Record<string, unknown>[] };
  /** For apps that sign people in (authorization code with PKCE): where to send them back. */
  redirectUris?: string[];
  /** An app that cannot keep a secret (in a browser or on a device): no secret; PKCE protects its codes. */
  publicClient?: boolean;
}

/** Registers a client; returns it with its secret, which is shown this once and stored only hashed. */
export async function addClient(db: SqlExecutor, c: NewClient): Promise<{ client: SystemClient; secret?: string }> {
  if (!parseScopes(c.scopes).length) throw new Error(`'${c.scopes}' grants nothing: give SMART scopes such as system/Patient.rs or system/*.cruds.`);
  if (c.jwks && (!Array.isArray(c.jwks.keys) || !c.jwks.keys.length)) throw new Error('The JWKS must have at least one key.');
  for (const [i, key] of (c.jwks?.keys ?? []).entries()) await checkPublicJwk(key, i + 1);
  const clientId = c.clientId ?? randomUUID();
  if (!/^[A-Za-z0-9._~-]{3,128}$/.test(clientId)) throw new Error(`Client id '${clientId}' must be 3–128 letters, digits or . _ ~ -.`);
  if (await db.get('SELECT client_id FROM access_clients WHERE client_id = ?', [clientId])) throw new Error(`A client '${clientId}' already exists.`);
  for (const uri of c.redirectUris ?? []) checkRedirectUri(uri);
  if (c.publicClient && !c.redirectUris?.length) throw new Error('A public client signs people in, so it needs at least one redirect URI.');
  const secret = c.jwks || c.publicClient ? undefined : generateSecret();
  await db.run('INSERT INTO access_clients (client_id, name, secret_hash, jwks, scopes, organization, revoked, created_ms, redirect_uris) VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?)', [
    clientId, c.name, secret ? await hashSecret(secret) : null, c.jwks ? JSON.stringify(c.jwks) : null, c.scopes, c.organization ?? null, Date.now(),
    c.redirectUris?.length ? JSON.stringify(c.redirectUris) : null,
  ]);
  return { client: (await findClient(db, clientId))!, secret };
}

/**
 * What the token endpoint verifies client assertions with (authenticateAssertion in tokenEndpoint.ts):
 * SMART Backend Services' RS384 and ES384, their 256-bit kin, and RS512, which NHS national APIs have
 * their clients sign with, so a client built for those works here unchanged.
 */
export const ASSERTION_ALGORITHMS = ['RS384', 'ES384', 'RS256', 'ES256', 'RS512'];
/** JWK members that only a private or secret key has (RFC 7517/7518): never to be stored here. */
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];
const EC_ALGORITHM: Record<string, string> = { 'P-256': 'ES256', 'P-384': 'ES384' };

/**
 * A registered key must be one the token endpoint can verify an assertion with, or the client could never
 * authenticate; and it must be public: a private key in the database is a credential anyone reading the
 * database (or a backup) could sign as the client with.
 */
async function checkPublicJwk(key: Record<string, unknown>, n: number): Promise<void> {
  const named = `JWKS key ${n}${typeof key?.kid === 'string' ? ` (kid ${key.kid})` : ''}`;
  if (!key || typeof key !== 'object' || typeof key.kty !== 'string') throw new Error(`${named} is not a usable public key: it has no kty.`);
  if (key.kty === 'oct') throw new Error(`${named} is a symmetric (oct) key: register the client's public RSA or EC keys only.`);
  const secret = PRIVATE_MEMBERS.filter((m) => m in key);
  if (secret.length) throw new Error(`${named} holds private key material (${secret.join(', ')}): register the public key only; the private key must never leave the client.`);
  if (key.kty !== 'RSA' && key.kty !== 'EC') throw new Error(`${named} is not a usable public key: kty ${key.kty}; use RSA or EC (P-256, P-384).`);
  const alg = typeof key.alg === 'string' ? key.alg : key.kty === 'RSA' ? 'RS256' : EC_ALGORITHM[String(key.crv)];
  if (!alg || !ASSERTION_ALGORITHMS.includes(alg) || alg.startsWith('RS') !== (key.kty === 'RSA')) {
    throw new Error(`${named} is for ${key.alg ?? `curve ${key.crv}`}: client assertions are verified with ${ASSERTION_ALGORITHMS.join(', ')} only.`);
  }
  if (key.use !== undefined && key.use !== 'sig') throw new Error(`${named} is not a usable public key: use must be sig, not ${key.use}.`);
  if (key.kty === 'RSA' && Buffer.from(String(key.n ?? ''), 'base64url').length * 8 < 2048) throw new Error(`${named} is not a usable public key: RSA keys must be 2048 bits or more.`);
  try {
    await importJWK(key as JWK, alg);
  } catch (err) {
    throw new Error(`${named} is not a usable public key: ${(err as Error).message}.`);
  }
}

/** Redirect URIs are matched exactly; https, or http only to this machine (a developer's app). */
function checkRedirectUri(uri: string): void {
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    throw new Error(`Redirect URI '${uri}' is not an absolute URL.`);
  }
  const loopback = ['localhost', '127.0.0.1', '[::1]'].includes(url.hostname);
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && loopback)) throw new Error(`Redirect URI '${uri}' must use https (http only to localhost).`);
  if (url.hash) throw new Error(`Redirect URI '${uri}' must not have a fragment.`);
}

export async function findClient(db: SqlExecutor, clientId: string): Promise<SystemClient | undefined> {
  const row = await db.get<ClientRow>('SELECT * FROM access_clients WHERE client_id = ?', [clientId]);
  return row ? toClient(row) : undefined;
}

export async function listClients(db: SqlExecutor): Promise<SystemClient[]> {
  return (await db.all<ClientRow>('SELECT * FROM access_clients ORDER BY created_ms, client_id')).map(toClient);
}

export async function revokeClient(db: SqlExecutor, clientId: string): Promise<void> {
  if (!(await db.run('UPDATE access_clients SET revoked = 1 WHERE client_id = ?', [clientId]))) throw new Error(`No client '${clientId}'.`);
}

/** The client, if the secret is right and the client is not revoked. */
export async function authenticateClientSecret(db: SqlExecutor, clientId: string, secret: string): Promise<SystemClient | undefined> {
  const row = await db.get<ClientRow>('SELECT * FROM access_clients WHERE client_id = ?', [clientId]);
  if (!row || !row.secret_hash || Number(row.revoked)) return undefined;
  return (await verifySecret(secret, row.secret_hash)) ? toClient(row) : undefined;
}

/** What starting with CAREBRIDGE_ADMIN_CLIENT_ID / _SECRET did to that client, for the log and the audit trail. */
export type AdminClientOutcome = 'added' | 'unchanged' | 'reset' | 'revoked' | 'refused';

/** The name the administrative client is made with: with its scopes, how it is told from every other client. */
export const ADMIN_CLIENT_NAME = 'Administrator (from the environment)';

/**
 * Whether a registered client is the one the environment made: its name and full scope, and nothing an
 * integration or an app would have (keys, an organisation, redirect URIs). Any other client, even one with
 * the same scopes, belongs to someone else.
 */
function isEnvironmentAdmin(row: ClientRow): boolean {
  return row.name === ADMIN_CLIENT_NAME && row.scopes === ADMIN_SCOPES && !row.jwks && !row.organization && !row.redirect_uris;
}

/**
 * Makes sure the administrative client named by the environment exists with that secret and full
 * scope (CAREBRIDGE_ADMIN_CLIENT_ID / CAREBRIDGE_ADMIN_CLIENT_SECRET), so an operator can always get in.
 * Made the first time ('added', to be audited). Changing the secret in the environment rotates it ('reset',
 * to be audited). A revoked client is never brought back ('revoked'): it was revoked because its secret
 * leaked, and the environment may still hold it. A client of the same id that the environment did not make
 * (an integration, an app) is left exactly as it is ('refused'): an environment variable must not give an
 * ordinary client full access, nor take its credentials over.
 */
export async function ensureAdminClient(db: SqlExecutor, clientId: string, secret: string): Promise<AdminClientOutcome> {
  if (secret.length < 16) throw new Error('CAREBRIDGE_ADMIN_CLIENT_SECRET must be at least 16 characters.');
  // ON CONFLICT: two app nodes may start at the same moment.
  const inserted = await db.run(
    'INSERT INTO access_clients (client_id, name, secret_hash, jwks, scopes, organization, revoked, created_ms) VALUES (?, ?, ?, NULL, ?, NULL, 0, ?) ON CONFLICT (client_id) DO NOTHING',
    [clientId, ADMIN_CLIENT_NAME, await hashSecret(secret), ADMIN_SCOPES, Date.now()],
  );
  if (inserted) return 'added';
  const row = (await db.get<ClientRow>('SELECT * FROM access_clients WHERE client_id = ?', [clientId]))!;
  if (Number(row.revoked)) return 'revoked';
  if (!isEnvironmentAdmin(row)) return 'refused';
  const sameSecret = row.secret_hash ? await verifySecret(secret, row.secret_hash) : false;
  if (sameSecret) return 'unchanged';
  // Only while still the administrative client and not revoked, and only once when nodes start together:
  // a revocation made meanwhile stays, and the change is audited by the node that made it.
  const changed = await db.run(
    "UPDATE access_clients SET secret_hash = ? WHERE client_id = ? AND revoked = 0 AND COALESCE(secret_hash, '') = ? AND name = ? AND scopes = ? AND jwks IS NULL AND organization IS NULL AND redirect_uris IS NULL",
    [await hashSecret(secret), clientId, row.secret_hash ?? '', ADMIN_CLIENT_NAME, ADMIN_SCOPES],
  );
  if (changed) return 'reset';
  return (await findClient(db, clientId))?.revoked ? 'revoked' : 'unchanged';
}
