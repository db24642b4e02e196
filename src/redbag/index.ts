// The digital red bag: a care-home resident's transfer pack to hospital and back (issue 5). Built on the
// record (as the caller, through the record's REST handler) and registered on the FHIR API as operations.
export { redBagOperations, progressOf } from './operations.ts';
export { prepareTransferPack, sendTransferPack, advanceTransfer, packOf, stepOf, isRedBagTask, TRANSITIONS, DEFAULT_RED_BAG_SETTINGS, type RedBagContext, type RedBagSettings, type StepInput, type PreparedPack } from './lifecycle.ts';
export { detailsFromParameters, detailsToParameters, BELONGING_CHOICES, type TransferDetails } from './details.ts';
export { sectionsOfPack, type PackRow } from './pack.ts';
export { transferPackPdf, type PrintStatus } from './print.ts';
export { setTransferPackDeliverer, type TransferPackDeliverer, type DeliveryTarget, type RedBagCourier } from './delivery.ts';
export { connectRedBagToMesh, type RedBagMeshOptions } from './overMesh.ts';
export { readRedBagMessage, redBagMessage, RedBagMessageRejected, type ReadMessage } from './messages.ts';
export type { SafetyFinding } from './checks.ts';
export type { RecordCall, Resource } from './recordCalls.ts';
export { RED_BAG_STEPS, RED_BAG_TASK_CODE, RED_BAG_EVENT, PACK_SENT_EVENT, STEP_EVENT, ACKNOWLEDGE_REMINDER_CODE, MANAGER_VISIT_CODE, BASELINE_DOMAINS, ODS_SYSTEM, type RedBagStep, type BaselineDomain } from './codes.ts';

/** The system client red bag messages from other deployments are filed as (in the audit trail). */
export const RED_BAG_CLIENT_ID = 'carebridge-red-bag';
