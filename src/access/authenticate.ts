// Turns a request's bearer token into what the caller may do in the record.
import type { FastifyRequest } from 'fastify';
import { DECISION_MS, FhirError, forbidden, type AccessControl, type SqlDriver, type SqlExecutor } from '../record/index.ts';
import { isRole, ROLE_PURPOSE } from './actor.ts';
import { roleAllows } from './permissions.ts';
import { patientScopeFor } from './relationships.ts';
import { checkOptInConsent } from './consentRules.ts';
import { grantsInForce } from './breakGlass.ts';
import { parseScopes, personScopes, scopesAllow, systemScopes, type Scope } from './scopes.ts';
import type { TokenService } from './tokens.ts';
import type { AuditTrail } from './audit/trail.ts';
import type { Actor, UserActor } from './actor.ts';
import { holdsMembership, signedOutSince } from './people/users.ts';
import { signInEnded } from './refreshTokens.ts';
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

/** The patients a person holds break-glass grants for, by their AccessControl (a grant counts even where a relationship would also have let them in). */
const grantPatients = new WeakMap<AccessControl, ReadonlySet<string>>();

/** The last audited AccessControl made from each one: a caller's requests usually share all three. */
const auditedOf = new WeakMap<AccessControl, { audit: AuditTrail; actor: Actor; address: string; access: AccessControl }>();

/** The AccessControl, told what each request touched, writes it to the audit trail (when there is one). */
export function audited(access: AccessControl, audit: AuditTrail, actor: Actor, address: string): AccessControl {
  const known = auditedOf.get(access);
  if (known && known.audit === audit && known.actor === actor && known.address === address) return known.access;
  const underGrant = grantPatients.get(access);
  const made: AccessControl = {
    ...access,
    accessed: (events, outcome) => audit.record({
      at: Date.now(), actor, address, events, outcome,
      // What a person sees of someone only through break-glass is recorded as break-glass, for the review.
      ...(underGrant && events.some((e) => e.patientIds.some((id) => underGrant.has(id))) ? { purpose: 'BTG' as const } : {}),
    }),
  };
  auditedOf.set(access, { audit, actor, address, access: made });
  callerOf.set(made, { actor, address });
  return made;
}

/** Who an audited AccessControl (from `audited`) acts for, and from where. */
const callerOf = new WeakMap<AccessControl, { actor: Actor; address: string }>();

/**
 * The actor and address an AccessControl made by `audited` (every authenticated API request's) speaks for,
 * so a route outside the record can audit what the caller did as theirs; undefined for any other.
 */
export function auditedCaller(access: AccessControl): { actor: Actor; address: string } | undefined {
  return callerOf.get(access);
}

/** Who a verified token speaks for: a person (it names their role) or the system client itself. */
function actorOf(claims: AccessClaims, clientName: string | undefined): Actor {
  if (claims.role !== undefined) {
    if (!isRole(claims.role) || !claims.sub) throw unauthorized(`The access token names an unknown role '${claims.role}'.`);
    return {
      kind: 'user', userId: claims.sub, name: claims.name ?? claims.sub, organisation: claims.org, role: claims.role, fhirUser: claims.fhirUser,
      ...(claims.patient ? { patient: claims.patient } : {}), ...(claims.sid ? { signIn: claims.sid } : {}),
      purpose: ROLE_PURPOSE[claims.role], scope: claims.scope, sessionId: claims.jti,
    };
  }
  return { kind: 'system', clientId: claims.client_id, name: clientName, organisation: claims.org, purpose: 'TREAT', scope: claims.scope, sessionId: claims.jti };
}

/**
 * What the actor may do in the record. A system client: what its system/ scopes allow, on every record. A person:
 * what both their scopes and their role allow (permissions.ts), only on the records of the people they
 * have a relationship with or a break-glass grant for (relationships.ts). Privacy officers and
 * administrators have no care relationships; their role keeps them out of care records altogether.
 */
export async function accessFor(db: SqlExecutor, actor: Actor): Promise<AccessControl> {
  return (await accessUntil(db, actor)).access;
}

/** accessFor, and when the break-glass grants it counts on start to end (Infinity when none). */
async function accessUntil(db: SqlExecutor, actor: Actor): Promise<{ access: AccessControl; until: number }> {
  const scopes = parseScopes(actor.scope);
  if (actor.kind === 'system') {
    const scoped = scopeAccess(systemScopes(scopes), actor.scope);
    return { access: { ...scoped, caller: { display: actor.name ?? actor.clientId, organisation: actor.organisation, role: 'system' }, checkContent: checkOptInConsent }, until: Infinity };
  }
  const scoped = scopeAccess(personScopes(scopes, actor.patient !== undefined), actor.scope);
  const { role } = actor;
  const everyPatient = role === 'privacy-officer' || role === 'admin';
  const grants = everyPatient ? { patientIds: [], until: Infinity } : await grantsInForce(db, actor);
  const access: AccessControl = {
    require(resourceType, interaction) {
      scoped.require(resourceType, interaction);
      if (!roleAllows(role, resourceType, interaction)) {
        const what = resourceType === '*' ? 'across every resource type' : `on ${resourceType} resources`;
        throw forbidden(`Your role (${role}) does not allow ${interaction} ${what}.`);
      }
    },
    mayRead: (resourceType) => scoped.mayRead(resourceType) && roleAllows(role, resourceType, 'read'),
    caller: { display: actor.name, reference: actor.fhirUser, organisation: actor.organisation, role },
    // Everyone's writes, system clients' too: a carer's access is read from what any of them stores.
    checkContent: checkOptInConsent,
    ...(everyPatient ? {} : { patients: patientScopeFor(actor, grants.patientIds) }),
  };
  if (grants.patientIds.length) grantPatients.set(access, new Set(grants.patientIds));
  return { access, until: grants.until };
}

