// The few FHIRPath invariants the record still enforces, hand-written in JavaScript.
//
// The R4 definitions carry ~200 error-level invariants (obs-6, pat-1, …) as FHIRPath expressions. Evaluating
// them is what made @medplum/core's validator cost ~0.7 ms per resource: interpreting an expression per element
// costs more than the whole structural walk. The record validates structure first (unknown elements, JSON
// kinds, cardinality, formats, required bindings), which is where malformed data shows up, and keeps only
// invariants that are cheap presence tests and catch mistakes clients really make. Each is attached wherever
// the definitions attach it (an element or type whose `constraint` lists the key), with the definition's own
// wording in the message. Besides the structural ones, the clinical-status rules of Condition and
// AllergyIntolerance and the Timing unit rules are kept: they are as cheap, and getting them wrong is a
// clinical hazard (an allergy entered in error but still active, a dose "for 5" with no unit). Invariants that compare values across the resource (per-1 start <= end, ref-1
// contained references, bdl-7 unique fullUrls, que-2 unique linkIds, txt-1 narrative HTML, …) are not checked.

type Obj = Record<string, unknown>;

const present = (o: Obj, name: string) => o[name] !== undefined || o[`_${name}`] !== undefined;

/** A choice element (value[x]) is present under any of its JSON names (valueString, _valueString, …). */
function hasChoice(o: Obj, base: string): boolean {
  for (const key in o) {
    const start = key.charCodeAt(0) === 95 /* _ */ ? 1 : 0;
    const next = key.charCodeAt(start + base.length);
    if (next >= 65 && next <= 90 && key.startsWith(base, start) && o[key] !== undefined) return true;
  }
  return false;
}

function containedHave(o: Obj, test: (c: Obj) => boolean): boolean {
  const contained = o.contained;
  if (!Array.isArray(contained)) return false;
  for (const c of contained) if (c !== null && typeof c === 'object' && test(c as Obj)) return true;
  return false;
}

const metaHas = (c: Obj, name: string) => {
  const meta = c.meta;
  return meta !== null && typeof meta === 'object' && (meta as Obj)[name] !== undefined;
};

/** Does a CodeableConcept have a coding with this system and one of these codes? */
function hasCoding(cc: unknown, system: string, codes: readonly string[]): boolean {
  if (cc === null || typeof cc !== 'object') return false;
  const coding = (cc as Obj).coding;
  if (!Array.isArray(coding)) return false;
  for (const c of coding) {
    if (c !== null && typeof c === 'object' && (c as Obj).system === system && codes.includes((c as Obj).code as string)) return true;
  }
  return false;
}

const CONDITION_CLINICAL = 'http://terminology.hl7.org/CodeSystem/condition-clinical';
const CONDITION_VERIFICATION = 'http://terminology.hl7.org/CodeSystem/condition-ver-status';
const ALLERGY_VERIFICATION = 'http://terminology.hl7.org/CodeSystem/allergyintolerance-verification';
const ENTERED_IN_ERROR = ['entered-in-error'];

/** key → does the invariant hold for this object (the element or resource the definitions attach it to)? */
export const INVARIANTS: Readonly<Record<string, (o: Obj) => boolean>> = {
  // Extension: "Must have either extensions or value[x], not both"
  'ext-1': (o) => (o.extension !== undefined) !== hasChoice(o, 'value'),
  // Patient.contact: "SHALL at least contain a contact's details or a reference to an organization"
  'pat-1': (o) => o.name !== undefined || o.telecom !== undefined || o.address !== undefined || o.organization !== undefined,
  // Observation (and component): "dataAbsentReason SHALL only be present if Observation.value[x] is not present"
  'obs-6': (o) => o.dataAbsentReason === undefined || !hasChoice(o, 'value'),
  // Quantity and its kin (Age, Duration, …): "If a code for the unit is present, the system SHALL also be present"
  'qty-3': (o) => !present(o, 'code') || present(o, 'system'),
  // Attachment: "If the Attachment has data, it SHALL have a contentType"
  'att-1': (o) => !present(o, 'data') || present(o, 'contentType'),
  // Timing.repeat: "if there's a duration, there needs to be duration units", and the same for period
  'tim-1': (o) => !present(o, 'duration') || present(o, 'durationUnit'),
  'tim-2': (o) => !present(o, 'period') || present(o, 'periodUnit'),
  // Condition: "If condition is abated, then clinicalStatus must be either inactive, resolved, or remission"
  'con-4': (o) => !hasChoice(o, 'abatement') || hasCoding(o.clinicalStatus, CONDITION_CLINICAL, ['resolved', 'remission', 'inactive']),
  // Condition: "If verificationStatus is entered-in-error, clinicalStatus SHALL NOT be present"
  'con-5': (o) => o.clinicalStatus === undefined || !hasCoding(o.verificationStatus, CONDITION_VERIFICATION, ENTERED_IN_ERROR),
  // AllergyIntolerance: "clinicalStatus SHALL be present if verificationStatus is not entered-in-error"
  'ait-1': (o) => o.clinicalStatus !== undefined || hasCoding(o.verificationStatus, ALLERGY_VERIFICATION, ENTERED_IN_ERROR),
  // AllergyIntolerance: "clinicalStatus SHALL NOT be present if verification Status is entered-in-error"
  'ait-2': (o) => o.clinicalStatus === undefined || !hasCoding(o.verificationStatus, ALLERGY_VERIFICATION, ENTERED_IN_ERROR),
  // DomainResource: "If the resource is contained in another resource, it SHALL NOT contain nested Resources"
  'dom-2': (o) => !containedHave(o, (c) => c.contained !== undefined),
  // DomainResource: "… it SHALL NOT have a meta.versionId or a meta.lastUpdated"
  'dom-4': (o) => !containedHave(o, (c) => metaHas(c, 'versionId') || metaHas(c, 'lastUpdated')),
};
