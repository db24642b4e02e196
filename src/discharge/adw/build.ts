// Writes ADW messages (FHIR DSTU2 XML message Bundles) shaped like the specification's examples: a
// MessageHeader (event, ODS-addressed source and destination, response.identifier = the notice's
// MessageHeader.id for responses, reason), the ReferralRequest carrying the episode's identifier, and the
// Encounter, Patient, Organizations (and Location, Practitioners, QuestionnaireResponse) they refer to.
// Which way a message goes shows only in the MessageHeader (author, receiver, responsible): the
// ReferralRequest names the referral's own parties in notices and responses alike, the hospital's referrer
// as requester and the council as recipient, as every example does.
import { randomUUID } from 'node:crypto';
import { XMLBuilder } from 'fast-xml-parser';
import { NHS_NUMBER_SYSTEM } from '../../record/index.ts';
import {
  ACCEPT_REASON_SYSTEM, ADMISSION_TYPE_SYSTEM, CARECONNECT_VERIFICATION_SYSTEM, CARECONNECT_VERIFICATION_URL, VERIFICATION_STATUSES, ENCOUNTER_ID_SYSTEM, EVENT, HEADER_PROFILES, ODS_ENDPOINT_PREFIX, OTHER_FREE_TEXT, PROFILE,
  REJECT_REASON_SYSTEM, WITHDRAWAL_REASONS, WITHDRAWAL_REASON_SYSTEM, WITHDRAWALS, type EventCode,
} from './codes.ts';
import type { AdwAnswer, AdwEncounter, AdwPatient, AdwPerson } from './parse.ts';
import { ODS_ORGANIZATION, ODS_SITE } from '../model.ts';
import { statusToSend } from './nhsNumberStatus.ts';

export interface AdwOutgoing {
  event: EventCode;
  /** Our ODS code and the peer's. */
  sourceOds: string;
  destinationOds: string;
  /** ADW ReferralRequest.identifier: the episode. */
  referralIdentifier: string;
  /** For responses: the MessageHeader.id of the notice answered. */
  inResponseTo?: string;
  /** Free text reason (responses: why accepted or rejected); for withdrawals, the reason code 01–13. */
  reasonText?: string;
  withdrawalReason?: string;
  patient: AdwPatient;
  encounter?: AdwEncounter;
  hospital: { ods: string; name?: string };
  council: { ods: string; name?: string };
  /** Who at the hospital made the referral: ReferralRequest.requester, whichever way the message goes. */
  referrer?: AdwPerson;
  /** Who sent the message (MessageHeader.author): for a notice the hospital's person, for a response the council's. */
  author?: AdwPerson;
  referralReason?: string;
  description?: string;
  answers?: AdwAnswer[];
  /** The clock, for the timestamp. */
  now: number;
}

const builder = new XMLBuilder({ ignoreAttributes: false, attributeNamePrefix: '@_', suppressEmptyNode: true, format: true, indentBy: '  ' });

const v = (value: string | undefined) => (value === undefined ? undefined : { '@_value': value });
const urn = (id: string) => `urn:uuid:${id}`;
const refTo = (id: string) => ({ reference: v(urn(id)) });
const meta = (profile: string) => ({ profile: v(profile.startsWith('http') ? profile : PROFILE + profile) });

function referralStatus(event: EventCode): string {
  if (WITHDRAWALS.has(event)) return 'cancelled';
  switch (event) {
    case EVENT.assessmentAccept: case EVENT.dischargeAgreement: return 'accepted';
    case EVENT.assessmentReject: case EVENT.dischargeDisagreement: return 'rejected';
    case EVENT.withdrawalAccept: case EVENT.withdrawalReject: return 'cancelled';
    default: return 'requested';
  }
}

function referralProfile(event: EventCode): string {
  const status = referralStatus(event);
  if (status === 'accepted') return 'ADW-Accept-ReferralRequest-1';
  if (status === 'rejected') return 'ADW-Reject-ReferralRequest-1';
  if (status === 'cancelled') return 'ADW-Cancel-ReferralRequest-1';
  return event === EVENT.dischargeNotice ? 'ADW-Discharge-ReferralRequest-1' : 'ADW-ReferralRequest-1';
}