/**
 * accessFor, kept per actor (one per verified token) while it is current: until this server's next write
 * (a break-glass grant declared, a relationship changed), a grant it counts on ends, or DECISION_MS pass
 * (what another server's write on the same PostgreSQL can leave unseen). Keeping the same patient scope
 * object lets the record remember which of the caller's people it has found in scope (scopeDecisions.ts
 * in the record) across the caller's requests.
 */
export function rememberedAccess(driver: SqlDriver): (actor: Actor) => AccessControl | Promise<AccessControl> {
  const kept = new WeakMap<Actor, { access: AccessControl; writes: number; since: number; until: number }>();
  const decide = async (actor: Actor, now: number) => {
    const writes = driver.writes();
    const { access, until } = await accessUntil(driver, actor);
    if (driver.writes() === writes) kept.set(actor, { access, writes, since: now, until });
    return access;
  };
  // Answered at once, without a promise, while remembered: this runs for every request.
  return (actor) => {
    const now = Date.now();
    const known = kept.get(actor);
    if (known && known.writes === driver.writes() && now - known.since < DECISION_MS && now < known.until) return known.access;
    return decide(actor, now);
  };
}

/** Who a request's bearer token speaks for; 401 when there is none or it is refused. */
export function bearerIdentifier(db: SqlExecutor, tokens: TokenService, originOf: (req: FastifyRequest) => string) {
  const clients = new Map<string, { revoked: boolean; name?: string; at: number }>();
  const clientSeen = (clientId: string) => {
    const cached = clients.get(clientId);
    return cached && Date.now() - cached.at < REVOCATION_CACHE_MS ? cached : undefined;
  };
  const client = async (clientId: string) => {
    const cached = clientSeen(clientId);
    if (cached) return cached;
    const row = await db.get<{ revoked: number; name: string }>('SELECT revoked, name FROM access_clients WHERE client_id = ?', [clientId]);
    const value = { revoked: !row || Boolean(Number(row.revoked)), name: row?.name, at: Date.now() };
    clients.set(clientId, value);
    return value;
  };

  // A disabled person's tokens stop working within REVOCATION_CACHE_MS, like a revoked client's, and so do
  // the tokens of a sign-in ended by a replayed code or refresh token (refreshTokens.ts).
  // Kept per actor, which is kept per token: a person's other tokens look again, within the same bound.
  const people = new WeakMap<UserActor, { refusal: string | undefined; at: number }>();
  const standingSeen = (actor: UserActor) => {
    const cached = people.get(actor);
    return cached && Date.now() - cached.at < REVOCATION_CACHE_MS ? cached : undefined;
  };
  /** Why the person's token, issued at `issuedAtS`, is no longer good (undefined while it is). */
  const refusalOf = async (actor: UserActor, issuedAtS: number) => {
    const cached = standingSeen(actor);
    if (cached) return cached.refusal;
    const refusal = !(await holdsMembership(db, actor.userId, actor))
      ? 'The person this token speaks for has been disabled or no longer holds that role.'
      : await signedOutSince(db, actor.userId, issuedAtS)
        ? 'The person this token speaks for has been signed out everywhere since it was issued (a password reset, or an administrator); sign in again.'
        : actor.signIn && (await signInEnded(db, actor.signIn))
          ? 'The sign-in this token comes from has ended (its authorization code or a refresh token was used twice); sign in again.'
          : undefined;
    people.set(actor, { refusal, at: Date.now() });
    return refusal;
  };
  // One Actor per verified token (the verifier remembers its claims): the audit trail sends each actor to
  // its writer once per batch rather than once per request.
  // Rebuilt only when the client's name changes (a person's actor is named after the person, not the client).
  const actors = new WeakMap<AccessClaims, { actor: Actor; clientName: string | undefined }>();
  const actorFor = (claims: AccessClaims, clientName: string | undefined) => {
    let known = actors.get(claims);
    if (!known || known.clientName !== clientName) actors.set(claims, (known = { actor: actorOf(claims, clientName), clientName }));
    return known.actor;
  };

  /** The actor of a token whose every check was made within their bounds and passed; else undefined. */
  const knownActor = (token: string, expected: { issuer: string; audience: string }) => {
    const claims = tokens.verifiedBefore(token, expected);
    const seen = claims && clientSeen(claims.client_id);
    if (!seen || seen.revoked) return undefined;
    const actor = actorFor(claims, seen.name);
    if (actor.kind === 'system') return actor;
    const standing = standingSeen(actor);
    return standing && standing.refusal === undefined ? actor : undefined;
  };

  const identifyAfresh = async (token: string, expected: { issuer: string; audience: string }): Promise<Actor> => {
    let claims;
    try {
      claims = await tokens.verify(token, expected);
    } catch (err) {
      throw unauthorized(`The access token was refused (${(err as Error).message}); get a new one from /oauth2/token.`);
    }
    const known = await client(claims.client_id);
    if (known.revoked) throw unauthorized('The client this token was issued to has been revoked.');
    const actor = actorFor(claims, known.name);
    const refusal = actor.kind === 'user' ? await refusalOf(actor, claims.iat ?? 0) : undefined;
    if (refusal) throw unauthorized(refusal);
    return actor;
  };

  // A caller's second and later requests are answered at once, without a promise: each await on the way
  // cost about a microsecond, several times over, for every request.
  // The issuer and audience a token must name, made once per origin (the Host header is the caller's to
  // choose, so only a few are kept).
  const expectations = new Map<string, Readonly<{ issuer: string; audience: string }>>();
  const expectedAt = (origin: string) => {
    let expected = expectations.get(origin);
    if (!expected) {
      expected = Object.freeze({ issuer: origin, audience: `${origin}/fhir` });
      if (expectations.size < 16) expectations.set(origin, expected);
    }
    return expected;
  };
  const noToken = () => unauthorized('This API needs an access token: get one from /oauth2/token and send it as "Authorization: Bearer <token>".', 'invalid_request');
  return (req: FastifyRequest): Actor | Promise<Actor> => {
    const token = bearerCredentials(req.headers.authorization);
    if (!token) throw noToken();
    const expected = expectedAt(originOf(req));
    // A token equal to one verified before needs no check of its characters.
    const known = knownActor(token, expected);
    if (known) return known;
    if (!TOKEN_TEXT.test(token)) throw noToken();
    return identifyAfresh(token, expected);
  };
}

