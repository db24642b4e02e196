// What each ADT event does to the hospital spell's Encounter (contract 3 of the discharge work):
// status, period.start (admission), period.end (PV1-45 discharge), location[] (PV1-3 wards, the current one
// active), the expected discharge date extension (PV2-9), hospitalization.dischargeDisposition (PV1-37)
// and serviceProvider. A value is set only by a message the PAS recorded no earlier than the one that last
// set it (H-047). Pure: the caller reads the current Encounter and writes the result.
import type { AdtEvent } from './adtMessage.ts';
import { Hl7Rejection } from './adtMessage.ts';
import type { Resource } from './recordSession.ts';

export const EXPECTED_DISCHARGE_EXTENSION = 'https://carebridge.example/fhir/StructureDefinition/expected-discharge-date';
/**
 * When the PAS recorded each value the stay has from the feed (hazard H-047): one sub-extension per value
 * (`status`, `admitTime`, `class`, `expectedDischarge`), each a valueDateTime.
 */
const RECORDED_TIMES_EXTENSION = 'https://carebridge.example/fhir/StructureDefinition/hl7v2-recorded-times';
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

/**
 * The values a message sets only if the PAS recorded it no earlier than the message that last set them:
 * the stay's status (with the discharge time and destination, PV1-45 and PV1-37, that go with it), the
 * admission time (PV1-44), the patient class (PV1-2) and the expected discharge date (PV2-9).
 */
type RecordedValue = 'status' | 'admitTime' | 'class' | 'expectedDischarge';
type RecordedTimes = Map<RecordedValue, string>;

function cannot(text: string, location = 'PV1-19'): never {
  throw new Hl7Rejection({ ack: 'AE', code: 204, location, text });
}

/** The Encounter after `event`, from the current one (undefined when the visit is new to CareBridge). */
export function updatedEncounter(current: Resource | undefined, event: AdtEvent, refs: EncounterRefs): Omit<Resource, 'id'> & { id?: string } {
  const { trigger, visit } = event;
  const visitText = `visit ${visit.visitNumber}`;
  const effective = effectiveTime(event);
  if (!current && (trigger === 'A11' || trigger === 'A13')) cannot(`${visitText} is not in CareBridge, so there is no ${trigger === 'A11' ? 'admission' : 'discharge'} to cancel.`);
  // Built up as plain JSON; the record validates the result against the R4 Encounter definition.
  const enc: Record<string, any> = current ? structuredClone(current) : {
    resourceType: 'Encounter',
    identifier: [{ system: visitNumberSystem(refs.ods), value: visit.visitNumber }],
    status: 'in-progress',
    class: classOf(visit.patientClass),
    period: { start: visit.admitTime ?? effective },
  };
  const status = String(enc.status);
  // A message the PAS recorded before the one that set a value leaves that value as it is (H-047): it may
  // reach us late (resent, or held in the interface engine), and its values are older than the stay's.
  const times = recordedTimesOf(enc);
  const supersedes = (value: RecordedValue) => supersedesValue(times, value, event.recordedTime);
  switch (trigger) {
    case 'A01':
      if (current && status === 'finished') cannot(`${visitText} has been discharged; cancel the discharge (A13) before admitting again.`);
      if (supersedes('status')) enc.status = 'in-progress';
      break;
    case 'A02':
    case 'A08':
      if (current && !OPEN.has(status) && !(trigger === 'A08' && status === 'finished')) cannot(`${visitText} is ${status}; it cannot be ${trigger === 'A02' ? 'transferred' : 'updated'}.`);
      break;
    case 'A03':
      if (current && status === 'cancelled') cannot(`${visitText} was cancelled; it cannot be discharged.`);
      if (!supersedes('status')) break;
      enc.status = 'finished';
      enc.period = { ...enc.period, end: visit.dischargeTime };
      if (visit.dischargeDestination) enc.hospitalization = { ...enc.hospitalization, dischargeDisposition: destination(visit.dischargeDestination) };
      break;
    case 'A11':
      if (status === 'finished') cannot(`${visitText} has been discharged; cancel the discharge (A13) before cancelling the admission.`);
      if (supersedes('status')) enc.status = 'cancelled';
      break;
    case 'A13':
      if (status !== 'finished') cannot(`${visitText} is ${status}, not discharged, so there is no discharge to cancel.`);
      if (!supersedes('status')) break;
      enc.status = 'in-progress';
      if (enc.period) delete enc.period.end;
      if (enc.hospitalization) delete enc.hospitalization.dischargeDisposition;
      break;
  }
  if (visit.admitTime && ADMISSION_TIME_EVENTS.has(trigger) && supersedes('admitTime')) enc.period = { ...enc.period, start: visit.admitTime };
  if (visit.patientClass && CLASSES[visit.patientClass] && supersedes('class')) enc.class = classOf(visit.patientClass);
  if (refs.ward && trigger !== 'A11' && trigger !== 'A13') moveTo(enc, refs.ward, current ? effective : visit.admitTime ?? effective, visitText);
  settleLocations(enc);
  refuseInvertedPeriods(current, enc, visitText);
  if (visit.expectedDischarge !== undefined && supersedes('expectedDischarge')) {
    enc.extension = (enc.extension ?? []).filter((e: any) => e.url !== EXPECTED_DISCHARGE_EXTENSION);
    if (visit.expectedDischarge) enc.extension.push({ url: EXPECTED_DISCHARGE_EXTENSION, valueDateTime: visit.expectedDischarge });
  }
  keepRecordedTimes(enc, times);
  if (enc.extension?.length === 0) delete enc.extension;
  if (enc.hospitalization && Object.keys(enc.hospitalization).length === 0) delete enc.hospitalization;
  enc.subject = refs.patient;
  enc.serviceProvider = refs.organisation;
  return enc as Omit<Resource, 'id'> & { id?: string };
}

