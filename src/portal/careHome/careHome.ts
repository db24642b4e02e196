// The care home a signed-in person works for, found in the record by its ODS code.
import type { UserActor } from '../../access/index.ts';
import type { RecordClient, Resource } from '../recordClient.ts';
import { ODS_ORGANIZATION } from './codes.ts';

export class NotInRecord extends Error {}

export async function careHomeOf(record: RecordClient, actor: UserActor): Promise<Resource> {
  if (!actor.organisation) throw new NotInRecord('You are not signed in for a care home. Sign out and choose the care home you work for.');
  const { matches } = await record.search('Organization', [['identifier', `${ODS_ORGANIZATION}|${actor.organisation}`]]);
  if (!matches[0]) throw new NotInRecord(`Your organisation (ODS code ${actor.organisation}) is not in the shared record yet. Ask your administrator to add it.`);
  return matches[0];
}

/** Display text for a CodeableConcept: its text, else its first coding's display or code. */
export function conceptText(concept: any): string {
  return concept?.text ?? concept?.coding?.[0]?.display ?? concept?.coding?.[0]?.code ?? '';
}

export function personName(resource: Resource | undefined): string {
  const name = resource?.name?.[0];
  if (!name) return 'Name not recorded';
  return name.text ?? [...(name.prefix ?? []), ...(name.given ?? []), name.family].filter(Boolean).join(' ');
}

export function nhsNumberOf(patient: Resource): string | undefined {
  return patient.identifier?.find((i: any) => i.system === 'https://fhir.nhs.uk/Id/nhs-number')?.value;
}

/** Age in whole years on `now` from a FHIR birthDate. */
export function ageOn(birthDate: string | undefined, now = new Date()): number | undefined {
  if (!birthDate || !/^\d{4}-\d{2}-\d{2}$/.test(birthDate)) return undefined;
  const [y, m, d] = birthDate.split('-').map(Number);
  let age = now.getUTCFullYear() - y;
  if (now.getUTCMonth() + 1 < m || (now.getUTCMonth() + 1 === m && now.getUTCDate() < d)) age--;
  return age;
}
