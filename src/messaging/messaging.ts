// The messaging service: the Messaging contract, plus the HTTP doors (the built-in MESH mailbox and the
// dead-letter queue) and the background work (inbound worker, external MESH poller) a server runs.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { migrate, type AccessControl, type SqlDriver } from '../record/index.ts';
import type { MessagingConfig } from '../config.ts';
import type { InboundMessage, Messaging, OutboundMessage } from './contract.ts';
import { messagingMigrations } from './schema.ts';
import { findMailbox, mailboxOfOrganisation, normaliseMailboxId } from './mailboxes.ts';
import { startUpload } from './mailboxStore.ts';
import { InboundWorker, type TransactionalInboundHandler } from './inboundWorker.ts';
import { MeshClient } from './meshClient.ts';
import { MeshPoller } from './meshPoller.ts';
import { mailboxRoutes } from './mailboxRoutes.ts';
import { expireUncollected } from './mailboxExpiry.ts';
import { deadLetterRoutes, type DeadLetterListing, type ReplayAttempt } from './deadLetterRoutes.ts';

export interface MessagingService extends Messaging {
  /** /messageexchange/… (when a shared key is configured) and /messaging/dead-letters (when `authenticate` is given). */
  routes(app: FastifyInstance): Promise<void>;
  /** Starts the inbound worker and, when configured, the external MESH poller. */
  start(): void;
  /** Stops polling and handing out messages; handlers in flight get stopWaitMs to finish. */
  close(): Promise<void>;
  /** One pass over the external MESH mailbox now (tests, operators); 0 when none is configured. */
  pollExternal(): Promise<number>;
  /**
   * Expires the built-in mailbox's messages uncollected at `at` (default now), reporting each to its sender;
   * the ids expired. The same sweep discards uploads never completed and expires reports never collected.
   * start() does this every minute.
   */
  expireUncollected(at?: number): Promise<string[]>;
}

export interface MessagingOptions {
  config: MessagingConfig;
  /** Who may use the dead-letter endpoint: the FHIR API's authentication; absent serves no such endpoint. */
  authenticate?: (req: FastifyRequest) => AccessControl | Promise<AccessControl>;
  /** Told of each replay asked for through the dead-letter endpoint, made or refused, with the caller's AccessControl: for the audit trail. */
  replayAudit?: (access: AccessControl, messageId: string, attempt: ReplayAttempt) => void;
  /**
   * Told of each listing of the queue through the dead-letter endpoint, shown or refused, with the caller's
   * AccessControl: for the audit trail. A listing is sent once this resolves, and not when it rejects.
   */
  listingAudit?: (access: AccessControl, listing: DeadLetterListing) => void | Promise<void>;
  now?: () => number;
  log?: (err: unknown) => void;
}

/** How often the built-in mailbox looks for messages left uncollected too long. */
const EXPIRY_SWEEP_MS = 60_000;

export async function migrateMessaging(driver: SqlDriver): Promise<void> {
  await migrate(driver, 'messaging', messagingMigrations(driver.dialect));
}

export async function setUpMessaging(driver: SqlDriver, options: MessagingOptions): Promise<MessagingService> {
  await migrateMessaging(driver);
  const { config } = options;
  const now = options.now ?? Date.now;
  const onError = options.log ?? ((err: unknown) => console.error(`messaging: ${(err as Error)?.message ?? err}`));
  const worker = new InboundWorker(driver, { maxAttempts: config.maxAttempts, retryBaseMs: config.retryBaseMs, stopWaitMs: config.stopWaitMs, now, onError });
  const client = config.client ? new MeshClient(config.client) : undefined;
  const poller = client && config.client
    ? new MeshPoller(driver, client, { workflowIds: config.client.workflowIds, pollMs: config.client.pollMs, now, delivered: () => worker.wake(), onError })
    : undefined;
  const expiryMs = config.expiryDays * 86_400_000;
  const expire = async (at: number) => {
    const sweep = await expireUncollected(driver, at, expiryMs);
    if (sweep.reportedHere) worker.wake();
    return sweep.expired;
  };
  // Due is by the stored time a message was accepted, so this timer only says how soon after that it goes.
  let sweeper: NodeJS.Timeout | undefined;
  let sweeping: Promise<unknown> | undefined;
  const sweepNow = () => {
    sweeping = expire(now()).catch(onError).finally(() => {
      sweeping = undefined;
      if (sweeper) sweeper = setTimeout(sweepNow, EXPIRY_SWEEP_MS);
    });
  };

  return {
    onInbound(workflowIds, handler: (msg: InboundMessage) => Promise<void>) {
      worker.register(workflowIds, handler);
      worker.wake();
    },

    onInboundInTransaction(workflowIds, handler, prepare) {
      worker.registerInTransaction(workflowIds, handler as TransactionalInboundHandler, prepare);
      worker.wake();
    },

    onDeliveryReport(workflowIds, handler) {
      worker.registerReports(workflowIds, handler);
      worker.wake();
    },

    async send(msg: OutboundMessage) {
      const to = normaliseMailboxId(msg.to);
      if (!msg.workflowId?.trim()) throw new Error('A MESH message needs a workflow id.');
      if (!msg.body?.length) throw new Error('A MESH message needs content.');
      const recipient = await findMailbox(driver, to);
      if (recipient?.hosted) {
        // Hosted here: straight into the built-in mailbox, as if sent to /messageexchange/{from}/outbox.
        const upload = await startUpload(driver, {
          sender: normaliseMailboxId(msg.from), recipient: to, workflowId: msg.workflowId,
          subject: msg.subject, localId: msg.localId, fileName: msg.fileName, contentType: msg.contentType,
        }, 1, msg.body, now());
        if (upload.deliveredHere) worker.wake();
        return { messageId: upload.messageId };
      }
      if (!client) throw new Error(`No route to MESH mailbox ${to}: it is not hosted here and no external MESH is configured (CAREBRIDGE_MESH_URL).`);
      // The external MESH knows this server by the client's mailbox, whatever `from` says.
      return client.send({ ...msg, to });
    },

    async mailboxForOrganisation(ods) {
      return mailboxOfOrganisation(driver, ods);
    },

    async organisationForMailbox(mailbox) {
      return (await findMailbox(driver, mailbox))?.ods;
    },

    async routes(app) {
      if (config.sharedKey) {
        await app.register(mailboxRoutes, { driver, sharedKey: config.sharedKey, clockSkewMinutes: config.clockSkewMinutes, expiryMs, now, delivered: () => worker.wake() });
      }
      if (options.authenticate) {
        await app.register(deadLetterRoutes, {
          driver, authenticate: options.authenticate, now,
          replayed: (access, messageId, attempt) => {
            if (attempt.ok) worker.wake();
            options.replayAudit?.(access, messageId, attempt);
          },
          listed: (access, listing) => options.listingAudit?.(access, listing),
        });
      }
    },

    start() {
      worker.start();
      poller?.start();
      if (!sweeper) sweeper = setTimeout(sweepNow, 0);
    },

    async close() {
      clearTimeout(sweeper);
      sweeper = undefined;
      await sweeping;
      await poller?.stop();
      await worker.stop();
      client?.close();
    },

    pollExternal: async () => (poller ? poller.pollOnce() : 0),

    expireUncollected: (at) => expire(at ?? now()),
  };
}
