// The ADW (Assessment, Discharge, Withdrawal) message specification's codes: nhsconnect/FHIR-ADW-Messaging
// v5.3.0-beta.1 (FHIR DSTU2). MessageHeader.event codes are SNOMED CT.
import { NHS_NUMBER_VERIFICATION_STATUSES } from '../../record/index.ts';

export const EVENT = {
  admissionNotice: '895571000000108',
  assessmentNotice: '975701000000106',
  assessmentAccept: '975711000000108',
  assessmentReject: '975721000000102',
  dischargeNotice: '975731000000100',
  dischargeAgreement: '975821000000109',
  dischargeDisagreement: '975831000000106',
  withdrawAll: '975841000000102',
  withdrawAssessment: '1078011000000107',
  withdrawDischarge: '975851000000104',
  withdrawalAccept: '1025651000000109',
  withdrawalReject: '1025641000000106',
} as const;
export type EventCode = (typeof EVENT)[keyof typeof EVENT];

export const EVENT_NAMES: Record<EventCode, string> = {
  [EVENT.admissionNotice]: 'Admission notification',
  [EVENT.assessmentNotice]: 'Assessment notice',
  [EVENT.assessmentAccept]: 'Assessment notice accept',
  [EVENT.assessmentReject]: 'Assessment notice reject',
  [EVENT.dischargeNotice]: 'Discharge notice',
  [EVENT.dischargeAgreement]: 'Discharge notice agreement',
  [EVENT.dischargeDisagreement]: 'Discharge notice disagreement',
  [EVENT.withdrawAll]: 'Withdraw all notices',
  [EVENT.withdrawAssessment]: 'Withdraw assessment notice',
  [EVENT.withdrawDischarge]: 'Withdraw discharge notice',
  [EVENT.withdrawalAccept]: 'Withdrawal accept',
  [EVENT.withdrawalReject]: 'Withdrawal reject',
};

export function isEventCode(code: string): code is EventCode {
  return code in EVENT_NAMES;
}

export const WITHDRAWALS: ReadonlySet<string> = new Set([EVENT.withdrawAll, EVENT.withdrawAssessment, EVENT.withdrawDischarge]);
export const NOTICES: ReadonlySet<string> = new Set([EVENT.admissionNotice, EVENT.assessmentNotice, EVENT.dischargeNotice, ...WITHDRAWALS]);

/** For each notice that needs an answer: the accept and reject events. */
export const RESPONSES_TO: Record<string, { accept: EventCode; reject: EventCode }> = {
  [EVENT.assessmentNotice]: { accept: EVENT.assessmentAccept, reject: EVENT.assessmentReject },
  [EVENT.dischargeNotice]: { accept: EVENT.dischargeAgreement, reject: EVENT.dischargeDisagreement },
  [EVENT.withdrawAll]: { accept: EVENT.withdrawalAccept, reject: EVENT.withdrawalReject },
  [EVENT.withdrawAssessment]: { accept: EVENT.withdrawalAccept, reject: EVENT.withdrawalReject },
  [EVENT.withdrawDischarge]: { accept: EVENT.withdrawalAccept, reject: EVENT.withdrawalReject },
};

/** For each response event: the notices it can answer, and whether it accepts. */
export const ANSWERS: Record<string, { notices: string[]; accepts: boolean }> = {
  [EVENT.assessmentAccept]: { notices: [EVENT.assessmentNotice], accepts: true },
  [EVENT.assessmentReject]: { notices: [EVENT.assessmentNotice], accepts: false },
  [EVENT.dischargeAgreement]: { notices: [EVENT.dischargeNotice], accepts: true },
  [EVENT.dischargeDisagreement]: { notices: [EVENT.dischargeNotice], accepts: false },
  [EVENT.withdrawalAccept]: { notices: [...WITHDRAWALS], accepts: true },
  [EVENT.withdrawalReject]: { notices: [...WITHDRAWALS], accepts: false },
};

