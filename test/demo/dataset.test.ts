// The synthetic demo dataset: deterministic, synthetic-and-marked-as-such (H-002), structurally valid R4,
// referentially closed, and its NEWS2 totals are what the scorer says (H-001).
import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import { validateResource } from '@medplum/core';
import { definitions } from '../../src/record/definitions.ts';
import { isSyntheticNhsNumber, NHS_NUMBER_SYSTEM, SYNTHETIC_TAG } from '../../src/record/nhsNumber.ts';
import { buildDemoDataset, DEFAULT_DEMO_OPTIONS, NHS_NUMBER_VERIFICATION_URL, type FhirResource } from '../../src/demo/index.ts';
import { news2Trend, scoreNews2, type Acvpu } from '../../src/monitoring/index.ts';

const DEFAULT = buildDemoDataset();
const resources = DEFAULT.bundle.entry.map((e) => e.resource);
const byRef = new Map(resources.map((r) => [`${r.resourceType}/${r.id}`, r]));
const ofType = (type: string, list: FhirResource[] = resources) => list.filter((r) => r.resourceType === type);

type Any = any;

/** Every { reference: "..." } anywhere inside a value. */
function references(value: unknown, out: string[] = []): string[] {
  if (Array.isArray(value)) for (const v of value) references(v, out);
  else if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      if (k === 'reference' && typeof v === 'string') out.push(v);
      else references(v, out);
    }
  }
  return out;
}

/** Every Coding (anything with system + code) anywhere inside a value. */
function codings(value: unknown, out: { system: string; code: string }[] = []): { system: string; code: string }[] {
  if (Array.isArray(value)) for (const v of value) codings(v, out);
  else if (value && typeof value === 'object') {
    const o = value as Record<string, unknown>;
    if (typeof o.system === 'string' && typeof o.code === 'string') out.push({ system: o.system, code: o.code });
    for (const v of Object.values(o)) codings(v, out);
  }
  return out;
}

// Verhoeff check digit, used by SNOMED CT (and so dm+d) identifiers: catches mistyped codes.
const D = [
  [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 2, 3, 4, 0, 6, 7, 8, 9, 5], [2, 3, 4, 0, 1, 7, 8, 9, 5, 6], [3, 4, 0, 1, 2, 8, 9, 5, 6, 7],
  [4, 0, 1, 2, 3, 9, 5, 6, 7, 8], [5, 9, 8, 7, 6, 0, 4, 3, 2, 1], [6, 5, 9, 8, 7, 1, 0, 4, 3, 2], [7, 6, 5, 9, 8, 2, 1, 0, 4, 3],
  [8, 7, 6, 5, 9, 3, 2, 1, 0, 4], [9, 8, 7, 6, 5, 4, 3, 2, 1, 0],
];
const P = [
  [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 5, 7, 6, 2, 8, 3, 0, 9, 4], [5, 8, 0, 3, 7, 9, 6, 1, 4, 2], [8, 9, 1, 6, 0, 4, 3, 5, 2, 7],
  [9, 4, 5, 3, 1, 2, 6, 8, 7, 0], [4, 2, 8, 6, 5, 7, 3, 9, 0, 1], [2, 7, 9, 3, 8, 0, 6, 4, 1, 5], [7, 0, 4, 6, 9, 1, 3, 2, 5, 8],
];
function verhoeffValid(code: string): boolean {
  let c = 0;
  const digits = code.split('').reverse().map(Number);
  for (let i = 0; i < digits.length; i++) c = D[c][P[i % 8][digits[i]]];
  return c === 0;
}

describe('demo dataset: determinism', () => {
  it('same seed gives byte-identical JSON', () => {
    assert.equal(JSON.stringify(buildDemoDataset({ seed: 7 })), JSON.stringify(buildDemoDataset({ seed: 7 })));
    assert.equal(JSON.stringify(buildDemoDataset()), JSON.stringify(DEFAULT));
    assert.equal(JSON.stringify(buildDemoDataset({ ...DEFAULT_DEMO_OPTIONS })), JSON.stringify(DEFAULT));
  });

  it('different seeds give different data', () => {
    const a = JSON.stringify(buildDemoDataset({ seed: 1 }).bundle.entry);
    const b = JSON.stringify(buildDemoDataset({ seed: 2 }).bundle.entry);
    assert.notEqual(a, b);
  });

  it('uses neither the clock nor Math.random', (t) => {
    t.mock.method(Math, 'random', () => {
      throw new Error('Math.random used');
    });
    t.mock.method(Date, 'now', () => {
      throw new Error('Date.now used');
    });
    assert.doesNotThrow(() => buildDemoDataset({ seed: 3, careHomes: 1, residentsPerHome: 3, observationDays: 2, inpatients: 1 }));
  });

  it('the reference date moves the whole dataset, and nothing is dated after it', () => {
    const later = buildDemoDataset({ referenceDate: '2027-03-01T12:00:00Z' });
    assert.equal(later.bundle.timestamp, '2027-03-01T12:00:00Z');
    for (const { bundle } of [DEFAULT, later]) {
      const limit = Date.parse(bundle.timestamp);
      for (const e of bundle.entry) {
        const r = e.resource as Any;
        for (const t of [r.effectiveDateTime, r.period?.start, r.authoredOn, r.recordedDate, r.dateTime, r.birthDate, r.onsetDateTime]) {
          if (t) assert.ok(Date.parse(t) <= limit, `${r.resourceType}/${r.id}: ${t} is after ${bundle.timestamp}`);
        }
      }
    }
  });
});

