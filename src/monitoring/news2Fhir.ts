// NEWS2 as FHIR: the codes vital signs and scores are recorded with (LOINC vital signs, SNOMED CT for
// ACVPU and the NEWS2 total), and the elements of a NEWS2 total Observation. Everything that writes or
// reads NEWS2 (the demo dataset, the portal, later the red bag) uses these, so one search finds them all.
import type { News2Result } from './news2.ts';

export const SNOMED = 'http://snomed.info/sct';
export const LOINC = 'http://loinc.org';

export const NEWS2_CODES = {
  respirationRate: { system: LOINC, code: '9279-1', display: 'Respiratory rate' },
  spo2: { system: LOINC, code: '59408-5', display: 'Oxygen saturation in Arterial blood by Pulse oximetry' },
  spo2Generic: { system: LOINC, code: '2708-6', display: 'Oxygen saturation in Arterial blood' },
  oxygenFlow: { system: LOINC, code: '3151-8', display: 'Inhaled oxygen flow rate' },
  temperature: { system: LOINC, code: '8310-5', display: 'Body temperature' },
  bloodPressure: { system: LOINC, code: '85354-9', display: 'Blood pressure panel with all children optional' },
  systolic: { system: LOINC, code: '8480-6', display: 'Systolic blood pressure' },
  diastolic: { system: LOINC, code: '8462-4', display: 'Diastolic blood pressure' },
  heartRate: { system: LOINC, code: '8867-4', display: 'Heart rate' },
  acvpu: { system: SNOMED, code: '1104441000000107', display: 'ACVPU (Alert Confusion Voice Pain Unresponsive) scale score' },
  news2: { system: SNOMED, code: '1104051000000101', display: 'Royal College of Physicians National Early Warning Score 2 (NEWS2) total score' },
} as const;

/** SNOMED CT concepts for each ACVPU level. */
export const ACVPU_CODES = {
  A: { code: '248234008', display: 'Mentally alert' },
  C: { code: '130987000', display: 'Acute confusion' },
  V: { code: '300202002', display: 'Responds to voice' },
  P: { code: '450847001', display: 'Responds to pain' },
  U: { code: '422768004', display: 'Unresponsive' },
} as const;

/** The value, band, scale and per-parameter scores (components) of a NEWS2 total Observation. */
export function news2TotalElements(score: News2Result) {
  return {
    valueInteger: score.total,
    interpretation: [{ text: `${score.band} clinical risk` }],
    method: { text: `NEWS2 SpO2 scale ${score.spo2Scale}` },
    component: ([
    ['Respiration rate score', score.scores.respirationRate],
    [`SpO2 scale ${score.spo2Scale} score`, score.scores.spo2],
    ['Air or oxygen score', score.scores.airOrOxygen],
    ['Systolic blood pressure score', score.scores.systolicBP],
    ['Pulse score', score.scores.pulse],
    ['Consciousness score', score.scores.consciousness],
    ['Temperature score', score.scores.temperature],
    ] as const).map(([text, value]) => ({ code: { text: `NEWS2 ${text}` }, valueInteger: value })),
  };
}
