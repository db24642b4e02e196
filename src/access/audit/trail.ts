// The audit trail as the API sees it: answered requests are buffered in memory and handed to the writer
// in batches — every FLUSH_INTERVAL_MS, or at once when FLUSH_AT_EVENTS are waiting, and on close — one
// database transaction per batch (at most BATCH_EVENTS events), so a request never waits for its audit.
// Each request becomes one AuditEvent (one journal row); "events" here counts what requests touched (a
// transaction writing 300 resources weighs 300), which bounds the index rows per batch and the backlog.
//
// What a crash can lose: whatever is buffered or being written and not yet committed — about the last
// FLUSH_INTERVAL_MS of requests (plus the batch in flight), whose answers have already been sent. A
// graceful stop (close) writes everything. When the database refuses the writes, the events stay buffered
// and are retried.
//
// Backpressure: when more than BACKLOG_EVENTS are waiting (the writer cannot keep up, or the database
// refuses), new requests wait for the writer, up to ADMIT_WAIT_MS, and are then refused (503): the API
// slows down or stops rather than serve unaudited or buffer without bound.
//
// The buffer holds each request packed into bytes from the moment it is recorded (batchMessage.ts), so
// waiting requests are no work for the request thread's garbage collector.
import type { AuditedRequest } from './auditEvent.ts';
import type { AuditWriter } from './writer.ts';
import type { ChainHead } from './batchJournal.ts';
import { PackedRequests, decodeBatch, eventCount } from './batchMessage.ts';

export const FLUSH_INTERVAL_MS = 100;
export const FLUSH_AT_EVENTS = 1000;
export const BATCH_EVENTS = 1000;
export const BACKLOG_EVENTS = 5000;
/** How often the chain's head is anchored in the record's database (see anchor below). */
export const ANCHOR_EVERY_MS = 1000;
const ADMIT_WAIT_MS = 2000;
const RETRY_MS = 1000;

/**
 * A failure that retrying the same events cannot cure (the database refused their content, or building them
 * threw), as opposed to the database being unreachable or busy.
 */
function isPoison(err: unknown): boolean {
  const { code, name } = (err ?? {}) as { code?: unknown; name?: unknown };
  if (name === 'TypeError' || name === 'RangeError') return true;
  return typeof code === 'string' && (/^2[23][0-9A-Z]{3}$/.test(code) || /^SQLITE_(CONSTRAINT|TOOBIG|MISMATCH)/.test(code));
}

export class AuditTrail {
  private buffer = new PackedRequests();
  private buffered = 0;
  private timer?: NodeJS.Timeout;
  private writing: Promise<void> = Promise.resolve();
  private flushQueued = false;
  /** After a batch was refused for its content: write this many requests one at a time, to find the bad one. */
  private isolate = 0;
  /** The last write failed for a reason that may pass (database unreachable): only the retry timer writes. */
  private failing = false;
  /** Woken after every write attempt. */
  private waiters: (() => void)[] = [];

  /** The chain's head after the last write, and the one last anchored. */
  private head?: ChainHead;
  private anchored?: ChainHead;
  private anchoredAt = 0;
  private anchoring: Promise<void> = Promise.resolve();
  private anchorProblem?: string;

  /**
   * `anchor` records the chain's head outside the journal (the record's database): a hash chain shows any
   * entry changed or removed from its middle, but not entries removed from its end, unless something else
   * remembers how far it reached. Called after a write at most every ANCHOR_EVERY_MS, and on close.
   */
  constructor(
    private readonly writer: AuditWriter,
    private readonly log: (message: string, err: unknown) => void = (message, err) => console.error(message, err),
    private readonly anchor?: (head: ChainHead) => Promise<void>,
  ) {}

  /** Buffers one answered request; never throws, never waits. */
  record(request: AuditedRequest): void {
    try {
      this.buffer.push(request);
    } catch (err) {
      const o = request.outcome;
      return this.log(`CareBridge could not keep the audit entry for ${o?.method} /fhir/${o?.path} (by ${actorName(request.actor)}) and dropped it.`, err);
    }
    this.buffered += eventCount(request);
    if (this.buffered >= FLUSH_AT_EVENTS && !this.failing) {
      if (!this.flushQueued) void this.flush();
    } else this.schedule(FLUSH_INTERVAL_MS);
  }

