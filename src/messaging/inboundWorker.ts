// Runs stored inbound messages through the handler registered for their workflow id. A message is woken
// at once when it arrives on this node, and found by a short poll when another node stored it or a retry
// falls due. Failures retry with exponential backoff; a PermanentFailure, an unknown workflow id or too
// many failures send the message to the dead-letter queue with its reason. A NotForThisService goes back to
// its mailbox for the MESH client that uses it, or, with no such client, to the dead-letter queue. Nothing
// is ever dropped. A MESH report (a message sent from here was not delivered) goes to the report handler of
// its workflow id, which settles the message it names; one that names no message the handler knows, or
// whose workflow has no report handler, is a dead letter saying so. Handlers that work in messaging's
// transaction take their messages in batches: one transaction, one commit, for up to batchSize messages,
// each in its own savepoint (see runBatch).
import type { SqlDriver, SqlExecutor } from '../record/index.ts';
import { NotForThisService, PermanentFailure, type DeliveryReport, type InboundMessage, type InboundTransaction } from './contract.ts';
import { claimDue, markDead, markDone, markRetry, releaseClaims } from './inbox.ts';
import { holdForMailboxClientIn } from './mailboxStore.ts';

export type InboundHandler = (msg: InboundMessage) => Promise<void>;
export type TransactionalInboundHandler = (msg: InboundMessage, transaction: InboundTransaction, prepared: unknown) => Promise<void>;
/** Settles the message a MESH report names as not delivered; false when it knows no such message. */
export type DeliveryReportHandler = (report: DeliveryReport) => Promise<boolean>;
/** Work for a message that needs no transaction, done before its batch's transaction (see registerInTransaction). */
export type PrepareInbound = (msg: InboundMessage) => Promise<unknown>;

type Registered = { inTransaction: false; handler: InboundHandler } | { inTransaction: true; handler: TransactionalInboundHandler; prepare?: PrepareInbound };
type Claimed = InboundMessage & { attempts: number };

export interface InboundWorkerOptions {
  maxAttempts: number;
  retryBaseMs: number;
  stopWaitMs: number;
  /** How often to look for messages stored by other nodes and retries that fell due. */
  pollMs?: number;
  /** A handler still running after this long is presumed dead and its message handed to another node. */
  leaseMs?: number;
  /** Units of work (one message, or one batch) handled at the same time on this node. */
  concurrency?: number;
  /** The most messages of transactional handlers committed together in one transaction. */
  batchSize?: number;
  now?: () => number;
  onError?: (err: unknown) => void;
}

const MAX_BACKOFF_MS = 15 * 60_000;
const SAVEPOINT = 'inbound_message';

export class InboundWorker {
  private readonly handlers = new Map<string, Registered>();
  private readonly reportHandlers = new Map<string, DeliveryReportHandler>();
  private readonly inFlight = new Map<string, Promise<void>>();
  private units = 0;
  private running = false;
  private timer?: NodeJS.Timeout;
  private pass?: Promise<void>;
  private again = false;
  private readonly now: () => number;

  constructor(private readonly driver: SqlDriver, private readonly options: InboundWorkerOptions) {
    this.now = options.now ?? Date.now;
  }

  register(workflowIds: string[], handler: InboundHandler): void {
    for (const id of workflowIds) this.handlers.set(id, { inTransaction: false, handler });
  }

  /**
   * A handler that works in messaging's transaction (see InboundTransaction): its messages go in batches.
   * `prepare` runs for each message of a batch, all at once, before the batch's transaction; the handler is
   * given its result, or undefined when it failed.
   */
  registerInTransaction(workflowIds: string[], handler: TransactionalInboundHandler, prepare?: PrepareInbound): void {
    for (const id of workflowIds) this.handlers.set(id, { inTransaction: true, handler, prepare });
  }

  /** The handler for MESH reports about messages sent with these workflow ids. */
  registerReports(workflowIds: string[], handler: DeliveryReportHandler): void {
    for (const id of workflowIds) this.reportHandlers.set(id, handler);
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.wake();
  }

  /** Looks for due messages now (called when one was just stored here). */
  wake(): void {
    if (!this.running) return;
    if (this.pass) {
      this.again = true;
      return;
    }
    clearTimeout(this.timer);
    this.pass = this.runPass()
      .catch((err) => this.options.onError?.(err))
      .finally(() => {
        this.pass = undefined;
        if (!this.running) return;
        if (this.again) {
          this.again = false;
          this.wake();
        } else {
          this.timer = setTimeout(() => this.wake(), this.options.pollMs ?? 500);
        }
      });
  }

