// The people a GP practice or a carer looks after, read through the record with their own access: a
// practice's registered patients (Patient.generalPractitioner is the practice) and the people who named a
// carer in an active opt-in Consent. Both are the same relationships the record's access checks use, so
// every person listed can be opened.
import { OPT_IN, type UserActor } from '../../access/index.ts';
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

/** The people who named this carer in an active opt-in Consent, by family name. */
export async function peopleCaredFor(record: RecordClient, actor: UserActor): Promise<{ people: PersonRow[] }> {
  if (!actor.fhirUser?.startsWith('RelatedPerson/')) return { people: [] };
  const found = await record.search('Consent', [['status', 'active'], ['category', OPT_IN], ['actor', actor.fhirUser], ['_include', 'Consent:patient'], ['_count', String(PAGE)]]);
  const people = new Map(found.included.filter((r) => r.resourceType === 'Patient').map((p) => [p.id, rowOf(p)]));
  return { people: [...people.values()].sort(byName) };
}
