// What the audit trail costs: read-by-id and a search, with access checks, against a server on SQLite
// holding the demo dataset, with the audit trail on and off (CAREBRIDGE_AUDIT=off). Each run (one mode, both
// workloads) is a fresh process, so no run inherits another's compiled code, heap or timers (one process for
// all runs made every run after the first slower, whatever its mode); autocannon runs as a child process of
// that run so it does not share the server's event loop.
//
//   node --import tsx bench/auditOverhead.ts [--duration 5] [--connections 32] [--rounds 1] [--rate N] [--dir PATH]
//
// Without --rate the server is saturated (req/s is the figure); with --rate N autocannon sends N requests
// a second in all, below saturation, and p99 is the figure. Rounds alternate off/on (off first, then on
// first, and so on) so drift on a noisy machine hits both alike; figures are the median over rounds, each
// round's are printed too, with the median of each round's own on/off overhead. Server CPU per
// answered request (this process: request thread and audit writer thread, from process.cpuUsage) is the
// figure least moved by other work on a shared machine; on Linux it is also split into the request thread
// (the one that bounds throughput) and the rest (the audit writer thread, V8's GC helpers), from
// /proc/self/task/<pid>/stat. --dir puts the database elsewhere (e.g. /dev/shm to take the disk out).

import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { buildServer } from '../src/server.ts';
import { loadServerConfig } from '../src/config.ts';
import { handleFhirRequest, openRecordStore, UNRESTRICTED, type SqlDriver } from '../src/record/index.ts';
import { buildDemoDataset } from '../src/demo/index.ts';

const { values: args } = parseArgs({ options: { duration: { type: 'string', default: '5' }, connections: { type: 'string', default: '32' }, rounds: { type: 'string', default: '1' }, rate: { type: 'string' }, dir: { type: 'string', default: tmpdir() }, child: { type: 'string' }, db: { type: 'string' } } });
const AUTOCANNON = createRequire(import.meta.url).resolve('autocannon/autocannon.js');
const ADMIN = { id: 'bench-admin', secret: 'bench-admin-secret-0123456789' };
const PATIENT = 'demo-pat-vm101-01';
const WORKLOADS = {
  read: `Patient/${PATIENT}`,
  search: `Observation?patient=${PATIENT}&code=${encodeURIComponent('http://loinc.org|9279-1')}&_count=20`,
};
type Workload = keyof typeof WORKLOADS;
interface Figures { rps: number; p99: number; errors: number; cpuUs: number; mainUs: number }

