// What the portal needs from src/access, as its own small interface: the record's access checks for a
// signed-in person (exists) and people's accounts and sessions (being built; absent until they land).
import type { Actor, Role, UserActor } from '../access/index.ts';
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
}

export interface PortalSessions {
  start(userId: string, membership: Membership, context: { address: string }): Promise<{ id: string; expiresAt: number }>;
  /** Who the session speaks for; undefined when it is unknown, ended or expired. */
  actor(id: string): Promise<UserActor | undefined>;
  end(id: string): Promise<void>;
}

export interface PortalAccess {
  /** What `actor` may do in the record, audited as coming from `address` (src/access Access.controlFor). */
  controlFor(actor: Actor, address?: string): Promise<AccessControl>;
  /** People's accounts and sessions; until they are wired the sign-in page says sign-in is unavailable. */
  accounts?: { people: PeopleSignIn; sessions: PortalSessions };
}
