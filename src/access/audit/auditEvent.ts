// One answered request to the record, as one FHIR R4 AuditEvent: what it touched (a read, a search with
// its query, the resources a transaction wrote, $everything) and the patients concerned, who asked (the
// Actor), from where, and how it ended.
import { createHash } from 'node:crypto';
import type { AccessEvent } from '../../record/index.ts';
import type { Actor, PurposeOfUse } from '../actor.ts';
import { authenticationEvent, type AuthenticationAttempt } from '../people/authenticationAudit.ts';
import { administrationEvent, type AdministrativeChange } from '../administrationAudit.ts';
import { heldMessageEvent, type HeldMessageDecision } from '../heldMessageAudit.ts';
import { deadLetterViewEvent, type DeadLetterView } from '../deadLetterViewAudit.ts';

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
  /** An administrator's change to accounts, clients or organisations (built by administrationAudit.ts). */
  administration?: AdministrativeChange;
  /** A person's decision about a held HL7 v2 message (built by heldMessageAudit.ts). */
  heldMessage?: HeldMessageDecision;
  /** Someone viewing the MESH dead-letter queue (built by deadLetterViewAudit.ts). */
  deadLetterView?: DeadLetterView;
  /** Why, when not the actor's own purpose: BTG for what a person saw of someone through break-glass. */
  purpose?: PurposeOfUse;
}

type Action = 'C' | 'R' | 'U' | 'D' | 'E';
const ACTION: Record<string, Action> = {
  create: 'C', read: 'R', vread: 'R', 'history-instance': 'R', 'history-type': 'R', 'history-system': 'R', capabilities: 'R',
  export: 'R', update: 'U', patch: 'U', delete: 'D', 'search-type': 'E', 'search-system': 'E', operation: 'E', transaction: 'E', batch: 'E',
};

interface Touched {
  /** A code of http://hl7.org/fhir/restful-interaction, when the request was one. */
  code?: string;
  resourceType?: string;
  id?: string;
  operation?: string;
  patientIds: string[];
  query?: string;
  /** A batch's entry refused for being outside the caller's records: it names whose they were, and showed nothing. */
  refused?: boolean;
}

/**
 * One answered request as one journal entry: its AuditEvent as JSON text (all but the id, which the chain
 * assigns) and the values its searches use. A search touching 40 patients, or a transaction writing 40
 * resources, is one entry naming them all.
 */
export interface JournalEntry {
  /**
   * The AuditEvent's own JSON text after `{"resourceType":"AuditEvent","id":"<seq>` (starts with the
   * closing quote), without meta (derived from recorded) and without agent and source (in `part`).
   */
  tail: string;
  /** The agent and source elements, stored once for all the events that share them. */
  part: SharedPart;
  recordedMs: number;
  /** agent.altId: the client or user id. */
  agent: string | null;
  /** agent.who.reference (Practitioner/…, RelatedPerson/…, Patient/…), for users. */
  agentRef: string | null;
  type: string;
  subtype: string | null;
  action: string;
  outcome: string;
  purpose: string | null;
  /** Patients among the entities (entity.what = Patient/…), without repeats. */
  patients: string[];
  /** Other resources among the entities (Type/id), without repeats. */
  entities: string[];
  /** What a failed request asked for (entity.name), without repeats. */
  names: string[];
}

/**
 * `"agent":[…],"source":{…}` as JSON text, kept once in audit_part under `key` (the first 128 bits of its
 * SHA-256): the same caller, from the same address, through the same node, makes many requests.
 */
export interface SharedPart { key: string; text: string }

export function partKey(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 32);
}

/**
 * Remembers each caller's part. Keyed by the actor object first (one per caller in a batch) and then by
 * its content, so the text is built once per caller, address and node, and the content key once per batch.
 */
export class SharedParts {
  private parts = new Map<string, SharedPart>();
  private byActor = new WeakMap<object, Map<string, SharedPart>>();
  private readonly anonymous = {};
  constructor(readonly observer: string) {}

