// `carebridge mesh`, run as a real child process on both engines: a mailbox added by the CLI signs in to
// the built-in mailbox of a server on that database, its organisation becomes known; list shows it; bad
// input is one plain line and exit 1. Listing dead letters and replaying one are in the audit trail; a
// listing that shows a reason naming a known person's NHS number is filed under that person.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freshPostgresDatabase, stopOwnPostgres } from '../support/postgres.ts';
import { MESH_KEY, meshCall, startServerOn, waitFor } from '../support/mesh.ts';
import { addMailbox, inboxState, PermanentFailure } from '../../src/messaging/index.ts';
import { generateSyntheticNhsNumber, NHS_NUMBER_SYSTEM, SYNTHETIC_TAG } from '../../src/record/index.ts';
import { userInfo } from 'node:os';
import { lines, runCli, searchAudit, searchStore } from './cli.ts';

const tmp = mkdtempSync(join(tmpdir(), 'carebridge-cli-mesh-'));
after(async () => {
  rmSync(tmp, { recursive: true, force: true });
  await stopOwnPostgres();
});

describe('carebridge mesh', { concurrency: 2 }, () => {
  for (const engine of ['sqlite', 'postgres'] as const) {
    it(`adds and lists mailboxes a server then accepts, lists and replays dead letters (${engine})`, async () => {
      const database = engine === 'sqlite' ? `sqlite:${join(tmp, 'mesh.db')}` : await freshPostgresDatabase();
      const withKey = { CAREBRIDGE_MESH_SHARED_KEY: MESH_KEY };
      const ok = async (args: string[], env: Record<string, string> = withKey) => {
        const r = await runCli([...args, '--db', database], env);
        assert.equal(r.code, 0, r.stderr);
        return r.stdout;
      };
      const fails = async (args: string[], env: Record<string, string> = withKey) => {
        const r = await runCli([...args, '--db', database], env);
        assert.equal(r.code, 1);
        assert.equal(lines(r.stderr).length, 1, r.stderr);
        return r.stderr;
      };
      assert.equal(await ok(['mesh', 'mailbox', 'list']), 'No mailboxes.\n');
      // A fresh database knows no organisations: the mailbox's becomes one, in the record and for people's memberships.
      assert.equal(await ok(['mesh', 'mailbox', 'add', 'la918mesh', '--ods', 'la918', '--password', 'council-password']),
        'Added mailbox LA918MESH for LA918 (hosted, processed here); LA918 was not a known organisation, so it was added as "Organisation LA918 (added with its MESH mailbox)".\n');
      assert.deepEqual(lines(await ok(['orgs', 'list'])), ['LA918\tother\tOrganisation LA918 (added with its MESH mailbox)']);
      const [org] = await searchStore(database, 'Organization', [['identifier', 'LA918']]);
      assert.equal(org?.name, 'Organisation LA918 (added with its MESH mailbox)');
      // Another mailbox of a known organisation adds nothing.
      assert.equal(await ok(['mesh', 'mailbox', 'add', 'LA918B', '--ods', 'LA918', '--password', 'council-password']), 'Added mailbox LA918B for LA918 (hosted, processed here).\n');
      assert.equal((await searchStore(database, 'Organization', [['identifier', 'LA918']])).length, 1);
      await ok(['mesh', 'mailbox', 'add', 'X26HUB', '--ods', 'RX9', '--password', 'hub-password', '--polled']);
      await ok(['mesh', 'mailbox', 'add', 'ELSEWHERE1', '--ods', 'Y01234'], {});
      assert.deepEqual(lines(await ok(['mesh', 'mailbox', 'list'])), [
        'ELSEWHERE1\tY01234\telsewhere',
        'LA918B\tLA918\thosted, processed here',
        'LA918MESH\tLA918\thosted, processed here',
        'X26HUB\tRX9\thosted, polled by a client',
      ]);

      assert.match(await fails(['mesh', 'mailbox', 'add', 'LA918MESH', '--ods', 'LA918', '--password', 'council-password']), /^carebridge: A mailbox LA918MESH already exists\.$/m);
      assert.match(await fails(['mesh', 'mailbox', 'add', 'BAD!', '--ods', 'LA918', '--password', 'council-password']), /is not a MESH mailbox id/);
      assert.match(await fails(['mesh', 'mailbox', 'add', 'NEWBOX', '--ods', 'L!', '--password', 'council-password']), /is not an ODS code/);
      assert.match(await fails(['mesh', 'mailbox', 'add', 'NEWBOX', '--ods', 'LA918', '--password', 'short']), /at least 8 characters/);
      assert.match(await fails(['mesh', 'mailbox', 'add', 'NEWBOX', '--ods', 'LA918', '--password', 'long-enough-pw'], {}), /Set CAREBRIDGE_MESH_SHARED_KEY/);
      assert.match(await fails(['mesh', 'mailbox', 'add', 'NEWBOX', '--password', 'long-enough-pw']), /required option '--ods <ods>'/);
      assert.equal(await ok(['mesh', 'mailbox', 'set-password', 'x26hub', '--password', 'new-hub-password']), 'Set the password of mailbox X26HUB.\n');
      assert.match(await fails(['mesh', 'mailbox', 'set-password', 'ELSEWHERE1', '--password', 'new-hub-password']), /no mailbox ELSEWHERE1 hosted here/);

      // The server on that database takes the CLI's mailbox: a message to a workflow nobody handles is a dead letter.
      const s = await startServerOn(database);
      let deadId: string;
      try {
        const sent = await meshCall(s.url, 'X26HUB', 'new-hub-password', 'POST', '/outbox', { body: 'hello', headers: { 'mex-To': 'LA918MESH', 'mex-WorkflowID': 'NOBODY' } });
        assert.equal(sent.status, 202, sent.body.toString());
        deadId = sent.json().message_id;
        for (let i = 0; i < 200 && !(await ok(['mesh', 'dead-letters', 'list'])).includes(deadId); i++) await new Promise((r) => setTimeout(r, 25));
      } finally {
        await s.close();
      }
      const listed = lines(await ok(['mesh', 'dead-letters', 'list']));
      assert.equal(listed.length, 1);
      assert.match(listed[0], new RegExp(`^${deadId}\\t\\S+\\tNOBODY\\tX26HUB -> LA918MESH\\t1 attempt\\(s\\)\\tNo handler is registered for workflow id NOBODY\\.$`));
      assert.equal(await ok(['mesh', 'dead-letters', 'replay', deadId]), `Replaying ${deadId}.\n`);
      assert.equal(await ok(['mesh', 'dead-letters', 'list']), 'No dead letters.\n');
      assert.match(await fails(['mesh', 'dead-letters', 'replay', deadId]), /There is no dead letter with message id/);

      // The replay is in the audit trail as the command line's, as the portal's replays are the administrator's.
      const replays = await searchAudit(database, [['type', '110113'], ['subtype', '110132']]);
      assert.deepEqual(replays.map((e) => [e.outcome, e.outcomeDesc, e.entity[0].what?.identifier?.value, e.agent[0].altId, e.agent[0].who.display]), [
        ['0', `dead letter replayed: ${deadId}`, deadId, 'carebridge-cli', `carebridge mesh dead-letters replay (OS user ${userInfo().username})`],
      ], 'the replay made; the refused one changed nothing and, like other refused commands, is not recorded');
      // So is each listing that showed it (its reason may name a person), as the API's and the portal's views are.
      const views = await searchAudit(database, [['entity-name', deadId], ['type', '110112']]);
      assert.ok(views.length >= 1, 'the listings that showed the dead letter are in the audit trail');
      for (const v of views) {
        assert.deepEqual([v.action, v.outcome, v.agent[0].altId, v.agent[0].who.display], ['E', '0', 'carebridge-cli', `carebridge mesh dead-letters list (OS user ${userInfo().username})`]);
        assert.deepEqual(v.entity.slice(1).map((e: any) => [e.name, e.what?.identifier?.value]), [[deadId, deadId]], 'names the dead letter shown, by its message id');
        assert.equal(JSON.stringify(v).includes('No handler is registered'), false, 'never its reason');
      }
      assert.match(await ok(['audit', 'verify']), /^Audit trail intact/);
    });

    it(`files a listing under the people whose NHS numbers its reasons showed (${engine})`, async () => {
      const database = engine === 'sqlite' ? `sqlite:${join(tmp, 'mesh-nhs.db')}` : await freshPostgresDatabase();
      const nhs = generateSyntheticNhsNumber();
      let other = generateSyntheticNhsNumber();
      while (other === nhs) other = generateSyntheticNhsNumber();
      const s = await startServerOn(database, {}, (server) => server.messaging.onInbound(['CB_TEST_NHS'], async (msg) => {
        throw new PermanentFailure(msg.body.toString('utf8'));
      }));
      let patientId: string;
      try {
        const created = await fetch(`${s.url}/fhir/Patient`, {
          method: 'POST', headers: { ...s.auth, 'content-type': 'application/fhir+json', accept: 'application/fhir+json' },
          body: JSON.stringify({ resourceType: 'Patient', meta: { tag: [SYNTHETIC_TAG] }, identifier: [{ system: NHS_NUMBER_SYSTEM, value: nhs }], name: [{ family: 'Listed', given: ['Lou'] }] }),
        });
        assert.equal(created.status, 201);
        patientId = (await created.json()).id;
        await addMailbox(s.server.driver, { mailboxId: 'LA918MESH', ods: 'LA918', password: 'council-password' }, MESH_KEY);
        for (const reason of [`no Patient here has NHS number ${nhs}`, `NHS number ${other.slice(0, 3)} ${other.slice(3, 6)} ${other.slice(6)} is nobody's here`]) {
          const { messageId } = await s.server.messaging.send({ from: 'RX9MESH', to: 'LA918MESH', workflowId: 'CB_TEST_NHS', body: Buffer.from(reason) });
          await waitFor('dead-lettered', async () => (await inboxState(s.server.driver, messageId))?.status === 'dead', 30_000);
        }
      } finally {
        await s.close();
      }
      const r = await runCli(['mesh', 'dead-letters', 'list', '--db', database]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(lines(r.stdout).length, 2);
      assert.ok(r.stdout.includes(`no Patient here has NHS number ${nhs}`), 'the reason is printed');
      const views = await searchAudit(database, [['patient', `Patient/${patientId!}`], ['type', '110112']]);
      assert.equal(views.length, 1, 'the listing is filed under the person whose NHS number it showed');
      assert.deepEqual(views[0].entity.filter((e: any) => e.what?.reference).map((e: any) => [e.what.reference, e.role.code]), [[`Patient/${patientId!}`, '1']], 'and names nobody for the number no Patient has');
      assert.equal(views[0].agent[0].altId, 'carebridge-cli');
      assert.ok(!JSON.stringify(views[0]).includes(nhs), 'never the NHS number or the reason');
      const r2 = await runCli(['audit', 'verify', '--db', database]);
      assert.match(r2.stdout, /^Audit trail intact/, r2.stderr);
    });
  }
});
