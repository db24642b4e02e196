// The red bag between two CareBridge deployments over the built-in MESH, on both engines. The care home's
// server hosts the MESH mailboxes (its own, processed there; the hospital's, polled by the hospital's
// server through its MESH client over real HTTP). The hospital's server knows both mailboxes as hosted
// elsewhere, so each side treats the other as "served elsewhere" and the pack and every step travel as
// FHIR messages. The hospital's record has the resident (same NHS number), not the home's data.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { addMailbox, inboxState, listDeadLetters } from '../../src/messaging/index.ts';
import { generateSyntheticNhsNumber } from '../../src/record/index.ts';
import { PACK_SENT_EVENT, STEP_EVENT, redBagMessage } from '../../src/redbag/index.ts';
import { loadServerConfig } from '../../src/config.ts';
import { ENGINES, fhirClient, startTestServer, type FhirClient, type TestServer } from '../support/server.ts';
import { stopOwnPostgres } from '../support/postgres.ts';
import { addPerson, personToken } from '../support/people.ts';
import { MESH_KEY, waitFor } from '../support/mesh.ts';
import { COMPLETE, params, startRedBagServer, type RedBagServer } from './support.ts';

after(stopOwnPostgres);

const HOME_BOX = 'VM101MESH';
const WARD_BOX = { id: 'RX9MESH', password: 'hospital-mesh-password' };
const WORKFLOW = 'CAREBRIDGE_RED_BAG';
const RED_BAG_ID = 'https://carebridge.example/red-bag';
const step = (name: string, extra: object[] = []) => ({ resourceType: 'Parameters', parameter: [{ name: 'step', valueCode: name }, ...extra] });
const stepCode = (task: any) => task.businessStatus?.coding?.[0]?.code;

it('takes the red bag workflow id from CAREBRIDGE_RED_BAG_WORKFLOW_ID, and refuses one MESH would not accept', () => {
  assert.equal(loadServerConfig({ port: 0 }, {}).redBag.workflowId, 'CAREBRIDGE_RED_BAG');
  assert.equal(loadServerConfig({ port: 0 }, { CAREBRIDGE_RED_BAG_WORKFLOW_ID: 'RED_BAG_V1' }).redBag.workflowId, 'RED_BAG_V1');
  assert.throws(() => loadServerConfig({ port: 0 }, { CAREBRIDGE_RED_BAG_WORKFLOW_ID: 'red bag, please' }), /CAREBRIDGE_RED_BAG_WORKFLOW_ID must be one MESH workflow id .* not 'red bag, please'/);
});