  private async runPass(): Promise<void> {
    const concurrency = this.options.concurrency ?? 4;
    const batchSize = this.options.batchSize ?? 16;
    const batching = [...this.handlers.values()].some((h) => h.inTransaction);
    for (;;) {
      const room = concurrency - this.units;
      if (!this.running || room <= 0) return;
      // With batches a claim fills one; messages of other handlers among it are each a unit of their own,
      // so a mixed inbox may run up to batchSize units at once for a moment.
      const claimed = await claimDue(this.driver, this.now(), this.options.leaseMs ?? 5 * 60_000, batching ? batchSize : room);
      if (!claimed.length) return;
      const batch = claimed.filter((m) => !m.report && this.handlers.get(m.workflowId)?.inTransaction);
      if (batch.length) this.startUnit(batch, () => this.runBatch(batch));
      for (const msg of claimed) if (!batch.includes(msg)) this.startUnit([msg], () => this.handle(msg));
    }
  }

  private startUnit(messages: Claimed[], run: () => Promise<void>): void {
    this.units++;
    const work = run().finally(() => {
      this.units--;
      for (const msg of messages) this.inFlight.delete(msg.messageId);
      this.wake(); // a slot is free
    });
    for (const msg of messages) this.inFlight.set(msg.messageId, work);
  }

  /** A message on its own: the handler, then (in its transaction, for a transactional one) marked done. */
  private async handle(msg: Claimed): Promise<void> {
    const { attempts, ...message } = msg;
    const registered = this.handlers.get(message.workflowId);
    try {
      if (message.report) return await this.settleReport(message);
      if (!registered) throw new PermanentFailure(`No handler is registered for workflow id ${message.workflowId}.`);
      if (registered.inTransaction) {
        const committed: Array<() => void> = [];
        const [prepared] = await this.prepare([msg]);
        await this.driver.transaction((tx) => this.runInTransaction(tx, registered.handler, message, prepared, committed));
        this.runAfterCommit(committed);
        return;
      }
      await registered.handler(message);
      if (!this.running && !this.inFlight.has(message.messageId)) return; // handed back by stop()
      await markDone(this.driver, message.messageId, this.now());
    } catch (err) {
      try {
        await this.settleFailure(this.driver, msg, err);
      } catch (storeErr) {
        // The lease runs out and the message is tried again: late, never lost.
        this.options.onError?.(storeErr);
      }
    }
  }

  /**
   * A MESH report, to the report handler of its workflow id: done once the handler has settled the message it
   * names; a dead letter, with why, when there is no handler or the handler knows no such message.
   */
  private async settleReport(message: InboundMessage): Promise<void> {
    const report = message.report!;
    const about = `MESH reports that message ${report.linkedMessageId ?? '(none named)'}${message.localId ? ` (local id ${message.localId})` : ''} of workflow ${message.workflowId} was not delivered` +
      `${report.statusCode || report.statusDescription ? ` (status ${[report.statusCode, report.statusDescription].filter(Boolean).join(': ')})` : ''}`;
    const handler = this.reportHandlers.get(message.workflowId);
    if (!report.linkedMessageId) throw new PermanentFailure(`${about}, but does not say which (no mex-LinkedMsgID); nobody has been told.`);
    if (!handler) throw new PermanentFailure(`${about}; no workflow here takes reports for workflow id ${message.workflowId}, so nobody has been told.`);
    const known = await handler(message as DeliveryReport);
    if (!this.running && !this.inFlight.has(message.messageId)) return; // handed back by stop()
    if (known) await markDone(this.driver, message.messageId, this.now());
    else await markDead(this.driver, message.messageId, `${about}, but no message sent from here has that MESH id; nobody has been told.`, this.now());
  }

  /**
   * Messages of transactional handlers in one transaction, so a busy inbox pays one commit per batch. Each
   * message runs in a savepoint: one that fails is rolled back alone and marked for retry or dead in the
   * same transaction, and the others stay done. Should the transaction itself fail (its commit, or a
   * failure a savepoint cannot undo), nothing of it happened and each message is tried again on its own.
   */
  private async runBatch(batch: Claimed[]): Promise<void> {
    const committed: Array<() => void> = [];
    const prepared = await this.prepare(batch);
    try {
      await this.driver.transaction(async (tx) => {
        for (const [i, msg] of batch.entries()) {
          if (!this.running && !this.inFlight.has(msg.messageId)) continue; // handed back by stop()
          await this.handleInBatch(tx, msg, prepared[i], committed);
        }
      });
    } catch (err) {
      this.options.onError?.(err);
      for (const msg of batch) if (this.running || this.inFlight.has(msg.messageId)) await this.handle(msg);
      return;
    }
    this.runAfterCommit(committed);
  }

