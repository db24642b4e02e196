// NEWS2: the Royal College of Physicians' National Early Warning Score 2 (RCP, December 2017).
// Scores six physiological parameters plus "air or oxygen?" on the RCP chart, sums them, and maps the
// result to the RCP clinical risk bands and recommended response.
//
// Thresholds (RCP NEWS2 Chart 1, "The NEWS scoring system"):
//   Respiration rate /min   ≤8 →3 · 9–11 →1 · 12–20 →0 · 21–24 →2 · ≥25 →3
//   SpO2 scale 1 (%)        ≤91 →3 · 92–93 →2 · 94–95 →1 · ≥96 →0
//   SpO2 scale 2 (%)        ≤83 →3 · 84–85 →2 · 86–87 →1 · 88–92 →0 · ≥93 on air →0
//                           93–94 on oxygen →1 · 95–96 on oxygen →2 · ≥97 on oxygen →3
//   Air or oxygen?          oxygen →2 · air →0
//   Systolic BP (mmHg)      ≤90 →3 · 91–100 →2 · 101–110 →1 · 111–219 →0 · ≥220 →3
//   Pulse /min              ≤40 →3 · 41–50 →1 · 51–90 →0 · 91–110 →1 · 111–130 →2 · ≥131 →3
//   Consciousness (ACVPU)   Alert →0 · new Confusion, Voice, Pain, Unresponsive →3
//   Temperature (°C)        ≤35.0 →3 · 35.1–36.0 →1 · 36.1–38.0 →0 · 38.1–39.0 →1 · ≥39.1 →2
//
// Risk bands (RCP Chart 3): aggregate 0–4 low; a score of 3 in any single parameter low–medium;
// aggregate 5–6 medium; aggregate ≥7 high. The higher band always wins (a red score inside a total of 5
// is "medium", not "low–medium").
//
// Input rules (a wrong score is a patient-safety hazard, see docs/clinical-safety/hazard-log.md H-001):
// - Respiration rate, SpO2, systolic BP and pulse are whole numbers on the chart; a fractional value is
//   rejected rather than silently rounded into a band.
// - Temperature is charted to one decimal place. Values between chart rows (e.g. 35.04) are placed by
//   the row's upper bound: ≤35.0 →3, ≤36.0 →1, ≤38.0 →0, ≤39.0 →1, otherwise 2.
// - Impossible values (NaN, infinite, negative, SpO2 above 100, a temperature in Fahrenheit…) throw an
//   Error naming the field: a score computed from garbage would look trustworthy and is worse than none.

export type Acvpu = 'A' | 'C' | 'V' | 'P' | 'U';

export const ACVPU_LEVELS: readonly Acvpu[] = ['A', 'C', 'V', 'P', 'U'];

export interface News2Input {
  /** Breaths per minute (whole number). */
  respirationRate: number;
  /** Peripheral oxygen saturation, % (whole number 0–100). */
  spo2: number;
  /**
   * Score SpO2 on scale 2. Only for patients with (or at risk of) hypercapnic respiratory failure whose
   * prescribed target range is 88–92%, as decided and recorded by a qualified clinician. Default false (scale 1).
   */
  spo2Scale2?: boolean;
  /** True when the patient is receiving supplemental oxygen (any device/flow); false on room air. */
  supplementalOxygen: boolean;
  /** Systolic blood pressure, mmHg (whole number). */
  systolicBP: number;
  /** Pulse, beats per minute (whole number). */
  pulse: number;
  /** ACVPU: A alert; C new confusion; V responds to voice; P responds to pain; U unresponsive. */
  consciousness: Acvpu;
  /** Temperature, °C. */
  temperature: number;
}

export interface News2ParameterScores {
  respirationRate: number;
  spo2: number;
  airOrOxygen: number;
  systolicBP: number;
  pulse: number;
  consciousness: number;
  temperature: number;
}

