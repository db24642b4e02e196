// A person's decision about an HL7 v2 message held for them (carebridge hl7 queue): dismissed unapplied,
// or applied to a Patient they named (or made), including to a stay whose Patient has another NHS number
// than the message's (--accept-different-nhs-number, hazard H-011). Each changes what a patient's record
// says, so each is an AuditEvent filed under the patients concerned: DICOM 110110 Patient Record, its
// subtype the decision, naming the message (its queue number, type, control id, sender, visit, NHS
// number), who decided and why. Never the rest of the message.
import { auditSource, agent, type AuditedRequest } from './audit/auditEvent.ts';

const DCM = 'http://dicom.nema.org/resources/ontology/DCM';
const ENTITY_TYPE = 'http://terminology.hl7.org/CodeSystem/audit-entity-type';
const OBJECT_ROLE = 'http://terminology.hl7.org/CodeSystem/object-role';
export const HELD_MESSAGE_DECISION_SYSTEM = 'https://carebridge.example/CodeSystem/hl7v2-held-message-decision';
/** An HL7 v2 message by its number in CareBridge's queue (`carebridge hl7 queue list`). */
export const HL7V2_MESSAGE_ID_SYSTEM = 'https://carebridge.example/hl7v2-message-id';

export type HeldMessageDecisionKind = 'hl7v2-dismissed' | 'hl7v2-patient-confirmed' | 'hl7v2-different-nhs-number-accepted' | 'hl7v2-new-patient';

const DECISIONS: Record<HeldMessageDecisionKind, { display: string; action: 'E' | 'U' | 'C' }> = {
  'hl7v2-dismissed': { display: 'HL7 v2 message dismissed, not applied', action: 'E' },
  'hl7v2-patient-confirmed': { display: 'HL7 v2 message applied to the Patient a person confirmed', action: 'U' },
  'hl7v2-different-nhs-number-accepted': { display: 'HL7 v2 message applied to a stay although its NHS number differs', action: 'U' },
  'hl7v2-new-patient': { display: 'HL7 v2 message applied to a new Patient a person made', action: 'C' },
};

export interface HeldMessageDecision {
  decision: HeldMessageDecisionKind;
  /** The message's number in the queue. */
  seq: number;
  /** `ADT^A08 RX9-777103 from RX9, visit VN2026000801, NHS number 9413946000`. */
  message: string;
  /** The patients the message concerns (the stay's, the one it was applied to, the one holding its NHS number). */
  patientIds: string[];
  /** The Encounter it was applied to. */
  encounterId?: string;
  /** Who decided, as they named themself (--by). */
  by: string;
  /** Why (dismissed), or how the patient was decided (applied). */
  reason: string;
}

export function heldMessageEvent(request: AuditedRequest, d: HeldMessageDecision, observer: string): Record<string, any> {
  const words = DECISIONS[d.decision];
  return {
    resourceType: 'AuditEvent',
    type: { system: DCM, code: '110110', display: 'Patient Record' },
    subtype: [{ system: HELD_MESSAGE_DECISION_SYSTEM, code: d.decision, display: words.display }],
    action: words.action,
    recorded: new Date(request.at).toISOString(),
    outcome: '0',
    outcomeDesc: `${words.display}, by ${d.by}: HL7 v2 message ${d.seq} (${d.message})${d.encounterId ? ` applied to Encounter/${d.encounterId}` : ''}; ${d.reason}`,
    agent: [agent(request)],
    source: auditSource(observer),
    entity: [
      ...[...new Set(d.patientIds)].map((id) => ({
        what: { reference: `Patient/${id}` },
        type: { system: ENTITY_TYPE, code: '1', display: 'Person' },
        role: { system: OBJECT_ROLE, code: '1', display: 'Patient' },
      })),
      ...(d.encounterId ? [{ what: { reference: `Encounter/${d.encounterId}` }, type: { system: ENTITY_TYPE, code: '2', display: 'System Object' }, role: { system: OBJECT_ROLE, code: '4', display: 'Domain Resource' } }] : []),
      {
        what: { identifier: { system: HL7V2_MESSAGE_ID_SYSTEM, value: String(d.seq) } },
        type: { system: ENTITY_TYPE, code: '2', display: 'System Object' },
        role: { system: OBJECT_ROLE, code: '20', display: 'Job' },
        name: `HL7 v2 message ${d.seq}`,
        description: d.message,
      },
    ],
  };
}