function reasonElement(m: AdwOutgoing) {
  if (WITHDRAWALS.has(m.event)) {
    const code = m.withdrawalReason ?? '13';
    return { coding: { system: v(WITHDRAWAL_REASON_SYSTEM), code: v(code), display: v(WITHDRAWAL_REASONS[code]) }, ...(m.reasonText ? { text: v(m.reasonText) } : {}) };
  }
  if (!m.inResponseTo || !m.reasonText) return undefined;
  const accepted = referralStatus(m.event) === 'accepted' || m.event === EVENT.withdrawalAccept;
  return { coding: { system: v(accepted ? ACCEPT_REASON_SYSTEM : REJECT_REASON_SYSTEM), code: v(OTHER_FREE_TEXT.code), display: v(OTHER_FREE_TEXT.display) }, text: v(m.reasonText) };
}

/** CareConnect-Patient-1 requires the status on the NHS number (1..1): as we were told it, else untraced (H-051). */
function verificationElement(given: string | undefined) {
  const code = statusToSend(given);
  return {
    '@_url': CARECONNECT_VERIFICATION_URL,
    valueCodeableConcept: { coding: { system: v(CARECONNECT_VERIFICATION_SYSTEM), code: v(code), display: v(VERIFICATION_STATUSES[code]) } },
  };
}

function telecoms(p: { phone?: string; email?: string }) {
  return [...(p.email ? [{ system: v('email'), value: v(p.email) }] : []), ...(p.phone ? [{ system: v('phone'), value: v(p.phone) }] : [])];
}

const samePerson = (a: AdwPerson, b: AdwPerson) => a.name === b.name && a.phone === b.phone && a.email === b.email;

function practitioner(person: AdwPerson, organisation: string) {
  return {
    meta: meta('https://fhir.hl7.org.uk/StructureDefinition/CareConnect-Practitioner-1'),
    ...(person.name ? { name: { text: v(person.name) } } : {}),
    telecom: telecoms(person),
    practitionerRole: { managingOrganization: refTo(organisation), ...(person.role ? { role: { text: v(person.role) } } : {}) },
  };
}

