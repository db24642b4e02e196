// carebridge import: loads FHIR JSON and NDJSON files (plain or gzipped) straight into the store,
// without a server. Every file is tried; failures are collected and reported at the end.
//
// What each file becomes:
// - Bundle of type transaction: one transaction (all of it is stored, or none of it).
// - Bundle of type batch: one batch (each entry stands alone).
// - Bundle of type collection, searchset or document: one transaction of its entries' resources, each a
//   PUT Type/id when the resource has an id, else a POST (fullUrls are kept, so urn:uuid references resolve).
// - any other resource: a PUT Type/id when it has an id, else a POST.
// - .ndjson: one resource a line, in transactions of --transaction-size lines. When one is refused it is
//   retried as a batch, so the good lines are stored and each bad line is reported by its line number.
import { open, readFile, readdir, stat } from 'node:fs/promises';
import { createReadStream } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { createGunzip, gunzip } from 'node:zlib';
import { promisify } from 'node:util';
import { StringDecoder } from 'node:string_decoder';
import type { Command } from 'commander';
import { FhirError, handleFhirRequest, type AccessEvent, type FhirResponse, type SqlDriver } from '../record/index.ts';
import { ProgressLine } from './progress.ts';
import { auditAccessesNow, migrateAccess } from '../access/index.ts';
import { commandLineActor } from './accessStore.ts';
import { DB_OPTION_HELP, databaseFrom, databaseSetting, describeDatabase, errorMessage, oneLine, openStore, plainErrors, storeContext, type StoreContext } from './store.ts';

const gunzipAsync = promisify(gunzip);

/** Files a folder walk picks up; files named on the command line are read whatever their name. */
const IMPORTABLE = /\.(nd)?json(\.gz)?$/i;
const NDJSON = /\.ndjson(\.gz)?$/i;
/** The store refuses larger Bundles (src/record/transaction.ts); bigger collections are split. */
const MAX_BUNDLE_ENTRIES = 10_000;
const DEFAULT_TRANSACTION_SIZE = 500;
const CONVERTIBLE_BUNDLE_TYPES = new Set(['collection', 'searchset', 'document']);

export interface ImportFailure {
  file: string;
  /** "entry 3", "line 17"; absent when the whole file failed. */
  where?: string;
  /** HTTP-like status: the status the record answered, or 400 for input that is not JSON/FHIR. */
  status: number | string;
  diagnostics: string;
}

export interface ImportResult {
  files: number;
  filesFailed: number;
  resources: number;
  failures: ImportFailure[];
  seconds: number;
  /** Per file, in order: what it stored, and whose records (for the audit trail). */
  perFile: { file: string; stored: number; failed: number; patientIds: string[] }[];
}

/** The store, and the people whose records the file being imported wrote to (only writes that were kept). */
interface ImportContext extends StoreContext { patients: Set<string> }

/** A call into the record whose patients count once it has succeeded: a refused transaction wrote nothing. */
async function storeCall(ctx: ImportContext, request: Parameters<typeof handleFhirRequest>[1]): Promise<FhirResponse> {
  const events: AccessEvent[] = [];
  const response = await handleFhirRequest({ ...ctx, onAccess: (e) => events.push(e) }, request);
  for (const e of events) for (const p of e.patientIds) ctx.patients.add(p);
  return response;
}

export interface ImportOptions {
  transactionSize?: number;
  /** Files stored at once (default 1). */
  concurrency?: number;
  progress?: ProgressLine;
}

interface TxEntry {
  fullUrl?: string;
  resource?: unknown;
  request: { method: string; url: string; ifMatch?: string; ifNoneExist?: string };
}

/** One request to the store, with where each of its entries came from (for the report). */
interface Unit {
  type: 'transaction' | 'batch';
  entries: TxEntry[];
  origins: string[];
}

