// What an A08 (update patient information) changes on the Patient it is about (hazard H-058): the legal
// name, the home address and the home phone, as the PAS now holds them, so that a person's new address
// or name at the trust reaches the shared record. Only when the message is certainly about that Patient:
// a feed that wrote one person's details over another's would send their carers, letters and visits to
// the wrong home, and make the record match the wrong person's next message. Pure: the caller reads the
// Patient and writes the result (its old version stays in the history).
//
// The NHS number, birth date and sex are never changed from a feed. PDS is the source of truth for them,
// and they are what identifies the person: a wrong birth date written from a mis-keyed PAS entry would
// have their next message held, or let another person's be matched to them.
import type { AdtEvent, PidPerson } from './adtMessage.ts';
import { fold, nhsNumberOf } from './patientMatch.ts';
import type { Resource } from './recordSession.ts';

/** UK Core's NHS number verification status for a number traced on PDS ("Number present and verified"). */
const VERIFIED = '01';

/**
 * Why the message may not change the Patient's details, or undefined when it may. It may only when its
 * NHS number is the Patient's (so never a Patient found on demographics, which only a message without an
 * NHS number is, nor one whose number disagrees), PID-32 does not say the number is anything but traced
 * and verified (H-051: only 01 says it was), its birth date is the Patient's and its sex does not
 * disagree, and the PAS recorded it after the Patient last changed here: a message held up on its way
 * (H-047) must not put back an older address over a newer one.
 */
export function whyNotUpdated(patient: Resource, event: AdtEvent): string | undefined {
  const { person } = event;
  if (!person.nhsNumber) return 'the message carries no NHS number, and a Patient matched without one is not certain enough';
  if (nhsNumberOf(patient) !== person.nhsNumber) return 'the Patient does not have the message\'s NHS number';
  const status = person.nhsNumberVerification;
  if (status && status !== VERIFIED) return `PID-32 says the NHS number is not verified (status ${status})`;
  if (!person.birthDate || person.birthDate !== patient.birthDate) return 'the message does not give the Patient\'s birth date';
  if (person.gender && patient.gender && person.gender !== patient.gender) return 'the message gives another sex';
  const changed = Date.parse(patient.meta?.lastUpdated ?? '');
  if (!(Date.parse(event.recordedTime) >= changed)) return `the PAS recorded the message (${event.recordedTime}) before the Patient last changed in CareBridge`;
  return undefined;
}

/** The Patient with the message's name, home address and home phone, and what changed; undefined when nothing did. */
export function updatedPatient(patient: Resource, person: PidPerson): { patient: Resource; changed: string[] } | undefined {
  const next = structuredClone(patient);
  const changed = [
    updateName(next, person) && 'name',
    updateAddress(next, person) && 'home address',
    updatePhone(next, person) && 'home phone',
  ].filter((c): c is string => Boolean(c));
  return changed.length ? { patient: next, changed } : undefined;
}

/**
 * The legal name: the one used "official", else the first without a use, as PID-5's is the one typed L
 * (or untyped). Compared as the matching compares names (case, accents, spaces, hyphens, apostrophes
 * aside), so a PAS that sends surnames in capitals does not rewrite "Thornbury" as "THORNBURY". Only the
 * first given name is sent; any further given names stay.
 */
function updateName(patient: Resource, person: PidPerson): boolean {
  if (!person.family && !person.given) return false;
  const names: any[] = (patient.name ??= []);
  let name = names.find((n) => n.use === 'official') ?? names.find((n) => !n.use);
  const familyDiffers = person.family !== undefined && fold(name?.family) !== fold(person.family);
  const givenDiffers = person.given !== undefined && fold(name?.given?.[0]) !== fold(person.given);
  if (!familyDiffers && !givenDiffers) return false;
  if (!name) names.unshift((name = { use: 'official' }));
  if (familyDiffers) name.family = person.family;
  if (givenDiffers) name.given = [person.given, ...(name.given ?? []).slice(1)];
  delete name.text; // written for the old name
  return true;
}

/**
 * The home address: the one used "home", else the first without a use, as PID-11's is the one typed H (or
 * untyped). It changes when any part the message gives differs (case and spacing aside); it is then the
 * message's, whole, since parts the message leaves out belonged to the old address.
 */
function updateAddress(patient: Resource, person: PidPerson): boolean {
  const sent = person.address;
  if (!sent) return false;
  const addresses: any[] = (patient.address ??= []);
  const home = addresses.find((a) => a.use === 'home') ?? addresses.find((a) => !a.use);
  const same = (a: unknown, b: string | undefined) => b === undefined || text(a) === text(b);
  if (home && (!sent.lines.length || same(home.line?.join('\n'), sent.lines.join('\n'))) && same(home.city, sent.city) && same(home.district, sent.district)
    && same(home.postalCode?.replace(/\s/g, ''), sent.postcode?.replace(/\s/g, ''))) return false;
  const kept = { ...(home ?? { use: 'home' }) };
  for (const part of ['line', 'city', 'district', 'postalCode', 'text']) delete kept[part];
  const written = {
    ...kept,
    ...(sent.lines.length ? { line: sent.lines } : {}),
    ...(sent.city ? { city: sent.city } : {}),
    ...(sent.district ? { district: sent.district } : {}),
    ...(sent.postcode ? { postalCode: sent.postcode } : {}),
  };
  if (home) addresses[addresses.indexOf(home)] = written;
  else addresses.unshift(written);
  return true;
}

/** The home phone (system phone, use home): its number when the digits differ, or added. */
function updatePhone(patient: Resource, person: PidPerson): boolean {
  const sent = person.homePhone;
  if (!sent) return false;
  const telecom: any[] = (patient.telecom ??= []);
  const home = telecom.find((t) => t.system === 'phone' && t.use === 'home');
  const digits = (value: unknown) => String(value ?? '').replace(/\D/g, '');
  if (home && digits(home.value) === digits(sent)) return false;
  if (home) home.value = sent;
  else telecom.push({ system: 'phone', value: sent, use: 'home' });
  return true;
}

function text(value: unknown): string {
  return String(value ?? '').replace(/\s+/g, ' ').trim().toLowerCase();
}
