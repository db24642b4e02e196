// The red bag over the FHIR API, on both engines, with real people's tokens: the draft pack from the demo
// data, sending (never half-built), the round trip inside one deployment, two people acting at once, who
// may see a pack, and the printed PDF's text.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ENGINES } from '../support/server.ts';
import { COMPLETE, params, startRedBagServer, type RedBagServer } from './support.ts';
import { pdfText } from './pdfText.ts';

const TASK_CODE = 'https://carebridge.example/CodeSystem/red-bag-task|red-bag';
const step = (name: string, extra: Record<string, unknown>[] = []) => ({ resourceType: 'Parameters', parameter: [{ name: 'step', valueCode: name }, ...extra] });

for (const engine of ENGINES) {
  describe(`red bag over the FHIR API (${engine})`, () => {
    let s: RedBagServer;
    before(async () => (s = await startRedBagServer(engine)));
    after(() => s.close());

    it('builds the draft pack from the demo record as a FHIR document, without sending it', async () => {
      const draft = await s.as.carer.post(`Patient/${s.resident}/$red-bag`, params({ reason: 'Fall with head injury', destination: 'RX9' }));
      assert.equal(draft.status, 200, JSON.stringify(draft.body));
      const bundle = draft.body;
      assert.equal(bundle.resourceType, 'Bundle');
      assert.equal(bundle.type, 'document');
      const composition = bundle.entry[0].resource;
      assert.equal(composition.resourceType, 'Composition');
      assert.equal(composition.status, 'preliminary');
      assert.equal(composition.subject.reference, `Patient/${s.resident}`);
      assert.deepEqual(composition.section.map((x: any) => x.title), [
        'Summary', 'Person demographics and GP', 'Reason for transfer (SBARD)', 'Baseline when well', 'Latest observations and NEWS2', 'Current medicines',
        'Allergies and adverse reactions', 'DNACPR, ReSPECT and advance decisions', 'About me', 'Safety alerts', 'Problems and diagnoses',
        'Professional contacts and next of kin', 'Belongings in the bag', 'Checks before sending', 'Person completing the record',
      ]);
      // The record's own resources travel in the document, and the sections point at them.
      const types = new Set(bundle.entry.map((e: any) => e.resource.resourceType));
      for (const type of ['Patient', 'Organization', 'MedicationRequest', 'Observation', 'CarePlan', 'RelatedPerson', 'CareTeam']) assert.ok(types.has(type), type);
      const meds = s.resources.filter((r) => r.resourceType === 'MedicationRequest' && r.subject.reference === `Patient/${s.resident}`);
      const medSection = composition.section.find((x: any) => x.title === 'Current medicines');
      assert.equal(medSection.entry.length, meds.length);
      for (const m of meds) assert.ok(medSection.text.div.includes(m.medicationCodeableConcept.text), m.medicationCodeableConcept.text);
      assert.match(composition.section[0].text.div, /Fall with head injury/);
      assert.match(composition.section[0].text.div, /Northshire Hospitals NHS Foundation Trust/);
      assert.match(composition.section[4].text.div, /NEWS2 \d+ \((low|low-medium|medium|high) clinical risk\)/);
      // Nothing was written: no pack, no Task.
      assert.equal((await s.t.fhir.get(`Task?code=${encodeURIComponent(TASK_CODE)}&_summary=count`)).body.total, 0);
    });

    it('lists every missing mandatory item and writes nothing when a pack cannot be sent', async () => {
      const refused = await s.as.carer.post(`Patient/${s.resident}/$red-bag-send`, params({ belongings: ['Glasses'] }));
      assert.equal(refused.status, 422);
      const said = refused.body.issue.map((i: any) => i.diagnostics).join('\n');
      assert.match(said, /reason for transfer is missing/);
      assert.match(said, /No receiving hospital is chosen/);
      assert.match(said, /has not confirmed it is accurate/);
      const unknown = await s.as.carer.post(`Patient/${s.resident}/$red-bag-send`, params({ ...COMPLETE, destination: 'ZZ999' }));
      assert.equal(unknown.status, 422);
      assert.match(unknown.body.issue[0].diagnostics, /No hospital with ODS code ZZ999/);
      assert.equal((await s.t.fhir.get('DocumentReference?_summary=count')).body.total, 0, 'no half-built pack');
      assert.equal((await s.t.fhir.get(`Task?code=${encodeURIComponent('https://carebridge.example/CodeSystem/red-bag-task|')}&_summary=count`)).body.total, 0, 'no red-bag Task (the demo data has discharge Tasks of its own)');
      const bad = await s.as.carer.post(`Patient/${s.resident}/$red-bag-send`, { resourceType: 'Parameters', parameter: [{ name: 'colour', valueString: 'red' }] });
      assert.equal(bad.status, 400);
      assert.match(bad.body.issue[0].diagnostics, /Unknown parameter 'colour'/);
    });

    let taskId = '';
    it('sends; the hospital sees it at once, and only the sending home and the receiving hospital can', async () => {
      const before = await s.as.nurse.get(`Patient/${s.resident}`);
      assert.equal(before.status, 403, 'the ward has no relationship before the pack is sent');
      const sent = await s.as.carer.post(`Patient/${s.resident}/$red-bag-send`, params(COMPLETE));
      assert.equal(sent.status, 201, JSON.stringify(sent.body));
      assert.equal(sent.headers.get('etag'), 'W/"1"');
      taskId = sent.body.id;
      assert.equal(sent.body.status, 'requested');
      assert.equal(sent.body.businessStatus.coding[0].code, 'sent');
      assert.equal(sent.body.owner.identifier.value, 'RX9');
      assert.match(sent.body.note[0].text, /Sent to Northshire Hospitals NHS Foundation Trust, by Test carer \(VM101\)/);
      assert.equal(sent.body.note[0].authorReference.reference, 'Practitioner/demo-prac-vm101-senior-carer');

      const incoming = await s.as.nurse.get(`Task?code=${encodeURIComponent(TASK_CODE)}&owner:Organization.identifier=${encodeURIComponent('https://fhir.nhs.uk/Id/ods-organization-code|RX9')}&status=requested`);
      assert.deepEqual(incoming.body.entry.map((e: any) => e.resource.id), [taskId], 'the ward sees the pack immediately');
      assert.equal((await s.as.nurse.get(`Patient/${s.resident}`)).status, 200, 'and the resident');
      const pack = await s.as.nurse.get(`Task/${taskId}/$red-bag-pack`);
      assert.equal(pack.status, 200);
      assert.equal(pack.body.entry[0].resource.status, 'final');
      assert.equal(pack.body.entry[0].resource.attester[0].party.display, 'Test carer');
      // Reminders: acknowledgement due for the hospital, the manager's visit for the home.
      const reminders = await s.as.carer.get(`Task?part-of=Task/${taskId}`);
      const byCode = Object.fromEntries(reminders.body.entry.map((e: any) => [e.resource.code.coding[0].code, e.resource]));
      const sentAt = Date.parse(sent.body.authoredOn);
      assert.equal(Date.parse(byCode['acknowledge-red-bag'].restriction.period.end) - sentAt, 4 * 3600_000);
      assert.equal(Date.parse(byCode['manager-visit'].restriction.period.end) - sentAt, 72 * 3600_000);

      for (const outsider of ['otherHome', 'otherHospital']) {
        assert.equal((await s.as[outsider].get(`Task/${taskId}`)).status, 403, `${outsider} reads the Task`);
        assert.equal((await s.as[outsider].get(`Task/${taskId}/$red-bag-pack`)).status, 403, `${outsider} reads the pack`);
        assert.equal((await s.as[outsider].post(`Patient/${s.resident}/$red-bag`, params({}))).status, 403, `${outsider} drafts one`);
        const listed = await s.as[outsider].get(`Task?code=${encodeURIComponent(TASK_CODE)}`);
        assert.equal(listed.body.entry?.length ?? 0, 0, `${outsider} lists red bags`);
      }
    });

    it('takes each step once, against the version seen: two people at once get one success and one 412', async () => {
      assert.equal((await s.as.nurse.post(`Task/${taskId}/$red-bag-step`, step('received'))).status, 428, 'If-Match is required');
      assert.equal((await s.as.carer.post(`Task/${taskId}/$red-bag-step`, step('received'), { 'if-match': 'W/"1"' })).status, 403, 'the home cannot acknowledge for the hospital');
      const [a, b] = await Promise.all([
        s.as.nurse.post(`Task/${taskId}/$red-bag-step`, step('received', [{ name: 'note', valueString: 'first nurse' }]), { 'if-match': 'W/"1"' }),
        s.as.nurse2.post(`Task/${taskId}/$red-bag-step`, step('received', [{ name: 'note', valueString: 'second nurse' }]), { 'if-match': 'W/"1"' }),
      ]);
      assert.deepEqual([a.status, b.status].sort(), [200, 412], `${a.status} ${b.status}`);
      const now = await s.as.carer.get(`Task/${taskId}`);
      assert.equal(now.body.meta.versionId, '2');
      const winner = a.status === 200 ? 'first nurse' : 'second nurse';
      assert.equal(now.body.note.filter((n: any) => /nurse/.test(n.text)).length, 1);
      assert.match(now.body.note[1].text, new RegExp(`Received by the hospital: ${winner}`));
      const ack = await s.as.carer.get(`Task?part-of=Task/${taskId}&code=${encodeURIComponent('https://carebridge.example/CodeSystem/red-bag-task|acknowledge-red-bag')}`);
      assert.equal(ack.body.entry[0].resource.status, 'completed', 'the acknowledgement reminder is done');
      // Two ward updates from the same version: the later one is refused, so neither is silently lost.
      const [w1, w2] = await Promise.all([
        s.as.nurse.post(`Task/${taskId}/$red-bag-step`, step('in-hospital', [{ name: 'ward', valueString: 'Ash' }]), { 'if-match': 'W/"2"' }),
        s.as.nurse2.post(`Task/${taskId}/$red-bag-step`, step('in-hospital', [{ name: 'expected-discharge', valueDate: '2026-12-03' }]), { 'if-match': 'W/"2"' }),
      ]);
      assert.deepEqual([w1.status, w2.status].sort(), [200, 412]);
      const loser = w1.status === 412 ? { who: s.as.nurse, p: [{ name: 'ward', valueString: 'Ash' }] } : { who: s.as.nurse2, p: [{ name: 'expected-discharge', valueDate: '2026-12-03' }] };
      const retried = await loser.who.post(`Task/${taskId}/$red-bag-step`, step('in-hospital', loser.p), { 'if-match': 'W/"3"' });
      assert.equal(retried.status, 200, 'retried against the version now there');
      assert.deepEqual(retried.body.input.map((i: any) => i.valueString ?? i.valueDate).sort(), ['2026-12-03', 'Ash'], 'both updates kept');
    });

    it('completes the round trip: discharge summary back to the home, returned, closed; every step in the history', async () => {
      const skip = await s.as.carer.post(`Task/${taskId}/$red-bag-step`, step('closed'), { 'if-match': 'W/"4"' });
      assert.equal(skip.status, 409, 'cannot close before the return');
      const summary = await s.as.nurse.post(`Task/${taskId}/$red-bag-step`, step('discharge-summary-attached', [{ name: 'discharge-summary', valueString: 'Treated for UTI. Continue nitrofurantoin 3 days.' }]), { 'if-match': 'W/"4"' });
      assert.equal(summary.status, 200, JSON.stringify(summary.body));
      const docRef = summary.body.output[0].valueReference.reference;
      const doc = await s.as.carer.get(docRef);
      assert.equal(Buffer.from(doc.body.content[0].attachment.data, 'base64').toString(), 'Treated for UTI. Continue nitrofurantoin 3 days.', 'the home reads the summary');
      const returned = await s.as.carer.post(`Task/${taskId}/$red-bag-step`, step('returned'), { 'if-match': 'W/"5"' });
      assert.equal(returned.status, 200);
      const closed = await s.as.manager.post(`Task/${taskId}/$red-bag-step`, step('closed'), { 'if-match': 'W/"6"' });
      assert.equal(closed.status, 200);
      assert.equal(closed.body.status, 'completed');
      const history = await s.as.carer.get(`Task/${taskId}/_history`);
      assert.deepEqual(history.body.entry.map((e: any) => e.resource.businessStatus.coding[0].code).reverse(),
        ['sent', 'received', 'in-hospital', 'in-hospital', 'discharge-summary-attached', 'returned', 'closed']);
      for (const n of closed.body.note) assert.ok(n.time && /, by Test /.test(n.text), 'each step timestamped and attributed');
      assert.equal((await s.as.nurse.get(`Task/${taskId}`)).status, 403, 'once closed, the hospital relationship ends');
    });

    it('prints the pack as a PDF: a one-page summary, then the sections', async () => {
      const sent = await s.as.carer.post(`Patient/${s.resident}/$red-bag-send`, params({ ...COMPLETE, reason: 'Shortness of breath since the night' }));
      assert.equal(sent.status, 201);
      const printed = await s.as.nurse.get(`Task/${sent.body.id}/$red-bag-print`);
      assert.equal(printed.status, 200);
      assert.equal(printed.body.contentType, 'application/pdf');
      const pages = await pdfText(Buffer.from(printed.body.data, 'base64'));
      assert.ok(pages.length >= 2, `${pages.length} pages`);
      const patient = s.resources.find((r) => r.id === s.resident);
      const nhs = patient.identifier[0].value as string;
      assert.match(pages[0], new RegExp(`NHS number\\s*${nhs.slice(0, 3)} ${nhs.slice(3, 6)} ${nhs.slice(6)}`));
      assert.match(pages[0], /Shortness of breath since the night/);
      assert.match(pages[0], new RegExp(patient.name[0].family));
      assert.match(pages[0], /SYNTHETIC TEST DATA/);
      assert.doesNotMatch(pages[0], /Belongings in the bag/, 'the first page is the summary only');
      const rest = pages.slice(1).join('\n');
      for (const title of ['Current medicines', 'Allergies and adverse reactions', 'Belongings in the bag', 'Checks before sending']) assert.match(rest, new RegExp(title));
      assert.match(rest, /Hearing aids/);
    });
  });
}