export function importCommand(program: Command): void {
  const command = program
    .command('import')
    .summary('Load FHIR JSON and NDJSON files (plain or .gz) straight into the record.')
    .description('Load FHIR JSON (Bundles or single resources) and NDJSON files, plain or .gz, straight into the record (no server needed). Folders are walked recursively.')
    .argument('<paths...>', 'files or folders to import (folders: every *.json, *.ndjson, *.json.gz and *.ndjson.gz, in sorted order)')
    .option('--db <database>', DB_OPTION_HELP)
    .option('--transaction-size <n>', `NDJSON lines stored per transaction (default ${DEFAULT_TRANSACTION_SIZE})`)
    .option('--concurrency <n>', 'files stored at once (default 1); 2 to 4 speed up PostgreSQL, for files that share no resources')
    .option('--no-progress', 'do not show the progress line on stderr')
    .addHelpText(
      'after',
      '\nExits 0 when everything was stored; otherwise prints a report of each failed file, Bundle entry or NDJSON line\n' +
        'and exits 1. A transaction Bundle that fails stores nothing; the other files are still imported.',
    )
    .action(async (paths: string[], flags: { db?: string; transactionSize?: string; concurrency?: string; progress: boolean }) => {
      const database = databaseFrom(flags.db);
      const transactionSize = positiveInteger(flags.transactionSize ?? DEFAULT_TRANSACTION_SIZE, '--transaction-size', MAX_BUNDLE_ENTRIES);
      const concurrency = positiveInteger(flags.concurrency ?? 1, '--concurrency', 16);
      const files = await collectFiles(paths);
      const driver = await openStore(database, databaseSetting(flags.db));
      let result: ImportResult;
      try {
        const journal = await migrateAccess(driver, database);
        result = await importFiles(driver, files, { transactionSize, concurrency, progress: new ProgressLine({ quiet: !flags.progress }) });
        await auditImport(driver, journal, result);
      } finally {
        await driver.close();
      }
      if (result.failures.length) process.stdout.write(formatReport(result.failures));
      process.stdout.write(formatSummary(result, describeDatabase(database)));
      if (result.failures.length) {
        const n = result.failures.length;
        console.error(`carebridge: import finished with ${n} failure${n === 1 ? '' : 's'} in ${result.filesFailed} of ${result.files} file${result.files === 1 ? '' : 's'} (see the report on stdout).`);
        process.exitCode = 1;
      }
    });
  plainErrors(command);
}

/**
 * Each file imported, as one entry in the audit trail by the command line (naming the file and the OS user)
 * with the people whose records it wrote to: an import is a write like any other, and shows in "who has
 * looked at my record". Written before the command reports, so an import never goes unrecorded.
 */
async function auditImport(driver: SqlDriver, journal: string | undefined, result: ImportResult): Promise<void> {
  const at = Date.now();
  const accesses = result.perFile.filter((f) => f.stored || f.failed).map((f) => ({
    at,
    actor: commandLineActor(`import ${basename(f.file)}`),
    events: f.stored ? [{ interaction: 'create' as const, patientIds: f.patientIds }] : [],
    outcome: { status: f.stored ? 200 : 400, method: 'POST', path: '', query: '' },
  }));
  try {
    await auditAccessesNow(driver, journal, accesses);
  } catch (err) {
    throw new Error(`the files were imported but could not all be written to the audit trail: ${errorMessage(err)}`);
  }
}

function positiveInteger(value: string | number, name: string, max: number): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > max) throw new Error(`${name} must be a whole number from 1 to ${max}, not '${value}'.`);
  return n;
}