  of(request: AuditedRequest): SharedPart {
    // The address, and the purpose when the request's own differs from the actor's (break-glass).
    const slot = request.purpose ? `${request.address ?? ''}\u0000${request.purpose}` : request.address ?? '';
    let perAddress = this.byActor.get(request.actor ?? this.anonymous);
    let part = perAddress?.get(slot);
    if (part !== undefined) return part;
    const key = `${slot}\u0000${request.actor ? JSON.stringify(request.actor) : ''}`;
    part = this.parts.get(key);
    if (part === undefined) {
      if (this.parts.size >= 10_000) this.parts.clear();
      const text = `"agent":[${JSON.stringify(clean(agent(request)))}],"source":${sourceText(this.observer)}`;
      part = { key: partKey(text), text };
      this.parts.set(key, part);
    }
    if (!perAddress) this.byActor.set(request.actor ?? this.anonymous, (perAddress = new Map()));
    perAddress.set(slot, part);
    return part;
  }
}

/**
 * A sign-in or sign-out (people/authenticationAudit.ts) or an administrator's change (administrationAudit.ts):
 * rare, so built as an object and then split like any other entry.
 */
function builtEntry(request: AuditedRequest, event: Record<string, any>): JournalEntry {
  const { resourceType: _type, agent: agents, source, ...own } = clean(event);
  const text = `"agent":${JSON.stringify(agents)},"source":${JSON.stringify(source)}`;
  const who = agents?.[0] ?? {};
  const names = ((own.entity ?? []) as { name?: string }[]).map((e) => e.name).filter((n): n is string => !!n);
  // Resources it names (a held HL7 v2 message's patients and Encounter; the person of a break-glass alert
  // reviewed), indexed for patient= and entity=: a change about a person is filed under them.
  const refs = ((own.entity ?? []) as { what?: { reference?: string } }[]).map((e) => e.what?.reference).filter((r): r is string => !!r);
  return {
    tail: `",${JSON.stringify(own).slice(1)}`,
    part: { key: partKey(text), text },
    recordedMs: request.at,
    agent: who.altId ?? null,
    agentRef: who.who?.reference ?? null,
    type: own.type?.code ?? 'rest',
    subtype: own.subtype?.[0]?.code ?? null,
    action: own.action,
    outcome: own.outcome,
    purpose: request.actor?.purpose ?? null,
    patients: [...new Set(refs.filter((r) => r.startsWith('Patient/')).map((r) => r.slice('Patient/'.length)))],
    entities: [...new Set(refs.filter((r) => !r.startsWith('Patient/')))],
    names: [...new Set(names)],
  };
}

const EVENT_TYPE = JSON.stringify({ system: 'http://terminology.hl7.org/CodeSystem/audit-event-type', code: 'rest', display: 'RESTful Operation' });
/** DICOM 110106 Export: data leaving the record with a person (a CSV download, a printed pack). */
const EXPORT_CODE = '110106';
const EXPORT_TYPE = JSON.stringify({ system: 'http://dicom.nema.org/resources/ontology/DCM', code: EXPORT_CODE, display: 'Export' });
const sourceTexts = new Map<string, string>();
const sourceText = (observer: string) => {
  let text = sourceTexts.get(observer);
  if (text === undefined) {
    text = JSON.stringify(clean(auditSource(observer)));
    sourceTexts.set(observer, text);
  }
  return text;
};
const EVERYTHING_SUBTYPE = { system: 'urn:ietf:rfc:3986', code: 'http://hl7.org/fhir/OperationDefinition/Patient-everything', display: '$everything' };
const subtypeTexts = new Map<string, string>();
function subtypeText(code: string | undefined, operation: string | undefined): string {
  if (!code) return '';
  const key = `${code} ${operation ?? ''}`;
  let text = subtypeTexts.get(key);
  if (text === undefined) {
    const subtype: Coding[] = [{ system: INTERACTION, code }];
    if (operation === '$everything') subtype.push(EVERYTHING_SUBTYPE);
    subtypeTexts.set(key, (text = `,"subtype":${JSON.stringify(subtype)}`));
  }
  return text;
}

/** What a journal entry is searched by: all of it but its text. */
export type EntryValues = Omit<JournalEntry, 'tail' | 'part'>;

