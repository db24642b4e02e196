// Messaging: the built-in MESH mailbox (/messageexchange), a client for an external MESH, and the inbound
// inbox (idempotent by message id, retries, dead letters). Other capabilities use only what is exported here.
export { PermanentFailure, NotForThisService, type DeliveryReport, type MeshReport, type InboundMessage, type InboundTransaction, type Messaging, type OutboundMessage } from './contract.ts';
export { setUpMessaging, migrateMessaging, type MessagingService, type MessagingOptions } from './messaging.ts';
export { addMailbox, setMailboxPassword, listMailboxes, normaliseMailboxId, type Mailbox, type NewMailbox } from './mailboxes.ts';
export { listDeadLetters, replayDeadLetter, inboxState, type DeadLetter, type InboxStatus } from './inbox.ts';
export { meshAuthorisationHeader, meshTimestamp } from './meshAuth.ts';
export { pageOfDeadLetters, countDeadLetters, replayOutcome, awaitReplayOutcome, MAX_DEAD_LETTER_PAGE, type ListedDeadLetter, type DeadLetterPage, type ReplayOutcome } from './deadLetterPages.ts';
export type { ReplayAttempt, DeadLetterListing } from './deadLetterRoutes.ts';
