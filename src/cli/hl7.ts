// carebridge hl7 queue list|resolve|dismiss: the HL7 v2 messages waiting for a person to say who the patient
// is (and, with --status, those refused or dismissed); resolving one applies it, dismissing one sets it aside
// unapplied, and either way the messages held behind it are then applied.
import type { Command } from 'commander';
import { userInfo } from 'node:os';
import { setUpAccess } from '../access/index.ts';
import { dismissQueued, hl7Intake, listMessages, migrateHl7v2, resolveQueued, LISTABLE_STATUSES, type Hl7Intake, type MessageStatus, type PatientDecision, type Resolution, type Settled } from '../hl7v2/index.ts';
import type { SqlDriver } from '../record/index.ts';
import { DB_OPTION_HELP, databaseFrom, databaseSetting, openStore, plainErrors } from './store.ts';
import { commandLineActor } from './accessStore.ts';

export function hl7Command(program: Command): void {
  const hl7 = program.command('hl7').description('HL7 v2 ADT intake (MLLP).');
  plainErrors(hl7);
  const queue = hl7.command('queue').description('Messages waiting for a person to confirm the patient.');
  plainErrors(queue);

  plainErrors(
    queue
      .command('list')
      .description('List messages waiting for a person (or, with --status, those rejected, failed, applied, dismissed).')
      .option('--status <status>', `one of ${LISTABLE_STATUSES.join(', ')}`, 'queued')
      .option('--db <database>', DB_OPTION_HELP)
      .action(async (flags: { status: string; db?: string }) => {
        if (!(LISTABLE_STATUSES as readonly string[]).includes(flags.status)) throw new Error(`--status must be one of ${LISTABLE_STATUSES.join(', ')}, not '${flags.status}'.`);
        const driver = await openStore(databaseFrom(flags.db), databaseSetting(flags.db));
        try {
          await migrateHl7v2(driver);
          const rows = await listMessages(driver, flags.status as MessageStatus);
          if (!rows.length) console.log(`No ${flags.status} HL7 v2 messages.`);
          for (const r of rows) {
            console.log(`${r.seq}\t${r.receivedAt}\t${r.messageType ?? '?'}\t${r.organisation ?? '?'} ${r.controlId ?? '(no control id)'}\tvisit ${r.visit ?? '?'}\t${r.person}\t${r.reason ?? ''}`);
          }
        } finally {
          await driver.close();
        }
      }),
  );

  plainErrors(
    queue
      .command('resolve <id>')
      .description('Apply a waiting message to the Patient a person has confirmed (--patient) or to a new Patient made from it (--new).')
      .option('--patient <id>', 'the Patient id the message is about')
      .option('--accept-different-nhs-number', "with --patient: the message is about that Patient's stay already on file although its NHS number differs (checked in the PAS); the Patient's NHS number is not changed")
      .option('--new', 'the person is not in the record: make a new Patient from the message')
      .option('--by <name>', 'who is resolving it (default: the operating system user)')
      .option('--db <database>', DB_OPTION_HELP)
      .action(async (id: string, flags: { patient?: string; new?: boolean; acceptDifferentNhsNumber?: boolean; by?: string; db?: string }) => {
        if (Boolean(flags.patient) === Boolean(flags.new)) throw new Error('give either --patient <id> or --new.');
        if (flags.acceptDifferentNhsNumber && !flags.patient) throw new Error('--accept-different-nhs-number goes with --patient <id>.');
        const decision: PatientDecision = flags.patient
          ? { patientId: flags.patient, ...(flags.acceptDifferentNhsNumber ? { acceptDifferentNhsNumber: true } : {}) }
          : { newPatient: true };
        await settleFromQueue(id, flags, (intake, driver, seq, by) => resolveQueued(intake, driver, seq, decision, by));
      }),
  );

  plainErrors(
    queue
      .command('dismiss <id>')
      .description('Set a waiting message aside without applying it (it is not about this stay, or it is wrong); the messages held behind it are then applied.')
      .requiredOption('--why <reason>', 'why it is dismissed (kept with the message)')
      .option('--by <name>', 'who is dismissing it (default: the operating system user)')
      .option('--db <database>', DB_OPTION_HELP)
      .action(async (id: string, flags: { why: string; by?: string; db?: string }) => {
        await settleFromQueue(id, flags, (intake, driver, seq, by) => dismissQueued(intake, driver, seq, flags.why, by));
      }),
  );
}

/** Resolves or dismisses a waiting message and prints what became of it and of the messages behind it. */
async function settleFromQueue(id: string, flags: { by?: string; db?: string }, settle: (intake: Hl7Intake, driver: SqlDriver, seq: number, by: string) => Promise<Resolution>): Promise<void> {
  if (!/^\d+$/.test(id)) throw new Error(`'${id}' is not a message id (a number from \`carebridge hl7 queue list\`).`);
  const by = flags.by ?? userInfo().username;
  const driver = await openStore(databaseFrom(flags.db), databaseSetting(flags.db));
  // Through access, so every change is audited like any other (as the HL7 v2 feed, naming the person).
  const access = await setUpAccess(driver, { tokenRequestsPerMinute: 60 });
  try {
    await migrateHl7v2(driver);
    // A stored message already names its organisation, so no facility mapping is needed here.
    const intake = hl7Intake({ driver, facilities: {}, controlFor: access.controlFor });
    const { resolved, followed, decision } = await settle(intake, driver, Number(id), by);
    // The decision itself, in the audit trail under the patients concerned (the changes it led to are there as the feed's).
    if (decision) access.heldMessageDecided(commandLineActor(`hl7 queue ${decision.decision === 'hl7v2-dismissed' ? 'dismiss' : 'resolve'}`), 'command line', decision);
    console.log(describe(resolved));
    for (const f of followed) console.log(`  then ${describe(f)}`);
    if (resolved.status !== 'applied' && resolved.status !== 'dismissed') process.exitCode = 1;
  } finally {
    await access.close();
    await driver.close();
  }
}

function describe(s: Settled): string {
  if (s.status === 'applied') return `Message ${s.seq} applied to Patient/${s.patientId} (Encounter/${s.encounterId}).`;
  if (s.status === 'dismissed') return `Message ${s.seq} dismissed: kept with the reason, not applied.`;
  return `Message ${s.seq} ${s.status}: ${s.reason}`;
}
