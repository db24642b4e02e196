// OAuth2 for system clients: POST /oauth2/token (client_credentials with a client secret or a signed
// client assertion, private_key_jwt), /oauth2/jwks, and SMART's /.well-known/smart-configuration.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import rateLimit from '@fastify/rate-limit';
import { createLocalJWKSet, jwtVerify } from 'jose';
import type { SqlDriver } from '../record/index.ts';
import { authenticateClientSecret, findClient, type SystemClient } from './clients.ts';
import { grantScopes, parseScope, parseScopes, systemScopes } from './scopes.ts';
import type { TokenService } from './tokens.ts';
import { createHash } from 'node:crypto';
import { CODE_TYP } from './authorize.ts';
import { holdsMembership } from './people/users.ts';

export interface TokenEndpointOptions {
  driver: SqlDriver;
  tokens: TokenService;
  /** The public origin (scheme://host[:port]) for a request: issuer of tokens and base of the FHIR API. */
  originOf(req: FastifyRequest): string;
  /** Token requests per minute per address. */
  rateLimitPerMinute: number;
}

/** Largest token request form: a client assertion (a signed JWT) is a few KB at most. */
export const FORM_BODY_LIMIT = 16 * 1024;

const ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

class OAuthError extends Error {
  constructor(readonly status: number, readonly code: string, description: string) {
    super(description);
  }
}

export async function tokenEndpoint(app: FastifyInstance, options: TokenEndpointOptions): Promise<void> {
  // Only token requests are limited: discovery (smart-configuration, jwks) is read freely by apps and must
  // not use up an address's allowance for the token request that follows it.
  await app.register(rateLimit, { global: false });
  const limit = {
    rateLimit: {
      max: options.rateLimitPerMinute,
      timeWindow: '1 minute',
      errorResponseBuilder: () => ({ statusCode: 429, error: 'slow_down', error_description: 'Too many token requests from this address; wait a minute.' }),
    },
  };
  app.removeAllContentTypeParsers();
  // Anyone may post here before they are known: the form is read only up to what a token request needs.
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: FORM_BODY_LIMIT }, (_req, body, done) => done(null, Object.fromEntries(new URLSearchParams(body as string))));
  app.setErrorHandler((err, _req, reply) => {
    if (err instanceof OAuthError) return oauthError(reply, err);
    const status = (err as { statusCode?: number }).statusCode ?? 500;
    if (status === 413) return reply.code(413).header('connection', 'close').send({ error: 'invalid_request', error_description: `The token request is larger than ${FORM_BODY_LIMIT / 1024} KB; no token request needs that.` });
    if (status === 429) return reply.code(429).send({ error: 'slow_down', error_description: 'Too many token requests from this address; wait a minute.' });
    if (status === 415) return reply.code(400).send({ error: 'invalid_request', error_description: 'Send the token request as application/x-www-form-urlencoded.' });
    return reply.code(status >= 500 ? 500 : 400).send({ error: status >= 500 ? 'server_error' : 'invalid_request', error_description: status >= 500 ? 'The token could not be issued.' : (err as Error).message });
  });

  app.post('/oauth2/token', { config: limit }, async (req, reply) => {
    const form = (req.body ?? {}) as Record<string, string>;
    if (form.grant_type === 'authorization_code') {
      reply.header('cache-control', 'no-store').header('pragma', 'no-cache');
      return exchangeCode(options, req, form);
    }
    if (form.grant_type !== 'client_credentials') {
      throw new OAuthError(400, 'unsupported_grant_type', `grant_type must be client_credentials or authorization_code, not '${form.grant_type ?? ''}'.`);
    }
    const origin = options.originOf(req);
    const client = await authenticateClient(options, req, form, `${origin}/oauth2/token`);
    const scopes = clientCredentialsScopes(form.scope, client);
    const { token, expiresIn } = await options.tokens.issue({ issuer: origin, audience: `${origin}/fhir`, clientId: client.clientId, scope: scopes.join(' '), org: client.organization });
    reply.header('cache-control', 'no-store').header('pragma', 'no-cache');
    return { access_token: token, token_type: 'Bearer', expires_in: expiresIn, scope: scopes.join(' ') };
  });

  app.get('/oauth2/jwks', async () => options.tokens.jwks());

  app.get('/.well-known/smart-configuration', async (req) => {
    const origin = options.originOf(req);
    return {
      issuer: origin,
      token_endpoint: `${origin}/oauth2/token`,
      jwks_uri: `${origin}/oauth2/jwks`,
      authorization_endpoint: `${origin}/oauth2/authorize`,
      grant_types_supported: ['client_credentials', 'authorization_code'],
      response_types_supported: ['code'],
      code_challenge_methods_supported: ['S256'],
      token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post', 'private_key_jwt'],
      token_endpoint_auth_signing_alg_values_supported: ['RS384', 'ES384', 'RS256', 'ES256'],
      scopes_supported: ['system/*.cruds', 'system/*.rs', 'system/*.read', 'system/*.write', 'user/*.cruds', 'user/*.rs', 'patient/*.rs', 'launch/patient'],
      // Patient context (patient/ scopes, launch/patient) is given to a person signing in to their own
      // record only: there is no patient picker, so staff and carers asking for it are refused invalid_scope.
      capabilities: ['client-confidential-symmetric', 'client-confidential-asymmetric', 'client-public', 'permission-v1', 'permission-v2', 'permission-user', 'permission-patient', 'launch-standalone', 'context-standalone-patient'],
    };
  });
}

