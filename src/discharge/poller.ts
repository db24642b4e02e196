// A background loop for the workflow's workers (deadlines, ADW delivery, Encounter changes): runs `work`
// every interval, never two at once, and keeps going after an error (reported to onError).
export interface Poller { stop(): Promise<void>; /** Runs once more now and waits for it (tests, shutdown). */ runNow(): Promise<void> }

export function startPoller(intervalMs: number, work: () => Promise<unknown>, onError: (err: unknown) => void): Poller {
  let running: Promise<void> | undefined;
  let stopped = false;
  const run = (): Promise<void> => {
    running ??= work().then(() => undefined, onError).finally(() => { running = undefined; });
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
  };
}
