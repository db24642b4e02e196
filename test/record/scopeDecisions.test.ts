// A read remembers which people a caller's scope reaches (scopeDecisions.ts). What that must never do: let
// a relationship outlive the write that ended it on this server, or outlive DECISION_MS after another
// server (another connection to the same database) ended it. Both engines; the second "server" is a
// second driver on the same database, as a second node (or process) would be.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { DECISION_MS, handleFhirRequest, openRecordStore, UNRESTRICTED, connectRecordDatabase, type PatientScope, type SqlDriver } from '../../src/record/index.ts';
import { scopeReaches } from '../../src/record/scopeDecisions.ts';
import { ENGINES, testDatabase } from '../support/server.ts';

const ODS = 'https://fhir.nhs.uk/Id/ods-organization-code';

async function put(driver: SqlDriver, resource: Record<string, unknown>): Promise<void> {
  const res = await handleFhirRequest({ base: 'http://localhost/fhir', driver, access: UNRESTRICTED }, { method: 'PUT', path: `${resource.resourceType}/${resource.id}`, query: [], body: resource });
  assert.ok(res.status < 300, JSON.stringify(res.body));
}

const stay = (status: string) => ({
  resourceType: 'EpisodeOfCare', id: 'stay-1', status, patient: { reference: 'Patient/resident-1' }, managingOrganization: { reference: 'Organization/home-1' },
});

/** A care home's scope, as the access layer builds it: residents are people with an active EpisodeOfCare it manages. */
const careHome = (): PatientScope => ({ patientIds: [], via: [{ resourceType: 'EpisodeOfCare', query: [['status', 'active'], ['organization.identifier', `${ODS}|VM960`]], patientParam: 'patient' }] });

for (const engine of ENGINES) {
  describe(`remembered scope decisions (${engine})`, () => {
    it('a write through this driver is seen at once; one through another is seen within DECISION_MS', async () => {
      const db = await testDatabase(engine);
      const here = await openRecordStore(db.database);
      const elsewhere = connectRecordDatabase(db.database);
      try {
        await put(here, { resourceType: 'Organization', id: 'home-1', identifier: [{ system: ODS, value: 'VM960' }], name: 'Scope Test Care Home' });
        await put(here, { resourceType: 'Patient', id: 'resident-1', name: [{ family: 'Resident' }] });
        await put(here, stay('active'));
        const scope = careHome();
        assert.equal(await scopeReaches(here, scope, 'resident-1'), true, 'a resident');
        assert.equal(await scopeReaches(here, scope, 'someone-else'), false, 'not a resident');

        await put(here, stay('finished'));
        assert.equal(await scopeReaches(here, scope, 'resident-1'), false, 'the stay ended through this driver: at once');

        await put(here, stay('active'));
        assert.equal(await scopeReaches(here, scope, 'resident-1'), true, 'back');
        await put(elsewhere, stay('finished'));
        assert.equal(await scopeReaches(here, scope, 'resident-1'), true, 'ended elsewhere: still remembered for a moment (the documented window)');
        await new Promise((resolve) => setTimeout(resolve, DECISION_MS + 100));
        assert.equal(await scopeReaches(here, scope, 'resident-1'), false, `ended elsewhere: forgotten within ${DECISION_MS} ms`);
      } finally {
        await elsewhere.close();
        await here.close();
        db.cleanup();
      }
    });

    it('nothing decided inside a transaction is remembered', async () => {
      const db = await testDatabase(engine);
      const driver = await openRecordStore(db.database);
      try {
        await put(driver, { resourceType: 'Organization', id: 'home-1', identifier: [{ system: ODS, value: 'VM960' }], name: 'Scope Test Care Home' });
        await put(driver, { resourceType: 'Patient', id: 'resident-1', name: [{ family: 'Resident' }] });
        const scope = careHome();
        // The stay exists only inside a transaction that is then rolled back.
        await assert.rejects(driver.transaction(async (tx) => {
          await handleFhirRequest({ base: 'http://localhost/fhir', driver, tx, access: UNRESTRICTED }, { method: 'PUT', path: 'EpisodeOfCare/stay-1', query: [], body: stay('active') });
          assert.equal(await scopeReaches(tx, scope, 'resident-1'), true, 'inside the transaction');
          throw new Error('roll back');
        }), /roll back/);
        assert.equal(await scopeReaches(driver, scope, 'resident-1'), false, 'after the rollback');
      } finally {
        await driver.close();
        db.cleanup();
      }
    });
  });
}