/**
 * client_credentials speaks for the client alone, so it issues only system/ scopes. user/ and patient/
 * scopes are a person's, bounded by their relationships, consent and break-glass: they come only with a
 * sign-in (authorization_code), never to a client acting as itself.
 */
function clientCredentialsScopes(requested: string | undefined, client: SystemClient): string[] {
  const personal = (requested ?? '').split(/\s+/).filter((text) => /^(user|patient)\//.test(text));
  if (personal.length) {
    throw new OAuthError(400, 'invalid_scope', `client_credentials issues only system/ scopes; '${personal.join(' ')}' act for a person and come only with their sign-in (grant_type=authorization_code).`);
  }
  if (!systemScopes(parseScopes(client.scopes)).length) {
    throw new OAuthError(400, 'unauthorized_client', 'This client is registered only for people\'s sign-in (user/ or patient/ scopes): it may not use client_credentials. Sign a person in with grant_type=authorization_code.');
  }
  const scopes = grantScopes(requested, client.scopes).filter((text) => parseScope(text)?.context === 'system');
  if (!scopes.length) throw new OAuthError(400, 'invalid_scope', `None of the requested scopes ('${requested ?? ''}') is granted to this client.`);
  return scopes;
}

/** authorization_code: the code from /oauth2/authorize, its PKCE verifier, and the client it was issued to. */
async function exchangeCode(options: TokenEndpointOptions, req: FastifyRequest, form: Record<string, string>) {
  const origin = options.originOf(req);
  let code;
  try {
    code = await options.tokens.verifyStatement(form.code ?? '', { typ: CODE_TYP, issuer: origin });
  } catch {
    throw new OAuthError(400, 'invalid_grant', 'The authorization code is not valid or has expired (codes last one minute).');
  }
  const registered = await findClient(options.driver, String(code.client_id));
  const client = registered && !registered.hasSecret && !registered.jwks && !form.client_secret && !form.client_assertion && !req.headers.authorization
    ? registered // a public client: PKCE alone binds the code to it
    : await authenticateClient(options, req, form, `${origin}/oauth2/token`);
  if (!client || client.revoked || client.clientId !== code.client_id || (form.client_id && form.client_id !== client.clientId)) {
    throw new OAuthError(400, 'invalid_grant', 'This code was issued to another client.');
  }
  if (form.redirect_uri !== code.redirect_uri) throw new OAuthError(400, 'invalid_grant', 'redirect_uri must be the one the code was requested with.');
  const challenge = createHash('sha256').update(form.code_verifier ?? '').digest('base64url');
  if (!form.code_verifier || challenge !== code.code_challenge) throw new OAuthError(400, 'invalid_grant', 'The PKCE code_verifier does not match the code_challenge.');
  const fresh = await options.driver.run('INSERT INTO access_used_assertions (jti, expires_ms) VALUES (?, ?) ON CONFLICT (jti) DO NOTHING', [`code:${code.jti}`, (code.exp ?? 0) * 1000]);
  if (!fresh) throw new OAuthError(400, 'invalid_grant', 'This authorization code has been used already.');
  const membership = { organisation: code.org as string | undefined, role: String(code.role) };
  if (!(await holdsMembership(options.driver, String(code.sub), membership))) throw new OAuthError(400, 'invalid_grant', 'The person is disabled or no longer holds that role.');
  const scope = String(code.scope);
  // The patient context chosen at sign-in (authorize.ts): the token is bound to it, and SMART apps read it here.
  const patient = typeof code.patient === 'string' ? code.patient : undefined;
  const user = { userId: String(code.sub), name: String(code.name), role: membership.role, fhirUser: code.fhirUser as string | undefined, ...(patient ? { patient } : {}) };
  const { token, expiresIn } = await options.tokens.issue({ issuer: origin, audience: `${origin}/fhir`, clientId: client.clientId, scope, org: membership.organisation, user });
  return { access_token: token, token_type: 'Bearer', expires_in: expiresIn, scope, ...(user.fhirUser ? { fhirUser: user.fhirUser } : {}), ...(patient ? { patient } : {}) };
}

async function authenticateClient(options: TokenEndpointOptions, req: FastifyRequest, form: Record<string, string>, tokenUrl: string): Promise<SystemClient> {
  if (form.client_assertion_type || form.client_assertion) return authenticateAssertion(options, form, tokenUrl);
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
      throw new OAuthError(401, 'invalid_client', 'The HTTP Basic credentials must be client_id:client_secret, each form-urlencoded.');
    }
  }
  if (!clientId || !secret) throw new OAuthError(401, 'invalid_client', 'Authenticate the client: HTTP Basic, client_id and client_secret, or a client assertion (private_key_jwt).');
  const client = await authenticateClientSecret(options.driver, clientId, secret);
  if (!client) throw new OAuthError(401, 'invalid_client', 'Unknown client, wrong secret, or the client has been revoked.');
  return client;
}

