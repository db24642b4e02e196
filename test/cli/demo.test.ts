// `carebridge demo`, run as a real child process: it loads the synthetic dataset, prints counts that match
// what the store then holds, and loading it twice leaves the same counts (every entry is a PUT to a fixed id).
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freshPostgresDatabase, stopOwnPostgres } from '../support/postgres.ts';
import { buildDemoDataset } from '../../src/demo/index.ts';
import { lines, readResource, runCli, storeCounts } from './cli.ts';

const tmp = mkdtempSync(join(tmpdir(), 'carebridge-cli-demo-'));
after(async () => {
  rmSync(tmp, { recursive: true, force: true });
  await stopOwnPostgres();
});

/** The per-type table the command prints ("  Patient   24"), without the total. */
function printedCounts(stdout: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const m of stdout.matchAll(/^ {2}([A-Z][A-Za-z]+)\s+(\d+)$/gm)) out[m[1]] = Number(m[2]);
  return out;
}

// SQLite loads the default dataset (what `carebridge demo` does when given no options, 2,740 resources in one
// transaction); PostgreSQL a small one chosen by the options, to keep the run short.
const CASES = {
  sqlite: { args: [] as string[], options: {} },
  // 2 residents, so the command caps the residents in hospital at 2 (the default is 3).
  postgres: { args: ['--seed', '7', '--care-homes', '1', '--residents-per-home', '2'], options: { seed: 7, careHomes: 1, residentsPerHome: 2, inpatients: 2 } },
};

// Two child processes at a time: the suites use separate databases, and this machine has two cores.
describe('carebridge demo', { concurrency: 2 }, () => {
  for (const engine of ['sqlite', 'postgres'] as const) {
    describe(`demo into ${engine}`, { concurrency: 1 }, () => {
      const { args, options } = CASES[engine];
      it(`${args.length ? args.join(' ') : 'default options'}: prints the counts it stored, and running it twice leaves the same counts`, async () => {
        const { bundle, summary } = buildDemoDataset(options);
        const database = engine === 'sqlite' ? `sqlite:${join(tmp, 'demo', 'carebridge.db')}` : await freshPostgresDatabase();
        const first = await runCli(['demo', '--db', database, ...args]);
        assert.equal(first.code, 0, first.stderr);
        assert.deepEqual(printedCounts(first.stdout), summary);
        assert.match(first.stdout, new RegExp(`^ {2}total\\s+${bundle.entry.length}$`, 'm'));
        const afterFirst = Object.fromEntries(await storeCounts(database, Object.keys(summary)));
        assert.deepEqual(afterFirst, summary);

        const second = await runCli(['demo', '--db', database, ...args]);
        assert.equal(second.code, 0, second.stderr);
        assert.deepEqual(printedCounts(second.stdout), summary);
        assert.deepEqual(Object.fromEntries(await storeCounts(database, Object.keys(summary))), afterFirst);
        // Same resources, updated in place: the second load is version 2 of each.
        const patient = bundle.entry.find((e) => e.resource.resourceType === 'Patient')!.resource;
        const stored = await readResource(database, 'Patient', patient.id);
        assert.equal(stored.status, 200);
        assert.equal(stored.resource.meta.versionId, '2');
      });
    });
  }

  describe('demo: errors are one plain line on stderr', () => {
    for (const [args, pattern] of [
      [['--care-homes', '0'], /^carebridge: --care-homes must be a whole number from 1 to 50, not '0'\.$/],
      [['--residents-per-home', 'lots'], /^carebridge: --residents-per-home must be a whole number from 1 to 99, not 'lots'\.$/],
      [['--seed', '1.5'], /^carebridge: --seed must be a whole number, not '1\.5'\.$/],
      [['--db', 'oracle:x'], /^carebridge: --db must be sqlite:PATH or a postgres:\/\/ URL, not 'oracle:x'\.$/],
    ] as const) {
      it(`demo ${args.join(' ')}`, async () => {
        const r = await runCli(['demo', ...args, ...(args[0] === '--db' ? [] : ['--db', `sqlite:${join(tmp, 'never', 'x.db')}`])]);
        assert.equal(r.code, 1);
        assert.equal(r.stdout, '');
        const errs = lines(r.stderr);
        assert.equal(errs.length, 1, r.stderr);
        assert.match(errs[0], pattern);
      });
    }
  });
});
