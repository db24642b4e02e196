// OAuth2 for system clients: POST /oauth2/token (client_credentials with a client secret or a signed
// client assertion, private_key_jwt), /oauth2/jwks, and SMART's /.well-known/smart-configuration. For apps
// a person signs in to (authorize.ts): the code's exchange, with an OpenID Connect id_token when asked for
// (and /.well-known/openid-configuration), refresh tokens (refreshTokens.ts), and signing out at POST
// /oauth2/revoke (tokenRevocation.ts).
// Every token request that reaches the endpoint is an authentication AuditEvent, issued or refused and why
// (people/authenticationAudit.ts): a system token reaches every record, so guessing a client's secret,
// replaying an assertion or trying stolen codes must leave a trace, as people's failed sign-ins do.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import rateLimit from '@fastify/rate-limit';
import { isTemporaryOutage, OUTAGE_RETRY_AFTER_SECONDS, type SqlDriver, type SqlExecutor } from '../record/index.ts';
import { ASSERTION_ALGORITHMS, findClient, type SystemClient } from './clients.ts';
import { OAuthError, authenticateClient, bounded, named, oauthError, presentingClient, type Seen } from './clientAuthentication.ts';
import { IDENTITY_SCOPES, grantScopes, parseScope, parseScopes, scopesBeyond, systemScopes } from './scopes.ts';
import type { TokenService } from './tokens.ts';
import { createHash } from 'node:crypto';
import { CODE_TYP } from './authorize.ts';
import { holdsMembership, personNamed, signedOutSince } from './people/users.ts';
import { claimRefreshToken, familyLifetimeMs, issueRefreshToken, presentedRefresh, refreshKind, revokeCodeFamily, revokeRefreshFamily, signInOf, type RefreshGrant, type RefreshLifetimes } from './refreshTokens.ts';
import { authenticationRequest } from './people/authenticationAudit.ts';
import { revokeToken } from './tokenRevocation.ts';
import { ROLE_PURPOSE, isRole, type Actor } from './actor.ts';
import type { AuditTrail } from './audit/trail.ts';

export interface TokenEndpointOptions {
  driver: SqlDriver;
  tokens: TokenService;
  /** The public origin (scheme://host[:port]) for a request: issuer of tokens and base of the FHIR API. */
  originOf(req: FastifyRequest): string;
  /** Token requests per minute per address. */
  rateLimitPerMinute: number;
  /** Where every token request's outcome is recorded; absent only when the audit trail is off. */
  audit?: AuditTrail;
  /** How long a sign-in's refresh tokens last, for online_access and offline_access. */
  refreshLifetimes: RefreshLifetimes;
}

/** Largest token request form: a client assertion (a signed JWT) is a few KB at most. */
export const FORM_BODY_LIMIT = 16 * 1024;

