// Who a message is about (hazard H-011). Only a strong match files a message against a person; anything
// less holds it for a person to decide, because filing it against the wrong record (or splitting one
// person into two) could harm them.
//
//  1. The visit (PV1-19 from this organisation) is already in the record: its Encounter's patient, unless
//     the message's NHS number says it is someone else.
//  2. A valid NHS number: the one Patient with that number, if the birth dates do not disagree.
//  3. No NHS number: family name, first given name, birth date, sex and postcode all present and all
//     equal on exactly one Patient (who has no different NHS number).
// Everything else (no match, several, a partial demographic match, a conflict) is queued.
import { escapeSearchValue, NHS_NUMBER_SYSTEM } from '../record/index.ts';
import type { PidPerson } from './adtMessage.ts';
import type { RecordSession, Resource } from './recordSession.ts';

export type PatientMatch = { patient: Resource; how: string } | { queue: string };

export async function matchPatient(record: RecordSession, person: PidPerson, visitEncounter: Resource | undefined): Promise<PatientMatch> {
  if (visitEncounter) {
    const id = String(visitEncounter.subject?.reference ?? '').replace(/^Patient\//, '');
    const patient = id ? await record.read('Patient', id) : undefined;
    if (!patient) return { queue: `the visit's Encounter/${visitEncounter.id} has no patient CareBridge can read` };
    const theirs = nhsNumberOf(patient);
    if (person.nhsNumber && theirs && theirs !== person.nhsNumber) {
      return { queue: `the visit belongs to Patient/${patient.id} (NHS number ${theirs}) but the message carries ${messageNhsNumber(person)}` };
    }
    if (person.nhsNumber && !theirs) {
      const others = await byNhsNumber(record, person.nhsNumber);
      if (others.some((p) => p.id !== patient.id)) return { queue: `the visit belongs to Patient/${patient.id} but ${messageNhsNumber(person)} is another Patient's` };
    }
    return { patient, how: `visit number (Encounter/${visitEncounter.id})` };
  }
  if (person.nhsNumber) {
    const found = await byNhsNumber(record, person.nhsNumber);
    if (found.length === 0) return { queue: `no Patient has ${messageNhsNumber(person)}` };
    if (found.length > 1) return { queue: `${found.length} Patients have ${messageNhsNumber(person)}: ${found.map((p) => `Patient/${p.id}`).join(', ')}` };
    const [patient] = found;
    if (person.birthDate && patient.birthDate && patient.birthDate !== person.birthDate) {
      return { queue: `${messageNhsNumber(person)} is Patient/${patient.id}, born ${patient.birthDate}, but the message says born ${person.birthDate}` };
    }
    return { patient, how: 'NHS number' };
  }
  return matchDemographics(record, person);
}

async function matchDemographics(record: RecordSession, person: PidPerson): Promise<PatientMatch> {
  const missing = (['family', 'given', 'birthDate', 'gender', 'postcode'] as const).filter((k) => !person[k]);
  if (missing.length) return { queue: `no NHS number, and too little to match on safely (missing ${missing.join(', ')})` };
  const initial = surnameInitial(person.family!);
  const candidates = await record.search('Patient', [['family', escapeSearchValue(initial)], ['birthdate', person.birthDate!], ['_count', String(CANDIDATES + 1)]]);
  // Past the page, a second person with the same details could go unseen and the first be taken as the only one.
  if (candidates.length > CANDIDATES) return { queue: `no NHS number, and more than ${CANDIDATES} Patients born ${person.birthDate} have a surname beginning ${initial.toUpperCase()}` };
  const strong = candidates.filter((p) => sameDemographics(p, person) && !nhsNumberOf(p));
  const strongWithNumber = candidates.filter((p) => sameDemographics(p, person) && nhsNumberOf(p));
  if (strong.length === 1 && strongWithNumber.length === 0) return { patient: strong[0], how: 'family and given name, birth date, sex and postcode' };
  if (strong.length + strongWithNumber.length > 1) return { queue: `no NHS number, and ${strong.length + strongWithNumber.length} Patients share these details` };
  if (strongWithNumber.length) return { queue: `no NHS number; Patient/${strongWithNumber[0].id} has the same details but an NHS number the message does not carry` };
  return { queue: candidates.length ? `no NHS number, and ${candidates.length} Patient(s) match in part only` : 'no NHS number, and no Patient has these details' };
}

/**
 * The most Patients born on one day whose surnames share a first letter that are compared: a regional
 * record holds a few dozen people per birth date, so the whole set is compared, not a page of it.
 */
const CANDIDATES = 200;

/**
 * The surname's first letter, to search on. The record's string search folds case and accents but not
 * spaces, hyphens or apostrophes, which fold (below) ignores: searched by a longer beginning, OBRIEN found
 * nobody on file as O'Brien, and, worse, found one person on file as OBrien and took them as the only match
 * while an O'Brien with the same details went unseen. Every Patient whose surname could fold to the message's
 * begins with this letter, so each is compared (H-011).
 */
function surnameInitial(family: string): string {
  return fold(family).charAt(0) || family;
}

function sameDemographics(p: Resource, person: PidPerson): boolean {
  const names: any[] = p.name ?? [];
  const nameMatches = names.some((n) => fold(n.family) === fold(person.family) && fold(n.given?.[0]) === fold(person.given));
  const postcodes = (p.address ?? []).map((a: any) => postcodeKey(a.postalCode));
  return nameMatches && p.birthDate === person.birthDate && p.gender === person.gender && postcodes.includes(postcodeKey(person.postcode));
}

async function byNhsNumber(record: RecordSession, nhsNumber: string): Promise<Resource[]> {
  return record.search('Patient', [['identifier', `${NHS_NUMBER_SYSTEM}|${nhsNumber}`], ['_count', '10']]);
}

/**
 * The message's NHS number and the field it came from, as a held message's reason names it: a person
 * checking the PAS, or its interface team, looks where the number was read (PID-2 in v2.2/v2.3 feeds).
 */
export function messageNhsNumber(person: PidPerson): string {
  return `NHS number ${person.nhsNumber} (${person.nhsNumberField ?? 'PID-3'})`;
}

export function nhsNumberOf(patient: Resource): string | undefined {
  return (patient.identifier ?? []).find((i: any) => i.system === NHS_NUMBER_SYSTEM)?.value;
}

/** Case, accents, spaces, hyphens and apostrophes do not make two names different (O'Brien, OBRIEN). */
export function fold(value: unknown): string {
  return String(value ?? '').normalize('NFD').replace(/[\u0300-\u036f]/g, '').replace(/[\s'’-]/g, '').toLowerCase();
}

function postcodeKey(value: unknown): string {
  return String(value ?? '').replace(/\s/g, '').toUpperCase();
}
