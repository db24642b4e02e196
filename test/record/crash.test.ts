// Crash safety of transactions, on SQLite and PostgreSQL. The real server runs as a child process
// (`node bin/carebridge.mjs serve`); many transaction Bundles are posted to it concurrently (each a Patient and
// 20 Observations sharing one marker identifier) and the process is SIGKILLed at a random moment mid-stream.
// It is then restarted on the same database, and we prove, over HTTP, that:
//   - every Bundle that was answered 200 is completely present: all 21 resources are found by its marker, with
//     the ids the response gave, and the Observations point at the Bundle's Patient;
//   - no Bundle is partially present: for every marker ever sent, either 0 or all 21 resources exist.
// The kill is repeated several times on one database, and earlier rounds are re-checked after every restart.
import { after, describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { ENGINES, TEST_ADMIN, clientToken, testDatabase } from '../support/server.ts';
import { stopOwnPostgres } from '../support/postgres.ts';

after(() => stopOwnPostgres());

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const MARKER_SYSTEM = 'urn:carebridge:test:crash-marker';
const OBSERVATIONS_PER_BUNDLE = 20;
const RESOURCES_PER_BUNDLE = OBSERVATIONS_PER_BUNDLE + 1;
const ROUNDS = 3;
const CONCURRENCY = 8;

// ---------------------------------------------------------------------------------------------------------
// The server as a child process
// ---------------------------------------------------------------------------------------------------------

interface RunningServer { child: ChildProcess; base: string; auth: Record<string, string>; exited: Promise<number | null>; output: () => string }

/** The admin token for each running server's base URL. */
const authFor = new Map<string, Record<string, string>>();

async function startServer(database: string): Promise<RunningServer> {
  const child = spawn(process.execPath, ['bin/carebridge.mjs', 'serve', '--no-demo', '--port', '0', '--db', database], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, CAREBRIDGE_ADMIN_CLIENT_ID: TEST_ADMIN.id, CAREBRIDGE_ADMIN_CLIENT_SECRET: TEST_ADMIN.secret },
  });
  let output = '';
  child.stderr!.on('data', (d) => (output += d));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const lines = createInterface({ input: child.stdout! });
  const base = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the server did not say it was listening within 30 s:\n${output}`)), 30_000);
    lines.on('line', (line) => {
      output += line + '\n';
      const m = /listening on (http:\/\/\S+)/.exec(line);
      if (m) {
        clearTimeout(timer);
        resolve(`${m[1]}/fhir`);
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`the server exited (${code}) before listening:\n${output}`));
    });
  });
  const auth = { authorization: `Bearer ${await clientToken(base.replace(/\/fhir$/, ''), TEST_ADMIN.id, TEST_ADMIN.secret)}` };
  authFor.set(base, auth);
  return { child, base, auth, exited, output: () => output };
}

async function kill(server: RunningServer): Promise<void> {
  server.child.kill('SIGKILL');
  await server.exited;
}

async function stop(server: RunningServer): Promise<void> {
  server.child.kill('SIGTERM');
  const done = await Promise.race([server.exited.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 10_000).unref())]);
  if (!done) await kill(server);
}

// ---------------------------------------------------------------------------------------------------------
// Bundles and what happened to them
// ---------------------------------------------------------------------------------------------------------

interface Sent {
  marker: string;
  /** 'ok': answered 200; 'refused': answered, but not 200; 'unknown': no answer (the server died). */
  outcome: 'ok' | 'refused' | 'unknown';
  status?: number;
  /** From the transaction-response: "Patient/id" and "Observation/id" of every entry, in order. */
  created?: string[];
}

function bundleFor(marker: string): unknown {
  const identifier = [{ system: MARKER_SYSTEM, value: marker }];
  const patientUrl = `urn:uuid:${crypto.randomUUID()}`;
  return {
    resourceType: 'Bundle',
    type: 'transaction',
    entry: [
      { fullUrl: patientUrl, request: { method: 'POST', url: 'Patient' }, resource: { resourceType: 'Patient', identifier, name: [{ family: 'Crash', given: [marker] }], birthDate: '1950-05-05' } },
      ...Array.from({ length: OBSERVATIONS_PER_BUNDLE }, (_, i) => ({
        request: { method: 'POST', url: 'Observation' },
        resource: {
          resourceType: 'Observation',
          identifier,
          status: 'final',
          code: { coding: [{ system: 'http://loinc.org', code: '8867-4', display: 'Heart rate' }] },
          subject: { reference: patientUrl },
          effectiveDateTime: `2024-01-01T${String(i % 24).padStart(2, '0')}:00:00Z`,
          valueQuantity: { value: 60 + i, unit: '/min', system: 'http://unitsofmeasure.org', code: '/min' },
        },
      })),
    ],
  };
}

async function postBundle(base: string, marker: string): Promise<Sent> {
  let res: Response;
  try {
    res = await fetch(`${base}/`, { method: 'POST', headers: { ...authFor.get(base), 'content-type': 'application/fhir+json', accept: 'application/fhir+json' }, body: JSON.stringify(bundleFor(marker)) });
  } catch {
    return { marker, outcome: 'unknown' };
  }
  let text: string;
  try {
    text = await res.text();
  } catch {
    return { marker, outcome: 'unknown' }; // the head arrived, the body did not: the commit may or may not have happened
  }
  if (res.status !== 200) return { marker, outcome: 'refused', status: res.status };
  const body = JSON.parse(text);
  const created = (body.entry as { response: { location: string } }[]).map((e) => e.response.location.split('/').slice(0, 2).join('/'));
  return { marker, outcome: 'ok', status: 200, created };
}

/** Posts bundles from CONCURRENCY workers until the server is killed at a random moment after `minAnswered` successes. */
async function streamAndKill(server: RunningServer, round: number, minAnswered: number): Promise<Sent[]> {
  const sent: Sent[] = [];
  let killed = false;
  let answered = 0;
  let n = 0;
  let armed: Promise<void> | undefined;
  const arm = () => {
    armed ??= (async () => {
      await new Promise((r) => setTimeout(r, Math.floor(Math.random() * 400)));
      killed = true;
      await kill(server);
    })();
  };
  const worker = async () => {
    while (!killed) {
      const marker = `r${round}-${n++}-${Math.random().toString(36).slice(2, 8)}`;
      const result = await postBundle(server.base, marker);
      sent.push(result);
      if (result.outcome === 'ok' && ++answered >= minAnswered) arm();
      if (result.outcome === 'unknown') break; // the server is gone
    }
  };
  const safety = setTimeout(arm, 20_000); // never stream forever, even if nothing succeeds
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  clearTimeout(safety);
  arm();
  await armed;
  return sent;
}

// ---------------------------------------------------------------------------------------------------------
// Verification over HTTP, after the restart
// ---------------------------------------------------------------------------------------------------------

interface Found { patients: Map<string, string[]>; observations: Map<string, { id: string; subject: string }[]> }

async function findByMarkers(base: string, markers: string[]): Promise<Found> {
  const found: Found = { patients: new Map(), observations: new Map() };
  const chunk = 40; // ≤ 40 × 21 = 840 resources per page, under _count's maximum of 1000
  for (let i = 0; i < markers.length; i += chunk) {
    const values = markers.slice(i, i + chunk).map((m) => `${MARKER_SYSTEM}|${m}`).join(',');
    for (const type of ['Patient', 'Observation']) {
      const query = new URLSearchParams({ identifier: values, _count: '1000', _elements: 'identifier,subject' });
      const res = await fetch(`${base}/${type}?${query}`, { headers: { ...authFor.get(base), accept: 'application/fhir+json' } });
      assert.equal(res.status, 200, `${type} search after restart: ${res.status}`);
      const bundle = await res.json();
      assert.ok(!bundle.link?.some((l: { relation: string }) => l.relation === 'next'), 'more results than one page');
      for (const e of bundle.entry ?? []) {
        const r = e.resource;
        const marker = r.identifier.find((x: { system: string }) => x.system === MARKER_SYSTEM).value as string;
        if (type === 'Patient') found.patients.set(marker, [...(found.patients.get(marker) ?? []), r.id]);
        else found.observations.set(marker, [...(found.observations.get(marker) ?? []), { id: r.id, subject: r.subject?.reference }]);
      }
    }
  }
  return found;
}

function verify(all: Sent[], found: Found): { complete: number; absent: number } {
  let complete = 0;
  let absent = 0;
  const problems: string[] = [];
  for (const s of all) {
    const patients = found.patients.get(s.marker) ?? [];
    const observations = found.observations.get(s.marker) ?? [];
    const total = patients.length + observations.length;
    if (total === 0) absent++;
    else if (patients.length === 1 && observations.length === OBSERVATIONS_PER_BUNDLE) complete++;
    else problems.push(`${s.marker} (${s.outcome}) is partially present: ${patients.length} Patient(s), ${observations.length} Observation(s)`);
    if (s.outcome === 'ok') {
      if (total === 0) problems.push(`${s.marker} was answered 200 but nothing of it survived the crash`);
      const expected = [...(s.created ?? [])].sort();
      const actual = [...patients.map((id) => `Patient/${id}`), ...observations.map((o) => `Observation/${o.id}`)].sort();
      if (total > 0 && expected.join() !== actual.join()) problems.push(`${s.marker}: the ids found differ from the ids the 200 response gave`);
      for (const o of observations) if (o.subject !== `Patient/${patients[0]}`) problems.push(`${s.marker}: Observation/${o.id} points at ${o.subject}, not Patient/${patients[0]}`);
    }
  }
  assert.deepEqual(problems.slice(0, 20), [], `${problems.length} problem(s) after the crash`);
  return { complete, absent };
}

// ---------------------------------------------------------------------------------------------------------
// The test
// ---------------------------------------------------------------------------------------------------------

for (const engine of ENGINES) {
  describe(`crash safety of transactions (${engine})`, () => {
    it(`SIGKILL mid-stream, ${ROUNDS} times: every answered Bundle survives whole, no Bundle survives in part`, async (t: TestContext) => {
      const { database, cleanup } = await testDatabase(engine);
      const all: Sent[] = [];
      let server = await startServer(database);
      try {
        for (let round = 1; round <= ROUNDS; round++) {
          const sent = await streamAndKill(server, round, 3 + Math.floor(Math.random() * 10));
          all.push(...sent);
          server = await startServer(database); // same database, after the crash
          const found = await findByMarkers(server.base, all.map((s) => s.marker));
          const { complete, absent } = verify(all, found);
          const count = (o: Sent['outcome']) => sent.filter((s) => s.outcome === o).length;
          t.diagnostic(`${engine} round ${round}: ${sent.length} sent, ${count('ok')} answered 200, ${count('unknown')} cut off by the kill, ${count('refused')} refused; after restart (all rounds) ${complete} complete, ${absent} absent`);
          const refused = sent.filter((s) => s.outcome === 'refused');
          assert.deepEqual(refused.map((s) => s.status), [], 'bundles were refused before the kill (concurrency problem?)');
          assert.ok(count('ok') >= 3, 'too few bundles were answered before the kill for the round to mean anything');
        }
        // The restarted server still takes writes and finds them.
        const last = await postBundle(server.base, `after-${Date.now()}`);
        assert.equal(last.outcome, 'ok');
        verify([last], await findByMarkers(server.base, [last.marker]));
      } finally {
        await stop(server);
        cleanup();
      }
    });
  });
}
