// Search indexing: the compiled extractors (extractIndex) must index exactly what the FHIRPath engine
// (extractIndexSlow) indexes, for every Synthea fixture resource and every demo dataset resource; plus
// hand-written cases for references, choice types, Period/Timing dates, name/address parts, compartments.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { definitions } from '../../src/record/definitions.ts';
import { extractIndex, extractIndexSlow, indexPlan, type IndexRows } from '../../src/record/indexing.ts';
import { MAX_DATE, parseDateRange } from '../../src/record/search/dateRange.ts';
import { buildDemoDataset } from '../../src/demo/index.ts';

type Any = Record<string, any>;

const TABLES = ['token', 'string', 'date', 'reference', 'number', 'quantity', 'uri'] as const;

/** Rows as sorted multisets per table; compartments keep their order (the first is resources.patient_id). */
function canonical(rows: IndexRows): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const table of TABLES) {
    out[table] = (rows[table] as object[]).map((r) => JSON.stringify(Object.entries(r).sort(([a], [b]) => (a < b ? -1 : 1)))).sort();
  }
  out.compartments = rows.compartments;
  return out;
}

/** Every resource whose compiled rows differ from the FHIRPath rows, with the first differing table. */
function disagreements(resources: Any[]): string[] {
  const out: string[] = [];
  for (const resource of resources) {
    const fast = canonical(extractIndex(resource));
    const slow = canonical(extractIndexSlow(resource));
    for (const key of Object.keys(slow)) {
      if (JSON.stringify(fast[key]) !== JSON.stringify(slow[key])) {
        out.push(`${resource.resourceType}/${resource.id} ${key}: compiled ${JSON.stringify(fast[key])} vs FHIRPath ${JSON.stringify(slow[key])}`);
        break;
      }
    }
  }
  return out;
}

function assertSameAsFhirPath(resource: Any): IndexRows {
  assert.deepEqual(disagreements([resource]), []);
  return extractIndex(resource);
}

// ---- fixtures -----------------------------------------------------------------------------------

const SYNTHEA = new URL('../fixtures/synthea/', import.meta.url);

interface Entry { fullUrl?: string; resource: Any }

function syntheaEntries(): Entry[] {
  return readdirSync(SYNTHEA)
    .filter((f) => f.endsWith('.json.gz'))
    .sort()
    .flatMap((f) => (JSON.parse(gunzipSync(readFileSync(new URL(f, SYNTHEA))).toString()) as { entry: Entry[] }).entry);
}

/** The same resources with urn:uuid references rewritten to Type/id, as a transaction stores them. */
function resolveReferences(entries: Entry[]): Any[] {
  const byFullUrl = new Map(entries.filter((e) => e.fullUrl).map((e) => [e.fullUrl!, `${e.resource.resourceType}/${e.resource.id}`]));
  return entries.map((e) =>
    JSON.parse(JSON.stringify(e.resource), (key, value) => (key === 'reference' && typeof value === 'string' ? (byFullUrl.get(value) ?? value) : value)),
  );
}

// ---- the compiled extractors agree with FHIRPath ------------------------------------------------------

