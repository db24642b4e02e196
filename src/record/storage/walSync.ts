// Makes SQLite commits durable without stalling the event loop. better-sqlite3 runs a COMMIT on the calling
// thread, and with synchronous=FULL that includes fsync: the thread serving every request sat idle for the
// disk on each commit (0.7 ms on a quiet disk, several when it is busy), and every other request waited with
// it. The writer connection now commits with synchronous=NORMAL (the log's frames are written, not synced),
// and this syncs the log file on libuv's thread pool; a transaction is reported committed only once a sync
// that began after its COMMIT has finished. What is acknowledged is on disk, as before.
//
// Why that is enough: in WAL mode a commit is its frames in the log; once they are synced, recovery after a
// power cut replays them. SQLite itself still syncs around checkpoints at NORMAL (the log before frames are
// copied, the database after), so a log overwritten from its start (after a complete checkpoint) only ever
// overwrites frames that are already synced into the database. The log's directory entry is synced once,
// when the log is first opened here.
//
// Not the same as FULL in one respect: another connection can read a commit in the moment before its sync
// finishes. Nobody is told it was stored in that moment; a power cut then would lose it as it loses a
// commit that never finished.
import { closeSync, fdatasync, fdatasyncSync, fsyncSync, openSync } from 'node:fs';
import { dirname } from 'node:path';

/** Syncs an open file's data to disk, calling back with the error when it could not (fs.fdatasync's shape). */
export type SyncFile = (fd: number, done: (err: NodeJS.ErrnoException | null) => void) => void;

export interface WalSync {
  /** Resolves once everything committed before the call is on disk; rejects when the sync failed. */
  durable(): Promise<void>;
  /** The same, blocking the caller: for rare commits outside the writer's queue (schema scripts). */
  durableNow(): void;
  /** Why writes must stop: a sync failed, so what the disk holds is no longer known. */
  failure(): Error | undefined;
  /** Waits for syncs in flight, then closes the log file. */
  close(): Promise<void>;
}

export function startWalSync(databasePath: string, syncFile: SyncFile = fdatasync): WalSync {
  const logPath = `${databasePath}-wal`;
  let fd: number | undefined;
  let failed: Error | undefined;
  let syncing = false;
  /** Callers whose commits came after the sync in flight began: they wait for the next one. */
  let waiting: Array<{ resolve: () => void; reject: (err: Error) => void }> = [];
  let idle: (() => void) | undefined;

  const fail = (err: unknown): Error => {
    failed ??= Object.assign(new Error(
      `The record's write-ahead log (${logPath}) could not be synced to disk (${(err as Error)?.message ?? err}); `
      + 'what the disk holds is no longer known, so writes are refused until CareBridge is restarted (restarting recovers from the log).',
    ), { code: 'SQLITE_IOERR_FSYNC' });
    return failed;
  };
  const logFile = (): number => {
    if (fd === undefined) {
      fd = openSync(logPath, 'r');
      // A log created since the last power cut is only found again if its name is on disk too.
      const dir = openSync(dirname(logPath), 'r');
      try {
        fsyncSync(dir);
      } finally {
        closeSync(dir);
      }
    }
    return fd;
  };
  const startSync = () => {
    const batch = waiting;
    waiting = [];
    let file: number;
    try {
      file = logFile();
    } catch (err) {
      for (const w of batch) w.reject(fail(err));
      return;
    }
    syncing = true;
    syncFile(file, (err) => {
      syncing = false;
      if (err) fail(err);
      for (const w of batch) (failed ? w.reject(failed) : w.resolve());
      if (waiting.length) startSync();
      else idle?.();
    });
  };

  return {
    durable: () => new Promise<void>((resolve, reject) => {
      if (failed) return reject(failed);
      waiting.push({ resolve, reject });
      if (!syncing) startSync();
    }),
    durableNow() {
      if (failed) throw failed;
      try {
        fdatasyncSync(logFile());
      } catch (err) {
        throw fail(err);
      }
    },
    failure: () => failed,
    async close() {
      if (syncing || waiting.length) await new Promise<void>((resolve) => (idle = resolve));
      if (fd !== undefined) closeSync(fd);
      fd = undefined;
    },
  };
}
