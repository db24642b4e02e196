#!/usr/bin/env node
// npm test: typecheck, start one real PostgreSQL for the run, run every test file, stop PostgreSQL.
import { spawnSync, spawn } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { register } from 'tsx/esm/api';

const root = new URL('..', import.meta.url).pathname;
process.chdir(root);

const tsc = spawnSync('npx', ['tsc', '--noEmit'], { stdio: 'inherit' });
if (tsc.status !== 0) {
  console.error('Typecheck failed.');
  process.exit(1);
}

/**
 * The portal's browser tests drive Debian's Chromium. On a machine without it, install it the way
 * Playwright's install-deps installs system packages: apt-get, as root or through sudo. If that is not
 * possible the browser tests say plainly what to install.
 */
function ensureChromium() {
  if (process.env.CAREBRIDGE_CHROMIUM || existsSync('/usr/bin/chromium')) return;
  if (!existsSync('/usr/bin/apt-get')) {
    console.error('Chromium is not installed and this is not a Debian-like system: the portal\'s browser tests will fail. Install Chromium and set CAREBRIDGE_CHROMIUM to it.');
    return;
  }
  const asRoot = process.getuid?.() === 0;
  const run = (args) => spawnSync(asRoot ? args[0] : 'sudo', asRoot ? args.slice(1) : ['-n', ...args], { stdio: 'inherit' }).status === 0;
  console.log('Installing Debian\'s chromium for the portal\'s browser tests (apt-get install chromium)…');
  if (!run(['apt-get', 'update', '-qq']) || !run(['apt-get', 'install', '-y', '-qq', 'chromium'])) {
    console.error('Could not install chromium (run: sudo apt-get install -y chromium); the browser tests will fail until it is there.');
  }
}
ensureChromium();

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