describe('demo dataset: a transaction of idempotent PUTs', () => {
  it('is a transaction bundle of PUT Type/id entries with no fullUrl', () => {
    assert.equal(DEFAULT.bundle.resourceType, 'Bundle');
    assert.equal(DEFAULT.bundle.type, 'transaction');
    const urls = new Set<string>();
    for (const e of DEFAULT.bundle.entry) {
      assert.equal(e.request.method, 'PUT');
      assert.equal(e.request.url, `${e.resource.resourceType}/${e.resource.id}`);
      assert.ok(!('fullUrl' in e));
      assert.match(e.resource.id, /^[A-Za-z0-9\-.]{1,64}$/);
      assert.ok(!urls.has(e.request.url), `duplicate ${e.request.url}`);
      urls.add(e.request.url);
    }
  });

  it('every reference is a plain Type/id that points at a resource in the bundle (or #id at one it contains)', () => {
    let count = 0;
    for (const r of resources) {
      for (const target of references(r)) {
        count++;
        if (target.startsWith('#')) {
          assert.ok((r as Any).contained?.some((c: Any) => `#${c.id}` === target), `${r.resourceType}/${r.id} refers to missing contained ${target}`);
          continue;
        }
        assert.match(target, /^[A-Z][A-Za-z]+\/[A-Za-z0-9\-.]{1,64}$/, `${r.resourceType}/${r.id} → ${target}`);
        assert.ok(byRef.has(target), `${r.resourceType}/${r.id} refers to missing ${target}`);
      }
    }
    assert.ok(count > 5_000, `only ${count} references`);
  });
});

describe('demo dataset: synthetic and marked as such (H-002)', () => {
  it('every resource, and the bundle, carries the HTEST tag', () => {
    const isTagged = (meta: Any) => meta?.tag?.some((t: Any) => t.system === SYNTHETIC_TAG.system && t.code === SYNTHETIC_TAG.code);
    assert.ok(isTagged(DEFAULT.bundle.meta));
    for (const r of resources) assert.ok(isTagged(r.meta), `${r.resourceType}/${r.id} lacks HTEST`);
  });

  it('every NHS number is valid, in the 999 range, unique, and marked verified', () => {
    const seen = new Set<string>();
    for (const p of ofType('Patient') as Any[]) {
      const ids = p.identifier.filter((i: Any) => i.system === NHS_NUMBER_SYSTEM);
      assert.equal(ids.length, 1);
      const nhs = ids[0].value as string;
      assert.ok(isSyntheticNhsNumber(nhs), `${nhs} is not a valid 999-range NHS number`);
      assert.ok(!seen.has(nhs), `duplicate NHS number ${nhs}`);
      seen.add(nhs);
      const ext = ids[0].extension.find((x: Any) => x.url === NHS_NUMBER_VERIFICATION_URL);
      assert.deepEqual(ext.valueCodeableConcept.coding[0], {
        system: 'https://fhir.hl7.org.uk/CodeSystem/UKCore-NHSNumberVerificationStatusEngland',
        code: '01',
        display: 'Number present and verified',
      });
    }
    // Across seeds and bigger datasets too.
    for (const p of ofType('Patient', buildDemoDataset({ seed: 5, careHomes: 10, residentsPerHome: 40, observationDays: 0 }).bundle.entry.map((e) => e.resource)) as Any[]) {
      assert.ok(isSyntheticNhsNumber(p.identifier[0].value));
    }
  });

  it('addresses are in the fictional NX postcode area and phone numbers in Ofcom drama ranges', () => {
    for (const r of resources as Any[]) {
      for (const a of [r.address].flat().filter(Boolean)) assert.match(a.postalCode, /^NX\d \d[ABD-HJLNP-UW-Z]{2}$/, `${r.resourceType}/${r.id}`);
      for (const t of r.telecom ?? []) assert.match(t.value, /^(01632 960\d{3}|07700 900\d{3})$/, `${r.resourceType}/${r.id}`);
    }
  });
});

