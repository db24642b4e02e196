// Demo people on an empty database (what `npm start` prints): one account per role over the demo dataset,
// linked to its resources, each password working once printed; never again, and never over real data.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { handleFhirRequest, openRecordStore, UNRESTRICTED } from '../../src/record/index.ts';
import { listClients, listOrganisations, listUsers, setUpAccess, ROLES } from '../../src/access/index.ts';
import { buildDemoDataset } from '../../src/demo/index.ts';
import { seedDemoIfEmpty } from '../../src/cli/demoSeed.ts';
import { ENGINES, testDatabase } from '../support/server.ts';
import { stopOwnPostgres } from '../support/postgres.ts';

after(stopOwnPostgres);

for (const engine of ENGINES) {
  describe(`demo people (${engine})`, () => {
    it('seeds the demo organisations and one account per role, printing logins that work, once', async () => {
      const { database, cleanup } = await testDatabase(engine);
      const driver = await openRecordStore(database);
      try {
        // A small demo dataset (one care home) keeps the run short; the seed then skips loading the full one.
        const { bundle } = buildDemoDataset({ careHomes: 1, residentsPerHome: 2, inpatients: 1 });
        await handleFhirRequest({ base: 'http://localhost/fhir', driver, access: UNRESTRICTED }, { method: 'POST', path: '', query: [], body: bundle, prefer: 'return=minimal' });
        const printed = await seedDemoIfEmpty(driver, 'http://127.0.0.1:8080');
        assert.ok(printed.includes('DEMO LOGIN (shown once; demo data only; this machine only):'), 'a record of demo data only gets the demo client');
        const header = printed.findIndex((l) => l.startsWith('DEMO PEOPLE (shown once; demo data only; this machine only)'));
        assert.ok(header >= 0, printed.join('\n'));
        const logins = printed.slice(header + 1).map((l) => l.trim().split(/\s+/));
        assert.deepEqual(logins.map((l) => l[0]).sort(), [
          'demo-admin', 'demo-broker', 'demo-care-manager', 'demo-care-worker', 'demo-discharge', 'demo-family-carer',
          'demo-gp', 'demo-privacy-officer', 'demo-resident', 'demo-social-worker', 'demo-ward-nurse',
        ]);
        assert.deepEqual((await listOrganisations(driver)).map((o) => `${o.ods} ${o.kind}`), ['LA918 council', 'RX9 hospital', 'VM101 care-home', 'Y01234 gp-practice', 'Y05678 gp-practice']);

        const users = new Map((await listUsers(driver)).map((u) => [u.username, u]));
        assert.deepEqual(new Set([...users.values()].flatMap((u) => u.memberships.map((m) => m.role))), new Set(ROLES), 'every role has a demo account');
        assert.equal(users.get('demo-resident')!.fhirUser, 'Patient/demo-pat-vm101-01');
        assert.equal(users.get('demo-family-carer')!.fhirUser, 'RelatedPerson/demo-rp-vm101-01-nok');
        assert.equal(users.get('demo-ward-nurse')!.fhirUser, 'Practitioner/demo-prac-rx901-ward-07-nurse');
        assert.ok([...users.values()].every((u) => u.name.endsWith('(DEMO)')));

        const access = await setUpAccess(driver, { tokenRequestsPerMinute: 60, audit: false });
        for (const [username, password] of logins.filter((l) => ['demo-care-worker', 'demo-resident', 'demo-admin'].includes(l[0]))) {
          const result = await access.people.signIn({ username, password, address: '127.0.0.1' });
          assert.ok(result.ok, `${username} signs in with the printed password`);
        }
        assert.deepEqual(await seedDemoIfEmpty(driver, 'http://127.0.0.1:8080'), [], 'a second start prints no logins');
      } finally {
        await driver.close();
        cleanup();
      }
    });

    it('a database of real (untagged) records gets no demo accounts', async () => {
      const { database, cleanup } = await testDatabase(engine);
      const driver = await openRecordStore(database);
      try {
        const ctx = { base: 'http://localhost/fhir', driver, access: UNRESTRICTED };
        await handleFhirRequest(ctx, { method: 'PUT', path: 'Organization/demo-org-la918', query: [], body: { resourceType: 'Organization', id: 'demo-org-la918', name: 'A real council', identifier: [{ system: 'https://fhir.nhs.uk/Id/ods-organization-code', value: 'LA918' }] } });
        await handleFhirRequest(ctx, { method: 'POST', path: 'Patient', query: [], body: { resourceType: 'Patient', name: [{ family: 'Real' }] } });
        const printed = await seedDemoIfEmpty(driver, 'http://127.0.0.1:8080');
        assert.ok(!printed.some((l) => l.startsWith('DEMO PEOPLE')), printed.join('\n'));
        assert.deepEqual(await listUsers(driver), []);
        assert.deepEqual(await listOrganisations(driver), []);
      } finally {
        await driver.close();
        cleanup();
      }
    });

    // What `carebridge serve` on loopback did to a database holding one real Patient: printed a system/*.cruds
    // secret that read it. Also the demo dataset with one real Patient added: still real data.
    for (const withDemo of [false, true]) {
      it(`a database with a real Patient${withDemo ? ' among the demo data' : ''} gets no demo client and no demo login`, async () => {
        const { database, cleanup } = await testDatabase(engine);
        const driver = await openRecordStore(database);
        try {
          const ctx = { base: 'http://localhost/fhir', driver, access: UNRESTRICTED };
          if (withDemo) await handleFhirRequest(ctx, { method: 'POST', path: '', query: [], body: buildDemoDataset({ careHomes: 1, residentsPerHome: 2, inpatients: 1 }).bundle, prefer: 'return=minimal' });
          await handleFhirRequest(ctx, { method: 'POST', path: 'Patient', query: [], body: { resourceType: 'Patient', name: [{ family: 'Real' }] } });
          const printed = await seedDemoIfEmpty(driver, 'http://127.0.0.1:8080');
          assert.ok(!printed.some((l) => l.startsWith('DEMO LOGIN') || l.includes('client_secret')), printed.join('\n'));
          assert.ok(!printed.some((l) => l.startsWith('DEMO PEOPLE')), printed.join('\n'));
          assert.deepEqual(await listClients(driver), []);
          assert.deepEqual(await listUsers(driver), []);
        } finally {
          await driver.close();
          cleanup();
        }
      });
    }
  });
}
