// What the portal needs from src/access, as its own small interface: the record's access checks for a
// signed-in person (exists) and people's accounts and sessions (being built; absent until they land).
import type { Actor, AdministrativeChange, BreakGlassGrant, NewClient, NewUser, Organisation, Role, SessionWatch, SystemClient, UserActor, UserSummary } from '../access/index.ts';
import type { AccessControl } from '../record/index.ts';

export interface Membership {
  /** ODS code of the organisation (a person or carer acts for none). */
  organisation?: string;
  organisationName?: string;
  role: Role;
}

export interface SignedInUser {
  userId: string;
  username: string;
  name: string;
  fhirUser?: string;
}

export type SignInRefusal = 'invalid' | 'locked' | 'totp-required' | 'totp-invalid' | 'disabled';

export type SignInResult =
  | { ok: true; user: SignedInUser; memberships: Membership[] }
  | { ok: false; reason: SignInRefusal; message: string };

export interface PeopleSignIn {
  signIn(attempt: { username: string; password: string; totp?: string; address: string }): Promise<SignInResult>;
  /** Sign-in through the organisation's OpenID Connect provider, when one is configured. */
  oidc?: {
    start(options: { returnTo?: string; redirectUri?: string }): Promise<{ url: string; state: OidcHandshake }>;
    finish(callbackUrl: string | URL, state: OidcHandshake, context: { address: string }): Promise<SignInResult>;
  };
}

/** What is kept (in a signed cookie) between sending someone to the provider and their return. */
export interface OidcHandshake { state: string; nonce: string; codeVerifier: string; redirectUri: string; returnTo: string }

export interface PortalSessions {
  start(userId: string, membership: Membership, context: { address: string }): Promise<{ id: string; expiresAt: number }>;
  /** Who the session speaks for; undefined when it is unknown, ended or expired. */
  actor(id: string): Promise<UserActor | undefined>;
  end(id: string): Promise<void>;
  /** Marks a one-time sign-in step as used for the `forMs` it could still be presented; false when it was used already. */
  claimOnce(key: string, forMs: number): Promise<boolean>;
  /** Calls `ended` once the session stops standing, however it ends (src/access Sessions.watch: within WATCH_MS). */
  watch(id: string, ended: () => void): SessionWatch;
}

/** Break-glass (src/access Access.breakGlass): declaring, the privacy officers' queue, and its reviews. */
export interface PortalBreakGlass {
  /** Records the grant and audits it; FhirError 400 (bad reason), 403 (role may not), 404 (no such person). */
  declare(actor: UserActor, request: { patientId: string; reasonCode: string; reason: string; submission?: string }, address?: string): Promise<BreakGlassGrant>;
  list(filter?: { open?: boolean; patientId?: string; limit?: number }): Promise<BreakGlassGrant[]>;
  /** Records the review and audits it; FhirError 400 (bad outcome or note), 403 (not a privacy officer), 404, 409 (already reviewed). */
  review(reviewer: UserActor, id: string, review: { outcome: string; note?: string }, address?: string): Promise<BreakGlassGrant>;
}

/** Who makes an administrative change, and from where: each change is audited as theirs. */
export interface Administrator { actor: UserActor; address: string }

/**
 * What administrators manage (src/access: addUser, listUsers, disableUser, enableUser, setPassword, signOutEverywhere, addClient,
 * listClients, revokeClient, addOrganisation, listOrganisations). Each add or change throws an Error whose
 * message says what was wrong with the input; each one made is recorded in the audit trail as `by`'s.
 */
export interface PortalAdministration {
  users: {
    list(): Promise<UserSummary[]>;
    add(user: NewUser, by: Administrator): Promise<{ userId: string; totpUri?: string }>;
    disable(username: string, by: Administrator): Promise<void>;
    enable(username: string, by: Administrator): Promise<void>;
    /** A new password (checked against the rules; the caller shows it once), lifting any lockout. */
    setPassword(username: string, password: string, by: Administrator): Promise<void>;
    /** Ends their portal sessions and every app's sign-in, leaving the account as it is (a lost or shared device). */
    signOut(username: string, by: Administrator): Promise<void>;
  };
  clients: {
    list(): Promise<SystemClient[]>;
    /** The secret, when there is one, is in the answer only: it is stored hashed. */
    add(client: NewClient, by: Administrator): Promise<{ client: SystemClient; secret?: string }>;
    revoke(clientId: string, by: Administrator): Promise<void>;
  };
  organisations: {
    list(): Promise<Organisation[]>;
    add(organisation: Organisation, by: Administrator): Promise<Organisation>;
  };
  /** Audits an attempted change the portal refused before making it (the caller's role, or the change itself). */
  refused(by: Administrator, attempt: RefusedAttempt): void;
}

/** A change refused before it was attempted: what was asked for, and why not. */
export type RefusedAttempt = Omit<AdministrativeChange, 'ok' | 'detail' | 'reason'> & { reason: string };

export interface PortalAccess {
  /** What `actor` may do in the record, audited as coming from `address` (src/access Access.controlFor). */
  controlFor(actor: Actor, address?: string): Promise<AccessControl>;
  /** People's accounts and sessions; until they are wired the sign-in page says sign-in is unavailable. */
  accounts?: { people: PeopleSignIn; sessions: PortalSessions };
  /** Break-glass; without it a refused record shows the plain "no access" page. */
  breakGlass?: PortalBreakGlass;
  /** Users, system clients and organisations, for administrators; without it the admin pages say so. */
  administration?: PortalAdministration;
}