/** The journal entry for one answered request. */
export function journalEntryFor(request: AuditedRequest, parts: SharedParts): JournalEntry {
  return entryFor(request, parts) as JournalEntry;
}

/**
 * The values one answered request's entry is searched by, without building its text: what the audit
 * writer indexes a batch by (journalEntryFor gives the same values, with the text, when it is read).
 */
export function entryValuesFor(request: AuditedRequest, observer: string): EntryValues {
  const entry = entryFor(request, observer);
  if (!('tail' in entry)) return entry;
  const { tail: _tail, part: _part, ...values } = entry; // built in full (a sign-in, an administrator's change): rare
  return values;
}

function entryFor(request: AuditedRequest, parts: SharedParts | string): EntryValues | JournalEntry {
  const observer = typeof parts === 'string' ? parts : parts.observer;
  if (request.authentication) return builtEntry(request, authenticationEvent(request, request.authentication, observer));
  if (request.administration) return builtEntry(request, administrationEvent(request, request.administration, observer));
  if (request.heldMessage) return builtEntry(request, heldMessageEvent(request, request.heldMessage, observer));
  if (request.deadLetterView) return builtEntry(request, deadLetterViewEvent(request, request.deadLetterView, observer));
  const withText = typeof parts !== 'string';
  const { status, method, path, query } = request.outcome;
  const failed = status >= 400 || !request.events.length;
  // A refused request reports whose records it was kept out of (record/http.ts): it is filed under them.
  const refused = status === 403 ? [...new Set(request.events.flatMap((e) => e.patientIds))] : [];
  const touched: Touched[] = failed
    ? [{ ...requestInteraction(method, path), query: query || undefined, patientIds: refused }]
    : request.events.map(fromAccessEvent);
  // A batch answers 200 with some entries refused for being outside the caller's records: the event names
  // those people too (filed under them, as the entry on its own would be), and is not a plain success.
  const refusedEntries = failed ? 0 : touched.filter((t) => t.refused).length;
  // Several things touched (a transaction or batch), or a refused entry: the request's own interaction names the event.
  const main = touched.length === 1 && !refusedEntries ? touched[0] : { ...requestInteraction(method, path), patientIds: [] };
  const entity = entities(touched, status >= 400, withText);
  const action = ACTION[main.code ?? ''] ?? 'E';
  const outcome = status >= 500 ? '8' : status >= 400 || refusedEntries ? '4' : '0';
  const exported = main.code === 'export';
  const a = request.actor;
  const values: EntryValues = {
    recordedMs: request.at,
    agent: a ? (a.kind === 'user' ? a.userId : a.clientId) : null,
    agentRef: a?.kind === 'user' && a.fhirUser ? a.fhirUser : null,
    type: exported ? EXPORT_CODE : 'rest',
    subtype: exported ? null : main.code ?? null,
    action,
    outcome,
    purpose: request.purpose ?? a?.purpose ?? null,
    patients: entity.patients,
    entities: entity.others,
    names: entity.names,
  };
  if (!withText) return values;
  const recorded = new Date(request.at).toISOString();
  let tail = `","type":${exported ? EXPORT_TYPE : EVENT_TYPE}${exported ? '' : subtypeText(main.code, main.operation)},"action":"${action}","recorded":"${recorded}","outcome":"${outcome}"`;
  if (status >= 400) tail += `,"outcomeDesc":${JSON.stringify(clean(`HTTP ${status}: ${method} ${path}`))}`;
  // Counted, never named: a person shown this event (redacted to them) must not learn who else it was about.
  else if (refusedEntries) tail += `,"outcomeDesc":${JSON.stringify(clean(`HTTP ${status}: ${method} ${path}; ${refusedEntries} ${refusedEntries === 1 ? 'entry' : 'entries'} refused (HTTP 403), outside the records the caller may see`))}`;
  if (entity.json.length) tail += `,"entity":[${entity.json.join(',')}]`;
  tail += '}';
  return { ...values, tail, part: parts.of(request) };
}

// Control characters (a NUL from a hostile path, say) cannot be stored or indexed everywhere, and a batch
// that can never be written would stop the whole trail: every string is made safe before it is stored.
const UNSAFE = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

