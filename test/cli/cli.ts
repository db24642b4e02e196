// Helpers for the CLI tests: run the real `carebridge` command as a child process, and count what the
// store holds by asking it the way a FHIR client would (a _summary=count search per type).
import { spawn } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { fileURLToPath } from 'node:url';
import { handleFhirRequest, openRecordStore, UNRESTRICTED } from '../../src/record/index.ts';
import { setUpAccess } from '../../src/access/index.ts';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const SYNTHEA_DIR = join(ROOT, 'test/fixtures/synthea');
const BIN = join(ROOT, 'bin/carebridge.mjs');

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `node bin/carebridge.mjs ...args`; CAREBRIDGE_DB is cleared unless given in env; `input` is piped to its stdin. */
export function runCli(args: string[], env: Record<string, string> = {}, cwd = ROOT, input?: string): Promise<CliResult> {
  const childEnv: NodeJS.ProcessEnv = { ...process.env };
  delete childEnv.CAREBRIDGE_DB;
  delete childEnv.NODE_TEST_CONTEXT; // the child is a program, not a test file
  Object.assign(childEnv, env);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd, env: childEnv, stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
    if (input !== undefined) child.stdin!.end(input);
    let stdout = '';
    let stderr = '';
    child.stdout!.setEncoding('utf8').on('data', (d) => (stdout += d));
    child.stderr!.setEncoding('utf8').on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** Resources per type in the Synthea fixtures, read from the files themselves. */
export function syntheaCounts(): { files: string[]; byType: Map<string, number>; total: number } {
  const files = readdirSync(SYNTHEA_DIR).filter((f) => f.endsWith('.json.gz')).sort();
  const byType = new Map<string, number>();
  let total = 0;
  for (const f of files) {
    const bundle = JSON.parse(gunzipSync(readFileSync(join(SYNTHEA_DIR, f))).toString('utf8'));
    for (const e of bundle.entry) {
      byType.set(e.resource.resourceType, (byType.get(e.resource.resourceType) ?? 0) + 1);
      total++;
    }
  }
  return { files, byType, total };
}

/** How many current resources of each type the store holds, by a `_summary=count` search per type. */
export async function storeCounts(database: string, types: Iterable<string>): Promise<Map<string, number>> {
  const driver = await openRecordStore(database);
  try {
    const ctx = { base: 'http://localhost/fhir', driver, access: UNRESTRICTED };
    const out = new Map<string, number>();
    for (const type of types) {
      const res = await handleFhirRequest(ctx, { method: 'GET', path: type, query: [['_summary', 'count']] });
      const body = typeof res.body === 'string' ? JSON.parse(res.body) : res.body;
      out.set(type, (body as { total: number }).total);
    }
    return out;
  } finally {
    await driver.close();
  }
}

/** Reads one resource through the store: its HTTP-like status (200, 404, …) and, when found, the resource. */
export async function readResource(database: string, type: string, id: string): Promise<{ status: number; resource?: any }> {
  const driver = await openRecordStore(database);
  try {
    const res = await handleFhirRequest({ base: 'http://localhost/fhir', driver, access: UNRESTRICTED }, { method: 'GET', path: `${type}/${id}`, query: [] });
    return { status: res.status, resource: typeof res.body === 'string' ? JSON.parse(res.body) : res.body };
  } catch (err) {
    return { status: (err as { status?: number }).status ?? 500 };
  } finally {
    await driver.close();
  }
}

/** The resources a search through the store finds (at most 100), e.g. searchStore(db, 'Organization', [['identifier', 'RX9']]). */
export async function searchStore(database: string, type: string, query: [string, string][]): Promise<any[]> {
  const driver = await openRecordStore(database);
  try {
    const res = await handleFhirRequest({ base: 'http://localhost/fhir', driver, access: UNRESTRICTED }, { method: 'GET', path: type, query: [...query, ['_count', '100']] });
    const bundle = typeof res.body === 'string' ? JSON.parse(res.body) : (res.body as any);
    return (bundle.entry ?? []).map((e: any) => e.resource);
  } finally {
    await driver.close();
  }
}

/** The non-empty lines of a stream's text. */
export function lines(text: string): string[] {
  return text.split('\n').filter((l) => l.trim());
}

/** The summary's "resources: N stored" and "rate: N resources/s". */
export function parseSummary(stdout: string): { files: number; stored: number; failures: number; rate: number } {
  const num = (re: RegExp) => Number(re.exec(stdout)?.[1] ?? NaN);
  return {
    files: num(/files:\s+(\d+)/),
    stored: num(/resources:\s+(\d+) stored/),
    failures: num(/failures:\s+(\d+)/),
    rate: num(/rate:\s+(\d+) resources\/s/),
  };
}

/** The AuditEvents a search of the store's audit trail finds (at most 100), oldest first, as a FHIR client with AuditEvent read would see them. */
export async function searchAudit(database: string, query: [string, string][]): Promise<any[]> {
  const driver = await openRecordStore(database);
  try {
    const access = await setUpAccess(driver, { tokenRequestsPerMinute: 60, audit: false });
    const res = await handleFhirRequest({ base: 'http://localhost/fhir', driver, access: UNRESTRICTED, services: access.services }, {
      method: 'GET', path: 'AuditEvent', query: [...query, ['_sort', 'date'], ['_count', '100']],
    });
    const bundle = typeof res.body === 'string' ? JSON.parse(res.body) : (res.body as any);
    return (bundle.entry ?? []).map((e: any) => e.resource);
  } finally {
    await driver.close();
  }
}
