// Who is asking at the OAuth endpoints (/oauth2/token, /oauth2/revoke): the client authenticated by its
// secret (HTTP Basic or the form) or a signed assertion (private_key_jwt, RFC 7523), or a public client
// taken at its word where a code or token it holds binds it; OAuth's error answers; and what each request
// turned out to be (Seen), which its audit entry names. Never a secret, assertion, code or token.
import type { FastifyReply, FastifyRequest } from 'fastify';
import { createLocalJWKSet, jwtVerify } from 'jose';
import type { SqlDriver } from '../record/index.ts';
import { ASSERTION_ALGORITHMS, authenticateClientSecret, findClient, type SystemClient } from './clients.ts';
import type { AuthenticationAttempt } from './people/authenticationAudit.ts';

/** What the OAuth endpoints' client checks need. */
export interface OAuthDeps { driver: SqlDriver }

const ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

export class OAuthError extends Error {
  /** `reason`: why, for the audit trail, where the description does not say it exactly (never a credential). */
  constructor(readonly status: number, readonly code: string, description: string, readonly reason?: string) {
    super(description);
  }
}

/**
 * What a token request turned out to be, filled in as it is checked: what its audit entry names. Never the
 * secret, assertion, code or token.
 */
export interface Seen {
  method: NonNullable<AuthenticationAttempt['method']>;
  client?: NonNullable<AuthenticationAttempt['client']>;
  /** The person an authorization code was issued for, once the code is verified. */
  user?: { userId: string; name?: string; fhirUser?: string };
}

/** Client-supplied text in the audit: bounded, as a username is. */
export const bounded = (text: string, max = 128) => (text.length > max ? `${text.slice(0, max)}…` : text);

/** The client a refused request named, as registered (or not): looked up only on the way to a refusal. */
export async function named(options: OAuthDeps, clientId: string | undefined): Promise<Seen['client']> {
  if (!clientId) return undefined;
  const client = await findClient(options.driver, clientId).catch(() => undefined);
  return client ? { clientId: client.clientId, name: client.name, registered: true } : { clientId: bounded(clientId), registered: false };
}

export const asSeen = (client: SystemClient): NonNullable<Seen['client']> => ({ clientId: client.clientId, name: client.name, registered: true });

/**
 * The client presenting a code or refresh token issued to `issuedTo`: a public client (no secret, no keys,
 * none given) is taken at its word, as PKCE or the token alone binds it; any other authenticates.
 */
export async function presentingClient(options: OAuthDeps, req: FastifyRequest, form: Record<string, string>, issuedTo: string, origin: string, seen: Seen): Promise<SystemClient> {
  const registered = await findClient(options.driver, issuedTo);
  const isPublic = registered && !registered.hasSecret && !registered.jwks && !form.client_secret && !form.client_assertion && !req.headers.authorization;
  if (isPublic) seen.client = form.client_id && form.client_id !== registered.clientId ? await named(options, form.client_id) : asSeen(registered);
  const client = isPublic ? registered : await authenticateClient(options, req, form, `${origin}/oauth2/token`, seen);
  if (!client) throw new OAuthError(400, 'invalid_grant', 'This grant was issued to another client.', `issued to a client no longer registered ('${bounded(issuedTo)}')`);
  if (client.revoked) throw new OAuthError(400, 'invalid_grant', 'This client has been revoked.', 'client revoked');
  return client;
}