const GRANT_TYPES = ['client_credentials', 'authorization_code', 'refresh_token'];
const RESOURCE_SCOPES = ['system/*.cruds', 'system/*.rs', 'system/*.read', 'system/*.write', 'user/*.cruds', 'user/*.rs', 'patient/*.rs', 'launch/patient'];
/** id_tokens are signed as access tokens are (tokens.ts). */
const ID_TOKEN_ALGORITHM = 'ES256';


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
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: FORM_BODY_LIMIT }, (_req, body, done) => done(null, tokenForm(body as string)));
  app.setErrorHandler((err, _req, reply) => {
    if (err instanceof OAuthError) return oauthError(reply, err);
    // RFC 6749 names temporarily_unavailable for the authorization endpoint; clients read it the same here.
    if (isTemporaryOutage(err)) {
      return reply.code(503).header('retry-after', String(OUTAGE_RETRY_AFTER_SECONDS)).header('cache-control', 'no-store')
        .send({ error: 'temporarily_unavailable', error_description: 'Tokens cannot be issued just now; try again shortly.' });
    }
    const status = (err as { statusCode?: number }).statusCode ?? 500;
    if (status === 413) return reply.code(413).header('connection', 'close').send({ error: 'invalid_request', error_description: `The token request is larger than ${FORM_BODY_LIMIT / 1024} KB; no token request needs that.` });
    if (status === 429) return reply.code(429).send({ error: 'slow_down', error_description: 'Too many token requests from this address; wait a minute.' });
    if (status === 415) return reply.code(400).send({ error: 'invalid_request', error_description: 'Send the token request as application/x-www-form-urlencoded.' });
    return reply.code(status >= 500 ? 500 : 400).send({ error: status >= 500 ? 'server_error' : 'invalid_request', error_description: status >= 500 ? 'The token could not be issued.' : (err as Error).message });
  });

  app.post('/oauth2/token', { config: limit }, async (req, reply) => {
    const { fields: form, repeated } = (req.body as TokenForm | undefined) ?? { fields: {}, repeated: [] };
    const seen: Seen = { method: 'token_request' };
    const record = (ok: boolean, detail: string, actor?: Actor) => options.audit?.record(authenticationRequest(Date.now(), req.ip, {
      action: 'login', method: seen.method, ok, detail, ...(seen.client ? { client: seen.client } : {}),
      ...(seen.user ? { userId: seen.user.userId, name: seen.user.name, fhirUser: seen.user.fhirUser } : {}),
    }, actor));
    try {
      if (repeated.length) {
        throw new OAuthError(400, 'invalid_request', `Each parameter may be sent once (RFC 6749 section 3.2); ${repeated.join(', ')} came more than once.`, `parameters sent more than once: ${bounded(repeated.join(', '), 256)}`);
      }
      const issued = await tokenRequest(options, req, reply, form, seen);
      record(true, issued.detail, issued.actor);
      return issued.body;
    } catch (err) {
      if (!seen.client && seen.method !== 'authorization_code' && seen.method !== 'refresh_token') seen.client = await named(options, form.client_id);
      record(false, err instanceof OAuthError ? err.reason ?? err.message : 'server error, no token issued');
      throw err;
    } finally {
      await allowRegisteredOrigin(options, req, reply, seen.client?.clientId ?? form.client_id);
    }
  });

  // RFC 7009: an app signs a person out (tokenRevocation.ts). Audited as a Logout, done or refused and why.
  app.post('/oauth2/revoke', { config: limit }, async (req, reply) => {
    const { fields: form, repeated } = (req.body as TokenForm | undefined) ?? { fields: {}, repeated: [] };
    const seen: Seen = { method: 'token_revocation' };
    const record = (ok: boolean, detail: string) => options.audit?.record(authenticationRequest(Date.now(), req.ip, {
      action: 'logout', method: seen.method, ok, detail, ...(seen.client ? { client: seen.client } : {}),
      ...(seen.user ? { userId: seen.user.userId, name: seen.user.name, fhirUser: seen.user.fhirUser } : {}),
    }));
    reply.header('cache-control', 'no-store').header('pragma', 'no-cache');
    try {
      if (repeated.length) throw new OAuthError(400, 'invalid_request', `Each parameter may be sent once; ${repeated.join(', ')} came more than once.`, `parameters sent more than once: ${bounded(repeated.join(', '), 256)}`);
      record(true, await revokeToken(options, req, form, seen));
      return reply.code(200).send();
    } catch (err) {
      if (!seen.client) seen.client = await named(options, form.client_id);
      record(false, err instanceof OAuthError ? err.reason ?? err.message : 'server error, nothing revoked');
      throw err;
    } finally {
      await allowRegisteredOrigin(options, req, reply, seen.client?.clientId ?? form.client_id);
    }
  });

  app.get('/oauth2/jwks', async (_req, reply) => {
    reply.headers(DISCOVERY_CORS);
    return options.tokens.jwks();
  });

  // SMART puts discovery under the FHIR base (apps such as fhirclient look only there); the root copy stays
  // for the clients that found it there before.
  const smartConfiguration = async (req: FastifyRequest, reply: FastifyReply) => {
    reply.headers(DISCOVERY_CORS);
    const origin = options.originOf(req);
    return {
      // The OpenID Connect issuer (sso-openid-connect): the iss of id_tokens, whose discovery is at
      // <issuer>/.well-known/openid-configuration.
      issuer: origin,
      token_endpoint: `${origin}/oauth2/token`,
      jwks_uri: `${origin}/oauth2/jwks`,
      authorization_endpoint: `${origin}/oauth2/authorize`,
      revocation_endpoint: `${origin}/oauth2/revoke`,
      grant_types_supported: GRANT_TYPES,
      response_types_supported: ['code'],
      code_challenge_methods_supported: ['S256'],
      token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post', 'private_key_jwt'],
      token_endpoint_auth_signing_alg_values_supported: ASSERTION_ALGORITHMS,
      scopes_supported: [...RESOURCE_SCOPES, ...IDENTITY_SCOPES, 'online_access', 'offline_access'],
      // Patient context (patient/ scopes, launch/patient) is given to a person signing in to their own
      // record only: there is no patient picker, so staff and carers asking for it are refused invalid_scope.
      capabilities: ['client-confidential-symmetric', 'client-confidential-asymmetric', 'client-public', 'permission-v1', 'permission-v2', 'permission-user', 'permission-patient', 'launch-standalone', 'context-standalone-patient',
        'sso-openid-connect', 'permission-online', 'permission-offline'],
    };
  };
  // OpenID Connect Discovery 1.0, for the id_tokens of people's sign-ins.
  app.get('/.well-known/openid-configuration', async (req, reply) => {
    reply.headers(DISCOVERY_CORS);
    const origin = options.originOf(req);
    return {
      issuer: origin,
      authorization_endpoint: `${origin}/oauth2/authorize`,
      token_endpoint: `${origin}/oauth2/token`,
      jwks_uri: `${origin}/oauth2/jwks`,
      revocation_endpoint: `${origin}/oauth2/revoke`,
      revocation_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none'],
      response_types_supported: ['code'],
      grant_types_supported: GRANT_TYPES,
      subject_types_supported: ['public'],
      id_token_signing_alg_values_supported: [ID_TOKEN_ALGORITHM],
      scopes_supported: [...IDENTITY_SCOPES, 'online_access', 'offline_access', ...RESOURCE_SCOPES],
      claims_supported: ['iss', 'sub', 'aud', 'exp', 'iat', 'nonce', 'fhirUser', 'name'],
      token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none'],
      code_challenge_methods_supported: ['S256'],
    };
  });
  app.get('/fhir/.well-known/smart-configuration', smartConfiguration);
  app.get('/.well-known/smart-configuration', smartConfiguration);
  for (const path of ['/fhir/.well-known/smart-configuration', '/.well-known/smart-configuration', '/.well-known/openid-configuration', '/oauth2/jwks']) {
    app.options(path, async (_req, reply) => reply.code(204).headers({ ...DISCOVERY_CORS, 'access-control-allow-methods': 'GET', 'access-control-allow-headers': 'accept', 'access-control-max-age': '600' }).send());
  }
}

