// `carebridge import`, run as a real child process against a temp SQLite file and a fresh PostgreSQL
// database: the Synthea fixtures land with the right count of every resource type; bad input is reported
// by file and entry/line, exits 1, and a refused transaction stores nothing; usage errors are one line.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { freshPostgresDatabase, stopOwnPostgres } from '../support/postgres.ts';
import { handleFhirRequest, openRecordStore, UNRESTRICTED } from '../../src/record/index.ts';
import { setUpAccess } from '../../src/access/index.ts';
import { SYNTHEA_DIR, lines, parseSummary, readResource, runCli, storeCounts, syntheaCounts } from './cli.ts';

const tmp = mkdtempSync(join(tmpdir(), 'carebridge-cli-import-'));
after(async () => {
  rmSync(tmp, { recursive: true, force: true });
  await stopOwnPostgres();
});

let n = 0;
function sqliteDatabase(): string {
  return `sqlite:${join(tmp, `db${++n}`, 'carebridge.db')}`;
}

function writeJson(path: string, value: unknown): string {
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, JSON.stringify(value, null, 2));
  return path;
}

const patient = (id: string, extra: Record<string, unknown> = {}) => ({ resourceType: 'Patient', id, gender: 'female', ...extra });
const observation = (id: string, subject: string, extra: Record<string, unknown> = {}) => ({
  resourceType: 'Observation',
  id,
  status: 'final',
  code: { text: 'Pulse' },
  subject: { reference: subject },
  valueQuantity: { value: 72, unit: 'beats/minute' },
  ...extra,
});

/** A transaction whose third entry (index 2) is invalid: Observation.status is not in its required value set. */
function brokenTransaction() {
  return {
    resourceType: 'Bundle',
    type: 'transaction',
    entry: [
      { fullUrl: 'urn:uuid:7d9a3f52-7c43-4a29-9d3b-0d3f9f1b2a01', resource: { resourceType: 'Patient', gender: 'male' }, request: { method: 'POST', url: 'Patient' } },
      { resource: patient('tx-p2'), request: { method: 'PUT', url: 'Patient/tx-p2' } },
      { resource: observation('tx-o1', 'urn:uuid:7d9a3f52-7c43-4a29-9d3b-0d3f9f1b2a01', { status: 'nonsense' }), request: { method: 'PUT', url: 'Observation/tx-o1' } },
      { resource: observation('tx-o2', 'Patient/tx-p2'), request: { method: 'PUT', url: 'Observation/tx-o2' } },
    ],
  };
}

const expected = syntheaCounts();

/** AuditEvents found by a FHIR search of the trail the command wrote (as the server would serve them). */
async function auditEvents(database: string, query: [string, string][]): Promise<any[]> {
  const driver = await openRecordStore(database);
  try {
    const access = await setUpAccess(driver, { tokenRequestsPerMinute: 60, audit: false });
    const res = await handleFhirRequest({ base: 'http://localhost/fhir', driver, access: UNRESTRICTED, services: access.services }, { method: 'GET', path: 'AuditEvent', query });
    const body = typeof res.body === 'string' ? JSON.parse(res.body) : res.body;
    assert.equal(res.status, 200, JSON.stringify(body));
    return (body.entry ?? []).map((e: any) => e.resource);
  } finally {
    await driver.close();
  }
}
const patientsOf = (e: any) => (e.entity ?? []).filter((x: any) => x.role?.code === '1').map((x: any) => x.what.reference);

