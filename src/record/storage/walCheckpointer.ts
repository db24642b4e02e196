// Copies a busy SQLite database's write-ahead log back into its file from a thread of its own. Left to
// SQLite, the commit that pushes the log past 1,000 pages does the copy (read every page back, write it,
// fsync the file) on the writer connection, which here is the thread that serves every request: under a
// busy inbox that was 6% of the server's thread. A second connection checkpoints instead (PASSIVE: it never
// waits for, nor blocks, the writer or a reader), and the writer's own automatic checkpoint stays as a
// backstop at a higher mark, so the log stays bounded even if this thread stops.
import { Worker } from 'node:worker_threads';
import { createRequire } from 'node:module';

/** How often the thread copies what has been committed since (a checkpoint with nothing to copy costs a lock and a read). */
const EVERY_MS = 200;
/** The writer's own automatic checkpoint while the thread runs (pages; SQLite's default is 1,000). */
export const BACKSTOP_PAGES = 10_000;

/**
 * The thread's priority (Linux nice value): nobody waits for a passive checkpoint, so on a machine with no
 * idle core it gives way to the thread serving requests (Linux applies it to this thread alone; elsewhere it
 * would lower the whole process, so it is left alone there).
 */
export const CHECKPOINTER_NICE = 10;

const THREAD = `
const { parentPort, workerData } = require('node:worker_threads');
if (process.platform === 'linux') try { require('node:os').setPriority(workerData.nice); } catch {}
const Database = require(workerData.driver);
const db = new Database(workerData.path, { fileMustExist: true });
db.pragma('synchronous = FULL');
const copy = () => {
  try {
    db.pragma('wal_checkpoint(PASSIVE)');
  } catch (err) {
    parentPort.postMessage({ failed: String(err && err.message || err) });
  }
};
const timer = setInterval(copy, workerData.everyMs);
parentPort.on('message', () => {
  clearInterval(timer);
  db.close();
  parentPort.close();
});`;

export interface WalCheckpointer {
  /** Stops the thread; resolves when its connection is closed. */
  stop(): Promise<void>;
}

/**
 * Starts checkpointing `path` from a worker thread. `onStopped` is told when the thread ends on its own (so
 * the writer can take checkpoints back); failures of single checkpoints go to `onError` and the thread goes on.
 */
export function startWalCheckpointer(path: string, onStopped: () => void, onError: (message: string) => void = () => undefined): WalCheckpointer {
  const worker = new Worker(THREAD, { eval: true, workerData: { path, driver: createRequire(import.meta.url).resolve('better-sqlite3'), everyMs: EVERY_MS, nice: CHECKPOINTER_NICE } });
  worker.unref(); // a server's timers keep it alive, not this thread
  let stopping = false;
  const ended = new Promise<void>((resolve) => {
    worker.on('exit', () => {
      if (!stopping) onStopped();
      resolve();
    });
  });
  worker.on('message', (m: { failed?: string }) => m.failed && onError(m.failed));
  worker.on('error', (err) => onError(err.message));
  return {
    async stop() {
      stopping = true;
      worker.ref(); // the close waits for it
      worker.postMessage('stop');
      await ended;
    },
  };
}