export const WITHDRAWAL_REASON_SYSTEM = 'https://fhir.nhs.uk/ADW-WithdrawalReason-1';
export const WITHDRAWAL_REASONS: Record<string, string> = {
  '01': 'Safe to discharge without assessment',
  '02': 'Patient eligible for NHS Continuing Healthcare',
  '03': 'Proposed care package inadequate',
  '04': 'Treatment cancelled or postponed',
  '05': 'Patient refused assessment',
  '06': 'Patient resident in another local authority',
  '07': "Patient's condition has deteriorated",
  '08': 'Patient has died',
  '09': 'Patient transferred to intermediate care',
  '10': 'Patient self-discharged',
  '11': 'Patient has made their own arrangements',
  '12': 'Notice sent in error',
  '13': 'Other',
};

export const ACCEPT_REASON_SYSTEM = 'https://fhir.nhs.uk/ADW-NoticeAcceptReason-1';
export const REJECT_REASON_SYSTEM = 'https://fhir.nhs.uk/ADW-NoticeRejectReason-1';
export const OTHER_FREE_TEXT = { code: 'OFT', display: 'Other - Free Text' };
export const ADMISSION_TYPE_SYSTEM = 'https://fhir.nhs.uk/ADW-AdmissionType-1';
export const ENCOUNTER_ID_SYSTEM = 'https://fhir.nhs.uk/encounter-id';
export const LOCAL_PATIENT_ID_SYSTEM = 'https://fhir.nhs.uk/Id/local-patient-identifier';
export const ODS_ENDPOINT_PREFIX = 'urn:nhs-uk:addressing:ods:';

/**
 * CareConnect-Patient-1, which ADW messages declare for their Patient, requires this extension (1..1) on
 * the NHS number's identifier: how far the number was traced. UK Core's extension says the same in R4.
 */
export const CARECONNECT_VERIFICATION_URL = 'https://fhir.hl7.org.uk/StructureDefinition/Extension-CareConnect-NHSNumberVerificationStatus-1';
export const CARECONNECT_VERIFICATION_SYSTEM = 'https://fhir.hl7.org.uk/CareConnect-NHSNumberVerificationStatus-1';
/** The NHS Data Dictionary's NHS number status indicator codes, which both code systems use (the record's table). */
export const VERIFICATION_STATUSES = NHS_NUMBER_VERIFICATION_STATUSES;
/** Said of a number whose status no one told us: we hold it, and we have not traced it (H-051). */
export const UNTRACED = '02';
/** The MESH workflow ids ADW messages travel under (configurable; these are the defaults). */
export const DEFAULT_ADW_WORKFLOW_IDS = ['ADW_NOTICE', 'ADW_NOTICE_ACK'];

export const PROFILE = 'https://fhir.nhs.uk/StructureDefinition/';
export const HEADER_PROFILES: Record<EventCode, string> = {
  [EVENT.admissionNotice]: 'ADW-AdmissionNotice-MessageHeader-1',
  [EVENT.assessmentNotice]: 'ADW-AssessmentNotice-MessageHeader-1',
  [EVENT.assessmentAccept]: 'ADW-AssessmentNoticeAcceptResponse-MessageHeader-1',
  [EVENT.assessmentReject]: 'ADW-AssessmentNoticeRejectResponse-MessageHeader-1',
  [EVENT.dischargeNotice]: 'ADW-DischargeNotice-MessageHeader-1',
  [EVENT.dischargeAgreement]: 'ADW-DischargeNoticeAcceptResponse-MessageHeader-1',
  [EVENT.dischargeDisagreement]: 'ADW-DischargeNoticeRejectResponse-MessageHeader-1',
  [EVENT.withdrawAll]: 'ADW-WithdrawalNotice-MessageHeader-1',
  [EVENT.withdrawAssessment]: 'ADW-WithdrawalNotice-MessageHeader-1',
  [EVENT.withdrawDischarge]: 'ADW-WithdrawalNotice-MessageHeader-1',
  [EVENT.withdrawalAccept]: 'ADW-WithdrawalNoticeAcceptResponse-MessageHeader-1',
  [EVENT.withdrawalReject]: 'ADW-WithdrawalNoticeRejectResponse-MessageHeader-1',
};
