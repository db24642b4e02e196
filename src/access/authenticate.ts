// Turns a request's bearer token into what the caller may do in the record.
import type { FastifyRequest } from 'fastify';
import { FhirError, forbidden, type AccessControl, type SqlExecutor } from '../record/index.ts';
import { parseScopes, scopesAllow, type Scope } from './scopes.ts';
import type { TokenService } from './tokens.ts';

const REVOCATION_CACHE_MS = 10_000;

function unauthorized(diagnostics: string, error = 'invalid_token'): FhirError {
  return new FhirError(401, [{ severity: 'error', code: 'login', diagnostics }], { 'WWW-Authenticate': `Bearer realm="carebridge", error="${error}"` });
}

/** What SMART scopes allow, as the record's AccessControl. */
export function scopeAccess(scopes: readonly Scope[], scopeText: string): AccessControl {
  return {
    require(resourceType, interaction) {
      if (!scopesAllow(scopes, resourceType, interaction)) {
        const what = resourceType === '*' ? 'every resource type' : resourceType;
        throw forbidden(`This token (scope '${scopeText}') does not allow ${interaction} on ${what}.`);
      }
    },
    mayRead: (resourceType) => scopesAllow(scopes, resourceType, 'read'),
  };
}

export function bearerAuthenticator(db: SqlExecutor, tokens: TokenService, originOf: (req: FastifyRequest) => string) {
  const revoked = new Map<string, { revoked: boolean; at: number }>();
  const isRevoked = async (clientId: string) => {
    const cached = revoked.get(clientId);
    if (cached && Date.now() - cached.at < REVOCATION_CACHE_MS) return cached.revoked;
    const row = await db.get<{ revoked: number }>('SELECT revoked FROM access_clients WHERE client_id = ?', [clientId]);
    const value = !row || Boolean(Number(row.revoked));
    revoked.set(clientId, { revoked: value, at: Date.now() });
    return value;
  };

  return async (req: FastifyRequest): Promise<AccessControl> => {
    const header = req.headers.authorization;
    const m = /^Bearer\s+([A-Za-z0-9\-_.]+)$/.exec(header ?? '');
    if (!m) throw unauthorized('This API needs an access token: get one from /oauth2/token and send it as "Authorization: Bearer <token>".', header ? 'invalid_request' : 'invalid_request');
    const origin = originOf(req);
    let claims;
    try {
      claims = await tokens.verify(m[1], { issuer: origin, audience: `${origin}/fhir` });
    } catch (err) {
      throw unauthorized(`The access token was refused (${(err as Error).message}); get a new one from /oauth2/token.`);
    }
    if (await isRevoked(claims.client_id)) throw unauthorized('The client this token was issued to has been revoked.');
    return scopeAccess(parseScopes(claims.scope), claims.scope);
  };
}