export type News2Band = 'low' | 'low-medium' | 'medium' | 'high';

export interface News2Response {
  /** RCP minimum frequency of monitoring. */
  monitoringFrequency: string;
  /** RCP recommended clinical response, one action per entry. */
  clinicalResponse: string[];
}

export interface News2Result {
  scores: News2ParameterScores;
  total: number;
  /** True when any single parameter scored 3 (an RCP "red score"). */
  anySingleParameterScored3: boolean;
  band: News2Band;
  /** Which SpO2 scale was applied. */
  spo2Scale: 1 | 2;
  response: News2Response;
}

/** Plausible-input limits. Outside them the value is a recording or unit error, not physiology. */
export const NEWS2_INPUT_LIMITS = {
  respirationRate: { min: 0, max: 100, unit: 'breaths/min', integer: true },
  spo2: { min: 0, max: 100, unit: '%', integer: true },
  systolicBP: { min: 0, max: 350, unit: 'mmHg', integer: true },
  pulse: { min: 0, max: 300, unit: 'beats/min', integer: true },
  temperature: { min: 10, max: 45, unit: '°C', integer: false },
} as const;

type NumericField = keyof typeof NEWS2_INPUT_LIMITS;

function checkNumber(field: NumericField, value: unknown): number {
  const limits = NEWS2_INPUT_LIMITS[field];
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw new Error(`NEWS2 ${field}: expected a finite number, got ${String(value)}`);
  }
  if (value < limits.min || value > limits.max) {
    throw new Error(`NEWS2 ${field}: ${value} ${limits.unit} is outside the plausible range ${limits.min}–${limits.max} ${limits.unit}`);
  }
  if (limits.integer && !Number.isInteger(value)) {
    throw new Error(`NEWS2 ${field}: ${value} must be a whole number of ${limits.unit}`);
  }
  return value;
}

function checkBoolean(field: string, value: unknown, optional: boolean): boolean {
  if (value === undefined && optional) return false;
  if (typeof value !== 'boolean') throw new Error(`NEWS2 ${field}: expected true or false, got ${String(value)}`);
  return value;
}

export function scoreRespirationRate(rate: number): number {
  checkNumber('respirationRate', rate);
  if (rate <= 8) return 3;
  if (rate <= 11) return 1;
  if (rate <= 20) return 0;
  if (rate <= 24) return 2;
  return 3;
}

export function scoreSpo2Scale1(spo2: number): number {
  checkNumber('spo2', spo2);
  if (spo2 <= 91) return 3;
  if (spo2 <= 93) return 2;
  if (spo2 <= 95) return 1;
  return 0;
}

export function scoreSpo2Scale2(spo2: number, supplementalOxygen: boolean): number {
  checkNumber('spo2', spo2);
  checkBoolean('supplementalOxygen', supplementalOxygen, false);
  if (spo2 <= 83) return 3;
  if (spo2 <= 85) return 2;
  if (spo2 <= 87) return 1;
  if (spo2 <= 92) return 0;
  // ≥93%: on air it scores 0; on oxygen it means over-oxygenation of a patient at risk of hypercapnia.
  if (!supplementalOxygen) return 0;
  if (spo2 <= 94) return 1;
  if (spo2 <= 96) return 2;
  return 3;
}

export function scoreAirOrOxygen(supplementalOxygen: boolean): number {
  return checkBoolean('supplementalOxygen', supplementalOxygen, false) ? 2 : 0;
}

export function scoreSystolicBP(systolic: number): number {
  checkNumber('systolicBP', systolic);
  if (systolic <= 90) return 3;
  if (systolic <= 100) return 2;
  if (systolic <= 110) return 1;
  if (systolic <= 219) return 0;
  return 3;
}

export function scorePulse(pulse: number): number {
  checkNumber('pulse', pulse);
  if (pulse <= 40) return 3;
  if (pulse <= 50) return 1;
  if (pulse <= 90) return 0;
  if (pulse <= 110) return 1;
  if (pulse <= 130) return 2;
  return 3;
}

