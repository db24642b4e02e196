// Validation of every resource the record accepts: base FHIR R4 structure, primitive formats and required code
// bindings, then the UK Core rules the record depends on (NHS numbers, ODS codes).
//
// The record's own validator, compiled once per process from the official R4 StructureDefinitions
// (validation/schema.ts) and run as a single walk over the JSON (validation/walk.ts). It replaced
// @medplum/core's validateResource, which cost ~0.7 ms per resource, mostly evaluating FHIRPath invariants:
// too slow for ingest (thousands of resources a second). What it checks:
// - unknown elements (with a spelling suggestion), the JSON kind of every value, array vs single value,
//   min/max cardinality and required elements at every level, only one variant per choice element (value[x]);
// - primitive formats with the official R4 regexes (validation/primitives.ts), real calendar dates, integer
//   ranges, 1 MB strings;
// - `_element` siblings carrying a primitive's id and extensions, and the nulls FHIR JSON allows alongside them;
// - contained resources and Bundle.entry.resource as resources of their own type;
// - FHIR JSON rules: no empty strings, arrays or objects, no null, no keys like __proto__ or constructor;
// - required bindings whose value sets can be listed (validation/bindings.ts), e.g. Patient.gender;
// - a few cheap invariants (validation/invariants.ts). The rest of the FHIRPath invariants are deliberately not
//   evaluated: that is where the time went, and structure is what protects the record's storage and search.
// Every issue names the element as FHIRPath would, with JSON names and array indexes
// ("Bundle.entry[0].resource.valueQuantity.value"), and its diagnostics start with that path.
import { definitions } from './definitions.ts';
import { FhirError, type OutcomeIssue } from './outcome.ts';
import { describe, issue, jsonType } from './validation/issues.ts';
import { validateUkCore } from './validation/ukCore.ts';
import { ID_PATTERN, walkResource } from './validation/walk.ts';

export {
  NHS_NUMBER_VERIFICATION_EXTENSION,
  NHS_NUMBER_VERIFICATION_SYSTEM,
  ODS_ORGANIZATION_SYSTEM,
  ODS_SITE_SYSTEM,
  validateUkCore,
} from './validation/ukCore.ts';

export interface ValidateOptions {
  /** The resource type named by the request URL. */
  expectedType?: string;
  /** The logical id named by the request URL (update, patch). */
  expectedId?: string;
}

/**
 * Validates a resource the record is asked to store. Throws a FhirError carrying every problem found:
 * 400 when the resource is not valid FHIR R4, otherwise 422 when it breaks a UK Core rule.
 */
export function validateResource(resource: unknown, options: ValidateOptions = {}): void {
  if (resource === null || typeof resource !== 'object' || Array.isArray(resource)) {
    throw new FhirError(400, [
      issue('structure', 'The request body must be a FHIR resource: a JSON object with a resourceType', 'resourceType'),
    ]);
  }
  const res = resource as Record<string, unknown>;
  const type = res.resourceType;
  if (typeof type !== 'string') {
    throw new FhirError(400, [
      type === undefined
        ? issue('required', 'resourceType is missing: every FHIR resource must say what it is, e.g. "resourceType": "Patient"', 'resourceType')
        : issue('structure', `resourceType must be a string, but got ${jsonType(type)}`, 'resourceType'),
    ]);
  }
  if (!definitions().resourceTypes.has(type)) {
    throw new FhirError(400, [issue('value', `Unknown resource type '${type}': it is not a FHIR R4 resource type`, 'resourceType')]);
  }
  if (options.expectedType !== undefined && type !== options.expectedType) {
    throw new FhirError(400, [
      issue('value', `resourceType '${type}' does not match the URL's '${options.expectedType}'`, 'resourceType'),
    ]);
  }

  const structure: OutcomeIssue[] = [];
  const id = res.id;
  if (id !== undefined && !(typeof id === 'string' && ID_PATTERN.test(id))) {
    structure.push(issue('value', `${type}.id: ${describe(id)} is not a valid FHIR id (1 to 64 characters: letters, digits, '-' and '.')`, `${type}.id`));
  }
  if (options.expectedId !== undefined && id !== options.expectedId) {
    structure.push(
      issue(
        'value',
        id === undefined
          ? `${type}.id is missing: it must be '${options.expectedId}', the id in the URL`
          : `${type}.id ${describe(id)} does not match the URL's '${options.expectedId}'`,
        `${type}.id`,
      ),
    );
  }
  const walked = walkResource(res, type);
  for (const i of walked) structure.push(i);

  const ukCore = validateUkCore(res);
  if (structure.length > 0) throw new FhirError(400, [...structure, ...ukCore]);
  if (ukCore.length > 0) throw new FhirError(422, ukCore);
}
