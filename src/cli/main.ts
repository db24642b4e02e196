// carebridge: one command, a subcommand per job. Errors print one plain line and exit non-zero.
import { Command, CommanderError } from 'commander';
import { serveCommand } from './serve.ts';
import { importCommand } from './import.ts';
import { demoCommand } from './demo.ts';
import { clientsCommand } from './clients.ts';
import { auditCommand } from './audit.ts';
import { orgsCommand, usersCommand } from './users.ts';
import { dischargeCommand } from './discharge.ts';
import { meshCommand } from './mesh.ts';
import { hl7Command } from './hl7.ts';
import { backupCommand } from './backup.ts';

const program = new Command()
  .name('carebridge')
  .description('CareBridge: a shared care record for the NHS and adult social care (FHIR R4).')
  .showHelpAfterError(false)
  .exitOverride();

serveCommand(program);
importCommand(program);
demoCommand(program);
clientsCommand(program);
auditCommand(program);
usersCommand(program);
orgsCommand(program);
dischargeCommand(program);
meshCommand(program);
hl7Command(program);
backupCommand(program);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) process.exit(err.exitCode);
  console.error(`carebridge: ${(err as Error).message}`);
  process.exit(1);
}
