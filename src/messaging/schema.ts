// The messaging tables (component 'messaging'): the built-in MESH mailbox (mailboxes, nonces, messages and
// their chunks) and the inbound inbox with its dead letters. Documented table by table in docs/architecture.md.
import type { Migration, SqlDriver } from '../record/index.ts';

/** Message bodies are bytes: BLOB on SQLite, BYTEA on PostgreSQL. */
export function messagingMigrations(dialect: SqlDriver['dialect']): Migration[] {
  const bytes = dialect === 'postgres' ? 'BYTEA' : 'BLOB';
  return [
    {
      version: 1,
      name: 'MESH mailboxes, nonces, messages, chunks; inbound inbox',
      sql: `
CREATE TABLE mesh_mailboxes (
  mailbox_id TEXT PRIMARY KEY,
  ods TEXT NOT NULL,
  password_sealed TEXT,
  polled SMALLINT NOT NULL DEFAULT 0,
  created_ms BIGINT NOT NULL
);
CREATE INDEX mesh_mailboxes_ods ON mesh_mailboxes (ods);

CREATE TABLE mesh_nonces (
  mailbox_id TEXT NOT NULL,
  nonce TEXT NOT NULL,
  nonce_count TEXT NOT NULL,
  expires_ms BIGINT NOT NULL,
  PRIMARY KEY (mailbox_id, nonce, nonce_count)
);
CREATE INDEX mesh_nonces_expires ON mesh_nonces (expires_ms);

CREATE TABLE mesh_messages (
  message_id TEXT PRIMARY KEY,
  sender TEXT NOT NULL,
  recipient TEXT NOT NULL,
  workflow_id TEXT NOT NULL,
  subject TEXT,
  local_id TEXT,
  file_name TEXT,
  content_type TEXT,
  checksum TEXT,
  chunk_count INTEGER NOT NULL,
  status TEXT NOT NULL,
  created_ms BIGINT NOT NULL,
  accepted_ms BIGINT,
  acknowledged_ms BIGINT
);
CREATE INDEX mesh_messages_inbox ON mesh_messages (recipient, status, accepted_ms);
CREATE INDEX mesh_messages_sender ON mesh_messages (sender, local_id);

CREATE TABLE mesh_chunks (
  message_id TEXT NOT NULL,
  chunk_no INTEGER NOT NULL,
  body ${bytes} NOT NULL,
  PRIMARY KEY (message_id, chunk_no)
);

CREATE TABLE messaging_inbox (
  message_id TEXT PRIMARY KEY,
  mailbox TEXT NOT NULL,
  sender TEXT NOT NULL,
  recipient TEXT NOT NULL,
  workflow_id TEXT NOT NULL,
  subject TEXT,
  local_id TEXT,
  file_name TEXT,
  content_type TEXT,
  body ${bytes} NOT NULL,
  received_ms BIGINT NOT NULL,
  status TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  next_attempt_ms BIGINT NOT NULL,
  lease_until_ms BIGINT,
  last_error TEXT,
  finished_ms BIGINT
);
CREATE INDEX messaging_inbox_due ON messaging_inbox (status, next_attempt_ms);
`,
    },
    {
      version: 2,
      name: 'when a MESH client first signed in to a hosted mailbox',
      // A message this service has no business with is held for the mailbox's client only when one uses it.
      sql: 'ALTER TABLE mesh_mailboxes ADD COLUMN client_seen_ms BIGINT;',
    },
    {
      version: 3,
      name: 'inbound message bodies in a table of their own',
      // SQLite rewrites a whole row, overflow pages and all, on any UPDATE that changes its size: with the
      // body in the row, claiming a 20 KB notice and marking it done wrote ~56 KB of WAL. The body is written
      // once; the row that changes as the message is worked on stays small.
      announce: 'moving inbound message bodies into a table of their own once (messaging migration 3); this can take a while on a large inbox.',
      sql: `
CREATE TABLE messaging_inbox_bodies (
  message_id TEXT PRIMARY KEY,
  body ${bytes} NOT NULL
);
INSERT INTO messaging_inbox_bodies (message_id, body) SELECT message_id, body FROM messaging_inbox;
ALTER TABLE messaging_inbox DROP COLUMN body;
`,
    },
    {
      version: 4,
      name: 'the content encoding a MESH message was sent with',
      // gzip (MESH's only one): a chunked message is one gzip stream cut into chunks, so it can only be
      // inflated whole, and a downloader must be told (Content-Encoding) on every chunk.
      sql: 'ALTER TABLE mesh_messages ADD COLUMN content_encoding TEXT;',
    },
    {
      version: 5,
      name: 'MESH reports (non-delivery) in the inbound inbox',
      // JSON of what the report says (linked message id, status code and description); NULL for data. Kept
      // with the row so a report replayed from the dead letters goes back to the report handler, not as data.
      sql: 'ALTER TABLE messaging_inbox ADD COLUMN report TEXT;',
    },
    {
      version: 6,
      name: 'MESH messages expire uncollected, and their non-delivery reports',
      // A message not acknowledged within the expiry period is marked expired (expired_ms, status_description)
      // and a REPORT (message_type, linked_message_id) goes to its sender. The index finds the messages due,
      // oldest first, without reading every inbox; partial, so the messages processed here (stored already
      // acknowledged, the busy path) never enter it.
      sql: `
ALTER TABLE mesh_messages ADD COLUMN message_type TEXT NOT NULL DEFAULT 'DATA';
ALTER TABLE mesh_messages ADD COLUMN linked_message_id TEXT;
ALTER TABLE mesh_messages ADD COLUMN status_description TEXT;
ALTER TABLE mesh_messages ADD COLUMN expired_ms BIGINT;
CREATE INDEX mesh_messages_waiting ON mesh_messages (accepted_ms) WHERE status = 'accepted' AND message_type = 'DATA';
`,
    },
    {
      version: 7,
      name: 'unfinished MESH uploads and uncollected reports expire',
      // The expiry sweep also discards chunked uploads never completed (by when they were started) and expires
      // reports left in a polled sender's inbox. Partial, as mesh_messages_waiting is: both are few, and
      // neither sweep reads the rest of the table to find them. Uploads of one chunk are left out: they are
      // complete in the transaction that starts them, and every notice is one, so they never pay for it.
      sql: `
CREATE INDEX mesh_messages_uploading ON mesh_messages (created_ms) WHERE status = 'uploading' AND chunk_count > 1;
CREATE INDEX mesh_messages_reports_waiting ON mesh_messages (accepted_ms) WHERE status = 'accepted' AND message_type = 'REPORT';
`,
    },
  ];
}