function autocannon(url: string, token: string, duration: string): Promise<Figures> {
  return new Promise((resolve, reject) => {
    const rate = args.rate ? ['-R', args.rate] : [];
    const child = spawn(process.execPath, [AUTOCANNON, '-j', '-c', args.connections!, '-d', duration, ...rate, '-H', `authorization=Bearer ${token}`, url], { stdio: ['ignore', 'pipe', 'pipe'] });
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

async function token(origin: string): Promise<string> {
  const res = await fetch(`${origin}/oauth2/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${ADMIN.id}:${ADMIN.secret}`).toString('base64')}` },
    body: 'grant_type=client_credentials',
  });
  return (await res.json()).access_token;
}

/** Waits until the audit journal stops growing (the writer has caught up). */
async function auditWritten(driver: SqlDriver): Promise<void> {
  const count = async () => Number((await driver.get<{ n: number }>('SELECT COUNT(*) AS n FROM audit_journal'))?.n ?? 0);
  let last = -1;
  for (let i = 0; i < 300; i++) {
    const now = await count();
    if (now === last) return;
    last = now;
    await new Promise((r) => setTimeout(r, 300));
  }
}

const rssMb = { on: 0, off: 0 };

/** CPU time of the request thread (the main thread: its task id is the process id), µs; NaN off Linux. */
const MAIN_STAT = `/proc/self/task/${process.pid}/stat`;
function requestThreadUs(): number {
  if (!existsSync(MAIN_STAT)) return NaN;
  const stat = readFileSync(MAIN_STAT, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) / 100) * 1e6; // utime + stime, in clock ticks of 10 ms
}

async function run(database: string, audit: 'on' | 'off'): Promise<Record<Workload, Figures>> {
  const env = { CAREBRIDGE_ADMIN_CLIENT_ID: ADMIN.id, CAREBRIDGE_ADMIN_CLIENT_SECRET: ADMIN.secret, CAREBRIDGE_AUDIT: audit };
  const server = await buildServer(loadServerConfig({ port: 0, db: database }, env));
  try {
    const origin = await server.app.listen({ host: '127.0.0.1', port: 0 });
    const bearer = await token(origin);
    const out = {} as Record<Workload, Figures>;
    for (const [name, path] of Object.entries(WORKLOADS) as [Workload, string][]) {
      await autocannon(`${origin}/fhir/${path}`, bearer, '1'); // warm-up
      await auditWritten(server.driver);
      const before = process.cpuUsage();
      const mainBefore = requestThreadUs();
      out[name] = await autocannon(`${origin}/fhir/${path}`, bearer, args.duration!);
      rssMb[audit] = Math.max(rssMb[audit], process.memoryUsage().rss / 1e6);
      await auditWritten(server.driver); // the next workload must not pay for this one's backlog; its writing counts
      const used = process.cpuUsage(before);
      out[name].cpuUs = (used.user + used.system) / (out[name].rps * Number(args.duration));
      out[name].mainUs = (requestThreadUs() - mainBefore) / (out[name].rps * Number(args.duration));
    }
    return out;
  } finally {
    await server.close();
  }
}

// Each run is a fresh process, so no run inherits another's compiled code, heap or leftover timers.
if (args.child) {
  const figures = await run(args.db!, args.child as 'on' | 'off');
  process.stdout.write(`${JSON.stringify({ figures, rssMb: rssMb[args.child as 'on' | 'off'] })}\n`);
  process.exit(0);
}

function runInChild(database: string, mode: 'on' | 'off'): Promise<Record<Workload, Figures>> {
  const passed = ['duration', 'connections', 'rate'].flatMap((k) => (args[k as 'rate'] ? [`--${k}`, args[k as 'rate']!] : []));
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...process.execArgv, process.argv[1], '--child', mode, '--db', database, ...passed], { stdio: ['ignore', 'pipe', 'inherit'] });
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

const dir = mkdtempSync(join(args.dir!, 'carebridge-bench-'));
try {
  const database = `sqlite:${join(dir, 'bench.db')}`;
  const driver = await openRecordStore(database);
  await handleFhirRequest({ base: 'http://localhost/fhir', driver, access: UNRESTRICTED }, { method: 'POST', path: '', query: [], body: buildDemoDataset().bundle, prefer: 'return=minimal' });
  await driver.close();

  const results: Record<'on' | 'off', Record<Workload, Figures>[]> = { on: [], off: [] };
  for (let round = 0; round < Number(args.rounds); round++) {
    for (const mode of round % 2 ? (['on', 'off'] as const) : (['off', 'on'] as const)) results[mode].push(await runInChild(database, mode));
  }
  const median = (mode: 'on' | 'off', w: Workload, k: keyof Figures) => {
    const v = results[mode].map((r) => r[w][k]).sort((a, b) => a - b);
    return v.length % 2 ? v[(v.length - 1) / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
  };
  console.log(`audit overhead (medians): ${args.connections} connections${args.rate ? `, ${args.rate} req/s offered` : ''}, ${args.duration} s per run, ${args.rounds} round(s), SQLite in ${args.dir}, demo dataset, access checks on`);
  console.log('workload  audit  req/s     p99 ms  errors  server CPU µs/request  of which request thread  (rounds: req/s)');
  for (const w of Object.keys(WORKLOADS) as Workload[]) {
    for (const mode of ['off', 'on'] as const) {
      console.log(`${w.padEnd(9)} ${mode.padEnd(6)} ${median(mode, w, 'rps').toFixed(0).padStart(7)}  ${median(mode, w, 'p99').toFixed(1).padStart(7)}  ${String(median(mode, w, 'errors')).padStart(6)}  ${median(mode, w, 'cpuUs').toFixed(1).padStart(21)}  ${median(mode, w, 'mainUs').toFixed(1).padStart(23)}  (${results[mode].map((r) => r[w].rps.toFixed(0)).join(', ')})`);
    }
    const overhead = (1 - median('on', w, 'rps') / median('off', w, 'rps')) * 100;
    const latency = (median('on', w, 'p99') / median('off', w, 'p99') - 1) * 100;
    const cpu = (median('on', w, 'cpuUs') / median('off', w, 'cpuUs') - 1) * 100;
    const main = (median('on', w, 'mainUs') / median('off', w, 'mainUs') - 1) * 100;
    const paired = results.on.map((r, i) => (1 - r[w].rps / results.off[i][w].rps) * 100).sort((a, b) => a - b);
    const pairedMedian = paired.length % 2 ? paired[(paired.length - 1) / 2] : (paired[paired.length / 2 - 1] + paired[paired.length / 2]) / 2;
    console.log(`${w.padEnd(9)} per round: ${paired.map((p) => `${p.toFixed(1)}%`).join(', ')} (median ${pairedMedian.toFixed(1)}%)`);
    console.log(`${w.padEnd(9)} overhead ${overhead.toFixed(1)}% of throughput, ${latency.toFixed(1)}% on p99, ${cpu.toFixed(1)}% server CPU per request (request thread ${main.toFixed(1)}%)${overhead < 15 ? '' : '  (throughput over the 15% budget)'}`);
  }
  console.log(`process memory (RSS, peak): audit off ${rssMb.off.toFixed(0)} MB, on ${rssMb.on.toFixed(0)} MB`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
