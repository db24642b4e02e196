// Legitimate relationships, read from the record itself: whose records a person may see follows from the
// care being given, as the record shows it at the moment of each query. docs/access.md explains each one.
import type { PatientScope, RelationshipSearch } from '../record/index.ts';
import type { Role, UserActor } from './actor.ts';

export const ODS_SYSTEM = 'https://fhir.nhs.uk/Id/ods-organization-code';
/** Consent categories (HL7 v3 ActCode): the person opted out of sharing, or opted a named person in. */
export const OPT_OUT = 'http://terminology.hl7.org/CodeSystem/v3-ActCode|OPTOUT';
export const OPT_IN = 'http://terminology.hl7.org/CodeSystem/v3-ActCode|OPTIN';

/** Encounter statuses during which the hospital is caring for the person. */
const ACTIVE_ENCOUNTER = 'planned,arrived,triaged,in-progress,onleave';
/**
 * A red bag (src/redbag) is a Task with this code; these statuses are the time from its sending until the
 * care home closes it (sent, received, in hospital, summary attached, returned).
 */
export const RED_BAG_TASK_CODE = 'https://carebridge.example/CodeSystem/red-bag-task|red-bag';
const RED_BAG_OPEN = 'requested,accepted,in-progress';
/** ServiceRequest statuses of a referral still open. */
const OPEN_REFERRAL = 'draft,active,on-hold';

function atOrganisation(ods: string) {
  return `${ODS_SYSTEM}|${ods}`;
}

/** Residence at the user's care home: an active EpisodeOfCare managed by it. */
function residence(ods: string): RelationshipSearch {
  return { resourceType: 'EpisodeOfCare', query: [['status', 'active'], ['organization.identifier', atOrganisation(ods)]], patientParam: 'patient' };
}

/** An Encounter at the user's hospital that has not finished. */
function admission(ods: string): RelationshipSearch {
  return { resourceType: 'Encounter', query: [['status', ACTIVE_ENCOUNTER], ['service-provider.identifier', atOrganisation(ods)]], patientParam: 'subject' };
}

/**
 * A red bag sent to the user's hospital and not yet closed: the ward sees the resident from the moment the
 * care home sends it, before any admission is on the record.
 */
function redBagReceived(ods: string): RelationshipSearch {
  return { resourceType: 'Task', query: [['code', RED_BAG_TASK_CODE], ['status', RED_BAG_OPEN], ['owner:Organization.identifier', atOrganisation(ods)]], patientParam: 'patient' };
}

/** An open referral to the user's council (or to another organisation the user acts for): its performer is that Organization (typed, so the scope does not search seven other target types for an ODS code only organisations carry). */
function referral(ods: string): RelationshipSearch {
  return { resourceType: 'ServiceRequest', query: [['status', OPEN_REFERRAL], ['performer:Organization.identifier', atOrganisation(ods)]], patientParam: 'subject' };
}

/** Ongoing support arranged by the user's council (a care package or placement it manages). */
function councilEpisode(ods: string): RelationshipSearch {
  return { resourceType: 'EpisodeOfCare', query: [['status', 'active,waitlist,onhold'], ['organization.identifier', atOrganisation(ods)]], patientParam: 'patient' };
}

/** Registration with the user's GP practice. */
function registration(ods: string): RelationshipSearch {
  return { resourceType: 'Patient', query: [['general-practitioner:Organization.identifier', atOrganisation(ods)]], patientParam: '_id' };
}

/**
 * A carer's delegation: the person's active opt-in Consent naming this RelatedPerson, in force at `now`.
 * Two searches, either of which delegates: a provision without a period (open-ended, until withdrawn), and
 * one whose period includes now (R4's `period` indexes Consent.provision.period as a range; a missing start
 * or end is open on that side). `now` is fixed when the scope is made, which the access layer does afresh
 * at least every DECISION_MS, so a delegation ends within that of its agreed end. Whether the provision
 * permits is not indexed: consentRules.ts refuses to store an active opt-in that does not (H-039).
 */
