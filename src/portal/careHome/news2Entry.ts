// The NEWS2 entry form: checks what was typed (on the server; the form keeps it when something is
// wrong), scores it with src/monitoring, and writes the vital signs and the score to the record in one
// transaction, the score linked to the readings it was computed from (hazard H-001, H-003).
import { randomUUID } from 'node:crypto';
import { ACVPU_LEVELS, NEWS2_INPUT_LIMITS, news2TotalElements, scoreNews2, type Acvpu, type News2Input, type News2Result } from '../../monitoring/index.ts';
import type { UserActor } from '../../access/index.ts';
import type { FieldError } from '../page.ts';
import type { Resource } from '../recordClient.ts';
import { ACVPU_CODES, NEWS2_TOTAL, OBSERVATION_CATEGORY, SNOMED, UCUM, VITALS } from './codes.ts';

export type News2Form = Partial<Record<'respirationRate' | 'spo2' | 'oxygen' | 'systolicBP' | 'diastolicBP' | 'pulse' | 'consciousness' | 'temperature' | 'submission', string>>;

/**
 * Each set of readings is one submission of the form, named by an id made when the form is first shown:
 * every Observation it writes carries it, and is created only if none carries it yet, so a second click
 * of "Save" (or a resent request on a poor connection) records the readings once.
 */
export const SUBMISSION_SYSTEM = 'https://carebridge.example/fhir/Id/news2-submission';


type NumberField = keyof typeof NEWS2_INPUT_LIMITS;

const FIELD_NAMES: Record<NumberField | 'diastolicBP', { name: string; unit: string }> = {
  respirationRate: { name: 'respiration rate', unit: 'breaths per minute' },
  spo2: { name: 'oxygen saturation (SpO2)', unit: '%' },
  systolicBP: { name: 'systolic blood pressure', unit: 'mmHg' },
  diastolicBP: { name: 'diastolic blood pressure', unit: 'mmHg' },
  pulse: { name: 'pulse', unit: 'beats per minute' },
  temperature: { name: 'temperature', unit: '°C' },
};

function numberFrom(form: News2Form, field: NumberField | 'diastolicBP', errors: FieldError[], optional = false): number | undefined {
  const raw = (form[field] ?? '').trim();
  const { name, unit } = FIELD_NAMES[field];
  const limits = field === 'diastolicBP' ? { min: 0, max: 250, integer: true } : NEWS2_INPUT_LIMITS[field];
  if (!raw) {
    if (!optional) errors.push({ field, text: `Enter the ${name}` });
    return undefined;
  }
  if (!/^\d+(\.\d+)?$/.test(raw)) {
    errors.push({ field, text: `The ${name} must be a number, like ${limits.integer ? '18' : '37.2'}` });
    return undefined;
  }
  const value = Number(raw);
  if (limits.integer && !Number.isInteger(value)) {
    errors.push({ field, text: `The ${name} must be a whole number` });
    return undefined;
  }
  if (!limits.integer && !/^\d+(\.\d)?$/.test(raw)) {
    errors.push({ field, text: `The ${name} must have no more than 1 decimal place` });
    return undefined;
  }
  if (value < limits.min || value > limits.max) {
    errors.push({ field, text: `The ${name} must be between ${limits.min} and ${limits.max} ${unit}` });
    return undefined;
  }
  return value;
}

export interface CheckedNews2 {
  input: News2Input;
  diastolicBP?: number;
}

/** The readings, or every problem with them at once (so the error summary lists them all). */
export function checkNews2Form(form: News2Form, spo2Scale2: boolean): { ok: true; value: CheckedNews2 } | { ok: false; errors: FieldError[] } {
  const errors: FieldError[] = [];
  const respirationRate = numberFrom(form, 'respirationRate', errors);
  const spo2 = numberFrom(form, 'spo2', errors);
  if (form.oxygen !== 'yes' && form.oxygen !== 'no') errors.push({ field: 'oxygen', text: 'Select whether the resident is on oxygen' });
  const systolicBP = numberFrom(form, 'systolicBP', errors);
  const diastolicBP = numberFrom(form, 'diastolicBP', errors, true);
  if (systolicBP !== undefined && diastolicBP !== undefined && diastolicBP >= systolicBP) {
    errors.push({ field: 'diastolicBP', text: 'The diastolic blood pressure must be lower than the systolic' });
  }
  const pulse = numberFrom(form, 'pulse', errors);
  const consciousness = form.consciousness as Acvpu;
  if (!ACVPU_LEVELS.includes(consciousness)) errors.push({ field: 'consciousness', text: 'Select the level of consciousness (ACVPU)' });
  const temperature = numberFrom(form, 'temperature', errors);
  if (errors.length) return { ok: false, errors };
  return {
    ok: true,
    value: {
      input: { respirationRate: respirationRate!, spo2: spo2!, spo2Scale2, supplementalOxygen: form.oxygen === 'yes', systolicBP: systolicBP!, pulse: pulse!, consciousness, temperature: temperature! },
      diastolicBP,
    },
  };
}

