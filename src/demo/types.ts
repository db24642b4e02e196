// Minimal FHIR R4 shapes for the demo dataset (the project does not depend on @medplum/fhirtypes).

export interface Coding {
  system?: string;
  code?: string;
  display?: string;
}

export interface Reference {
  reference: string;
  display?: string;
}

/** Any R4 resource: resourceType and id always set, every other element free-form. */
export interface FhirResource {
  resourceType: string;
  id: string;
  meta: { tag: Coding[] };
  [element: string]: unknown;
}

export interface TransactionEntry {
  resource: FhirResource;
  request: { method: 'PUT'; url: string };
}

export interface TransactionBundle {
  resourceType: 'Bundle';
  id: string;
  meta: { tag: Coding[] };
  type: 'transaction';
  timestamp: string;
  entry: TransactionEntry[];
}