// Two child processes at a time: the suites use separate databases, and this machine has two cores.
describe('carebridge import', { concurrency: 2 }, () => {
  for (const engine of ['sqlite', 'postgres'] as const) {
    describe(`import into ${engine}`, { concurrency: 1 }, () => {
      let database: string;
      before(async () => {
        database = engine === 'sqlite' ? sqliteDatabase() : await freshPostgresDatabase();
      });

      it(`stores every resource of the ${expected.files.length} Synthea bundles, with the right count per type`, async (t) => {
        const started = Date.now();
        // PostgreSQL gains from storing two files at once (the fixtures share no resources); SQLite has one writer.
        const r = await runCli(['import', SYNTHEA_DIR, '--db', database, ...(engine === 'postgres' ? ['--concurrency', '2'] : [])]);
        const seconds = (Date.now() - started) / 1000;
        assert.equal(r.code, 0, r.stderr);
        const summary = parseSummary(r.stdout);
        assert.deepEqual({ ...summary, rate: 0 }, { files: expected.files.length, stored: expected.total, failures: 0, rate: 0 }, r.stdout);
        assert.ok(summary.rate > 0, r.stdout);
        assert.doesNotMatch(r.stderr, /carebridge:/);
        const counts = await storeCounts(database, expected.byType.keys());
        assert.deepEqual(Object.fromEntries(counts), Object.fromEntries(expected.byType));
        t.diagnostic(`${engine}: ${expected.total} resources at ${summary.rate} resources/s (import ${seconds.toFixed(1)} s including start-up)`);
      });

      it('a transaction with one invalid resource stores nothing of it, names the entry, and the other files still go in', async () => {
        const dir = join(tmp, `tx-${engine}`);
        const good = writeJson(join(dir, 'a-good.json'), { resourceType: 'Bundle', type: 'transaction', entry: [{ resource: patient('tx-good'), request: { method: 'PUT', url: 'Patient/tx-good' } }] });
        const bad = writeJson(join(dir, 'b-broken.json'), brokenTransaction());
        const before = await storeCounts(database, ['Patient', 'Observation']);
        const r = await runCli(['import', good, bad, '--db', database]);
        assert.equal(r.code, 1, r.stdout + r.stderr);
        const report = lines(r.stdout).find((l) => l.includes('b-broken.json'));
        assert.ok(report, r.stdout);
        assert.match(report, /b-broken\.json entry 2: 400: .*Observation\.status/);
        assert.equal(lines(r.stderr).filter((l) => l.startsWith('carebridge:')).length, 1, r.stderr);
        assert.deepEqual(parseSummary(r.stdout), { ...parseSummary(r.stdout), files: 2, stored: 1, failures: 1 });

        // Nothing from the broken bundle: not the valid Patient before the bad entry, not the one after it.
        const afterCounts = await storeCounts(database, ['Patient', 'Observation']);
        assert.equal(afterCounts.get('Patient'), before.get('Patient')! + 1); // tx-good only
        assert.equal(afterCounts.get('Observation'), before.get('Observation'));
        assert.equal((await readResource(database, 'Patient', 'tx-p2')).status, 404);
        assert.equal((await readResource(database, 'Observation', 'tx-o2')).status, 404);
        assert.equal((await readResource(database, 'Patient', 'tx-good')).status, 200);

        // Each file is in the audit trail, by the command line, naming the file and the OS user: the one that
        // was stored with the person it wrote to, the refused one as a failure naming nobody.
        const events = await auditEvents(database, [['altid', 'carebridge-cli'], ['_sort', 'date'], ['_count', '100']]);
        const byFile = (name: string) => events.filter((e) => e.agent[0].who.display.startsWith(`carebridge import ${name} (OS user `));
        assert.deepEqual(byFile('a-good.json').map((e) => [e.outcome, patientsOf(e)]), [['0', ['Patient/tx-good']]]);
        assert.deepEqual(byFile('b-broken.json').map((e) => [e.outcome, patientsOf(e)]), [['4', []]]);
        const looked = await auditEvents(database, [['patient', 'tx-good']]);
        assert.ok(looked.some((e) => e.agent[0].altId === 'carebridge-cli'), '"who has looked at my record" shows the import');
      });
    });
  }

  describe('import: NDJSON, other Bundle types and single resources (SQLite)', { concurrency: 1 }, () => {
    it('an NDJSON file with a bad line: the good lines are stored, the report names the line, exit 1', async () => {
      const database = sqliteDatabase();
      const file = join(tmp, 'patients.ndjson');
      writeFileSync(
        file,
        [
          JSON.stringify(patient('nd-1')),
          JSON.stringify(patient('nd-2')),
          '{"resourceType":"Patient","id":"nd-3",', // line 3: not JSON
          '',
          JSON.stringify(patient('nd-5', { gender: 'banana' })), // line 5: not a valid Patient
          JSON.stringify(observation('nd-6', 'Patient/nd-1')),
        ].join('\n') + '\n',
      );
      // --transaction-size 2: the bad Patient's transaction is refused and retried entry by entry.
      const r = await runCli(['import', file, '--db', database, '--transaction-size', '2']);
      assert.equal(r.code, 1, r.stdout + r.stderr);
      const report = lines(r.stdout).filter((l) => l.includes('patients.ndjson'));
      assert.equal(report.length, 2, r.stdout);
      assert.match(report[0], /patients\.ndjson line 3: 400: invalid JSON/);
      assert.match(report[1], /patients\.ndjson line 5: 400: .*Patient\.gender/);
      assert.deepEqual(parseSummary(r.stdout), { ...parseSummary(r.stdout), files: 1, stored: 3, failures: 2 });
      const stderr = lines(r.stderr);
      assert.equal(stderr.at(-1), 'carebridge: import finished with 2 failures in 1 of 1 file (see the report on stdout).');
      assert.deepEqual(Object.fromEntries(await storeCounts(database, ['Patient', 'Observation'])), { Patient: 2, Observation: 1 });
    });

    it('walks folders recursively: gzipped NDJSON, collection, searchset and batch Bundles, single resources', async () => {
      const database = sqliteDatabase();
      const dir = join(tmp, 'mixed');
      mkdirSync(join(dir, 'nested/deeper'), { recursive: true });
      writeFileSync(join(dir, 'nested/deeper/obs.ndjson.gz'), gzipSync([observation('m-o1', 'Patient/m-p1'), observation('m-o2', 'Patient/m-p1')].map((o) => JSON.stringify(o)).join('\n')));
      writeFileSync(join(dir, 'nested/single.json.gz'), gzipSync(JSON.stringify(patient('m-p1'))));
      writeJson(join(dir, 'no-id.json'), { resourceType: 'Patient', gender: 'other' });
      writeJson(join(dir, 'collection.json'), {
        resourceType: 'Bundle',
        type: 'collection',
        entry: [
          { fullUrl: 'urn:uuid:0c1e7a55-5d0e-4b52-8d7e-2a9b8f7c6d01', resource: { resourceType: 'Patient', gender: 'male' } },
          { resource: observation('m-o3', 'urn:uuid:0c1e7a55-5d0e-4b52-8d7e-2a9b8f7c6d01') },
        ],
      });
      writeJson(join(dir, 'searchset.json'), {
        resourceType: 'Bundle',
        type: 'searchset',
        entry: [
          { fullUrl: 'http://elsewhere.example/fhir/Patient/m-p2', resource: patient('m-p2'), search: { mode: 'match' } },
          { resource: { resourceType: 'OperationOutcome', issue: [{ severity: 'information', code: 'informational' }] }, search: { mode: 'outcome' } },
        ],
      });
      writeJson(join(dir, 'batch.json'), {
        resourceType: 'Bundle',
        type: 'batch',
        entry: [
          { resource: patient('m-p3'), request: { method: 'PUT', url: 'Patient/m-p3' } },
          { resource: patient('m-p4', { birthDate: 'yesterday' }), request: { method: 'PUT', url: 'Patient/m-p4' } },
        ],
      });
      writeFileSync(join(dir, 'README.md'), 'not FHIR, and not picked up by the folder walk');

      const r = await runCli(['import', dir, '--db', database]);
      assert.equal(r.code, 1, r.stdout + r.stderr);
      assert.deepEqual(lines(r.stdout).filter((l) => /^\s+\S+\.json.*: \d+: /.test(l)).length, 1, r.stdout);
      assert.match(r.stdout, /batch\.json entry 1: 400: .*birthDate/);
      assert.deepEqual(parseSummary(r.stdout), { ...parseSummary(r.stdout), files: 6, stored: 8, failures: 1 });
      assert.deepEqual(Object.fromEntries(await storeCounts(database, ['Patient', 'Observation', 'OperationOutcome'])), { Patient: 5, Observation: 3, OperationOutcome: 0 });
      // The collection's urn:uuid reference was resolved to the Patient's new server id.
      const obs = await readResource(database, 'Observation', 'm-o3');
      assert.match(obs.resource.subject.reference, /^Patient\/[0-9a-f-]{36}$/);
      assert.equal((await readResource(database, 'Patient', obs.resource.subject.reference.slice('Patient/'.length))).status, 200);
      const again = await runCli(['import', join(dir, 'searchset.json'), join(dir, 'nested'), '--db', database]);
      assert.equal(again.code, 0, again.stdout + again.stderr);
      assert.deepEqual(Object.fromEntries(await storeCounts(database, ['Patient', 'Observation'])), { Patient: 5, Observation: 3 }, 'resources with ids are PUT: importing again adds no copies');
    });
  });

  describe('import: conditional references to files that sort later (Synthea hospitalInformation*.json)', () => {
    it('retries a bundle whose conditional reference matched nothing once the other files are in', async () => {
      const database = sqliteDatabase();
      const dir = join(tmp, 'synthea-layout');
      const orgRef = (value: string) => ({ reference: `Organization?identifier=https://github.com/synthetichealth/synthea|${value}` });
      const patientBundle = (org: string) => ({
        resourceType: 'Bundle',
        type: 'transaction',
        entry: [{ fullUrl: 'urn:uuid:5f0c1c2e-3b1d-4c55-9a57-6f1e2d3c4b01', resource: { resourceType: 'Patient', gender: 'female', managingOrganization: orgRef(org) }, request: { method: 'POST', url: 'Patient' } }],
      });
      writeJson(join(dir, 'Alice_Smith.json'), patientBundle('org-1'));
      writeJson(join(dir, 'Bob_Jones.json'), patientBundle('org-missing'));
      writeJson(join(dir, 'hospitalInformation1559319163074.json'), {
        resourceType: 'Bundle',
        type: 'transaction',
        entry: [
          {
            fullUrl: 'urn:uuid:9e8d7c6b-5a49-4382-9170-6f5e4d3c2b01',
            resource: { resourceType: 'Organization', name: 'Northshire General', identifier: [{ system: 'https://github.com/synthetichealth/synthea', value: 'org-1' }] },
            request: { method: 'POST', url: 'Organization', ifNoneExist: 'identifier=https://github.com/synthetichealth/synthea|org-1' },
          },
        ],
      });
      const r = await runCli(['import', dir, '--db', database]);
      assert.equal(r.code, 1, r.stdout + r.stderr);
      assert.deepEqual(parseSummary(r.stdout), { ...parseSummary(r.stdout), files: 3, stored: 2, failures: 1 });
      assert.match(r.stdout, /Bob_Jones\.json entry 0: 412: .*org-missing/);
      assert.doesNotMatch(r.stdout, /Alice_Smith/);
      assert.deepEqual(Object.fromEntries(await storeCounts(database, ['Patient', 'Organization'])), { Patient: 1, Organization: 1 });
    });
  });

  describe('import: usage errors are one plain line on stderr', () => {
    const oneLineError = (r: { code: number | null; stdout: string; stderr: string }, pattern: RegExp) => {
      assert.notEqual(r.code, 0);
      assert.equal(r.stdout, '');
      const errs = lines(r.stderr);
      assert.equal(errs.length, 1, r.stderr);
      assert.match(errs[0], /^carebridge: /);
      assert.match(errs[0], pattern);
    };

    it('a missing file', async () => {
      oneLineError(await runCli(['import', join(tmp, 'no-such-file.json'), '--db', sqliteDatabase()]), /no such file or folder: .*no-such-file\.json/);
    });

    it('a bad --db value, and a bad CAREBRIDGE_DB', async () => {
      oneLineError(await runCli(['import', SYNTHEA_DIR, '--db', 'mysql://localhost/x']), /--db must be sqlite:PATH or a postgres:\/\/ URL/);
      oneLineError(await runCli(['import', SYNTHEA_DIR], { CAREBRIDGE_DB: 'nonsense' }), /CAREBRIDGE_DB must be sqlite:PATH or a postgres:\/\/ URL/);
    });

    it('a database that cannot be reached, without showing its password', async () => {
      const r = await runCli(['import', SYNTHEA_DIR, '--db', 'postgres://someone:s3cret@127.0.0.1:1/none']);
      oneLineError(r, /cannot reach the PostgreSQL server at 127\.0\.0\.1:1 given by --db \(connection refused\)\./);
      assert.doesNotMatch(r.stderr, /s3cret/);
    });

    it('an unknown option and a missing argument', async () => {
      oneLineError(await runCli(['import', SYNTHEA_DIR, '--no-such-option']), /unknown option '--no-such-option'/);
      oneLineError(await runCli(['import']), /missing required argument 'paths'/);
    });
  });

  describe('--help', () => {
    for (const [command, options] of [
      ['import', ['--db <database>', '--transaction-size <n>', '--concurrency <n>', '--no-progress']],
      ['demo', ['--db <database>', '--seed <n>', '--care-homes <n>', '--residents-per-home <n>']],
      ['serve', ['--host <host>', '--port <port>', '--db <database>']],
    ] as const) {
      it(`carebridge ${command} --help exits 0 and lists its options`, async () => {
        const r = await runCli([command, '--help']);
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, new RegExp(`^Usage: carebridge ${command} `));
        for (const option of options) assert.ok(r.stdout.includes(option), `${command} --help lists ${option}:\n${r.stdout}`);
      });
    }
  });
});
