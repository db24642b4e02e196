// Polls an external MESH mailbox and feeds this server's inbound inbox. Each message is stored (in one
// committed transaction) before it is acknowledged, so a crash between the two means a second download,
// which the inbox's message-id key turns into a no-op: at least once from MESH, once into the inbox. A
// message whose content cannot be decoded is stored as received and dead-lettered, then acknowledged: left
// in the mailbox it would be downloaded and refused on every poll, and seen by no one.
//
// MESH lists an inbox 500 ids a page. Messages of workflows this server does not take stay in the mailbox
// (another system shares it), so a pass follows the pages (links.next) to reach what waits behind them:
// read only the first page, 500 such messages would hide every notice after them, with nothing logged.
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

/** How often the mailbox is validated (MESH's handshake): MESH asks for it once every 24 hours. */
export const HANDSHAKE_INTERVAL_MS = 24 * 3600_000;

/** The most inbox pages one pass reads (5,000 ids); the next pass goes on from where it stopped. */
export const MAX_PAGES_PER_PASS = 10;

export class MeshPoller {
  private timer?: NodeJS.Timeout;
  private running = false;
  private stopped = false;
  private current?: Promise<number>;
  /** Messages for workflows this server does not take, by id, with their workflow: left in the external mailbox, not fetched again. */
  private notOurs = new Map<string, string>();
  /** Where the last pass stopped at MAX_PAGES_PER_PASS, so a mailbox longer than that is read to its end over several passes. */
  private resumeFrom?: string;
  /** When MESH last accepted this client's handshake. */
  private validatedAt?: number;

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

  /** One pass over the external inbox, every page of it (up to MAX_PAGES_PER_PASS); returns how many new messages were stored. */
  async pollOnce(): Promise<number> {
    await this.validateMailboxWhenDue();
    let stored = 0;
    let continueFrom = this.resumeFrom;
    this.resumeFrom = undefined;
    const fromStart = continueFrom === undefined;
    const seen = new Set<string>();
    const newlyLeft = new Map<string, string>();
    for (let page = 1; ; page++) {
      const listed = await this.client.inboxPage(continueFrom);
      for (const id of listed.ids) {
        if (this.stopped) return stored;
        seen.add(id);
        stored += await this.take(id, newlyLeft);
      }
      if (!listed.continueFrom || listed.continueFrom === continueFrom) break;
      if (page >= MAX_PAGES_PER_PASS) {
        this.resumeFrom = listed.continueFrom;
        break;
      }
      continueFrom = listed.continueFrom;
    }
    // A whole pass from the first page saw every message still there: forget those others have collected.
    if (fromStart && !this.resumeFrom) for (const id of this.notOurs.keys()) if (!seen.has(id)) this.notOurs.delete(id);
    if (newlyLeft.size) this.warnLeft(newlyLeft);
    return stored;
  }

  /** A handshake that fails is said and tried again next pass; it does not hold up collecting messages. */
  private async validateMailboxWhenDue(): Promise<void> {
    const now = this.options.now();
    if (this.validatedAt !== undefined && now - this.validatedAt < HANDSHAKE_INTERVAL_MS) return;
    try {
      await this.client.handshake();
      this.validatedAt = now;
    } catch (err) {
      this.options.onError(err);
    }
  }

  /** Takes one listed message: 1 when it was newly stored for a workflow here, else 0. */
  private async take(id: string, newlyLeft: Map<string, string>): Promise<number> {
    if (this.notOurs.has(id)) return 0;
    try {
      const first = await this.client.downloadFirst(id);
      if (this.options.workflowIds.length && !this.options.workflowIds.includes(first.message.workflowId)) {
        this.notOurs.set(id, first.message.workflowId);
        newlyLeft.set(id, first.message.workflowId);
        return 0;
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
      const taken = isNew && !undecodable ? 1 : 0;
      if (taken) this.options.delivered();
      await this.client.acknowledge(id).catch((err) => this.options.onError(err)); // stored: a second download is a no-op
      return taken;
    } catch (err) {
      this.options.onError(err); // tried again on the next poll
      return 0;
    }
  }

  /**
   * Says, once per message, that messages of other workflows are being left in the shared mailbox: they are
   * another system's to collect, and until it does they fill the mailbox and lengthen every poll.
   */
  private warnLeft(newlyLeft: Map<string, string>): void {
    const byWorkflow = new Map<string, number>();
    for (const workflow of this.notOurs.values()) byWorkflow.set(workflow, (byWorkflow.get(workflow) ?? 0) + 1);
    const counts = [...byWorkflow].map(([workflow, n]) => `${n} of ${workflow || '(no workflow id)'}`).join(', ');
    this.options.onError(new Error(
      `MESH mailbox ${this.client.mailbox}: ${newlyLeft.size} more message(s) of workflows this server does not take were found and left unacknowledged for another system to collect; ` +
      `${this.notOurs.size} such message(s) wait there now (${counts}). This server takes only ${this.options.workflowIds.join(', ')} (CAREBRIDGE_MESH_WORKFLOW_IDS).`,
    ));
  }

  async stop(): Promise<void> {
    this.running = false;
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.current;
  }
}