for (const engine of ENGINES) {
  describe(`the red bag between two deployments over MESH (${engine})`, () => {
    let home: RedBagServer;
    let hospital: TestServer;
    let nurse: FhirClient;
    let resident: any;

    before(async () => {
      home = await startRedBagServer(engine, undefined, { CAREBRIDGE_MESH_SHARED_KEY: MESH_KEY, CAREBRIDGE_MESSAGING_RETRY_MS: '200' });
      await addMailbox(home.t.server.driver, { mailboxId: HOME_BOX, ods: 'VM101', password: 'home-mesh-password' }, MESH_KEY);
      await addMailbox(home.t.server.driver, { mailboxId: WARD_BOX.id, ods: 'RX9', password: WARD_BOX.password, polled: true }, MESH_KEY);
      hospital = await startTestServer(engine, {
        CAREBRIDGE_MESH_URL: home.t.url, CAREBRIDGE_MESH_MAILBOX: WARD_BOX.id, CAREBRIDGE_MESH_PASSWORD: WARD_BOX.password,
        CAREBRIDGE_MESH_CLIENT_SHARED_KEY: MESH_KEY, CAREBRIDGE_MESH_WORKFLOW_IDS: WORKFLOW, CAREBRIDGE_MESH_POLL_MS: '100', CAREBRIDGE_MESSAGING_RETRY_MS: '200',
      });
      await addMailbox(hospital.server.driver, { mailboxId: WARD_BOX.id, ods: 'RX9' }, undefined);
      await addMailbox(hospital.server.driver, { mailboxId: HOME_BOX, ods: 'VM101' }, undefined);
      // The hospital's own record: itself, and the resident as registered there (same NHS number and birth date).
      resident = home.resources.find((r) => r.resourceType === 'Patient' && r.id === home.resident);
      const ward = home.resources.find((r) => r.resourceType === 'Organization' && r.identifier?.some((i: any) => i.value === 'RX9'));
      assert.equal((await hospital.fhir.put(`Organization/${ward.id}`, ward)).status, 201);
      const { id: _id, meta, ...demographics } = resident;
      assert.equal((await hospital.fhir.post('Patient', { ...demographics, meta: { tag: meta?.tag } })).status, 201);
      await addPerson(hospital, { username: 'nurse', role: 'ward-nurse', org: 'RX9', name: 'Test ward nurse' });
      nurse = fhirClient(hospital.base, { authorization: `Bearer ${await personToken(hospital, 'nurse')}` });
    });
    after(async () => {
      await hospital?.close();
      await home?.close();
    });

    const hospitalTask = (identifier: string) => waitFor(`the pack ${identifier} at the hospital`, async () => (await hospital.fhir.get(`Task?identifier=${encodeURIComponent(`${RED_BAG_ID}|${identifier}`)}`)).body.entry?.[0]?.resource);
    const homeTaskAt = (id: string, code: string) => waitFor(`the home's Task at ${code}`, async () => {
      const task = (await home.t.fhir.get(`Task/${id}`)).body;
      return stepCode(task) === code ? task : undefined;
    });

    it('sends the pack to the hospital, and each hospital step comes back to the home, discharge summary included', async () => {
      const sent = await home.as.carer.post(`Patient/${home.resident}/$red-bag-send`, params(COMPLETE));
      assert.equal(sent.status, 201, JSON.stringify(sent.body));
      const identifier = sent.body.identifier[0].value;

      // The hospital files it against its own Patient record, owned by the ward, awaiting acknowledgement.
      const filed = await hospitalTask(identifier);
      assert.equal(stepCode(filed), 'sent');
      assert.equal(filed.owner.identifier.value, 'RX9');
      assert.equal(filed.requester.identifier.value, 'VM101');
      const local = (await hospital.fhir.get(`Patient?identifier=${encodeURIComponent(`https://fhir.nhs.uk/Id/nhs-number|${resident.identifier[0].value}`)}`)).body.entry[0].resource;
      assert.equal(filed.for.reference, `Patient/${local.id}`);
      const pack = await nurse.get(`Task/${filed.id}/$red-bag-pack`);
      assert.equal(pack.status, 200, 'the ward nurse sees the pack');
      assert.equal(pack.body.type, 'document');
      assert.equal(pack.body.identifier.value, identifier);

      const received = await nurse.post(`Task/${filed.id}/$red-bag-step`, step('received'), { 'if-match': 'W/"1"' });
      assert.equal(received.status, 200, JSON.stringify(received.body));
      const atHome = await homeTaskAt(sent.body.id, 'received');
      assert.match(atHome.note.at(-1).text, /Test ward nurse \(RX9\)/, 'the home sees who acknowledged it');
      const reminders = (await home.t.fhir.get(`Task?part-of=Task/${sent.body.id}&code=${encodeURIComponent('https://carebridge.example/CodeSystem/red-bag-task|acknowledge-red-bag')}`)).body.entry;
      assert.equal(reminders[0].resource.status, 'completed', "the home's acknowledgement reminder is done");

      await nurse.post(`Task/${filed.id}/$red-bag-step`, step('in-hospital', [{ name: 'ward', valueString: 'Ash' }, { name: 'expected-discharge', valueDate: '2026-12-03' }]), { 'if-match': 'W/"2"' });
      const onWard = await homeTaskAt(sent.body.id, 'in-hospital');
      assert.deepEqual(onWard.input.map((i: any) => i.valueString ?? i.valueDate), ['Ash', '2026-12-03']);

      const summaryText = 'Treated for UTI. Continue nitrofurantoin 3 days.';
      const attached = await nurse.post(`Task/${filed.id}/$red-bag-step`, step('discharge-summary-attached', [{ name: 'discharge-summary', valueString: summaryText }]), { 'if-match': 'W/"3"' });
      assert.equal(attached.status, 200, JSON.stringify(attached.body));
      const withSummary = await homeTaskAt(sent.body.id, 'discharge-summary-attached');
      const summary = (await home.as.carer.get(withSummary.output[0].valueReference.reference)).body;
      assert.equal(Buffer.from(summary.content[0].attachment.data, 'base64').toString(), summaryText, 'the discharge summary is in the home\'s record');

      // The home records the return; the hospital's Task follows.
      const returned = await home.as.carer.post(`Task/${sent.body.id}/$red-bag-step`, step('returned'), { 'if-match': `W/"${withSummary.meta.versionId}"` });
      assert.equal(returned.status, 200, JSON.stringify(returned.body));
      await waitFor('the hospital Task returned', async () => stepCode((await hospital.fhir.get(`Task/${filed.id}`)).body) === 'returned');
    });

    it('applies a message sent twice (same MessageHeader.id) once', async () => {
      const sent = await home.as.carer.post(`Patient/${home.resident}/$red-bag-send`, params({ ...COMPLETE, reason: 'Chest pain' }));
      const identifier = sent.body.identifier[0].value;
      const filed = await hospitalTask(identifier);
      await nurse.post(`Task/${filed.id}/$red-bag-step`, step('received'), { 'if-match': 'W/"1"' });
      await homeTaskAt(sent.body.id, 'received');
      const moved = (await nurse.post(`Task/${filed.id}/$red-bag-step`, step('in-hospital', [{ name: 'ward', valueString: 'Birch' }]), { 'if-match': 'W/"2"' })).body;
      const before = await homeTaskAt(sent.body.id, 'in-hospital');

      // A further ward change, delivered twice under two MESH message ids (a resend after a lost reply).
      const again = redBagMessage(STEP_EVENT, { ods: 'RX9' }, { ods: 'VM101' }, { ...moved, input: [{ type: { text: 'Ward' }, valueString: 'Cedar' }] });
      const ids: string[] = [];
      for (let i = 0; i < 2; i++) ids.push((await hospital.server.messaging.send({ from: WARD_BOX.id, to: HOME_BOX, workflowId: WORKFLOW, body: Buffer.from(JSON.stringify(again)) })).messageId);
      for (const id of ids) await waitFor(`message ${id} done`, async () => (await inboxState(home.t.server.driver, id))?.status === 'done');
      const after = (await home.t.fhir.get(`Task/${sent.body.id}`)).body;
      assert.equal(Number(after.meta.versionId), Number(before.meta.versionId) + 1, 'one new version, not two');
      assert.equal(after.input.find((i: any) => i.type.text === 'Ward').valueString, 'Cedar');

      // The pack itself sent twice: one Task at the hospital.
      const packMessage = redBagMessage(PACK_SENT_EVENT, { ods: 'VM101' }, { ods: 'RX9' }, { ...(await home.as.carer.get(`Task/${sent.body.id}/$red-bag-pack`)).body, identifier: { system: RED_BAG_ID, value: 'resent-pack-1' } });
      const copies: string[] = [];
      for (let i = 0; i < 2; i++) copies.push((await home.t.server.messaging.send({ from: HOME_BOX, to: WARD_BOX.id, workflowId: WORKFLOW, body: Buffer.from(JSON.stringify(packMessage)) })).messageId);
      for (const id of copies) await waitFor(`copy ${id} done at the hospital`, async () => (await inboxState(hospital.server.driver, id))?.status === 'done');
      assert.equal((await hospital.fhir.get(`Task?identifier=${encodeURIComponent(`${RED_BAG_ID}|resent-pack-1`)}`)).body.entry.length, 1);
    });

    it('dead-letters a pack for an NHS number no Patient at the hospital has, and files nothing', async () => {
      const pack = (await home.t.fhir.post(`Patient/${home.resident}/$red-bag`, params(COMPLETE))).body;
      let stranger = generateSyntheticNhsNumber();
      while (stranger === resident.identifier[0].value) stranger = generateSyntheticNhsNumber();
      pack.identifier.value = 'unknown-person-1';
      for (const e of pack.entry) if (e.resource.resourceType === 'Patient') e.resource.identifier = [{ system: 'https://fhir.nhs.uk/Id/nhs-number', value: stranger }];
      const { messageId } = await home.t.server.messaging.send({ from: HOME_BOX, to: WARD_BOX.id, workflowId: WORKFLOW, body: Buffer.from(JSON.stringify(redBagMessage(PACK_SENT_EVENT, { ods: 'VM101' }, { ods: 'RX9' }, pack))) });
      const dead = await waitFor('the dead letter', async () => (await listDeadLetters(hospital.server.driver)).find((d) => d.messageId === messageId));
      assert.match(dead.reason, new RegExp(`no Patient here has NHS number ${stranger}`));
      assert.equal((await hospital.fhir.get(`Task?identifier=${encodeURIComponent(`${RED_BAG_ID}|unknown-person-1`)}`)).body.entry?.length ?? 0, 0);

      // The right NHS number but another birth date: not filed either, until someone checks who this is.
      for (const e of pack.entry) if (e.resource.resourceType === 'Patient') e.resource = { ...e.resource, identifier: resident.identifier, birthDate: '1901-01-01' };
      pack.identifier.value = 'other-birth-date-1';
      const second = await home.t.server.messaging.send({ from: HOME_BOX, to: WARD_BOX.id, workflowId: WORKFLOW, body: Buffer.from(JSON.stringify(redBagMessage(PACK_SENT_EVENT, { ods: 'VM101' }, { ods: 'RX9' }, pack))) });
      const mismatch = await waitFor('the second dead letter', async () => (await listDeadLetters(hospital.server.driver)).find((d) => d.messageId === second.messageId));
      assert.match(mismatch.reason, /was born on .* the pack says 1901-01-01/);
      assert.equal((await hospital.fhir.get(`Task?identifier=${encodeURIComponent(`${RED_BAG_ID}|other-birth-date-1`)}`)).body.entry?.length ?? 0, 0);
    });
  });
}
