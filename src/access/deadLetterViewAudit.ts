// Someone looking at the MESH dead-letter queue (the portal's admin page, or GET /messaging/dead-letters),
// as an AuditEvent in the same hash-chained trail as every record access. A dead letter's headers and
// reason are shown, and a reason can name a person ("no Patient here has NHS number 943 476 5919"): a view
// is a read of personal data, though not through the record. DICOM 110112 Query, action E (the queue
// searched a page at a time), with one entity for the queue itself (role Query: the page asked for, and
// what was shown, in words) and one per dead letter shown, named by its MESH message id exactly as a
// replay names it (administrationAudit.ts), so entity-name=<message id> finds who saw a dead letter and
// who replayed it. One event per request, however many dead letters it showed. Never a reason or a body:
// the event says which dead letters were seen, the queue still holds what they said.
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
}

/** The audit entry for one view: what the trail writer stores (see audit/trail.ts). */
export function deadLetterViewRequest(at: number, address: string | undefined, view: DeadLetterView, actor: AuditedRequest['actor']): AuditedRequest {
  return { at, actor, address, events: [], outcome: { status: view.ok ? 200 : 403, method: 'GET', path: view.path.replace(/^\//, ''), query: view.query ?? '' }, deadLetterView: view };
}

const MESSAGE = { type: { system: ENTITY_TYPE, code: '2', display: 'System Object' }, role: { system: OBJECT_ROLE, code: '20', display: 'Job' } };

export function deadLetterViewEvent(request: AuditedRequest, view: DeadLetterView, observer: string): Record<string, any> {
  // Only what was shown is named: a refused view showed nothing.
  const shown = view.ok ? [...new Set([...view.messageIds, ...(view.outcomeOf ? [view.outcomeOf] : [])])] : [];
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
