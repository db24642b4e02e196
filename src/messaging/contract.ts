// What other capabilities (discharge, later red bag) use: contract 1 of issue 4. Keep names and shapes;
// extend, don't change.
import type { SqlExecutor } from '../record/index.ts';

export interface InboundMessage {
  messageId: string;
  /** The local mailbox it arrived in. */
  mailbox: string;
  from: string;
  to: string;
  workflowId: string;
  subject?: string;
  localId?: string;
  fileName?: string;
  contentType?: string;
  body: Buffer;
  receivedAt: number;
  /**
   * Set on a MESH report (mex-MessageType REPORT): MESH saying that a message sent from here was not
   * delivered. Its body is empty and its workflow id is the undelivered message's. Messaging hands reports
   * to the onDeliveryReport handler for that workflow id, never to onInbound's.
   */
  report?: MeshReport;
}

/** What a MESH report says, from its headers. */
export interface MeshReport {
  /** The MESH message id of the message the report is about (mex-LinkedMsgID): what send() returned for it. */
  linkedMessageId?: string;
  /** mex-StatusCode, e.g. 14: not collected by its recipient in time. */
  statusCode?: string;
  statusEvent?: string;
  statusDescription?: string;
}

/** A MESH report as a delivery-report handler gets it: always naming the message it is about. */
export type DeliveryReport = InboundMessage & { report: MeshReport & { linkedMessageId: string } };

/** Thrown by a handler for a message that can never be processed: it goes to the dead-letter queue at once, with this message as its reason. */
export class PermanentFailure extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PermanentFailure';
  }
}

/**
 * Thrown by a handler for a message this service has no business with (an answer to a notice someone else
 * sent through a mailbox hosted here). When a MESH client uses the message's mailbox (it has signed in to
 * /messageexchange), messaging puts the message back in that mailbox's inbox for the client to download;
 * otherwise it goes to the dead-letter queue, as a PermanentFailure would, with this message as its reason.
 */
export class NotForThisService extends PermanentFailure {
  constructor(message: string) {
    super(message);
    this.name = 'NotForThisService';
  }
}

export interface OutboundMessage {
  from: string;
  to: string;
  workflowId: string;
  subject?: string;
  localId?: string;
  fileName?: string;
  contentType?: string;
  body: Buffer;
}

/**
 * The transaction messaging marks an inbound message done in, lent to its handler. Several messages share
 * one (one commit for a batch); each runs inside its own savepoint, so a message that fails is undone alone.
 */
export interface InboundTransaction {
  /** Write here and the writes commit together with the message's "done", or not at all. */
  tx: SqlExecutor;
  /** Runs once the transaction has committed (audit, waking other workers); never when it rolled back. */
  afterCommit(fn: () => void): void;
  /**
   * Sends the message to the dead-letter queue with this reason while keeping what the handler wrote (say,
   * a rejection queued to the sender). Throwing instead undoes the handler's writes, then dead-letters or retries.
   */
  deadLetter(reason: string): void;
}

export interface Messaging {
  /** The handler for messages with these workflow ids (one handler per workflow id; a later one replaces it). */
  onInbound(workflowIds: string[], handler: (msg: InboundMessage) => Promise<void>): void;
  /**
   * Like onInbound, for a handler whose work is all database writes on messaging's own database: it runs in
   * messaging's transaction (shared by a batch of messages, so a busy inbox costs one commit per batch, not
   * several per message) and the message is done exactly when its writes commit. `prepare`, when given,
   * runs for every message of a batch before its transaction (say, reading the message on another thread),
   * so the transaction, which holds the database's write lock, is short; the handler gets its result, or
   * undefined when it failed (the handler then does that work itself).
   */
  onInboundInTransaction<P = undefined>(workflowIds: string[], handler: (msg: InboundMessage, transaction: InboundTransaction, prepared: P | undefined) => Promise<void>, prepare?: (msg: InboundMessage) => Promise<P>): void;
  /**
   * The handler for MESH reports about messages this service sent with these workflow ids (one per workflow
   * id; a later one replaces it): it settles the linked message as not delivered, telling the people who
   * rely on it, and returns whether it knew that message. A report no handler knows, or with no handler,
   * goes to the dead-letter queue with why: kept visible, never dropped.
   */
  onDeliveryReport(workflowIds: string[], handler: (report: DeliveryReport) => Promise<boolean>): void;
  /** Sends through the built-in mailbox when `to` is hosted here, else through the external MESH client. */
  send(msg: OutboundMessage): Promise<{ messageId: string }>;
  mailboxForOrganisation(ods: string): Promise<string | undefined>;
  organisationForMailbox(mailbox: string): Promise<string | undefined>;
}
