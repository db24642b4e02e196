// One answered request to the record, as FHIR R4 AuditEvents: one per thing it touched (a read, a
// search, each write, $everything), or one for the whole request when it failed or touched nothing.
import type { AccessEvent } from '../../record/index.ts';
import type { Actor } from '../actor.ts';
import { authenticationEvent, type AuthenticationAttempt } from '../people/authenticationAudit.ts';

export const CLIENT_ID_SYSTEM = 'https://carebridge.example/client-id';
export const USER_ID_SYSTEM = 'https://carebridge.example/user-id';
const PURPOSE_OF_USE = 'http://terminology.hl7.org/CodeSystem/v3-ActReason';
const CAREBRIDGE_ROLE = 'https://carebridge.example/CodeSystem/role';
export const ODS_SYSTEM = 'https://fhir.nhs.uk/Id/ods-organization-code';
export const AGENT_ORGANIZATION_EXTENSION = 'https://carebridge.example/fhir/StructureDefinition/audit-agent-organization';

const INTERACTION = 'http://hl7.org/fhir/restful-interaction';
const ENTITY_TYPE = 'http://terminology.hl7.org/CodeSystem/audit-entity-type';
const OBJECT_ROLE = 'http://terminology.hl7.org/CodeSystem/object-role';
const RESOURCE_TYPES = 'http://hl7.org/fhir/resource-types';

export interface Coding { system: string; code: string; display?: string }

export interface RequestOutcome { status: number; method: string; path: string; query: string }

export interface AuditedRequest {
  /** When the answer was ready (epoch ms). */
  at: number;
  /** Absent when the caller could not be authenticated. */
  actor?: Actor;
  /** The caller's network address. */
  address?: string;
  events: AccessEvent[];
  outcome: RequestOutcome;
  /** A sign-in or sign-out rather than a call to the record (built by people/authenticationAudit.ts). */
  authentication?: AuthenticationAttempt;
}

type Action = 'C' | 'R' | 'U' | 'D' | 'E';
const ACTION: Record<string, Action> = {
  create: 'C', read: 'R', vread: 'R', 'history-instance': 'R', 'history-type': 'R', 'history-system': 'R', capabilities: 'R',
  update: 'U', patch: 'U', delete: 'D', 'search-type': 'E', 'search-system': 'E', operation: 'E', transaction: 'E', batch: 'E',
};

interface Touched {
  /** A code of http://hl7.org/fhir/restful-interaction, when the request was one. */
  code?: string;
  resourceType?: string;
  id?: string;
  operation?: string;
  patientIds: string[];
  query?: string;
}

/** The AuditEvents (without ids: the chain assigns them) for one answered request. */
export function auditEventsFor(request: AuditedRequest, observer: string): Record<string, any>[] {
  if (request.authentication) return [clean(authenticationEvent(request, request.authentication, observer))];
  if (request.outcome.status >= 400 || !request.events.length) {
    return [clean(auditEvent(request, observer, { ...requestInteraction(request.outcome.method, request.outcome.path), query: request.outcome.query || undefined, patientIds: [] }))];
  }
  return request.events.map((e) => clean(auditEvent(request, observer, fromAccessEvent(e))));
}

// Control characters (a NUL from a hostile path, say) cannot be stored or indexed everywhere, and a batch
// that can never be written would stop the whole trail: every string is made safe before it is stored.
const UNSAFE = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

function clean<T>(value: T): T {
  if (typeof value === 'string') return value.replace(UNSAFE, '\ufffd') as T;
  if (Array.isArray(value)) return value.map(clean) as T;
  if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) (value as Record<string, unknown>)[k] = clean(v);
  }
  return value;
}

function fromAccessEvent(e: AccessEvent): Touched {
  const touched: Touched = { resourceType: e.resourceType, id: e.id, patientIds: e.patientIds, query: e.query || undefined };
  switch (e.interaction) {
    case 'search':
      return { ...touched, code: 'search-type', id: undefined };
    case 'history':
      return { ...touched, code: e.id ? 'history-instance' : e.resourceType ? 'history-type' : 'history-system' };
    case 'everything':
      return { ...touched, code: 'operation', operation: '$everything' };
    default:
      return { ...touched, code: e.interaction };
  }
}

/** What a request that reported nothing (it failed, or changed nothing) was trying to do, from its method and path. */
export function requestInteraction(method: string, path: string): Omit<Touched, 'patientIds'> {
  const parts = path.split('/').filter(Boolean).map(decode);
  const [first, second, third] = parts;
  const type = first && /^[A-Z][A-Za-z]{1,63}$/.test(first) ? first : undefined;
  const m = method.toUpperCase();
  if (!parts.length) return { code: m === 'POST' ? 'transaction' : 'search-system' };
  if (first === '_history') return { code: 'history-system' };
  if (first === 'metadata') return { code: 'capabilities' };
  const operation = [second, third].find((p) => p?.startsWith('$'));
  if (operation) return { code: 'operation', resourceType: type, id: second === operation ? undefined : second, operation };
  switch (m) {
    case 'GET':
    case 'HEAD':
      if (parts.length === 1) return { code: 'search-type', resourceType: type };
      if (second === '_history') return { code: 'history-type', resourceType: type };
      if (parts.length === 2) return { code: 'read', resourceType: type, id: second };
      if (third === '_history') return { code: parts.length > 3 ? 'vread' : 'history-instance', resourceType: type, id: second };
      return { code: 'search-type', resourceType: /^[A-Z]/.test(third ?? '') ? third : undefined }; // Patient/1/Observation
    case 'POST':
      return second === '_search' ? { code: 'search-type', resourceType: type } : { code: 'create', resourceType: type };
    case 'PUT':
      return { code: 'update', resourceType: type, id: second };
    case 'PATCH':
      return { code: 'patch', resourceType: type, id: second };
    case 'DELETE':
      return { code: 'delete', resourceType: type, id: second };
  }
  return { resourceType: type };
}

