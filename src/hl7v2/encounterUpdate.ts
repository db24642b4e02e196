// What each ADT event does to the hospital spell's Encounter (contract 3 of the discharge work):
// status, period.start (admission), period.end (PV1-45 discharge), location[] (PV1-3 wards, the current one
// active), the expected discharge date extension (PV2-9), hospitalization.dischargeDisposition (PV1-37)
// and serviceProvider. Pure: the caller reads the current Encounter and writes the result.
import type { AdtEvent } from './adtMessage.ts';
import { Hl7Rejection } from './adtMessage.ts';
import type { Resource } from './recordSession.ts';

export const EXPECTED_DISCHARGE_EXTENSION = 'https://carebridge.example/fhir/StructureDefinition/expected-discharge-date';
/** Visit numbers (PV1-19) are unique only within the organisation that issues them. */
export const VISIT_NUMBER_SYSTEM_BASE = 'https://carebridge.example/fhir/Id/hl7v2-visit-number';
/** UK Core discharge destination (NHS Data Dictionary codes: 19 usual residence, 54 NHS care home…). */
export const DISCHARGE_DESTINATION_SYSTEM = 'https://fhir.hl7.org.uk/CodeSystem/UKCore-DischargeDestination';

const DESTINATIONS: Record<string, string> = {
  '19': 'Usual place of residence',
  '29': 'Temporary place of residence',
  '54': 'NHS run care home',
  '65': 'Local authority residential accommodation',
  '79': 'Not applicable - patient died or still birth',
  '85': 'Non-NHS run care home',
};

const CLASSES: Record<string, { code: string; display: string }> = {
  I: { code: 'IMP', display: 'inpatient encounter' },
  E: { code: 'EMER', display: 'emergency' },
  O: { code: 'AMB', display: 'ambulatory' },
};
const ACT_CODE = 'http://terminology.hl7.org/CodeSystem/v3-ActCode';

export function visitNumberSystem(ods: string): string {
  return `${VISIT_NUMBER_SYSTEM_BASE}/${ods}`;
}

export interface EncounterRefs {
  ods: string;
  patient: { reference: string; display?: string };
  organisation: { reference: string; display?: string };
  /** The ward Location for PV1-3, when the message has one. */
  ward?: { reference: string; display: string };
}

const OPEN = new Set(['planned', 'arrived', 'triaged', 'in-progress', 'onleave']);

function cannot(text: string, location = 'PV1-19'): never {
  throw new Hl7Rejection({ ack: 'AE', code: 204, location, text });
}

