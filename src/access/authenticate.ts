// Turns a request's bearer token into what the caller may do in the record.
import type { FastifyRequest } from 'fastify';
import { FhirError, forbidden, type AccessControl, type SqlExecutor } from '../record/index.ts';
import { parseScopes, scopesAllow, type Scope } from './scopes.ts';
import type { TokenService } from './tokens.ts';
import type { AuditTrail } from './audit/trail.ts';
import type { Actor } from './actor.ts';
import type { AccessClaims } from './tokens.ts';

const REVOCATION_CACHE_MS = 10_000;

function unauthorized(diagnostics: string, error = 'invalid_token'): FhirError {
  return new FhirError(401, [{ severity: 'error', code: 'login', diagnostics }], { 'WWW-Authenticate': `Bearer realm="carebridge", error="${error}"` });
}

/** What SMART scopes allow, as the record's AccessControl. */
export function scopeAccess(scopes: readonly Scope[], scopeText: string): AccessControl {
  return {
    require(resourceType, interaction) {
      // The audit trail is append-only: only the server writes AuditEvents, whatever the scopes say.
      if (resourceType === 'AuditEvent' && interaction !== 'read' && interaction !== 'search') {
        throw forbidden(`AuditEvents are the audit trail: append-only and written only by the server, so no client may ${interaction} them.`);
      }
      if (!scopesAllow(scopes, resourceType, interaction)) {
        const what = resourceType === '*' ? 'every resource type' : resourceType;
        throw forbidden(`This token (scope '${scopeText}') does not allow ${interaction} on ${what}.`);
      }
    },
    // AuditEvents are searched for directly, never swept into $everything or _include results.
    mayRead: (resourceType) => resourceType !== 'AuditEvent' && scopesAllow(scopes, resourceType, 'read'),
  };
}

/** The AccessControl, told what each request touched, writes it to the audit trail (when there is one). */
export function audited(access: AccessControl, audit: AuditTrail, actor: Actor, address: string): AccessControl {
  return { ...access, accessed: (events, outcome) => audit.record({ at: Date.now(), actor, address, events, outcome }) };
}

/** Who a verified token speaks for. */
function actorOf(claims: AccessClaims, clientName: string | undefined): Actor {
  return { kind: 'system', clientId: claims.client_id, name: clientName, organisation: claims.org, purpose: 'TREAT', scope: claims.scope, sessionId: claims.jti };
}

/** What the actor may do in the record. */
export async function accessFor(actor: Actor): Promise<AccessControl> {
  return scopeAccess(parseScopes(actor.scope), actor.scope);
}

export function bearerAuthenticator(db: SqlExecutor, tokens: TokenService, originOf: (req: FastifyRequest) => string, audit?: AuditTrail) {
  const clients = new Map<string, { revoked: boolean; name?: string; at: number }>();
  const client = async (clientId: string) => {
    const cached = clients.get(clientId);
    if (cached && Date.now() - cached.at < REVOCATION_CACHE_MS) return cached;
    const row = await db.get<{ revoked: number; name: string }>('SELECT revoked, name FROM access_clients WHERE client_id = ?', [clientId]);
    const value = { revoked: !row || Boolean(Number(row.revoked)), name: row?.name, at: Date.now() };
    clients.set(clientId, value);
    return value;
  };

  // One Actor per verified token (the verifier remembers its claims): the audit trail sends each actor to
  // its writer once per batch rather than once per request.
  const actors = new WeakMap<AccessClaims, Actor>();
  const actorFor = (claims: AccessClaims, name: string | undefined) => {
    let actor = actors.get(claims);
    if (!actor || actor.name !== name) actors.set(claims, (actor = actorOf(claims, name)));
    return actor;
  };

  const authenticate = async (req: FastifyRequest): Promise<AccessControl> => {
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
    const known = await client(claims.client_id);
    if (known.revoked) throw unauthorized('The client this token was issued to has been revoked.');
    const actor = actorFor(claims, known.name);
    const access = await accessFor(actor);
    return audit ? audited(access, audit, actor, req.ip) : access;
  };

  if (!audit) return authenticate;
  return async (req: FastifyRequest): Promise<AccessControl> => {
    const admitted = audit.admit();
    if (admitted !== true && !(await admitted)) {
      throw new FhirError(503, [{ severity: 'error', code: 'exception', diagnostics: 'The audit trail cannot be written at the moment, so the record is not being served; try again shortly.' }], { 'Retry-After': '5' });
    }
    try {
      return await authenticate(req);
    } catch (err) {
      // Refused callers are audited too (who they are is unknown).
      const q = req.url.indexOf('?');
      const path = (q >= 0 ? req.url.slice(0, q) : req.url).replace(/^\/fhir\/?/, '');
      audit.record({ at: Date.now(), address: req.ip, events: [], outcome: { status: err instanceof FhirError ? err.status : 500, method: req.method, path, query: q >= 0 ? req.url.slice(q + 1) : '' } });
      throw err;
    }
  };
}