/**
 * SMART 2.2: a browser app reads its token response (or why it was refused) cross-origin, but only from an
 * origin its client registered, that of one of its redirect URIs; never with cookies. Anyone else's page
 * gets no such header, so it cannot read what the token endpoint answered.
 */
async function allowRegisteredOrigin(options: TokenEndpointOptions, req: FastifyRequest, reply: FastifyReply, clientId: string | undefined): Promise<void> {
  reply.header('vary', 'Origin');
  const origin = req.headers.origin;
  if (!origin || !clientId) return;
  const client = await findClient(options.driver, clientId).catch(() => undefined);
  if (client && !client.revoked && client.redirectUris.some((uri) => new URL(uri).origin === origin)) reply.header('access-control-allow-origin', origin);
}

/**
 * SMART 2.2: a browser app, from any origin, must be able to read discovery. It is public and holds no
 * credential, and no cookie is ever allowed with it.
 */
const DISCOVERY_CORS = { 'access-control-allow-origin': '*' };

interface Issued { body: Record<string, unknown>; actor: Actor; detail: string }

/** A token request's form: each parameter once, and the names of those sent more than once (left out). */
interface TokenForm { fields: Record<string, string>; repeated: string[] }

/**
 * A repeated parameter is named, never resolved: taking the last of two grant_types, codes or client_ids
 * would answer a request other than the one some part of the client meant.
 */
