// Discharge on the FHIR API for integrators, both engines, over real HTTP with people's own tokens: a
// hospital's discharge coordinator refers a patient ($discharge-referral) and a council's social worker
// takes the workflow's steps ($discharge-step) with If-Match; bad input, stale versions and the wrong side
// get clear OperationOutcomes and change nothing.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ENGINES, fhirClient, startTestServer, type FhirClient, type TestServer } from '../support/server.ts';
import { stopOwnPostgres } from '../support/postgres.ts';
import { addPerson, personToken } from '../support/people.ts';
import { triageStateOf, MEDICALLY_READY_URL } from '../../src/discharge/index.ts';
import { seedDischargePages, COUNCIL, HOSPITAL, OTHER_COUNCIL, ODS_ORG } from './pagesSeed.ts';

after(stopOwnPostgres);

const params = (...p: [string, Record<string, unknown>][]) => ({ resourceType: 'Parameters', parameter: p.map(([name, value]) => ({ name, ...value })) });
const step = (name: string, extra: [string, Record<string, unknown>][] = []) => params(['step', { valueCode: name }], ...extra);
const diagnostics = (body: any) => body.issue?.map((i: any) => i.diagnostics).join(' ');

for (const engine of ENGINES) {
  describe(`discharge operations on the FHIR API (${engine})`, () => {
    let t: TestServer;
    let council: FhirClient;
    let hospital: FhirClient;
    let referralId: string;
    let taskId: string;
    let seeded: Record<'alice' | 'bert' | 'cora', string>;

    before(async () => {
      t = await startTestServer(engine, { CAREBRIDGE_DISCHARGE_POLL_SECONDS: '3600' });
      seeded = await seedDischargePages(t);
      await addPerson(t, { username: 'api.social', role: 'social-worker', org: COUNCIL, fhirUser: 'Practitioner/sam-social' });
      await addPerson(t, { username: 'api.coord', role: 'discharge-coordinator', org: HOSPITAL });
      council = fhirClient(t.base, { authorization: `Bearer ${await personToken(t, 'api.social')}` });
      hospital = fhirClient(t.base, { authorization: `Bearer ${await personToken(t, 'api.coord')}` });
    });
    after(() => t?.close());

    it('a coordinator refers a patient; bad input is refused whole', async () => {
      let r = await hospital.post('Patient/dora/$discharge-referral', params(['council', { valueString: COUNCIL }]));
      assert.equal(r.status, 400, JSON.stringify(r.body));
      assert.match(diagnostics(r.body), /'reason' is required/);
      r = await hospital.post('Patient/dora/$discharge-referral', params(['council', { valueString: COUNCIL }], ['reason', { valueString: 'Lives alone' }], ['pathway', { valueCode: '7' }]));
      assert.equal(r.status, 400, JSON.stringify(r.body));
      assert.match(diagnostics(r.body), /'pathway' must be 0, 1, 2 or 3/);
      assert.equal((await t.fhir.get('ServiceRequest?subject=Patient/dora')).body.total ?? (await t.fhir.get('ServiceRequest?subject=Patient/dora')).body.entry?.length ?? 0, 0, 'nothing half-written');
      assert.equal((await council.post('Patient/dora/$discharge-referral', params(['council', { valueString: COUNCIL }], ['reason', { valueString: 'x' }]))).status, 403, 'councils do not refer');

      r = await hospital.post('Patient/dora/$discharge-referral', params(
        ['council', { valueString: COUNCIL }], ['reason', { valueString: 'Lives alone; needs help at home' }], ['pathway', { valueCode: '1' }],
        ['encounter', { valueReference: { reference: 'Encounter/dora-stay' } }], ['ward', { valueReference: { reference: 'Location/kestrel' } }],
        ['need', { valueString: 'Help to wash' }], ['consented', { valueCode: 'Y' }],
      ));
      assert.equal(r.status, 201, JSON.stringify(r.body));
      assert.equal(r.body.resourceType, 'ServiceRequest');
      assert.match(r.headers.get('location') ?? '', /\/ServiceRequest\/[^/]+\/_history\/1$/);
      referralId = r.body.id;
      const task = (await council.get(`Task?focus=ServiceRequest/${referralId}&code=triage-referral`)).body.entry[0].resource;
      taskId = task.id;
      assert.equal(triageStateOf(task), 'received');

      // The same call again (a retry, a second system): the stay already has an open referral.
      r = await hospital.post('Patient/dora/$discharge-referral', params(
        ['council', { valueString: COUNCIL }], ['reason', { valueString: 'Lives alone; needs help at home' }], ['pathway', { valueCode: '1' }],
        ['encounter', { valueReference: { reference: 'Encounter/dora-stay' } }],
      ));
      assert.equal(r.status, 409, JSON.stringify(r.body));
      assert.match(diagnostics(r.body), new RegExp(`already has an open discharge referral \\(ServiceRequest/${referralId}\\)`));
      const forStay = (await t.fhir.get('ServiceRequest?encounter=Encounter/dora-stay')).body.entry ?? [];
      assert.deepEqual(forStay.map((e: any) => e.resource.id), [referralId], 'still one referral for the stay');
    });

    it('the council takes steps with If-Match; a stale version, a missing If-Match, an unknown step and the wrong side are refused', async () => {
      let r = await council.post(`Task/${taskId}/$discharge-step`, step('accept'));
      assert.equal(r.status, 428, JSON.stringify(r.body));
      r = await council.post(`Task/${taskId}/$discharge-step`, step('approve'), { 'if-match': 'W/"1"' });
      assert.equal(r.status, 400, JSON.stringify(r.body));
      assert.match(diagnostics(r.body), /'step' must be one of accept, request-information/, JSON.stringify(r.body));
      r = await hospital.post(`Task/${taskId}/$discharge-step`, step('accept'), { 'if-match': 'W/"1"' });
      assert.equal(r.status, 403, JSON.stringify(r.body));
      assert.match(diagnostics(r.body), /taken by the council's social workers/);
      r = await council.post(`Task/${taskId}/$discharge-step`, step('reject'), { 'if-match': 'W/"1"' });
      assert.equal(r.status, 400, JSON.stringify(r.body));
      assert.match(diagnostics(r.body), /'text' is required: a referral is only rejected with a reason/);

      r = await council.post(`Task/${taskId}/$discharge-step`, step('accept', [['text', { valueString: 'We will assess on Monday' }]]), { 'if-match': 'W/"1"' });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.equal(triageStateOf(r.body), 'accepted');
      assert.equal(r.headers.get('etag'), `W/"${r.body.meta.versionId}"`);
      const accepted = r.body.meta.versionId;

      r = await council.post(`Task/${taskId}/$discharge-step`, step('request-information', [['text', { valueString: 'Stairs at home?' }]]), { 'if-match': 'W/"1"' });
      assert.equal(r.status, 412, 'acting on the version before the acceptance is refused');
      assert.equal(triageStateOf((await council.get(`Task/${taskId}`)).body), 'accepted', 'and changes nothing');

      r = await council.post(`Task/${taskId}/$discharge-step`, step('assign-worker', [['worker', { valueReference: { reference: 'Practitioner/ola-other', display: 'Ola Other' } }]]), { 'if-match': `W/"${accepted}"` });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.equal(r.body.owner.reference, 'Practitioner/ola-other');
      r = await council.post(`Task/${taskId}/$discharge-step`, step('support-arranged', [['text', { valueString: 'Four calls a day' }]]), { 'if-match': r.headers.get('etag')! });
      assert.equal(triageStateOf(r.body), 'support-arranged');
      r = await council.post(`Task/${taskId}/$discharge-step`, step('note', [['text', { valueString: 'Family agree' }]]), { 'if-match': r.headers.get('etag')! });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      r = await council.post(`Task/${taskId}/$discharge-step`, step('ready'), { 'if-match': r.headers.get('etag')! });
      assert.equal(triageStateOf(r.body), 'ready');
    });

    it('the hospital records medically ready and the discharge; the history shows every step', async () => {
      let task = (await hospital.get(`Task/${taskId}`)).body;
      let r = await hospital.post(`Task/${taskId}/$discharge-step`, step('medically-ready', [['date', { valueDate: '2026-02-30' }]]), { 'if-match': `W/"${task.meta.versionId}"` });
      assert.equal(r.status, 400, JSON.stringify(r.body));
      assert.match(diagnostics(r.body), /'date' must be a date/);
      r = await hospital.post(`Task/${taskId}/$discharge-step`, step('medically-ready', [['date', { valueDate: '2026-02-02' }]]), { 'if-match': `W/"${task.meta.versionId}"` });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      const referral = (await hospital.get(`ServiceRequest/${referralId}`)).body;
      assert.equal(referral.extension.find((e: any) => e.url === MEDICALLY_READY_URL).valueDateTime, '2026-02-02');
      r = await hospital.post(`Task/${taskId}/$discharge-step`, step('discharged', [['date', { valueDate: '2026-02-04' }]]), { 'if-match': r.headers.get('etag')! });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.equal(triageStateOf(r.body), 'discharged');
      task = r.body;
      const history = (await t.fhir.get(`Task/${taskId}/_history`)).body.entry.map((e: any) => triageStateOf(e.resource));
      for (const state of ['received', 'accepted', 'assigned', 'support-arranged', 'ready', 'discharged']) assert.ok(history.includes(state), `${state} in the history`);
      const notes = (await t.fhir.get(`Communication?based-on=ServiceRequest/${referralId}`)).body.entry.map((e: any) => e.resource.payload[0].contentString);
      assert.ok(notes.includes('We will assess on Monday') && notes.includes('Family agree'), 'notes both sides see');
      assert.equal((await hospital.post('ServiceRequest/x/$discharge-step', step('note'), { 'if-match': 'W/"1"' })).status, 405, 'the operation is on the triage Task, not the referral');
      const metadata = (await hospital.get('metadata')).body;
      const ops = (type: string) => metadata.rest[0].resource.find((r: any) => r.type === type).operation.map((o: any) => o.name);
      assert.ok(ops('Task').includes('discharge-step') && ops('Patient').includes('discharge-referral') && ops('Patient').includes('everything'), 'the CapabilityStatement lists them');
      assert.equal((await hospital.post(`Task/demo-missing/$discharge-step`, step('note', [['text', { valueString: 'x' }]]), { 'if-match': 'W/"1"' })).status, 404);
    });

    // H-038: seeing the person is not enough to act on their referral; only its council and its hospital do.
    it('another council or hospital that can see the person cannot triage, note, withdraw or discharge their referral; nothing changes; the referral\'s own can', async () => {
      // Cora is referred by Riverside (RHX) to Westshire (LA888). Eastshire (LA777) also supports her at
      // home, and she once stayed at another hospital (RYY): both see her record, and her referral.
      await t.fhir.put('Organization/ryy', { resourceType: 'Organization', id: 'ryy', identifier: [{ system: ODS_ORG, value: 'RYY' }], name: 'Yarrow Hospital' });
      await t.fhir.put('EpisodeOfCare/cora-la777', { resourceType: 'EpisodeOfCare', id: 'cora-la777', status: 'active', patient: { reference: 'Patient/cora' }, managingOrganization: { reference: 'Organization/la777' } });
      await t.fhir.put('Encounter/cora-ryy', { resourceType: 'Encounter', id: 'cora-ryy', status: 'in-progress', class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'IMP' }, subject: { reference: 'Patient/cora' }, serviceProvider: { reference: 'Organization/ryy' } });
      await addPerson(t, { username: 'api.west', role: 'social-worker', org: OTHER_COUNCIL });
      await addPerson(t, { username: 'api.yarrow', role: 'discharge-coordinator', org: 'RYY' });
      const west = fhirClient(t.base, { authorization: `Bearer ${await personToken(t, 'api.west')}` });
      const yarrow = fhirClient(t.base, { authorization: `Bearer ${await personToken(t, 'api.yarrow')}` });
      const cora = seeded.cora;
      const coraTask = (await t.fhir.get(`Task?focus=ServiceRequest/${cora}&code=triage-referral`)).body.entry[0].resource;
      const notes = async () => (await t.fhir.get(`Communication?based-on=ServiceRequest/${cora}`)).body.entry?.length ?? 0;
      const before = { task: coraTask.meta.versionId, referral: (await t.fhir.get(`ServiceRequest/${cora}`)).body.meta.versionId, notes: await notes() };
      const ifMatch = { 'if-match': `W/"${before.task}"` };
      assert.equal((await council.get(`Task/${coraTask.id}`)).status, 200, 'Eastshire can read the Task (it cares for Cora)');
      assert.equal((await yarrow.get(`Task/${coraTask.id}`)).status, 200, 'so can Yarrow');

      type Try = [string, [string, Record<string, unknown>][]];
      const councilTries: Try[] = [['reject', [['text', { valueString: 'Not known to us' }]]], ['accept', []], ['request-information', [['text', { valueString: 'Stairs?' }]]], ['note', [['text', { valueString: 'Closing this' }]]]];
      for (const [name, extra] of councilTries) {
        const r = await council.post(`Task/${coraTask.id}/$discharge-step`, step(name, extra), ifMatch);
        assert.equal(r.status, 403, `${name}: ${JSON.stringify(r.body)}`);
        assert.equal(r.body.resourceType, 'OperationOutcome');
        assert.match(diagnostics(r.body), name === 'note' ? /Only Westshire Council or Riverside Hospital can add notes to this referral; you act for LA777/ : /Only Westshire Council can .* this referral; you act for LA777/, name);
      }
      const hospitalTries: Try[] = [['withdraw', [['text', { valueString: 'Wrong hospital' }]]], ['discharged', [['date', { valueDate: '2026-01-09' }]]], ['medically-ready', [['date', { valueDate: '2026-01-08' }]]], ['note', [['text', { valueString: 'Gone home' }]]]];
      for (const [name, extra] of hospitalTries) {
        const r = await yarrow.post(`Task/${coraTask.id}/$discharge-step`, step(name, extra), ifMatch);
        assert.equal(r.status, 403, `${name}: ${JSON.stringify(r.body)}`);
        assert.match(diagnostics(r.body), name === 'note' ? /you act for RYY/ : /Only Riverside Hospital can .* this referral; you act for RYY/, name);
      }
      const task = (await t.fhir.get(`Task/${coraTask.id}`)).body;
      const referral = (await t.fhir.get(`ServiceRequest/${cora}`)).body;
      assert.equal(task.meta.versionId, before.task, 'the Task is untouched');
      assert.equal(triageStateOf(task), 'received');
      assert.equal(referral.meta.versionId, before.referral, 'the referral is untouched');
      assert.equal(referral.status, 'active');
      assert.equal(await notes(), before.notes, 'no note was filed');

      // The referral's own council and hospital, and a system client, still act.
      let r = await west.post(`Task/${coraTask.id}/$discharge-step`, step('accept'), ifMatch);
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.equal(triageStateOf(r.body), 'accepted');
      r = await hospital.post(`Task/${coraTask.id}/$discharge-step`, step('medically-ready', [['date', { valueDate: '2026-01-08' }]]), { 'if-match': r.headers.get('etag')! });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      r = await t.fhir.post(`Task/${coraTask.id}/$discharge-step`, step('note', [['text', { valueString: 'Filed by the trust\'s system' }]]), { 'if-match': r.headers.get('etag')! });
      assert.equal(r.status, 200, JSON.stringify(r.body));
    });

    it('a coordinator refers only in their own hospital\'s name, from a stay at that hospital; a system client may name the hospital', async () => {
      // Ed is in Riverside (RHX) now, and has an open stay at Yarrow (RYY) too.
      await t.fhir.put('Organization/ryy', { resourceType: 'Organization', id: 'ryy', identifier: [{ system: ODS_ORG, value: 'RYY' }], name: 'Yarrow Hospital' });
      await t.fhir.put('Patient/ed', { resourceType: 'Patient', id: 'ed', name: [{ text: 'Ed East' }] });
      const stay = (id: string, org: string) => ({ resourceType: 'Encounter', id, status: 'in-progress', class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'IMP' }, subject: { reference: 'Patient/ed' }, serviceProvider: { reference: `Organization/${org}` } });
      await t.fhir.put('Encounter/ed-stay', stay('ed-stay', 'rhx'));
      await t.fhir.put('Encounter/ed-ryy', stay('ed-ryy', 'ryy'));
      const refer = (client: FhirClient, encounter: string, hospitalOds?: string) => client.post('Patient/ed/$discharge-referral', params(
        ['council', { valueString: COUNCIL }], ['reason', { valueString: 'Lives alone' }], ['encounter', { valueReference: { reference: encounter } }],
        ...(hospitalOds ? [['hospital', { valueString: hospitalOds }] as [string, Record<string, unknown>]] : []),
      ));
      const referrals = async () => ((await t.fhir.get('ServiceRequest?subject=Patient/ed')).body.entry ?? []).map((e: any) => e.resource);

      let r = await refer(hospital, 'Encounter/ed-stay', 'RYY');
      assert.equal(r.status, 403, JSON.stringify(r.body));
      assert.match(diagnostics(r.body), /You act for RHX: you refer in your own hospital's name, not RYY's/);
      r = await refer(hospital, 'Encounter/ed-ryy');
      assert.equal(r.status, 422, JSON.stringify(r.body));
      assert.match(diagnostics(r.body), /Encounter\/ed-ryy is a stay at Yarrow Hospital, not at Riverside Hospital/);
      r = await refer(t.fhir, 'Encounter/ed-stay', 'RYY');
      assert.equal(r.status, 422, `a system client naming one hospital for another's stay: ${JSON.stringify(r.body)}`);
      r = await refer(hospital, 'Encounter/ed-nowhere');
      assert.equal(r.status, 422, JSON.stringify(r.body));
      assert.match(diagnostics(r.body), /Encounter\/ed-nowhere is not in the record/);
      // Someone else's stay at the same hospital: the referral would follow their discharge.
      await t.fhir.put('Patient/fay', { resourceType: 'Patient', id: 'fay', name: [{ text: 'Fay Field' }] });
      await t.fhir.put('Encounter/fay-stay', { ...stay('fay-stay', 'rhx'), subject: { reference: 'Patient/fay' } });
      for (const client of [hospital, t.fhir]) {
        r = await refer(client, 'Encounter/fay-stay', client === hospital ? undefined : 'RHX');
        assert.equal(r.status, 422, JSON.stringify(r.body));
        assert.match(diagnostics(r.body), /Encounter\/fay-stay is another person's stay, not Patient\/ed's/);
      }
      assert.deepEqual(await referrals(), [], 'nothing was written');

      r = await refer(hospital, 'Encounter/ed-stay', 'rhx');
      assert.equal(r.status, 201, `naming one's own hospital is fine: ${JSON.stringify(r.body)}`);
      assert.equal(r.body.contained[0].organization.reference, 'Organization/rhx');
      r = await refer(t.fhir, 'Encounter/ed-ryy', 'RYY');
      assert.equal(r.status, 201, `a system client names the hospital: ${JSON.stringify(r.body)}`);
      assert.equal(r.body.contained[0].organization.reference, 'Organization/ryy');
      assert.equal((await referrals()).length, 2);
    });
  });
}