describe('demo dataset: structurally valid FHIR R4', () => {
  before(() => definitions());

  it('every entry resource passes @medplum/core validateResource', () => {
    const failures: string[] = [];
    for (const r of resources) {
      try {
        validateResource(r as never);
      } catch (e) {
        failures.push(`${r.resourceType}/${r.id}: ${(e as Error).message}`);
      }
    }
    assert.deepEqual(failures.slice(0, 10), []);
  });

  it('a smaller dataset with a different seed is valid too', () => {
    const small = buildDemoDataset({ seed: 11, careHomes: 2, residentsPerHome: 4, inpatients: 2, observationDays: 2 });
    for (const e of small.bundle.entry) assert.doesNotThrow(() => validateResource(e.resource as never), `${e.resource.resourceType}/${e.resource.id}`);
  });

  it('SNOMED CT and dm+d codes have valid Verhoeff check digits', () => {
    const seen = new Set<string>();
    for (const c of codings(resources)) {
      if (c.system !== 'http://snomed.info/sct' && c.system !== 'https://dmd.nhs.uk') continue;
      if (seen.has(c.code)) continue;
      seen.add(c.code);
      assert.ok(/^\d{6,18}$/.test(c.code) && verhoeffValid(c.code), `${c.system} ${c.code} has a bad check digit`);
    }
    assert.ok(seen.size > 20);
  });
});

