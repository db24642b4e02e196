// Access to the shared record: who is asking (system clients, OAuth2 tokens, SMART scopes), what their role
// allows, whose records their relationships reach, consent, break-glass, and the audit trail. See docs/access.md.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { migrate, type AccessControl, type AccessEvent, type ResourceTypeServices, type SqlDriver } from '../record/index.ts';
import { ACCESS_MIGRATIONS } from './schema.ts';
import { TokenService } from './tokens.ts';
import { tokenEndpoint } from './tokenEndpoint.ts';
import { DEFAULT_REFRESH_LIFETIMES, type RefreshLifetimes } from './refreshTokens.ts';
import { accessFor, audited, auditedCaller, bearerAuthenticator, bearerIdentifier } from './authenticate.ts';
import { authorizeEndpoint } from './authorize.ts';
import { auditBreakGlass, breakGlassRoutes, reviewAudited } from './breakGlassRoutes.ts';
import { declareBreakGlass, listBreakGlass, type BreakGlassGrant, type BreakGlassRequest } from './breakGlass.ts';
import type { Actor, UserActor } from './actor.ts';
import { ADMIN_CLIENT_NAME, ADMIN_SCOPES, ensureAdminClient, type AdminClientOutcome } from './clients.ts';
import { AuditTrail } from './audit/trail.ts';
import { inProcessWriter, threadWriter } from './audit/writer.ts';
import { auditMigrations } from './audit/journal.ts';
import { anchorAuditHead } from './audit/anchor.ts';
import { browserOrigins } from './browserOrigins.ts';
import { useOwnAuditDatabase } from './audit/ownDatabase.ts';
import { auditEventService } from './audit/search.ts';
import type { AuditedRequest } from './audit/auditEvent.ts';
import { hostname } from 'node:os';
import { setUpPeople, type People, type PeopleOptions } from './people/people.ts';
import { administrationRequest, type AdministrativeChange } from './administrationAudit.ts';
import { PackedRequests } from './audit/batchMessage.ts';
import type { HeldMessageDecision } from './heldMessageAudit.ts';
import { deadLetterViewRequest, namingPatients, type DeadLetterView } from './deadLetterViewAudit.ts';
import type { Sessions } from './people/sessions.ts';

export { addClient, listClients, revokeClient, findClient, ADMIN_SCOPES, type SystemClient, type NewClient } from './clients.ts';
export { ROLES, ROLE_PURPOSE, isRole, type Actor, type UserActor, type SystemActor, type Role, type PurposeOfUse } from './actor.ts';
export { parseScopes, scopesAllow, type Scope } from './scopes.ts';
export { DEFAULT_REFRESH_LIFETIMES, type RefreshLifetimes } from './refreshTokens.ts';
export { verifyAuditChain, type ChainCheck } from './audit/verify.ts';
export { auditReach } from './audit/anchor.ts';
export { AUDIT_COMPANION } from './audit/ownDatabase.ts';
export { onlyAuditEventsAbout } from './audit/search.ts';
export { declareBreakGlass, listBreakGlass, reviewBreakGlass, BREAK_GLASS_REASONS, BREAK_GLASS_HOURS, type BreakGlassGrant } from './breakGlass.ts';
export { MATRIX, GROUPS, roleAllows } from './permissions.ts';
export { OPT_IN, RED_BAG_TASK_CODE, delegations } from './relationships.ts';
export { addOrganisation, listOrganisations, findOrganisation, normaliseOds, ORGANISATION_KINDS, type Organisation, type OrganisationKind } from './people/organisations.ts';
export { addUser, listUsers, findUser, disableUser, enableUser, setPassword, signOutEverywhere, type NewUser, type UserSummary, type Membership, type NamedMembership } from './people/users.ts';
export { checkNewPassword, generatePassword, argon2Hasher, MIN_PASSWORD_LENGTH, type PasswordHasher } from './people/passwords.ts';
export { totpCode } from './people/totp.ts';
export { USER_SCOPE, WATCH_MS, type Sessions, type SessionWatch } from './people/sessions.ts';
export type { SignInRequest, SignInResult, SignInFailure } from './people/signIn.ts';
export type { OidcSettings, OidcState, PeopleOidc } from './people/oidc.ts';
export type { People, PeopleOptions } from './people/people.ts';
export { describeClient, describeMemberships, type AdministrativeChange, type AdministrativeAction } from './administrationAudit.ts';
export { DEAD_LETTER_QUEUE_NAME, type DeadLetterView } from './deadLetterViewAudit.ts';
export { HELD_MESSAGE_DECISION_SYSTEM, HL7V2_MESSAGE_ID_SYSTEM, type HeldMessageDecision, type HeldMessageDecisionKind } from './heldMessageAudit.ts';

