#!/usr/bin/env node
// npm test: typecheck, start one real PostgreSQL for the run, run every test file, stop PostgreSQL.
import { spawnSync, spawn } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { register } from 'tsx/esm/api';

const root = new URL('..', import.meta.url).pathname;
process.chdir(root);

const tsc = spawnSync('npx', ['tsc', '--noEmit'], { stdio: 'inherit' });
if (tsc.status !== 0) {
  console.error('Typecheck failed.');
  process.exit(1);
}

function testFiles(dir) {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) return testFiles(p);
    return name.endsWith('.test.ts') ? [p] : [];
  });
}
const only = process.argv.slice(2);
const files = only.length ? only : testFiles('test').sort();

register();
const { startPostgres } = await import('../test/support/postgres.ts');
const pg = await startPostgres();
let code = 1;
try {
  const child = spawn(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=2', ...files], {
    stdio: 'inherit',
    env: { ...process.env, CAREBRIDGE_TEST_PG: pg.url },
  });
  code = await new Promise((resolve) => child.on('exit', (c) => resolve(c ?? 1)));
} finally {
  await pg.stop();
}
process.exit(code);