function tokenForm(body: string): TokenForm {
  const fields: Record<string, string> = {};
  const repeated = new Set<string>();
  for (const [name, value] of new URLSearchParams(body)) {
    if (Object.hasOwn(fields, name)) repeated.add(name);
    fields[name] = value;
  }
  for (const name of repeated) delete fields[name];
  return { fields, repeated: [...repeated] };
}

async function tokenRequest(options: TokenEndpointOptions, req: FastifyRequest, reply: FastifyReply, form: Record<string, string>, seen: Seen): Promise<Issued> {
  if (form.grant_type === 'authorization_code') {
    seen.method = 'authorization_code';
    reply.header('cache-control', 'no-store').header('pragma', 'no-cache');
    return exchangeCode(options, req, form, seen);
  }
  if (form.grant_type === 'refresh_token') {
    seen.method = 'refresh_token';
    reply.header('cache-control', 'no-store').header('pragma', 'no-cache');
    return refresh(options, req, form, seen);
  }
  if (!form.grant_type) throw new OAuthError(400, 'invalid_request', 'grant_type is required: client_credentials, authorization_code or refresh_token.', 'no grant_type');
  if (form.grant_type !== 'client_credentials') {
    throw new OAuthError(400, 'unsupported_grant_type', `grant_type must be client_credentials, authorization_code or refresh_token, not '${form.grant_type ?? ''}'.`, `unsupported grant_type '${bounded(form.grant_type ?? '', 64)}'`);
  }
  seen.method = form.client_assertion_type || form.client_assertion ? 'private_key_jwt' : 'client_secret';
  const origin = options.originOf(req);
  const client = await authenticateClient(options, req, form, `${origin}/oauth2/token`, seen);
  const scopes = clientCredentialsScopes(form.scope, client);
  const scope = scopes.join(' ');
  const { token, expiresIn, jti } = await options.tokens.issue({ issuer: origin, audience: `${origin}/fhir`, clientId: client.clientId, scope, org: client.organization });
  reply.header('cache-control', 'no-store').header('pragma', 'no-cache');
  // The token's calls are audited as this actor (authenticate.ts): the same session id ties them to this entry.
  const actor: Actor = { kind: 'system', clientId: client.clientId, name: client.name, organisation: client.organization ?? undefined, purpose: 'TREAT', scope, sessionId: jti };
  return { body: { access_token: token, token_type: 'Bearer', expires_in: expiresIn, scope }, actor, detail: `token issued for ${scope}` };
}

/**
 * client_credentials speaks for the client alone, so it issues only system/ scopes. user/ and patient/
 * scopes are a person's, bounded by their relationships, consent and break-glass: they come only with a
 * sign-in (authorization_code), never to a client acting as itself.
 */
