// The codes a red bag is written with. Local code systems (https://carebridge.example/…) stand where no
// national one exists yet; UK Core record-standard headings and PRSB section names are used where they do.

export const ODS_SYSTEM = 'https://fhir.nhs.uk/Id/ods-organization-code';
export const NHS_NUMBER_SYSTEM = 'https://fhir.nhs.uk/Id/nhs-number';
export const SNOMED = 'http://snomed.info/sct';
export const LOINC = 'http://loinc.org';
export const UK_CORE_HEADINGS = 'https://fhir.hl7.org.uk/CodeSystem/UKCore-RecordStandardHeadings';
export const RED_BAG_SECTION = 'https://carebridge.example/CodeSystem/red-bag-section';
export const RED_BAG_TASK = 'https://carebridge.example/CodeSystem/red-bag-task';
export const RED_BAG_STATUS = 'https://carebridge.example/CodeSystem/red-bag-status';
export const RED_BAG_IDENTIFIER = 'https://carebridge.example/red-bag';
/** On the pack's Composition: the hospital it is for. */
export const DESTINATION_EXTENSION = 'https://carebridge.example/fhir/StructureDefinition/red-bag-destination';

/** The lifecycle Task; src/access/relationships.ts gives the receiving hospital access through this code. */
export const RED_BAG_TASK_CODE = { system: RED_BAG_TASK, code: 'red-bag', display: 'Red bag: care home to hospital transfer' } as const;
export const ACKNOWLEDGE_REMINDER_CODE = { system: RED_BAG_TASK, code: 'acknowledge-red-bag', display: 'Acknowledge the red bag' } as const;
export const MANAGER_VISIT_CODE = { system: RED_BAG_TASK, code: 'manager-visit', display: 'Care home manager visits the resident in hospital' } as const;

/** The pack as a document: LOINC "Transfer summary note". */
export const TRANSFER_PACK_TYPE = { system: LOINC, code: '18761-7', display: 'Transfer summary note' } as const;
/** SNOMED CT "Review of medication", the Procedure that dates a medication review. */
export const MEDICATION_REVIEW = { system: SNOMED, code: '182836005', display: 'Review of medication' } as const;

/**
 * Steps of a red bag after it is sent, in order, with the Task.status each one means. 'not-delivered' is
 * no person's step: MESH reported that the pack never reached a hospital on another system (H-042). The
 * Task stays open ('requested'), so the home still has it in its list, and it leaves that state only when
 * the home sends it again ('sent') or the hospital acknowledges it after all ('received').
 */
export const RED_BAG_STEPS = {
  sent: { status: 'requested', display: 'Sent to hospital' },
  'not-delivered': { status: 'requested', display: 'Not received by the hospital' },
  received: { status: 'accepted', display: 'Received by the hospital' },
  'in-hospital': { status: 'in-progress', display: 'In hospital' },
  'discharge-summary-attached': { status: 'in-progress', display: 'Discharge summary attached' },
  returned: { status: 'in-progress', display: 'Returned to the care home' },
  closed: { status: 'completed', display: 'Closed' },
} as const;
export type RedBagStep = keyof typeof RED_BAG_STEPS;
/** The steps a person (or the other side's system) takes; sending and non-delivery are not among them. */
export type TransferStep = Exclude<RedBagStep, 'sent' | 'not-delivered'>;

/** The belongings checklist offered on screen (free text adds anything else). */
export const BELONGINGS = [
  'Glasses',
  'Hearing aids',
  'Dentures',
  'Walking aid',
  'Clothes for discharge',
  'Footwear',
  'Medicines in original packaging and MAR chart',
  'Mobile phone and charger',
] as const;

/** Baseline "when well" domains (PRSB care-home-to-hospital transfer). */
export const BASELINE_DOMAINS = {
  mobility: 'Mobility',
  cognition: 'Cognition',
  communication: 'Communication',
  continence: 'Continence',
  eating: 'Eating and drinking',
  skin: 'Skin',
} as const;
export type BaselineDomain = keyof typeof BASELINE_DOMAINS;

/** MessageHeader.eventCoding of red bag messages between deployments (over MESH). */
export const RED_BAG_EVENT = 'https://carebridge.example/CodeSystem/red-bag-event';
export const PACK_SENT_EVENT = { system: RED_BAG_EVENT, code: 'red-bag-sent', display: 'Red bag sent to hospital' } as const;
export const STEP_EVENT = { system: RED_BAG_EVENT, code: 'red-bag-step', display: 'Red bag moved on a step' } as const;
/** MessageHeader source and destination endpoints name organisations by ODS code. */
export const ODS_ENDPOINT = 'urn:nhs-uk:addressing:ods:';