/**
 * The transaction entries: six vital-sign Observations and the NEWS2 total derived from them, all with
 * the person who recorded them and their organisation as performers.
 */
export function news2Transaction(patientId: string, readings: CheckedNews2, score: News2Result, actor: UserActor, careHome: Resource, at: Date, submission: string): unknown[] {
  const performer = [
    ...(actor.fhirUser ? [{ reference: actor.fhirUser, display: actor.name }] : [{ display: actor.name }]),
    { reference: `Organization/${careHome.id}`, display: careHome.name },
  ];
  const common = (category: 'vital-signs' | 'survey') => ({
    resourceType: 'Observation',
    status: 'final',
    category: [{ coding: [{ system: OBSERVATION_CATEGORY, code: category, display: category === 'vital-signs' ? 'Vital Signs' : 'Survey' }] }],
    subject: { reference: `Patient/${patientId}` },
    effectiveDateTime: at.toISOString(),
    performer,
  });
  const quantity = (value: number, unit: string, code: string) => ({ value, unit, system: UCUM, code });
  const { input } = readings;
  const level = ACVPU_CODES[input.consciousness];
  /** A conditional create: this submission's reading of `part`, unless it is already in the record. */
  const once = (resource: Record<string, any>, part: string) => {
    const identifier = { system: SUBMISSION_SYSTEM, value: `${submission}/${part}` };
    return {
      fullUrl: `urn:uuid:${randomUUID()}`,
      resource: { ...resource, identifier: [identifier] },
      request: { method: 'POST', url: 'Observation', ifNoneExist: new URLSearchParams({ identifier: `${identifier.system}|${identifier.value}`, subject: `Patient/${patientId}` }).toString() },
    };
  };
  const vitals = [
    { ...common('vital-signs'), code: { coding: [VITALS.respirationRate], text: 'Respiration rate' }, valueQuantity: quantity(input.respirationRate, 'breaths/minute', '/min') },
    { ...common('vital-signs'), code: { coding: [VITALS.spo2], text: 'SpO2' }, valueQuantity: quantity(input.spo2, '%', '%'), ...(input.supplementalOxygen ? { note: [{ text: 'On supplemental oxygen' }] } : {}) },
    { ...common('vital-signs'), code: { coding: [VITALS.temperature], text: 'Temperature' }, valueQuantity: quantity(input.temperature, '°C', 'Cel') },
    {
      ...common('vital-signs'), code: { coding: [VITALS.bloodPressure], text: 'Blood pressure' },
      component: [
        { code: { coding: [VITALS.systolic], text: 'Systolic blood pressure' }, valueQuantity: quantity(input.systolicBP, 'mmHg', 'mm[Hg]') },
        ...(readings.diastolicBP !== undefined ? [{ code: { coding: [VITALS.diastolic], text: 'Diastolic blood pressure' }, valueQuantity: quantity(readings.diastolicBP, 'mmHg', 'mm[Hg]') }] : []),
      ],
    },
    { ...common('vital-signs'), code: { coding: [VITALS.heartRate], text: 'Pulse' }, valueQuantity: quantity(input.pulse, 'beats/minute', '/min') },
    { ...common('survey'), code: { coding: [VITALS.acvpu], text: 'Consciousness (ACVPU)' }, valueCodeableConcept: { coding: [{ system: SNOMED, code: level.code, display: level.display }], text: input.consciousness } },
  ].map((resource) => once(resource, resource.code.coding[0].code));
  const total = {
    ...common('survey'),
    code: { coding: [NEWS2_TOTAL], text: 'NEWS2 total score' },
    ...news2TotalElements(score),
    derivedFrom: vitals.map((v) => ({ reference: v.fullUrl })),
  };
  return [...vitals, once(total, 'total')];
}

export function scoreReadings(readings: CheckedNews2): News2Result {
  return scoreNews2(readings.input);
}
