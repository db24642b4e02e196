// What access checks and the audit trail cost: read-by-id and a search against a server on SQLite holding
// the demo dataset, in three configurations, each run in a fresh process:
//   open     no authentication, no access checks, no audit (what `--insecure-no-auth` with CAREBRIDGE_AUDIT=off serves)
//   checked  the caller's token verified and every access checked, audit off (CAREBRIDGE_AUDIT=off)
//   audited  checked, and every request written to the audit trail (the production configuration)
// Issue 3's figure is audited against open (access checks and audit on versus off); audited against
// checked is the audit trail alone. The caller is, by default, a care-home staff member signed in through
// the real authorization code flow, reading a resident of their home: every request derives the
// relationship from the record. `--caller client` uses an administrative system client instead, whose
// checks are only its scopes. One process for all runs made every run after the first slower, whatever
// its configuration, hence a process per run; the load generator runs as a child process of that run so it
// does not share the server's event loop.
//
// The load generator is wrk (one thread) when it is on the PATH (Debian: apt install wrk), else autocannon.
// Both share the server's two cores, and the audit writer thread runs on the core the load generator uses:
// autocannon spends ~60 µs of CPU per request there, more than the writer's ~23 µs, so with it the figure
// measures the two competing for that core as much as the server; wrk spends a fraction of that, leaving
// the second core to the server, as clients on other machines would. `--load autocannon` measures the old way.
//
//   node --import tsx bench/auditOverhead.ts [--duration 5] [--connections 32] [--rounds 1] [--rate N] [--dir PATH]
//                                            [--caller care-home|client] [--workloads read,search,identifier]
//                                            [--load wrk|autocannon]
//
// Without --rate the server is saturated (req/s is the figure); with --rate N (autocannon only) it sends N requests
// a second in all, below saturation, and p99 is the figure. Rounds rotate which configuration goes first so
// drift on a noisy machine hits all alike; figures are the median over rounds, each round's are printed too,
// with the median of each round's own overhead. Server CPU per answered request (this process: request
// thread and audit writer thread, from process.cpuUsage) is the figure least moved by other work on a
// shared machine; on Linux it is also split into the request thread (the one that bounds throughput) and
// the rest (the audit writer thread, V8's GC helpers), from /proc/self/task/<pid>/stat. --dir puts the
// database elsewhere (e.g. /dev/shm to take the disk out).
//
// --interleave N: the three servers run side by side for the whole benchmark (each its own process and its
// own copy of the database) and take the load in turn, a --slice of seconds each, for N cycles. A shared
// machine whose speed drifts (the same code measured 14,000 to 24,000 open reads a second minutes apart,
// 5-second runs) moves all three alike within a cycle, so each cycle's own overhead is a paired
// comparison; the figure is their median. An idle server costs nothing meanwhile: after each slice the
// audited one's writer catches up before the next slice starts, so no server pays for another's audit.
//   node --import tsx bench/auditOverhead.ts --interleave 15 --slice 2 [--workloads read,search]

import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { buildServer, type CareBridgeServer } from '../src/server.ts';
import { loadServerConfig } from '../src/config.ts';
import { handleFhirRequest, NHS_NUMBER_SYSTEM, openRecordStore, UNRESTRICTED, type SqlDriver } from '../src/record/index.ts';
import { addOrganisation, findOrganisation, findUser } from '../src/access/index.ts';
import { buildDemoDataset } from '../src/demo/index.ts';
import { addPerson, personToken } from '../test/support/people.ts';
import type { TestServer } from '../test/support/server.ts';