const MAYBE_UNSAFE = /[\u0000-\u001f\u007f\ud800-\udfff]/;

function clean<T>(value: T): T {
  if (typeof value === 'string') return (MAYBE_UNSAFE.test(value) ? value.replace(UNSAFE, '\ufffd') : value) as T;
  if (Array.isArray(value)) return value.map(clean) as T;
  if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) (value as Record<string, unknown>)[k] = clean(v);
  }
  return value;
}

function fromAccessEvent(e: AccessEvent): Touched {
  const query = e.query || undefined;
  switch (e.interaction) {
    case 'search':
      return { code: 'search-type', resourceType: e.resourceType, patientIds: e.patientIds, query };
    case 'history':
      return { code: e.id ? 'history-instance' : e.resourceType ? 'history-type' : 'history-system', resourceType: e.resourceType, id: e.id, patientIds: e.patientIds, query };
    case 'export':
      return { code: 'export', resourceType: e.resourceType, id: e.id, patientIds: e.patientIds, query };
    case 'everything':
      return { code: 'operation', operation: '$everything', resourceType: e.resourceType, id: e.id, patientIds: e.patientIds, query };
    case 'refused':
      return { resourceType: e.resourceType, id: e.id, patientIds: e.patientIds, query, refused: true };
    default:
      return { code: e.interaction, resourceType: e.resourceType, id: e.id, patientIds: e.patientIds, query };
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
    purposeOfUse: [{ coding: [{ system: PURPOSE_OF_USE, code: request.purpose ?? a.purpose }] }],
  };
}

const text = (value: string) => JSON.stringify(clean(value));
const PATIENT_ENTITY_END = `},"type":{"system":"${ENTITY_TYPE}","code":"1","display":"Person"},"role":{"system":"${OBJECT_ROLE}","code":"1","display":"Patient"}}`;
const DOMAIN_ROLE = `"role":{"system":"${OBJECT_ROLE}","code":"4","display":"Domain Resource"}`;
const QUERY_ROLE = `"role":{"system":"${OBJECT_ROLE}","code":"24","display":"Query"}`;

interface Entities { json: string[]; patients: string[]; others: string[]; names: string[] }

/** AuditEvent.entity as JSON text (built directly: this runs once per request) when `withText`, and the values indexed. */
function entities(touched: Touched[], failed: boolean, withText: boolean): Entities {
  const out: Entities = { json: [], patients: [], others: [], names: [] };
  // A failed request showed and changed nothing: it names what it asked for, and no patient unless it was
  // refused for being outside the caller's records (then whose they were).
  const patients = failed ? touched.flatMap((t) => t.patientIds).map(clean) : touched.length === 1 && touched[0].patientIds.length < 2 ? touched[0].patientIds.map(clean) : [...new Set(touched.flatMap((t) => t.patientIds))].map(clean);
  if (withText) for (const id of patients) out.json.push(`{"what":{"reference":${JSON.stringify(`Patient/${id}`)}${PATIENT_ENTITY_END}`);
  out.patients = patients;
  const seen = new Set(patients.map((id) => `Patient/${id}`));
  for (const t of touched) {
    const typeCoding = withText && t.resourceType ? `"type":{"system":"${RESOURCE_TYPES}","code":${text(t.resourceType)}},` : '';
    if (t.id && t.resourceType) {
      const ref = clean(`${t.resourceType}/${t.id}`);
      // What a failed request, or a refused entry, asked for is named: it was not touched.
      const asked = failed || t.refused;
      if (!seen.has(ref)) {
        if (withText) out.json.push(`{${asked ? `"name":${JSON.stringify(ref)}` : `"what":{"reference":${JSON.stringify(ref)}}`},${typeCoding}${DOMAIN_ROLE}}`);
        (asked ? out.names : out.others).push(ref);
      }
      seen.add(ref);
    }
    if (!withText) continue;
    if (t.query) out.json.push(`{${typeCoding}${QUERY_ROLE},"query":"${Buffer.from(t.query, 'utf8').toString('base64')}"}`);
    else if (!t.id && t.resourceType) out.json.push(`{${typeCoding}${DOMAIN_ROLE}}`);
  }
  return out;
}
