// Runs stored inbound messages through the handler registered for their workflow id. A message is woken
// at once when it arrives on this node, and found by a short poll when another node stored it or a retry
// falls due. Failures retry with exponential backoff; a PermanentFailure, an unknown workflow id or too
// many failures send the message to the dead-letter queue with its reason. A NotForThisService goes back to
// its mailbox for the MESH client that uses it, or, with no such client, to the dead-letter queue. Nothing
// is ever dropped.
import type { SqlDriver } from '../record/index.ts';
import { NotForThisService, PermanentFailure, type InboundMessage } from './contract.ts';
import { claimDue, markDead, markDone, markRetry, releaseClaims } from './inbox.ts';
import { holdForMailboxClient } from './mailboxStore.ts';

export type InboundHandler = (msg: InboundMessage) => Promise<void>;

export interface InboundWorkerOptions {
  maxAttempts: number;
  retryBaseMs: number;
  stopWaitMs: number;
  /** How often to look for messages stored by other nodes and retries that fell due. */
  pollMs?: number;
  /** A handler still running after this long is presumed dead and its message handed to another node. */
  leaseMs?: number;
  /** Messages handled at the same time on this node. */
  concurrency?: number;
  now?: () => number;
  onError?: (err: unknown) => void;
}

const MAX_BACKOFF_MS = 15 * 60_000;

export class InboundWorker {
  private readonly handlers = new Map<string, InboundHandler>();
  private readonly inFlight = new Map<string, Promise<void>>();
  private running = false;
  private timer?: NodeJS.Timeout;
  private pass?: Promise<void>;
  private again = false;
  private readonly now: () => number;

  constructor(private readonly driver: SqlDriver, private readonly options: InboundWorkerOptions) {
    this.now = options.now ?? Date.now;
  }

  register(workflowIds: string[], handler: InboundHandler): void {
    for (const id of workflowIds) this.handlers.set(id, handler);
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
    for (;;) {
      const room = concurrency - this.inFlight.size;
      if (!this.running || room <= 0) return;
      const claimed = await claimDue(this.driver, this.now(), this.options.leaseMs ?? 5 * 60_000, room);
      if (!claimed.length) return;
      for (const msg of claimed) {
        const work = this.handle(msg).finally(() => {
          this.inFlight.delete(msg.messageId);
          this.wake(); // a slot is free
        });
        this.inFlight.set(msg.messageId, work);
      }
    }
  }

  private async handle(msg: InboundMessage & { attempts: number }): Promise<void> {
    const { attempts, ...message } = msg;
    const handler = this.handlers.get(message.workflowId);
    try {
      if (!handler) throw new PermanentFailure(`No handler is registered for workflow id ${message.workflowId}.`);
      await handler(message);
      if (!this.running && !this.inFlight.has(message.messageId)) return; // handed back by stop()
      await markDone(this.driver, message.messageId, this.now());
    } catch (err) {
      const reason = err instanceof Error ? err.message || err.name : String(err);
      try {
        if (err instanceof NotForThisService) await this.passOn(message, reason);
        else if (err instanceof PermanentFailure) await markDead(this.driver, message.messageId, reason, this.now());
        else if (attempts >= this.options.maxAttempts) await markDead(this.driver, message.messageId, `Failed ${attempts} times; last error: ${reason}`, this.now());
        else await markRetry(this.driver, message.messageId, reason, this.now() + Math.min(MAX_BACKOFF_MS, this.options.retryBaseMs * 2 ** (attempts - 1)));
      } catch (storeErr) {
        // The lease runs out and the message is tried again: late, never lost.
        this.options.onError?.(storeErr);
      }
    }
  }

  /** Not this service's business: held for the mailbox's MESH client when one uses it, else a dead letter. */
  private async passOn(message: InboundMessage, reason: string): Promise<void> {
    if (await holdForMailboxClient(this.driver, message.messageId, `Held in mailbox ${message.mailbox} for its MESH client: ${reason}`, this.now())) return;
    await markDead(this.driver, message.messageId, `${reason} No MESH client has signed in to mailbox ${message.mailbox}, so it is not held there for one.`, this.now());
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
