// `carebridge users|orgs|clients` changes, run as real child processes on both engines, are in the audit
// trail when the command has exited: Security Alerts by the command line (naming the command and the OS
// user), with no password or secret stored; refused commands record nothing; `audit verify` stays intact.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { handleFhirRequest, openRecordStore, UNRESTRICTED } from '../../src/record/index.ts';
import { setUpAccess } from '../../src/access/index.ts';
import { freshPostgresDatabase, stopOwnPostgres } from '../support/postgres.ts';
import { runCli } from './cli.ts';
import { storedJournalTexts } from '../support/auditJournal.ts';

const tmp = mkdtempSync(join(tmpdir(), 'carebridge-cli-adminaudit-'));
after(async () => {
  rmSync(tmp, { recursive: true, force: true });
  await stopOwnPostgres();
});

/** The Security Alerts in the trail, oldest first, and every stored text of the trail (journal and shared parts). */
async function securityAlerts(database: string): Promise<{ events: any[]; stored: string }> {
  const driver = await openRecordStore(database);
  try {
    const access = await setUpAccess(driver, { tokenRequestsPerMinute: 60, audit: false });
    const res = await handleFhirRequest({ base: 'http://localhost/fhir', driver, access: UNRESTRICTED, services: access.services }, {
      method: 'GET', path: 'AuditEvent', query: [['type', '110113'], ['_sort', 'date'], ['_count', '100']],
    });
    const body = typeof res.body === 'string' ? JSON.parse(res.body) : res.body;
    return { events: (body.entry ?? []).map((e: any) => e.resource), stored: (await storedJournalTexts(driver)).join('\n') };
  } finally {
    await driver.close();
  }
}

describe('carebridge administration commands in the audit trail', { concurrency: 2 }, () => {
  for (const engine of ['sqlite', 'postgres'] as const) {
    it(`records each change before the command exits, as the command line's (${engine})`, async () => {
      const database = engine === 'sqlite' ? `sqlite:${join(tmp, 'admin.db')}` : await freshPostgresDatabase();
      const cli = async (args: string[], input?: string) => runCli([...args, '--db', database], {}, undefined, input);
      const ok = async (args: string[], input?: string) => {
        const r = await cli(args, input);
        assert.equal(r.code, 0, r.stderr);
        return r.stdout;
      };
      const password = 'a-long-cli-test-passphrase-42';
      await ok(['orgs', 'add', 'RX9', '--name', 'Northshire Hospitals', '--kind', 'hospital']);
      const userId = /user_id:\s+(\S+)/.exec(await ok(['users', 'add', 'cli.nurse', '--name', 'Cli Nurse', '--org', 'RX9', '--role', 'ward-nurse', '--password-stdin'], password))![1];
      await ok(['users', 'disable', 'cli.nurse']);
      await ok(['users', 'enable', 'cli.nurse']);
      const newPassword = 'another-long-cli-passphrase-43';
      await ok(['users', 'set-password', 'cli.nurse', '--password-stdin'], newPassword);
      const added = await ok(['clients', 'add', '--name', 'Ward tablets', '--scopes', 'system/Patient.rs', '--organization', 'RX9']);
      const clientId = /client_id:\s+(\S+)/.exec(added)![1];
      const secret = /client_secret:\s+(\S+)/.exec(added)![1];
      await ok(['clients', 'revoke', clientId]);
      assert.equal((await cli(['users', 'disable', 'nobody'])).code, 1, 'a refused change');

      const { events, stored } = await securityAlerts(database);
      assert.deepEqual(events.map((e) => [e.subtype[0].code, e.action, e.outcome, e.entity[0].name, e.entity[0].what?.identifier?.value]), [
        ['110129', 'E', '0', 'RX9', 'RX9'],
        ['110137', 'E', '0', 'cli.nurse', userId],
        ['110137', 'E', '0', 'cli.nurse', userId],
        ['110137', 'E', '0', 'cli.nurse', userId],
        ['110137', 'E', '0', 'cli.nurse', userId],
        ['110129', 'E', '0', clientId, clientId],
        ['110129', 'E', '0', clientId, clientId],
      ], 'each change, in order, and nothing for the refused one');
      assert.equal(events[1].entity[0].description, 'ward-nurse at RX9');
      assert.match(events[4].outcomeDesc, /^password set/);
      const os = userInfo().username;
      assert.deepEqual(events.map((e) => e.agent[0].who.display), ['orgs add', 'users add', 'users disable', 'users enable', 'users set-password', 'clients add', 'clients revoke'].map((c) => `carebridge ${c} (OS user ${os})`));
      assert.ok(events.every((e) => e.agent[0].altId === 'carebridge-cli'));
      assert.ok(stored.includes('cli.nurse'), 'the stored trail was read');
      assert.ok(!stored.includes(password) && !stored.includes(newPassword), 'no password stored');
      assert.ok(!stored.includes(secret), 'no client secret stored');
      const verify = await ok(['audit', 'verify']);
      assert.match(verify, /^Audit trail intact: 7 entries checked/);
    });
  }
});
