// One reader of the record's change feed per portal process, shared by every open live page: it polls
// readChanges while anyone is listening and hands each batch to every listener. Nothing about the changes
// goes to a browser from here; the live routes decide, per user, whether to say anything at all.
import { latestChangeSeq, readChanges, type RecordChange, type SqlDriver } from '../../record/index.ts';

/**
 * On PostgreSQL a change's seq is assigned at insert but seen at commit, so a lower seq can appear after a
 * higher one. Each poll re-reads this many seqs behind the newest seen and skips those already handed out.
 */
const LATE_WINDOW = 200;
const BATCH = 1000;

export type ChangeListener = (changes: RecordChange[]) => void;

export interface ChangeWatcher {
  /** Calls `listener` with every batch of changes written from now on; returns the way to stop. */
  subscribe(listener: ChangeListener): () => void;
  /** Stops polling (the listeners stay, hearing nothing more). */
  close(): void;
}

export function changeWatcher(driver: SqlDriver, intervalMs = 1000): ChangeWatcher {
  const listeners = new Set<ChangeListener>();
  let timer: NodeJS.Timeout | undefined;
  let cursor: number | undefined;
  /** The newest change when listening started: it and everything before it were written before anyone asked. */
  let start = 0;
  let seen = new Set<number>();
  let polling = false;
  let closed = false;

  const poll = async () => {
    if (polling) return;
    polling = true;
    try {
      if (cursor === undefined) cursor = start = await latestChangeSeq(driver);
      const fresh = (await readChanges(driver, Math.max(start, cursor - LATE_WINDOW), BATCH)).filter((c) => !seen.has(c.seq));
      if (!fresh.length) return;
      for (const c of fresh) seen.add(c.seq);
      cursor = Math.max(cursor, ...fresh.map((c) => c.seq));
      const floor = cursor - LATE_WINDOW;
      seen = new Set([...seen].filter((seq) => seq > floor));
      for (const listener of listeners) listener(fresh);
    } catch {
      // A failed poll (the database busy or restarting) is tried again on the next tick.
    } finally {
      polling = false;
    }
  };

  return {
    subscribe(listener) {
      listeners.add(listener);
      if (!timer && !closed) {
        void poll(); // fixes the starting point now, so nothing written after subscribing is missed
        timer = setInterval(() => void poll(), intervalMs);
        timer.unref();
      }
      return () => {
        listeners.delete(listener);
        if (!listeners.size && timer) {
          clearInterval(timer);
          timer = undefined;
          cursor = undefined;
          seen = new Set();
        }
      };
    },
    close() {
      closed = true;
      if (timer) clearInterval(timer);
      timer = undefined;
    },
  };
}
