// What AuditEvent search values mean, shared by the search over one-row entries (SQL, search.ts) and
// over batches (batchSearch.ts), so both read a value the same way.
import { badRequest } from '../../record/index.ts';

// The code systems each token parameter's codes come from (their codes do not overlap, so the code alone is kept).
const DCM = 'http://dicom.nema.org/resources/ontology/DCM'; // sign-in and sign-out events
export const TOKEN_SYSTEMS = {
  type: ['http://terminology.hl7.org/CodeSystem/audit-event-type', DCM],
  subtype: ['http://hl7.org/fhir/restful-interaction', DCM, 'https://carebridge.example/CodeSystem/hl7v2-held-message-decision'],
  action: ['http://hl7.org/fhir/audit-event-action'],
  outcome: ['http://hl7.org/fhir/audit-event-outcome'],
  purpose: ['http://terminology.hl7.org/CodeSystem/v3-ActReason'],
  altid: [''],
} satisfies Record<string, string[]>;
export type TokenParam = keyof typeof TOKEN_SYSTEMS;

/** system|code, code, system| (any code of it) or |code (a code with no system: none here). */
export function tokenValue(param: TokenParam, value: string): { code: string } | 'any' | 'never' {
  const bar = value.indexOf('|');
  if (bar < 0) return { code: value };
  const system = value.slice(0, bar);
  const wanted = value.slice(bar + 1);
  if (!TOKEN_SYSTEMS[param].includes(system)) return 'never';
  return wanted ? { code: wanted } : 'any';
}

/** A reference search value (Type/id, or a URL ending in it; a bare id is a Patient's for patient=). */
export function referenceTo(value: string, code: string): { type: string; id: string } {
  const m = /(?:^|\/)([A-Z][A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})$/.exec(value);
  if (m) return { type: m[1], id: m[2] };
  if (code === 'patient' && /^[A-Za-z0-9\-.]{1,64}$/.test(value)) return { type: 'Patient', id: value };
  throw badRequest(`'${code}' takes a reference such as ${code === 'agent' ? 'Practitioner/123' : 'Patient/123'}, not '${value}'.`, code);
}
