// POST /oauth2/revoke (OAuth 2.0 Token Revocation, RFC 7009): an app signs a person out. A refresh token or
// an access token of a person's sign-in ends that sign-in, all of it: its refresh tokens stop working and its
// access tokens are refused from then on (refreshTokens.ts, authenticate.ts), not left working out their
// minutes. On a shared care-home PC that is what "sign out" must mean. The client authenticates as at the
// token endpoint (a public app names itself with client_id), and may revoke only what was issued to it. A
// token that is unknown, expired or already revoked is answered 200 all the same, as the RFC asks: there is
// nothing more the app could do about it. A system client's own access token names no sign-in, and is
// refused unsupported_token_type: it expires within minutes, and `carebridge clients revoke` stops it.
import type { FastifyRequest } from 'fastify';
import { OAuthError, authenticateClient, presentingClient, type OAuthDeps, type Seen } from './clientAuthentication.ts';
import { presentedRefresh, revokeRefreshFamily, revokeSignIn, signInOf } from './refreshTokens.ts';
import type { AccessClaims, TokenService } from './tokens.ts';
import { personNamed } from './people/users.ts';

export interface RevocationDeps extends OAuthDeps {
  tokens: TokenService;
  originOf(req: FastifyRequest): string;
}

/** Revokes `form.token`; answers what happened, in words, for the audit. */
export async function revokeToken(options: RevocationDeps, req: FastifyRequest, form: Record<string, string>, seen: Seen): Promise<string> {
  const origin = options.originOf(req);
  if (!form.token) throw new OAuthError(400, 'invalid_request', 'token is required: the refresh token or access token to revoke.', 'no token');
  // The hint only says where to look first (RFC 7009 section 2.1); both kinds are tried.
  const refreshFirst = form.token_type_hint !== 'access_token';
  for (const kind of refreshFirst ? ['refresh', 'access'] as const : ['access', 'refresh'] as const) {
    const done = kind === 'refresh' ? await revokeRefresh(options, req, form, origin, seen) : await revokeAccess(options, req, form, origin, seen);
    if (done) return done;
  }
  // Not a token of ours (or no longer one): the caller still authenticates, and is told nothing more.
  await (form.client_id ? presentingClient(options, req, form, form.client_id, origin, seen) : authenticateClient(options, req, form, `${origin}/oauth2/token`, seen));
  return 'token unknown, expired or revoked already: nothing to revoke';
}

async function revokeRefresh(options: RevocationDeps, req: FastifyRequest, form: Record<string, string>, origin: string, seen: Seen): Promise<string | undefined> {
  const presented = await presentedRefresh(options.driver, form.token);
  if (!presented) return undefined;
  const person = await personNamed(options.driver, presented.grant.userId);
  seen.user = { userId: presented.grant.userId, ...person };
  await issuedTo(options, req, form, presented.grant.clientId, origin, seen);
  await revokeRefreshFamily(options.driver, presented);
  return `refresh token revoked: the sign-in ended (${signInOf(presented)}), its access and refresh tokens with it`;
}

async function revokeAccess(options: RevocationDeps, req: FastifyRequest, form: Record<string, string>, origin: string, seen: Seen): Promise<string | undefined> {
  let claims: AccessClaims;
  try {
    claims = await options.tokens.verify(form.token, { issuer: origin, audience: `${origin}/fhir` });
  } catch {
    return undefined; // not ours, or expired: nothing it could still do
  }
  if (claims.role !== undefined && claims.sub) seen.user = { userId: claims.sub, name: claims.name, fhirUser: claims.fhirUser };
  await issuedTo(options, req, form, claims.client_id, origin, seen);
  if (!claims.sid) {
    throw new OAuthError(400, 'unsupported_token_type', 'Only the tokens of a person\'s sign-in can be revoked here. A client\'s own access token expires within 5 minutes; to stop it at once, revoke the client (carebridge clients revoke).',
      'a client\'s own access token (no sign-in to end)');
  }
  await revokeSignIn(options.driver, claims.sid);
  return `access token revoked: the sign-in ended (${claims.sid}), its access and refresh tokens with it`;
}

/** The client asking must be the one the token was issued to, authenticated as at the token endpoint. */
async function issuedTo(options: RevocationDeps, req: FastifyRequest, form: Record<string, string>, clientId: string, origin: string, seen: Seen): Promise<void> {
  const client = await presentingClient(options, req, form, clientId, origin, seen);
  if (client.clientId !== clientId || (form.client_id && form.client_id !== client.clientId)) {
    throw new OAuthError(400, 'unauthorized_client', 'This token was issued to another client, so this client may not revoke it.', 'token issued to another client');
  }
}
