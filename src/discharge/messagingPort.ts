// The shape of the Messaging contract (src/messaging/index.ts, issue 4 contract 1) as discharge uses it.
// Declared here so discharge builds and is tested before messaging lands; messaging's object satisfies it
// structurally. A handler signals "never retry this" by throwing messaging's PermanentFailure, which the
// wiring passes in (see setUpDischarge), so discharge never needs messaging's class at build time.

export interface InboundMessage {
  messageId: string;
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
  onInbound(workflowIds: string[], handler: (msg: InboundMessage) => Promise<void>): void;
  send(msg: OutboundMessage): Promise<{ messageId: string }>;
  mailboxForOrganisation(ods: string): Promise<string | undefined>;
  organisationForMailbox(mailbox: string): Promise<string | undefined>;
}

/** Messaging's PermanentFailure class (or any Error subclass taking a message). */
export type PermanentFailureClass = new (message: string) => Error;
