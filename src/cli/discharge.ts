// carebridge discharge council set|list: each council's response deadlines (in working days or hours on
// the England and Wales calendar) and whether it is reached by ADW messages rather than working here.
// carebridge discharge adw failed|retry: outgoing ADW messages the delivery worker gave up on (no MESH
// mailbox for a side, or MESH refusing them for hours), and sending them again once the cause is fixed.
import type { Command } from 'commander';
import { listCouncilSettings, listFailedAdw, migrateDischarge, retryFailedAdw, setCouncilSettings } from '../discharge/index.ts';
import { DB_OPTION_HELP, databaseFrom, databaseSetting, oneLine, openStore, plainErrors, withStore } from './store.ts';

export function dischargeCommand(program: Command): void {
  const discharge = program.command('discharge').description('Digital discharge: councils\' response deadlines.');
  plainErrors(discharge);
  const council = discharge.command('council').description('A council\'s deadlines and how it is reached.');
  plainErrors(council);

  plainErrors(
    council
      .command('set <ods>')
      .description('Set a council\'s response deadlines, e.g. --assessment-deadline "48 working-hours" --discharge-deadline "2 working-days".')
      .requiredOption('--assessment-deadline <rule>', 'time to respond to a referral or assessment notice: N working-hours or N working-days')
      .requiredOption('--discharge-deadline <rule>', 'time to answer a discharge notice: N working-hours or N working-days')
      .option('--adw', 'the council works elsewhere: send it ADW notices over MESH')
      .option('--db <database>', DB_OPTION_HELP)
      .action(async (ods: string, flags: { assessmentDeadline: string; dischargeDeadline: string; adw?: boolean; db?: string }) => {
        const driver = await openStore(databaseFrom(flags.db), databaseSetting(flags.db));
        try {
          await migrateDischarge(driver);
          const saved = await setCouncilSettings(driver, { ods, assessmentDeadline: flags.assessmentDeadline, dischargeDeadline: flags.dischargeDeadline, adw: flags.adw });
          console.log(`${saved.ods}: respond within ${saved.assessmentDeadline.amount} ${saved.assessmentDeadline.unit}, answer discharge notices within ${saved.dischargeDeadline.amount} ${saved.dischargeDeadline.unit}${saved.adw ? '; reached by ADW over MESH' : ''}.`);
        } finally {
          await driver.close();
        }
      }),
  );
  plainErrors(
    council
      .command('list')
      .description('List councils with their own deadlines.')
      .option('--db <database>', DB_OPTION_HELP)
      .action(async (flags: { db?: string }) => {
        const driver = await openStore(databaseFrom(flags.db), databaseSetting(flags.db));
        try {
          await migrateDischarge(driver);
          const rows = await listCouncilSettings(driver);
          if (!rows.length) console.log('No council has its own deadlines; the defaults apply (CAREBRIDGE_DISCHARGE_ASSESSMENT_DEADLINE, CAREBRIDGE_DISCHARGE_DISCHARGE_DEADLINE).');
          for (const r of rows) console.log(`${r.ods}\tassessment ${r.assessmentDeadline.amount} ${r.assessmentDeadline.unit}\tdischarge ${r.dischargeDeadline.amount} ${r.dischargeDeadline.unit}${r.adw ? '\tADW' : ''}`);
        } finally {
          await driver.close();
        }
      }),
  );
  adwCommands(discharge);
}

function adwCommands(discharge: Command): void {
  const adw = discharge.command('adw').description('Outgoing ADW messages that could not be sent.');
  plainErrors(adw);
  plainErrors(
    adw
      .command('failed')
      .description('List outgoing ADW messages given up on, oldest first: MessageHeader.id, queued at, event, to, episode, attempts, reason.')
      .option('--db <database>', DB_OPTION_HELP)
      .action(async (flags: { db?: string }) => {
        const rows = await withStore(flags.db, migrateDischarge, (driver) => listFailedAdw(driver));
        if (!rows.length) return console.log('No failed ADW messages.');
        for (const r of rows) console.log(`${r.header_id}\t${new Date(r.at_ms).toISOString()}\t${r.event_code}\tto ${r.peer_ods ?? '?'}\tepisode ${r.referral_identifier ?? '-'}\t${r.attempts} attempt(s)\t${oneLine(r.detail ?? '')}`);
      }),
  );
  plainErrors(
    adw
      .command('retry [headerId]')
      .description('Send failed ADW messages again (a running server sends them at its next poll): one by MessageHeader.id, --peer <ods> for all to one organisation (after linking its mailbox), or --all.')
      .option('--peer <ods>', 'every failed message to this organisation')
      .option('--all', 'every failed message')
      .option('--db <database>', DB_OPTION_HELP)
      .action(async (headerId: string | undefined, flags: { peer?: string; all?: boolean; db?: string }) => {
        if ([headerId, flags.peer, flags.all].filter(Boolean).length !== 1) throw new Error('Name one message (its MessageHeader.id), or use --peer <ods> or --all.');
        const which = headerId ? { headerId } : flags.peer ? { peerOds: flags.peer } : { all: true as const };
        const count = await withStore(flags.db, migrateDischarge, (driver) => retryFailedAdw(driver, which));
        console.log(count ? `Queued ${count} ADW message(s) to be sent again.` : 'No failed ADW message matched.');
      }),
  );
}