export function scoreConsciousness(level: Acvpu): number {
  if (!ACVPU_LEVELS.includes(level)) {
    throw new Error(`NEWS2 consciousness: expected one of A, C, V, P, U (ACVPU), got ${String(level)}`);
  }
  return level === 'A' ? 0 : 3;
}

export function scoreTemperature(celsius: number): number {
  checkNumber('temperature', celsius);
  if (celsius <= 35.0) return 3;
  if (celsius <= 36.0) return 1;
  if (celsius <= 38.0) return 0;
  if (celsius <= 39.0) return 1;
  return 2;
}

const RESPONSES: Record<'zero' | 'low' | 'low-medium' | 'medium' | 'high', News2Response> = {
  zero: {
    monitoringFrequency: 'Minimum 12 hourly',
    clinicalResponse: ['Continue routine NEWS monitoring'],
  },
  low: {
    monitoringFrequency: 'Minimum 4–6 hourly',
    clinicalResponse: [
      'Inform registered nurse, who must assess the patient',
      'Registered nurse decides whether increased frequency of clinical monitoring or escalation of care is required',
    ],
  },
  'low-medium': {
    monitoringFrequency: 'Minimum 1 hourly',
    clinicalResponse: [
      'Registered nurse to inform medical team caring for the patient, who will review and decide whether escalation of care is necessary',
    ],
  },
  medium: {
    monitoringFrequency: 'Minimum 1 hourly',
    clinicalResponse: [
      'Registered nurse to immediately inform the medical team caring for the patient',
      'Registered nurse to request urgent assessment by a clinician or team with core competencies in the care of acutely ill patients',
      'Provide clinical care in an environment with monitoring facilities',
    ],
  },
  high: {
    monitoringFrequency: 'Continuous monitoring of vital signs',
    clinicalResponse: [
      'Registered nurse to immediately inform the medical team caring for the patient – this should be at least at specialist registrar level',
      'Emergency assessment by a team with critical care competencies, including practitioner(s) with advanced airway management skills',
      'Consider transfer of care to a level 2 or 3 clinical care facility, ie higher-dependency unit or ICU',
      'Clinical care in an environment with monitoring facilities',
    ],
  },
};

/** The RCP band for an aggregate score, given whether any single parameter scored 3. */
export function news2Band(total: number, anySingleParameterScored3 = false): News2Band {
  checkTotal('total', total);
  if (total >= 7) return 'high';
  if (total >= 5) return 'medium';
  if (anySingleParameterScored3) return 'low-medium';
  return 'low';
}

/** The RCP recommended response (Chart 4). Within the low band a total of 0 has its own, lighter, response. */
export function news2Response(total: number, anySingleParameterScored3 = false): News2Response {
  const band = news2Band(total, anySingleParameterScored3);
  const r = band === 'low' && total === 0 ? RESPONSES.zero : RESPONSES[band];
  return { monitoringFrequency: r.monitoringFrequency, clinicalResponse: [...r.clinicalResponse] };
}

function checkTotal(field: string, total: unknown): number {
  if (typeof total !== 'number' || !Number.isInteger(total) || total < 0 || total > 20) {
    throw new Error(`NEWS2 ${field}: expected a whole-number NEWS2 total 0–20, got ${String(total)}`);
  }
  return total;
}

