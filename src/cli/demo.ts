// carebridge demo: loads the synthetic UK demo dataset (src/demo) into the record. Every entry is a PUT
// to a fixed id, so loading it again updates the same resources instead of adding copies.
import type { Command } from 'commander';
import { FhirError, handleFhirRequest } from '../record/index.ts';
import { ProgressLine } from './progress.ts';
import { DB_OPTION_HELP, databaseFrom, databaseSetting, describeDatabase, errorMessage, oneLine, openStore, plainErrors, storeContext } from './store.ts';

/** The store refuses Bundles of more entries (src/record/transaction.ts); a larger dataset goes in slices. */
const MAX_TRANSACTION_ENTRIES = 10_000;

interface DemoFlags {
  db?: string;
  seed?: string;
  careHomes?: string;
  residentsPerHome?: string;
  progress: boolean;
}

export function demoCommand(program: Command): void {
  const command = program
    .command('demo')
    .summary('Load the synthetic UK demo dataset (care homes, residents, NEWS2 observations).')
    .description(
      'Load the synthetic UK demo dataset into the record as one transaction: a council, care homes and their residents, ' +
        'an acute trust, GP practices, staff, and for each resident their care record and daily NEWS2 observations. ' +
        'Everything is fictional and tagged HTEST. Running it again with the same options leaves the same resources.',
    )
    .option('--db <database>', DB_OPTION_HELP)
    .option('--seed <n>', 'seed for the generator: the same seed gives the same people (default 1)')
    .option('--care-homes <n>', 'number of care homes, 1 to 50 (default 3)')
    .option('--residents-per-home <n>', 'residents in each care home, 1 to 99 (default 8)')
    .option('--no-progress', 'do not show the progress line on stderr')
    .action(async (flags: DemoFlags) => {
      const database = databaseFrom(flags.db);
      const options = {
        ...(flags.seed !== undefined ? { seed: integer(flags.seed, '--seed', Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER) } : {}),
        ...(flags.careHomes !== undefined ? { careHomes: integer(flags.careHomes, '--care-homes', 1, 50) } : {}),
        ...(flags.residentsPerHome !== undefined ? { residentsPerHome: integer(flags.residentsPerHome, '--residents-per-home', 1, 99) } : {}),
      };
      // Loaded only when asked for: the generator is not needed by any other command.
      const { buildDemoDataset, DEFAULT_DEMO_OPTIONS: defaults } = await import('../demo/index.ts');
      // The default number of residents in hospital cannot exceed the residents there are.
      const residents = (options.careHomes ?? defaults.careHomes) * (options.residentsPerHome ?? defaults.residentsPerHome);
      const { bundle, summary } = buildDemoDataset({ ...options, inpatients: Math.min(defaults.inpatients, residents) });
      const entries = bundle.entry;
      const total = entries.length;

      const driver = await openStore(database, databaseSetting(flags.db));
      const progress = new ProgressLine({ quiet: !flags.progress, unit: 'transactions' });
      const ctx = storeContext(driver);
      let stored = 0;
      progress.now({ filesDone: 0, filesTotal: Math.ceil(total / MAX_TRANSACTION_ENTRIES), resources: 0, failures: 0 });
      try {
        // One transaction, unless the dataset is larger than the store takes in one Bundle.
        const slices = Math.ceil(total / MAX_TRANSACTION_ENTRIES);
        for (let s = 0; s < slices; s++) {
          const slice = entries.slice(s * MAX_TRANSACTION_ENTRIES, (s + 1) * MAX_TRANSACTION_ENTRIES);
          try {
            await handleFhirRequest(ctx, { method: 'POST', path: '', query: [], body: { ...bundle, entry: slice }, prefer: 'return=minimal' });
          } catch (err) {
            const detail = err instanceof FhirError ? oneLine(err.message) : errorMessage(err);
            const done = stored ? ` (${stored} of ${total} resources were stored by earlier transactions; run it again to finish)` : ' (nothing was stored)';
            throw new Error(`the demo dataset was refused${done}: ${detail}`);
          }
          stored += slice.length;
          progress.update({ filesDone: s + 1, filesTotal: slices, resources: stored, failures: 0 });
        }
      } finally {
        progress.done({ filesDone: Math.ceil(total / MAX_TRANSACTION_ENTRIES), filesTotal: Math.ceil(total / MAX_TRANSACTION_ENTRIES), resources: stored, failures: 0 });
        await driver.close();
      }
      const seconds = progress.elapsedSeconds();
      const width = Math.max(...Object.keys(summary).map((t) => t.length), 'total'.length);
      const lines = Object.entries(summary).map(([type, n]) => `  ${type.padEnd(width)}  ${String(n).padStart(7)}`);
      process.stdout.write(
        `Demo dataset ${bundle.id} loaded into ${describeDatabase(database)}:\n${lines.join('\n')}\n` +
          `  ${'total'.padEnd(width)}  ${String(stored).padStart(7)}\n` +
          `in ${seconds.toFixed(1)} s (${seconds > 0 ? Math.round(stored / seconds) : stored} resources/s)\n`,
      );
    });
  plainErrors(command);
}

function integer(value: string, name: string, min: number, max: number): number {
  const n = Number(value);
  if (!/^-?\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < min || n > max) {
    throw new Error(`${name} must be a whole number${min > Number.MIN_SAFE_INTEGER ? ` from ${min} to ${max}` : ''}, not '${value}'.`);
  }
  return n;
}
