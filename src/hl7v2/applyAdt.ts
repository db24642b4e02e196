// Applies one ADT event to the record: the sending organisation, the ward, the patient and the spell's
// Encounter. Runs inside the caller's transaction (RecordSession); anything it refuses is an Hl7Rejection.
import { NHS_NUMBER_SYSTEM, NHS_NUMBER_VERIFICATION_EXTENSION, NHS_NUMBER_VERIFICATION_STATUSES, NHS_NUMBER_VERIFICATION_SYSTEM } from '../record/index.ts';
import { Hl7Rejection, type AdtEvent, type PidPerson, type WardLocation } from './adtMessage.ts';
import { updatedEncounter, visitNumberSystem } from './encounterUpdate.ts';
import { matchPatient, messageNhsNumber, nhsNumberOf } from './patientMatch.ts';
import { updatedPatient, whyNotUpdated } from './patientUpdate.ts';
import { searchToken, type RecordSession, type Resource } from './recordSession.ts';

export const ODS_ORGANIZATION_SYSTEM = 'https://fhir.nhs.uk/Id/ods-organization-code';
const ODS_SITE_SYSTEM = 'https://fhir.nhs.uk/Id/ods-site-code';
const LOCAL_PATIENT_ID_SYSTEM = 'https://fhir.nhs.uk/Id/local-patient-identifier';
/** Wards named in PV1-3, per hospital site (or organisation when the site is not sent). */
export const WARD_SYSTEM_BASE = 'https://carebridge.example/fhir/Id/hl7v2-ward';

/**
 * A person's answer for a message held in the queue: this Patient, or a new one made from PID. With
 * `acceptDifferentNhsNumber` the person confirms, having checked the PAS, that the message is about the
 * stay already on file although it carries another NHS number (hazard H-011): it is applied to that stay
 * only, and the Patient's own NHS number is left as it is.
 */
export type PatientDecision = { patientId: string; acceptDifferentNhsNumber?: boolean } | { newPatient: true };

export type ApplyOutcome =
  | { kind: 'applied'; patientId: string; encounterId: string; how: string }
  | { kind: 'queued'; reason: string };

export async function applyAdt(record: RecordSession, event: AdtEvent, ods: string, decision?: PatientDecision): Promise<ApplyOutcome> {
  const organisation = await sendingOrganisation(record, ods);
  const visits = await record.search('Encounter', [['identifier', searchToken(visitNumberSystem(ods), event.visit.visitNumber)], ['_count', '2']]);
  if (visits.length > 1) throw new Hl7Rejection({ ack: 'AE', code: 205, location: 'PV1-19', text: `Visit ${event.visit.visitNumber} is on more than one Encounter in CareBridge; a person must correct the record.` });
  const current = visits[0];
  let patient: Resource;
  let how: string;
  if (decision) {
    ({ patient, how } = await decidedPatient(record, event.person, ods, decision, current));
  } else {
    const match = await matchPatient(record, event.person, current);
    if ('queue' in match) return { kind: 'queued', reason: match.queue };
    ({ patient, how } = match);
    // Never on a person's decision: one made over a weak or conflicting match says which stay the message
    // is about, not that its details are this Patient's (H-058).
    if (event.trigger === 'A08') {
      const details = await updateDetails(record, patient, event);
      patient = details.patient;
      how = `${how}; ${details.note}`;
    }
  }
  const ward = event.visit.location ? await wardFor(record, ods, organisation, event.visit.location) : undefined;
  const next = updatedEncounter(current, event, {
    ods,
    patient: { reference: `Patient/${patient.id}`, ...(displayName(patient) ? { display: displayName(patient) } : {}) },
    organisation: { reference: `Organization/${organisation.id}`, ...(organisation.name ? { display: organisation.name } : {}) },
    ward,
  });
  const written = current ? await record.update(next as Resource) : await record.create(next);
  return { kind: 'applied', patientId: patient.id, encounterId: written.id, how };
}