  /** Each message's prepared result (undefined where there is no prepare step, or it failed), in order. */
  private async prepare(messages: Claimed[]): Promise<unknown[]> {
    const results = await Promise.allSettled(messages.map((msg) => {
      const registered = this.handlers.get(msg.workflowId);
      return registered?.inTransaction && registered.prepare ? registered.prepare(msg) : Promise.resolve(undefined);
    }));
    return results.map((r) => (r.status === 'fulfilled' ? r.value : undefined));
  }

  private async handleInBatch(tx: SqlExecutor, msg: Claimed, prepared: unknown, committed: Array<() => void>): Promise<void> {
    const { attempts: _attempts, ...message } = msg;
    const registered = this.handlers.get(message.workflowId);
    const mine: Array<() => void> = [];
    await tx.run(`SAVEPOINT ${SAVEPOINT}`);
    try {
      if (!registered?.inTransaction) throw new PermanentFailure(`No handler is registered for workflow id ${message.workflowId}.`);
      await this.runInTransaction(tx, registered.handler, message, prepared, mine);
      await tx.run(`RELEASE SAVEPOINT ${SAVEPOINT}`);
      committed.push(...mine);
    } catch (err) {
      await tx.run(`ROLLBACK TO SAVEPOINT ${SAVEPOINT}`);
      await tx.run(`RELEASE SAVEPOINT ${SAVEPOINT}`);
      await this.settleFailure(tx, msg, err);
    }
  }

  /** The handler in `tx`, then the message marked done (or dead, when the handler asked) in the same transaction. */
  private async runInTransaction(tx: SqlExecutor, handler: TransactionalInboundHandler, message: InboundMessage, prepared: unknown, committed: Array<() => void>): Promise<void> {
    let deadReason: string | undefined;
    await handler(message, { tx, afterCommit: (fn) => void committed.push(fn), deadLetter: (reason) => void (deadReason = reason) }, prepared);
    if (deadReason === undefined) await markDone(tx, message.messageId, this.now());
    else await markDead(tx, message.messageId, deadReason, this.now());
  }

  /** Dead letter or retry with backoff, in `db` (a batch's transaction, or the driver for one of its own). */
  private async settleFailure(db: SqlDriver | SqlExecutor, msg: Claimed, err: unknown): Promise<void> {
    const reason = err instanceof Error ? err.message || err.name : String(err);
    if (err instanceof NotForThisService) await this.passOn(db, msg, reason);
    else if (err instanceof PermanentFailure) await markDead(db, msg.messageId, reason, this.now());
    else if (msg.attempts >= this.options.maxAttempts) await markDead(db, msg.messageId, `Failed ${msg.attempts} times; last error: ${reason}`, this.now());
    else await markRetry(db, msg.messageId, reason, this.now() + Math.min(MAX_BACKOFF_MS, this.options.retryBaseMs * 2 ** (msg.attempts - 1)));
  }

  /** Not this service's business: back to its mailbox for the MESH client that uses it, else a dead letter. */
  private async passOn(db: SqlDriver | SqlExecutor, message: Claimed, reason: string): Promise<void> {
    const hold = (tx: SqlExecutor) => holdForMailboxClientIn(tx, message.messageId, `Held in mailbox ${message.mailbox} for its MESH client: ${reason}`, this.now());
    const held = 'transaction' in db ? await db.transaction(hold) : await hold(db);
    if (!held) await markDead(db, message.messageId, `${reason} No MESH client has signed in to mailbox ${message.mailbox}, so it is not held there for one.`, this.now());
  }

  private runAfterCommit(fns: Array<() => void>): void {
    for (const fn of fns) {
      try {
        fn();
      } catch (err) {
        this.options.onError?.(err);
      }
    }
  }

  /** Stops claiming; waits up to stopWaitMs for handlers in flight, then hands their messages back. */
  async stop(): Promise<void> {
    this.running = false;
    clearTimeout(this.timer);
    await this.pass?.catch(() => undefined);
    const pending = [...this.inFlight.entries()];
    let waited: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.allSettled(pending.map(([, p]) => p)),
      new Promise((resolve) => (waited = setTimeout(resolve, this.options.stopWaitMs))),
    ]);
    clearTimeout(waited);
    const unfinished = [...this.inFlight.keys()];
    this.inFlight.clear();
    await releaseClaims(this.driver, unfinished).catch((err) => this.options.onError?.(err));
  }
}
