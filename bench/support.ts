// What every benchmark shares: the server under test in its own process, fresh databases, a keep-alive
// HTTP client, and percentiles.
import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, freshPostgresDatabase } from '../test/support/postgres.ts';

export type Engine = 'sqlite' | 'postgres';

const ROOT = new URL('..', import.meta.url).pathname;

/** A fresh database: a SQLite file in a temp folder, or a new database on the bench's PostgreSQL. */
export async function freshDatabase(engine: Engine): Promise<{ database: string; cleanup(): void }> {
  if (engine === 'postgres') return { database: await freshPostgresDatabase(), cleanup: () => undefined };
  const dir = mkdtempSync(join(tmpdir(), 'carebridge-bench-'));
  return { database: `sqlite:${join(dir, 'carebridge.db')}`, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export interface ChildServer { url: string; pid: number; stop(): Promise<void> }

const children = new Set<ChildProcess>();
process.once('exit', () => children.forEach((c) => c.kill('SIGTERM'))); // never leave a server behind

/**
 * Starts a process (by default `carebridge serve`) and waits for its "listening on" line, so client and
 * server never share an event loop. BENCH_SERVER_NODE_ARGS passes flags to its node, e.g. "--cpu-prof".
 */
export async function startChild(script: string, args: string[] = []): Promise<ChildServer> {
  const port = await freePort();
  const nodeArgs = ['--import', 'tsx', ...(process.env.BENCH_SERVER_NODE_ARGS ?? '').split(' ').filter(Boolean)];
  const child: ChildProcess = spawn(process.execPath, [...nodeArgs, script, ...args, '--port', String(port)], {
    cwd: ROOT,
    env: { ...process.env, CAREBRIDGE_ADMIN_CLIENT_ID: BENCH_CLIENT.id, CAREBRIDGE_ADMIN_CLIENT_SECRET: BENCH_CLIENT.secret, CAREBRIDGE_TOKEN_RATE_LIMIT: '100000' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  let output = ''; // the last few KB of its stdout and stderr, for error messages
  let stopping = false;
  const keep = (chunk: Buffer) => (output = (output + chunk).slice(-10_000));
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${script} did not start in 60 s:\n${output}`)), 60_000);
    child.stdout!.on('data', () => /listening on/i.test(output) && (clearTimeout(timer), resolve()));
    child.once('exit', (code, signal) => {
      children.delete(child);
      clearTimeout(timer);
      reject(new Error(`${script} exited (${code ?? signal}) before listening:\n${output}`));
      if (!stopping) log(`${script} (pid ${child.pid}) exited unexpectedly (${code ?? signal}):\n${output.slice(-2000)}`);
    });
  });
  return {
    url: `http://127.0.0.1:${port}`,
    pid: child.pid!,
    stop: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        stopping = true;
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

/** The benchmark's own system client, ensured by the server from the environment. */
export const BENCH_CLIENT = { id: 'bench', secret: 'bench-secret-not-for-production' };

export function startServer(database: string): Promise<ChildServer> {
  return startChild('bin/carebridge.mjs', ['serve', '--no-demo', '--db', database]);
}

const tokens = new Map<string, { header: string; until: number }>();

/**
 * An Authorization header for a server (tokens live 5 minutes; a fresh one is fetched a minute before
 * the old one expires, so a long run never sends an expired token).
 */
export async function authHeader(origin: string): Promise<string> {
  const known = tokens.get(origin);
  if (known && known.until > Date.now()) return known.header;
  const res = await fetch(`${origin}/oauth2/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${BENCH_CLIENT.id}:${BENCH_CLIENT.secret}`).toString('base64')}` },
    body: 'grant_type=client_credentials',
  });
  const body = (await res.json()) as { access_token?: string; expires_in?: number };
  if (!body.access_token) throw new Error(`no token from ${origin}: ${JSON.stringify(body)}`);
  const header = `Bearer ${body.access_token}`;
  tokens.set(origin, { header, until: Date.now() + ((body.expires_in ?? 300) - 60) * 1000 });
  return header;
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

export interface Reply { status: number; body: string; ms: number }

/**
 * One HTTP request on a kept-alive connection; `ms` is the full round trip including the body. A request
 * on a reused connection that the server closed as idle just then is retried once (Node's documented race).
 */
export async function request(method: string, url: string, body?: string, retry = true): Promise<Reply> {
  const authorization = await authHeader(new URL(url).origin);
  return new Promise((resolve, reject) => {
    const start = performance.now();
    const headers: Record<string, string | number> = { accept: 'application/fhir+json', authorization };
    if (body !== undefined) {
      headers['content-type'] = 'application/fhir+json';
      headers['content-length'] = Buffer.byteLength(body);
    }
    const req = http.request(url, { method, agent, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString(), ms: performance.now() - start }));
      res.on('error', reject);
    });
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (retry && req.reusedSocket && err.code === 'ECONNRESET') resolve(request(method, url, body, false));
      else reject(err);
    });
    req.end(body);
  });
}

/** Transactions the server refused with 503 (it sheds load while its audit trail catches up) and that were sent again. */
export const refused = { count: 0 };

/**
 * Posts a transaction Bundle and fails loudly unless every entry was stored. A 503 (refused before any
 * work, "try again shortly") is retried after a pause, as a well-behaved importer would, and counted.
 */
export async function postTransaction(base: string, bundle: string): Promise<string[]> {
  for (let attempt = 1; ; attempt++) {
    const reply = await request('POST', `${base}/fhir`, bundle);
    if (reply.status === 503 && attempt < 10) {
      refused.count++;
      await new Promise((r) => setTimeout(r, 500 * attempt));
      continue;
    }
    if (reply.status !== 200) throw new Error(`transaction failed with ${reply.status}: ${reply.body.slice(0, 500)}`);
    const entries = (JSON.parse(reply.body).entry ?? []) as { response: { location?: string } }[];
    return entries.map((e) => e.response.location ?? '');
  }
}

/** Runs `worker` over `items` with at most `limit` in flight. */
export async function inParallel<T>(items: T[], limit: number, worker: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < items.length) await worker(items[next++]);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
}

/** Nearest-rank percentile of an unsorted sample. */
export function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)];
}

export const median = (values: number[]) => percentile(values, 50);

/** Deterministic pseudo-random numbers (mulberry32), so runs are reproducible. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function log(message: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
}

/** CPU ticks (utime+stime, plus reaped children's) of this process and all its live descendants. */
function ourTreeTicks(): number {
  const stats = readdirSync('/proc').filter((d) => /^\d+$/.test(d)).flatMap((pid) => {
    try {
      const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
      return [{ pid: Number(pid), ppid: Number(f[1]), ticks: Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]) }];
    } catch {
      return []; // the process ended while we looked
    }
  });
  const ours = new Set([process.pid]);
  for (let grew = true; grew; ) {
    grew = false;
    for (const s of stats) if (!ours.has(s.pid) && ours.has(s.ppid)) (ours.add(s.pid), (grew = true));
  }
  return stats.filter((s) => ours.has(s.pid)).reduce((n, s) => n + s.ticks, 0);
}

/** CPU time (user + system) a process has used so far, in milliseconds (Linux /proc; clock ticks of 10 ms). */
export function processCpuMs(pid: number): number {
  const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) * 10;
}

/**
 * CPU time so far of a process's main thread (its task id is the process id: the thread that serves every
 * request, and so bounds throughput), in ms; NaN off Linux. The rest is processCpuMs minus this.
 */
export function mainThreadCpuMs(pid: number): number {
  const path = `/proc/${pid}/task/${pid}/stat`;
  if (!existsSync(path)) return NaN;
  const text = readFileSync(path, 'utf8');
  const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) * 10;
}

/** Bytes a process has had written to storage so far (WAL, database file and checkpoints, after the page cache). */
export function processWrittenBytes(pid: number): number {
  const line = readFileSync(`/proc/${pid}/io`, 'utf8').split('\n').find((l) => l.startsWith('write_bytes:'));
  return Number(line?.split(/\s+/)[1] ?? 0);
}

function machineTicks(): { busy: number; total: number } {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].split(/\s+/).slice(1, 9).map(Number);
  const total = f.reduce((a, b) => a + b, 0);
  return { busy: total - f[3] - f[4], total };
}

/**
 * Measures how busy the machine was during a section, split into this benchmark (bench, servers,
 * PostgreSQL) and everyone else, as shares of all cores.
 */
export function cpuMeter(): () => { ours: number; others: number } {
  const m0 = machineTicks();
  const o0 = ourTreeTicks();
  return () => {
    const m1 = machineTicks();
    const total = m1.total - m0.total || 1;
    const ours = Math.min(1, (ourTreeTicks() - o0) / total);
    return { ours, others: Math.max(0, (m1.busy - m0.busy) / total - ours) };
  };
}
