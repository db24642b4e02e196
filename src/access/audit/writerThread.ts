// The audit writer thread (see writer.ts): builds each batch's AuditEvents and appends them to the chain
// through its own connection to the record's database, one transaction per batch, and answers each message.
import { parentPort, workerData } from 'node:worker_threads';
import { openRecordStore, type SqlDriver } from '../../record/index.ts';
import { auditEventsFor, type AuditedRequest } from './auditEvent.ts';
import { appendToChain } from './chain.ts';

const { database, observer } = workerData as { database: string; observer: string };
let store: Promise<SqlDriver> | undefined;
const driver = () => (store ??= openRecordStore(database).catch((err) => {
  store = undefined; // try again with the next batch
  throw err;
}));

async function handle(m: { id: number; requests?: AuditedRequest[]; close?: true }): Promise<void> {
  try {
    if (m.close) await (await store)?.close();
    else await appendToChain(await driver(), m.requests!.flatMap((r) => auditEventsFor(r, observer)));
    parentPort!.postMessage({ id: m.id });
  } catch (err) {
    const e = err as { message?: string; code?: unknown; name?: string };
    parentPort!.postMessage({ id: m.id, error: e?.message ?? String(err), code: typeof e?.code === 'string' ? e.code : undefined, name: e?.name });
  }
}

// One message at a time, in the order sent: the chain is appended in order.
let queue = Promise.resolve();
parentPort!.on('message', (m) => {
  queue = queue.then(() => handle(m));
});