export function scoreNews2(input: News2Input): News2Result {
  if (input === null || typeof input !== 'object') throw new Error('NEWS2 input: expected an object of observations');
  const scale2 = checkBoolean('spo2Scale2', input.spo2Scale2, true);
  const oxygen = checkBoolean('supplementalOxygen', input.supplementalOxygen, false);
  const scores: News2ParameterScores = {
    respirationRate: scoreRespirationRate(input.respirationRate),
    spo2: scale2 ? scoreSpo2Scale2(input.spo2, oxygen) : scoreSpo2Scale1(input.spo2),
    airOrOxygen: scoreAirOrOxygen(oxygen),
    systolicBP: scoreSystolicBP(input.systolicBP),
    pulse: scorePulse(input.pulse),
    consciousness: scoreConsciousness(input.consciousness),
    temperature: scoreTemperature(input.temperature),
  };
  const parts = Object.values(scores);
  const total = parts.reduce((a, b) => a + b, 0);
  const anySingleParameterScored3 = parts.some((s) => s === 3);
  return {
    scores,
    total,
    anySingleParameterScored3,
    band: news2Band(total, anySingleParameterScored3),
    spo2Scale: scale2 ? 2 : 1,
    response: news2Response(total, anySingleParameterScored3),
  };
}

const BAND_RANK: Record<News2Band, number> = { low: 0, 'low-medium': 1, medium: 2, high: 3 };

/** A score to compare: a bare total (band from the total alone: low-medium cannot be seen) or a full result. */
export type News2TrendPoint = number | Pick<News2Result, 'total' | 'anySingleParameterScored3'>;

export interface News2Trend {
  /** True when the score has risen enough to need attention: see `reasons`. */
  rising: boolean;
  reasons: string[];
  current: number;
  currentBand: News2Band;
  /** The most recent previous total (undefined with no history). */
  previous?: number;
  previousBand?: News2Band;
  /** current − previous. */
  changeFromPrevious?: number;
  /** The lowest previous total in the window. */
  baseline?: number;
  /** current − baseline. */
  changeFromBaseline?: number;
}

function point(p: News2TrendPoint, field: string): { total: number; band: News2Band } {
  if (typeof p === 'number') return { total: checkTotal(field, p), band: news2Band(p) };
  if (p === null || typeof p !== 'object') throw new Error(`NEWS2 ${field}: expected a total or a NEWS2 result`);
  const total = checkTotal(field, p.total);
  return { total, band: news2Band(total, p.anySingleParameterScored3 === true) };
}

/**
 * Compares the current NEWS2 with earlier ones (oldest first; the caller chooses the window, e.g. the last
 * 72 hours). Flags a rise when:
 * - the total rose by 2 or more since the most recent previous score, or
 * - the total is 2 or more above the lowest score in the window (a gradual climb of 1 point at a time), or
 * - the current band is higher than the most recent previous band.
 */
export function news2Trend(previousTotals: readonly News2TrendPoint[], current: News2TrendPoint): News2Trend {
  if (!Array.isArray(previousTotals)) throw new Error('NEWS2 previousTotals: expected an array');
  const now = point(current, 'current');
  const history = previousTotals.map((p, i) => point(p, `previousTotals[${i}]`));
  const result: News2Trend = { rising: false, reasons: [], current: now.total, currentBand: now.band };
  if (history.length === 0) return result;

  const last = history[history.length - 1];
  const baseline = Math.min(...history.map((h) => h.total));
  result.previous = last.total;
  result.previousBand = last.band;
  result.changeFromPrevious = now.total - last.total;
  result.baseline = baseline;
  result.changeFromBaseline = now.total - baseline;

  if (result.changeFromPrevious >= 2) {
    result.reasons.push(`NEWS2 rose by ${result.changeFromPrevious} since the last score (${last.total} → ${now.total})`);
  }
  if (result.changeFromBaseline >= 2 && result.changeFromBaseline > result.changeFromPrevious) {
    result.reasons.push(`NEWS2 is ${result.changeFromBaseline} above the lowest recent score (${baseline} → ${now.total})`);
  }
  if (BAND_RANK[now.band] > BAND_RANK[last.band]) {
    result.reasons.push(`NEWS2 risk band rose from ${last.band} to ${now.band}`);
  }
  result.rising = result.reasons.length > 0;
  return result;
}
