// The search every incoming ADW discharge notice makes (src/discharge/referrals.ts referralForEncounterIn):
// one selective filter (encounter, 0–1 rows) with an unselective one (code, every referral), in process
// through handleFhirRequest, so the figure is the record's own cost with no HTTP. Prints µs per search,
// and how much of it was spent waiting on the database.
//
//   node --import tsx bench/searchDriving.ts [--engine sqlite|postgres] [--referrals 300,3000] [--repeat 200] [--plan]
import { parseArgs } from 'node:util';
import { handleFhirRequest, openRecordStore, UNRESTRICTED, type FhirRequest, type SqlDriver } from '../src/record/index.ts';
import { freshDatabase, type Engine } from './support.ts';
import { stopOwnPostgres } from '../test/support/postgres.ts';

const { values: args } = parseArgs({ options: {
  engine: { type: 'string', default: 'sqlite' },
  referrals: { type: 'string', default: '300,3000' },
  repeat: { type: 'string', default: '200' },
  plan: { type: 'boolean', default: false },
} });

const CODE = 'http://snomed.info/sct|306206005';
const BATCH = 500;

const serviceRequest = (i: number) => ({
  resourceType: 'ServiceRequest', status: 'active', intent: 'order',
  code: { coding: [{ system: 'http://snomed.info/sct', code: '306206005' }] },
  subject: { reference: `Patient/p${i % 50}` },
  encounter: { reference: `Encounter/e${i}` },
  authoredOn: new Date(Date.UTC(2026, 0, 1) + i * 60_000).toISOString(),
});

async function fhir(driver: SqlDriver, req: Partial<FhirRequest>) {
  const reply = await handleFhirRequest({ base: 'http://bench/fhir', driver, access: UNRESTRICTED }, { method: 'GET', path: '', query: [], ...req });
  if (reply.status >= 300) throw new Error(`${req.method ?? 'GET'} ${req.path} answered ${reply.status}: ${JSON.stringify(reply.body).slice(0, 300)}`);
  // Searchsets come back as serialised JSON text.
  return (typeof reply.body === 'string' ? JSON.parse(reply.body) : reply.body) as { entry?: unknown[]; total?: number };
}

/** Adds ServiceRequests `from`..`to`-1, each with its own encounter and the same code. */
async function addReferrals(driver: SqlDriver, from: number, to: number): Promise<void> {
  for (let start = from; start < to; start += BATCH) {
    const entry = [];
    for (let i = start; i < Math.min(to, start + BATCH); i++) entry.push({ resource: serviceRequest(i), request: { method: 'POST', url: 'ServiceRequest' } });
    await fhir(driver, { method: 'POST', body: { resourceType: 'Bundle', type: 'transaction', entry } });
  }
}

/**
 * µs per search, whole (handleFhirRequest) and in the database (time inside driver.all), as the median of
 * five rounds of `repeat` searches for encounters spread over the data.
 */
async function microsecondsPerSearch(driver: SqlDriver, referrals: number, repeat: number): Promise<{ whole: number; sql: number }> {
  const all = driver.all.bind(driver);
  let sqlMs = 0;
  driver.all = async (sql, params) => {
    const started = performance.now();
    try {
      return await all(sql, params);
    } finally {
      sqlMs += performance.now() - started;
    }
  };
  const search = async (k: number) => {
    const encounter = `Encounter/e${(k * 7919) % referrals}`;
    const found = await fhir(driver, { path: 'ServiceRequest', query: [['encounter', encounter], ['code', CODE], ['_sort', '-authored']] });
    if (found.entry?.length !== 1) throw new Error(`${encounter}: expected one referral, found ${found.entry?.length ?? 0}`);
  };
  try {
    for (let k = 0; k < 20; k++) await search(k);
    const rounds: { whole: number; sql: number }[] = [];
    for (let round = 0; round < 5; round++) {
      sqlMs = 0;
      const started = performance.now();
      for (let k = 0; k < repeat; k++) await search(k);
      rounds.push({ whole: ((performance.now() - started) * 1000) / repeat, sql: (sqlMs * 1000) / repeat });
    }
    return rounds.sort((a, b) => a.whole - b.whole)[2];
  } finally {
    driver.all = all;
  }
}

/** Prints each SQL statement the search runs with its plan (on PostgreSQL, as run: EXPLAIN ANALYZE). */
async function printPlans(driver: SqlDriver): Promise<void> {
  const all = driver.all.bind(driver);
  const explain = driver.dialect === 'sqlite' ? 'EXPLAIN QUERY PLAN' : 'EXPLAIN ANALYZE';
  driver.all = async (sql, params) => {
    console.log(sql);
    for (const row of await all<Record<string, string>>(`${explain} ${sql}`, params)) console.log('  ', row.detail ?? row['QUERY PLAN']);
    return all(sql, params);
  };
  await fhir(driver, { path: 'ServiceRequest', query: [['encounter', 'Encounter/e5'], ['code', CODE], ['_sort', '-authored']] });
  driver.all = all;
}

const engine = args.engine as Engine;
const sizes = args.referrals.split(',').map(Number);
const { database, cleanup } = await freshDatabase(engine);
const driver = await openRecordStore(database);
try {
  let stored = 0;
  for (const size of sizes) {
    await addReferrals(driver, stored, size);
    stored = size;
    if (engine === 'postgres') await driver.run('ANALYZE');
    if (args.plan) await printPlans(driver);
    const us = await microsecondsPerSearch(driver, size, Number(args.repeat));
    console.log(`${engine}\t${size} referrals\t${us.whole.toFixed(0)} µs per search, ${us.sql.toFixed(0)} µs of it in SQL`);
  }
} finally {
  await driver.close();
  cleanup();
  await stopOwnPostgres();
}