const { values: args } = parseArgs({ options: {
  duration: { type: 'string', default: '5' }, connections: { type: 'string', default: '32' }, rounds: { type: 'string', default: '1' }, rate: { type: 'string' },
  load: { type: 'string' }, dir: { type: 'string', default: tmpdir() }, workloads: { type: 'string', default: 'read,search' }, caller: { type: 'string', default: 'care-home' }, child: { type: 'string' }, db: { type: 'string' },
  interleave: { type: 'string' }, slice: { type: 'string', default: '2' }, serve: { type: 'boolean', default: false },
} });
if (args.caller !== 'care-home' && args.caller !== 'client') throw new Error(`--caller is care-home or client, not '${args.caller}'.`);
const AUTOCANNON = createRequire(import.meta.url).resolve('autocannon/autocannon.js');
const ADMIN = { id: 'bench-admin', secret: 'bench-admin-secret-0123456789' };
/** A resident of the demo's first care home (VM101), and a member of its staff. */
const PATIENT = 'demo-pat-vm101-01';
const STAFF = { username: 'bench-carer-vm101', role: 'care-home-staff', org: 'VM101' } as const;
const WORKLOADS = {
  read: `Patient/${PATIENT}`,
  search: `Observation?patient=${PATIENT}&code=${encodeURIComponent('http://loinc.org|9279-1')}&_count=20`,
  // The resident found by NHS number, as an integrator would (the number is the demo's, looked up at the start).
  identifier: `Patient?identifier=${encodeURIComponent(NHS_NUMBER_SYSTEM)}|{nhs}`,
};
const MODES = ['open', 'checked', 'audited'] as const;
type Mode = (typeof MODES)[number];
type Workload = keyof typeof WORKLOADS;
const CHOSEN = args.workloads!.split(',') as Workload[];
for (const w of CHOSEN) if (!(w in WORKLOADS)) throw new Error(`--workloads lists read, search and/or identifier, not '${w}'.`);
interface Figures { rps: number; p99: number; errors: number; cpuUs: number; mainUs: number }

const LOAD = args.load ?? (spawnSync('wrk', ['--version']).error ? 'autocannon' : 'wrk');
if (LOAD !== 'wrk' && LOAD !== 'autocannon') throw new Error(`--load is wrk or autocannon, not '${LOAD}'.`);

function load(url: string, token: string | undefined, duration: string): Promise<Figures> {
  return LOAD === 'wrk' ? wrk(url, token, duration) : autocannon(url, token, duration);
}

function wrk(url: string, token: string | undefined, duration: string): Promise<Figures> {
  if (args.rate) throw new Error('--rate needs --load autocannon (wrk cannot hold a rate).');
  return new Promise((resolve, reject) => {
    const auth = token ? ['-H', `Authorization: Bearer ${token}`] : [];
    const child = spawn('wrk', ['-t', '1', '-c', args.connections!, '-d', `${duration}s`, '--latency', ...auth, url], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d) => (out += d));
    child.on('error', reject);
    child.on('close', (code) => {
      const total = /(\d+) requests in ([\d.]+)(\w+)/.exec(out);
      const p99 = /\s99%\s+([\d.]+)(us|ms|s)\b/.exec(out);
      if (code !== 0 || !total || !p99) return reject(new Error(`wrk gave no result (exit ${code}): ${out.trim().split('\n').slice(-3).join(' ')}`));
      const seconds = Number(total[2]) * ({ ms: 1e-3, s: 1, m: 60 } as Record<string, number>)[total[3]];
      const refused = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0);
      const failed = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out)?.slice(1).reduce((a, b) => a + Number(b), 0) ?? 0;
      const ms = Number(p99[1]) * ({ us: 1e-3, ms: 1, s: 1e3 } as Record<string, number>)[p99[2]];
      resolve({ rps: (Number(total[1]) - refused) / seconds, p99: ms, errors: refused + failed, cpuUs: 0, mainUs: 0 });
    });
  });
}

function autocannon(url: string, token: string | undefined, duration: string): Promise<Figures> {
  return new Promise((resolve, reject) => {
    const rate = args.rate ? ['-R', args.rate] : [];
    const auth = token ? ['-H', `authorization=Bearer ${token}`] : [];
    const child = spawn(process.execPath, [AUTOCANNON, '-j', '-c', args.connections!, '-d', duration, ...rate, ...auth, url], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d) => (err += d));
    child.on('error', reject);
    child.on('close', (code) => {
      if (!out.trim()) return reject(new Error(`autocannon gave no result (exit ${code}): ${err.trim().split('\n').slice(-3).join(' ')}`));
      try {
        const r = JSON.parse(out);
        // Only answered 2xx count: a refused request (503 when the audit cannot keep up) is not throughput.
        resolve({ rps: r['2xx'] / r.duration, p99: r.latency.p99, errors: r.non2xx + r.errors + r.timeouts, cpuUs: 0, mainUs: 0 });
      } catch (err) {
        reject(err);
      }
    });
  });
}

