// What the audit writer costs per answered request, measured apart from the server (no HTTP, no load
// generator on the same cores): batches of 1,000 packed reads by one care-home user appended to a SQLite
// journal, as the writer thread appends them, in CPU µs per entry (process.cpuUsage; the median of the
// rounds). Both layouts run in the same process, alternating: the batch rows written today
// (batchJournal.ts) and the one row per request written before (JournalAppender, kept for journals from
// before the batches).
//
//   node --import tsx bench/auditWriter.ts [--rounds 5] [--batches 40] [--only batch]
//
// --only batch times today's layout alone (e.g. under --cpu-prof).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { connectRecordDatabase, openRecordStore, type SqlDriver } from '../src/record/index.ts';
import { migrateAccess } from '../src/access/index.ts';
import { BatchAppender } from '../src/access/audit/batchJournal.ts';
import { JournalAppender } from '../src/access/audit/journal.ts';
import { PackedRequests, decodeBatch, type BatchMessage } from '../src/access/audit/batchMessage.ts';
import { SharedParts, journalEntryFor } from '../src/access/audit/auditEvent.ts';
import type { Actor } from '../src/access/actor.ts';

const { values: args } = parseArgs({ options: { rounds: { type: 'string', default: '5' }, batches: { type: 'string', default: '40' }, only: { type: 'string' } } });
if (args.only !== undefined && args.only !== 'batch') throw new Error(`--only takes batch, not '${args.only}'.`);
const ROUNDS = Number(args.rounds);
const BATCHES = Number(args.batches);
const PER_BATCH = 1000;
const actor: Actor = { kind: 'user', userId: 'u-bench', name: 'Bench Carer', organisation: 'VM101', role: 'care-home-staff', fhirUser: 'Practitioner/p-bench', purpose: 'TREAT', scope: 'user/*.rs openid fhirUser', sessionId: '0190a0b0-1111-7222-8333-944455556666' };

function batch(): BatchMessage {
  const packed = new PackedRequests();
  for (let i = 0; i < PER_BATCH; i++) {
    const id = `demo-pat-vm101-${String(i % 40).padStart(2, '0')}`;
    packed.push({ at: Date.now(), actor, address: '127.0.0.1', events: [{ interaction: 'read', resourceType: 'Patient', id, patientIds: [id] }], outcome: { status: 200, method: 'GET', path: `Patient/${id}`, query: '' } });
  }
  return packed.message(PER_BATCH);
}

async function journal(): Promise<{ writer: SqlDriver; close(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'carebridge-auditwriter-'));
  const database = `sqlite:${join(dir, 'bench.db')}`;
  const driver = await openRecordStore(database);
  const writer = connectRecordDatabase((await migrateAccess(driver, database))!);
  return { writer, close: async () => (await writer.close(), await driver.close(), rmSync(dir, { recursive: true, force: true })) };
}

const layouts = {
  'batch rows': (writer: SqlDriver) => {
    const appender = new BatchAppender(writer, 'bench');
    return (b: BatchMessage) => appender.append(b);
  },
  'one row per request (before)': (writer: SqlDriver) => {
    const appender = new JournalAppender(writer);
    const parts = new SharedParts('bench');
    return (b: BatchMessage) => appender.append(decodeBatch(b).map((r) => journalEntryFor(r, parts)));
  },
};

const results = new Map<string, number[]>();
for (let round = 0; round < ROUNDS; round++) {
  for (const [name, make] of Object.entries(layouts).slice(0, args.only ? 1 : undefined)) {
    const { writer, close } = await journal();
    const append = make(writer);
    await append(batch()); // warm
    const batches = Array.from({ length: BATCHES }, batch);
    const start = process.cpuUsage();
    for (const b of batches) await append(b);
    const used = process.cpuUsage(start);
    await close();
    results.set(name, [...(results.get(name) ?? []), (used.user + used.system) / (BATCHES * PER_BATCH)]);
  }
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
console.log(`audit writer, CPU per entry (${ROUNDS} rounds of ${BATCHES} batches of ${PER_BATCH} reads, SQLite):`);
for (const [name, xs] of results) console.log(`${name.padEnd(30)} ${median(xs).toFixed(1)} µs (rounds ${xs.map((x) => x.toFixed(1)).join(', ')})`);
