// Who is asking: every call into the record carries an actor, from a person's sign-in or a system
// client's token. Relationship-based access, consent, break-glass and the audit trail all start here.

/** The roles a person can act in; each membership of an organisation holds exactly one. */
export const ROLES = [
  'care-home-staff',
  'care-home-manager',
  'ward-nurse',
  'discharge-coordinator',
  'social-worker',
  'broker',
  'gp',
  'carer',
  'person',
  'privacy-officer',
  'admin',
] as const;
export type Role = (typeof ROLES)[number];

export function isRole(value: string): value is Role {
  return (ROLES as readonly string[]).includes(value);
}

/**
 * Why the record is being used, as HL7 v3 PurposeOfUse codes (what AuditEvent.purposeOfEvent carries):
 * TREAT direct care, CAREMGT arranging care, PATRQT the person themself, FAMRQT a carer at the person's
 * request, HOPERAT privacy and operations, HSYSADMIN administration, BTG break-glass.
 */
export type PurposeOfUse = 'TREAT' | 'CAREMGT' | 'PATRQT' | 'FAMRQT' | 'HOPERAT' | 'HSYSADMIN' | 'BTG';

export const ROLE_PURPOSE: Record<Role, PurposeOfUse> = {
  'care-home-staff': 'TREAT',
  'care-home-manager': 'TREAT',
  'ward-nurse': 'TREAT',
  'discharge-coordinator': 'TREAT',
  'social-worker': 'TREAT',
  broker: 'CAREMGT',
  gp: 'TREAT',
  carer: 'FAMRQT',
  person: 'PATRQT',
  'privacy-officer': 'HOPERAT',
  admin: 'HSYSADMIN',
};

export interface UserActor {
  kind: 'user';
  /** The user's id in access_users. */
  userId: string;
  name: string;
  /** ODS code of the organisation the user is acting for (a person or carer acts for none). */
  organisation?: string;
  role: Role;
  /** Who the user is in the record: Practitioner/…, RelatedPerson/… (a carer) or Patient/… (the person). */
  fhirUser?: string;
  /**
   * SMART patient context: the id of the one Patient whose record the token is bound to (an app granted
   * patient/ scopes). Today only a person's own record can be the context (authorize.ts).
   */
  patient?: string;
  /** The sign-in an app's token comes from (its authorization code): once it has ended, the token is refused. */
  signIn?: string;
  purpose: PurposeOfUse;
  /** The SMART scopes granted to the session or token, e.g. 'user/*.cruds'. */
  scope: string;
  /** The token or session id, so the audit can tie calls to one sign-in. */
  sessionId?: string;
}

export interface SystemActor {
  kind: 'system';
  clientId: string;
  name?: string;
  organisation?: string;
  purpose: PurposeOfUse;
  scope: string;
  sessionId?: string;
}

export type Actor = UserActor | SystemActor;
