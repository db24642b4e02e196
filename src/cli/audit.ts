// carebridge audit verify: walks the audit trail's hash chain and names the first broken link.
import type { Command } from 'commander';
import { migrateAccess, verifyAuditChain } from '../access/index.ts';
import { DB_OPTION_HELP, databaseFrom, databaseSetting, openStore, plainErrors } from './store.ts';

export function auditCommand(program: Command): void {
  const audit = program.command('audit').description('The audit trail (AuditEvents, hash-chained).');
  plainErrors(audit);

  plainErrors(
    audit
      .command('verify')
      .description('Recompute every hash of the audit chain from the stored AuditEvents. Exits 0 when intact, 1 at the first broken link.')
      .option('--db <database>', DB_OPTION_HELP)
      .action(async (flags: { db?: string }) => {
        const driver = await openStore(databaseFrom(flags.db), databaseSetting(flags.db));
        try {
          await migrateAccess(driver);
          const result = await verifyAuditChain(driver);
          if (result.intact) {
            console.log(result.head
              ? `Audit trail intact: ${result.checked} entries checked; head seq ${result.head.seq}, hash ${result.head.hash}.`
              : 'Audit trail intact: 0 entries checked (the trail is empty).');
          } else {
            console.log(`Audit trail BROKEN at seq ${result.seq} (AuditEvent ${result.auditId ?? 'unknown'}): ${result.problem}; the ${result.checked} entries before it are intact.`);
            process.exitCode = 1;
          }
        } finally {
          await driver.close();
        }
      }),
  );
}