describe('extractIndex: compiled extractors agree with the FHIRPath engine', () => {
  definitions();
  const entries = syntheaEntries();

  it('for every Synthea fixture resource as shipped (urn:uuid references)', () => {
    assert.ok(entries.length > 6000, `expected the 20 Synthea bundles, got ${entries.length} resources`);
    assert.deepEqual(disagreements(entries.map((e) => e.resource)).slice(0, 5), []);
  });

  it('for every Synthea fixture resource with references resolved to Type/id', () => {
    const resolved = resolveReferences(entries);
    assert.deepEqual(disagreements(resolved).slice(0, 5), []);
    // …and the Patient-typed reference parameters really were exercised.
    const patientRows = resolved.filter((r) => r.resourceType === 'Condition').flatMap((r) => extractIndex(r).reference.filter((x) => x.param === 'patient'));
    assert.ok(patientRows.length > 0 && patientRows.every((r) => r.targetType === 'Patient'));
  });

  it('for every demo dataset resource', () => {
    const resources = buildDemoDataset().bundle.entry.map((e) => e.resource as Any);
    assert.ok(resources.length > 100);
    assert.deepEqual(disagreements(resources).slice(0, 5), []);
  });

  it('compiles the common expression shapes and leaves the rest to FHIRPath', () => {
    const plan = (type: string) => new Map(indexPlan(type).map((p) => [p.code, p]));
    const observation = plan('Observation');
    for (const code of ['code', 'date', 'patient', 'subject', 'combo-code', 'value-quantity', 'value-date', 'value-string', '_tag']) {
      assert.ok(observation.get(code)?.extract, `Observation ${code} (${observation.get(code)?.expression}) should be compiled`);
    }
    const patient = plan('Patient');
    for (const code of ['phone', 'email', 'deceased']) {
      assert.equal(patient.get(code)?.extract, undefined, `Patient ${code} should use FHIRPath`);
    }
    assert.equal(observation.has('_id') || observation.has('_lastUpdated'), false, '_id and _lastUpdated are resources-table columns');
    let compiled = 0;
    let fallback = 0;
    for (const type of definitions().resourceTypes) for (const p of indexPlan(type)) p.extract ? compiled++ : fallback++;
    assert.ok(compiled > 20 * fallback, `${compiled} compiled vs ${fallback} FHIRPath`);
  });
});

// ---- hand-written cases -----------------------------------------------------------------------------

const LOINC = 'http://loinc.org';
const UCUM = 'http://unitsofmeasure.org';

function observation(extra: Any = {}): Any {
  return { resourceType: 'Observation', id: 'o1', status: 'final', code: { coding: [{ system: LOINC, code: '8867-4', display: 'Heart rate' }] }, ...extra };
}

const refs = (rows: IndexRows, param: string) => rows.reference.filter((r) => r.param === param).map(({ targetType, targetId, url }) => ({ targetType, targetId, url }));
const strings = (rows: IndexRows, param: string) => rows.string.filter((r) => r.param === param).map((r) => r.value);
const dates = (rows: IndexRows, param: string) => rows.date.filter((r) => r.param === param).map(({ lo, hi }) => ({ lo, hi }));
const tokens = (rows: IndexRows, param: string) => rows.token.filter((r) => r.param === param).map(({ system, code, text }) => ({ system, code, text }));
const quantities = (rows: IndexRows, param: string) => rows.quantity.filter((r) => r.param === param).map(({ param: _, ...q }) => q);
const range = (value: string) => parseDateRange(value)!;