export function delegations(relatedPerson: string, now: Date = new Date()): RelationshipSearch[] {
  const named: [string, string][] = [['status', 'active'], ['category', OPT_IN], ['actor', relatedPerson]];
  // To the second: scopes made within the same second share their compiled SQL (visibility.ts).
  const at = new Date(Math.floor(now.getTime() / 1000) * 1000).toISOString();
  return [
    { resourceType: 'Consent', query: [...named, ['period:missing', 'true']], patientParam: 'patient' },
    { resourceType: 'Consent', query: [...named, ['period', `le${at}`], ['period', `ge${at}`]], patientParam: 'patient' },
  ];
}

/** People who dissented from sharing: an active opt-out Consent. */
const DISSENT: RelationshipSearch = { resourceType: 'Consent', query: [['status', 'active'], ['category', OPT_OUT]], patientParam: 'patient' };

/** Which relationships give each role access, given the organisation the user acts for. */
const RELATIONSHIPS: Record<Role, (ods: string) => RelationshipSearch[]> = {
  'care-home-staff': (ods) => [residence(ods)],
  'care-home-manager': (ods) => [residence(ods)],
  'ward-nurse': (ods) => [admission(ods), redBagReceived(ods)],
  'discharge-coordinator': (ods) => [admission(ods), redBagReceived(ods)],
  'social-worker': (ods) => [referral(ods), councilEpisode(ods)],
  broker: (ods) => [referral(ods), councilEpisode(ods)],
  gp: (ods) => [registration(ods)],
  carer: () => [],
  person: () => [],
  'privacy-officer': () => [],
  admin: () => [],
};

export const BREAK_GLASS_ADVICE = 'If you need this record to care for the person now, declare break-glass with your reason (POST /access/break-glass, or "Request access" in the portal): it is allowed, recorded, and reviewed by a privacy officer.';

/**
 * The patients a person may see: through their organisation's relationships, their own record, a carer's
 * delegation, and break-glass grants in force (`grantedPatientIds`). A person's dissent removes them from
 * relationships whose purpose is not direct care; it never removes their own record, their delegates, or
 * break-glass.
 */
export function patientScopeFor(actor: UserActor, grantedPatientIds: string[]): PatientScope {
  if (actor.patient !== undefined) return patientContextScope(actor);
  const patientIds = [...grantedPatientIds];
  const via = actor.organisation ? RELATIONSHIPS[actor.role](actor.organisation) : [];
  const own = reference(actor.fhirUser);
  if (actor.role === 'person' && own?.type === 'Patient') patientIds.push(own.id);
  if (actor.role === 'carer' && own?.type === 'RelatedPerson') via.push(...delegations(`RelatedPerson/${own.id}`));
  const directCare = actor.purpose === 'TREAT';
  return {
    patientIds: [...new Set(patientIds)],
    via,
    ...(directCare || actor.role === 'carer' ? {} : { except: [DISSENT] }),
    refusalAdvice: BREAK_GLASS_ADVICE,
  };
}

export const PATIENT_CONTEXT_ADVICE = 'This app was authorised for one person\'s record (SMART patient/ scopes) and cannot reach anyone else\'s.';

/**
 * A token bound to one patient (SMART patient/ scopes) reaches that record alone, and only while it is the
 * person's own: the only patient context CareBridge issues (authorize.ts). Anything else reaches no one.
 */
function patientContextScope(actor: UserActor): PatientScope {
  const own = ownPatientId(actor.role, actor.fhirUser);
  return { patientIds: own !== undefined && own === actor.patient ? [own] : [], via: [], refusalAdvice: PATIENT_CONTEXT_ADVICE };
}

/** The id of a person's own Patient record: for the role `person` linked to Patient/<id>; else undefined. */
export function ownPatientId(role: string, fhirUser: string | undefined): string | undefined {
  const own = reference(fhirUser);
  return role === 'person' && own?.type === 'Patient' ? own.id : undefined;
}

function reference(value: string | undefined): { type: string; id: string } | undefined {
  const m = /^([A-Z][A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})$/.exec(value ?? '');
  return m ? { type: m[1], id: m[2] } : undefined;
}
