// Where the audit trail's batches go. The usual writer is a worker thread with its own database connection,
// so building, hashing, indexing and storing AuditEvents costs the request-serving thread almost nothing
// (on SQLite every write is synchronous, and would otherwise stall the event loop for each batch): the
// serving thread only moves each batch across as one buffer of packed requests (batchMessage.ts).
import { Worker } from 'node:worker_threads';
import type { SqlDriver } from '../../record/index.ts';
import { SharedParts, journalEntryFor } from './auditEvent.ts';
import { JournalAppender } from './journal.ts';
import { decodeBatch, type BatchMessage } from './batchMessage.ts';

export interface AuditWriter {
  /** Appends the batch's AuditEvents to the journal, in one transaction; rejects when it could not. */
  write(batch: BatchMessage): Promise<void>;
  close(): Promise<void>;
}

/** Writes on the caller's thread, through the caller's connection. */
export function inProcessWriter(driver: SqlDriver, observer: string): AuditWriter {
  const journal = new JournalAppender(driver);
  const parts = new SharedParts(observer);
  return {
    write: async (batch) => journal.append(decodeBatch(batch).map((r) => journalEntryFor(r, parts))),
    close: async () => undefined,
  };
}

// The worker runs TypeScript: under `node --import tsx` it inherits the loader; otherwise (the carebridge
// command registers tsx in code) it registers it itself and imports the entry again.
const BOOTSTRAP = `
const { workerData } = require('node:worker_threads');
import(workerData.entry).catch(async (err) => {
  if (err?.code !== 'ERR_UNKNOWN_FILE_EXTENSION') throw err;
  (await import(workerData.tsx)).register();
  await import(workerData.entry + '?tsx');
});`;

/** Writes from a worker thread that opens its own connection to `database`; started on first use. */
export function threadWriter(database: string, observer: string): AuditWriter {
  let worker: Worker | undefined;
  let nextId = 0;
  const pending = new Map<number, { resolve: () => void; reject: (err: Error) => void }>();
  const failAll = (err: Error) => {
    for (const p of pending.values()) p.reject(err);
    pending.clear();
    worker = undefined;
  };
  const start = () => {
    const w = new Worker(BOOTSTRAP, {
      eval: true,
      workerData: { entry: new URL('./writerThread.ts', import.meta.url).href, tsx: import.meta.resolve('tsx/esm/api'), database, observer },
    });
    w.on('message', (m: { id: number; error?: string; code?: string; name?: string }) => {
      const p = pending.get(m.id);
      pending.delete(m.id);
      if (m.error) p?.reject(Object.assign(new Error(m.error), { code: m.code, name: m.name ?? 'Error' }));
      else p?.resolve();
      if (!pending.size) w.unref(); // an idle writer does not keep the process alive
    });
    w.on('error', (err) => failAll(err));
    w.on('exit', (code) => failAll(new Error(`the audit writer thread stopped (exit code ${code})`)));
    return w;
  };
  const call = (message: { batch?: BatchMessage; close?: true }) =>
    new Promise<void>((resolve, reject) => {
      worker ??= start();
      worker.ref();
      const id = ++nextId;
      pending.set(id, { resolve, reject });
      // The batch's bytes are moved to the thread, not copied (the trail keeps its own until written).
      worker.postMessage({ id, ...message }, message.batch ? [message.batch.bytes.buffer] : []);
    });
  return {
    write: (batch) => call({ batch }),
    async close() {
      if (!worker) return;
      const w = worker;
      await call({ close: true }).catch(() => undefined);
      await w.terminate();
    },
  };
}
