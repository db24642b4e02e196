// The red bag's figures: time to build and send a pack for a resident with a long history, as a signed-in
// care worker over HTTP (the server in its own process), and the size of the pack and its PDF.
//   node --import tsx bench/redBag.ts            BENCH_ENGINES=sqlite,postgres  BENCH_SENDS=100
// The resident has 3 years of daily NEWS2 sets (7 Observations each, ~7,700 in all) and 1,000 medicine
// administrations, among the other demo residents; the target is p95 < 300 ms on 2 cores.
import http from 'node:http';
import { buildDemoDataset } from '../src/demo/index.ts';
import { openRecordStore } from '../src/record/index.ts';
import { addClient, addUser, migrateAccess } from '../src/access/index.ts';
import { personToken } from '../test/support/people.ts';
import type { TestServer } from '../test/support/server.ts';
import { stopOwnPostgres } from '../test/support/postgres.ts';
import { freshDatabase, percentile, postTransaction, startServer, type Engine } from './support.ts';
import { detailsToParameters } from '../src/redbag/index.ts';

const engines = (process.env.BENCH_ENGINES ?? 'sqlite,postgres').split(',') as Engine[];
const SENDS = Number(process.env.BENCH_SENDS ?? 100);
const DAY = 86_400_000;
const RESIDENT = 'demo-pat-vm101-01';
const TAG = { system: 'http://terminology.hl7.org/CodeSystem/v3-ActReason', code: 'HTEST', display: 'test health data' };

/** Older history for one resident: daily observation sets before the demo's 30 days, and administrations. */
function longHistory(now: number): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  const subject = { reference: `Patient/${RESIDENT}` };
  const loinc = [['9279-1', 16, '/min'], ['59408-5', 96, '%'], ['8310-5', 36.8, 'Cel'], ['8867-4', 72, '/min']] as const;
  for (let d = 31; d < 31 + 3 * 365; d++) {
    const at = new Date(now - d * DAY).toISOString();
    for (const [code, value, unit] of loinc) out.push({ resourceType: 'Observation', meta: { tag: [TAG] }, status: 'final', code: { coding: [{ system: 'http://loinc.org', code }] }, subject, effectiveDateTime: at, valueQuantity: { value, unit, system: 'http://unitsofmeasure.org', code: unit } });
    out.push({ resourceType: 'Observation', meta: { tag: [TAG] }, status: 'final', code: { coding: [{ system: 'http://loinc.org', code: '85354-9' }] }, subject, effectiveDateTime: at, component: [{ code: { coding: [{ system: 'http://loinc.org', code: '8480-6' }] }, valueQuantity: { value: 128, unit: 'mmHg' } }, { code: { coding: [{ system: 'http://loinc.org', code: '8462-4' }] }, valueQuantity: { value: 74, unit: 'mmHg' } }] });
    out.push({ resourceType: 'Observation', meta: { tag: [TAG] }, status: 'final', code: { coding: [{ system: 'http://snomed.info/sct', code: '1104441000000107' }] }, subject, effectiveDateTime: at, valueCodeableConcept: { text: 'A' } });
    out.push({ resourceType: 'Observation', meta: { tag: [TAG] }, status: 'final', code: { coding: [{ system: 'http://snomed.info/sct', code: '1104051000000101' }] }, subject, effectiveDateTime: at, valueInteger: 1 });
  }
  for (let i = 0; i < 1000; i++) out.push({ resourceType: 'MedicationAdministration', meta: { tag: [TAG] }, status: 'completed', medicationCodeableConcept: { text: 'Paracetamol 500mg tablets' }, subject, effectiveDateTime: new Date(now - i * DAY / 2).toISOString() });
  return out;
}