/** The files named, with folders expanded (recursively, sorted, hidden entries skipped); throws when a path does not exist. */
export async function collectFiles(paths: string[]): Promise<string[]> {
  const out: string[] = [];
  const seen = new Set<string>();
  const add = (file: string) => {
    const key = resolve(file);
    if (!seen.has(key)) {
      seen.add(key);
      out.push(file);
    }
  };
  const walk = async (dir: string) => {
    const entries = (await readdir(dir, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const e of entries) {
      if (e.name.startsWith('.')) continue;
      const p = join(dir, e.name);
      if (e.isDirectory()) await walk(p);
      else if (IMPORTABLE.test(e.name) && (e.isFile() || (e.isSymbolicLink() && (await stat(p).catch(() => undefined))?.isFile()))) add(p);
    }
  };
  for (const p of paths) {
    let info;
    try {
      info = await stat(p);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw new Error(code === 'ENOENT' ? `no such file or folder: ${p}` : `cannot read ${p}: ${errorMessage(err)}`);
    }
    if (info.isDirectory()) {
      const before = out.length;
      try {
        await walk(p);
      } catch (err) {
        throw new Error(`cannot read the folder ${p}: ${errorMessage(err)}`);
      }
      if (out.length === before) throw new Error(`no .json, .ndjson, .json.gz or .ndjson.gz files in ${p}`);
    } else add(p);
  }
  return out;
}

export async function importFiles(driver: SqlDriver, files: string[], options: ImportOptions = {}): Promise<ImportResult> {
  const ctx = storeContext(driver);
  const progress = options.progress ?? new ProgressLine({ quiet: true });
  const transactionSize = options.transactionSize ?? DEFAULT_TRANSACTION_SIZE;
  const concurrency = Math.max(1, Math.min(options.concurrency ?? 1, files.length));
  const started = Date.now();
  const perFile: ImportFailure[][] = files.map(() => []);
  const patients = files.map(() => new Set<string>());
  const stored = files.map(() => 0);
  let failureCount = 0;
  let resources = 0;
  let filesDone = 0;
  const counts = () => ({ filesDone, filesTotal: files.length, resources, failures: failureCount });

  const deferred: number[] = [];
  const importOne = async (i: number, firstPass: boolean) => {
    const file = files[i];
    const fileCtx: ImportContext = { ...ctx, patients: patients[i] };
    const sink: Sink = {
      stored(n) {
        resources += n;
        stored[i] += n;
        progress.update(counts());
      },
      failed(f) {
        perFile[i].push({ file, ...f });
        failureCount++;
      },
    };
    try {
      if (NDJSON.test(file)) await importNdjson(fileCtx, file, transactionSize, sink);
      else await importJson(fileCtx, await readMaybeGzipped(file), sink, firstPass);
    } catch (err) {
      if (err instanceof Deferred) {
        failureCount -= perFile[i].length;
        perFile[i] = [];
        deferred.push(i);
        return;
      }
      // Only reading the file throws here; the store's refusals are reported through the sink.
      sink.failed({ status: 'unreadable', diagnostics: errorMessage(err) });
    }
    filesDone++;
    progress.update(counts());
  };

  // Files are taken in order. With --concurrency above 1 several are stored at once: PostgreSQL gains
  // (SQLite has one writer), but two files writing the same resource could then collide, so it is opt-in.
  // Failures are reported in file order either way.
  let next = 0;
  try {
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < files.length) await importOne(next++, true);
      }),
    );
    // Bundles whose conditional references matched nothing are tried again once every other file is in: Synthea
    // writes the Organizations and Practitioners that patient bundles refer to in files that sort after them.
    for (const i of deferred.sort((a, b) => a - b)) await importOne(i, false);
  } finally {
    progress.done(counts());
  }
  const failures = perFile.flatMap((list) => list.map((f, order) => ({ f, order })).sort(byPosition).map(({ f }) => f));
  return {
    files: files.length, filesFailed: perFile.filter((f) => f.length).length, resources, failures, seconds: (Date.now() - started) / 1000,
    perFile: files.map((file, i) => ({ file, stored: stored[i], failed: perFile[i].length, patientIds: [...patients[i]] })),
  };
}

/** Failures of one file by entry or line number (a refused NDJSON transaction reports its lines after the later bad JSON). */
function byPosition(a: { f: ImportFailure; order: number }, b: { f: ImportFailure; order: number }): number {
  const pos = (f: ImportFailure) => (f.where ? Number(/\d+/.exec(f.where)?.[0] ?? -1) : -1);
  return pos(a.f) - pos(b.f) || a.order - b.order;
}