/** An A08's name, home address and home phone, written to the Patient when it may change them and they differ (H-058). */
async function updateDetails(record: RecordSession, patient: Resource, event: AdtEvent): Promise<{ patient: Resource; note: string }> {
  const refused = whyNotUpdated(patient, event);
  if (refused) return { patient, note: `the Patient's details left as they are: ${refused}` };
  const next = updatedPatient(patient, event.person);
  if (!next) return { patient, note: 'the Patient\'s details already as sent' };
  return { patient: await record.update(next.patient), note: `the Patient's ${next.changed.join(', ')} updated` };
}

/** The sending organisation's Organization: exactly one in the record with the ODS code, or an AR. */
export async function sendingOrganisation(record: RecordSession, ods: string): Promise<Resource> {
  const found = await record.search('Organization', [['identifier', `${ODS_ORGANIZATION_SYSTEM}|${ods}`], ['_count', '2']]);
  if (found.length === 1) return found[0];
  throw new Hl7Rejection({
    ack: 'AR',
    code: 204,
    location: 'MSH-4',
    text: found.length
      ? `More than one Organization in CareBridge has ODS code ${ods}.`
      : `The sending organisation ${ods} is not in CareBridge; its Organization (with ODS code ${ods}) must be added before its feed is accepted.`,
  });
}

