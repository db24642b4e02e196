// The safety checks before a red bag is sent (hazard log H-030, H-031), on records built from the demo
// dataset: each rule fires when its content is missing or stale, and only then.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { buildDemoDataset } from '../../src/demo/index.ts';
import { checkTransfer, blocking } from '../../src/redbag/checks.ts';
import type { ResidentRecord } from '../../src/redbag/gather.ts';
import type { TransferDetails } from '../../src/redbag/details.ts';
import { transferPackBundle, sectionsOfPack } from '../../src/redbag/pack.ts';
import { RED_BAG_TASK_CODE as ACCESS_CODE } from '../../src/access/index.ts';
import { RED_BAG_TASK_CODE } from '../../src/redbag/index.ts';

const NOW = Date.parse('2026-11-01T09:00:00Z');
const resources = buildDemoDataset({ referenceDate: '2026-11-01T09:00:00Z' }).bundle.entry.map((e) => e.resource as any);
const of = (type: string, patient: string) => resources.filter((r) => r.resourceType === type && [r.subject?.reference, r.patient?.reference].includes(`Patient/${patient}`));
const byId = (id: string) => resources.find((r) => r.id === id);

function recordOf(patientId: string): ResidentRecord {
  const patient = byId(patientId);
  return {
    patient,
    gp: byId(patient.generalPractitioner[0].reference.split('/')[1]),
    careHome: byId(patient.managingOrganization.reference.split('/')[1]),
    conditions: of('Condition', patientId), medications: of('MedicationRequest', patientId), administrations: [],
    allergies: of('AllergyIntolerance', patientId), consents: of('Consent', patientId), flags: of('Flag', patientId),
    carePlans: of('CarePlan', patientId), relatedPeople: of('RelatedPerson', patientId), careTeams: of('CareTeam', patientId),
    observations: of('Observation', patientId).sort((a, b) => b.effectiveDateTime.localeCompare(a.effectiveDateTime)),
  };
}

const hospital = resources.find((r) => r.id === 'demo-org-rx9');
const complete: TransferDetails = {
  reason: 'Fall', destination: 'RX9', belongings: ['Glasses'], attested: true,
  baseline: { mobility: 'Frame', cognition: 'Alert', communication: 'Clear', continence: 'Continent', eating: 'Normal', skin: 'Intact' },
};
const withDnacpr = resources.find((r) => r.resourceType === 'Consent' && r.id.endsWith('-dnacpr')).patient.reference.split('/')[1] as string;
const withoutDnacpr = resources.find((r) => r.resourceType === 'Patient' && !resources.some((c) => c.id === `${r.id.replace('demo-pat-', 'demo-consent-')}-dnacpr`)).id as string;
const rules = (findings: { rule: string }[]) => findings.map((f) => f.rule);

describe('red bag safety checks', () => {
  it('a complete pack for a fresh record has nothing missing', () => {
    const record = recordOf(withDnacpr);
    record.medicationReview = { resourceType: 'Procedure', id: 'review', performedDateTime: '2026-10-20' };
    if (!record.allergies.length) record.allergies = [{ resourceType: 'AllergyIntolerance', id: 'a', code: { text: 'Penicillin' } }];
    assert.deepEqual(checkTransfer(record, complete, hospital, NOW, true), []);
  });

  it('RB-M1…M6: missing mandatory content blocks sending, each said plainly', () => {
    const record = recordOf(withDnacpr);
    const noNhs = { ...record, patient: { ...record.patient, identifier: [] }, careHome: undefined, gp: undefined };
    const findings = checkTransfer(noNhs, { ...complete, reason: undefined, destination: undefined, attested: false }, undefined, NOW, true);
    assert.deepEqual(rules(blocking(findings)), ['RB-M1', 'RB-M2', 'RB-M3', 'RB-M4', 'RB-M5', 'RB-M6']);
    assert.match(findings.find((f) => f.rule === 'RB-M1')!.text, /NHS number is missing/);
    assert.deepEqual(rules(blocking(checkTransfer(record, { ...complete, attested: false }, hospital, NOW, false))), [], 'a draft needs no attestation yet');
  });

  it('RB-S1: observations older than 24 hours are flagged, and none at all', () => {
    const record = recordOf(withDnacpr);
    const latest = Date.parse(record.observations[0].effectiveDateTime);
    assert.ok(!rules(checkTransfer(record, complete, hospital, latest + 23 * 3600_000, true)).includes('RB-S1'));
    const stale = checkTransfer(record, complete, hospital, latest + 25 * 3600_000, true);
    assert.match(stale.find((f) => f.rule === 'RB-S1')!.text, /more than 24 hours old/);
    assert.equal(stale.find((f) => f.rule === 'RB-S1')!.severity, 'stale', 'flagged, not blocking');
    assert.match(checkTransfer({ ...record, observations: [] }, complete, hospital, NOW, true).find((f) => f.rule === 'RB-S1')!.text, /No observations/);
  });

  it('RB-S2: a medication list not reviewed in 30 days is flagged', () => {
    const record = recordOf(withDnacpr);
    const newest = Math.max(...record.medications.map((m) => Date.parse(m.authoredOn)));
    assert.ok(rules(checkTransfer(record, complete, hospital, newest + 31 * 86_400_000, true)).includes('RB-S2'));
    assert.ok(!rules(checkTransfer(record, complete, hospital, newest + 29 * 86_400_000, true)).includes('RB-S2'));
    const reviewed = { ...record, medicationReview: { resourceType: 'Procedure', id: 'r', performedDateTime: new Date(newest + 40 * 86_400_000).toISOString() } };
    assert.ok(!rules(checkTransfer(reviewed, complete, hospital, newest + 45 * 86_400_000, true)).includes('RB-S2'), 'a recorded review counts');
  });

  it('RB-S3: no DNACPR or ReSPECT status is flagged', () => {
    assert.ok(!rules(checkTransfer(recordOf(withDnacpr), complete, hospital, NOW, true)).includes('RB-S3'));
    const flagged = checkTransfer(recordOf(withoutDnacpr), complete, hospital, NOW, true).find((f) => f.rule === 'RB-S3');
    assert.match(flagged!.text, /No DNACPR or ReSPECT decision is recorded/);
  });

  it('RB-S4, RB-S5: baseline when well and allergies not recorded are flagged by name', () => {
    const record = { ...recordOf(withDnacpr), allergies: [] };
    const findings = checkTransfer(record, { ...complete, baseline: { mobility: 'Frame' } }, hospital, NOW, true);
    assert.match(findings.find((f) => f.rule === 'RB-S4')!.text, /cognition, communication, continence, eating and drinking, skin/);
    assert.ok(rules(findings).includes('RB-S5'));
  });

  it('flags travel inside the pack, in its "Checks before sending" section and summary', () => {
    const record = recordOf(withoutDnacpr);
    const findings = checkTransfer(record, complete, hospital, NOW + 3 * 86_400_000, false);
    const bundle = transferPackBundle({ record, details: complete, destination: hospital, findings, now: NOW, base: 'http://x/fhir', status: 'preliminary' });
    const checks = sectionsOfPack(bundle).find((s) => s.key === 'checks')!;
    assert.deepEqual(checks.rows.map((r) => r.value), findings.map((f) => f.text));
    assert.match(sectionsOfPack(bundle)[0].rows.find((r) => r.label === 'Checks before sending')!.value, new RegExp(`${findings.length} to note`));
  });

  it('the access relationship and the red bag name the same Task code', () => {
    assert.equal(ACCESS_CODE, `${RED_BAG_TASK_CODE.system}|${RED_BAG_TASK_CODE.code}`);
  });
});