  /**
   * Whether a new request may be served: true at once when the backlog is small (no promise: this runs for
   * every request), else after waiting for the writer; false = refuse it.
   */
  admit(): true | Promise<boolean> {
    return this.buffered <= BACKLOG_EVENTS ? true : this.admitLater();
  }

  private async admitLater(): Promise<boolean> {
    const deadline = Date.now() + ADMIT_WAIT_MS;
    while (this.buffered > BACKLOG_EVENTS) {
      const left = deadline - Date.now();
      if (left <= 0) return false;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => (clearTimeout(timer), resolve()));
      });
    }
    return true;
  }

  /** Writes everything buffered so far; resolves once it is committed (or has failed and been kept for a retry). */
  flush(): Promise<void> {
    this.flushQueued = true;
    const run = this.writing.then(() => this.drain());
    this.writing = run;
    return run;
  }

  /** Stops the timer, writes what is left, and stops the writer. */
  async close(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.flush();
    await this.anchorHead();
    await this.writer.close();
  }

  /** Anchors the head written last, unless it already is; a failure is logged and tried again after the next write. */
  private anchorHead(): Promise<void> {
    this.anchoring = this.anchoring.then(async () => {
      const head = this.head;
      if (!this.anchor || !head || head.seq === this.anchored?.seq) return;
      this.anchoredAt = Date.now();
      try {
        await this.anchor(head);
        this.anchored = head;
      } catch (err) {
        // Said once per cause: a tampered journal would otherwise be reported after every write.
        const cause = (err as Error)?.message ?? String(err);
        if (cause !== this.anchorProblem) this.log(`CareBridge could not anchor the audit chain's head (entry ${head.seq}) in the record's database; trying again after the next write.`, err);
        this.anchorProblem = cause;
        return;
      }
      this.anchorProblem = undefined;
    });
    return this.anchoring;
  }

  private schedule(delay: number): void {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.flush();
    }, delay);
    this.timer.unref();
  }

  private async drain(): Promise<void> {
    this.flushQueued = false;
    while (this.buffer.length) {
      let events = 0;
      let n = 0;
      const limit = this.isolate > 0 ? 1 : BATCH_EVENTS;
      while (n < this.buffer.length && (n === 0 || events + this.buffer.weight(n) <= limit)) events += this.buffer.weight(n++);
      // The batch leaves the buffer only once written: a failed one is still first, in order.
      const batch = this.buffer.message(n);
      try {
        const head = await this.writer.write(batch);
        if (head) this.head = head;
        if (Date.now() - this.anchoredAt >= ANCHOR_EVERY_MS) void this.anchorHead();
        this.buffer.drop(n);
        this.failing = false;
        this.buffered -= events;
        if (this.isolate > 0) this.isolate -= 1;
      } catch (err) {
        if (isPoison(err) && n > 1) {
          this.isolate = n; // one of these cannot be stored: write them one by one
        } else if (isPoison(err)) {
          // Never reached with what the builder produces; kept so one bad entry cannot stop the trail for good.
          // The batch's own bytes may have moved to the writer thread: the entry is read again from the buffer.
          const [dropped] = decodeBatch(this.buffer.message(1));
          this.buffer.drop(1);
          this.buffered -= events;
          if (this.isolate > 0) this.isolate -= 1;
          const o = dropped.outcome;
          this.log(`CareBridge could not store the audit entry for ${o.method} /fhir/${o.path} (HTTP ${o.status}, by ${actorName(dropped.actor)}) and dropped it.`, err);
        } else {
          // Keep the order; try again shortly
          this.log(`CareBridge could not write ${events} audit events (${this.buffered} waiting); retrying in ${RETRY_MS} ms.`, err);
          this.failing = true;
          clearTimeout(this.timer);
          this.timer = undefined;
          this.schedule(RETRY_MS);
          return;
        }
      } finally {
        for (const wake of this.waiters.splice(0)) wake();
      }
    }
  }
}

function actorName(actor: AuditedRequest['actor']): string {
  if (!actor) return 'an unauthenticated caller';
  return actor.kind === 'user' ? `user ${actor.userId}` : `client ${actor.clientId}`;
}
