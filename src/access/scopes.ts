// SMART on FHIR scopes (v2 "system/Patient.rs", v1 "system/Patient.read"): what a token lets its
// holder do, per resource type and interaction. Nothing here knows who the holder is.

export type Interaction = 'create' | 'read' | 'update' | 'delete' | 'search';
export type Context = 'system' | 'user' | 'patient';

export interface Scope {
  context: Context;
  /** A resource type, or '*'. */
  resourceType: string;
  interactions: ReadonlySet<Interaction>;
}

const V2_LETTERS: Record<string, Interaction> = { c: 'create', r: 'read', u: 'update', d: 'delete', s: 'search' };
const V1: Record<string, Interaction[]> = {
  read: ['read', 'search'],
  write: ['create', 'update', 'delete'],
  '*': ['create', 'read', 'update', 'delete', 'search'],
};
const SCOPE = /^(system|user|patient)\/([A-Za-z]+|\*)\.([a-z*]+)(\?.*)?$/;

/** Parses one resource scope; undefined for scopes that are not about resources (openid, launch…). */
export function parseScope(text: string): Scope | undefined {
  const m = SCOPE.exec(text);
  if (!m) return undefined;
  const [, context, resourceType, permissions, query] = m;
  if (query) return undefined; // v2 scopes narrowed by a search are not granted here: refuse rather than widen
  let interactions: Interaction[] | undefined = V1[permissions];
  if (!interactions) {
    if (!/^c?r?u?d?s?$/.test(permissions) || !permissions) return undefined;
    interactions = [...permissions].map((letter) => V2_LETTERS[letter]);
  }
  return { context: context as Context, resourceType, interactions: new Set(interactions) };
}

export function parseScopes(text: string | undefined): Scope[] {
  return (text ?? '')
    .split(/\s+/)
    .filter(Boolean)
    .map(parseScope)
    .filter((s): s is Scope => s !== undefined);
}

/**
 * The scopes a system client's own token may use: only system/ ones. user/ and patient/ scopes stand for a
 * person, whose relationships, consent and break-glass limit them; a token with no person behind it has none
 * of those limits, so such scopes must grant it nothing rather than everything.
 */
export function systemScopes(scopes: readonly Scope[]): Scope[] {
  return scopes.filter((s) => s.context === 'system');
}

/**
 * The scopes a person's token may use: patient/ ones only when the token is bound to one patient (SMART's
 * patient context; relationships.ts then narrows the whole token to that record). Unbound, a patient/ scope
 * would read every record the person may see, as a user/ scope does, so it grants nothing.
 */
export function personScopes(scopes: readonly Scope[], boundToPatient: boolean): Scope[] {
  return boundToPatient ? [...scopes] : scopes.filter((s) => s.context !== 'patient');
}

export function scopesAllow(scopes: readonly Scope[], resourceType: string, interaction: Interaction): boolean {
  return scopes.some((s) => (s.resourceType === '*' || s.resourceType === resourceType) && s.interactions.has(interaction));
}

/**
 * The scopes a client asked for, cut down to what it was registered with: a request can narrow a
 * grant, never widen it. Returns the granted scope strings.
 */
export function grantScopes(requested: string | undefined, allowed: string): string[] {
  const allowedScopes = parseScopes(allowed);
  if (!requested) return allowed.split(/\s+/).filter(Boolean);
  return requested
    .split(/\s+/)
    .filter(Boolean)
    .filter((text) => {
      const want = parseScope(text);
      if (!want) return false;
      return [...want.interactions].every((i) =>
        allowedScopes.some((a) => a.context === want.context && (a.resourceType === '*' || a.resourceType === want.resourceType) && a.interactions.has(i)),
      );
    });
}

/** OpenID Connect's scopes as SMART uses them: who the person is, in an id_token. */
export const IDENTITY_SCOPES = ['openid', 'fhirUser', 'profile'];

/**
 * The scopes beside resource scopes that a person's sign-in grants an app, from those it asked for: who the
 * person is (openid, fhirUser, profile) to any app; online_access to any app; offline_access, which keeps
 * the app reading for weeks after the person has gone, only to an app registered with it (an
 * information-governance decision, like registering the app at all).
 */
export function signInExtraScopes(requested: string | undefined, registered: string): string[] {
  const asked = new Set((requested ?? '').split(/\s+/).filter(Boolean));
  const extra = IDENTITY_SCOPES.filter((scope) => asked.has(scope));
  if (asked.has('offline_access') && registered.split(/\s+/).includes('offline_access')) extra.push('offline_access');
  else if (asked.has('online_access')) extra.push('online_access');
  return extra;
}

/**
 * What a refresh asks for, against what the sign-in granted: each scope must be granted, or (a resource
 * scope) covered by one granted. Answers the scopes that are not, to refuse the refresh with: a refresh may
 * narrow a grant, never widen it.
 */
export function scopesBeyond(requested: string, granted: string): string[] {
  const grantedScopes = granted.split(/\s+/).filter(Boolean);
  const covered = new Set(grantScopes(requested, grantedScopes.filter((scope) => parseScope(scope)).join(' ')));
  return requested.split(/\s+/).filter(Boolean).filter((scope) => !grantedScopes.includes(scope) && !covered.has(scope));
}
