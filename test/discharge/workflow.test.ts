// The discharge-to-assess workflow on both engines: a referral and its triage Task, each step in the
// record's history, If-Match so two people cannot overwrite each other, steps out of order refused, and the
// hospital stay's changes (expected date, discharge) followed from the change feed.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ENGINES, type TestServer } from '../support/server.ts';
import {
  assignWorker, confirmReady, createReferral, fireDueTimers, recordDischarge, recordSupportArranged, triage, triageStateOf, pathwayOf, isOverdue, withdrawReferral,
  DISCHARGE_REFERRAL_SYSTEM, OVERDUE_TAG, EXPECTED_DISCHARGE_URL, MEDICALLY_READY_URL, type DischargeContext,
} from '../../src/discharge/index.ts';
import { FhirError } from '../../src/record/index.ts';
import { at, dischargeServer, seedOrganisations, seedPatient, COUNCIL_ODS, HOSPITAL_ODS } from './support.ts';

for (const engine of ENGINES) {
  describe(`discharge workflow (${engine})`, () => {
    let t: TestServer;
    let ctx: DischargeContext;
    before(async () => {
      t = await dischargeServer(engine);
      await seedOrganisations(t);
      ctx = at(t.server.discharge.context, '2026-05-01T14:00:00Z'); // a Friday before a bank-holiday Monday
    });
    after(() => t.close());

    async function newStay(id: string, patient: string) {
      await t.fhir.put(`Encounter/${id}`, { resourceType: 'Encounter', id, status: 'in-progress', class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'IMP' }, subject: { reference: `Patient/${patient}` }, period: { start: '2026-04-28T09:00:00Z' }, serviceProvider: { reference: 'Organization/hebburn-hospital' } });
      return `Encounter/${id}`;
    }

    it('creates a referral, its triage Task with a working-day deadline, and the consent answers', async () => {
      const patient = await seedPatient(t, 'p1');
      const encounter = await newStay('stay1', patient);
      const { referral, task } = await createReferral(ctx, {
        patient: `Patient/${patient}`, encounter, hospitalOds: HOSPITAL_ODS, councilOds: COUNCIL_ODS, ward: 'Location/collier-ward',
        referrer: { name: 'Leticia Gulliver', phone: '01911223344' }, pathway: 1, expectedDischarge: '2026-05-08', medicallyReady: '2026-05-06',
        reason: 'Reduced mobility after a fall', needs: ['Help with washing and dressing'], supportRequested: ['Reablement at home, four visits a day'],
        consent: [{ linkId: 'patient-consulted', text: 'Has the person been consulted?', system: 'https://fhir.nhs.uk/ADW-ConsultationStatus-1', code: 'Y', display: 'Yes' }],
      });
      const found = await t.fhir.get(`ServiceRequest?identifier=${referral.identifier[0].value}`);
      assert.equal(found.body.total ?? found.body.entry.length, 1, 'ServiceRequest?identifier=<id> finds the referral');
      const sr = found.body.entry[0].resource;
      assert.equal(sr.identifier[0].system, DISCHARGE_REFERRAL_SYSTEM);
      assert.equal(sr.status, 'active');
      assert.equal(pathwayOf(sr), 1);
      assert.equal(sr.extension.find((e: any) => e.url === EXPECTED_DISCHARGE_URL).valueDateTime, '2026-05-08');
      assert.equal(sr.extension.find((e: any) => e.url === MEDICALLY_READY_URL).valueDateTime, '2026-05-06');
      assert.equal(sr.performer[0].reference, 'Organization/hebburn-council');
      assert.equal(sr.contained[0].organization.reference, 'Organization/hebburn-hospital');
      assert.equal(sr.contained[0].location[0].reference, 'Location/collier-ward');
      assert.equal(sr.orderDetail[0].text, 'Reablement at home, four visits a day');
      assert.equal(triageStateOf(task), 'received');
      assert.equal(task.status, 'requested');
      // 48 working hours from Friday 15:00 BST, Monday 4 May a bank holiday → Wednesday 6 May 15:00 BST.
      assert.equal(task.restriction.period.end, '2026-05-06T14:00:00.000Z');
      const qr = (await t.fhir.get(`QuestionnaireResponse?based-on=ServiceRequest/${referral.id}`)).body.entry[0].resource;
      assert.equal(qr.item[0].answer[0].valueCoding.code, 'Y');
      // The council's social workers can now see the person (an open referral to their council).
      assert.equal((await t.fhir.get(`Task?focus=ServiceRequest/${referral.id}`)).body.entry.length, 1);
    });

    it('walks the triage states, each change a new version in the history', async () => {
      const patient = await seedPatient(t, 'p2', '9413946000');
      const { referral, task } = await createReferral(ctx, { patient: `Patient/${patient}`, encounter: await newStay('stay2', patient), hospitalOds: HOSPITAL_ODS, councilOds: COUNCIL_ODS, pathway: 1 });
      let r = await triage(ctx, referral.id, { action: 'requestInformation', request: 'Is there a carer at home?' }, { ifMatch: task.meta!.versionId });
      assert.equal(triageStateOf(r.task), 'more-information-requested');
      const note = (await t.fhir.get(`Communication?based-on=ServiceRequest/${referral.id}`)).body.entry[0].resource;
      assert.equal(note.payload[0].contentString, 'Is there a carer at home?');
      r = await triage(ctx, referral.id, { action: 'accept' });
      r = await assignWorker(ctx, referral.id, { reference: 'Practitioner/sw-1', display: 'Lee Jones' });
      assert.equal(r.task.owner.display, 'Lee Jones');
      r = await recordSupportArranged(ctx, referral.id, 'Reablement from 8 May');
      r = await confirmReady(ctx, referral.id);
      assert.equal(triageStateOf(r.task), 'ready');
      const history = (await t.fhir.get(`Task/${task.id}/_history`)).body.entry.map((e: any) => triageStateOf(e.resource));
      assert.deepEqual(history.reverse(), ['received', 'more-information-requested', 'accepted', 'assigned', 'support-arranged', 'ready']);
    });

    it('refuses to overwrite a change someone else made (If-Match), and steps out of order', async () => {
      const patient = await seedPatient(t, 'p3', '9912003888');
      const { referral, task } = await createReferral(ctx, { patient: `Patient/${patient}`, hospitalOds: HOSPITAL_ODS, councilOds: COUNCIL_ODS });
      await triage(ctx, referral.id, { action: 'accept' }, { ifMatch: task.meta!.versionId });
      await assert.rejects(triage(ctx, referral.id, { action: 'reject', reason: 'Not our area' }, { ifMatch: task.meta!.versionId }), (e: FhirError) => e.status === 412 && /changed by someone else/.test(e.message));
      await assert.rejects(confirmReady(ctx, referral.id, { note: 'x' }).then(() => recordSupportArranged(ctx, referral.id, 'late')), (e: FhirError) => e.status === 409);
      await assert.rejects(triage(ctx, referral.id, { action: 'reject', reason: ' ' }), (e: FhirError) => e.status === 400 && /reason/.test(e.message));
      await assert.rejects(triage(ctx, 'no-such-referral', { action: 'accept' }), (e: FhirError) => e.status === 404);
    });

    it('rejects with a reason and closes the referral', async () => {
      const patient = await seedPatient(t, 'p4', '9876543210');
      const { referral } = await createReferral(ctx, { patient: `Patient/${patient}`, hospitalOds: HOSPITAL_ODS, councilOds: COUNCIL_ODS });
      const r = await triage(ctx, referral.id, { action: 'reject', reason: 'The person lives in another council area' });
      assert.equal(r.task.status, 'rejected');
      assert.equal(r.task.statusReason.text, 'The person lives in another council area');
      assert.equal(r.referral.status, 'revoked');
      await assert.rejects(withdrawReferral(ctx, referral.id, '12 sent in error'), (e: FhirError) => e.status === 409);
    });

    it('follows the hospital stay: expected date copied, discharge recorded when the stay finishes', async () => {
      const patient = await seedPatient(t, 'p5', '9434765919');
      const encounter = await newStay('stay5', patient);
      const { referral } = await createReferral(ctx, { patient: `Patient/${patient}`, encounter, hospitalOds: HOSPITAL_ODS, councilOds: COUNCIL_ODS });
      await triage(ctx, referral.id, { action: 'accept' });
      const stay = (await t.fhir.get('Encounter/stay5')).body;
      await t.fhir.put('Encounter/stay5', { ...stay, extension: [{ url: EXPECTED_DISCHARGE_URL, valueDateTime: '2026-05-12' }] });
      await t.server.discharge.runWorkers();
      let sr = (await t.fhir.get(`ServiceRequest/${referral.id}`)).body;
      assert.equal(sr.extension.find((e: any) => e.url === EXPECTED_DISCHARGE_URL).valueDateTime, '2026-05-12');
      // The PAS takes the date away (PV2-9 sent empty): the referral's goes too, and comes back with the next.
      const dated = (await t.fhir.get('Encounter/stay5')).body;
      await t.fhir.put('Encounter/stay5', { ...dated, extension: undefined });
      await t.server.discharge.runWorkers();
      sr = (await t.fhir.get(`ServiceRequest/${referral.id}`)).body;
      assert.equal(sr.extension?.find((e: any) => e.url === EXPECTED_DISCHARGE_URL), undefined, 'no expected date any more');
      const undated = (await t.fhir.get('Encounter/stay5')).body;
      await t.fhir.put('Encounter/stay5', { ...undated, extension: [{ url: EXPECTED_DISCHARGE_URL, valueDateTime: '2026-05-12' }] });
      await t.server.discharge.runWorkers();
      sr = (await t.fhir.get(`ServiceRequest/${referral.id}`)).body;
      assert.equal(sr.extension.find((e: any) => e.url === EXPECTED_DISCHARGE_URL).valueDateTime, '2026-05-12');
      const later = (await t.fhir.get('Encounter/stay5')).body;
      await t.fhir.put('Encounter/stay5', { ...later, status: 'finished', period: { start: later.period.start, end: '2026-05-12T11:30:00Z' } });
      await t.server.discharge.runWorkers();
      await t.server.discharge.runWorkers(); // reading the same change again changes nothing
      sr = (await t.fhir.get(`ServiceRequest/${referral.id}`)).body;
      assert.equal(sr.status, 'completed');
      const task = (await t.fhir.get(`Task?focus=ServiceRequest/${referral.id}&code=triage-referral`)).body.entry[0].resource;
      assert.equal(triageStateOf(task), 'discharged');
      assert.equal(task.executionPeriod.end, '2026-05-12T11:30:00Z');
      assert.equal(isOverdue(task, Date.now()), false);
      const versions = (await t.fhir.get(`Task/${task.id}/_history`)).body.entry.length;
      assert.equal(versions, 3, 'received, accepted, discharged: no duplicate write from the repeated change');

      // The hospital cancels the discharge (HL7 A13 sets the stay back from finished): the referral opens
      // again as it was, so the council goes on arranging care for someone still in hospital.
      const finished = (await t.fhir.get('Encounter/stay5')).body;
      await t.fhir.put('Encounter/stay5', { ...finished, status: 'in-progress', period: { start: finished.period.start } });
      const afterCancel = (await t.fhir.get('Encounter/stay5')).body;
      await t.fhir.put('Encounter/stay5', { ...afterCancel, class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'ACUTE' } }); // a later update, before the feed runs
      await t.server.discharge.runWorkers();
      await t.server.discharge.runWorkers();
      const reopened = (await t.fhir.get(`Task/${task.id}`)).body;
      assert.equal(triageStateOf(reopened), 'accepted', 'the state before the discharge');
      assert.equal(reopened.status, 'accepted');
      assert.equal(reopened.executionPeriod?.end, undefined, 'no discharge time any more');
      sr = (await t.fhir.get(`ServiceRequest/${referral.id}`)).body;
      assert.equal(sr.status, 'active');
      assert.equal(sr.occurrencePeriod?.end, undefined);
      const notes = (await t.fhir.get(`Communication?based-on=ServiceRequest/${referral.id}`)).body.entry.map((e: any) => e.resource);
      assert.ok(notes.some((n: any) => n.category?.[0]?.text === 'Discharge cancelled' && /still in hospital, and the referral is accepted again/.test(n.payload[0].contentString)));
      assert.equal((await t.fhir.get(`Task/${task.id}/_history`)).body.entry.length, 4, 'reopened once, not once per reading of the change');

      // A discharge recorded by hand while the stay is still open is not undone by the stay's next update.
      await recordDischarge(ctx, referral.id, '2026-05-13T10:00:00Z');
      const open = (await t.fhir.get('Encounter/stay5')).body;
      await t.fhir.put('Encounter/stay5', { ...open, class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'IMP' } });
      await t.server.discharge.runWorkers();
      assert.equal(triageStateOf((await t.fhir.get(`Task/${task.id}`)).body), 'discharged');
    });

    it('a stay referred again after a rejection: a cancelled discharge reopens the later referral, not the rejected one', async () => {
      const patient = await seedPatient(t, 'p11', '9434765943');
      const encounter = await newStay('stay11', patient);
      const first = await createReferral(ctx, { patient: `Patient/${patient}`, encounter, hospitalOds: HOSPITAL_ODS, councilOds: COUNCIL_ODS });
      await triage(ctx, first.referral.id, { action: 'reject', reason: 'Missing the consent answers' });
      const later = at(t.server.discharge.context, '2026-05-01T16:00:00Z');
      const second = await createReferral(later, { patient: `Patient/${patient}`, encounter, hospitalOds: HOSPITAL_ODS, councilOds: COUNCIL_ODS });
      await triage(later, second.referral.id, { action: 'accept' });
      const state = async (r: { task: { id: string } }) => triageStateOf((await t.fhir.get(`Task/${r.task.id}`)).body);
      const stay = (await t.fhir.get('Encounter/stay11')).body;
      await t.fhir.put('Encounter/stay11', { ...stay, status: 'finished', period: { start: stay.period.start, end: '2026-05-12T11:30:00Z' } });
      await t.server.discharge.runWorkers();
      assert.equal(await state(second), 'discharged');
      // Neither referral is open now: the stay's next change belongs to the later one.
      const finished = (await t.fhir.get('Encounter/stay11')).body;
      await t.fhir.put('Encounter/stay11', { ...finished, status: 'in-progress', period: { start: finished.period.start } });
      await t.server.discharge.runWorkers();
      assert.equal(await state(second), 'accepted', 'the later referral reopened');
      assert.equal(await state(first), 'rejected', 'the rejected one left as it was');
    });

    it('a cancelled discharge of a referral the council has not answered gives it back its response deadline, so its lapse is escalated', async () => {
      const patient = await seedPatient(t, 'p10', '9434765935');
      const received = at(t.server.discharge.context, '2027-03-01T10:00:00Z');
      const encounter = await newStay('stay10', patient);
      const { referral, task } = await createReferral(received, { patient: `Patient/${patient}`, encounter, hospitalOds: HOSPITAL_ODS, councilOds: COUNCIL_ODS });
      const due = task.restriction.period.end;
      assert.equal(due.slice(0, 10), '2027-03-03');
      const timers = () => t.server.driver.all<{ kind: string; status: string; due_ms: number }>('SELECT kind, status, due_ms FROM discharge_timers WHERE referral_id = ? ORDER BY created_ms', [referral.id]);

      // Discharged before the council answered (the deadline stops), then the discharge is cancelled (A13).
      const stay = (await t.fhir.get('Encounter/stay10')).body;
      await t.fhir.put('Encounter/stay10', { ...stay, status: 'finished', period: { start: stay.period.start, end: '2027-03-02T11:00:00Z' } });
      await t.server.discharge.runWorkers();
      assert.equal(triageStateOf((await t.fhir.get(`Task/${task.id}`)).body), 'discharged');
      const finished = (await t.fhir.get('Encounter/stay10')).body;
      await t.fhir.put('Encounter/stay10', { ...finished, status: 'in-progress', period: { start: finished.period.start } });
      await t.server.discharge.runWorkers();
      assert.equal(triageStateOf((await t.fhir.get(`Task/${task.id}`)).body), 'received');
      assert.deepEqual((await timers()).filter((r) => r.status === 'pending').map((r) => [r.kind, new Date(Number(r.due_ms)).toISOString()]), [['response-deadline', due]], 'the deadline watched again, from the referral\'s own due time');

      // Weeks later the council still has not answered: the lapse is escalated, as for any other referral.
      const late = at(t.server.discharge.context, '2027-03-20T09:00:00Z');
      assert.equal(await fireDueTimers(late), 1, 'one escalation');
      const overdue = (await t.fhir.get(`Task/${task.id}`)).body;
      assert.equal(isOverdue(overdue, Date.parse('2027-03-20T09:00:00Z')), true);
      assert.ok(overdue.meta.tag.some((g: any) => g.code === OVERDUE_TAG.code), 'flagged overdue on the queue');
      const escalation = (await t.fhir.get(`Task/escalation-${referral.id}`)).body;
      assert.equal(escalation.status, 'requested');
      assert.match(escalation.description, new RegExp(`the response to the discharge referral was due by ${due}`));
    });

    it('follows the person to another ward (A02), and tells both sides once when the admission is cancelled (A11)', async () => {
      const patient = await seedPatient(t, 'p9', '9434765927');
      await t.fhir.put('Location/heron-ward', { resourceType: 'Location', id: 'heron-ward', name: 'Heron Ward' });
      await t.fhir.put('Encounter/stay9', { resourceType: 'Encounter', id: 'stay9', status: 'in-progress', class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'IMP' }, subject: { reference: `Patient/${patient}` }, period: { start: '2026-04-28T09:00:00Z' }, serviceProvider: { reference: 'Organization/hebburn-hospital' }, location: [{ location: { reference: 'Location/collier-ward' }, status: 'active', period: { start: '2026-04-28T09:00:00Z' } }] });
      const { referral } = await createReferral(ctx, { patient: `Patient/${patient}`, encounter: 'Encounter/stay9', hospitalOds: HOSPITAL_ODS, councilOds: COUNCIL_ODS, ward: 'Location/collier-ward' });
      await triage(ctx, referral.id, { action: 'accept' });
      const stay = (await t.fhir.get('Encounter/stay9')).body;
      await t.fhir.put('Encounter/stay9', { ...stay, location: [
        { location: { reference: 'Location/collier-ward' }, status: 'completed', period: { start: '2026-04-28T09:00:00Z', end: '2026-04-30T10:00:00Z' } },
        { location: { reference: 'Location/heron-ward', display: 'Heron Ward' }, status: 'active', period: { start: '2026-04-30T10:00:00Z' } },
      ] });
      await t.server.discharge.runWorkers();
      let sr = (await t.fhir.get(`ServiceRequest/${referral.id}`)).body;
      assert.deepEqual(sr.contained[0].location, [{ reference: 'Location/heron-ward', display: 'Heron Ward' }]);

      const moved = (await t.fhir.get('Encounter/stay9')).body;
      await t.fhir.put('Encounter/stay9', { ...moved, status: 'cancelled' });
      await t.server.discharge.runWorkers();
      await t.server.discharge.runWorkers();
      const again = (await t.fhir.get('Encounter/stay9')).body;
      await t.fhir.put('Encounter/stay9', { ...again, class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'ACUTE' } }); // a later update of the cancelled stay
      await t.server.discharge.runWorkers();
      const notes = (await t.fhir.get(`Communication?based-on=ServiceRequest/${referral.id}`)).body.entry.map((e: any) => e.resource);
      const cancelled = notes.filter((n: any) => n.category?.[0]?.text === 'Admission cancelled');
      assert.equal(cancelled.length, 1, 'told once');
      assert.match(cancelled[0].payload[0].contentString, /cancelled the admission this referral was made for/);
      sr = (await t.fhir.get(`ServiceRequest/${referral.id}`)).body;
      assert.equal(sr.status, 'active', 'left for the hospital to withdraw or refer again: the person may be on another stay');
    });
  });
}
