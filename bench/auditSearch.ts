// What searching the audit trail costs, as privacy officers and people search it, in the two journal
// layouts: batch rows (written today, src/access/audit/batchJournal.ts) and one row per request (written
// before them). A SQLite journal of `--entries` reads by one care-home user of 40 residents, in batches
// of 1,000, then each search through the FHIR API's handler (no HTTP), median milliseconds of `--runs`.
//
//   node --import tsx bench/auditSearch.ts [--entries 100000] [--runs 7]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { connectRecordDatabase, handleFhirRequest, openRecordStore, UNRESTRICTED } from '../src/record/index.ts';
import { migrateAccess, setUpAccess } from '../src/access/index.ts';
import { BatchAppender } from '../src/access/audit/batchJournal.ts';
import { JournalAppender } from '../src/access/audit/journal.ts';
import { PackedRequests, decodeBatch } from '../src/access/audit/batchMessage.ts';
import { SharedParts, journalEntryFor } from '../src/access/audit/auditEvent.ts';
import type { Actor } from '../src/access/actor.ts';

const { values: args } = parseArgs({ options: { entries: { type: 'string', default: '100000' }, runs: { type: 'string', default: '7' } } });
const ENTRIES = Number(args.entries);
const RUNS = Number(args.runs);
const actor: Actor = { kind: 'user', userId: 'u-bench', name: 'Bench Carer', organisation: 'VM101', role: 'care-home-staff', fhirUser: 'Practitioner/p-bench', purpose: 'TREAT', scope: 'user/*.rs', sessionId: '0190a0b0-1111-7222-8333-944455556666' };
const START = Date.UTC(2026, 10, 1);
const patient = (i: number) => `demo-pat-vm101-${String(i % 40).padStart(2, '0')}`;

const SEARCHES: [string, [string, string][]][] = [
  ['newest 20, with total', [['_count', '20']]],
  ['newest 20, _total=none', [['_count', '20'], ['_total', 'none']]],
  ['one person, newest 20 ("who has looked")', [['patient', patient(7)], ['_count', '20']]],
  ['one minute, 20', [['date', `ge${new Date(START + 1_800_000).toISOString()}`], ['date', `lt${new Date(START + 1_860_000).toISOString()}`], ['_count', '20']]],
  ['failed requests (outcome=4)', [['outcome', '4'], ['_count', '20']]],
  ['_summary=count', [['_summary', 'count']]],
];

for (const layout of ['batch rows', 'one row per request (before)']) {
  const dir = mkdtempSync(join(tmpdir(), 'carebridge-auditsearch-'));
  const database = `sqlite:${join(dir, 'bench.db')}`;
  const driver = await openRecordStore(database);
  const writer = connectRecordDatabase((await migrateAccess(driver, database))!);
  const batches = new BatchAppender(writer, 'bench');
  const rows = new JournalAppender(writer);
  const parts = new SharedParts('bench');
  for (let first = 0; first < ENTRIES; first += 1000) {
    const packed = new PackedRequests();
    // One read every 36 ms: 100,000 entries span an hour.
    for (let i = first; i < first + 1000; i++) packed.push({ at: START + i * 36, actor, address: '10.0.0.1', events: [{ interaction: 'read', resourceType: 'Patient', id: patient(i), patientIds: [patient(i)] }], outcome: { status: 200, method: 'GET', path: `Patient/${patient(i)}`, query: '' } });
    const message = packed.message(1000);
    if (layout === 'batch rows') await batches.append(message);
    else await rows.append(decodeBatch(message).map((r) => journalEntryFor(r, parts)));
  }
  const access = await setUpAccess(driver, { tokenRequestsPerMinute: 60, audit: false });
  const results: string[] = [];
  for (const [name, query] of SEARCHES) {
    const times: number[] = [];
    let total: unknown;
    for (let run = 0; run < RUNS; run++) {
      const start = performance.now();
      const res = await handleFhirRequest({ base: 'http://localhost/fhir', driver, access: UNRESTRICTED, services: access.services }, { method: 'GET', path: 'AuditEvent', query });
      times.push(performance.now() - start);
      total = JSON.parse(res.body as string).total;
    }
    times.sort((a, b) => a - b);
    results.push(`  ${name.padEnd(42)} ${times[Math.floor(RUNS / 2)].toFixed(1).padStart(8)} ms  (total ${total ?? 'not given'})`);
  }
  console.log(`${layout}, ${ENTRIES.toLocaleString('en-GB')} entries (median of ${RUNS}):\n${results.join('\n')}`);
  await writer.close();
  await driver.close();
  rmSync(dir, { recursive: true, force: true });
}
