// carebridge mesh mailbox add|list and carebridge mesh dead-letters list|replay: the built-in MESH
// mailbox's mailboxes (each linked to an organisation) and the inbound dead-letter queue, on the database.
// A replay, and each listing of dead letters (a reason can name a person), is written to the audit trail
// before the command exits.
import type { Command } from 'commander';
import { addMailbox, setMailboxPassword, listDeadLetters, listMailboxes, migrateMessaging, replayDeadLetter, type DeadLetter, type Mailbox } from '../messaging/index.ts';
import type { SqlDriver } from '../record/index.ts';
import { DB_OPTION_HELP, errorMessage, oneLine, plainErrors, withStore } from './store.ts';
import { makeOrganisationKnown } from './knownOrganisation.ts';
import { administer, viewDeadLetters } from './accessStore.ts';

const withMessagingStore = <T>(db: string | undefined, work: (driver: SqlDriver) => Promise<T>) => withStore(db, migrateMessaging, work);

function mode(m: Mailbox): string {
  if (!m.hosted) return 'elsewhere';
  return m.polled ? 'hosted, polled by a client' : 'hosted, processed here';
}

export function meshCommand(program: Command): void {
  const mesh = program.command('mesh').description('The built-in MESH mailbox and inbound messages.');
  plainErrors(mesh);
  const mailbox = mesh.command('mailbox').description('Mailboxes and the organisations they belong to.');
  plainErrors(mailbox);

  plainErrors(
    mailbox
      .command('add <mailboxId>')
      .description('Link a MESH mailbox to an organisation (added as a known organisation when it is not one yet). With --password it is hosted by the built-in mailbox (needs CAREBRIDGE_MESH_SHARED_KEY); without, it is a mailbox on another MESH.')
      .requiredOption('--ods <ods>', 'ODS code of the organisation the mailbox belongs to')
      .option('--password <password>', 'the mailbox password MESH clients sign with (at least 8 characters)')
      .option('--polled', 'hold its messages for a MESH client elsewhere to download, instead of processing them here')
      .option('--db <database>', DB_OPTION_HELP)
      .action(async (mailboxId: string, flags: { ods: string; password?: string; polled?: boolean; db?: string }) => {
        const { added, organisation } = await withMessagingStore(flags.db, async (driver) => {
          // The mailbox first: its checks (id, password, shared key, not there yet) decide before anything is written.
          const added = await addMailbox(driver, { mailboxId, ods: flags.ods, password: flags.password, polled: flags.polled }, process.env.CAREBRIDGE_MESH_SHARED_KEY || undefined);
          try {
            return { added, organisation: await makeOrganisationKnown(driver, added.ods) };
          } catch (err) {
            throw new Error(`Added mailbox ${added.mailboxId}, but could not make ${added.ods} a known organisation (add it with carebridge orgs add and a FHIR Organization): ${errorMessage(err)}`);
          }
        });
        const { record, access } = organisation.added;
        const also = record || access ? `; ${added.ods} was not a known organisation, so it was added${record && access ? '' : record ? ' to the record' : ' to the organisations people act for'} as "${organisation.name}"` : '';
        console.log(`Added mailbox ${added.mailboxId} for ${added.ods} (${mode(added)})${also}.`);
      }),
  );

  plainErrors(
    mailbox
      .command('set-password <mailboxId>')
      .description('Set a hosted mailbox\'s password again (to rotate it, or after CAREBRIDGE_MESH_SHARED_KEY changed).')
      .requiredOption('--password <password>', 'the new password (at least 8 characters)')
      .option('--db <database>', DB_OPTION_HELP)
      .action(async (mailboxId: string, flags: { password: string; db?: string }) => {
        await withMessagingStore(flags.db, (driver) => setMailboxPassword(driver, mailboxId, flags.password, process.env.CAREBRIDGE_MESH_SHARED_KEY || undefined));
        console.log(`Set the password of mailbox ${mailboxId.trim().toUpperCase()}.`);
      }),
  );

  plainErrors(
    mailbox
      .command('list')
      .description('List mailboxes: id, ODS code, how messages to it are handled.')
      .option('--db <database>', DB_OPTION_HELP)
      .action(async (flags: { db?: string }) => {
        const all = await withMessagingStore(flags.db, (driver) => listMailboxes(driver));
        if (!all.length) return console.log('No mailboxes.');
        for (const m of all) console.log(`${m.mailboxId}\t${m.ods}\t${mode(m)}`);
      }),
  );

  const dead = mesh.command('dead-letters').description('Inbound messages that could not be processed.');
  plainErrors(dead);

  plainErrors(
    dead
      .command('list')
      .description('List dead letters, oldest first: message id, when, workflow, from → to, attempts, reason.')
      .option('--db <database>', DB_OPTION_HELP)
      .action(async (flags: { db?: string }) => {
        // Audited as the command line's before anything is printed, naming each dead letter shown and the
        // people whose NHS numbers the printed lines hold, as the API's listings are.
        const command = 'mesh dead-letters list';
        const line = (l: DeadLetter) => `${l.messageId}\t${new Date(l.deadAt).toISOString()}\t${l.workflowId}\t${l.from} -> ${l.to}\t${l.attempts} attempt(s)\t${oneLine(l.reason)}`;
        const letters = await viewDeadLetters(flags.db, command, async (driver) => {
          await migrateMessaging(driver);
          return listDeadLetters(driver);
        }, (shown) => ({
          view: { path: `carebridge ${command}`, messageIds: shown.map((l) => l.messageId), shown: `${shown.length} dead letter${shown.length === 1 ? '' : 's'}, oldest first`, ok: true },
          shownText: shown.map(line),
        }));
        if (!letters.length) return console.log('No dead letters.');
        for (const l of letters) console.log(line(l));
      }),
  );

  plainErrors(
    dead
      .command('replay <messageId>')
      .description('Put a dead letter back in the inbox; a running server processes it within a second.')
      .option('--db <database>', DB_OPTION_HELP)
      .action(async (messageId: string, flags: { db?: string }) => {
        // Audited as the command line's before the command exits, as the portal's replays are the administrator's.
        await administer(flags.db, 'mesh dead-letters replay', async (driver) => {
          await migrateMessaging(driver);
          await replayDeadLetter(driver, messageId, Date.now());
        }, () => ({ action: 'dead-letter-replayed', target: messageId, ok: true }));
        console.log(`Replaying ${messageId}.`);
      }),
  );
}
