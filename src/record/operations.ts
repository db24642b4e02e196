// Operations other capabilities add to the FHIR API ($red-bag, …), by name and resource type, at instance
// level. The record knows nothing of what an operation does: it checks the route, hands the operation the
// caller's own way into the record (every read and write it makes goes through the caller's
// AccessControl and is reported for the audit trail), and sends back what the operation answers.
import type { AccessControl } from './accessControl.ts';
import type { FhirRequest, FhirResponse } from './rest.ts';

export interface OperationCall {
  base: string;
  /** The caller's access: who they are (caller) and what they may do. */
  access: AccessControl;
  /** The instance the operation was invoked on: Patient/{id}/$name → 'Patient', id. */
  resourceType: string;
  id: string;
  method: 'GET' | 'POST';
  query: [string, string][];
  body?: unknown;
  ifMatch?: string;
  /** A FHIR interaction run as the same caller (reads, searches, transactions). */
  fhir(request: FhirRequest): Promise<FhirResponse>;
}

export interface FhirOperation {
  /** Without the '$': 'red-bag'. */
  name: string;
  resourceType: string;
  methods: readonly ('GET' | 'POST')[];
  /** Throws a FhirError for a refusal or bad input; the record renders it as an OperationOutcome. */
  invoke(call: OperationCall): Promise<FhirResponse>;
}

export type FhirOperations = readonly FhirOperation[];

export function findOperation(operations: FhirOperations | undefined, resourceType: string, segment: string): FhirOperation | undefined {
  if (!operations || !segment.startsWith('$')) return undefined;
  return operations.find((o) => o.resourceType === resourceType && o.name === segment.slice(1));
}
