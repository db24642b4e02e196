// What discharge uses of messaging (issue 4 contract 1): the types come from src/messaging. A handler
// signals "never retry this" by throwing messaging's PermanentFailure, which the wiring passes in (see
// setUpDischarge), so discharge's workflow code never constructs messaging's class itself.
export type { InboundMessage, InboundTransaction, OutboundMessage, Messaging } from '../messaging/index.ts';

/** Messaging's PermanentFailure class (or any Error subclass taking a message). */
export type PermanentFailureClass = new (message: string) => Error;