describe('extractIndex: where(resolve() is Patient) references', () => {
  it('indexes a relative Patient reference (also versioned) and puts the resource in that compartment', () => {
    const rows = assertSameAsFhirPath(observation({ subject: { reference: 'Patient/p1' } }));
    assert.deepEqual(refs(rows, 'patient'), [{ targetType: 'Patient', targetId: 'p1', url: 'Patient/p1' }]);
    assert.deepEqual(refs(rows, 'subject'), [{ targetType: 'Patient', targetId: 'p1', url: 'Patient/p1' }]);
    assert.deepEqual(rows.compartments, ['p1']);

    const versioned = assertSameAsFhirPath(observation({ subject: { reference: 'Patient/p1/_history/3' } }));
    assert.deepEqual(refs(versioned, 'patient'), [{ targetType: 'Patient', targetId: 'p1', url: 'Patient/p1/_history/3' }]);
  });

  it('skips urn:uuid, contained and non-Patient references', () => {
    for (const reference of ['urn:uuid:0c1e7a55-5d0e-4b52-8d7e-2a9b8f7c6d01', '#p1', 'Group/g1']) {
      const rows = assertSameAsFhirPath(observation({ subject: { reference } }));
      assert.deepEqual(refs(rows, 'patient'), [], reference);
      assert.equal(refs(rows, 'subject').length, 1, reference);
    }
    const rows = extractIndex(observation({ subject: { reference: 'urn:uuid:0c1e7a55-5d0e-4b52-8d7e-2a9b8f7c6d01' } }));
    assert.deepEqual(refs(rows, 'subject'), [{ targetType: null, targetId: null, url: 'urn:uuid:0c1e7a55-5d0e-4b52-8d7e-2a9b8f7c6d01' }]);
    assert.deepEqual(rows.compartments, []);
  });

  it('indexes an absolute Patient URL by its type segment (the FHIRPath engine takes "https:" as the type)', () => {
    const url = 'https://elsewhere.example/fhir/Patient/p2';
    const rows = extractIndex(observation({ subject: { reference: url } }));
    assert.deepEqual(refs(rows, 'patient'), [{ targetType: 'Patient', targetId: 'p2', url }]);
    assert.deepEqual(refs(extractIndexSlow(observation({ subject: { reference: url } })), 'patient'), []);
    // Condition's compartment is defined through its `patient` parameter, so this decides membership.
    const condition = { resourceType: 'Condition', id: 'c1', subject: { reference: url }, code: { text: 'Falls' } };
    assert.deepEqual(extractIndex(condition).compartments, ['p2']);
    assert.deepEqual(extractIndexSlow(condition).compartments, []);
  });

  it('matches conditional references and other target types the way the engine does', () => {
    const conditional = assertSameAsFhirPath(observation({ subject: { reference: 'Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|9990000018' } }));
    assert.deepEqual(refs(conditional, 'patient'), [{ targetType: null, targetId: null, url: 'Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|9990000018' }]);

    const encounter = assertSameAsFhirPath({
      resourceType: 'Encounter',
      id: 'e1',
      status: 'finished',
      class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'AMB' },
      subject: { reference: 'Patient/p1' },
      participant: [{ individual: { reference: 'Practitioner/d1' } }, { individual: { reference: 'RelatedPerson/r1' } }, {}],
    });
    assert.deepEqual(refs(encounter, 'practitioner').map((r) => r.url), ['Practitioner/d1']);
    assert.deepEqual(refs(encounter, 'participant').map((r) => r.url), ['Practitioner/d1', 'RelatedPerson/r1']);
  });
});

describe('extractIndex: choice types', () => {
  it('value[x] as Quantity, CodeableConcept, string, dateTime and Period', () => {
    const quantity = assertSameAsFhirPath(observation({ valueQuantity: { value: 72, unit: 'beats/min', system: UCUM, code: '/min' } }));
    assert.deepEqual(quantities(quantity, 'value-quantity'), [{ value: 72, system: UCUM, code: '/min', unit: 'beats/min' }]);
    assert.deepEqual(quantities(quantity, 'combo-value-quantity'), [{ value: 72, system: UCUM, code: '/min', unit: 'beats/min' }]);
    assert.deepEqual(tokens(quantity, 'value-concept'), []);
    assert.deepEqual(dates(quantity, 'value-date'), []);

    const concept = assertSameAsFhirPath(observation({ valueCodeableConcept: { coding: [{ system: 'http://snomed.info/sct', code: '10828004', display: 'Positive' }], text: 'Positive result' } }));
    assert.deepEqual(tokens(concept, 'value-concept'), [
      { system: 'http://snomed.info/sct', code: '10828004', text: 'positive' },
      { system: null, code: null, text: 'positive result' },
    ]);
    assert.deepEqual(strings(concept, 'value-string'), ['positive result']); // (value as CodeableConcept).text
    assert.deepEqual(quantities(concept, 'value-quantity'), []);

    const text = assertSameAsFhirPath(observation({ valueString: 'Trace' }));
    assert.deepEqual(strings(text, 'value-string'), ['trace']);
    assert.deepEqual(tokens(text, 'value-concept'), []);

    const when = assertSameAsFhirPath(observation({ valueDateTime: '2024-03-01' }));
    assert.deepEqual(dates(when, 'value-date'), [range('2024-03-01')]);
    const period = assertSameAsFhirPath(observation({ valuePeriod: { start: '2024-03-01', end: '2024-03-05' } }));
    assert.deepEqual(dates(period, 'value-date'), [{ lo: range('2024-03-01').lo, hi: range('2024-03-05').hi }]);
  });

  it('medication[x] as CodeableConcept or Reference', () => {
    const base = { resourceType: 'MedicationRequest', id: 'm1', status: 'active', intent: 'order', subject: { reference: 'Patient/p1' } };
    const coded = assertSameAsFhirPath({ ...base, medicationCodeableConcept: { coding: [{ system: 'https://dmd.nhs.uk', code: '39720311000001101' }] } });
    assert.deepEqual(tokens(coded, 'code'), [{ system: 'https://dmd.nhs.uk', code: '39720311000001101', text: null }]);
    assert.deepEqual(refs(coded, 'medication'), []);
    const referenced = assertSameAsFhirPath({ ...base, medicationReference: { reference: 'Medication/med1' } });
    assert.deepEqual(tokens(referenced, 'code'), []);
    assert.deepEqual(refs(referenced, 'medication'), [{ targetType: 'Medication', targetId: 'med1', url: 'Medication/med1' }]);
  });

  it('onset.as(…) behaves as the engine does: as() returns its input unchanged', () => {
    const rows = assertSameAsFhirPath({ resourceType: 'Condition', id: 'c1', subject: { reference: 'Patient/p1' }, onsetDateTime: '2020-05-01' });
    assert.deepEqual(dates(rows, 'onset-date'), [range('2020-05-01')]);
    assert.deepEqual(strings(rows, 'onset-info'), ['2020-05-01']); // Condition.onset.as(string) keeps the dateTime
  });
});

