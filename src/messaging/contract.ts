// What other capabilities (discharge, later red bag) use: contract 1 of issue 4. Keep names and shapes;
// extend, don't change.

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
}

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

export interface Messaging {
  /** The handler for messages with these workflow ids (one handler per workflow id; a later one replaces it). */
  onInbound(workflowIds: string[], handler: (msg: InboundMessage) => Promise<void>): void;
  /** Sends through the built-in mailbox when `to` is hosted here, else through the external MESH client. */
  send(msg: OutboundMessage): Promise<{ messageId: string }>;
  mailboxForOrganisation(ods: string): Promise<string | undefined>;
  organisationForMailbox(mailbox: string): Promise<string | undefined>;
}
