// What the access checks and the audit trail cost by their own code, without HTTP: the same read and search
// as bench/auditOverhead.ts, asked of the record in this process (handleFhirRequest) in three ways, over one
// database holding the demo dataset:
//   open     UNRESTRICTED (what --insecure-no-auth gives every request)
//   checked  the care-home caller's bearer token authenticated, and the record's checks under what it gives
//   audited  the same, and the request recorded in the audit trail (its writer runs on a thread of its own)
// Over HTTP on two cores, the same comparison moves by ±15 points from one run to the next (see "Session 16"
// and "Session 18" in docs/performance.md): the load generator shares the machine, and the machine's speed
// drifts within seconds. Here nothing else runs, and the three take turns in short rounds, so it isolates what
// the checks and the audit themselves add to the thread that serves requests: the part a change to them can
// move. HTTP's own cost per request (~45 µs of a ~60 µs read on this machine) is the same in all three and
// is left out, so the percentages here are of a smaller base than over HTTP.
//   node --import tsx bench/accessCost.ts [--requests 2000] [--rounds 40]

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { FastifyRequest } from 'fastify';
import { buildServer } from '../src/server.ts';
import { loadServerConfig } from '../src/config.ts';
import { handleFhirRequest, openRecordStore, UNRESTRICTED, type AccessControl, type AccessEvent, type SqlDriver } from '../src/record/index.ts';
import { addOrganisation, findOrganisation, setUpAccess, type Access } from '../src/access/index.ts';
import { buildDemoDataset } from '../src/demo/index.ts';
import { addPerson, personToken } from '../test/support/people.ts';
import type { TestServer } from '../test/support/server.ts';

const { values: args } = parseArgs({ options: { requests: { type: 'string', default: '2000' }, rounds: { type: 'string', default: '40' } } });
const REQUESTS = Number(args.requests);
const ROUNDS = Number(args.rounds);
const PATIENT = 'demo-pat-vm101-01';
const STAFF = { username: 'bench-carer-vm101', role: 'care-home-staff', org: 'VM101' } as const;
const WORKLOADS = {
  read: { path: `Patient/${PATIENT}`, query: [] as [string, string][] },
  search: { path: 'Observation', query: [['patient', PATIENT], ['code', 'http://loinc.org|9279-1'], ['_count', '20']] as [string, string][] },
};
const MODES = ['open', 'checked', 'audited'] as const;
type Mode = (typeof MODES)[number];

/**
 * A demo database, and a server on it that gives a care-home staff member tokens through the real
 * authorization code flow (one per round: they live a few minutes).
 */
async function prepare(dir: string): Promise<{ database: string; origin: string; token(): Promise<string>; close(): Promise<void> }> {
  const database = `sqlite:${join(dir, 'carebridge.db')}`;
  const driver = await openRecordStore(database);
  await handleFhirRequest({ base: 'http://localhost/fhir', driver, access: UNRESTRICTED }, { method: 'POST', path: '', query: [], body: buildDemoDataset().bundle, prefer: 'return=minimal' });
  await driver.close();
  const server = await buildServer(loadServerConfig({ port: 0, db: database }, { CAREBRIDGE_AUDIT: 'off' }));
  try {
    const origin = await server.app.listen({ host: '127.0.0.1', port: 0 });
    const t = { url: origin, base: `${origin}/fhir`, server } as TestServer;
    if (!(await findOrganisation(server.driver, STAFF.org))) await addOrganisation(server.driver, { ods: STAFF.org, name: 'Demo care home VM101', kind: 'care-home' });
    await addPerson(t, STAFF);
    return { database, origin, token: () => personToken(t, STAFF.username), close: () => server.close() };
  } catch (err) {
    await server.close();
    throw err;
  }
}

