// Work moved off the thread that serves requests, to a worker thread running the project's TypeScript: one
// call at a time, answered in the order sent. Used by the audit writer and by the ADW reader.
import { setPriority } from 'node:os';
import { Worker, parentPort, workerData, type Transferable } from 'node:worker_threads';

// Under `node --import tsx` a worker inherits the loader; the carebridge command registers tsx in code,
// which a worker does not inherit, so there the worker registers it itself and imports its entry again.
const BOOTSTRAP = `
const { workerData } = require('node:worker_threads');
import(workerData.entry).catch(async (err) => {
  if (err?.code !== 'ERR_UNKNOWN_FILE_EXTENSION') throw err;
  (await import(workerData.tsx)).register();
  await import(workerData.entry + '?tsx');
});`;

export interface ThreadCalls<Request, Answer> {
  /** Sends a request (moving the `transfer` buffers, not copying them); rejects with the thread's error, or when it stopped. */
  call(request: Request, transfer?: Transferable[]): Promise<Answer>;
  /** Sends `farewell` as a last call (if the thread ever started), then ends the thread. */
  close(farewell?: Request): Promise<void>;
}

interface Reply<Answer> { id: number; answer?: Answer; error?: string; code?: string; name?: string }

/**
 * Calls into a worker thread running `entry` (which answers through `answerCalls`), started on first use
 * and started again after it stopped; an idle thread does not keep the process alive.
 */
export function threadCalls<Request, Answer>(entry: URL, data: Record<string, unknown>, what: string): ThreadCalls<Request, Answer> {
  let worker: Worker | undefined;
  let nextId = 0;
  const pending = new Map<number, { resolve: (a: Answer) => void; reject: (err: Error) => void }>();
  const failAll = (err: Error) => {
    for (const p of pending.values()) p.reject(err);
    pending.clear();
    worker = undefined;
  };
  const start = () => {
    const w = new Worker(BOOTSTRAP, { eval: true, workerData: { ...data, entry: entry.href, tsx: import.meta.resolve('tsx/esm/api') } });
    w.on('message', (m: Reply<Answer>) => {
      const p = pending.get(m.id);
      pending.delete(m.id);
      if (m.error !== undefined) p?.reject(Object.assign(new Error(m.error), { code: m.code, name: m.name ?? 'Error' }));
      else p?.resolve(m.answer as Answer);
      if (!pending.size) w.unref();
    });
    w.on('error', (err) => failAll(err));
    w.on('exit', (code) => failAll(new Error(`the ${what} thread stopped (exit code ${code})`)));
    return w;
  };
  const call = (request: Request, transfer: Transferable[] = []) =>
    new Promise<Answer>((resolve, reject) => {
      worker ??= start();
      worker.ref();
      const id = ++nextId;
      pending.set(id, { resolve, reject });
      worker.postMessage({ id, request }, transfer);
    });
  return {
    call,
    async close(farewell) {
      if (!worker) return;
      const w = worker;
      if (farewell !== undefined) await call(farewell).catch(() => undefined);
      await w.terminate();
    },
  };
}

/**
 * In the worker thread: answers each call with `answer`'s result (or its error's message, code and name),
 * one at a time in the order they came.
 */
export function answerCalls<Request, Answer>(answer: (request: Request) => Answer | Promise<Answer>): void {
  const port = parentPort;
  if (!port) throw new Error('answerCalls runs in a worker thread started by threadCalls.');
  let queue = Promise.resolve();
  const handle = async ({ id, request }: { id: number; request: Request }) => {
    try {
      port.postMessage({ id, answer: await answer(request) });
    } catch (err) {
      const e = err as { message?: string; code?: unknown; name?: string };
      port.postMessage({ id, error: e?.message ?? String(err), code: typeof e?.code === 'string' ? e.code : undefined, name: e?.name });
    }
  };
  port.on('message', (m) => {
    queue = queue.then(() => handle(m));
  });
}

/** What the thread was started with (besides its entry). */
export function threadData<T>(): T {
  return workerData as T;
}

/**
 * In a worker thread doing deferred work (nobody waits for it: the audit writer): lowers this thread's
 * scheduling priority to `nice`, so that on a machine whose cores are all busy the threads serving requests
 * run first and this one takes what they leave. Measured on two cores under load (docs/performance.md,
 * session 16): at the same priority the writer's bursts preempted the request thread, whose CPU per read
 * rose by a third. Linux applies setpriority to the calling thread alone; elsewhere it would lower the whole
 * process, so it is left alone there. A refusal (a sandbox forbidding it) only leaves the priority as it was.
 */
export function yieldToRequestThreads(nice: number): boolean {
  if (process.platform !== 'linux' || !parentPort) return false;
  try {
    setPriority(nice);
    return true;
  } catch {
    return false;
  }
}
