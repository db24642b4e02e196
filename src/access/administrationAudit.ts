// What administrators change — accounts, system clients, organisations — as AuditEvents in the same
// hash-chained trail as every record access and sign-in, so an information-governance lead can see who gave
// whom access, and when. DICOM PS3.15 A.5.3.11 Security Alert (110113), its type from PS3.16 CID 403:
// 110137 User Security Attributes Changed for accounts, 110129 Security Configuration for clients and
// organisations. Never a password or client secret: the change names what was granted, not how to use it.
// A dead letter replayed (put back into the MESH inbox to be processed again) is 110132 Use of Restricted
// Function, naming the MESH message id; never the message's body or its reason, which can hold personal data.
// A privacy officer's review of a break-glass alert is 110132 too (a function only privacy officers have),
// naming the alert and filed under the person whose record it was, with the verdict and the officer's note.
import { agent, auditSource, CLIENT_ID_SYSTEM, ODS_SYSTEM, USER_ID_SYSTEM, type AuditedRequest } from './audit/auditEvent.ts';
import type { Membership } from './people/users.ts';
import type { SystemClient } from './clients.ts';

const DCM = 'http://dicom.nema.org/resources/ontology/DCM';
const ENTITY_TYPE = 'http://terminology.hl7.org/CodeSystem/audit-entity-type';
const OBJECT_ROLE = 'http://terminology.hl7.org/CodeSystem/object-role';

export type AdministrativeAction = 'user-added' | 'user-disabled' | 'user-enabled' | 'user-password-set' | 'user-signed-out' | 'client-added' | 'client-revoked' | 'client-reset' | 'organisation-added' | 'dead-letter-replayed' | 'break-glass-reviewed';

export interface AdministrativeChange {
  action: AdministrativeAction;
  /** What was changed: a username, a client id, an ODS code, a MESH message id or a break-glass alert's id. */
  target: string;
  /** The person the change is about (a break-glass alert's): the entry is filed under them, as Patient/<id>. */
  patientId?: string;
  /** The changed user's id (access_users), when the target is a user. */
  targetId?: string;
  /** What was granted, in words (memberships, scopes, an organisation's name); never a secret. */
  detail?: string;
  ok: boolean;
  /** Why a change was refused, in words (never a secret): the attempt is audited too. */
  reason?: string;
  /** False when the caller may not administer at all (their role), rather than this change being refused. */
  permitted?: boolean;
}

interface ActionWords { text: string; changes: 'user' | 'client' | 'organisation' | 'message' | 'alert'; subtype: { system: string; code: string; display: string } }
const USER_ATTRIBUTES = { system: DCM, code: '110137', display: 'User Security Attributes Changed' };
const SECURITY_CONFIGURATION = { system: DCM, code: '110129', display: 'Security Configuration' };
const RESTRICTED_FUNCTION = { system: DCM, code: '110132', display: 'Use of Restricted Function' };
/** A break-glass alert's id (access_break_glass.id) as an identifier (AuditEvent.entity.what). */
export const BREAK_GLASS_ALERT_ID_SYSTEM = 'https://carebridge.example/break-glass-alert-id';
/** A MESH message id as an identifier (AuditEvent.entity.what). */
export const MESH_MESSAGE_ID_SYSTEM = 'https://carebridge.example/mesh-message-id';
const ACTIONS: Record<AdministrativeAction, ActionWords> = {
  'user-added': { text: 'user added', changes: 'user', subtype: USER_ATTRIBUTES },
  'user-disabled': { text: 'user disabled', changes: 'user', subtype: USER_ATTRIBUTES },
  'user-enabled': { text: 'user enabled', changes: 'user', subtype: USER_ATTRIBUTES },
  'user-password-set': { text: 'password set, any lockout lifted', changes: 'user', subtype: USER_ATTRIBUTES },
  'user-signed-out': { text: 'signed out everywhere (portal sessions and app sign-ins)', changes: 'user', subtype: USER_ATTRIBUTES },
  'client-added': { text: 'system client added', changes: 'client', subtype: SECURITY_CONFIGURATION },
  'client-revoked': { text: 'system client revoked', changes: 'client', subtype: SECURITY_CONFIGURATION },
  'client-reset': { text: 'system client secret and scopes set from the environment', changes: 'client', subtype: SECURITY_CONFIGURATION },
  'organisation-added': { text: 'organisation added', changes: 'organisation', subtype: SECURITY_CONFIGURATION },
  'dead-letter-replayed': { text: 'dead letter replayed', changes: 'message', subtype: RESTRICTED_FUNCTION },
  'break-glass-reviewed': { text: 'break-glass alert reviewed', changes: 'alert', subtype: RESTRICTED_FUNCTION },
};

