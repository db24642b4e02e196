// The role → permission matrix: which resource types each role may read (read, search, history) and write
// (create, update), and delete. docs/access.md shows the same matrix as a table; keep the two in step.
// A role's permissions say what kind of thing a person may do; which people's records they may do it on is
// decided by their relationships (relationships.ts).
import type { RecordInteraction } from '../record/index.ts';
import type { Role } from './actor.ts';

/** Resource types grouped by what they hold. A type in no group is refused to every role. */
export const GROUPS = {
  /** Who the person is and who is around them. */
  demographics: ['Patient', 'RelatedPerson'],
  /** Clinical facts: problems, medicines, allergies, observations, results. */
  clinical: [
    'Observation', 'Condition', 'AllergyIntolerance', 'MedicationRequest', 'MedicationStatement', 'MedicationAdministration',
    'MedicationDispense', 'Procedure', 'Immunization', 'DiagnosticReport', 'Specimen', 'ClinicalImpression', 'RiskAssessment',
    'FamilyMemberHistory', 'NutritionOrder', 'DeviceUseStatement',
  ],
  /** Plans, decisions and safety alerts that carers and care staff act on every day. */
  care: ['CarePlan', 'Goal', 'Flag', 'Consent', 'QuestionnaireResponse', 'DocumentReference', 'Composition'],
  /** Who is looking after the person, where, and what has been asked of whom. */
  coordination: ['EpisodeOfCare', 'CareTeam', 'Encounter', 'ServiceRequest', 'Task', 'Communication', 'CommunicationRequest', 'Appointment'],
  /** Shared reference data: organisations, staff, places, services, medicines, forms. */
  directory: ['Organization', 'Practitioner', 'PractitionerRole', 'Location', 'HealthcareService', 'Endpoint', 'Medication', 'Questionnaire', 'Device'],
  /** The audit trail (read only for everyone; only the server writes it). */
  audit: ['AuditEvent'],
} as const satisfies Record<string, readonly string[]>;

type Group = keyof typeof GROUPS;

export interface RolePermissions {
  read: (Group | string)[];
  write: (Group | string)[];
  delete: (Group | string)[];
}

const EVERY_RECORD_GROUP: Group[] = ['demographics', 'clinical', 'care', 'coordination', 'directory'];

export const MATRIX: Record<Role, RolePermissions> = {
  'care-home-staff': { read: EVERY_RECORD_GROUP, write: ['Observation', 'MedicationAdministration', 'Flag', 'QuestionnaireResponse', 'DocumentReference', 'Composition', 'Communication', 'Task'], delete: [] },
  'care-home-manager': { read: EVERY_RECORD_GROUP, write: ['demographics', 'Observation', 'MedicationAdministration', 'MedicationStatement', 'AllergyIntolerance', 'care', 'EpisodeOfCare', 'CareTeam', 'Communication', 'Task'], delete: ['Flag', 'Task'] },
  'ward-nurse': { read: EVERY_RECORD_GROUP, write: ['Observation', 'MedicationAdministration', 'Flag', 'CarePlan', 'QuestionnaireResponse', 'DocumentReference', 'Composition', 'Encounter', 'Communication', 'Task'], delete: [] },
  'discharge-coordinator': { read: EVERY_RECORD_GROUP, write: ['Encounter', 'ServiceRequest', 'Task', 'Communication', 'Appointment', 'QuestionnaireResponse', 'DocumentReference', 'Composition'], delete: ['Task'] },
  'social-worker': { read: EVERY_RECORD_GROUP, write: ['RelatedPerson', 'ServiceRequest', 'Task', 'Communication', 'CarePlan', 'Goal', 'Consent', 'QuestionnaireResponse', 'DocumentReference', 'EpisodeOfCare', 'CareTeam'], delete: ['Task'] },
  // Arranging a package needs the person, their plan and who is involved, not their clinical detail.
  broker: { read: ['demographics', 'coordination', 'CarePlan', 'Goal', 'Flag', 'directory'], write: ['Task', 'Communication', 'Appointment'], delete: [] },
  gp: { read: EVERY_RECORD_GROUP, write: ['clinical', 'care', 'ServiceRequest', 'Task', 'Communication'], delete: [] },
  carer: { read: ['demographics', 'Condition', 'AllergyIntolerance', 'MedicationRequest', 'MedicationStatement', 'Observation', 'care', 'Appointment', 'CareTeam', 'directory'], write: ['Communication', 'QuestionnaireResponse'], delete: [] },
  person: { read: [...EVERY_RECORD_GROUP, 'audit'], write: ['Consent', 'Communication', 'QuestionnaireResponse'], delete: [] },
  // Privacy officers look at who looked; they do not read care records.
  'privacy-officer': { read: ['audit', 'directory'], write: [], delete: [] },
  admin: { read: ['directory'], write: ['directory'], delete: ['directory'] },
};

function expand(entries: (Group | string)[]): Set<string> {
  return new Set(entries.flatMap((e) => (e in GROUPS ? [...GROUPS[e as Group]] : [e])));
}

const EXPANDED = Object.fromEntries(
  Object.entries(MATRIX).map(([role, p]) => [role, { read: expand(p.read), write: expand(p.write), delete: expand(p.delete) }]),
) as Record<Role, { read: Set<string>; write: Set<string>; delete: Set<string> }>;

/** Whether `role` may do `interaction` on resources of `resourceType` ('*' = across every type: never for people). */
export function roleAllows(role: Role, resourceType: string, interaction: RecordInteraction): boolean {
  if (resourceType === '*') return false;
  const p = EXPANDED[role];
  switch (interaction) {
    case 'read':
    case 'search':
      return p.read.has(resourceType);
    case 'create':
    case 'update':
      return p.write.has(resourceType);
    case 'delete':
      return p.delete.has(resourceType);
  }
}

export function readableTypes(role: Role): ReadonlySet<string> {
  return EXPANDED[role].read;
}
