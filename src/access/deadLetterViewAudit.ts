// Someone looking at the MESH dead-letter queue (the portal's admin page, GET /messaging/dead-letters, or
// `carebridge mesh dead-letters list`), as an AuditEvent in the same hash-chained trail as every record
// access. A dead letter's headers and reason are shown, and a reason can name a person ("no Patient here has
// NHS number 943 476 5919"): a view is a read of personal data, though not through the record. DICOM 110112
// Query, action E (the queue searched a page at a time), with one entity for the queue itself (role Query:
// the page asked for, and what was shown, in words) and one per dead letter shown, named by its MESH message
// id exactly as a replay names it (administrationAudit.ts), so entity-name=<message id> finds who saw a dead
// letter and who replayed it. One event per request, however many dead letters it showed.
//
// The event also names the people the view showed. Each valid NHS number in the text shown (ten digits, or
// 3 3 4 with spaces, with a good modulus-11 check digit) is looked up as a Patient identifier
// (namingPatients, before the view is recorded and so before anything is shown), and every Patient holding
// it is a patient entity (role 1 Patient, Patient/<id>, as in every AuditEvent): the view is filed under
// them (audit_batch_key P|<id>), so AuditEvent?patient= and their own "who has looked at my record" find
// it. An NHS number no Patient holds names nobody: the trail files events by Patient, so an entity naming
// only the number would be found by no one's search, would keep the number in the trail, and would be
// shown to any person the same event names (a person's copy is only stripped of other Patients).
//
// Never a reason, a body or an NHS number: the event says which dead letters were seen and whom they
// concerned; the queue still holds what they said.
import { handleFhirRequest, isValidNhsNumber, NHS_NUMBER_SYSTEM, UNRESTRICTED, type SqlDriver } from '../record/index.ts';
import { agent, auditSource, type AuditedRequest } from './audit/auditEvent.ts';
import { MESH_MESSAGE_ID_SYSTEM } from './administrationAudit.ts';

const DCM = 'http://dicom.nema.org/resources/ontology/DCM';
const ENTITY_TYPE = 'http://terminology.hl7.org/CodeSystem/audit-entity-type';
const OBJECT_ROLE = 'http://terminology.hl7.org/CodeSystem/object-role';
/** The queue's entity name: entity-name=MESH dead-letter queue finds every view of it. */
export const DEAD_LETTER_QUEUE_NAME = 'MESH dead-letter queue';

export interface DeadLetterView {
  /**
   * Where it was viewed: `/admin/dead-letters` (the portal), `/messaging/dead-letters` (the API), both a GET;
   * or a command (`carebridge mesh dead-letters list`, the command line), named as it is.
   */
  path: string;
  /** The page or filter asked for, as a query (`page=2`); absent when the view takes none. */
  query?: string;
  /** What was shown, in words: `page 2 of 2, dead letters 26 to 30 of 30`. */
  shown?: string;
  /** The MESH message ids of the dead letters whose headers and reasons were shown, in the order shown. */
  messageIds: string[];
  /** A dead letter whose replay's outcome (with its reason) was shown with the list. */
  outcomeOf?: string;
  ok: boolean;
  /** Why the view was refused (never personal data): nothing was shown. */
  reason?: string;
  /**
   * The Patients the record holds with an NHS number the view showed (set by namingPatients, from the text
   * shown, which is never kept): each is named as a patient, and the view is filed under them.
   */
  patientIds?: string[];
}

