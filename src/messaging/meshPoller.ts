// Polls an external MESH mailbox and feeds this server's inbound inbox. Each message is stored (in one
// committed transaction) before it is acknowledged, so a crash between the two means a second download,
// which the inbox's message-id key turns into a no-op: at least once from MESH, once into the inbox. A
// message whose content cannot be decoded is stored as received and dead-lettered, then acknowledged: left
// in the mailbox it would be downloaded and refused on every poll, and seen by no one.
import type { SqlDriver } from '../record/index.ts';
import { markDead, storeInbound } from './inbox.ts';
import { UndecodableMessage, type MeshClient } from './meshClient.ts';

export interface MeshPollerOptions {
  workflowIds: string[];
  pollMs: number;
  now: () => number;
  /** Told when a new message was stored (wake the inbound worker). */
  delivered(): void;
  onError(err: unknown): void;
}

export class MeshPoller {
  private timer?: NodeJS.Timeout;
  private running = false;
  private stopped = false;
  private current?: Promise<number>;
  /** Messages for workflows this server does not take: left in the external mailbox, not fetched again. */
  private readonly notOurs = new Set<string>();

  constructor(private readonly driver: SqlDriver, private readonly client: MeshClient, private readonly options: MeshPollerOptions) {}

  start(): void {
    if (this.running) return;
    this.running = true;
    this.schedule(0);
  }

  private schedule(ms: number): void {
    this.timer = setTimeout(async () => {
      this.current = this.pollOnce().catch((err) => {
        this.options.onError(err);
        return 0;
      });
      await this.current;
      this.current = undefined;
      if (this.running) this.schedule(this.options.pollMs);
    }, ms);
  }

  /** One pass over the external inbox; returns how many new messages were stored. */
  async pollOnce(): Promise<number> {
    let stored = 0;
    for (const id of await this.client.inbox()) {
      if (this.stopped) break;
      if (this.notOurs.has(id)) continue;
      try {
        const first = await this.client.downloadFirst(id);
        if (this.options.workflowIds.length && !this.options.workflowIds.includes(first.message.workflowId)) {
          this.notOurs.add(id);
          continue;
        }
        const { message, undecodable } = await this.client.downloadRest(first).then(
          (message) => ({ message, undecodable: undefined }),
          (err) => {
            if (!(err instanceof UndecodableMessage)) throw err;
            return { message: err.received, undecodable: err.message };
          },
        );
        const now = this.options.now();
        const isNew = await this.driver.transaction(async (tx) => {
          const stored = await storeInbound(tx, { ...message, mailbox: this.client.mailbox, receivedAt: now });
          // Never processed, never dropped: staff see it among the dead letters, with why.
          if (stored && undecodable) await markDead(tx, message.messageId, undecodable, now);
          return stored;
        });
        if (undecodable) this.options.onError(new Error(`${undecodable}; it is kept as received, among the dead letters.`));
        if (isNew && !undecodable) {
          stored++;
          this.options.delivered();
        }
        await this.client.acknowledge(id);
      } catch (err) {
        this.options.onError(err); // tried again on the next poll
      }
    }
    return stored;
  }

  async stop(): Promise<void> {
    this.running = false;
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.current;
  }
}