async function decidedPatient(record: RecordSession, person: PidPerson, ods: string, decision: PatientDecision, visit: Resource | undefined): Promise<{ patient: Resource; how: string }> {
  const visitPatient = String(visit?.subject?.reference ?? '').replace(/^Patient\//, '');
  const visitText = `visit ${visit?.identifier?.[0]?.value}`;
  if ('patientId' in decision) {
    const patient = await record.read('Patient', decision.patientId);
    if (!patient) throw new Error(`Patient/${decision.patientId} is not in the record.`);
    if (visitPatient && visitPatient !== patient.id) throw new Error(`${visitText} already belongs to Patient/${visitPatient}, not Patient/${patient.id}.`);
    const theirs = nhsNumberOf(patient);
    if (!person.nhsNumber || !theirs || theirs === person.nhsNumber) return { patient, how: 'a person' };
    // A different NHS number is the strongest sign of a message about someone else. A person may still
    // say it is this stay's (a number mis-keyed in the PAS), but only for a stay already on file for them:
    // never to file a new stay against a Patient whose number disagrees.
    if (!decision.acceptDifferentNhsNumber || visitPatient !== patient.id) {
      const choices = visitPatient === patient.id
        ? `check the PAS: if this stay is theirs, resolve again with --accept-different-nhs-number; if not, dismiss the message`
        : `check the PAS, and name the Patient the message is about, or dismiss it`;
      throw new Error(`Patient/${patient.id} has NHS number ${theirs}, but the message carries ${person.nhsNumber} (${person.nhsNumberField ?? 'PID-3'}); ${choices}.`);
    }
    // Nor when the message's number is someone else's in the record: it may well be about them.
    const holder = (await record.search('Patient', [['identifier', `${NHS_NUMBER_SYSTEM}|${person.nhsNumber}`], ['_count', '1']]))[0];
    if (holder) throw new Error(`NHS number ${person.nhsNumber} is Patient/${holder.id}'s, so the message may be about them, not Patient/${patient.id}; dismiss it and ask for the PAS to be corrected.`);
    return { patient, how: `a person, who confirmed the stay is Patient/${patient.id}'s (NHS number ${theirs}) although the message carries ${messageNhsNumber(person)}` };
  }
  if (visitPatient) throw new Error(`${visitText} already belongs to Patient/${visitPatient}; use --patient ${visitPatient}, or dismiss the message.`);
  if (!person.nhsNumber) return { patient: await record.create(patientFrom(person, ods)), how: 'a new Patient, by a person' };
  // A conditional create, not a search then a create: two people resolving messages for one new person at
  // once (or an ADW notice for them arriving meanwhile) must not make two records (hazard H-016).
  const made = await record.createUnlessExists(patientFrom(person, ods), new URLSearchParams({ identifier: `${NHS_NUMBER_SYSTEM}|${person.nhsNumber}` }).toString());
  if (!made.created) throw new Error(`NHS number ${person.nhsNumber} is already Patient/${made.resource.id}; use --patient ${made.resource.id}.`);
  return { patient: made.resource, how: 'a new Patient, by a person' };
}

function patientFrom(person: PidPerson, ods: string): Omit<Resource, 'id'> {
  const identifier = [
    ...(person.nhsNumber ? [{ ...verificationOf(person), system: NHS_NUMBER_SYSTEM, value: person.nhsNumber }] : []),
    ...person.localIds.map((l) => ({ system: LOCAL_PATIENT_ID_SYSTEM, value: l.value, assigner: { identifier: { system: ODS_ORGANIZATION_SYSTEM, value: ods } } })),
  ];
  const a = person.address;
  return {
    resourceType: 'Patient',
    ...(identifier.length ? { identifier } : {}),
    ...(person.family || person.given ? { name: [{ use: 'official', ...(person.family ? { family: person.family } : {}), ...(person.given ? { given: [person.given] } : {}) }] } : {}),
    ...(person.gender ? { gender: person.gender } : {}),
    ...(person.birthDate ? { birthDate: person.birthDate } : {}),
    ...(a ? { address: [{ use: 'home', ...(a.lines.length ? { line: a.lines } : {}), ...(a.city ? { city: a.city } : {}), ...(a.district ? { district: a.district } : {}), ...(a.postcode ? { postalCode: a.postcode } : {}) }] } : {}),
  };
}

/**
 * The NHS number's verification status the message gave (PID-32), as UK Core's extension on the identifier,
 * the same as a person first recorded from an ADW notice. Without one, none: a status is never made up, and
 * the feed never changes the identifiers of a Patient already in the record, so it cannot raise one either
 * (H-051).
 */
function verificationOf(person: PidPerson): { extension?: object[] } {
  const code = person.nhsNumberVerification;
  if (!code) return {};
  return { extension: [{ url: NHS_NUMBER_VERIFICATION_EXTENSION, valueCodeableConcept: { coding: [{ system: NHS_NUMBER_VERIFICATION_SYSTEM, code, display: NHS_NUMBER_VERIFICATION_STATUSES[code] }] } }] };
}

/** The ward's Location (made the first time a feed names it), and how the Encounter shows it. */
async function wardFor(record: RecordSession, ods: string, organisation: Resource, where: WardLocation): Promise<{ reference: string; display: string }> {
  const siteCode = where.site && /^[A-Z0-9]{3,10}$/.test(where.site) ? where.site : undefined;
  const system = `${WARD_SYSTEM_BASE}/${siteCode ?? ods}`;
  const name = where.description ?? where.ward;
  const site = siteCode ? (await record.search('Location', [['identifier', `${ODS_SITE_SYSTEM}|${siteCode}`], ['_count', '1']]))[0] : undefined;
  const location = await record.create(
    {
      resourceType: 'Location',
      identifier: [{ system, value: where.ward }],
      status: 'active',
      name,
      mode: 'instance',
      physicalType: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/location-physical-type', code: 'wa', display: 'Ward' }] },
      managingOrganization: { reference: `Organization/${organisation.id}`, ...(organisation.name ? { display: organisation.name } : {}) },
      ...(site ? { partOf: { reference: `Location/${site.id}`, ...(site.name ? { display: site.name } : {}) } } : {}),
    },
    new URLSearchParams({ identifier: searchToken(system, where.ward) }).toString(),
  );
  const place = [where.room && `bay ${where.room}`, where.bed && `bed ${where.bed}`].filter(Boolean).join(', ');
  return { reference: `Location/${location.id}`, display: place ? `${location.name ?? name}, ${place}` : String(location.name ?? name) };
}

function displayName(patient: Resource): string | undefined {
  const n = patient.name?.[0];
  if (!n) return undefined;
  return [n.given?.join(' '), n.family].filter(Boolean).join(' ') || undefined;
}