export interface AccessOptions {
  /** CAREBRIDGE_ADMIN_CLIENT_ID / CAREBRIDGE_ADMIN_CLIENT_SECRET, when set. */
  adminClient?: { id: string; secret: string };
  tokenRequestsPerMinute: number;
  /** Sign-in attempts per minute per address at /oauth2/authorize (default 20). */
  signInsPerMinute?: number;
  /** The configured public FHIR base URL; when absent the request's Host decides. */
  baseUrl?: string;
  /** Keep the audit trail (default). Off only for measuring its cost (CAREBRIDGE_AUDIT=off). */
  audit?: boolean;
  /**
   * The database (sqlite:PATH or postgres://…) again, so the audit trail can write from a thread of its
   * own with its own connection; without it the audit is written through `driver` on the main thread.
   */
  database?: string;
  /** Lockout, session lifetimes and OpenID Connect for people signing in. */
  people?: PeopleOptions;
  /** How long a sign-in's refresh tokens last (online_access, offline_access); DEFAULT_REFRESH_LIFETIMES when absent. */
  refreshLifetimes?: RefreshLifetimes;
}

export interface Access {
  authenticate(req: FastifyRequest): AccessControl | Promise<AccessControl>;
  /** Whether a page from `origin` may call the FHIR API from a browser (a registered client's; see browserOrigins.ts). */
  allowsOrigin(origin: string): Promise<boolean>;
  /**
   * What `actor` may do in the record, audited as coming from `address`: for callers that are not the FHIR
   * API (the portal, workflows acting for a signed-in person).
   */
  controlFor(actor: Actor, address?: string): Promise<AccessControl>;
  /** Types this capability serves through the FHIR API: AuditEvent, from the audit journal. */
  services: ResourceTypeServices;
  /** Break-glass for callers other than the HTTP API (the portal): declarations are audited here too. */
  breakGlass: {
    declare(actor: UserActor, request: BreakGlassRequest, address?: string): Promise<BreakGlassGrant>;
    list(filter?: { open?: boolean; patientId?: string; limit?: number }): Promise<BreakGlassGrant[]>;
    /** A privacy officer's review; audited as the reviewer's (a refused one too), from `address`. */
    review(reviewer: UserActor, id: string, review: { outcome: string; note?: string }, address?: string): Promise<BreakGlassGrant>;
  };
  /** People signing in: passwords (with lockout and TOTP) and, when configured, OpenID Connect. */
  people: People;
  /** Signed-in sessions for the portal's cookie. */
  sessions: Sessions;
  /**
   * Records an administrator's change to accounts, clients or organisations in the audit trail, as made by
   * `actor` from `address`; never throws, never waits (like every audited request).
   */
  administered(actor: Actor, address: string | undefined, change: AdministrativeChange): void;
  /**
   * The same, for a change made through an HTTP route outside the record (the dead-letter API): made by the
   * caller `control` (what `authenticate` gave that request) speaks for. Records nothing for an
   * AccessControl `authenticate` did not give (a server without its audit trail).
   */
  administeredThrough(control: AccessControl, change: AdministrativeChange): void;
  /**
   * Records that `actor`, from `address`, viewed the MESH dead-letter queue (a page of it, a replay's
   * outcome) or was refused it: a dead letter's reason can name a person. `shownText` is the text the view
   * showed (reasons, headers; never kept): the people the record holds with an NHS number in it are named
   * in the view's AuditEvent, so it is in their "who has looked at my record". Resolves once the view is
   * recorded, after one search of the record when the text holds a valid NHS number (none otherwise); await
   * it before showing anything. Rejects only when that search fails, and then records nothing: show nothing.
   */
  deadLettersViewed(actor: Actor, address: string | undefined, view: DeadLetterView, shownText?: readonly string[]): Promise<void>;
  /**
   * The same, for a view through an HTTP route outside the record (the dead-letter API): by the caller
   * `control` (what `authenticate` gave that request) speaks for; nothing for any other AccessControl.
   */
  deadLettersViewedThrough(control: AccessControl, view: DeadLetterView, shownText?: readonly string[]): Promise<void>;
  /** Records a person's decision about a held HL7 v2 message, made as `actor` from `address`; never throws, never waits. */
  heldMessageDecided(actor: Actor, address: string | undefined, decision: HeldMessageDecision): void;
  /** Registers /oauth2/token, /oauth2/jwks, /.well-known/smart-configuration and /.well-known/openid-configuration. */
  routes(app: FastifyInstance): Promise<void>;
  /** Writes the audit events still buffered; call after the HTTP server has stopped, before the database closes. */
  close(): Promise<void>;
}