/** The Encounter after `event`, from the current one (undefined when the visit is new to CareBridge). */
export function updatedEncounter(current: Resource | undefined, event: AdtEvent, refs: EncounterRefs): Omit<Resource, 'id'> & { id?: string } {
  const { trigger, visit } = event;
  const visitText = `visit ${visit.visitNumber}`;
  if (!current && (trigger === 'A11' || trigger === 'A13')) cannot(`${visitText} is not in CareBridge, so there is no ${trigger === 'A11' ? 'admission' : 'discharge'} to cancel.`);
  // Built up as plain JSON; the record validates the result against the R4 Encounter definition.
  const enc: Record<string, any> = current ? structuredClone(current) : {
    resourceType: 'Encounter',
    identifier: [{ system: visitNumberSystem(refs.ods), value: visit.visitNumber }],
    status: 'in-progress',
    class: classOf(visit.patientClass),
    period: { start: visit.admitTime ?? event.eventTime },
  };
  const status = String(enc.status);
  switch (trigger) {
    case 'A01':
      if (current && status === 'finished') cannot(`${visitText} has been discharged; cancel the discharge (A13) before admitting again.`);
      enc.status = 'in-progress';
      if (visit.admitTime) enc.period = { ...enc.period, start: visit.admitTime };
      break;
    case 'A02':
    case 'A08':
      if (current && !OPEN.has(status) && !(trigger === 'A08' && status === 'finished')) cannot(`${visitText} is ${status}; it cannot be ${trigger === 'A02' ? 'transferred' : 'updated'}.`);
      if (visit.admitTime) enc.period = { ...enc.period, start: visit.admitTime };
      break;
    case 'A03':
      if (current && status === 'cancelled') cannot(`${visitText} was cancelled; it cannot be discharged.`);
      enc.status = 'finished';
      enc.period = { ...enc.period, end: visit.dischargeTime };
      if (visit.dischargeDestination) enc.hospitalization = { ...enc.hospitalization, dischargeDisposition: destination(visit.dischargeDestination) };
      break;
    case 'A11':
      if (status === 'finished') cannot(`${visitText} has been discharged; cancel the discharge (A13) before cancelling the admission.`);
      enc.status = 'cancelled';
      break;
    case 'A13':
      if (status !== 'finished') cannot(`${visitText} is ${status}, not discharged, so there is no discharge to cancel.`);
      enc.status = 'in-progress';
      if (enc.period) delete enc.period.end;
      if (enc.hospitalization) delete enc.hospitalization.dischargeDisposition;
      break;
  }
  if (visit.patientClass && CLASSES[visit.patientClass]) enc.class = classOf(visit.patientClass);
  if (refs.ward && trigger !== 'A11' && trigger !== 'A13') moveTo(enc, refs.ward, current ? event.eventTime : visit.admitTime ?? event.eventTime);
  settleLocations(enc);
  if (visit.expectedDischarge === null) enc.extension = (enc.extension ?? []).filter((e: any) => e.url !== EXPECTED_DISCHARGE_EXTENSION);
  else if (visit.expectedDischarge) enc.extension = [...(enc.extension ?? []).filter((e: any) => e.url !== EXPECTED_DISCHARGE_EXTENSION), { url: EXPECTED_DISCHARGE_EXTENSION, valueDateTime: visit.expectedDischarge }];
  if (enc.extension?.length === 0) delete enc.extension;
  if (enc.hospitalization && Object.keys(enc.hospitalization).length === 0) delete enc.hospitalization;
  enc.subject = refs.patient;
  enc.serviceProvider = refs.organisation;
  return enc as Omit<Resource, 'id'> & { id?: string };
}

function classOf(patientClass: string | undefined) {
  const c = CLASSES[patientClass ?? 'I'] ?? CLASSES.I;
  return { system: ACT_CODE, code: c.code, display: c.display };
}

function destination(d: { code: string; text?: string }) {
  const display = DESTINATIONS[d.code];
  return { coding: [{ system: DISCHARGE_DESTINATION_SYSTEM, code: d.code, ...(display ? { display } : {}) }], ...(d.text || display ? { text: d.text ?? display } : {}) };
}

/** The person is now on `ward`: the ward they were on is completed at `at`, unless it is the same ward. */
function moveTo(enc: Record<string, any>, ward: { reference: string; display: string }, at: string): void {
  const locations: any[] = enc.location ?? [];
  const active = locations.filter((l) => l.status === 'active');
  const here = active.find((l) => l.location?.reference === ward.reference);
  if (here) {
    here.location.display = ward.display; // bed or bay may have changed
    enc.location = locations;
    return;
  }
  for (const l of active) {
    l.status = 'completed';
    l.period = { ...l.period, end: at };
  }
  locations.push({ location: ward, status: 'active', period: { start: at } });
  enc.location = locations;
}

/**
 * A finished spell has no active ward (the last one ends at discharge); a discharge cancelled by A13 puts
 * the person back on the ward they left; a cancelled admission leaves its wards as they were.
 */
function settleLocations(enc: Record<string, any>): void {
  const locations: any[] = enc.location ?? [];
  if (!locations.length) return;
  if (enc.status === 'finished') {
    for (const l of locations) if (l.status === 'active') {
      l.status = 'completed';
      l.period = { ...l.period, end: enc.period?.end };
    }
  } else if (enc.status === 'in-progress' && !locations.some((l) => l.status === 'active')) {
    const last = locations[locations.length - 1];
    last.status = 'active';
    if (last.period) delete last.period.end;
  }
}