/** Memberships as an administrator reads them: `ward-nurse at RX9, carer`. */
export function describeMemberships(memberships: Membership[]): string {
  return memberships.map((m) => (m.organisation ? `${m.role} at ${m.organisation}` : m.role)).join(', ');
}

/** A client as an administrator reads it: `scopes system/Patient.rs; organisation RX9; secret` (never the secret itself). */
export function describeClient(client: SystemClient): string {
  const credential = client.jwks ? 'public keys' : client.hasSecret ? 'secret' : 'no credential (public client)';
  return [`${client.name}`, `scopes ${client.scopes}`, client.organization && `organisation ${client.organization}`, credential].filter(Boolean).join('; ');
}

/** The audit entry for one change: what the trail writer stores (see audit/trail.ts). */
export function administrationRequest(at: number, address: string | undefined, change: AdministrativeChange, actor: AuditedRequest['actor']): AuditedRequest {
  return {
    at,
    actor,
    address,
    events: [],
    outcome: { status: change.ok ? 200 : change.permitted === false ? 403 : 400, method: 'POST', path: `admin/${change.action}`, query: '' },
    administration: change,
  };
}

const PERSON_ENTITY = { type: { system: ENTITY_TYPE, code: '1', display: 'Person' }, role: { system: OBJECT_ROLE, code: '1', display: 'Patient' } };

/** The changed thing, and the person it is about if any, as AuditEvent.entity. */
function changedEntities(change: AdministrativeChange): Record<string, any>[] {
  const about = change.patientId ? [{ what: { reference: `Patient/${change.patientId}` }, ...PERSON_ENTITY }] : [];
  return [changedEntity(change), ...about];
}

/** The changed thing as AuditEvent.entity: its identifier where it has one, its name to search by. */
function changedEntity(change: AdministrativeChange): Record<string, any> {
  const kind = ACTIONS[change.action].changes;
  const [system, value, type, role] =
    kind === 'user' ? [USER_ID_SYSTEM, change.targetId, { code: '1', display: 'Person' }, { code: '11', display: 'Security User Entity' }]
    // A client refused when added has no id: it is named by the name asked for, with no identifier.
    : kind === 'client' ? [CLIENT_ID_SYSTEM, change.action === 'client-added' && !change.ok ? undefined : change.target, { code: '2', display: 'System Object' }, { code: '11', display: 'Security User Entity' }]
    : kind === 'message' ? [MESH_MESSAGE_ID_SYSTEM, change.target, { code: '2', display: 'System Object' }, { code: '20', display: 'Job' }]
    // A review refused names the alert asked for, which may not exist: no identifier then.
    : kind === 'alert' ? [BREAK_GLASS_ALERT_ID_SYSTEM, change.ok ? change.target : undefined, { code: '2', display: 'System Object' }, { code: '13', display: 'Security Resource' }]
    : [ODS_SYSTEM, change.target, { code: '3', display: 'Organization' }, { code: '12', display: 'Security Group Entity' }];
  return {
    ...(value ? { what: { identifier: { system, value } } } : {}),
    type: { system: ENTITY_TYPE, ...type },
    role: { system: OBJECT_ROLE, ...role },
    name: change.target,
    ...(change.detail ? { description: change.detail } : {}),
  };
}

export function administrationEvent(request: AuditedRequest, change: AdministrativeChange, observer: string): Record<string, any> {
  const words = ACTIONS[change.action];
  return {
    resourceType: 'AuditEvent',
    type: { system: DCM, code: '110113', display: 'Security Alert' },
    subtype: [words.subtype],
    // DICOM PS3.15 A.5.3.11: a Security Alert's action is always E; what changed is the subtype and outcomeDesc.
    action: 'E',
    recorded: new Date(request.at).toISOString(),
    // A refused change is a minor failure (the administrator may correct it); a caller who may not
    // administer at all, a serious one.
    outcome: change.ok ? '0' : change.permitted === false ? '8' : '4',
    outcomeDesc: change.ok
      ? `${words.text}: ${change.target}${change.detail ? ` (${change.detail})` : ''}`
      : `${words.text}, refused: ${change.target}${change.reason ? ` (${change.reason})` : ''}`,
    agent: [agent(request)],
    source: auditSource(observer),
    entity: changedEntities(change),
  };
}