function clientCredentialsScopes(requested: string | undefined, client: SystemClient): string[] {
  const personal = (requested ?? '').split(/\s+/).filter((text) => /^(user|patient)\//.test(text));
  if (personal.length) {
    throw new OAuthError(400, 'invalid_scope', `client_credentials issues only system/ scopes; '${personal.join(' ')}' act for a person and come only with their sign-in (grant_type=authorization_code).`,
      `scope refused: '${bounded(personal.join(' '), 256)}' act for a person (client_credentials issues only system/ scopes)`);
  }
  if (!systemScopes(parseScopes(client.scopes)).length) {
    throw new OAuthError(400, 'unauthorized_client', 'This client is registered only for people\'s sign-in (user/ or patient/ scopes): it may not use client_credentials. Sign a person in with grant_type=authorization_code.',
      'client refused: registered only for people\'s sign-in, not client_credentials');
  }
  const scopes = grantScopes(requested, client.scopes).filter((text) => parseScope(text)?.context === 'system');
  if (!scopes.length) throw new OAuthError(400, 'invalid_scope', `None of the requested scopes ('${requested ?? ''}') is granted to this client.`, `scope refused: '${bounded(requested ?? '', 256)}' not granted to this client`);
  return scopes;
}

/** authorization_code: the code from /oauth2/authorize, its PKCE verifier, and the client it was issued to. */
async function exchangeCode(options: TokenEndpointOptions, req: FastifyRequest, form: Record<string, string>, seen: Seen): Promise<Issued> {
  const origin = options.originOf(req);
  let code;
  try {
    code = await options.tokens.verifyStatement(form.code ?? '', { typ: CODE_TYP, issuer: origin });
  } catch {
    seen.client = await named(options, form.client_id);
    throw new OAuthError(400, 'invalid_grant', 'The authorization code is not valid or has expired (codes last one minute).', 'authorization code not valid or expired');
  }
  // From here the code is ours: it names the person it was issued for, whoever presents it.
  seen.user = { userId: String(code.sub), name: typeof code.name === 'string' ? code.name : undefined, fhirUser: typeof code.fhirUser === 'string' ? code.fhirUser : undefined };
  const client = await presentingClient(options, req, form, String(code.client_id), origin, seen);
  if (client.clientId !== code.client_id || (form.client_id && form.client_id !== client.clientId)) {
    throw new OAuthError(400, 'invalid_grant', 'This code was issued to another client.', `code issued to another client ('${bounded(String(code.client_id))}')`);
  }
  if (form.redirect_uri !== code.redirect_uri) throw new OAuthError(400, 'invalid_grant', 'redirect_uri must be the one the code was requested with.', 'redirect_uri differs from the one the code was requested with');
  const challenge = createHash('sha256').update(form.code_verifier ?? '').digest('base64url');
  if (!form.code_verifier || challenge !== code.code_challenge) throw new OAuthError(400, 'invalid_grant', 'The PKCE code_verifier does not match the code_challenge.', form.code_verifier ? 'PKCE code_verifier does not match' : 'no PKCE code_verifier');
  const grant: RefreshGrant = {
    clientId: client.clientId, userId: String(code.sub), role: String(code.role), scope: String(code.scope),
    ...(typeof code.org === 'string' ? { organisation: code.org } : {}),
    // The patient context chosen at sign-in (authorize.ts): the token is bound to it, and SMART apps read it here.
    ...(typeof code.patient === 'string' ? { patient: code.patient } : {}),
  };
  // A code from before the person was signed out everywhere (a password reset) is spent and refused: whoever
  // knew the old password may have asked for it a moment before the reset.
  const notHeld = await notStillHeld(options.driver, grant) ?? (await signedOutSince(options.driver, grant.userId, Number(code.iat ?? 0))
    ? new OAuthError(400, 'invalid_grant', 'The person has been signed out everywhere since this code was issued; sign them in again.', 'code issued before the person was signed out everywhere')
    : undefined);
  const kind = refreshKind(grant.scope);
  const lifetimeMs = kind && !notHeld ? familyLifetimeMs(kind, options.refreshLifetimes) : undefined;
  const spent = await options.driver.transaction((tx) => spendCode(tx, { id: String(code.jti), expiresMs: (code.exp ?? 0) * 1000 }, grant, lifetimeMs));
  if ('replayRevoked' in spent) {
    throw spent.replayRevoked
      ? new OAuthError(400, 'invalid_grant', 'This authorization code has been used already, so the sign-in it began has ended: its access and refresh tokens are revoked; sign the person in again.',
        'authorization code used already (replayed): the sign-in ended, its access and refresh tokens revoked')
      : new OAuthError(400, 'invalid_grant', 'This authorization code has been used already, so the sign-in it began has ended: its access token is revoked; sign the person in again.',
        'authorization code used already (replayed): the sign-in ended, its access token revoked');
  }
  if (notHeld) throw notHeld;
  const person = { name: String(code.name), fhirUser: typeof code.fhirUser === 'string' ? code.fhirUser : undefined };
  const issued = await personTokens(options, origin, client, grant, grant.scope, person, String(code.jti));
  if (spent.refreshToken) issued.body.refresh_token = spent.refreshToken;
  // OpenID Connect Core: any request with openid gets an id_token (sub alone, unless more was asked for).
  const scopes = grant.scope.split(' ');
  if (scopes.includes('openid')) {
    // SMART v1 asked for the person's resource with profile, v2 with fhirUser; profile also gives the name.
    const named = scopes.includes('fhirUser') || scopes.includes('profile');
    issued.body.id_token = await options.tokens.idToken({
      issuer: origin, clientId: client.clientId, userId: grant.userId, ...(typeof code.nonce === 'string' ? { nonce: code.nonce } : {}),
      // SMART lets fhirUser be absolute or relative to the FHIR base; absolute, so it names this server's record.
      ...(named && person.fhirUser ? { fhirUser: `${origin}/fhir/${person.fhirUser}` } : {}),
      ...(scopes.includes('profile') ? { name: person.name } : {}),
    });
  }
  return issued;
}

/**
 * Spends the code and, given the refresh family's lifetime, stores its first refresh token, in one
 * transaction: a replay racing the exchange waits for it (or comes after it), so it always finds that
 * refresh token. A code presented again was copied (RFC 6749 section 4.1.2), and there is no telling
 * whether the app or the copier got the tokens, so, as for a refresh token presented twice, its family is
 * revoked: `replayRevoked` says how many of its refresh tokens were still in force.
 */
async function spendCode(tx: SqlExecutor, code: { id: string; expiresMs: number }, grant: RefreshGrant, lifetimeMs: number | undefined): Promise<{ refreshToken?: string } | { replayRevoked: number }> {
  const fresh = await tx.run('INSERT INTO access_used_assertions (jti, expires_ms) VALUES (?, ?) ON CONFLICT (jti) DO NOTHING', [`code:${code.id}`, code.expiresMs]);
  if (!fresh) return { replayRevoked: await revokeCodeFamily(tx, code.id) };
  return lifetimeMs === undefined ? {} : { refreshToken: await issueRefreshToken(tx, grant, { lifetimeMs, codeId: code.id }) };
}

/**
 * refresh_token: a new access token for the sign-in the refresh token came from, with its scopes or fewer,
 * and a new refresh token in place of the one presented (refreshTokens.ts). The person must still be
 * enabled and in the role, and the client registered, as at the code's exchange.
 */
async function refresh(options: TokenEndpointOptions, req: FastifyRequest, form: Record<string, string>, seen: Seen): Promise<Issued> {
  const origin = options.originOf(req);
  const presented = await presentedRefresh(options.driver, form.refresh_token ?? '');
  if (!presented) {
    seen.client = await named(options, form.client_id);
    throw new OAuthError(400, 'invalid_grant', 'The refresh token is not valid or has expired.', form.refresh_token ? 'refresh token unknown or expired' : 'no refresh token');
  }
  const { grant } = presented;
  const person = await personNamed(options.driver, grant.userId);
  seen.user = { userId: grant.userId, ...person };
  const client = await presentingClient(options, req, form, grant.clientId, origin, seen);
  if (client.clientId !== grant.clientId || (form.client_id && form.client_id !== client.clientId)) {
    throw new OAuthError(400, 'invalid_grant', 'This refresh token was issued to another client.', `refresh token issued to another client ('${bounded(grant.clientId)}')`);
  }
  if (presented.spent === 'used') {
    await revokeRefreshFamily(options.driver, presented);
    throw new OAuthError(400, 'invalid_grant', 'This refresh token has been used already, so every refresh token of this sign-in is revoked; sign the person in again.', 'refresh token used already (replayed): every refresh token of the sign-in revoked');
  }
  if (presented.spent) throw new OAuthError(400, 'invalid_grant', 'The refresh token is not valid or has expired.', `refresh token ${presented.spent}`);
  const scope = form.scope ? form.scope.split(/\s+/).filter(Boolean).join(' ') : grant.scope;
  const beyond = scopesBeyond(scope, grant.scope);
  if (beyond.length) {
    throw new OAuthError(400, 'invalid_scope', `A refresh may ask for the scopes granted at sign-in or fewer; '${beyond.join(' ')}' ${beyond.length > 1 ? 'were' : 'was'} not granted.`, `scope refused at refresh: '${bounded(beyond.join(' '), 256)}' beyond the sign-in's grant`);
  }
  try {
    await stillHeld(options, grant);
  } catch (err) {
    // Never again, even once the account is enabled: they sign in afresh, as their sessions end (users.ts).
    await revokeRefreshFamily(options.driver, presented);
    throw err;
  }
  const issued = await personTokens(options, origin, client, grant, scope, person ?? { name: grant.userId }, signInOf(presented));
  // The old token is spent and its successor stored together: were the database lost between the two, the
  // app would hold only a spent token, and its retry would revoke the whole sign-in.
  const next = await options.driver.transaction(async (tx) => (await claimRefreshToken(tx, form.refresh_token!))
    ? issueRefreshToken(tx, grant, { id: presented.familyId, expiresMs: presented.familyExpiresMs, codeId: presented.codeId })
    : undefined);
  if (!next) {
    await revokeRefreshFamily(options.driver, presented);
    throw new OAuthError(400, 'invalid_grant', 'This refresh token has been used already, so every refresh token of this sign-in is revoked; sign the person in again.', 'refresh token used twice at once: every refresh token of the sign-in revoked');
  }
  issued.body.refresh_token = next;
  return { ...issued, detail: `refreshed: ${issued.detail}` };
}


/** The person must still be enabled and hold the role they signed in as, at every code and every refresh. */
async function stillHeld(options: TokenEndpointOptions, grant: RefreshGrant): Promise<void> {
  const refusal = await notStillHeld(options.driver, grant);
  if (refusal) throw refusal;
}

/** stillHeld's refusal, answered rather than thrown: a code is spent before it is refused for this. */
async function notStillHeld(db: SqlExecutor, grant: RefreshGrant): Promise<OAuthError | undefined> {
  const membership = { organisation: grant.organisation, role: grant.role };
  if (await holdsMembership(db, grant.userId, membership)) return undefined;
  return new OAuthError(400, 'invalid_grant', 'The person is disabled or no longer holds that role.', `person disabled or no longer ${membership.role}${membership.organisation ? ` at ${membership.organisation}` : ''}`);
}

/** An access token for a person through `client`, the token response an app reads, and its audit entry. */
async function personTokens(options: TokenEndpointOptions, origin: string, client: SystemClient, grant: RefreshGrant, scope: string, person: { name: string; fhirUser?: string }, signIn: string): Promise<Issued> {
  const { patient, role, organisation } = grant;
  const user = { userId: grant.userId, name: person.name, role, fhirUser: person.fhirUser, ...(patient ? { patient } : {}), signIn };
  const { token, expiresIn, jti } = await options.tokens.issue({ issuer: origin, audience: `${origin}/fhir`, clientId: client.clientId, scope, org: organisation, user });
  // As the token's calls are audited (authenticate.ts), the same session id ties them to this entry.
  const actor: Actor = isRole(role)
    ? { kind: 'user', userId: user.userId, name: user.name, organisation, role, fhirUser: user.fhirUser, ...(patient ? { patient } : {}), purpose: ROLE_PURPOSE[role], scope, sessionId: jti }
    : { kind: 'system', clientId: client.clientId, name: client.name, purpose: 'TREAT', scope, sessionId: jti };
  return {
    body: { access_token: token, token_type: 'Bearer', expires_in: expiresIn, scope, ...(user.fhirUser ? { fhirUser: user.fhirUser } : {}), ...(patient ? { patient } : {}) },
    actor,
    detail: `token issued as ${role}${organisation ? ` at ${organisation}` : ''} for ${scope}`,
  };
}