/**
 * The access tables, then the audit journal's (component 'audit'; its first version moves the old chain),
 * which on SQLite then moves to its own file (audit/ownDatabase.ts). Returns where the audit writer thread
 * connects (see useOwnAuditDatabase).
 */
export async function migrateAccess(driver: SqlDriver, database?: string): Promise<string | undefined> {
  await migrate(driver, 'access', ACCESS_MIGRATIONS);
  await migrate(driver, 'audit', auditMigrations(driver.dialect));
  return useOwnAuditDatabase(driver, database);
}

/**
 * For commands that change the access tables directly (the CLI): appends `change`, made by `actor`, to the
 * audit trail and resolves once it is committed. `journalDatabase` is what migrateAccess returned.
 */
export async function auditAdministrationNow(driver: SqlDriver, journalDatabase: string | undefined, actor: Actor, change: AdministrativeChange): Promise<void> {
  await appendNow(driver, journalDatabase, administrationRequest(Date.now(), undefined, change, actor));
}

/**
 * For commands that show the MESH dead-letter queue (the CLI): appends the view, by `actor`, to the audit
 * trail and resolves once it is committed, as the API's and the portal's views are audited (a reason can
 * name a person), naming the people the record holds with an NHS number in `shownText` (what the command
 * prints; never kept). `journalDatabase` is what migrateAccess returned.
 */
export async function auditDeadLettersViewedNow(driver: SqlDriver, journalDatabase: string | undefined, actor: Actor, view: DeadLetterView, shownText?: readonly string[]): Promise<void> {
  const at = Date.now();
  await appendNow(driver, journalDatabase, deadLetterViewRequest(at, undefined, await namingPatients(driver, view, shownText), actor));
}

/** Appends one request to the audit trail as a batch of its own, committed (and anchored) before this resolves. */
async function appendNow(driver: SqlDriver, journalDatabase: string | undefined, request: AuditedRequest): Promise<void> {
  const writer = journalDatabase ? threadWriter(journalDatabase, hostname()) : inProcessWriter(driver, hostname());
  const packed = new PackedRequests();
  packed.push(request);
  try {
    const head = await writer.write(packed.message(1));
    if (head) await anchorAuditHead(driver, head);
  } finally {
    await writer.close();
  }
}

/** What a command did in the record, for the audit trail: as a request to the API would be audited. */
export interface CommandLineAccess { at: number; actor: Actor; events: AccessEvent[]; outcome: { status: number; method: string; path: string; query: string } }

/**
 * For commands that write the record directly (`carebridge import`): appends their accesses to the audit
 * trail, as the API's would be, and resolves once they are committed; throws when any could not be.
 */
export async function auditAccessesNow(driver: SqlDriver, journalDatabase: string | undefined, accesses: CommandLineAccess[]): Promise<void> {
  const problems: string[] = [];
  const trail = new AuditTrail(journalDatabase ? threadWriter(journalDatabase, hostname()) : inProcessWriter(driver, hostname()), (message) => problems.push(message), (head) => anchorAuditHead(driver, head));
  for (const a of accesses) trail.record({ ...a, address: 'command line' });
  await trail.close();
  if (problems.length) throw new Error(`the audit trail did not take every entry: ${problems[0]}`);
}

/** Who changes the administrative client at start: the operator, through the server's environment. */
const ENVIRONMENT_ACTOR: Actor = { kind: 'system', clientId: 'carebridge-server', name: 'carebridge server start (CAREBRIDGE_ADMIN_CLIENT_ID and _SECRET)', purpose: 'HSYSADMIN', scope: 'environment' };

/**
 * A revoked administrative client stays revoked, and an ordinary client is never made administrative, so the
 * operator must hear why there is no administrative client; making it, or changing its secret through the
 * environment, is an administrative change like any other, so it is audited.
 */