describe('extractIndex: dates from Period and Timing', () => {
  it('indexes dateTime, instant, closed and open Periods, and Timing events plus bounds', () => {
    const dateTime = assertSameAsFhirPath(observation({ effectiveDateTime: '2024-01-01T10:00:00Z' }));
    assert.deepEqual(dates(dateTime, 'date'), [range('2024-01-01T10:00:00Z')]);
    const instant = assertSameAsFhirPath(observation({ effectiveInstant: '2024-01-01T10:00:00.123Z' }));
    assert.deepEqual(dates(instant, 'date'), [range('2024-01-01T10:00:00.123Z')]);

    const closed = assertSameAsFhirPath(observation({ effectivePeriod: { start: '2024-01-01T10:00:00Z', end: '2024-01-02' } }));
    assert.deepEqual(dates(closed, 'date'), [{ lo: range('2024-01-01T10:00:00Z').lo, hi: range('2024-01-02').hi }]);
    const open = assertSameAsFhirPath(observation({ effectivePeriod: { start: '2024-01-01' } }));
    assert.deepEqual(dates(open, 'date'), [{ lo: range('2024-01-01').lo, hi: MAX_DATE }]);

    const timing = assertSameAsFhirPath(observation({ effectiveTiming: { event: ['2024-01-05', '2024-01-03T08:00:00Z'], repeat: { boundsPeriod: { start: '2024-02-01', end: '2024-02-28' } } } }));
    assert.deepEqual(dates(timing, 'date'), [
      { lo: range('2024-01-03T08:00:00Z').lo, hi: range('2024-01-05').hi },
      { lo: range('2024-02-01').lo, hi: range('2024-02-28').hi },
    ]);

    const dosage = assertSameAsFhirPath({
      resourceType: 'MedicationRequest', id: 'm1', status: 'active', intent: 'order', subject: { reference: 'Patient/p1' },
      dosageInstruction: [{ timing: { event: ['2024-04-01T08:00:00Z', '2024-04-02T08:00:00Z'] } }],
    });
    assert.deepEqual(dates(dosage, 'date'), [range('2024-04-01T08:00:00Z'), range('2024-04-02T08:00:00Z')]);
  });
});