/** private_key_jwt (RFC 7523), as NHS national APIs use: a JWT signed with the client's registered key. */
async function authenticateAssertion(options: TokenEndpointOptions, form: Record<string, string>, tokenUrl: string): Promise<SystemClient> {
  if (form.client_assertion_type !== ASSERTION_TYPE || !form.client_assertion) {
    throw new OAuthError(400, 'invalid_request', `client_assertion_type must be ${ASSERTION_TYPE} and client_assertion a signed JWT.`);
  }
  const unverified = decodePayload(form.client_assertion);
  const client = typeof unverified?.iss === 'string' ? await findClient(options.driver, unverified.iss) : undefined;
  if (!client || client.revoked || !client.jwks) throw new OAuthError(401, 'invalid_client', 'Unknown client, no registered public key, or the client has been revoked.');
  let payload;
  try {
    ({ payload } = await jwtVerify(form.client_assertion, createLocalJWKSet(client.jwks as never), {
      algorithms: ['RS384', 'ES384', 'RS256', 'ES256'],
      issuer: client.clientId,
      subject: client.clientId,
      audience: tokenUrl,
      maxTokenAge: '5 minutes',
      requiredClaims: ['exp', 'jti'],
    }));
  } catch (err) {
    throw new OAuthError(401, 'invalid_client', `The client assertion was refused: ${(err as Error).message}.`);
  }
  if ((payload.exp ?? 0) * 1000 > Date.now() + 5 * 60_000) throw new OAuthError(401, 'invalid_client', 'The client assertion must expire within 5 minutes.');
  // A captured assertion must not be usable twice.
  const used = await options.driver.run('INSERT INTO access_used_assertions (jti, expires_ms) VALUES (?, ?) ON CONFLICT (jti) DO NOTHING', [
    `${client.clientId}:${payload.jti}`, (payload.exp ?? 0) * 1000,
  ]);
  if (!used) throw new OAuthError(401, 'invalid_client', 'This client assertion (jti) has been used before.');
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

function oauthError(reply: FastifyReply, err: OAuthError): FastifyReply {
  if (err.status === 401) reply.header('www-authenticate', 'Basic realm="carebridge"');
  return reply.code(err.status).header('cache-control', 'no-store').send({ error: err.code, error_description: err.message });
}
