// The UK Core rules the record enforces on top of base FHIR R4: NHS numbers and their verification status on
// Patient, ODS codes on Organization and Location. Failures here are 422 (the resource is valid FHIR).
import { describe, isObject, issue, jsonType } from './issues.ts';
import type { OutcomeIssue } from '../outcome.ts';
import { isValidNhsNumber, NHS_NUMBER_SYSTEM } from '../nhsNumber.ts';

export const ODS_ORGANIZATION_SYSTEM = 'https://fhir.nhs.uk/Id/ods-organization-code';
export const ODS_SITE_SYSTEM = 'https://fhir.nhs.uk/Id/ods-site-code';
export const NHS_NUMBER_VERIFICATION_EXTENSION =
  'https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-NHSNumberVerificationStatus';
export const NHS_NUMBER_VERIFICATION_SYSTEM = 'https://fhir.hl7.org.uk/CodeSystem/UKCore-NHSNumberVerificationStatusEngland';

const ODS_CODE_PATTERN = /^[A-Z0-9]{3,10}$/;
/** Resources nested in resources (contained, Bundle entries) looked into; far beyond any real resource. */
const MAX_NESTING = 64;
/** UK Core's NHS Number Verification Status (England): its codes and their displays. */
export const NHS_NUMBER_VERIFICATION_STATUSES: Readonly<Record<string, string>> = {
  '01': 'Number present and verified',
  '02': 'Number present but not traced',
  '03': 'Trace required',
  '04': 'Trace attempted - No match or multiple match found',
  '05': 'Trace needs to be resolved - (NHS Number or patient detail conflict)',
  '06': 'Trace in progress',
  '07': 'Number not present and trace not required',
  '08': 'Trace postponed (baby under six weeks old)',
};
const VERIFICATION_CODES: ReadonlySet<string> = new Set(Object.keys(NHS_NUMBER_VERIFICATION_STATUSES));

/**
 * The UK Core rules the record enforces, for a resource (and the resources contained in it or, for a Bundle,
 * carried in its entries): NHS numbers and their verification status on Patient, ODS codes on Organization and
 * Location. Returns the problems found (none when the resource is fine); validateResource throws them as 422.
 */
export function validateUkCore(resource: unknown): OutcomeIssue[] {
  const out: OutcomeIssue[] = [];
  if (isObject(resource) && typeof resource.resourceType === 'string') ukCore(resource, resource.resourceType, out);
  return out;
}

function ukCore(resource: Record<string, unknown>, path: string, out: OutcomeIssue[], depth = 0): void {
  if (depth > MAX_NESTING) return; // the structural walk refuses such a resource anyway
  const type = resource.resourceType;
  const identifiers = Array.isArray(resource.identifier) ? resource.identifier : [];
  identifiers.forEach((identifier, i) => {
    if (!isObject(identifier)) return;
    const at = `${path}.identifier[${i}]`;
    const system = identifier.system;
    if (type === 'Patient') {
      if (system === NHS_NUMBER_SYSTEM) checkNhsNumber(identifier.value, `${at}.value`, out);
      checkVerificationStatus(identifier, at, out);
    } else if ((type === 'Organization' && (system === ODS_ORGANIZATION_SYSTEM || system === ODS_SITE_SYSTEM)) || (type === 'Location' && system === ODS_SITE_SYSTEM)) {
      checkOdsCode(identifier.value, `${at}.value`, out);
    }
  });
  if (Array.isArray(resource.contained)) {
    resource.contained.forEach((c, i) => {
      if (isObject(c)) ukCore(c, `${path}.contained[${i}]`, out, depth + 1);
    });
  }
  if (type === 'Bundle' && Array.isArray(resource.entry)) {
    resource.entry.forEach((e, i) => {
      if (isObject(e) && isObject(e.resource)) ukCore(e.resource, `${path}.entry[${i}].resource`, out, depth + 1);
    });
  }
}

function checkNhsNumber(value: unknown, path: string, out: OutcomeIssue[]): void {
  if (value === undefined || value === null || value === '') {
    out.push(issue('invariant', `${path}: an identifier with system ${NHS_NUMBER_SYSTEM} must have a value (the 10-digit NHS number)`, path));
    return;
  }
  if (typeof value !== 'string') {
    out.push(issue('value', `${path}: an NHS number must be a string of 10 digits, but got ${jsonType(value)}`, path));
    return;
  }
  if (isValidNhsNumber(value)) return;
  const reason = /\s/.test(value)
    ? 'it contains spaces; send the 10 digits without spaces'
    : /^\d{10}$/.test(value)
      ? 'check digit'
      : /^\d+$/.test(value)
        ? `it must be exactly 10 digits, not ${value.length}`
        : 'it must be exactly 10 digits';
  out.push(issue('value', `${path}: '${value}' is not a valid NHS number (${reason})`, path));
}

function checkVerificationStatus(identifier: Record<string, unknown>, at: string, out: OutcomeIssue[]): void {
  if (!Array.isArray(identifier.extension)) return;
  identifier.extension.forEach((ext, e) => {
    if (!isObject(ext) || ext.url !== NHS_NUMBER_VERIFICATION_EXTENSION) return;
    const path = `${at}.extension[${e}].valueCodeableConcept`;
    const codings = isObject(ext.valueCodeableConcept) && Array.isArray(ext.valueCodeableConcept.coding) ? ext.valueCodeableConcept.coding : [];
    const ours = codings.map((c, j) => [c, j] as const).filter(([c]) => isObject(c) && c.system === NHS_NUMBER_VERIFICATION_SYSTEM);
    if (ours.length === 0) {
      out.push(
        issue(
          'invariant',
          `${path}: the NHS number verification status must have a coding with system ${NHS_NUMBER_VERIFICATION_SYSTEM} and a code from 01 to 08`,
          path,
        ),
      );
      return;
    }
    for (const [c, j] of ours) {
      const code = (c as Record<string, unknown>).code;
      if (typeof code === 'string' && VERIFICATION_CODES.has(code)) continue;
      const codePath = `${path}.coding[${j}].code`;
      out.push(
        issue(
          'value',
          code === undefined
            ? `${codePath}: the NHS number verification status has no code; use 01 to 08`
            : `${codePath}: ${describe(code)} is not an NHS number verification status (01 to 08)`,
          codePath,
        ),
      );
    }
  });
}

function checkOdsCode(value: unknown, path: string, out: OutcomeIssue[]): void {
  if (value === undefined || value === null || value === '') {
    out.push(issue('invariant', `${path}: an ODS identifier must have a value (the ODS code)`, path));
    return;
  }
  if (typeof value === 'string' && ODS_CODE_PATTERN.test(value)) return;
  out.push(issue('value', `${path}: ${describe(value)} is not a valid ODS code (3 to 10 upper-case letters or digits, no spaces, e.g. RXX01)`, path));
}
