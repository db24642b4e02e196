// The codes the portal reads and writes with. NEWS2 codes come from src/monitoring, as the demo dataset's
// do, so the portal's observations and everyone else's are found by the same searches.
import { ACVPU_CODES as ACVPU_CONCEPTS, NEWS2_CODES } from '../../monitoring/index.ts';

export const SNOMED = 'http://snomed.info/sct';
export const UCUM = 'http://unitsofmeasure.org';
export const OBSERVATION_CATEGORY = 'http://terminology.hl7.org/CodeSystem/observation-category';
export const ODS_ORGANIZATION = 'https://fhir.nhs.uk/Id/ods-organization-code';

export const NEWS2_TOTAL = NEWS2_CODES.news2;
export const VITALS = NEWS2_CODES;

/** ACVPU levels with the words the form shows. */
export const ACVPU_CODES = {
  A: { ...ACVPU_CONCEPTS.A, label: 'Alert' },
  C: { ...ACVPU_CONCEPTS.C, label: 'New confusion' },
  V: { ...ACVPU_CONCEPTS.V, label: 'Responds to voice' },
  P: { ...ACVPU_CONCEPTS.P, label: 'Responds to pain' },
  U: { ...ACVPU_CONCEPTS.U, label: 'Unresponsive' },
} as const;
