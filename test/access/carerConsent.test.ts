// A carer's access follows the opt-in Consent as the person agreed it (hazard H-039): only while its period
// lasts, and only when it permits. Both engines, over HTTP, signed in as the carer through the real flow.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ENGINES, fhirClient, startTestServer, type FhirClient, type TestServer } from '../support/server.ts';
import { addPerson, personToken } from '../support/people.ts';

const ACT_CODE = 'http://terminology.hl7.org/CodeSystem/v3-ActCode';
const CARER = 'RelatedPerson/carer1';

/** An opt-in Consent by `patient` naming the carer, with the provision given (permit, open-ended, unless overridden). */
function optIn(patient: string, provision: Record<string, unknown> = {}, status = 'active') {
  return {
    resourceType: 'Consent', status,
    scope: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/consentscope', code: 'patient-privacy' }] },
    category: [{ coding: [{ system: ACT_CODE, code: 'OPTIN' }] }],
    patient: { reference: `Patient/${patient}` },
    provision: { type: 'permit', actor: [{ role: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-RoleClass', code: 'AGNT' }] }, reference: { reference: CARER } }], ...provision },
  };
}

const ids = (bundle: any) => (bundle.entry ?? []).map((e: any) => e.resource.id as string).sort();

for (const engine of ENGINES) {
  describe(`a carer's opt-in Consent (${engine})`, () => {
    let t: TestServer;
    let carer: FhirClient;

    before(async () => {
      t = await startTestServer(engine);
      for (const id of ['p1', 'p2', 'p3', 'p4', 'p5', 'p6']) {
        assert.equal((await t.fhir.put(`Patient/${id}`, { resourceType: 'Patient', id, name: [{ family: id }] })).status, 201);
        assert.equal((await t.fhir.post('Observation', { resourceType: 'Observation', status: 'final', code: { text: 'pulse' }, subject: { reference: `Patient/${id}` }, valueQuantity: { value: 70 } })).status, 201);
      }
      assert.equal((await t.fhir.put('RelatedPerson/carer1', { resourceType: 'RelatedPerson', id: 'carer1', patient: { reference: 'Patient/p1' }, name: [{ family: 'Carer' }] })).status, 201);
      await addPerson(t, { username: 'carer.one', role: 'carer', fhirUser: CARER });
      await addPerson(t, { username: 'person.p2', role: 'person', fhirUser: 'Patient/p2' });
      const consents = [
        optIn('p1'), // open-ended: until withdrawn
        optIn('p3', { period: { start: '2020-01-01', end: '2021-01-01' } }), // ended
        optIn('p4', { period: { start: '2020-01-01', end: '2999-01-01' } }), // in force
        optIn('p5', { period: { start: '2999-01-01' } }), // not yet begun
        optIn('p6', { period: { start: '2020-01-01' } }), // begun, no end
      ];
      for (const c of consents) assert.equal((await t.fhir.post('Consent', c)).status, 201);
      carer = fhirClient(t.base, { authorization: `Bearer ${await personToken(t, 'carer.one')}` });
    });
    after(() => t.close());

    it('an opt-in whose period has ended, or not yet begun, lets the carer see nothing of the person', async () => {
      for (const id of ['p3', 'p5']) {
        assert.equal((await carer.get(`Patient/${id}`)).status, 403, `${id}: read refused`);
        const observations = await carer.get(`Observation?patient=${id}&_total=accurate`);
        assert.equal(observations.status, 200);
        assert.equal(observations.body.total, 0, `${id}: no observations found`);
      }
    });

    it('an open-ended opt-in, or one whose period includes today, still lets the carer in', async () => {
      for (const id of ['p1', 'p4', 'p6']) {
        assert.equal((await carer.get(`Patient/${id}`)).status, 200, `${id}: read`);
        assert.equal((await carer.get(`Observation?patient=${id}&_total=accurate`)).body.total, 1, `${id}: their observation`);
      }
      assert.deepEqual(ids((await carer.get('Patient?_count=50')).body), ['p1', 'p4', 'p6'], 'exactly the people whose opt-in is in force');
    });

    it('an active opt-in that denies the carer, or carves out exceptions, is refused when written, and grants nothing', async () => {
      const deny = await t.fhir.post('Consent', optIn('p2', { type: 'deny' }));
      assert.equal(deny.status, 422, 'a system client writing it');
      assert.equal(deny.body.resourceType, 'OperationOutcome');
      assert.deepEqual(deny.body.issue[0].expression, ['Consent.provision.type']);
      assert.match(deny.body.issue[0].diagnostics, /must be 'permit'.*status to 'inactive'/);
      const person = fhirClient(t.base, { authorization: `Bearer ${await personToken(t, 'person.p2')}` });
      assert.equal((await person.post('Consent', optIn('p2', { type: 'deny' }))).status, 422, 'the person writing it themself');
      assert.equal((await person.post('Consent', optIn('p2', { type: undefined }))).status, 422, 'no type at all');
      const exception = await t.fhir.post('Consent', optIn('p2', { provision: [{ type: 'deny', actor: [{ role: { text: 'agent' }, reference: { reference: CARER } }], class: [{ system: 'http://hl7.org/fhir/resource-types', code: 'Observation' }] }] }));
      assert.equal(exception.status, 422, 'a nested provision cannot be enforced');
      assert.deepEqual(exception.body.issue[0].expression, ['Consent.provision.provision']);
      const inTransaction = await t.fhir.post('', { resourceType: 'Bundle', type: 'transaction', entry: [{ resource: optIn('p2', { type: 'deny' }), request: { method: 'POST', url: 'Consent' } }] });
      assert.equal(inTransaction.status, 422, 'nor in a transaction');
      assert.equal((await carer.get('Patient/p2')).status, 403, 'the carer does not see the person');
      assert.equal((await t.fhir.get('Consent?patient=p2')).body.entry?.length ?? 0, 0, 'nothing was stored');
      // A decision not in force is only a record of it: a withdrawn deny is stored as written.
      assert.equal((await person.post('Consent', optIn('p2', { type: 'deny' }, 'inactive'))).status, 201, 'an inactive one is kept');
    });

    it('an opt-in cannot be turned into a deny by update or patch; withdrawing it still works', async () => {
      const [found] = (await t.fhir.get('Consent?patient=p1')).body.entry;
      const consent = found.resource;
      assert.equal((await t.fhir.put(`Consent/${consent.id}`, { ...consent, provision: { ...consent.provision, type: 'deny' } })).status, 422, 'update');
      const patch = await t.fhir.request('PATCH', `Consent/${consent.id}`, [{ op: 'replace', path: '/provision/type', value: 'deny' }], { 'content-type': 'application/json-patch+json' });
      assert.equal(patch.status, 422, 'patch');
      assert.equal((await carer.get('Patient/p1')).status, 200, 'the permit stands');
      assert.equal((await t.fhir.put(`Consent/${consent.id}`, { ...consent, status: 'inactive' })).status, 200, 'withdrawn');
      assert.equal((await carer.get('Patient/p1')).status, 403, 'and the carer is out at once');
    });
  });
}
