// Reads ADW messages before their transaction, on a thread of its own. Parsing a notice's XML is about a
// sixth of the serving thread's work per notice under a busy inbox, and needs nothing from the record, so
// a batch of notices is read there while this thread goes on serving (and committing the batch before).
import { threadCalls } from '../../threads/index.ts';
import { AdwError, decodeAdwMessage, parseAdwMessage, type AdwMessage } from './parse.ts';

/** A message read, or the sentence saying why it cannot be (an AdwError's message). */
export type ReadAdw = { message: AdwMessage; unreadable?: undefined } | { unreadable: string; message?: undefined };

export function readAdw(body: Buffer): ReadAdw {
  try {
    return { message: parseAdwMessage(decodeAdwMessage(body)) };
  } catch (err) {
    if (err instanceof AdwError) return { unreadable: err.message };
    throw err;
  }
}

export interface AdwReader {
  read(body: Buffer): Promise<ReadAdw>;
  close(): Promise<void>;
}

/** Reads in a worker thread, started on first use. */
export function threadAdwReader(): AdwReader {
  const thread = threadCalls<Uint8Array, ReadAdw>(new URL('./readerThread.ts', import.meta.url), {}, 'ADW reader');
  return {
    read(body) {
      const bytes = new Uint8Array(body); // a copy the thread can own (the body may share a larger buffer)
      return thread.call(bytes, [bytes.buffer]);
    },
    close: () => thread.close(),
  };
}
