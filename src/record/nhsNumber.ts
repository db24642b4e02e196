// NHS number rules (modulus 11) and a generator of synthetic numbers for demo data and fixtures.
// Synthetic numbers come from the 999 range, which NHS England never issues to real people, and every
// resource carrying one is tagged with SYNTHETIC_TAG so nobody mistakes it for a real record.

export const NHS_NUMBER_SYSTEM = 'https://fhir.nhs.uk/Id/nhs-number';

/** HL7 v3 ActReason HTEST: "test health data". */
export const SYNTHETIC_TAG = {
  system: 'http://terminology.hl7.org/CodeSystem/v3-ActReason',
  code: 'HTEST',
  display: 'test health data',
} as const;

/** The check digit for the first nine digits, or undefined when no valid number can end them (remainder 10). */
export function nhsNumberCheckDigit(firstNine: string): number | undefined {
  let sum = 0;
  for (let i = 0; i < 9; i++) sum += Number(firstNine[i]) * (10 - i);
  const check = 11 - (sum % 11);
  if (check === 11) return 0;
  if (check === 10) return undefined;
  return check;
}

export function isValidNhsNumber(value: string): boolean {
  if (!/^\d{10}$/.test(value)) return false;
  return nhsNumberCheckDigit(value.slice(0, 9)) === Number(value[9]);
}

/** A valid synthetic NHS number (999 range) drawn from `random` (a function returning [0, 1)). */
export function generateSyntheticNhsNumber(random: () => number = Math.random): string {
  for (;;) {
    let firstNine = '999';
    for (let i = 0; i < 6; i++) firstNine += Math.floor(random() * 10).toString();
    const check = nhsNumberCheckDigit(firstNine);
    if (check !== undefined) return firstNine + check.toString();
  }
}

export function isSyntheticNhsNumber(value: string): boolean {
  return value.startsWith('999') && isValidNhsNumber(value);
}