export async function authenticateClient(options: OAuthDeps, req: FastifyRequest, form: Record<string, string>, tokenUrl: string, seen: Seen): Promise<SystemClient> {
  if (form.client_assertion_type || form.client_assertion) return authenticateAssertion(options, form, tokenUrl, seen);
  let clientId = form.client_id;
  let secret = form.client_secret;
  const basic = /^Basic\s+(.+)$/i.exec(req.headers.authorization ?? '');
  if (basic) {
    const decoded = Buffer.from(basic[1], 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    // RFC 6749 §2.3.1: both halves are form-urlencoded. Credentials that do not decode are the client's
    // failure to authenticate (§5.2 invalid_client), not the server's.
    try {
      if (colon < 0) throw new URIError('no colon');
      clientId = decodeURIComponent(decoded.slice(0, colon));
      secret = decodeURIComponent(decoded.slice(colon + 1));
    } catch {
      throw new OAuthError(401, 'invalid_client', 'The HTTP Basic credentials must be client_id:client_secret, each form-urlencoded.', 'HTTP Basic credentials that do not decode');
    }
  }
  if (!clientId || !secret) {
    seen.client = await named(options, clientId);
    throw new OAuthError(401, 'invalid_client', 'Authenticate the client: HTTP Basic, client_id and client_secret, or a client assertion (private_key_jwt).', clientId ? 'no client secret given' : 'no client credentials');
  }
  const client = await authenticateClientSecret(options.driver, clientId, secret);
  if (!client) {
    // The caller hears the same for each; the audit says which, from a look-up made only on the way to refusing.
    const known = await findClient(options.driver, clientId).catch(() => undefined);
    seen.client = known ? asSeen(known) : { clientId: bounded(clientId), registered: false };
    const reason = !known ? 'unknown client' : known.revoked ? 'client revoked' : !known.hasSecret ? 'no client secret registered for this client' : 'wrong client secret';
    throw new OAuthError(401, 'invalid_client', 'Unknown client, wrong secret, or the client has been revoked.', reason);
  }
  seen.client = asSeen(client);
  return client;
}

/** private_key_jwt (RFC 7523), as NHS national APIs use: a JWT signed with the client's registered key. */
async function authenticateAssertion(options: OAuthDeps, form: Record<string, string>, tokenUrl: string, seen: Seen): Promise<SystemClient> {
  if (form.client_assertion_type !== ASSERTION_TYPE || !form.client_assertion) {
    throw new OAuthError(400, 'invalid_request', `client_assertion_type must be ${ASSERTION_TYPE} and client_assertion a signed JWT.`, 'bad client assertion: wrong client_assertion_type or no assertion');
  }
  const unverified = decodePayload(form.client_assertion);
  const client = typeof unverified?.iss === 'string' ? await findClient(options.driver, unverified.iss) : undefined;
  // Who the assertion claims to be, until its signature says whether it is.
  if (client) seen.client = asSeen(client);
  else if (typeof unverified?.iss === 'string') seen.client = { clientId: bounded(unverified.iss), registered: false };
  if (!client || client.revoked || !client.jwks) {
    const reason = !client ? (typeof unverified?.iss === 'string' ? 'unknown client' : 'bad client assertion: it names no client (iss)') : client.revoked ? 'client revoked' : 'no public key registered for this client';
    throw new OAuthError(401, 'invalid_client', 'Unknown client, no registered public key, or the client has been revoked.', reason);
  }
  let payload;
  try {
    ({ payload } = await jwtVerify(form.client_assertion, createLocalJWKSet(client.jwks as never), {
      algorithms: ASSERTION_ALGORITHMS,
      issuer: client.clientId,
      subject: client.clientId,
      audience: tokenUrl,
      // No iat required (no maxTokenAge): SMART Backend Services and NHS national APIs ask clients for iss,
      // sub, aud, jti and exp only. The lifetime is bounded by exp (below) and each jti is taken once.
      requiredClaims: ['exp', 'jti'],
    }));
  } catch (err) {
    throw new OAuthError(401, 'invalid_client', `The client assertion was refused: ${(err as Error).message}.`, `bad client assertion: ${bounded((err as Error).message, 200)}`);
  }
  if ((payload.exp ?? 0) * 1000 > Date.now() + 5 * 60_000) throw new OAuthError(401, 'invalid_client', 'The client assertion must expire within 5 minutes.', 'bad client assertion: expires more than 5 minutes ahead');
  // A captured assertion must not be usable twice.
  const used = await options.driver.run('INSERT INTO access_used_assertions (jti, expires_ms) VALUES (?, ?) ON CONFLICT (jti) DO NOTHING', [
    `${client.clientId}:${payload.jti}`, (payload.exp ?? 0) * 1000,
  ]);
  if (!used) throw new OAuthError(401, 'invalid_client', 'This client assertion (jti) has been used before.', `client assertion replayed: jti '${bounded(String(payload.jti))}' used before`);
  await options.driver.run('DELETE FROM access_used_assertions WHERE expires_ms < ?', [Date.now()]);
  return client;
}

function decodePayload(jwt: string): Record<string, unknown> | undefined {
  try {
    return JSON.parse(Buffer.from(jwt.split('.')[1] ?? '', 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
}

export function oauthError(reply: FastifyReply, err: OAuthError): FastifyReply {
  if (err.status === 401) reply.header('www-authenticate', 'Basic realm="carebridge"');
  return reply.code(err.status).header('cache-control', 'no-store').send({ error: err.code, error_description: err.message });
}
