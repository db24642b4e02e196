// Every read, search, write, $everything and refused request to the FHIR API becomes an AuditEvent in the
// record, searchable through FHIR by whoever may read AuditEvents; no client can write or delete one.
// Both storage engines.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ENGINES, clientToken, fhirClient, startTestServer, TEST_ADMIN, type FhirClient, type TestServer } from '../support/server.ts';
import { stopOwnPostgres } from '../support/postgres.ts';
import { addClient } from '../../src/access/index.ts';
import { validateResource } from '../../src/record/validation.ts';
import { waitForAudit } from '../support/audit.ts';

after(() => stopOwnPostgres());

const CLIENT_ID_SYSTEM = 'https://carebridge.example/client-id';

const subtypeOf = (e: any) => e.subtype?.[0]?.code;
const patientsOf = (e: any) => (e.entity ?? []).filter((x: any) => x.role?.code === '1').map((x: any) => x.what.reference);
const queryOf = (e: any) => {
  const q = (e.entity ?? []).find((x: any) => x.query);
  return q ? Buffer.from(q.query, 'base64').toString('utf8') : undefined;
};

for (const engine of ENGINES) {
  describe(`audit trail (${engine})`, () => {
    let t: TestServer;
    let reader: FhirClient;
    let readerId: string;
    let pid: string;
    let otherPid: string;
    let obsId: string;

    before(async () => {
      t = await startTestServer(engine);
      const { client, secret } = await addClient(t.server.driver, { name: 'Northshire GP reader', scopes: 'system/Patient.rs system/Observation.rs', organization: 'A81001' });
      readerId = client.clientId;
      reader = fhirClient(t.base, { authorization: `Bearer ${await clientToken(t.url, readerId, secret!)}` });
      pid = (await t.fhir.post('Patient', { resourceType: 'Patient', name: [{ family: 'Audited' }] })).body.id;
      otherPid = (await t.fhir.post('Patient', { resourceType: 'Patient', name: [{ family: 'Other' }] })).body.id;
      obsId = (await t.fhir.post('Observation', { resourceType: 'Observation', status: 'final', code: { text: 'pulse' }, subject: { reference: `Patient/${pid}` } })).body.id;
    });
    after(async () => t?.close());

    it('a read is audited with the actor, their organisation, the patient and the outcome', async () => {
      assert.equal((await reader.get(`Observation/${obsId}`)).status, 200);
      const [event] = await waitForAudit(t.fhir, `altid=${readerId}&entity=Observation/${obsId}&subtype=read`);
      assert.equal(event.type.code, 'rest');
      assert.equal(event.action, 'R');
      assert.equal(event.outcome, '0');
      assert.ok(Date.parse(event.recorded) > Date.now() - 60_000);
      const agent = event.agent[0];
      assert.deepEqual(agent.who.identifier, { system: CLIENT_ID_SYSTEM, value: readerId });
      assert.equal(agent.who.display, 'Northshire GP reader');
      assert.equal(agent.requestor, true);
      assert.equal(agent.extension[0].valueIdentifier.value, 'A81001', 'the organisation (ODS code)');
      assert.equal(agent.role[0].text, 'system/Patient.rs system/Observation.rs');
      assert.match(agent.policy[0], /^urn:uuid:/, 'the token that allowed it');
      assert.ok(agent.network.address);
      assert.ok(event.source.observer.display);
      assert.deepEqual(patientsOf(event), [`Patient/${pid}`]);
      assert.ok(event.entity.some((x: any) => x.what?.reference === `Observation/${obsId}` && x.role.code === '4'));
      assert.ok(event.extension.some((x: any) => x.url.endsWith('/audit-chain')), 'carries its place in the hash chain');
      validateResource(event); // a valid R4 AuditEvent
    });

    it('a search is audited with its query and the patients it returned', async () => {
      const q = `subject=Patient/${pid}&code:text=pulse`;
      assert.equal((await reader.get(`Observation?${q}`)).body.total, 1);
      const sameQuery = (e: any) => new URLSearchParams(queryOf(e)).toString() === new URLSearchParams(q).toString();
      const events = await waitForAudit(t.fhir, `altid=${readerId}&subtype=search-type&patient=${pid}`, (es) => es.some(sameQuery));
      const event = events.find(sameQuery);
      assert.equal(event.action, 'E');
      assert.deepEqual(patientsOf(event), [`Patient/${pid}`]);
      assert.ok(event.entity.some((x: any) => x.type?.code === 'Observation'));
    });

    it('a write is audited as a create of the new resource in the patient\'s record', async () => {
      const created = await t.fhir.post('Observation', { resourceType: 'Observation', status: 'final', code: { text: 'temperature' }, subject: { reference: `Patient/${pid}` } });
      const [event] = await waitForAudit(t.fhir, `entity=Observation/${created.body.id}&subtype=create`);
      assert.equal(event.action, 'C');
      assert.equal(event.agent[0].altId, TEST_ADMIN.id);
      assert.deepEqual(patientsOf(event), [`Patient/${pid}`]);
    });

    it('a conditional create that finds its match is audited as a read of it, in the person\'s record', async () => {
      const weight = { resourceType: 'Observation', status: 'final', code: { text: 'weight' }, subject: { reference: `Patient/${pid}` }, identifier: [{ system: 'https://carebridge.example/test/weight', value: 'w-1' }] };
      const criteria = { 'if-none-exist': 'identifier=https://carebridge.example/test/weight|w-1' };
      const created = await t.fhir.post('Observation', weight, criteria);
      assert.equal(created.status, 201);
      const found = await t.fhir.post('Observation', weight, criteria);
      assert.equal(found.status, 200);
      assert.equal(found.body.id, created.body.id, 'the existing resource is shown');
      const [event] = await waitForAudit(t.fhir, `patient=${pid}&entity=Observation/${created.body.id}&subtype=read`);
      assert.equal(event.action, 'R');
      assert.equal(event.outcome, '0');
      assert.equal(event.agent[0].altId, TEST_ADMIN.id);
      assert.deepEqual(patientsOf(event), [`Patient/${pid}`]);
    });

    it('$everything is audited as an operation on the patient', async () => {
      assert.equal((await reader.get(`Patient/${pid}/$everything?_count=50`)).status, 200);
      const [event] = await waitForAudit(t.fhir, `altid=${readerId}&subtype=operation&patient=${pid}`);
      assert.equal(event.action, 'E');
      assert.equal(event.subtype[1].display, '$everything');
      assert.deepEqual(patientsOf(event), [`Patient/${pid}`]);
      assert.equal(queryOf(event), '_count=50');
    });

    it('history at every level is audited against the people whose versions it showed', async () => {
      const instance = await reader.get(`Observation/${obsId}/_history`);
      assert.equal(instance.status, 200);
      const [one] = await waitForAudit(t.fhir, `altid=${readerId}&subtype=history-instance&patient=${pid}`);
      assert.deepEqual(patientsOf(one), [`Patient/${pid}`]);
      assert.equal((await reader.get('Patient/_history?_count=100')).status, 200);
      const [type] = await waitForAudit(t.fhir, `altid=${readerId}&subtype=history-type&patient=${otherPid}`);
      assert.deepEqual(patientsOf(type).sort(), [`Patient/${pid}`, `Patient/${otherPid}`].sort(), 'both people whose Patient versions were listed');
      assert.equal(queryOf(type), '_count=100');
      assert.equal((await t.fhir.get('_history?_count=1000')).status, 200);
      const [system] = await waitForAudit(t.fhir, `subtype=history-system&patient=${pid}`);
      assert.ok(patientsOf(system).includes(`Patient/${otherPid}`), 'system history too');
    });

    it('"who has looked at my record" is one query', async () => {
      await reader.get(`Patient/${pid}`);
      await reader.get(`Patient/${otherPid}`);
      const looked = await waitForAudit(t.fhir, `patient=${pid}&action=R,E&_sort=-date`, (es) => es.some((e) => subtypeOf(e) === 'read' && e.agent[0].altId === readerId && e.entity.some((x: any) => x.what?.reference === `Patient/${pid}`)));
      assert.ok(looked.every((e) => patientsOf(e).includes(`Patient/${pid}`)), 'only accesses to this patient');
      assert.ok(looked.some((e) => subtypeOf(e) === 'operation'), 'includes the $everything');
      const who = new Set(looked.map((e) => e.agent[0].who.display));
      assert.ok(who.has('Northshire GP reader'));
      const readsOfOther = await waitForAudit(t.fhir, `entity=Patient/${otherPid}&altid=${readerId}&subtype=read`);
      assert.ok(readsOfOther.every((e: any) => !patientsOf(e).includes(`Patient/${pid}`)), 'reading one person names only them');
    });

    it('a request refused by its scope (403) is audited as a failure naming no patient', async () => {
      const denied = await reader.delete(`Observation/${obsId}`);
      assert.equal(denied.status, 403);
      const [event] = await waitForAudit(t.fhir, `altid=${readerId}&outcome=4&subtype=delete`);
      assert.equal(event.action, 'D');
      assert.match(event.outcomeDesc, /403/);
      assert.deepEqual(patientsOf(event), [], 'a failed request shows no patient');
      assert.ok(event.entity.some((x: any) => x.name === `Observation/${obsId}`));
      assert.equal((await t.fhir.get(`Observation/${obsId}`)).status, 200, 'nothing was deleted');
    });

    it('an unauthenticated (401) request is audited with an unknown agent', async () => {
      const res = await fetch(`${t.base}/Substance/no-token-probe`);
      assert.equal(res.status, 401);
      const [event] = await waitForAudit(t.fhir, 'entity-name=Substance/no-token-probe');
      assert.equal(event.outcome, '4');
      assert.equal(event.agent[0].who.display, 'unauthenticated caller');
      assert.equal(event.agent[0].altId, undefined);
    });

    it('hostile paths and queries (NUL, control characters) are audited without stopping the trail', async () => {
      const res = await fetch(`${t.base}/Substance/bad%00id%01?code=%00`, { headers: t.auth });
      assert.ok(res.status >= 400 && res.status < 500);
      const [event] = await waitForAudit(t.fhir, 'entity-name=Substance/bad');
      assert.equal(event.entity[0].name, 'Substance/bad\ufffdid\ufffd');
      assert.equal((await reader.get(`Patient/${otherPid}/_history`)).status, 200);
      await waitForAudit(t.fhir, `altid=${readerId}&subtype=history-instance`); // later entries are still written
    });

    it('AuditEvents need read scope on AuditEvent, stay out of $everything, and no client may write or delete them', async () => {
      assert.equal((await reader.get('AuditEvent')).status, 403, 'the reader has no AuditEvent scope');
      const [event] = await waitForAudit(t.fhir, `altid=${readerId}`);
      assert.equal((await t.fhir.get(`AuditEvent/${event.id}`)).status, 200, 'the admin (system/*.cruds) reads them');
      const everything = await t.fhir.get(`Patient/${pid}/$everything`);
      assert.ok(!everything.body.entry.some((e: any) => e.resource.resourceType === 'AuditEvent'), 'not swept into $everything');
      const attempts = [
        await t.fhir.post('AuditEvent', { ...event, id: undefined }),
        await t.fhir.put(`AuditEvent/${event.id}`, { ...event, outcome: '8' }),
        await t.fhir.request('PATCH', `AuditEvent/${event.id}`, [{ op: 'replace', path: '/outcome', value: '8' }], { 'content-type': 'application/json-patch+json' }),
        await t.fhir.delete(`AuditEvent/${event.id}`),
        await t.fhir.delete(`AuditEvent?_id=${event.id}`),
        await t.fhir.post('', { resourceType: 'Bundle', type: 'transaction', entry: [{ request: { method: 'DELETE', url: `AuditEvent/${event.id}` } }] }),
      ];
      for (const a of attempts) {
        assert.equal(a.status, 403, JSON.stringify(a.body));
        assert.match(a.body.issue[0].diagnostics, /append-only/);
      }
      const after = await t.fhir.get(`AuditEvent/${event.id}`);
      assert.equal(after.status, 200);
      assert.equal(after.body.meta.versionId, '1');
      assert.equal(after.body.outcome, event.outcome);
    });
  });
}