function decode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

function auditEvent(request: AuditedRequest, observer: string, touched: Touched): Record<string, any> {
  const { status } = request.outcome;
  const failed = status >= 400;
  const entity = entities(touched, failed);
  const subtype: Coding[] = touched.code ? [{ system: INTERACTION, code: touched.code }] : [];
  if (touched.operation === '$everything') subtype.push({ system: 'urn:ietf:rfc:3986', code: 'http://hl7.org/fhir/OperationDefinition/Patient-everything', display: '$everything' });
  return {
    resourceType: 'AuditEvent',
    type: { system: 'http://terminology.hl7.org/CodeSystem/audit-event-type', code: 'rest', display: 'RESTful Operation' },
    ...(subtype.length ? { subtype } : {}),
    action: ACTION[touched.code ?? ''] ?? 'E',
    recorded: new Date(request.at).toISOString(),
    outcome: status < 400 ? '0' : status < 500 ? '4' : '8',
    ...(failed ? { outcomeDesc: `HTTP ${status}: ${request.outcome.method} ${request.outcome.path}` } : {}),
    agent: [agent(request)],
    source: auditSource(observer),
    ...(entity.length ? { entity } : {}),
  };
}

export function auditSource(observer: string): Record<string, any> {
  return { observer: { display: `CareBridge (${observer})` }, type: [{ system: 'http://terminology.hl7.org/CodeSystem/security-source-type', code: '4', display: 'Application Server' }] };
}

export function agent(request: AuditedRequest): Record<string, any> {
  const network = request.address ? { network: { address: request.address, type: '2' } } : {};
  const a = request.actor;
  if (!a) return { who: { display: 'unauthenticated caller' }, requestor: true, ...network };
  const who = a.kind === 'user'
    ? { ...(a.fhirUser ? { reference: a.fhirUser } : {}), identifier: { system: USER_ID_SYSTEM, value: a.userId }, display: a.name }
    : { identifier: { system: CLIENT_ID_SYSTEM, value: a.clientId }, display: a.name ?? a.clientId };
  const type = a.kind === 'user'
    ? { coding: [{ system: 'http://dicom.nema.org/resources/ontology/DCM', code: '110153', display: 'Source Role ID' }] }
    : { coding: [{ system: 'http://dicom.nema.org/resources/ontology/DCM', code: '110150', display: 'Application' }] };
  const role = a.kind === 'user' ? [{ coding: [{ system: CAREBRIDGE_ROLE, code: a.role }], text: a.scope }] : [{ text: a.scope }];
  return {
    ...(a.organisation ? { extension: [{ url: AGENT_ORGANIZATION_EXTENSION, valueIdentifier: { system: ODS_SYSTEM, value: a.organisation } }] } : {}),
    type,
    role,
    who,
    altId: a.kind === 'user' ? a.userId : a.clientId,
    requestor: true,
    ...(a.sessionId && /^[0-9a-f-]{36}$/i.test(a.sessionId) ? { policy: [`urn:uuid:${a.sessionId}`] } : {}),
    ...network,
    purposeOfUse: [{ coding: [{ system: PURPOSE_OF_USE, code: a.purpose }] }],
  };
}

function entities(touched: Touched, failed: boolean): Record<string, any>[] {
  const out: Record<string, any>[] = [];
  // A failed request showed and changed nothing: it names what it asked for, but no patient.
  const patients = failed ? [] : touched.patientIds;
  for (const id of patients) {
    out.push({ what: { reference: `Patient/${id}` }, type: { system: ENTITY_TYPE, code: '1', display: 'Person' }, role: { system: OBJECT_ROLE, code: '1', display: 'Patient' } });
  }
  const typeCoding = touched.resourceType ? { type: { system: RESOURCE_TYPES, code: touched.resourceType } } : {};
  if (touched.id && touched.resourceType && !(touched.resourceType === 'Patient' && patients.includes(touched.id))) {
    const ref = `${touched.resourceType}/${touched.id}`;
    out.push({ ...(failed ? { name: ref } : { what: { reference: ref } }), ...typeCoding, role: { system: OBJECT_ROLE, code: '4', display: 'Domain Resource' } });
  }
  if (touched.query) {
    out.push({ ...typeCoding, role: { system: OBJECT_ROLE, code: '24', display: 'Query' }, query: Buffer.from(touched.query, 'utf8').toString('base64') });
  } else if (!touched.id && touched.resourceType) {
    out.push({ ...typeCoding, role: { system: OBJECT_ROLE, code: '4', display: 'Domain Resource' } });
  }
  return out;
}
