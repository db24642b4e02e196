// A read remembers which people a caller's scope reaches (scopeDecisions.ts). What that must never do: let
// a relationship outlive the write that ended it on this server, or outlive DECISION_MS after another
// server (another connection to the same database) ended it. Both engines; the second "server" is a
// second driver on the same database, as a second node (or process) would be.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { DECISION_MS, handleFhirRequest, openRecordStore, UNRESTRICTED, connectRecordDatabase, type PatientScope, type SqlDriver } from '../../src/record/index.ts';
import { MAX_RESOLVED, resolvedScope, scopeReaches } from '../../src/record/scopeDecisions.ts';
import { executeSearch } from '../../src/record/search/execute.ts';
import { parseSearchRequest } from '../../src/record/index.ts';
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
const careHome = (ods = 'VM960'): PatientScope => ({ patientIds: [], via: [{ resourceType: 'EpisodeOfCare', query: [['status', 'active'], ['organization.identifier', `${ODS}|${ods}`]], patientParam: 'patient' }] });

/** A transaction Bundle giving the home `ods` these residents, each with an active stay. */
function residents(ods: string, count: number) {
  const entry: Record<string, unknown>[] = [{ resource: { resourceType: 'Organization', id: `home-${ods}`, identifier: [{ system: ODS, value: ods }], name: `Home ${ods}` }, request: { method: 'PUT', url: `Organization/home-${ods}` } }];
  for (let i = 0; i < count; i++) {
    entry.push({ resource: { resourceType: 'Patient', id: `${ods}-p${i}`, name: [{ family: `Resident${i}` }] }, request: { method: 'PUT', url: `Patient/${ods}-p${i}` } });
    entry.push({ resource: { resourceType: 'EpisodeOfCare', id: `${ods}-s${i}`, status: 'active', patient: { reference: `Patient/${ods}-p${i}` }, managingOrganization: { reference: `Organization/home-${ods}` } }, request: { method: 'PUT', url: `EpisodeOfCare/${ods}-s${i}` } });
  }
  return { resourceType: 'Bundle', type: 'transaction', entry };
}

/** A fresh database of this engine, open for `work`, closed and removed after. */
async function withRecord(engine: (typeof ENGINES)[number], work: (driver: SqlDriver, database: string) => Promise<void>): Promise<void> {
  const db = await testDatabase(engine);
  const driver = await openRecordStore(db.database);
  try {
    await work(driver, db.database);
  } finally {
    await driver.close();
    db.cleanup();
  }
}

for (const engine of ENGINES) {
  describe(`remembered scope decisions (${engine})`, () => {
    it('a write through this driver is seen at once; one through another is seen within DECISION_MS', async () => {
      await withRecord(engine, async (here, database) => {
        const elsewhere = connectRecordDatabase(database);
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
        }
      });
    });

    // A search resolves a scope of up to MAX_RESOLVED people to their ids once (resolvedScope); a larger one
    // keeps its relationships. Either way it must find exactly the people the relationships reach.
    it('a search finds the same people whether the scope is resolved to a list of ids or not', async () => {
      await withRecord(engine, async (driver) => {
        for (const [ods, count] of [['VM970', MAX_RESOLVED + 1], ['VM971', 3]] as const) {
          const res = await handleFhirRequest({ base: 'http://localhost/fhir', driver, access: UNRESTRICTED }, { method: 'POST', path: '', query: [], body: residents(ods, count), prefer: 'return=minimal' });
          assert.equal(res.status, 200, JSON.stringify(res.body).slice(0, 300));
        }
        const big = careHome('VM970');
        const small = careHome('VM971');
        assert.equal(await resolvedScope(driver, big), big, 'more than MAX_RESOLVED people: the relationships stay');
        assert.deepEqual((await resolvedScope(driver, small)).patientIds.sort(), ['VM971-p0', 'VM971-p1', 'VM971-p2']);
        const total = async (scope: PatientScope, query: [string, string][]) =>
          (await executeSearch(driver, parseSearchRequest('Patient', [...query, ['_total', 'accurate'], ['_count', '5']], 'strict'), { patients: scope })).total;
        assert.equal(await total(big, []), MAX_RESOLVED + 1);
        assert.equal(await total(small, []), 3);
        assert.equal(await total(small, [['family', 'Resident1']]), 1, 'a filtered search, checked row by row against the list');
        assert.equal(await total(small, [['_id', 'VM970-p1']]), 0, "another home's resident, asked for by id");
        assert.equal(await total(big, [['_id', 'VM971-p1']]), 0, 'the other way round');
      });
    });

    it('nothing decided inside a transaction is remembered', async () => {
      await withRecord(engine, async (driver) => {
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
      });
    });
  });
}
