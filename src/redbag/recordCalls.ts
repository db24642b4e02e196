// The red bag reads and writes the record only as its caller, through the record's own REST handler
// (from the FHIR API's operation hook or the portal's record client), so relationships, roles and the
// audit trail apply to every step.
import type { FhirRequest, FhirResponse } from '../record/index.ts';
import { RED_BAG_IDENTIFIER } from './codes.ts';

export type RecordCall = (request: FhirRequest) => Promise<FhirResponse>;

/** A FHIR resource as the red bag reads it: only resourceType and id are certain. */
export interface Resource {
  resourceType: string;
  id: string;
  [element: string]: any;
}

/**
 * If-None-Exist criteria for one part of a red bag (the pack, its Task, a reminder) by its identifier and
 * person: a repeated send, or a second copy of a pack, finds the part already there and makes no second.
 */
export function onePerPack(identifier: string, patientReference: string): string {
  return new URLSearchParams({ identifier: `${RED_BAG_IDENTIFIER}|${identifier}`, patient: patientReference }).toString();
}

export function bodyOf(response: FhirResponse): any {
  return typeof response.body === 'string' ? JSON.parse(response.body) : response.body;
}

export async function read(call: RecordCall, reference: string): Promise<Resource> {
  return bodyOf(await call({ method: 'GET', path: reference, query: [] }));
}

/** Matches (not _include'd entries) and included entries of one search page. */
export async function search(call: RecordCall, type: string, query: [string, string][]): Promise<{ matches: Resource[]; included: Resource[] }> {
  const bundle = bodyOf(await call({ method: 'GET', path: type, query }));
  const entries: { resource: Resource; search?: { mode?: string } }[] = bundle.entry ?? [];
  return {
    matches: entries.filter((e) => e.search?.mode !== 'include').map((e) => e.resource),
    included: entries.filter((e) => e.search?.mode === 'include').map((e) => e.resource),
  };
}

export function referenceTo(r: Resource): string {
  return `${r.resourceType}/${r.id}`;
}

export function odsOf(org: Resource | undefined): string | undefined {
  return org?.identifier?.find((i: { system?: string }) => i.system === 'https://fhir.nhs.uk/Id/ods-organization-code')?.value;
}
