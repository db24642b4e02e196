// How the pages word a person and the record's coded things: names, NHS numbers, ages, concept text.
import type { Resource } from '../recordClient.ts';

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
