// Deadlines and ADW flows across restarts, on both engines: a due time kept in the database fires after
// the server has been stopped and started again, once; and a hospital and a council (two CareBridge
// servers) run notice → accept → discharge notice → agreement → withdrawal with a restart in the middle,
// losing nothing and doing nothing twice. Messages travel between them as MESH would hand them over: the
// body queued by one is given to the other's handler (until messaging lands).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ENGINES, type TestServer } from '../support/server.ts';
import {
  ADW_EVENT, OVERDUE_TAG, confirmReady, createReferral, deliverPendingAdw, fireDueTimers, handleAdwMessage, isOverdue, parseAdwMessage,
  setCouncilSettings, triage, triageStateOf, withdrawReferral, EXPECTED_DISCHARGE_URL, type InboundMessage,
} from '../../src/discharge/index.ts';
import { at, dischargeServer, inbound, outbound, restartServer, searchOne, seedOrganisations, seedPatient, COUNCIL_ODS, HOSPITAL_ODS } from './support.ts';

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

  describe(`hospital and council over ADW, with a restart (${engine})`, () => {
    let hospital: TestServer;
    let council: TestServer;
    before(async () => {
      [hospital, council] = await Promise.all([dischargeServer(engine), dischargeServer(engine)]);
      await Promise.all([seedOrganisations(hospital), seedOrganisations(council)]);
      await setCouncilSettings(hospital.server.driver, { ods: COUNCIL_ODS, assessmentDeadline: '48 working-hours', dischargeDeadline: '24 working-hours', adw: true });
    });
    after(async () => {
      await hospital.close();
      await council.close();
    });

    /** A stand-in for MESH between the two servers: mailboxes by ODS code, delivery into the peer's handler. */
    const MAILBOXES: Record<string, string> = { [HOSPITAL_ODS]: 'HOSPITAL01', [COUNCIL_ODS]: 'COUNCIL01' };
    async function carry(from: TestServer, to: TestServer): Promise<InboundMessage[]> {
      const carried: InboundMessage[] = [];
      await deliverPendingAdw(from.server.driver, {
        mailboxForOrganisation: async (ods) => MAILBOXES[ods],
        send: async (m) => {
          carried.push(inbound(m.body.toString('utf8'), { from: m.from, to: m.to, workflowId: m.workflowId, mailbox: m.to }));
          return { messageId: `mesh-${carried.length}-${Date.now()}` };
        },
      }, { notice: 'ADW_NOTICE', response: 'ADW_NOTICE_ACK' });
      for (const msg of carried) await handleAdwMessage({ ctx: to.server.discharge.context }, msg);
      return carried;
    }

    it('notice → accept → discharge notice → agreement → withdrawal', async () => {
      const patient = await seedPatient(hospital, 'rt');
      await hospital.fhir.put('Encounter/rt-stay', { resourceType: 'Encounter', id: 'rt-stay', status: 'in-progress', class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'IMP' }, subject: { reference: `Patient/${patient}` }, period: { start: '2026-05-01T08:00:00Z' }, location: [{ location: { reference: 'Location/collier-ward' } }] });
      const { referral } = await createReferral(hospital.server.discharge.context, {
        patient: `Patient/${patient}`, encounter: 'Encounter/rt-stay', hospitalOds: HOSPITAL_ODS, councilOds: COUNCIL_ODS, ward: 'Location/collier-ward',
        reason: 'Fall at home, lives alone', referrer: { name: 'Leticia Gulliver', phone: '01911223344' },
      });
      const identifier = referral.identifier[0].value;
      const [notice] = await carry(hospital, council);
      assert.equal(parseAdwMessage(notice.body.toString()).eventCode, ADW_EVENT.assessmentNotice);
      assert.equal(notice.to, 'COUNCIL01');
      assert.equal((await carry(hospital, council)).length, 0, 'sent once');

      // The council's server restarts before anyone acts: the episode, its deadline and the pending answer are kept.
      council = await restartServer(council);
      const atCouncil = await searchOne(council, `ServiceRequest?identifier=${identifier}`);
      assert.equal(atCouncil.reasonCode[0].text, 'Fall at home, lives alone');
      await triage(council.server.discharge.context, atCouncil.id, { action: 'accept' });
      const [accept] = await carry(council, hospital);
      assert.equal(accept.to, 'HOSPITAL01', 'the answer goes back to the sender\'s mailbox');
      const hospitalTask = async () => searchOne(hospital, `Task?focus=ServiceRequest/${referral.id}&code=triage-referral`);
      assert.equal(triageStateOf(await hospitalTask()), 'accepted');

      // The ward sets an expected discharge date: a discharge notice goes out; the council agrees.
      const stay = (await hospital.fhir.get('Encounter/rt-stay')).body;
      await hospital.fhir.put('Encounter/rt-stay', { ...stay, extension: [{ url: EXPECTED_DISCHARGE_URL, valueDateTime: '2026-05-08' }] });
      await hospital.server.discharge.runWorkers();
      const [dischargeNotice] = await carry(hospital, council);
      assert.equal(parseAdwMessage(dischargeNotice.body.toString()).eventCode, ADW_EVENT.dischargeNotice);
      const councilReferral = await searchOne(council, `ServiceRequest?identifier=${identifier}`);
      assert.equal(councilReferral.extension.find((e: any) => e.url === EXPECTED_DISCHARGE_URL).valueDateTime, '2026-05-08');
      await confirmReady(council.server.discharge.context, councilReferral.id);
      const [agreement] = await carry(council, hospital);
      assert.equal(parseAdwMessage(agreement.body.toString()).eventCode, ADW_EVENT.dischargeAgreement);
      assert.equal(triageStateOf(await hospitalTask()), 'ready');

      // Duplicate delivery of the agreement changes nothing at the hospital.
      const versions = (await hospitalTask()).meta.versionId;
      await handleAdwMessage({ ctx: hospital.server.discharge.context }, { ...agreement, messageId: 'mesh-again' });
      assert.equal((await hospitalTask()).meta.versionId, versions);

      // The person's plans change: the hospital withdraws; the council's work stops and it accepts the withdrawal.
      await withdrawReferral(hospital.server.discharge.context, referral.id, '11 Own arrangements made by the family');
      await carry(hospital, council);
      const councilTask = await searchOne(council, `Task?focus=ServiceRequest/${councilReferral.id}&code=triage-referral`);
      assert.equal(triageStateOf(councilTask), 'withdrawn');
      const [withdrawalAccept] = await carry(council, hospital);
      assert.equal(parseAdwMessage(withdrawalAccept.body.toString()).eventCode, ADW_EVENT.withdrawalAccept);
      const sentByHospital = await outbound(hospital);
      assert.deepEqual(sentByHospital.map((r) => r.status).sort(), ['accepted', 'accepted', 'accepted'], 'every notice answered');
    });
  });
}
