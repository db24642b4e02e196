// The administrative client from CAREBRIDGE_ADMIN_CLIENT_ID / _SECRET: made at the first start, and its
// making is in the audit trail; revoked after a leak, it stays revoked when the server restarts with the same
// environment (saying so at start); a new secret in the environment rotates it, and the rotation is in the
// audit trail. A client of that id registered by other means (an integration) is never made administrative:
// it is left as it was, and the start says so. Both storage engines.
import { after, describe, it, mock } from 'node:test';
import assert from 'node:assert/strict';
import { buildServer } from '../../src/server.ts';
import { loadServerConfig } from '../../src/config.ts';
import { addClient, findClient, migrateAccess, revokeClient } from '../../src/access/index.ts';
import { openRecordStore } from '../../src/record/index.ts';
import { ENGINES, clientToken, fhirClient, testDatabase } from '../support/server.ts';
import { waitForAudit } from '../support/audit.ts';
import { stopOwnPostgres } from '../support/postgres.ts';

after(stopOwnPostgres);

const ID = 'env-admin';
const SECRET = 'env-admin-secret-0123456789';

async function start(database: string, secret = SECRET) {
  const server = await buildServer(loadServerConfig({ port: 0, db: database }, { CAREBRIDGE_ADMIN_CLIENT_ID: ID, CAREBRIDGE_ADMIN_CLIENT_SECRET: secret }));
  return { server, url: await server.app.listen({ host: '127.0.0.1', port: 0 }) };
}

async function tokenStatus(url: string, secret: string): Promise<{ status: number; error?: string }> {
  const res = await fetch(`${url}/oauth2/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${ID}:${secret}`).toString('base64')}` },
    body: 'grant_type=client_credentials',
  });
  return { status: res.status, error: (await res.json()).error };
}

for (const engine of ENGINES) {
  describe(`administrative client from the environment (${engine})`, () => {
    it('once revoked, stays revoked at restart with the same id and secret, and the start says so', async () => {
      const { database, cleanup } = await testDatabase(engine);
      try {
        const first = await start(database);
        assert.equal((await tokenStatus(first.url, SECRET)).status, 200);
        await revokeClient(first.server.driver, ID);
        await first.server.close();

        const warn = mock.method(console, 'warn', () => undefined);
        let again;
        try {
          again = await start(database);
        } finally {
          warn.mock.restore();
        }
        try {
          const warnings = warn.mock.calls.map((c) => String(c.arguments[0]));
          assert.equal(warnings.filter((w) => w.includes(`'${ID}'`)).length, 1, warnings.join('\n'));
          assert.match(warnings.find((w) => w.includes(`'${ID}'`))!, /revoked.*configure a new CAREBRIDGE_ADMIN_CLIENT_ID and CAREBRIDGE_ADMIN_CLIENT_SECRET/i);
          assert.deepEqual(await tokenStatus(again.url, SECRET), { status: 401, error: 'invalid_client' });
          assert.equal((await findClient(again.server.driver, ID))!.revoked, true);
        } finally {
          await again.server.close();
        }
      } finally {
        cleanup();
      }
    });

    it('made for the first time on a fresh database, and the creation is audited', async () => {
      const { database, cleanup } = await testDatabase(engine);
      try {
        const first = await start(database);
        try {
          const fhir = fhirClient(`${first.url}/fhir`, { authorization: `Bearer ${await clientToken(first.url, ID, SECRET)}` });
          const events = await waitForAudit(fhir, 'type=110113', (e) => e.some((x) => /^system client added: env-admin/.test(x.outcomeDesc)));
          const added = events.find((x) => /^system client added: env-admin/.test(x.outcomeDesc))!;
          assert.match(added.outcomeDesc, /scopes system\/\*\.cruds/);
          assert.match(added.agent[0].who.display, /CAREBRIDGE_ADMIN_CLIENT_ID/, 'made by the server start, from the environment');
          assert.ok(!JSON.stringify(added).includes(SECRET), 'never the secret itself');
        } finally {
          await first.server.close();
        }
        const again = await start(database);
        try {
          const fhir = fhirClient(`${again.url}/fhir`, { authorization: `Bearer ${await clientToken(again.url, ID, SECRET)}` });
          await new Promise((r) => setTimeout(r, 300));
          const events = await waitForAudit(fhir, 'type=110113');
          assert.equal(events.filter((x) => /^system client added: env-admin/.test(x.outcomeDesc)).length, 1, 'a restart adds nothing');
        } finally {
          await again.server.close();
        }
      } finally {
        cleanup();
      }
    });

    it('never makes an existing ordinary client administrative: it is left as it was, and the start says so', async () => {
      const { database, cleanup } = await testDatabase(engine);
      try {
        const driver = await openRecordStore(database);
        let ordinarySecret: string;
        try {
          await migrateAccess(driver, database);
          ordinarySecret = (await addClient(driver, { clientId: ID, name: 'Pharmacy feed', scopes: 'system/MedicationRequest.rs' })).secret!;
        } finally {
          await driver.close();
        }
        const warn = mock.method(console, 'warn', () => undefined);
        let started;
        try {
          started = await start(database);
        } finally {
          warn.mock.restore();
        }
        try {
          const warnings = warn.mock.calls.map((c) => String(c.arguments[0]));
          assert.equal(warnings.filter((w) => w.includes(`'${ID}'`)).length, 1, warnings.join('\n'));
          assert.match(warnings.find((w) => w.includes(`'${ID}'`))!, /^WARNING: .*not an administrative client.*starting without an administrative client/i);
          const client = (await findClient(started.server.driver, ID))!;
          assert.equal(client.scopes, 'system/MedicationRequest.rs', 'its scopes are as they were');
          assert.equal(client.name, 'Pharmacy feed');
          assert.deepEqual(await tokenStatus(started.url, SECRET), { status: 401, error: 'invalid_client' }, 'the environment\'s secret does not sign in as it');
          const token = await clientToken(started.url, ID, ordinarySecret);
          assert.equal((await fhirClient(`${started.url}/fhir`, { authorization: `Bearer ${token}` }).get('Organization')).status, 403, 'its own secret still works, with its own scopes only');
        } finally {
          await started.server.close();
        }
      } finally {
        cleanup();
      }
    });

    it('a new secret in the environment replaces the old one, and the change is audited', async () => {
      const { database, cleanup } = await testDatabase(engine);
      try {
        const first = await start(database);
        await first.server.close();
        const rotated = `${SECRET}-rotated`;
        const again = await start(database, rotated);
        try {
          assert.deepEqual(await tokenStatus(again.url, SECRET), { status: 401, error: 'invalid_client' }, 'the old secret no longer works');
          const fhir = fhirClient(`${again.url}/fhir`, { authorization: `Bearer ${await clientToken(again.url, ID, rotated)}` });
          const events = await waitForAudit(fhir, 'type=110113', (e) => e.some((x) => /^system client secret and scopes set from the environment: env-admin/.test(x.outcomeDesc)));
          const reset = events.find((x) => /set from the environment/.test(x.outcomeDesc));
          assert.ok(!JSON.stringify(reset).includes(rotated), 'never the secret itself');
        } finally {
          await again.server.close();
        }
      } finally {
        cleanup();
      }
    });
  });
}