async function clientToken(origin: string): Promise<string> {
  const res = await fetch(`${origin}/oauth2/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${ADMIN.id}:${ADMIN.secret}`).toString('base64')}` },
    body: 'grant_type=client_credentials',
  });
  return (await res.json()).access_token;
}

/** The care-home staff member's token, through the authorization code flow (their account made on first use). */
async function staffToken(server: CareBridgeServer, origin: string): Promise<string> {
  const t = { url: origin, base: `${origin}/fhir`, server } as TestServer;
  if (!(await findOrganisation(server.driver, STAFF.org))) await addOrganisation(server.driver, { ods: STAFF.org, name: 'Demo care home VM101', kind: 'care-home' });
  if (!(await findUser(server.driver, STAFF.username))) await addPerson(t, STAFF);
  return personToken(t, STAFF.username);
}

async function residentNhsNumber(driver: SqlDriver): Promise<string> {
  const row = await driver.get<{ code: string }>("SELECT t.code FROM search_token t JOIN resources r ON r.rid = t.rid WHERE r.type = 'Patient' AND r.id = ? AND t.param = 'identifier' AND t.system = ?", [PATIENT, NHS_NUMBER_SYSTEM]);
  if (!row) throw new Error(`The demo resident ${PATIENT} has no NHS number.`);
  return row.code;
}

/** Waits until the audit journal stops growing (the writer has caught up). */
async function auditWritten(driver: SqlDriver): Promise<void> {
  const count = async () => Number((await driver.get<{ n: number }>('SELECT (SELECT COUNT(*) FROM audit_journal) + (SELECT COALESCE(SUM(last_seq - first_seq + 1), 0) FROM audit_batch) AS n'))?.n ?? 0);
  let last = -1;
  for (let i = 0; i < 300; i++) {
    const now = await count();
    if (now === last) return;
    last = now;
    await new Promise((r) => setTimeout(r, 300));
  }
}

/** CPU time of the request thread (the main thread: its task id is the process id), µs; NaN off Linux. */
const MAIN_STAT = `/proc/self/task/${process.pid}/stat`;
function requestThreadUs(): number {
  if (!existsSync(MAIN_STAT)) return NaN;
  const stat = readFileSync(MAIN_STAT, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) / 100) * 1e6; // utime + stime, in clock ticks of 10 ms
}

/** A server in one configuration, warmed up, that measures one workload at a time. */
interface Measured { measure(name: Workload, duration: string): Promise<Figures>; rssMb(): number; close(): Promise<void> }

async function startRun(database: string, mode: Mode): Promise<Measured> {
  const env = { CAREBRIDGE_ADMIN_CLIENT_ID: ADMIN.id, CAREBRIDGE_ADMIN_CLIENT_SECRET: ADMIN.secret, CAREBRIDGE_AUDIT: mode === 'audited' ? 'on' : 'off' };
  const server = await buildServer(loadServerConfig({ port: 0, db: database, insecureNoAuth: mode === 'open' }, env));
  let rssMb = 0;
  try {
    const origin = await server.app.listen({ host: '127.0.0.1', port: 0 });
    const bearer = mode === 'open' ? undefined : args.caller === 'client' ? await clientToken(origin) : await staffToken(server, origin);
    const urls = {} as Record<Workload, string>;
    for (const name of CHOSEN) {
      urls[name] = `${origin}/fhir/${WORKLOADS[name].replace('{nhs}', await residentNhsNumber(server.driver))}`;
      const warm = await load(urls[name], bearer, '1');
      if (warm.errors) throw new Error(`${mode}: ${name} was refused ${warm.errors} times in the warm-up (is the caller allowed to read ${urls[name]}?)`);
    }
    return {
      async measure(name, duration) {
        if (mode === 'audited') await auditWritten(server.driver);
        const before = process.cpuUsage();
        const mainBefore = requestThreadUs();
        const figures = await load(urls[name], bearer, duration);
        rssMb = Math.max(rssMb, process.memoryUsage().rss / 1e6);
        if (mode === 'audited') await auditWritten(server.driver); // the next slice must not pay for this one's backlog; its writing counts
        const used = process.cpuUsage(before);
        figures.cpuUs = (used.user + used.system) / (figures.rps * Number(duration));
        figures.mainUs = (requestThreadUs() - mainBefore) / (figures.rps * Number(duration));
        return figures;
      },
      rssMb: () => rssMb,
      close: () => server.close(),
    };
  } catch (err) {
    await server.close();
    throw err;
  }
}

async function run(database: string, mode: Mode): Promise<{ figures: Record<Workload, Figures>; rssMb: number }> {
  const measured = await startRun(database, mode);
  try {
    const figures = {} as Record<Workload, Figures>;
    for (const name of CHOSEN) figures[name] = await measured.measure(name, args.duration!);
    return { figures, rssMb: measured.rssMb() };
  } finally {
    await measured.close();
  }
}

/** A child kept running for --interleave: measures a slice when asked (over IPC), until told to stop. */
async function serveSlices(database: string, mode: Mode): Promise<void> {
  const measured = await startRun(database, mode);
  process.on('message', (m: { workload?: Workload; stop?: boolean }) => {
    if (m.stop) {
      void measured.close().then(() => process.exit(0));
      return;
    }
    measured.measure(m.workload!, args.slice!).then(
      (figures) => process.send!({ figures, rssMb: measured.rssMb() }),
      (err) => process.send!({ error: String((err as Error)?.stack ?? err) }),
    );
  });
  process.send!({ ready: true });
}

const rssMb: Record<Mode, number> = { open: 0, checked: 0, audited: 0 };
const passedArgs = () => ['duration', 'connections', 'rate', 'caller', 'workloads', 'load', 'slice'].flatMap((k) => (args[k as 'rate'] ? [`--${k}`, args[k as 'rate']!] : []));

function runInChild(database: string, mode: Mode): Promise<Record<Workload, Figures>> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...process.execArgv, process.argv[1], '--child', mode, '--db', database, ...passedArgs()], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d) => (out += d));
    child.on('error', reject);
    child.on('close', (code) => {
      const line = out.trim().split('\n').pop() ?? '';
      if (code !== 0 || !line.startsWith('{')) return reject(new Error(`the ${mode} run failed (exit ${code})`));
      const r = JSON.parse(line);
      rssMb[mode] = Math.max(rssMb[mode], r.rssMb);
      resolve(r.figures);
    });
  });
}

interface SliceServer { slice(workload: Workload): Promise<Figures>; stop(): Promise<void> }

/** A child serving in `mode` for the whole benchmark, measuring a slice whenever asked (--interleave). */
function sliceServer(database: string, mode: Mode): Promise<SliceServer> {
  const child = spawn(process.execPath, [...process.execArgv, process.argv[1], '--child', mode, '--serve', '--db', database, ...passedArgs()], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  let waiting: { resolve: (m: any) => void; reject: (e: Error) => void } | undefined;
  child.on('message', (m: any) => waiting?.resolve(m));
  child.on('exit', (code) => waiting?.reject(new Error(`the ${mode} server exited (${code})`)));
  const next = () => new Promise<any>((resolve, reject) => (waiting = { resolve, reject }));
  return next().then(() => ({
    async slice(workload) {
      const answer = next();
      child.send({ workload });
      const m = await answer;
      if (m.error) throw new Error(`the ${mode} server failed a slice: ${m.error}`);
      rssMb[mode] = Math.max(rssMb[mode], m.rssMb);
      return m.figures;
    },
    stop: () => new Promise<void>((resolve) => {
      waiting = undefined;
      child.once('exit', () => resolve());
      child.send({ stop: true });
    }),
  }));
}

/** One result per mode per round (or cycle) and workload. */
type Results = Record<Mode, Record<Workload, Figures>[]>;

async function inRounds(database: string): Promise<Results> {
  const results: Results = { open: [], checked: [], audited: [] };
  for (let round = 0; round < Number(args.rounds); round++) {
    const order = MODES.map((_, i) => MODES[(i + round) % MODES.length]);
    for (const mode of order) results[mode].push(await runInChild(database, mode));
  }
  return results;
}

async function interleaved(dir: string, database: string): Promise<Results> {
  const source = database.slice('sqlite:'.length);
  const servers = {} as Record<Mode, SliceServer>;
  try {
    // Started one after another: each adds its caller to its own copy of the database.
    for (const mode of MODES) {
      const copy = join(dir, `${mode}.db`);
      copyFileSync(source, copy);
      if (existsSync(`${source}-wal`)) copyFileSync(`${source}-wal`, `${copy}-wal`);
      servers[mode] = await sliceServer(`sqlite:${copy}`, mode);
    }
    const results: Results = { open: [], checked: [], audited: [] };
    for (let cycle = 0; cycle < Number(args.interleave); cycle++) {
      const order = MODES.map((_, i) => MODES[(i + cycle) % MODES.length]);
      const figures = { open: {}, checked: {}, audited: {} } as Record<Mode, Record<Workload, Figures>>;
      for (const w of CHOSEN) for (const mode of order) figures[mode][w] = await servers[mode].slice(w);
      for (const mode of MODES) results[mode].push(figures[mode]);
    }
    return results;
  } finally {
    await Promise.all(Object.values(servers).map((s) => s.stop()));
  }
}

const median = (v: number[]) => {
  const s = [...v].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const pct = (v: number) => `${v.toFixed(1)}%`;

function report(results: Results): void {
  const of = (mode: Mode, w: Workload, k: keyof Figures) => median(results[mode].map((r) => r[w][k]));
  const caller = args.caller === 'client' ? 'an administrative system client (scope checks only)' : 'a care-home staff member reading their own resident (role, scope and relationship checks)';
  const how = args.interleave ? `interleaved: ${args.interleave} cycles of ${args.slice} s per server` : `${args.duration} s per run, ${args.rounds} round(s)`;
  const unit = args.interleave ? 'cycles' : 'rounds';
  console.log(`access and audit overhead (medians): load from ${LOAD}, ${args.connections} connections${args.rate ? `, ${args.rate} req/s offered` : ''}, ${how}, SQLite in ${args.dir}, demo dataset; caller: ${caller}`);
  console.log(`workload  mode     req/s     p99 ms  errors  server CPU µs/request  of which request thread  (${unit}: req/s)`);
  for (const w of CHOSEN) {
    for (const mode of MODES) {
      console.log(`${w.padEnd(9)} ${mode.padEnd(7)} ${of(mode, w, 'rps').toFixed(0).padStart(7)}  ${of(mode, w, 'p99').toFixed(1).padStart(7)}  ${String(of(mode, w, 'errors')).padStart(6)}  ${of(mode, w, 'cpuUs').toFixed(1).padStart(21)}  ${of(mode, w, 'mainUs').toFixed(1).padStart(23)}  (${results[mode].map((r) => r[w].rps.toFixed(0)).join(', ')})`);
    }
    for (const [on, off, what] of [['audited', 'open', 'access checks and audit (issue 3)'], ['audited', 'checked', 'audit alone']] as const) {
      const overhead = (1 - of(on, w, 'rps') / of(off, w, 'rps')) * 100;
      const each = results[on].map((r, i) => (1 - r[w].rps / results[off][i][w].rps) * 100);
      const cpu = (of(on, w, 'cpuUs') / of(off, w, 'cpuUs') - 1) * 100;
      const main = (of(on, w, 'mainUs') / of(off, w, 'mainUs') - 1) * 100;
      const latency = (of(on, w, 'p99') / of(off, w, 'p99') - 1) * 100;
      // Interleaved, each cycle is a pair measured seconds apart: the median of the pairs is the figure.
      const figure = args.interleave ? median(each) : overhead;
      const listed = args.interleave ? `paired median of ${each.length} cycles; of the medians ${pct(overhead)}; cycles ${each.map((v) => v.toFixed(0)).join(', ')}` : `rounds ${each.map(pct).join(', ')}; median ${pct(median(each))}`;
      console.log(`${w.padEnd(9)} ${what}: ${pct(figure)} of throughput (${listed}), ${pct(latency)} on p99, ${pct(cpu)} server CPU per request (request thread ${pct(main)})${figure < 15 ? '' : '  (over the 15% budget)'}`);
    }
  }
  console.log(`process memory (RSS, peak): ${MODES.map((m) => `${m} ${rssMb[m].toFixed(0)} MB`).join(', ')}`);
}

// Each run is a fresh process, so no run inherits another's compiled code, heap or leftover timers.
if (args.child && args.serve) {
  await serveSlices(args.db!, args.child as Mode);
} else if (args.child) {
  process.stdout.write(`${JSON.stringify(await run(args.db!, args.child as Mode))}\n`);
  process.exit(0);
} else {
  const dir = mkdtempSync(join(args.dir!, 'carebridge-bench-'));
  try {
    const database = `sqlite:${join(dir, 'bench.db')}`;
    const driver = await openRecordStore(database);
    await handleFhirRequest({ base: 'http://localhost/fhir', driver, access: UNRESTRICTED }, { method: 'POST', path: '', query: [], body: buildDemoDataset().bundle, prefer: 'return=minimal' });
    await driver.close();
    report(args.interleave ? await interleaved(dir, database) : await inRounds(database));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