const TOKEN_TEXT = /^[A-Za-z0-9\-_.]+$/;

/** The token of an `Authorization: Bearer <token>` header; undefined when there is none, or it is not a token's text. */
export function bearerToken(header: string | undefined): string | undefined {
  const token = bearerCredentials(header);
  return token && TOKEN_TEXT.test(token) ? token : undefined;
}

/** What follows `Bearer ` in the header, its characters not yet checked. */
function bearerCredentials(header: string | undefined): string | undefined {
  if (!header || header.length < 8 || header.slice(0, 6).toLowerCase() !== 'bearer') return undefined;
  let at = 6;
  while (header[at] === ' ' || header[at] === '\t') at++;
  return at === 6 ? undefined : header.slice(at);
}

/**
 * What a request's caller may do, answered without a promise when everything about the caller is
 * remembered (see bearerIdentifier and rememberedAccess); throws or rejects with a FhirError (401, or 503
 * when the audit trail cannot keep up).
 */
export type Authenticate = (req: FastifyRequest) => AccessControl | Promise<AccessControl>;

export function bearerAuthenticator(db: SqlDriver, tokens: TokenService, originOf: (req: FastifyRequest) => string, audit?: AuditTrail): Authenticate {
  const identify = bearerIdentifier(db, tokens, originOf);
  const accessOf = rememberedAccess(db);
  const finish = (access: AccessControl, actor: Actor, req: FastifyRequest) => (audit ? audited(access, audit, actor, req.ip) : access);
  const withAccess = (actor: Actor, req: FastifyRequest) => {
    const access = accessOf(actor);
    return access instanceof Promise ? access.then((a) => finish(a, actor, req)) : finish(access, actor, req);
  };
  const authenticate: Authenticate = (req) => {
    const actor = identify(req);
    return actor instanceof Promise ? actor.then((a) => withAccess(a, req)) : withAccess(actor, req);
  };

  if (!audit) return authenticate;
  // Refused callers are audited too (who they are is unknown).
  const refused = (req: FastifyRequest, err: unknown): never => {
    const q = req.url.indexOf('?');
    const path = (q >= 0 ? req.url.slice(0, q) : req.url).replace(/^\/fhir\/?/, '');
    audit.record({ at: Date.now(), address: req.ip, events: [], outcome: { status: err instanceof FhirError ? err.status : 500, method: req.method, path, query: q >= 0 ? req.url.slice(q + 1) : '' } });
    throw err;
  };
  const checked: Authenticate = (req) => {
    let result;
    try {
      result = authenticate(req);
    } catch (err) {
      return refused(req, err);
    }
    return result instanceof Promise ? result.catch((err) => refused(req, err)) : result;
  };
  return (req) => {
    const admitted = audit.admit();
    if (admitted === true) return checked(req);
    return admitted.then((ok) => {
      if (!ok) throw new FhirError(503, [{ severity: 'error', code: 'exception', diagnostics: 'The audit trail cannot be written at the moment, so the record is not being served; try again shortly.' }], { 'Retry-After': '5' });
      return checked(req);
    });
  };
}