/** Builds one ADW message; returns its MessageHeader.id and XML text. */
export function buildAdwMessage(m: AdwOutgoing): { headerId: string; xml: string } {
  const ids = { header: randomUUID(), referral: randomUUID(), encounter: randomUUID(), patient: randomUUID(), hospital: randomUUID(), council: randomUUID(), ward: randomUUID(), author: randomUUID(), referrer: randomUUID(), answers: randomUUID() };
  const notice = !m.inResponseTo;
  const fromHospital = notice;
  // A notice's author is usually the referrer (as in the examples): one Practitioner, referred to twice.
  const authorIsReferrer = Boolean(fromHospital && m.author && m.referrer && samePerson(m.author, m.referrer));
  const authorId = authorIsReferrer ? ids.referrer : ids.author;
  const entry = (id: string, type: string, resource: Record<string, unknown>) => ({ fullUrl: v(urn(id)), resource: { [type]: { id: v(id), ...resource } } });
  const p = m.patient;
  const lines = p.address?.lines ?? [];
  const entries = [
    entry(ids.header, 'MessageHeader', {
      meta: meta(HEADER_PROFILES[m.event]),
      timestamp: v(new Date(m.now).toISOString().replace(/\.\d{3}Z$/, '+00:00')),
      event: { system: v('http://snomed.info/sct'), code: v(m.event) },
      ...(m.inResponseTo ? { response: { identifier: v(m.inResponseTo), code: v('ok') } } : {}),
      source: { endpoint: v(ODS_ENDPOINT_PREFIX + m.sourceOds) },
      destination: { endpoint: v(ODS_ENDPOINT_PREFIX + m.destinationOds) },
      ...(m.author ? { author: refTo(authorId) } : {}),
      // An answer is addressed to the person who referred, as every example's is (their hospital when unknown).
      receiver: refTo(fromHospital ? ids.council : m.referrer ? ids.referrer : ids.hospital),
      responsible: refTo(fromHospital ? ids.hospital : ids.council),
      ...(reasonElement(m) ? { reason: reasonElement(m) } : {}),
      data: refTo(m.event === EVENT.admissionNotice ? ids.encounter : ids.referral),
    }),
    ...(m.event === EVENT.admissionNotice ? [] : [entry(ids.referral, 'ReferralRequest', {
      meta: meta(referralProfile(m.event)),
      status: v(referralStatus(m.event)),
      identifier: { value: v(m.referralIdentifier) },
      patient: refTo(ids.patient),
      ...(m.referrer ? { requester: refTo(ids.referrer) } : {}),
      recipient: refTo(ids.council),
      encounter: refTo(ids.encounter),
      ...(notice && m.referralReason ? { reason: { text: v(m.referralReason) } } : {}),
      ...(notice && m.description ? { description: v(m.description) } : {}),
      ...(notice && m.answers?.length ? { supportingInformation: refTo(ids.answers) } : {}),
    })]),
    entry(ids.encounter, 'Encounter', {
      meta: meta('CareConnect-ADW-Encounter-1'),
      ...(m.encounter?.identifier ? { identifier: { system: v(ENCOUNTER_ID_SYSTEM), value: v(m.encounter.identifier) } } : {}),
      status: v(m.encounter?.status ?? 'in-progress'),
      class: v('inpatient'),
      ...(m.encounter?.admissionType?.code ? { priority: { coding: { system: v(ADMISSION_TYPE_SYSTEM), code: v(m.encounter.admissionType.code), display: v(m.encounter.admissionType.display) } } } : {}),
      patient: refTo(ids.patient),
      ...(m.encounter?.start || m.encounter?.end ? { period: { start: v(m.encounter.start), end: v(m.encounter.end) } } : {}),
      ...(m.encounter?.ward ? { location: { location: refTo(ids.ward) } } : {}),
      serviceProvider: refTo(ids.hospital),
    }),
    entry(ids.patient, 'Patient', {
      meta: meta('https://fhir.hl7.org.uk/StructureDefinition/CareConnect-Patient-1'),
      identifier: [
        ...(p.nhsNumber ? [{ extension: verificationElement(p.nhsNumberVerification), system: v(NHS_NUMBER_SYSTEM), value: v(p.nhsNumber) }] : []),
      ],
      name: { use: v('usual'), family: v(p.family), given: p.given.map((g) => v(g)) },
      ...(notice ? { telecom: telecoms(p) } : {}),
      gender: v(p.gender),
      birthDate: v(p.birthDate),
      ...(notice && p.address ? { address: { line: lines.map((l) => v(l)), city: v(p.address.city), district: v(p.address.district), postalCode: v(p.address.postalCode) } } : {}),
      ...(notice && p.contacts.length ? { contact: p.contacts.map((c) => ({
        relationship: c.relationship.map((text) => ({ text: v(text) })),
        ...(c.name ? { name: { text: v(c.name) } } : {}),
        telecom: telecoms(c),
      })) } : {}),
    }),
    ...(m.referrer ? [entry(ids.referrer, 'Practitioner', practitioner(m.referrer, ids.hospital))] : []),
    ...(m.author && !authorIsReferrer ? [entry(ids.author, 'Practitioner', practitioner(m.author, fromHospital ? ids.hospital : ids.council))] : []),
    entry(ids.hospital, 'Organization', {
      meta: meta('https://fhir.hl7.org.uk/StructureDefinition/CareConnect-Organization-1'),
      identifier: { system: v(ODS_SITE), value: v(m.hospital.ods) },
      type: { coding: { system: v('http://hl7.org/fhir/organization-type'), code: v('prov'), display: v('Healthcare Provider') } },
      name: v(m.hospital.name),
    }),
    entry(ids.council, 'Organization', {
      meta: meta('https://fhir.hl7.org.uk/StructureDefinition/CareConnect-Organization-1'),
      identifier: { system: v(ODS_ORGANIZATION), value: v(m.council.ods) },
      type: { coding: { system: v('http://hl7.org/fhir/organization-type'), code: v('govt'), display: v('Government') } },
      name: v(m.council.name),
    }),
    ...(m.encounter?.ward ? [entry(ids.ward, 'Location', { meta: meta('https://fhir.hl7.org.uk/StructureDefinition/CareConnect-Location-1'), name: v(m.encounter.ward), managingOrganization: refTo(ids.hospital) })] : []),
    ...(notice && m.answers?.length ? [entry(ids.answers, 'QuestionnaireResponse', {
      status: v('completed'),
      encounter: refTo(ids.encounter),
      group: { question: m.answers.map((a) => ({ text: v(a.text), answer: a.coding ? { valueCoding: { system: v(a.coding.system), code: v(a.coding.code), display: v(a.coding.display) } } : { valueString: v(a.value ?? '') } })) },
    })] : []),
  ];
  const bundle = {
    Bundle: {
      '@_xmlns': 'http://hl7.org/fhir',
      id: v(randomUUID()),
      meta: meta('ADW-Message-Bundle-1'),
      type: v('message'),
      entry: entries,
    },
  };
  return { headerId: ids.header, xml: builder.build(bundle) as string };
}
