// carebridge discharge council set|list and adw failed|retry, run as a real command on a SQLite file and on
// PostgreSQL; and the discharge settings read from the environment, refused by name when wrong.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { runCli } from './cli.ts';
import { ENGINES, testDatabase } from '../support/server.ts';
import { stopOwnPostgres } from '../support/postgres.ts';
import { loadServerConfig } from '../../src/config.ts';
import { openStore } from '../../src/cli/store.ts';

after(() => stopOwnPostgres());

for (const engine of ENGINES) {
  describe(`carebridge discharge council (${engine})`, () => {
    it('sets, changes and lists a council\'s deadlines; a bad rule is one plain line and exit 1', async () => {
      const { database, cleanup } = await testDatabase(engine);
      try {
        let r = await runCli(['discharge', 'council', 'set', 'la918', '--assessment-deadline', '48 working-hours', '--discharge-deadline', '2 working-days', '--db', database]);
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, /^LA918: respond within 48 working-hours, answer discharge notices within 2 working-days\.$/m);
        r = await runCli(['discharge', 'council', 'set', 'LA918', '--assessment-deadline', '3 working-days', '--discharge-deadline', '24 working-hours', '--adw', '--db', database]);
        assert.equal(r.code, 0, r.stderr);
        r = await runCli(['discharge', 'council', 'list', '--db', database]);
        assert.equal(r.stdout.trim(), 'LA918\tassessment 3 working-days\tdischarge 24 working-hours\tADW');
        r = await runCli(['discharge', 'council', 'set', 'LA918', '--assessment-deadline', 'tomorrow', '--discharge-deadline', '1 working-days', '--db', database]);
        assert.equal(r.code, 1);
        assert.equal(r.stderr.trim().split('\n').length, 1);
        assert.match(r.stderr, /whole number from 1 to 999 and a unit.*'tomorrow'/);
        r = await runCli(['discharge', 'council', 'list', '--db', database]);
        assert.match(r.stdout, /assessment 3 working-days/, 'the refused change wrote nothing');
      } finally {
        cleanup();
      }
    });

    it('lists the outgoing ADW messages given up on and queues them again', async () => {
      const { database, cleanup } = await testDatabase(engine);
      try {
        let r = await runCli(['discharge', 'adw', 'failed', '--db', database]);
        assert.equal(r.code, 0, r.stderr);
        assert.equal(r.stdout.trim(), 'No failed ADW messages.');
        const driver = await openStore(database);
        try {
          await driver.run(
            "INSERT INTO discharge_adw_messages (direction, header_id, event_code, referral_identifier, status, detail, our_ods, peer_ods, body, attempts, at_ms) VALUES ('out', 'h-1', '975711000000108', 'ep-1', 'failed', 'No MESH mailbox is linked to RZZ99.', 'V396BB', 'RZZ99', '<Bundle/>', 1, ?)",
            [Date.parse('2026-05-01T10:00:00Z')],
          );
        } finally {
          await driver.close();
        }
        r = await runCli(['discharge', 'adw', 'failed', '--db', database]);
        assert.equal(r.stdout.trim(), 'h-1\t2026-05-01T10:00:00.000Z\t975711000000108\tto RZZ99\tepisode ep-1\t1 attempt(s)\tNo MESH mailbox is linked to RZZ99.');
        r = await runCli(['discharge', 'adw', 'retry', '--db', database]);
        assert.equal(r.code, 1);
        assert.match(r.stderr, /Name one message .* --peer <ods> or --all/);
        r = await runCli(['discharge', 'adw', 'retry', '--peer', 'rzz99', '--db', database]);
        assert.equal(r.code, 0, r.stderr);
        assert.equal(r.stdout.trim(), 'Queued 1 ADW message(s) to be sent again.');
        r = await runCli(['discharge', 'adw', 'failed', '--db', database]);
        assert.equal(r.stdout.trim(), 'No failed ADW messages.');
      } finally {
        cleanup();
      }
    });
  });
}

describe('discharge settings from the environment', () => {
  it('has defaults and refuses bad values by name', () => {
    const config = loadServerConfig({}, {});
    assert.deepEqual(config.discharge, { assessmentDeadline: '48 working-hours', dischargeDeadline: '24 working-hours', pollSeconds: 5, adwWorkflowIds: { notice: 'ADW_NOTICE', response: 'ADW_NOTICE_ACK' } });
    assert.throws(() => loadServerConfig({}, { CAREBRIDGE_DISCHARGE_ASSESSMENT_DEADLINE: '2 days' }), /CAREBRIDGE_DISCHARGE_ASSESSMENT_DEADLINE/);
    assert.throws(() => loadServerConfig({}, { CAREBRIDGE_DISCHARGE_DISCHARGE_DEADLINE: '0 working-days' }), /CAREBRIDGE_DISCHARGE_DISCHARGE_DEADLINE/);
    assert.throws(() => loadServerConfig({}, { CAREBRIDGE_DISCHARGE_POLL_SECONDS: '0' }), /CAREBRIDGE_DISCHARGE_POLL_SECONDS/);
    assert.throws(() => loadServerConfig({}, { CAREBRIDGE_ADW_WORKFLOW_IDS: 'ONLY_ONE' }), /CAREBRIDGE_ADW_WORKFLOW_IDS/);
  });
});
