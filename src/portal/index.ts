// The portal: server-rendered pages for people (care homes first), over the record and access.
export { portal, type PortalOptions } from './plugin.ts';
export type { PortalAccess, PortalAdministration, PortalBreakGlass, PeopleSignIn, PortalSessions, Membership, SignInResult, SignedInUser, SignInRefusal } from './portalAccess.ts';
export { recordFor, type RecordClient, type Resource } from './recordClient.ts';
export { residentsView } from './careHome/residents.ts';
export { recordSummary } from './person/summary.ts';
export type { PortalDeadLetters } from './admin/deadLetters.ts';
