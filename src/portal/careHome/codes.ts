// The codes the portal reads and writes NEWS2 observations with: the same as the demo dataset's
// (LOINC vital signs, SNOMED CT for ACVPU and the NEWS2 total), so both are found by the same searches.
export const SNOMED = 'http://snomed.info/sct';
export const LOINC = 'http://loinc.org';
export const UCUM = 'http://unitsofmeasure.org';
export const OBSERVATION_CATEGORY = 'http://terminology.hl7.org/CodeSystem/observation-category';
export const ODS_ORGANIZATION = 'https://fhir.nhs.uk/Id/ods-organization-code';

export const NEWS2_TOTAL = { system: SNOMED, code: '1104051000000101', display: 'Royal College of Physicians National Early Warning Score 2 (NEWS2) total score' };

export const VITALS = {
  respirationRate: { system: LOINC, code: '9279-1', display: 'Respiratory rate' },
  spo2: { system: LOINC, code: '59408-5', display: 'Oxygen saturation in Arterial blood by Pulse oximetry' },
  temperature: { system: LOINC, code: '8310-5', display: 'Body temperature' },
  bloodPressure: { system: LOINC, code: '85354-9', display: 'Blood pressure panel with all children optional' },
  systolic: { system: LOINC, code: '8480-6', display: 'Systolic blood pressure' },
  diastolic: { system: LOINC, code: '8462-4', display: 'Diastolic blood pressure' },
  heartRate: { system: LOINC, code: '8867-4', display: 'Heart rate' },
  acvpu: { system: SNOMED, code: '1104441000000107', display: 'ACVPU (Alert Confusion Voice Pain Unresponsive) scale score' },
} as const;

export const ACVPU_CODES = {
  A: { code: '248234008', display: 'Mentally alert', label: 'Alert' },
  C: { code: '130987000', display: 'Acute confusion', label: 'New confusion' },
  V: { code: '300202002', display: 'Responds to voice', label: 'Responds to voice' },
  P: { code: '450847001', display: 'Responds to pain', label: 'Responds to pain' },
  U: { code: '422768004', display: 'Unresponsive', label: 'Unresponsive' },
} as const;
