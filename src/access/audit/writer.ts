// Where the audit trail's batches go. The usual writer is a worker thread with its own database connection,
// so indexing, hashing and storing each batch costs the request-serving thread almost nothing
// (on SQLite every write is synchronous, and would otherwise stall the event loop for each batch): the
// serving thread only moves each batch across as one buffer of packed requests (batchMessage.ts).
import type { SqlDriver } from '../../record/index.ts';
import { BatchAppender, type ChainHead } from './batchJournal.ts';
import type { BatchMessage } from './batchMessage.ts';
import { threadCalls } from '../../threads/index.ts';

/**
 * The writer thread's scheduling priority (Linux nice value). Its work can wait: a request never waits for
 * its audit, and the trail's backlog limit holds new requests back should the writer fall too far behind,
 * so on a machine with no idle core it gives way to the threads serving requests.
 */
export const AUDIT_WRITER_NICE = 10;

/** What the writer thread is asked to do: append a batch, or close its connection. */
export type WriterCall = { batch: BatchMessage; close?: undefined } | { close: true; batch?: undefined };

export interface AuditWriter {
  /** Appends the batch's AuditEvents to the journal, in one transaction; resolves to the chain's head, rejects when it could not. */
  write(batch: BatchMessage): Promise<ChainHead | void>;
  close(): Promise<void>;
}

/** Writes on the caller's thread, through the caller's connection. */
export function inProcessWriter(driver: SqlDriver, observer: string): AuditWriter {
  const journal = new BatchAppender(driver, observer);
  return {
    write: async (batch) => journal.append(batch),
    close: async () => undefined,
  };
}

/** Writes from a worker thread that opens its own connection to `database`; started on first use. */
export function threadWriter(database: string, observer: string): AuditWriter {
  const thread = threadCalls<WriterCall, ChainHead | undefined>(new URL('./writerThread.ts', import.meta.url), { database, observer }, 'audit writer');
  return {
    // The batch's bytes are moved to the thread, not copied (the trail keeps its own until written).
    write: (batch) => thread.call({ batch }, [batch.bytes.buffer]),
    close: () => thread.close({ close: true }),
  };
}
