// The people a GP practice or a carer looks after, read through the record with their own access: a
// practice's registered patients (Patient.generalPractitioner is the practice) and the people who named a
// carer in an opt-in Consent in force. Both are the same relationships the record's access checks use, so
// every person listed can be opened.
import { delegations, type UserActor } from '../../access/index.ts';
import type { RecordClient, Resource } from '../recordClient.ts';
import { organisationOf } from '../person/organisation.ts';
import { nhsNumberOf, personName } from '../person/text.ts';

const PAGE = 500;

export interface PersonRow { id: string; name: string; sortName: string; nhsNumber?: string; birthDate?: string }

function rowOf(p: Resource): PersonRow {
  const name = personName(p);
  const family = String(p.name?.[0]?.family ?? name);
  return { id: p.id, name, sortName: `${family} ${name}`.toLowerCase(), nhsNumber: nhsNumberOf(p), birthDate: p.birthDate };
}

const byName = (a: PersonRow, b: PersonRow) => a.sortName.localeCompare(b.sortName);

/** The practice's registered patients, by family name. */
export async function registeredPatients(record: RecordClient, actor: UserActor): Promise<{ practice: string; people: PersonRow[]; more: boolean }> {
  const practice = await organisationOf(record, actor);
  const found = await record.search('Patient', [['general-practitioner', `Organization/${practice.id}`], ['_count', String(PAGE)]]);
  return { practice: practice.name ?? actor.organisation ?? '', people: found.matches.map(rowOf).sort(byName), more: found.more };
}

/**
 * The people whose opt-in Consent names this carer and is in force now, by family name: the same searches
 * the record's access checks use (access's `delegations`), so the list never offers an expired delegation.
 */
export async function peopleCaredFor(record: RecordClient, actor: UserActor): Promise<{ people: PersonRow[] }> {
  if (!actor.fhirUser?.startsWith('RelatedPerson/')) return { people: [] };
  const people = new Map<string, PersonRow>();
  for (const delegation of delegations(actor.fhirUser)) {
    const found = await record.search('Consent', [...delegation.query, ['_include', 'Consent:patient'], ['_count', String(PAGE)]]);
    for (const p of found.included.filter((r) => r.resourceType === 'Patient')) people.set(p.id, rowOf(p));
  }
  return { people: [...people.values()].sort(byName) };
}