/** Thrown to put a file off to the second pass; nothing of it has been stored. */
class Deferred extends Error {}

interface Sink {
  stored(resources: number): void;
  failed(failure: Omit<ImportFailure, 'file'>): void;
}

async function readMaybeGzipped(file: string): Promise<Buffer> {
  const data = await readFile(file);
  return isGzip(data) ? gunzipAsync(data) : data;
}

function isGzip(head: Uint8Array): boolean {
  return head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b;
}

function parseJsonText(data: Buffer): { ok: true; value: unknown } | { ok: false; message: string } {
  const text = stripBom(data.toString('utf8'));
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch (err) {
    return { ok: false, message: jsonErrorMessage(err, text) };
  }
}

function stripBom(text: string): string {
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
}

/** JSON.parse's message, with the line and column added when it gives only a position. */
function jsonErrorMessage(err: unknown, text: string): string {
  const message = errorMessage(err);
  const m = /at position (\d+)(?! \(line)/.exec(message);
  if (!m) return `invalid JSON: ${message}`;
  const before = text.slice(0, Number(m[1]));
  const line = before.split('\n').length;
  const column = before.length - before.lastIndexOf('\n');
  return `invalid JSON: ${message} (line ${line} column ${column})`;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

async function importJson(ctx: ImportContext, data: Buffer, sink: Sink, mayDefer: boolean): Promise<void> {
  const parsed = parseJsonText(data);
  if (!parsed.ok) return sink.failed({ status: 400, diagnostics: parsed.message });
  const json = parsed.value;
  if (!isObject(json) || typeof json.resourceType !== 'string') {
    return sink.failed({ status: 400, diagnostics: 'not a FHIR resource: expected a JSON object with a resourceType' });
  }
  if (json.resourceType !== 'Bundle') return storeSingle(ctx, json, sink);
  const type = json.type;
  if (type === 'transaction' || type === 'batch') {
    const entries = Array.isArray(json.entry) ? json.entry : [];
    const origins = entries.map((_: unknown, i: number) => `entry ${i}`);
    return runUnit(ctx, { type, entries: entries as TxEntry[], origins }, sink, { bundle: json, mayDefer: mayDefer && type === 'transaction' });
  }
  if (typeof type === 'string' && CONVERTIBLE_BUNDLE_TYPES.has(type)) {
    const entries: TxEntry[] = [];
    const origins: string[] = [];
    const raw = Array.isArray(json.entry) ? json.entry : [];
    let malformed = false;
    raw.forEach((e: unknown, i: number) => {
      if (isObject(e) && isObject(e.search) && e.search.mode === 'outcome') return; // a searchset's OperationOutcome is not data
      if (!isObject(e) || !isObject(e.resource) || typeof e.resource.resourceType !== 'string') {
        malformed = true;
        return sink.failed({ where: `entry ${i}`, status: 400, diagnostics: `Bundle.entry[${i}] has no resource with a resourceType, so nothing from this Bundle was stored` });
      }
      entries.push({ ...(typeof e.fullUrl === 'string' ? { fullUrl: e.fullUrl } : {}), resource: e.resource, request: requestFor(e.resource) });
      origins.push(`entry ${i}`);
    });
    if (malformed || !entries.length) return;
    const size = entries.length <= MAX_BUNDLE_ENTRIES ? entries.length : DEFAULT_TRANSACTION_SIZE;
    for (let start = 0; start < entries.length; start += size) {
      const unit: Unit = { type: 'transaction', entries: entries.slice(start, start + size), origins: origins.slice(start, start + size) };
      await runUnit(ctx, unit, sink, { mayDefer: mayDefer && size === entries.length });
    }
    return;
  }
  sink.failed({ status: 400, diagnostics: `a Bundle of type '${String(type)}' cannot be imported; use transaction, batch, collection, searchset or document` });
}

/** PUT Type/id when the resource has an id (so a re-import updates rather than duplicates), else POST Type. */
function requestFor(resource: Record<string, unknown>): TxEntry['request'] {
  const type = String(resource.resourceType);
  return typeof resource.id === 'string' && resource.id
    ? { method: 'PUT', url: `${encodeURIComponent(type)}/${encodeURIComponent(resource.id)}` }
    : { method: 'POST', url: encodeURIComponent(type) };
}

async function storeSingle(ctx: ImportContext, resource: Record<string, unknown>, sink: Sink): Promise<void> {
  const { method, url } = requestFor(resource);
  try {
    await storeCall(ctx, { method, path: url, query: [], body: resource, prefer: 'return=minimal' });
    sink.stored(1);
  } catch (err) {
    sink.failed(failureFrom(err));
  }
}

function failureFrom(err: unknown): Omit<ImportFailure, 'file'> {
  if (err instanceof FhirError) return { status: err.status, diagnostics: diagnosticsOf(err.issues) };
  return { status: 500, diagnostics: errorMessage(err) };
}

function diagnosticsOf(issues: { diagnostics?: string; code?: string }[] | undefined): string {
  return oneLine((issues ?? []).map((i) => i.diagnostics ?? i.code ?? '').filter(Boolean).join('; ') || 'no diagnostics given');
}

/** Which entry a refused transaction names: "Transaction entry 3 (…)", "Bundle.entry[3]…", "Entry 3 refers to…". */
function entryIndexOf(err: FhirError): number | undefined {
  for (const issue of err.issues) {
    const texts = [issue.diagnostics ?? '', ...(issue.expression ?? [])];
    for (const text of texts) {
      const m = /(?:^Transaction entry |Bundle\.entry\[|^Entry )(\d+)/.exec(text);
      if (m) return Number(m[1]);
    }
  }
  return undefined;
}

interface BundleResponse {
  entry?: { response?: { status?: string; outcome?: { issue?: { diagnostics?: string; code?: string }[] } } }[];
}

/**
 * Sends one transaction or batch. `bundle` is the file's own Bundle when it came as one (sent as is);
 * otherwise one is built from the unit's entries. `retryAsBatch` gives a batch to send when the transaction is refused
 * (built afresh: the store rewrites references inside the Bundle it is given, even when it then rolls back);
 * `mayDefer` (only for a file that is a single transaction) puts it off when a conditional reference matches nothing.
 */
async function runUnit(
  ctx: ImportContext,
  unit: Unit,
  sink: Sink,
  options: { bundle?: Record<string, unknown>; retryAsBatch?: () => Unit; mayDefer?: boolean } = {},
): Promise<void> {
  const body = options.bundle ?? { resourceType: 'Bundle', type: unit.type, entry: unit.entries };
  let response;
  try {
    response = await storeCall(ctx, { method: 'POST', path: '', query: [], body, prefer: 'return=minimal' });
  } catch (err) {
    if (options.mayDefer && err instanceof FhirError && err.status === 412 && err.issues.some((i) => i.code === 'not-found')) throw new Deferred();
    if (unit.type === 'transaction' && options.retryAsBatch && err instanceof FhirError) {
      return runUnit(ctx, options.retryAsBatch(), sink);
    }
    const index = err instanceof FhirError ? entryIndexOf(err) : undefined;
    const where = index === undefined ? undefined : (unit.origins[index] ?? `entry ${index}`);
    return sink.failed({ ...(where ? { where } : {}), ...failureFrom(err) });
  }
  const answer = (typeof response.body === 'string' ? JSON.parse(response.body) : response.body) as BundleResponse;
  let stored = 0;
  (answer.entry ?? []).forEach((e, i) => {
    const status = e.response?.status ?? '';
    const code = Number.parseInt(status, 10);
    if (code >= 200 && code < 300) {
      const method = String((unit.entries[i] as TxEntry | undefined)?.request?.method ?? '').toUpperCase();
      if (method === 'POST' || method === 'PUT' || method === 'PATCH') stored++;
    } else {
      sink.failed({ where: unit.origins[i] ?? `entry ${i}`, status: Number.isFinite(code) ? code : status, diagnostics: diagnosticsOf(e.response?.outcome?.issue) });
    }
  });
  sink.stored(stored);
}

async function importNdjson(ctx: ImportContext, file: string, transactionSize: number, sink: Sink): Promise<void> {
  let pending: Unit = { type: 'transaction', entries: [], origins: [] };
  let texts: string[] = [];
  const flush = async () => {
    if (!pending.entries.length) return;
    const unit = pending;
    const lines = texts;
    pending = { type: 'transaction', entries: [], origins: [] };
    texts = [];
    const asBatch = (): Unit => ({
      type: 'batch',
      entries: lines.map((text) => {
        const resource = JSON.parse(text) as Record<string, unknown>;
        return { resource, request: requestFor(resource) };
      }),
      origins: unit.origins,
    });
    await runUnit(ctx, unit, sink, { retryAsBatch: asBatch });
  };
  const take = (line: string, lineNo: number) => {
    const text = (lineNo === 1 ? stripBom(line) : line).trim();
    if (!text) return;
    let resource: unknown;
    try {
      resource = JSON.parse(text);
    } catch (err) {
      const message = errorMessage(err);
      const at = /at position (\d+)$/.exec(message);
      return sink.failed({ where: `line ${lineNo}`, status: 400, diagnostics: `invalid JSON: ${message}${at ? ` (column ${Number(at[1]) + 1})` : ''}` });
    }
    if (!isObject(resource) || typeof resource.resourceType !== 'string') {
      return sink.failed({ where: `line ${lineNo}`, status: 400, diagnostics: 'not a FHIR resource: expected a JSON object with a resourceType' });
    }
    pending.entries.push({ resource, request: requestFor(resource) });
    pending.origins.push(`line ${lineNo}`);
    texts.push(text);
  };

  const lines = readLines(file)[Symbol.asyncIterator]();
  let lineNo = 0;
  for (;;) {
    let next: IteratorResult<string>;
    try {
      next = await lines.next();
    } catch (err) {
      // The file broke off (a truncated .gz, say): store the lines read so far, and say where it stopped.
      await flush();
      throw lineNo ? new Error(`after line ${lineNo}: ${errorMessage(err)}`) : err;
    }
    if (next.done) break;
    take(next.value, ++lineNo);
    if (pending.entries.length >= transactionSize) await flush();
  }
  await flush();
}

/** The lines of a text file, gunzipped when it starts with the gzip magic bytes; streamed, so files of any size work. */
async function* readLines(file: string): AsyncGenerator<string> {
  const head = Buffer.alloc(2);
  const handle = await open(file, 'r');
  try {
    await handle.read(head, 0, 2, 0);
  } finally {
    await handle.close();
  }
  const raw = createReadStream(file);
  const stream = isGzip(head) ? raw.pipe(createGunzip()) : raw;
  if (stream !== raw) raw.on('error', (err) => stream.destroy(err));
  const decoder = new StringDecoder('utf8');
  let rest = '';
  for await (const chunk of stream) {
    rest += decoder.write(chunk as Buffer);
    const lines = rest.split('\n');
    rest = lines.pop()!;
    yield* lines;
  }
  rest += decoder.end();
  if (rest) yield rest;
}

export function formatReport(failures: ImportFailure[]): string {
  const lines = failures.map((f) => `  ${f.file}${f.where ? ` ${f.where}` : ''}: ${f.status}: ${f.diagnostics}`);
  return `Failures (${failures.length}):\n${lines.join('\n')}\n`;
}

export function formatSummary(r: ImportResult, database: string): string {
  const rate = r.seconds > 0 ? Math.round(r.resources / r.seconds) : r.resources;
  return [
    `Imported into ${database}:`,
    `  files:       ${r.files}${r.filesFailed ? ` (${r.filesFailed} with failures)` : ''}`,
    `  resources:   ${r.resources} stored`,
    `  failures:    ${r.failures.length}`,
    `  elapsed:     ${r.seconds.toFixed(1)} s`,
    `  rate:        ${rate} resources/s`,
    '',
  ].join('\n');
}
