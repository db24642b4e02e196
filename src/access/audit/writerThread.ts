// The audit writer thread (see writer.ts): builds each batch's journal entries and appends them through
// its own connection to the journal's database (on SQLite its own file, see ownDatabase.ts; already
// migrated by the main thread; the R4 definitions are not loaded here), one transaction per batch, and
// answers each message.
import { parentPort, workerData } from 'node:worker_threads';
import { connectRecordDatabase } from '../../record/index.ts';
import { SharedParts, journalEntryFor } from './auditEvent.ts';
import { JournalAppender } from './journal.ts';
import { decodeBatch, type BatchMessage } from './batchMessage.ts';

const { database, observer } = workerData as { database: string; observer: string };
let journal: JournalAppender | undefined;
let close: (() => Promise<void>) | undefined;
const parts = new SharedParts(observer);

function appender(): JournalAppender {
  if (!journal) {
    const driver = connectRecordDatabase(database);
    journal = new JournalAppender(driver);
    close = () => driver.close();
  }
  return journal;
}

async function handle(m: { id: number; batch?: BatchMessage; close?: true }): Promise<void> {
  try {
    if (m.close) await close?.();
    else await appender().append(decodeBatch(m.batch!).map((r) => journalEntryFor(r, parts)));
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