/**
 * When the event took effect on the stay. A discharge took effect no later than its PV1-45: without EVN-6 the
 * event time is when the discharge was keyed (EVN-2 or MSH-7), often after it, and the ward it names (the
 * one the person left from, perhaps a discharge lounge not sent as a transfer) would begin after the stay
 * ended, and the discharge be refused.
 */
function effectiveTime(event: AdtEvent): string {
  const discharged = event.visit.dischargeTime;
  return event.trigger === 'A03' && discharged && before(discharged, event.eventTime) ? discharged : event.eventTime;
}

/** The events whose PV1-44 sets the admission time (a discharge or a cancel leaves it as it is). */
const ADMISSION_TIME_EVENTS: ReadonlySet<string> = new Set(['A01', 'A02', 'A08']);

function recordedTimesOf(enc: Record<string, any>): RecordedTimes {
  const kept = (enc.extension ?? []).find((e: any) => e.url === RECORDED_TIMES_EXTENSION);
  return new Map((kept?.extension ?? []).map((e: any) => [e.url, e.valueDateTime]));
}

/** Last among the stay's extensions, so the expected discharge date stays where readers have found it. */
function keepRecordedTimes(enc: Record<string, any>, times: RecordedTimes): void {
  const others = (enc.extension ?? []).filter((e: any) => e.url !== RECORDED_TIMES_EXTENSION);
  const kept = [...times].map(([url, valueDateTime]) => ({ url, valueDateTime }));
  enc.extension = kept.length ? [...others, { url: RECORDED_TIMES_EXTENSION, extension: kept }] : others;
}

/**
 * Whether a message recorded at `recorded` sets `value`: not when the value was set by one the PAS
 * recorded after it. When it does, `recorded` becomes the value's time. A value on file without a time
 * (set before H-047) is taken to be older than any message.
 */
function supersedesValue(times: RecordedTimes, value: RecordedValue, recorded: string): boolean {
  if (before(recorded, times.get(value))) return false;
  times.set(value, recorded);
  return true;
}

function classOf(patientClass: string | undefined) {
  const c = CLASSES[patientClass ?? 'I'] ?? CLASSES.I;
  return { system: ACT_CODE, code: c.code, display: c.display };
}

function destination(d: { code: string; text?: string }) {
  const display = DESTINATIONS[d.code];
  return { coding: [{ system: DISCHARGE_DESTINATION_SYSTEM, code: d.code, ...(display ? { display } : {}) }], ...(d.text || display ? { text: d.text ?? display } : {}) };
}

/**
 * The person was on `ward` from `at` (hazard H-044). Wards are kept in time order, whatever order the
 * messages come in: a transfer keyed late in the PAS (EVN-6 before the current ward's start), or a delayed
 * A08 naming an earlier ward, goes into the history in its place, completed when the next ward began, and
 * the current ward stays current. Only a ward from a time after the current ward's start becomes current.
 * A ward from before the admission, or after a discharge, cannot be placed: refused (AE) with the reason.
 */