/** One request of `mode`, as the FHIR API's handler makes it (src/record/http.ts), minus HTTP. */
function asker(driver: SqlDriver, layers: Record<'checked' | 'audited', Access>, token: () => string, origin: string) {
  const host = origin.replace(/^http:\/\//, '');
  const base = `${origin}/fhir`;
  return async (mode: Mode, workload: keyof typeof WORKLOADS): Promise<void> => {
    const { path, query } = WORKLOADS[workload];
    let access: AccessControl = UNRESTRICTED;
    if (mode !== 'open') {
      const req = { headers: { authorization: `Bearer ${token()}`, host }, raw: { url: `/fhir/${path}` }, url: `/fhir/${path}`, method: 'GET', protocol: 'http', ip: '127.0.0.1' } as unknown as FastifyRequest;
      const given = layers[mode].authenticate(req);
      access = given instanceof Promise ? await given : given;
    }
    const events: AccessEvent[] = [];
    const response = await handleFhirRequest({ base, driver, access, onAccess: (e) => events.push(e) }, { method: 'GET', path, query });
    if (response.status !== 200) throw new Error(`${mode} ${workload}: ${response.status}`);
    access.accessed?.(events, { status: 200, method: 'GET', path, query: new URLSearchParams(query).toString() });
  };
}

const median = (v: number[]) => {
  const s = [...v].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

const dir = mkdtempSync(join(tmpdir(), 'carebridge-access-cost-'));
try {
  const prepared = await prepare(dir);
  const { database, origin } = prepared;
  const driver = await openRecordStore(database);
  let token = '';
  const layers = {
    checked: await setUpAccess(driver, { tokenRequestsPerMinute: 60, audit: false }),
    audited: await setUpAccess(driver, { tokenRequestsPerMinute: 60, database }),
  };
  const ask = asker(driver, layers, () => token, origin);
  console.log(`access checks and audit by their own code (in process, no HTTP): ${ROUNDS} rounds after 3 of warm-up, each ${REQUESTS} requests in every mode, modes rotating; a care-home staff member reading their own resident`);
  console.log('Per request: the wall time of the loop (the request thread: nothing else runs on it), medians over rounds; the added cost is the median of each round\'s own difference (modes side by side in time, so drift in the machine\'s speed cancels); process CPU adds the audit writer thread.');
  console.log('workload  mode      µs/request  process CPU µs/request');
  for (const workload of Object.keys(WORKLOADS) as (keyof typeof WORKLOADS)[]) {
    const wall: Record<Mode, number[]> = { open: [], checked: [], audited: [] };
    const cpu: Record<Mode, number[]> = { open: [], checked: [], audited: [] };
    for (let round = 0; round < ROUNDS + 3; round++) {
      const order = MODES.map((_, i) => MODES[(i + round) % MODES.length]);
      if (round % 20 === 0) token = await prepared.token(); // tokens live a few minutes
      for (const mode of order) {
        const p0 = process.cpuUsage();
        const t0 = performance.now();
        for (let i = 0; i < REQUESTS; i++) await ask(mode, workload);
        const us = ((performance.now() - t0) * 1000) / REQUESTS;
        // The audit writer's share of this round counts: the trail writes what it holds every 100 ms.
        if (mode === 'audited') await new Promise((resolve) => setTimeout(resolve, 150));
        const p = process.cpuUsage(p0);
        if (round < 3) continue;
        wall[mode].push(us);
        cpu[mode].push((p.user + p.system) / REQUESTS);
      }
    }
    for (const mode of MODES) console.log(`${workload.padEnd(9)} ${mode.padEnd(9)} ${median(wall[mode]).toFixed(1).padStart(10)} ${median(cpu[mode]).toFixed(1).padStart(23)}`);
    const paired = (a: Mode, b: Mode, of = wall) => median(of[b].map((v, i) => v - of[a][i]));
    const base = median(wall.open);
    const checks = paired('open', 'checked');
    const audit = paired('checked', 'audited');
    console.log(`${workload.padEnd(9)} checks +${checks.toFixed(1)} µs (${((checks / base) * 100).toFixed(1)}%), audit +${audit.toFixed(1)} µs (${((audit / base) * 100).toFixed(1)}%) on the request thread; process CPU: checks +${paired('open', 'checked', cpu).toFixed(1)} µs, audit +${paired('checked', 'audited', cpu).toFixed(1)} µs`);
  }
  await layers.audited.close();
  await layers.checked.close();
  await driver.close();
  await prepared.close();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
