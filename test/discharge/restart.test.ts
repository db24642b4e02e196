// Deadlines across restarts, on both engines: a due time kept in the database fires after the server has
// been stopped and started again, once. (ADW flows across restarts, over real MESH: meshRoundTrip.test.ts.)
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ENGINES, type TestServer } from '../support/server.ts';
import { OVERDUE_TAG, createReferral, fireDueTimers, isOverdue, setCouncilSettings, triage } from '../../src/discharge/index.ts';
import { at, dischargeServer, restartServer, searchOne, seedOrganisations, seedPatient, COUNCIL_ODS, HOSPITAL_ODS } from './support.ts';

for (const engine of ENGINES) {
  describe(`deadlines survive a restart (${engine})`, () => {
    let t: TestServer;
    before(async () => {
      t = await dischargeServer(engine);
      await seedOrganisations(t);
    });
    after(() => t.close());

    it('an overdue referral raises one escalation Task and shows as overdue, after a restart', async () => {
      await setCouncilSettings(t.server.driver, { ods: COUNCIL_ODS, assessmentDeadline: '2 working-days', dischargeDeadline: '24 working-hours' });
      const patient = await seedPatient(t, 'late');
      // Thursday 24 December 2026, 16:00: 2 working days are the 29th and 30th (25th, 28th bank holidays).
      const ctx0 = at(t.server.discharge.context, '2026-12-24T16:00:00Z');
      const { referral, task } = await createReferral(ctx0, { patient: `Patient/${patient}`, hospitalOds: HOSPITAL_ODS, councilOds: COUNCIL_ODS });
      assert.equal(task.restriction.period.end, '2026-12-31T00:00:00.000Z');
      assert.equal(await fireDueTimers(at(t.server.discharge.context, '2026-12-30T23:59:00Z')), 0, 'not yet due');

      t = await restartServer(t);
      const late = at(t.server.discharge.context, '2026-12-31T09:00:00Z');
      assert.equal(await fireDueTimers(late), 1);
      assert.equal(await fireDueTimers(late), 0, 'fired once');
      const overdue = await searchOne(t, `Task?_tag=${OVERDUE_TAG.system}|overdue`);
      assert.equal(overdue.id, task.id);
      assert.equal(overdue.priority, 'urgent');
      assert.equal(isOverdue(overdue, Date.parse('2026-12-31T09:00:00Z')), true);
      const escalation = await searchOne(t, `Task?code=escalation&focus=ServiceRequest/${referral.id}`);
      assert.equal(escalation.status, 'requested');
      assert.match(escalation.description, /was due by 2026-12-31T00:00:00.000Z/);

      // Answering clears the flag and closes the escalation.
      const accepted = await triage(late, referral.id, { action: 'accept' });
      assert.equal(accepted.task.meta?.tag?.some((x: any) => x.code === 'overdue') ?? false, false);
      assert.equal((await t.fhir.get(`Task/${escalation.id}`)).body.status, 'completed');
    });

    it('a referral answered in time raises nothing', async () => {
      const patient = await seedPatient(t, 'ontime', '9413946000');
      const ctx = at(t.server.discharge.context, '2026-06-01T09:00:00Z');
      const { referral } = await createReferral(ctx, { patient: `Patient/${patient}`, hospitalOds: HOSPITAL_ODS, councilOds: COUNCIL_ODS });
      await triage(ctx, referral.id, { action: 'reject', reason: 'Not known to us' });
      assert.equal(await fireDueTimers(at(ctx, '2026-07-01T09:00:00Z')), 0);
    });
  });
}
