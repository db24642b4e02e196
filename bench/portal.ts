// Server time of the portal's pages with the demo data: `node --import tsx bench/portal.ts`. Starts
// `carebridge serve` on a fresh SQLite database (which loads the demo dataset), adds one account per role,
// signs each in through the sign-in form, then requests every page of that role one at a time (so each
// figure is one request's time, loopback round trip included, never queueing behind another) and prints
// p50/p95 per page, and how long building the demo dataset takes (the first `npm start` loads it).
// Environment: BENCH_PAGE_REQUESTS (default 200, after 20 warm-up requests).
import { openRecordStore } from '../src/record/index.ts';
import { buildDemoDataset } from '../src/demo/index.ts';
import { addUser, type Role } from '../src/access/index.ts';
import { cpuMeter, freshDatabase, log, percentile, startChild } from './support.ts';
import { table } from './table.ts';

const REQUESTS = Number(process.env.BENCH_PAGE_REQUESTS ?? 200);
const WARM_UP = 20;
/** BENCH_PAGES=/council/people times only the pages whose path contains it (for profiling one page). */
const ONLY = process.env.BENCH_PAGES;
const PASSWORD = 'bench-portal-passphrase-1';
const TARGET_P95_MS = 100;

interface Person { username: string; role: Role; organisation?: string; fhirUser?: string; pages: string[] }

const PEOPLE: Person[] = [
  { username: 'bench-carer', role: 'care-home-staff', organisation: 'VM101', fhirUser: 'Practitioner/demo-prac-vm101-senior-carer', pages: ['/care-home', '/care-home?q=Wright', '/care-home/residents/demo-pat-vm101-01', '/care-home/residents/demo-pat-vm101-01/news2', '/red-bag'] },
  { username: 'bench-nurse', role: 'ward-nurse', organisation: 'RX9', pages: ['/hospital', '/hospital/patients/{inpatient}', '/red-bag'] },
  { username: 'bench-coordinator', role: 'discharge-coordinator', organisation: 'RX9', pages: ['/discharge/board', '/discharge/referrals/{hospitalReferral}', '/discharge/referrals/new?patient={inpatient}', '/discharge/metrics'] },
  { username: 'bench-social', role: 'social-worker', organisation: 'LA918', pages: ['/council', '/council/people/{inpatient}', '/discharge/referrals', '/discharge/referrals/{councilReferral}', '/discharge/metrics'] },
  { username: 'bench-privacy', role: 'privacy-officer', organisation: 'LA918', pages: ['/privacy-officer'] },
  { username: 'bench-admin', role: 'admin', pages: ['/admin/users', '/admin/clients', '/admin/organisations'] },
];

async function signIn(url: string, username: string): Promise<string> {
  const form = await fetch(`${url}/sign-in`);
  const cookie = form.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ');
  const csrf = /name="_csrf" value="([^"]+)"/.exec(await form.text())![1];
  const res = await fetch(`${url}/sign-in`, { method: 'POST', redirect: 'manual', headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ _csrf: csrf, username, password: PASSWORD }).toString() });
  const id = /carebridge_session=([^;]+)/.exec(res.headers.getSetCookie().join('\n'))?.[1];
  if (!id) throw new Error(`${username} could not sign in (${res.status})`);
  return `carebridge_session=${id}`;
}

async function timePage(url: string, cookie: string): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < WARM_UP + REQUESTS; i++) {
    const started = performance.now();
    const res = await fetch(url, { headers: { cookie, 'accept-encoding': 'br, gzip' }, redirect: 'manual' });
    await res.arrayBuffer();
    if (res.status !== 200) throw new Error(`${url} answered ${res.status}`);
    if (i >= WARM_UP) times.push(performance.now() - started);
  }
  return times;
}

const { database, cleanup } = await freshDatabase('sqlite');
const server = await startChild('bin/carebridge.mjs', ['serve', '--db', database]);
try {
  const driver = await openRecordStore(database);
  try {
    for (const p of PEOPLE) await addUser(driver, { username: p.username, name: p.username, password: PASSWORD, fhirUser: p.fhirUser, memberships: [{ organisation: p.organisation, role: p.role }] });
  } finally {
    await driver.close();
  }
  // An inpatient of the demo hospital with a referral to the council: on both the ward list and the council's.
  const nurse = await signIn(server.url, 'bench-nurse');
  const inpatient = /href="\/hospital\/patients\/([^"]+)"/.exec(await (await fetch(`${server.url}/hospital`, { headers: { cookie: nurse } })).text())![1];
  // A referral each side can open: the first on the hospital's board, the first in the council's queue.
  const firstReferral = async (username: string, page: string) => {
    const html = await (await fetch(`${server.url}${page}`, { headers: { cookie: await signIn(server.url, username) } })).text();
    const id = /href="\/discharge\/referrals\/([^"?/]+)"/.exec(html)?.[1];
    if (!id) throw new Error(`${page} shows no referral in the demo data.`);
    return id;
  };
  const referrals = { hospitalReferral: await firstReferral('bench-coordinator', '/discharge/board'), councilReferral: await firstReferral('bench-social', '/discharge/referrals') };
  const rows: string[][] = [];
  let allMet = true;
  const cpu = cpuMeter();
  for (const person of PEOPLE) {
    const cookie = await signIn(server.url, person.username);
    for (const page of person.pages.map((p) => p.replace('{inpatient}', inpatient).replace('{hospitalReferral}', referrals.hospitalReferral).replace('{councilReferral}', referrals.councilReferral))) {
      if (ONLY && !page.includes(ONLY)) continue;
      log(`${person.role} ${page}`);
      const times = await timePage(server.url + page, cookie);
      const p95 = percentile(times, 95);
      allMet &&= p95 < TARGET_P95_MS;
      rows.push([person.role, page, `${percentile(times, 50).toFixed(1)} ms`, `${p95.toFixed(1)} ms`, `${Math.max(...times).toFixed(1)} ms`, p95 < TARGET_P95_MS ? 'yes' : 'no']);
    }
  }
  console.log(`Portal pages, demo data, SQLite, ${REQUESTS} sequential requests per page after ${WARM_UP} warm-up (loopback round trip):\n`);
  console.log(table(['Role', 'Page', 'p50', 'p95', 'max', `p95 < ${TARGET_P95_MS} ms`], rows));
  const { ours, others } = cpu();
  console.log(`\nCPU during the run, as a share of all cores: this benchmark ${Math.round(ours * 100)}%, others ${Math.round(others * 100)}% (figures taken while others are busy are slower than this machine can do).`);
  console.log(allMet ? 'Every page met the target.' : 'Some pages missed the target.');
  console.log(`Building the default demo dataset (what the first \`npm start\` loads): ${demoBuildMs().toFixed(0)} ms, median of 5.`);
} finally {
  await server.stop();
  cleanup();
}

/** Median time to build the default demo dataset, in this process, after one build to warm up. */
function demoBuildMs(): number {
  buildDemoDataset();
  const times = Array.from({ length: 5 }, () => {
    const start = performance.now();
    buildDemoDataset();
    return performance.now() - start;
  });
  return percentile(times, 50);
}
