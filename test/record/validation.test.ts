import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { validateResource, validateUkCore, type ValidateOptions } from '../../src/record/validation.ts';
import { FhirError, type OutcomeIssue } from '../../src/record/outcome.ts';
import { generateSyntheticNhsNumber, isValidNhsNumber, NHS_NUMBER_SYSTEM, SYNTHETIC_TAG } from '../../src/record/nhsNumber.ts';

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

describe('validateResource: structure (via @medplum/core)', () => {
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

  it('enforces FHIRPath invariants (pat-1)', () => {
    const err = rejects(patient({ contact: [{ gender: 'male' }] }));
    assert.equal(err.status, 400);
    const i = issueAt(err, 'Patient.contact[0]');
    assert.equal(i.code, 'invariant');
    assert.match(i.diagnostics!, /pat-1/);
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

describe('validateResource: FHIR JSON rules medplum lets through', () => {
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