describe('demo dataset: content', () => {
  it('the default summary counts each resource type in the bundle', () => {
    const counted: Record<string, number> = {};
    for (const r of resources) counted[r.resourceType] = (counted[r.resourceType] ?? 0) + 1;
    assert.deepEqual(DEFAULT.summary, counted);
    assert.equal(DEFAULT.summary.Patient, 24);
    assert.equal(DEFAULT.summary.Observation, 24 * 14 * 7);
    assert.equal(DEFAULT.summary.Encounter, 3);
    assert.equal(DEFAULT.summary.Organization, 3 + 5);
    assert.equal(DEFAULT.summary.Location, 3 + 1 + 3);
  });

  for (const options of [
    { seed: 4, careHomes: 2, residentsPerHome: 5, inpatients: 1, observationDays: 3 },
    { seed: 8, careHomes: 1, residentsPerHome: 1, inpatients: 1, observationDays: 1 },
    { seed: 9, careHomes: 4, residentsPerHome: 3, inpatients: 0, observationDays: 0 },
  ]) {
    it(`counts match options ${JSON.stringify(options)}`, () => {
      const { bundle, summary } = buildDemoDataset(options);
      const all = bundle.entry.map((e) => e.resource);
      const residents = options.careHomes * options.residentsPerHome;
      assert.equal(summary.Patient, residents);
      for (const type of ['EpisodeOfCare', 'CareTeam', 'RelatedPerson', 'CarePlan']) assert.equal(summary[type], residents, type);
      assert.equal(summary.Observation ?? 0, residents * options.observationDays * 7);
      assert.equal(summary.Encounter ?? 0, options.inpatients);
      assert.equal(summary.Organization, options.careHomes + 5);
      assert.equal(ofType('Location', all).filter((l: Any) => l.physicalType.coding[0].code === 'bu').length, options.careHomes);
      assert.equal(bundle.entry.length, Object.values(summary).reduce((a, b) => a + b, 0));
    });
  }

  it('rejects impossible options', () => {
    assert.throws(() => buildDemoDataset({ careHomes: 0 }), /careHomes/);
    assert.throws(() => buildDemoDataset({ residentsPerHome: 2.5 }), /residentsPerHome/);
    assert.throws(() => buildDemoDataset({ careHomes: 1, residentsPerHome: 2, inpatients: 3 }), /inpatients/);
    assert.throws(() => buildDemoDataset({ observationDays: -1 }), /observationDays/);
    assert.throws(() => buildDemoDataset({ seed: Number.NaN }), /seed/);
    assert.throws(() => buildDemoDataset({ referenceDate: 'yesterday' }), /referenceDate/);
  });

  it('organisations carry the expected ODS codes and types', () => {
    const ods = (r: Any) => r.identifier?.find((i: Any) => i.system === 'https://fhir.nhs.uk/Id/ods-organization-code')?.value;
    const orgs = ofType('Organization') as Any[];
    const council = orgs.find((o) => ods(o) === 'LA918');
    assert.equal(council.name, 'Northshire County Council');
    assert.equal(council.type[0].coding[0].code, 'govt');
    assert.ok(orgs.find((o) => ods(o) === 'RX9'));
    assert.deepEqual(orgs.map(ods).filter((c) => /^VM\d{3}$/.test(c)).sort(), ['VM101', 'VM102', 'VM103']);
    assert.equal(orgs.map(ods).filter((c) => /^Y\d{5}$/.test(c)).length, 2);
    const site = (ofType('Location') as Any[]).find((l) => l.identifier?.[0]?.value === 'RX901');
    assert.equal(site.identifier[0].system, 'https://fhir.nhs.uk/Id/ods-site-code');
    const wards = (ofType('Location') as Any[]).filter((l) => l.physicalType.coding[0].code === 'wa');
    assert.equal(wards.length, 3);
    for (const w of wards) assert.equal(w.partOf.reference, `Location/${site.id}`);
  });

  it('has the staff roles the shared record needs', () => {
    const roles = (ofType('PractitionerRole') as Any[]).map((r) => r.code[0].text);
    for (const role of ['Care home manager', 'Ward nurse', 'Discharge coordinator', 'Social worker', 'General practitioner']) {
      assert.ok(roles.includes(role), role);
    }
  });

  it('residents: aged 70–100, living at their care home, registered with a GP practice', () => {
    const now = Date.parse(DEFAULT.bundle.timestamp);
    for (const p of ofType('Patient') as Any[]) {
      const age = (now - Date.parse(p.birthDate)) / (365.25 * 86_400_000);
      assert.ok(age >= 70 && age <= 100, `${p.id} is ${age.toFixed(1)}`);
      assert.ok(['female', 'male'].includes(p.gender));
      const home = byRef.get(p.managingOrganization.reference) as Any;
      assert.match(home.identifier[0].value, /^VM\d{3}$/);
      assert.equal(p.address[0].postalCode, home.address[0].postalCode);
      const gp = byRef.get(p.generalPractitioner[0].reference) as Any;
      assert.match(gp.identifier[0].value, /^Y\d{5}$/);
    }
  });

  it('every resident has an active episode at their home, a care team, next of kin, a care plan, 2–5 conditions, 2–6 medicines, 0–2 allergies', () => {
    for (const p of ofType('Patient') as Any[]) {
      const mine = resources.filter((r: Any) => [r.subject, r.patient].some((s) => s?.reference === `Patient/${p.id}`)) as Any[];
      const n = (type: string) => mine.filter((r) => r.resourceType === type).length;
      const eoc = mine.find((r) => r.resourceType === 'EpisodeOfCare');
      assert.equal(eoc.status, 'active');
      assert.equal(eoc.managingOrganization.reference, p.managingOrganization.reference);
      assert.equal(n('CareTeam'), 1);
      assert.equal(n('RelatedPerson'), 1);
      assert.equal(n('CarePlan'), 1);
      assert.ok(n('Condition') >= 2 && n('Condition') <= 5, `${p.id}: ${n('Condition')} conditions`);
      assert.ok(n('MedicationRequest') >= 2 && n('MedicationRequest') <= 6, `${p.id}: ${n('MedicationRequest')} medicines`);
      assert.ok(n('AllergyIntolerance') <= 2);
      const kin = mine.find((r) => r.resourceType === 'RelatedPerson');
      assert.equal(kin.relationship[0].coding[0].code, 'N');
      for (const m of mine.filter((r) => r.resourceType === 'MedicationRequest')) {
        assert.ok(m.medicationCodeableConcept.text && m.dosageInstruction[0].text);
        for (const c of m.medicationCodeableConcept.coding ?? []) assert.equal(c.system, 'https://dmd.nhs.uk');
      }
    }
    assert.ok(ofType('Consent').length > 0, 'some DNACPR decisions');
    assert.ok(ofType('Flag').some((f: Any) => f.code.coding?.[0]?.code === '129839007'), 'some falls-risk flags');
    assert.ok(ofType('Flag').some((f: Any) => /pressure ulcer/.test(f.code.text)), 'some pressure-ulcer-risk flags');
  });

  it('inpatients have an in-progress inpatient Encounter at a ward of the trust', () => {
    for (const e of ofType('Encounter') as Any[]) {
      assert.equal(e.status, 'in-progress');
      assert.equal(e.class.code, 'IMP');
      assert.equal((byRef.get(e.serviceProvider.reference) as Any).identifier[0].value, 'RX9');
      const ward = byRef.get(e.location[0].location.reference) as Any;
      assert.equal(ward.physicalType.coding[0].code, 'wa');
      assert.ok(e.period.start);
      assert.equal((byRef.get(e.hospitalization.origin.reference) as Any).resourceType, 'Location');
    }
  });
});

