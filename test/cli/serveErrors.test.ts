// `carebridge serve` refuses bad settings the way every command does: one plain line naming the setting
// and where it came from, a non-zero exit, and nothing created. An empty SQLite path is refused rather than
// opened: SQLite would serve a temporary database, and everything stored would be gone at the next stop.
import { describe, it, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer, type Server } from 'node:net';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, runCli } from './cli.ts';
import { loadServerConfig } from '../../src/config.ts';
import pg from 'pg';
import { freshPostgresDatabase } from '../support/postgres.ts';

const dir = mkdtempSync(join(tmpdir(), 'carebridge-serve-errors-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('serve: bad settings are one plain line on stderr, and nothing is created', () => {
  for (const [args, env, pattern] of [
    [['--db', 'sqlite:'], {}, /^carebridge: --db 'sqlite:' needs a file path, e\.g\. sqlite:\.\/data\/carebridge\.db\.$/],
    [[], { CAREBRIDGE_DB: 'sqlite:' }, /^carebridge: CAREBRIDGE_DB 'sqlite:' needs a file path, e\.g\. sqlite:\.\/data\/carebridge\.db\.$/],
    [['--db', 'oracle:x'], {}, /^carebridge: --db must be sqlite:PATH or a postgres:\/\/ URL, not 'oracle:x'\.$/],
    [[], { CAREBRIDGE_DB: 'oracle:x' }, /^carebridge: CAREBRIDGE_DB must be sqlite:PATH or a postgres:\/\/ URL, not 'oracle:x'\.$/],
    [['--port', 'abc', '--db', 'sqlite:./x.db'], {}, /^carebridge: --port must be a whole number from 0 to 65535, not 'abc'\.$/],
    [['--db', 'sqlite:./x.db'], { PORT: '99999' }, /^carebridge: PORT must be a whole number from 0 to 65535, not '99999'\.$/],
    [['--db', 'sqlite:./x.db'], { CAREBRIDGE_LOG_LEVEL: 'chatty' }, /^carebridge: CAREBRIDGE_LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent, not 'chatty'\.$/],
    [['--db', 'sqlite:./x.db'], { CAREBRIDGE_BASE_URL: 'carebridge.example.org/fhir' }, /^carebridge: CAREBRIDGE_BASE_URL must be the FHIR API's public address as an http\(s\) URL, e\.g\. https:\/\/carebridge\.example\.org\/fhir, not 'carebridge\.example\.org\/fhir'\.$/],
    [['--db', 'sqlite:./x.db', '--base-url', 'ftp://files.example.org/fhir'], {}, /^carebridge: --base-url must be the FHIR API's public address as an http\(s\) URL, .*not 'ftp:\/\/files\.example\.org\/fhir'\.$/],
    [['--db', 'sqlite:./x.db'], { CAREBRIDGE_MESH_URL: 'https://mesh.example.org', CAREBRIDGE_MESH_MAILBOX: 'X26HC001', CAREBRIDGE_MESH_PASSWORD: 'pw', CAREBRIDGE_MESH_CLIENT_SHARED_KEY: 'key', CAREBRIDGE_MESH_CLIENT_CERT: '/nonexistent/client.pem', CAREBRIDGE_MESH_CLIENT_KEY: '/nonexistent/client.key' },
      /^carebridge: CAREBRIDGE_MESH_CLIENT_CERT names '\/nonexistent\/client\.pem', which cannot be read \(no such file\)\.$/],
    [['--db', 'sqlite:./x.db'], { CAREBRIDGE_OIDC_ISSUER: 'https://idp.example.org', CAREBRIDGE_OIDC_CLIENT_ID: 'c', CAREBRIDGE_OIDC_CLIENT_SECRET: 's', CAREBRIDGE_OIDC_REDIRECT_URI: 'callback' },
      /^carebridge: CAREBRIDGE_OIDC_REDIRECT_URI must be an http\(s\) URL .*not 'callback'\.$/],
  ] as const) {
    it(`serve ${args.join(' ')}${Object.entries(env).slice(-1).map(([k, v]) => ` with ${k}=${v}`).join('')}`, async () => {
      const r = await runCli(['serve', ...args], { ...env }, dir);
      assert.equal(r.code, 1, r.stdout);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.match(r.stderr.trim(), pattern);
      assert.deepEqual(readdirSync(dir), [], 'no database or audit file was made');
    });
  }
});

// SQLite's own error, "unable to open database file", names neither the file nor why; every command opens
// its file in one place (the SQLite driver), so serve and the others say both alike.
describe('a SQLite file that cannot be opened is named, with why', () => {
  const notAFolder = join(mkdtempSync(join(tmpdir(), 'carebridge-not-a-folder-')), 'file');
  writeFileSync(notAFolder, 'not a folder');
  after(() => rmSync(join(notAFolder, '..'), { recursive: true, force: true }));
  const cases: [string[], Record<string, string>, RegExp][] = [
    [['serve', '--db', `sqlite:${notAFolder}/x.db`], {}, /^carebridge: cannot open the SQLite database file '.*\/file\/x\.db' given by --db \(part of its path is a file, not a folder\)\.$/],
    [['users', 'list'], { CAREBRIDGE_DB: `sqlite:${notAFolder}/x.db` }, /^carebridge: cannot open the SQLite database file '.*\/file\/x\.db' given by CAREBRIDGE_DB \(part of its path is a file, not a folder\)\.$/],
  ];
  // procfs holds no files of ours: the folder is there, and even root may make nothing in it.
  if (process.platform === 'linux') {
    cases.push([['serve', '--db', 'sqlite:/proc/x.db'], {}, /^carebridge: cannot open the SQLite database file '\/proc\/x\.db' given by --db \(no file can be made in its folder '\/proc'\)\.$/]);
  }
  for (const [args, env, pattern] of cases) {
    it(`${args.join(' ')}${Object.entries(env).map(([k, v]) => ` with ${k}=${v}`).join('')}`, async () => {
      const r = await runCli(args, env, dir);
      assert.equal(r.code, 1, r.stdout);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.match(r.stderr.trim(), pattern);
    });
  }
});

// pg's own error, "connect ECONNREFUSED 127.0.0.1:1", says neither that it is the database nor which
// setting named it. Nothing listens on port 1, so the refusal is immediate.
describe('a PostgreSQL server that cannot be reached is named by host and port, never with its password', () => {
  for (const [args, env, setting] of [
    [['--db', 'postgres://someone:s3cret@127.0.0.1:1/none'], {}, '--db'],
    [[], { CAREBRIDGE_DB: 'postgres://someone:s3cret@127.0.0.1:1/none' }, 'CAREBRIDGE_DB'],
  ] as const) {
    it(`serve with ${setting}`, async () => {
      const r = await runCli(['serve', ...args], { ...env }, dir);
      assert.equal(r.code, 1, r.stdout);
      assert.equal(r.stderr.trim(), `carebridge: cannot reach the PostgreSQL server at 127.0.0.1:1 given by ${setting} (connection refused).`);
      assert.doesNotMatch(r.stderr + r.stdout, /s3cret/);
    });
  }
});

/** Starts `carebridge serve` on a new database and a free port; resolves to its "CareBridge listening" line, then stops it. */
async function listeningLine(args: string[]): Promise<string> {
  const own = mkdtempSync(join(tmpdir(), 'carebridge-listening-'));
  const child = spawn(process.execPath, [join(ROOT, 'bin/carebridge.mjs'), 'serve', '--port', '0', '--no-demo', '--db', `sqlite:${join(own, 'c.db')}`, ...args], {
    env: { ...process.env, NODE_TEST_CONTEXT: undefined, CAREBRIDGE_DB: undefined }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  const closed = new Promise((r) => child.once('close', r));
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d) => (out += d));
  child.stderr.setEncoding('utf8').on('data', (d) => (out += d));
  try {
    for (let i = 0; i < 300 && !/CareBridge listening.*\n/.test(out) && child.exitCode === null; i++) await new Promise((r) => setTimeout(r, 100));
    const line = /^CareBridge listening.*$/m.exec(out)?.[0];
    assert.ok(line, out);
    const fhir = /FHIR API at (\S+?),/.exec(line)![1];
    assert.equal((await fetch(`${fhir}/metadata`)).status, 200, `${fhir} is a URL that reaches the server`);
    return line;
  } finally {
    child.kill('SIGTERM');
    await closed;
    rmSync(own, { recursive: true, force: true });
  }
}

// Fastify answers with its first address: 127.0.0.1 for 0.0.0.0, which reads as if the server were bound
// to loopback alone. Nothing stops a server listening beyond loopback (it always asks for authentication,
// and makes no demo logins there), so these start one as an operator would.
describe('the listening line says the host the server was given', () => {
  it('a wildcard host is said to be all interfaces, with a URL that works from this machine', async () => {
    const line = await listeningLine(['--host', '0.0.0.0']);
    assert.match(line, /^CareBridge listening on 0\.0\.0\.0:(\d+) \(all interfaces; portal at http:\/\/127\.0\.0\.1:\1\/, FHIR API at http:\/\/127\.0\.0\.1:\1\/fhir, database sqlite:/);
  });

  it('a named host is the URL\'s host', async () => {
    const line = await listeningLine(['--host', 'localhost']);
    assert.match(line, /^CareBridge listening on http:\/\/localhost:(\d+) \(portal at http:\/\/localhost:\1\/, FHIR API at http:\/\/localhost:\1\/fhir, /);
  });
});

// Node's own error for a busy port names neither the listener nor the setting: with the HL7 v2 port busy it
// read as if the HTTP port were taken.
describe('a listener that cannot start says which one, where, and which setting gave it', () => {
  let busy: Server;
  let port: number;
  after(() => new Promise<void>((resolve) => busy.close(() => resolve())));

  it('the HTTP port and the HL7 v2 port, each named with its own setting', async () => {
    busy = createServer();
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
    port = (busy.address() as { port: number }).port;
    const db = (name: string) => `sqlite:${join(dir, 'listen', `${name}.db`)}`;
    const http = await runCli(['serve', '--no-demo', '--port', String(port), '--db', db('http')], {}, dir);
    assert.equal(http.code, 1, http.stdout);
    assert.equal(http.stderr.trim(), `carebridge: cannot listen for HTTP on 127.0.0.1:${port} given by --port (another program is already listening there).`);
    const hl7 = await runCli(['serve', '--no-demo', '--port', '0', '--db', db('hl7')], { CAREBRIDGE_HL7_PORT: String(port) }, dir);
    assert.equal(hl7.code, 1, hl7.stdout);
    assert.equal(hl7.stderr.trim(), `carebridge: cannot listen for HL7 v2 (MLLP) on 127.0.0.1:${port} given by CAREBRIDGE_HL7_PORT (another program is already listening there).`);
    rmSync(join(dir, 'listen'), { recursive: true, force: true });
  });

  // A line `PORT=` in an env file read as port 0: the server listened where the system chose, and said so
  // only in its start-up line.
  it('an empty PORT is not set: the default port, not one of the system\'s choosing', () => {
    assert.equal(loadServerConfig({}, { PORT: '' }).port, 8080);
    assert.equal(loadServerConfig({}, { PORT: '  ' }).port, 8080);
    assert.equal(loadServerConfig({ port: '0' }, { PORT: '' }).port, 0, '--port 0 still asks for any free port');
  });
});

// A managed PostgreSQL (Azure, RDS, a trust's own cluster) gives a role of its own, not a superuser.
// pg's own errors said neither where nor as whom ("password authentication failed for user …"), nor what
// to grant ("permission denied for schema public", PostgreSQL 15 and later's default for a role that does
// not own the database). Each is one line naming the server, database and role, never the password.
describe('a PostgreSQL that refuses the connection or the migration says where, as whom, and what to grant', () => {
  let server: string; // host:port
  let admin: pg.Client;
  let database: string;
  const role = `r_${process.pid}`;
  const url = (user: string, password: string, db: string, query = '') => `postgres://${user}:${encodeURIComponent(password)}@${server}/${db}${query}`;
  const tablesIn = async (db: string) => {
    const client = new pg.Client({ connectionString: adminUrl().replace(/\/[^/]*$/, `/${db}`) });
    await client.connect();
    try {
      return (await client.query<{ name: string }>("SELECT schemaname || '.' || tablename AS name FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1")).rows.map((r) => r.name);
    } finally {
      await client.end();
    }
  };
  let adminUrl: () => string;

  before(async () => {
    const fresh = await freshPostgresDatabase();
    adminUrl = () => fresh;
    server = new URL(fresh).host;
    database = new URL(fresh).pathname.slice(1);
    admin = new pg.Client({ connectionString: fresh });
    await admin.connect();
    // A password with every character a URL gives a meaning to, percent-encoded as an operator must.
    await admin.query(`CREATE ROLE ${role} LOGIN PASSWORD 'p@ss:w/o#r%d'`);
    await admin.query(`GRANT CONNECT ON DATABASE ${database} TO ${role}`);
  });
  after(async () => {
    // Roles belong to the whole server, which other test files share.
    await admin.query(`DROP OWNED BY ${role}; DROP ROLE ${role}`);
    await admin.end();
  });

  const refused = async (args: string[], env: Record<string, string>, expected: string) => {
    const r = await runCli(args, env, dir);
    assert.equal(r.code, 1, r.stdout);
    // pg warns (several lines) of how it reads sslmode=require; carebridge's own word is the last line.
    assert.equal(r.stderr.trim().split('\n').at(-1), expected, r.stderr);
    assert.doesNotMatch(r.stderr + r.stdout, /p@ss|p%40ss|s3cret/);
  };

  it('a wrong password, a role that does not exist, a database that does not exist', async () => {
    const as = (who: string, db: string) => `database '${db}' on the PostgreSQL server at ${server} as role '${who}' given by --db`;
    await refused(['serve', '--no-demo', '--db', url(role, 's3cret', database)], {}, `carebridge: cannot open ${as(role, database)} (the server refused the password: it is wrong, or there is no such role).`);
    await refused(['serve', '--no-demo', '--db', url('nobody_here', 's3cret', database)], {}, `carebridge: cannot open ${as('nobody_here', database)} (the server refused the password: it is wrong, or there is no such role).`);
    await refused(['serve', '--no-demo', '--db', url(role, 'p@ss:w/o#r%d', 'no_such_db')], {}, `carebridge: cannot open ${as(role, 'no_such_db')} (there is no such database on that server).`);
  });

  it('a role that may not create tables in schema public: the grant to make, and no table made', async () => {
    const expected = (setting: string) => `carebridge: cannot use database '${database}' on the PostgreSQL server at ${server} as role '${role}' given by ${setting} (the role may not create tables in schema public: GRANT CREATE ON SCHEMA public TO ${role}, or give it a schema of its own).`;
    await refused(['serve', '--no-demo', '--db', url(role, 'p@ss:w/o#r%d', database)], {}, expected('--db'));
    await refused(['users', 'list'], { CAREBRIDGE_DB: url(role, 'p@ss:w/o#r%d', database) }, expected('CAREBRIDGE_DB'));
    assert.deepEqual(await tablesIn(database), []);
  });

  it('a schema of its own, given by search_path in the URL, holds every table', async () => {
    await admin.query(`CREATE SCHEMA carebridge AUTHORIZATION ${role}`);
    try {
      await refused(['users', 'list', '--db', url(role, 'p@ss:w/o#r%d', database, '?options=-c%20search_path%3Dmissing')], {},
        `carebridge: cannot use database '${database}' on the PostgreSQL server at ${server} as role '${role}' given by --db (no schema named by its search_path (missing) exists: CREATE SCHEMA … AUTHORIZATION ${role}, or name one that does).`);
      const r = await runCli(['users', 'list', '--db', url(role, 'p@ss:w/o#r%d', database, '?options=-c%20search_path%3Dcarebridge')], {}, dir);
      assert.equal(r.code, 0, r.stderr);
      const tables = await tablesIn(database);
      assert.ok(tables.includes('carebridge.resources') && tables.includes('carebridge.schema_migrations'), tables.join());
      assert.deepEqual(tables.filter((t) => !t.startsWith('carebridge.')), []);
    } finally {
      await admin.query('DROP SCHEMA carebridge CASCADE');
    }
  });

  it('a role refused CONNECT: the grant to make', async () => {
    await admin.query(`REVOKE CONNECT ON DATABASE ${database} FROM PUBLIC, ${role}`);
    await refused(['serve', '--no-demo', '--db', url(role, 'p@ss:w/o#r%d', database)], {},
      `carebridge: cannot open database '${database}' on the PostgreSQL server at ${server} as role '${role}' given by --db (role '${role}' may not connect to it: GRANT CONNECT ON DATABASE ${database} TO ${role}).`);
  });

  it('TLS asked for (sslmode=require) of a server that offers none', async () => {
    await refused(['serve', '--no-demo', '--db', url(role, 'p@ss:w/o#r%d', database, '?sslmode=require')], {},
      `carebridge: cannot reach the PostgreSQL server at ${server} given by --db (TLS was asked for (sslmode=require) and the server does not offer it).`);
  });
});