function reportAdminClient(clientId: string, outcome: AdminClientOutcome, audit: AuditTrail | undefined): void {
  if (outcome === 'revoked') {
    console.warn(`WARNING: the administrative client '${clientId}' (CAREBRIDGE_ADMIN_CLIENT_ID) has been revoked and stays revoked; starting without it. Configure a new CAREBRIDGE_ADMIN_CLIENT_ID and CAREBRIDGE_ADMIN_CLIENT_SECRET.`);
  }
  if (outcome === 'refused') {
    console.warn(`WARNING: CAREBRIDGE_ADMIN_CLIENT_ID names the client '${clientId}', which is not an administrative client (it was registered by other means); it is left as it is, and the server is starting without an administrative client. Configure a CAREBRIDGE_ADMIN_CLIENT_ID that no other client uses.`);
  }
  if (outcome === 'added' || outcome === 'reset') {
    const change: AdministrativeChange = outcome === 'added'
      ? { action: 'client-added', target: clientId, detail: `${ADMIN_CLIENT_NAME}; scopes ${ADMIN_SCOPES}; secret`, ok: true }
      : { action: 'client-reset', target: clientId, detail: `scopes ${ADMIN_SCOPES}; secret`, ok: true };
    audit?.record(administrationRequest(Date.now(), 'environment', change, ENVIRONMENT_ACTOR));
  }
}

export async function setUpAccess(driver: SqlDriver, options: AccessOptions): Promise<Access> {
  const journalDatabase = await migrateAccess(driver, options.database);
  const adminClient = options.adminClient && { id: options.adminClient.id, outcome: await ensureAdminClient(driver, options.adminClient.id, options.adminClient.secret) };
  const tokens = new TokenService(driver);
  const configuredOrigin = options.baseUrl ? new URL(options.baseUrl).origin : undefined;
  const originOf = (req: FastifyRequest) => configuredOrigin ?? `${req.protocol}://${req.headers.host ?? 'localhost'}`;
  // An in-memory SQLite database cannot be opened again from another thread (journalDatabase is undefined).
  const writer = journalDatabase ? threadWriter(journalDatabase, hostname()) : inProcessWriter(driver, hostname());
  const audit = options.audit === false ? undefined : new AuditTrail(writer, undefined, (head) => anchorAuditHead(driver, head));
  // Who the view concerned is looked up before it is recorded (Date.now() first: when it was seen).
  const deadLettersViewed: Access['deadLettersViewed'] = async (actor, address, view, shownText) => {
    if (!audit) return;
    const at = Date.now();
    audit.record(deadLetterViewRequest(at, address, await namingPatients(driver, view, shownText), actor));
  };
  if (adminClient) reportAdminClient(adminClient.id, adminClient.outcome, audit);
  const authenticate = bearerAuthenticator(driver, tokens, originOf, audit);
  const { people, sessions } = setUpPeople(driver, options.people, audit);
  return {
    authenticate,
    allowsOrigin: browserOrigins(driver),
    people,
    sessions,
    async controlFor(actor, address) {
      const access = await accessFor(driver, actor);
      return audit ? audited(access, audit, actor, address ?? 'internal') : access;
    },
    administered(actor, address, change) {
      audit?.record(administrationRequest(Date.now(), address, change, actor));
    },
    heldMessageDecided(actor, address, decision) {
      audit?.record({ at: Date.now(), actor, address, events: [], outcome: { status: 200, method: 'POST', path: `hl7v2/${decision.decision}`, query: '' }, heldMessage: decision });
    },
    administeredThrough(control, change) {
      const caller = auditedCaller(control);
      if (caller) audit?.record(administrationRequest(Date.now(), caller.address, change, caller.actor));
    },
    deadLettersViewed,
    async deadLettersViewedThrough(control, view, shownText) {
      const caller = auditedCaller(control);
      if (caller) await deadLettersViewed(caller.actor, caller.address, view, shownText);
    },
    services: { AuditEvent: auditEventService(driver) },
    close: async () => audit?.close(),
    breakGlass: {
      async declare(actor, request, address) {
        const grant = await declareBreakGlass(driver, actor, request);
        auditBreakGlass(audit, actor, grant, address ?? 'internal');
        return grant;
      },
      list: (filter) => listBreakGlass(driver, filter),
      review: (reviewer, id, review, address) => reviewAudited(driver, audit, reviewer, id, review, address ?? 'internal'),
    },
    async routes(app) {
      await app.register(tokenEndpoint, { driver, tokens, originOf, rateLimitPerMinute: options.tokenRequestsPerMinute, audit, refreshLifetimes: options.refreshLifetimes ?? DEFAULT_REFRESH_LIFETIMES });
      await app.register(breakGlassRoutes, { driver, identify: bearerIdentifier(driver, tokens, originOf), audit });
      await app.register(authorizeEndpoint, { driver, tokens, people, originOf, signInsPerMinute: options.signInsPerMinute ?? 20 });
    },
  };
}
