// A background loop for the workflow's workers (deadlines, ADW delivery, Encounter changes): runs `work`
// every interval, never two at once, and keeps going after an error (reported to onError). `wake` asks for
// a run as soon as possible (a message was just queued): if one is running, another follows it, so work
// queued after the running pass looked is not left for the next interval.
export interface Poller {
  stop(): Promise<void>;
  /** Runs once more now and waits for it (tests, shutdown). */
  runNow(): Promise<void>;
  /** Runs soon, without waiting. */
  wake(): void;
}

export function startPoller(intervalMs: number, work: () => Promise<unknown>, onError: (err: unknown) => void): Poller {
  let running: Promise<void> | undefined;
  let again = false;
  let stopped = false;
  const run = (): Promise<void> => {
    running ??= work().then(() => undefined, onError).finally(() => {
      running = undefined;
      if (again && !stopped) {
        again = false;
        void run();
      }
    });
    return running;
  };
  const handle = setInterval(() => { if (!stopped) void run(); }, intervalMs);
  handle.unref();
  return {
    async stop() {
      stopped = true;
      clearInterval(handle);
      await running;
    },
    async runNow() {
      await running;
      await run();
    },
    wake() {
      if (stopped) return;
      if (running) again = true;
      else void run();
    },
  };
}