function post(url: string, token: string, body: string): Promise<{ status: number; body: string; ms: number }> {
  return new Promise((resolve, reject) => {
    const start = performance.now();
    const req = http.request(url, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/fhir+json', 'content-length': Buffer.byteLength(body) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString(), ms: performance.now() - start }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function run(engine: Engine): Promise<string> {
  const { database, cleanup } = await freshDatabase(engine);
  const server = await startServer(database);
  try {
    const now = Date.now();
    const { bundle } = buildDemoDataset({ careHomes: 3, residentsPerHome: 8, observationDays: 30, referenceDate: new Date(now - 60_000).toISOString() });
    await postTransaction(server.url, JSON.stringify(bundle));
    const extra = longHistory(now);
    for (let i = 0; i < extra.length; i += 1000) {
      await postTransaction(server.url, JSON.stringify({ resourceType: 'Bundle', type: 'transaction', entry: extra.slice(i, i + 1000).map((resource) => ({ resource, request: { method: 'POST', url: resource.resourceType } })) }));
    }
    const driver = await openRecordStore(database);
    await migrateAccess(driver);
    await addClient(driver, { clientId: 'test-app', name: 'Bench app', scopes: 'user/*.cruds', redirectUris: ['http://127.0.0.1:9/callback'], publicClient: true });
    await addUser(driver, { username: 'bench.carer', name: 'Bench Carer', password: 'correct horse battery staple', memberships: [{ organisation: 'VM101', role: 'care-home-staff' }] }).catch(async (err) => {
      if (!/organisation/i.test(String(err))) throw err;
      const { addOrganisation } = await import('../src/access/index.ts');
      await addOrganisation(driver, { ods: 'VM101', name: 'Willow Lodge', kind: 'care-home' });
      await addUser(driver, { username: 'bench.carer', name: 'Bench Carer', password: 'correct horse battery staple', memberships: [{ organisation: 'VM101', role: 'care-home-staff' }] });
    });
    await driver.close();
    const token = await personToken({ url: server.url, base: `${server.url}/fhir` } as TestServer, 'bench.carer');
    const params = JSON.stringify(detailsToParameters({ reason: 'Fall with new confusion', destination: 'RX9', belongings: ['Glasses', 'Dentures'], attested: true }));
    const sendUrl = `${server.url}/fhir/Patient/${RESIDENT}/$red-bag-send`;
    for (let i = 0; i < 10; i++) await post(sendUrl, token, params); // warm-up
    const sends: number[] = [];
    let taskId = '';
    for (let i = 0; i < SENDS; i++) {
      const r = await post(sendUrl, token, params);
      if (r.status !== 201) throw new Error(`send failed: ${r.status} ${r.body.slice(0, 300)}`);
      sends.push(r.ms);
      taskId = JSON.parse(r.body).id;
    }
    const drafts: number[] = [];
    let draft = { status: 0, body: '', ms: 0 };
    for (let i = 0; i < SENDS; i++) drafts.push((draft = await post(`${server.url}/fhir/Patient/${RESIDENT}/$red-bag`, token, params)).ms);
    const printed = await new Promise<string>((resolve, reject) => http.get(`${server.url}/fhir/Task/${taskId}/$red-bag-print`, { headers: { authorization: `Bearer ${token}` } }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve(body));
    }).on('error', reject));
    const pdfBytes = Buffer.from(JSON.parse(printed).data, 'base64').length;
    const line = `| ${engine} | ${SENDS} | ${percentile(sends, 50).toFixed(0)} ms | ${percentile(sends, 95).toFixed(0)} ms | ${percentile(sends, 99).toFixed(0)} ms | ${percentile(drafts, 50).toFixed(0)} / ${percentile(drafts, 95).toFixed(0)} ms | ${(Buffer.byteLength(draft.body) / 1024).toFixed(0)} KB | ${(pdfBytes / 1024).toFixed(0)} KB |`;
    console.log(line);
    return line;
  } finally {
    await server.stop();
    cleanup();
  }
}

console.log('| Engine | Sends | Send p50 | Send p95 | Send p99 | Draft p50 / p95 | Pack (document Bundle JSON) | PDF |\n| --- | --- | --- | --- | --- | --- | --- | --- |');
for (const engine of engines) await run(engine);
await stopOwnPostgres();