describe('extractIndex: HumanName and Address string parts', () => {
  it('indexes every part, folded for case and accents', () => {
    const rows = assertSameAsFhirPath({
      resourceType: 'Patient',
      id: 'p1',
      name: [{ use: 'official', family: 'Ó Briain', given: ['Siobhán', 'Mary'], prefix: ['Ms'], text: 'Ms Siobhán Mary Ó Briain' }],
      address: [{ line: ['1 High Street', 'Flat 2'], city: 'Northtown', district: 'Northshire', postalCode: 'NX1 1AA', country: 'GB' }],
    });
    assert.deepEqual(strings(rows, 'name'), ['o briain', 'siobhan', 'mary', 'ms', 'ms siobhan mary o briain']);
    assert.deepEqual(strings(rows, 'family'), ['o briain']);
    assert.deepEqual(strings(rows, 'given'), ['siobhan', 'mary']);
    assert.deepEqual(strings(rows, 'address'), ['1 high street', 'flat 2', 'northtown', 'northshire', 'nx1 1aa', 'gb']);
    assert.deepEqual(strings(rows, 'address-city'), ['northtown']);
    assert.deepEqual(strings(rows, 'address-postalcode'), ['nx1 1aa']);
    assert.equal(rows.string.find((r) => r.param === 'family')?.raw, 'Ó Briain');
  });
});

describe('extractIndex: patient compartments', () => {
  it('collects every Patient the compartment definition names, once each', () => {
    // (Order follows the parameters' definition order, and assertSameAsFhirPath checks it is unchanged.)
    const obs = assertSameAsFhirPath(observation({ subject: { reference: 'Patient/p1' }, performer: [{ reference: 'Practitioner/d1' }, { reference: 'Patient/p2' }, { reference: 'Patient/p1' }] }));
    assert.deepEqual([...obs.compartments].sort(), ['p1', 'p2']);
    const patient = assertSameAsFhirPath({ resourceType: 'Patient', id: 'p1', link: [{ other: { reference: 'Patient/p0' }, type: 'replaces' }] });
    assert.deepEqual(patient.compartments, ['p1', 'p0']);
    const condition = assertSameAsFhirPath({ resourceType: 'Condition', id: 'c1', subject: { reference: 'Patient/p1' }, asserter: { reference: 'Patient/p3' } });
    assert.deepEqual(condition.compartments, ['p1', 'p3']);
    const organization = assertSameAsFhirPath({ resourceType: 'Organization', id: 'org1', name: 'Northshire Council' });
    assert.deepEqual(organization.compartments, []);
  });
});

describe('extractIndex: shapes the compiled code leaves to FHIRPath', () => {
  it('primitive extensions, de-duplicated unions and FHIRPath-only parameters index as before', () => {
    const extension = { extension: [{ url: 'http://hl7.org/fhir/StructureDefinition/patient-birthTime', valueDateTime: '1950-01-01T08:30:00Z' }] };
    assertSameAsFhirPath({
      resourceType: 'Patient',
      id: 'p1',
      birthDate: '1950-01-01',
      _birthDate: extension,
      name: [{ family: 'Smith', given: ['Ann', 'Bea'], _given: [null, extension] }],
      telecom: [{ system: 'phone', value: '01632 960000' }, { system: 'email', value: 'ann@example.org' }],
      deceasedBoolean: false,
      gender: 'female',
    });

    const heartRate = { system: LOINC, code: '8867-4', display: 'Heart rate' };
    const rows = assertSameAsFhirPath(observation({
      component: [
        { code: { coding: [heartRate] }, valueQuantity: { value: 1, unit: 'g' } },
        { code: { coding: [{ system: LOINC, code: '8480-6' }] }, valueQuantity: { value: 1.005, unit: 'g' } },
      ],
    }));
    assert.equal(tokens(rows, 'combo-code').length, 2); // Observation.code | Observation.component.code: the repeat goes
    assert.equal(tokens(rows, 'component-code').length, 2);
    assert.equal(quantities(rows, 'combo-value-quantity').length, 1); // FHIRPath equality treats 1 g and 1.005 g as equal
  });
});
