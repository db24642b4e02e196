// An NHS number's verification status, carried between ADW messages (CareConnect's extension, DSTU2) and
// the record (UK Core's, R4). A status is only ever passed on as it was said: a number we were given
// without one is sent as "present but not traced", never as verified (H-051).
import { NHS_NUMBER_SYSTEM, NHS_NUMBER_VERIFICATION_EXTENSION, NHS_NUMBER_VERIFICATION_SYSTEM } from '../../record/index.ts';
import { UNTRACED, VERIFICATION_STATUSES } from './codes.ts';
import type { FhirResource } from '../recordSession.ts';

/** The UK Core extension a Patient's NHS-number identifier carries in the record. */
export function recordVerificationExtension(code: string) {
  return { url: NHS_NUMBER_VERIFICATION_EXTENSION, valueCodeableConcept: { coding: [{ system: NHS_NUMBER_VERIFICATION_SYSTEM, code, display: VERIFICATION_STATUSES[code] }] } };
}

/** The status the record holds for the Patient's NHS number, when it holds one. */
export function recordedVerification(patient: FhirResource | undefined): string | undefined {
  const identifier = patient?.identifier?.find((i: any) => i?.system === NHS_NUMBER_SYSTEM);
  const extension = identifier?.extension?.find((e: any) => e?.url === NHS_NUMBER_VERIFICATION_EXTENSION);
  const code = extension?.valueCodeableConcept?.coding?.find((c: any) => c?.system === NHS_NUMBER_VERIFICATION_SYSTEM)?.code;
  return typeof code === 'string' && Object.hasOwn(VERIFICATION_STATUSES, code) ? code : undefined;
}

/** The status to send with a number: as it was said, else untraced. */
export const statusToSend = (code: string | undefined): string => (code !== undefined && Object.hasOwn(VERIFICATION_STATUSES, code) ? code : UNTRACED);