/** The audit entry for one view: what the trail writer stores (see audit/trail.ts); only the view's own fields, never text it was given beside them. */
export function deadLetterViewRequest(at: number, address: string | undefined, view: DeadLetterView, actor: AuditedRequest['actor']): AuditedRequest {
  const { path, query, shown, messageIds, outcomeOf, ok, reason, patientIds } = view;
  const kept: DeadLetterView = { path, query, shown, messageIds, outcomeOf, ok, reason, ...(ok && patientIds?.length ? { patientIds: [...new Set(patientIds)] } : {}) };
  return { at, actor, address, events: [], outcome: { status: ok ? 200 : 403, method: 'GET', path: path.replace(/^\//, ''), query: query ?? '' }, deadLetterView: kept };
}

/**
 * An NHS number as text: ten digits, or 3 3 4 with single spaces (as the NHS writes it) or single hyphens (as
 * some systems do), one separator throughout, not part of a longer run of digits.
 */
const NHS_NUMBER_TEXT = /(?<!\d)(?:\d{10}|\d{3}([ -])\d{3}\1\d{4})(?!\d)/g;

/** The valid NHS numbers (good check digit) written in `texts`, as ten digits, each once. */
export function nhsNumbersIn(texts: readonly string[]): string[] {
  const found = new Set<string>();
  for (const text of texts) {
    for (const [written] of text.matchAll(NHS_NUMBER_TEXT)) {
      const digits = written.replace(/[ -]/g, '');
      if (isValidNhsNumber(digits)) found.add(digits);
    }
  }
  return [...found];
}

/** NHS numbers asked about in one search (a page shows a few dozen dead letters; the API lists up to 500). */
const NUMBERS_A_SEARCH = 100;
const PATIENTS_A_PAGE = 1000;

/**
 * The ids of the Patients holding any of `numbers` as their NHS number (identifier
 * https://fhir.nhs.uk/Id/nhs-number|<number>), searched through the record without restriction and
 * unaudited: nothing is shown, the answer only says whom a view concerned. One search per 100 numbers.
 */
export async function patientsWithNhsNumbers(driver: SqlDriver, numbers: readonly string[]): Promise<string[]> {
  const ids = new Set<string>();
  for (let i = 0; i < numbers.length; i += NUMBERS_A_SEARCH) {
    const identifier = numbers.slice(i, i + NUMBERS_A_SEARCH).map((n) => `${NHS_NUMBER_SYSTEM}|${n}`).join(',');
    for (let offset = 0; ; offset += PATIENTS_A_PAGE) {
      const res = await handleFhirRequest({ base: 'http://localhost/fhir', driver, access: UNRESTRICTED }, {
        method: 'GET', path: 'Patient', query: [['identifier', identifier], ['_elements', 'id'], ['_total', 'none'], ['_count', String(PATIENTS_A_PAGE)], ['_offset', String(offset)]],
      });
      const bundle = (typeof res.body === 'string' ? JSON.parse(res.body) : res.body) as { entry?: { resource?: { id?: string } }[]; link?: { relation: string }[] };
      for (const e of bundle.entry ?? []) if (e.resource?.id) ids.add(e.resource.id);
      if (!bundle.link?.some((l) => l.relation === 'next')) break;
    }
  }
  return [...ids];
}

/**
 * The view as it is recorded: `view`, naming the Patients the record holds with an NHS number written in
 * `shownText` (what the view showed: reasons, headers; never kept). A refused view showed nothing and names
 * nobody; text with no valid NHS number costs no search. Rejects when the record cannot be searched: the
 * caller then shows nothing.
 */
export async function namingPatients(driver: SqlDriver, view: DeadLetterView, shownText: readonly string[] = []): Promise<DeadLetterView> {
  const numbers = view.ok ? nhsNumbersIn(shownText) : [];
  if (!numbers.length) return view;
  const patientIds = await patientsWithNhsNumbers(driver, numbers);
  return patientIds.length ? { ...view, patientIds } : view;
}

const MESSAGE = { type: { system: ENTITY_TYPE, code: '2', display: 'System Object' }, role: { system: OBJECT_ROLE, code: '20', display: 'Job' } };
/** A person, as every AuditEvent names the people it concerns (audit/auditEvent.ts). */
const PATIENT = { type: { system: ENTITY_TYPE, code: '1', display: 'Person' }, role: { system: OBJECT_ROLE, code: '1', display: 'Patient' } };

export function deadLetterViewEvent(request: AuditedRequest, view: DeadLetterView, observer: string): Record<string, any> {
  // Only what was shown is named: a refused view showed nothing.
  const shown = view.ok ? [...new Set([...view.messageIds, ...(view.outcomeOf ? [view.outcomeOf] : [])])] : [];
  const people = view.ok ? [...new Set(view.patientIds ?? [])] : [];
  return {
    resourceType: 'AuditEvent',
    type: { system: DCM, code: '110112', display: 'Query' },
    action: 'E',
    recorded: new Date(request.at).toISOString(),
    // Refused for the viewer's role, as a replay refused for it is: a serious failure.
    outcome: view.ok ? '0' : '8',
    outcomeDesc: view.ok ? `dead-letter queue viewed${view.shown ? `: ${view.shown}` : ''}` : `dead-letter queue viewed, refused${view.reason ? ` (${view.reason})` : ''}`,
    agent: [agent(request)],
    source: auditSource(observer),
    entity: [
      // First, as in every AuditEvent: whom it concerned. A person shown the event (their own) keeps only theirs.
      ...people.map((id) => ({ what: { reference: `Patient/${id}` }, ...PATIENT, description: 'their NHS number was shown' })),
      {
        type: { system: ENTITY_TYPE, code: '2', display: 'System Object' },
        role: { system: OBJECT_ROLE, code: '24', display: 'Query' },
        name: DEAD_LETTER_QUEUE_NAME,
        description: view.path.startsWith('/') ? `GET ${view.path}` : view.path,
        ...(view.query ? { query: Buffer.from(view.query, 'utf8').toString('base64') } : {}),
      },
      ...shown.map((messageId) => ({
        what: { identifier: { system: MESH_MESSAGE_ID_SYSTEM, value: messageId } },
        ...MESSAGE,
        name: messageId,
        ...(messageId === view.outcomeOf ? { description: 'its replay\'s outcome was shown' } : {}),
      })),
    ],
  };
}