describe('demo dataset: NEWS2 observations (H-001)', () => {
  const news2 = ofType('Observation').filter((o: Any) => o.code.coding[0].code === '1104051000000101') as Any[];
  const ACVPU: Record<string, Acvpu> = { '248234008': 'A', '130987000': 'C', '300202002': 'V', '450847001': 'P', '422768004': 'U' };
  const LOINC = (o: Any) => o.code.coding[0].code as string;

  it('one NEWS2 score per resident per day', () => {
    assert.equal(news2.length, 24 * 14);
  });

  it('each NEWS2 total is what the scorer gives for that day’s vital signs', () => {
    for (const n of news2) {
      const vitals = (n.derivedFrom as Any[]).map((d) => byRef.get(d.reference) as Any);
      assert.equal(vitals.length, 6);
      for (const v of vitals) {
        assert.equal(v.effectiveDateTime, n.effectiveDateTime);
        assert.equal(v.subject.reference, n.subject.reference);
      }
      const find = (code: string) => vitals.find((v) => LOINC(v) === code);
      const sat = find('59408-5');
      const bp = find('85354-9');
      const input = {
        respirationRate: find('9279-1').valueQuantity.value,
        spo2: sat.valueQuantity.value,
        spo2Scale2: n.method.text === 'NEWS2 SpO2 scale 2',
        supplementalOxygen: (sat.component ?? []).some((c: Any) => c.code.coding[0].code === '3151-8' && c.valueQuantity.value > 0),
        systolicBP: bp.component.find((c: Any) => c.code.coding[0].code === '8480-6').valueQuantity.value,
        pulse: find('8867-4').valueQuantity.value,
        consciousness: ACVPU[find('1104441000000107').valueCodeableConcept.coding[0].code],
        temperature: find('8310-5').valueQuantity.value,
      };
      const expected = scoreNews2(input);
      assert.equal(n.valueInteger, expected.total, `${n.id}`);
      assert.equal(n.interpretation[0].text, `${expected.band} clinical risk`);
      assert.equal(n.component.reduce((a: number, c: Any) => a + c.valueInteger, 0), n.valueInteger);
    }
  });

  it('scale 2 is used only for residents flagged with a 88–92% target', () => {
    const scale2Patients = new Set((ofType('Flag') as Any[]).filter((f) => /scale 2/.test(f.code.text ?? '')).map((f) => f.subject.reference));
    for (const n of news2) assert.equal(n.method.text === 'NEWS2 SpO2 scale 2', scale2Patients.has(n.subject.reference), n.id);
  });

  it('a few residents deteriorate: their NEWS2 trend rises, and all inpatients are among them', () => {
    const series = new Map<string, { at: string; total: number }[]>();
    for (const n of news2) series.set(n.subject.reference, [...(series.get(n.subject.reference) ?? []), { at: n.effectiveDateTime, total: n.valueInteger }]);
    const rising = new Set<string>();
    for (const [patient, points] of series) {
      points.sort((a, b) => a.at.localeCompare(b.at));
      const totals = points.map((p) => p.total);
      // Rising at some point over the last week, measured against the three days before.
      for (let i = totals.length - 7; i < totals.length; i++) {
        if (i >= 3 && news2Trend(totals.slice(i - 3, i), totals[i]).rising && totals[i] >= 5) rising.add(patient);
      }
    }
    assert.ok(rising.size >= 3 && rising.size <= 8, `rising: ${[...rising].join(', ')}`);
    for (const e of ofType('Encounter') as Any[]) assert.ok(rising.has(e.subject.reference), `${e.subject.reference} admitted without deteriorating`);
  });

  it('observations after admission are taken on the ward and linked to the encounter', () => {
    for (const e of ofType('Encounter') as Any[]) {
      const after = (ofType('Observation') as Any[]).filter((o) => o.subject.reference === e.subject.reference && o.effectiveDateTime > e.period.start);
      for (const o of after) {
        assert.equal(o.encounter?.reference, `Encounter/${e.id}`);
        const role = (ofType('PractitionerRole') as Any[]).find((r) => r.practitioner.reference === o.performer[0].reference);
        assert.equal(role.code[0].text, 'Ward nurse');
      }
    }
  });
});