function moveTo(enc: Record<string, any>, ward: { reference: string; display: string }, at: string, visitText: string): void {
  const locations: any[] = enc.location ?? [];
  enc.location = locations;
  const active = locations.filter((l) => l.status === 'active');
  const here = active.find((l) => sameWard(l, ward));
  if (here) {
    here.location.display = ward.display; // bed or bay may have changed
    return;
  }
  const start = enc.period?.start;
  if (start && before(at, start)) cannot(`${visitText} began on ${start}; a ward from ${at} (EVN-6), before the admission, cannot be placed. Check the event time in the PAS.`, 'EVN-6');
  const latest = active.at(-1) ?? locations.at(-1);
  if (enc.status === 'finished' && !active.length) {
    // Discharged already (an A08 after the A03): its ward can only be one the person was on before leaving.
    const end = enc.period?.end;
    if (!end || !before(at, end)) {
      if (latest && sameWard(latest, ward)) return; // the ward they were discharged from
      cannot(`${visitText} was discharged${end ? ` on ${end}` : ''}; the person cannot have been on ${ward.display} from ${at} (EVN-6), after the discharge.`, 'EVN-6');
    }
    placeInHistory(locations, ward, at, end);
    return;
  }
  if (latest && before(at, latest.period?.start)) {
    placeInHistory(locations, ward, at, enc.period?.end);
    return;
  }
  for (const l of active) {
    l.status = 'completed';
    l.period = { ...l.period, end: at };
  }
  locations.push({ location: ward, status: 'active', period: { start: at } });
}

/**
 * `ward` from `at`, inside the history: it ends when the next ward began (or at `end`, the discharge),
 * and the ward the person was on at `at` now ends there. Nothing changes when the history already has them
 * on that ward at that time; a ward they moved to later is taken to have begun at `at`.
 */
function placeInHistory(locations: any[], ward: { reference: string; display: string }, at: string, end: string | undefined): void {
  let i = locations.findIndex((l) => l.period?.start && before(at, l.period.start));
  if (i < 0) i = locations.length;
  const prev = locations[i - 1];
  const next = locations[i];
  const prevCovers = prev && (!prev.period?.end || before(at, prev.period.end));
  if (prev && prevCovers && sameWard(prev, ward)) return;
  if (next && sameWard(next, ward)) {
    next.period = { ...next.period, start: at };
  } else {
    const until = next?.period?.start ?? (prevCovers ? prev.period?.end : undefined) ?? end;
    locations.splice(i, 0, { location: ward, status: 'completed', period: { start: at, ...(until ? { end: until } : {}) } });
  }
  if (prevCovers) prev.period = { ...prev.period, end: at };
}

function sameWard(l: any, ward: { reference: string }): boolean {
  return l.location?.reference === ward.reference;
}

/**
 * FHIR date/times as the span of time they stand for (a date alone is a whole day, in UK time or UTC), so
 * that values of different precision compare safely: `a` is before `b` only when all of `a` is.
 */
function span(value: string): [number, number] {
  const lo = Date.parse(value);
  if (value.includes('T')) return [lo, lo];
  const [y, m, d] = value.split('-').map(Number);
  const next = d ? Date.UTC(y, m - 1, d + 1) : m ? Date.UTC(y, m, 1) : Date.UTC(y + 1, 0, 1);
  const hour = 3_600_000; // midnight in UK summer time is 23:00 UTC the day before
  return [Date.UTC(y, (m || 1) - 1, d || 1) - hour, next - 1];
}

function before(a: string, b: string | undefined): boolean {
  if (!b) return false;
  return span(a)[1] < span(b)[0];
}

/** Each period that ends before it begins: a key (which ward, which times) and how to name it. */
function periodsOutOfOrder(enc: Record<string, any>): Map<string, string> {
  const periods: [string, string, any][] = [['', 'the spell', enc.period], ...(enc.location ?? []).map((l: any) => [String(l.location?.reference), String(l.location?.display ?? l.location?.reference), l.period] as [string, string, any])];
  return new Map(periods.filter(([, , p]) => p?.start && p?.end && before(p.end, p.start)).map(([key, what, p]) => [`${key}|${p.start}|${p.end}`, `${what} from ${p.start} to ${p.end}`]));
}

/**
 * Never writes a period that ends before it begins (FHIR per-1): the message is refused (AE) instead. A
 * period already wrong on file (written before this check) does not stop later messages.
 */
function refuseInvertedPeriods(current: Resource | undefined, enc: Record<string, any>, visitText: string): void {
  const already = current ? periodsOutOfOrder(current) : new Map<string, string>();
  const made = [...periodsOutOfOrder(enc)].filter(([key]) => !already.has(key)).map(([, text]) => text);
  if (made.length) cannot(`The message would leave ${visitText} with a period that ends before it begins (${made.join('; ')}). Check the event, admission and discharge times in the PAS.`, 'EVN-6');
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
