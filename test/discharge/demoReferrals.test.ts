// The demo dataset's discharge referrals follow the discharge model, so the workflow can act on them.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { buildDemoDataset } from '../../src/demo/index.ts';
import { DISCHARGE_REFERRAL_SYSTEM, EXPECTED_DISCHARGE_URL, pathwayOf, triageStateOf } from '../../src/discharge/index.ts';

describe('demo discharge referrals', () => {
  const resources = buildDemoDataset().bundle.entry.map((e) => e.resource as Record<string, any>);
  const referrals = resources.filter((r) => r.resourceType === 'ServiceRequest');

  it('each inpatient has a referral with an id, pathway, expected date and a triage Task', () => {
    assert.equal(referrals.length, 3);
    for (const sr of referrals) {
      assert.match(sr.identifier.find((i: any) => i.system === DISCHARGE_REFERRAL_SYSTEM).value, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-8[0-9a-f]{3}-[0-9a-f]{12}$/);
      assert.ok([0, 1, 2, 3].includes(pathwayOf(sr)!));
      const stay = resources.find((r) => `Encounter/${r.id}` === sr.encounter.reference)!;
      const expected = sr.extension.find((e: any) => e.url === EXPECTED_DISCHARGE_URL).valueDateTime;
      assert.equal(stay.extension.find((e: any) => e.url === EXPECTED_DISCHARGE_URL).valueDateTime, expected);
      const task = resources.find((r) => r.resourceType === 'Task' && r.focus?.reference === `ServiceRequest/${sr.id}`)!;
      assert.equal(task.id, `triage-${sr.id}`);
      assert.ok(['received', 'accepted'].includes(triageStateOf(task)!));
    }
  });

  it('is the same every time', () => {
    assert.deepEqual(buildDemoDataset().bundle.entry.filter((e) => ['ServiceRequest', 'Task'].includes((e.resource as any).resourceType)), buildDemoDataset().bundle.entry.filter((e) => ['ServiceRequest', 'Task'].includes((e.resource as any).resourceType)));
  });
});
