// The discharge workflow's own tables (component 'discharge'). Everything clinical lives in the record as
// FHIR resources; these tables hold what a workflow needs to be exact and restart-safe: councils' deadline
// rules, due timers, ADW episodes and every ADW message in and out, and the change-feed cursor.
import type { Migration } from '../record/index.ts';

export const DISCHARGE_MIGRATIONS: Migration[] = [
  {
    version: 1,
    name: 'councils, timers, ADW episodes and messages, change-feed cursor',
    sql: `
CREATE TABLE discharge_councils (
  ods TEXT PRIMARY KEY,
  assessment_deadline TEXT NOT NULL,
  discharge_deadline TEXT NOT NULL,
  adw SMALLINT NOT NULL DEFAULT 0,
  updated_ms BIGINT NOT NULL
);

CREATE TABLE discharge_timers (
  id TEXT PRIMARY KEY,
  kind TEXT NOT NULL,
  referral_id TEXT NOT NULL,
  task_id TEXT NOT NULL,
  message_key TEXT,
  due_ms BIGINT NOT NULL,
  status TEXT NOT NULL,
  created_ms BIGINT NOT NULL,
  fired_ms BIGINT
);
CREATE INDEX discharge_timers_due ON discharge_timers (status, due_ms);
CREATE INDEX discharge_timers_referral ON discharge_timers (referral_id);

CREATE TABLE discharge_adw_episodes (
  referral_identifier TEXT PRIMARY KEY,
  role TEXT NOT NULL,
  service_request_id TEXT NOT NULL,
  task_id TEXT NOT NULL,
  patient_id TEXT NOT NULL,
  our_ods TEXT NOT NULL,
  peer_ods TEXT NOT NULL,
  peer_mailbox TEXT,
  withdrawn SMALLINT NOT NULL DEFAULT 0,
  created_ms BIGINT NOT NULL
);
CREATE INDEX discharge_adw_episodes_sr ON discharge_adw_episodes (service_request_id);

CREATE TABLE discharge_adw_messages (
  direction TEXT NOT NULL,
  header_id TEXT NOT NULL,
  event_code TEXT NOT NULL,
  referral_identifier TEXT,
  responds_to TEXT,
  status TEXT NOT NULL,
  detail TEXT,
  our_ods TEXT,
  peer_ods TEXT,
  peer_mailbox TEXT,
  body TEXT,
  claimed_ms BIGINT,
  mesh_message_id TEXT,
  attempts INTEGER NOT NULL DEFAULT 0,
  at_ms BIGINT NOT NULL,
  PRIMARY KEY (direction, header_id, event_code)
);
CREATE INDEX discharge_adw_messages_episode ON discharge_adw_messages (referral_identifier, direction, status);
CREATE INDEX discharge_adw_messages_status ON discharge_adw_messages (direction, status);

CREATE TABLE discharge_feed_cursor (
  name TEXT PRIMARY KEY,
  seq BIGINT NOT NULL
);
`,
  },
  {
    version: 2,
    name: "ADW episodes remember a 'withdraw discharge notice' that came before the notice it withdrew",
    sql: `
ALTER TABLE discharge_adw_episodes ADD COLUMN discharge_withdrawn_at TEXT;
`,
  },
  {
    version: 3,
    name: 'outgoing ADW messages wait after a failed send (next_attempt_ms), so newer messages are not held up behind them',
    sql: `
ALTER TABLE discharge_adw_messages ADD COLUMN next_attempt_ms BIGINT;
`,
  },
  {
    version: 4,
    name: 'inbound ADW messages are claimed per sending mailbox (sender_mailbox in the key): MessageHeader.id is unique only per sender',
    // Two trusts' systems can send the same MessageHeader.id; keyed by (direction, header_id, event_code)
    // the second was taken for a copy of the first and never processed (H-048). A key cannot change in
    // place on SQLite, so the table is copied into one with the new key. sender_mailbox is the mailbox an
    // inbound message came from (what peer_mailbox has always held for 'in' rows, so every existing claim
    // keeps its key and a copy of a message processed before the upgrade is still found), and '' for
    // outbound rows, whose MessageHeader.ids are UUIDs of our own.
    sql: `
CREATE TABLE discharge_adw_messages_v4 (
  direction TEXT NOT NULL,
  header_id TEXT NOT NULL,
  event_code TEXT NOT NULL,
  sender_mailbox TEXT NOT NULL DEFAULT '',
  referral_identifier TEXT,
  responds_to TEXT,
  status TEXT NOT NULL,
  detail TEXT,
  our_ods TEXT,
  peer_ods TEXT,
  peer_mailbox TEXT,
  body TEXT,
  claimed_ms BIGINT,
  mesh_message_id TEXT,
  attempts INTEGER NOT NULL DEFAULT 0,
  at_ms BIGINT NOT NULL,
  next_attempt_ms BIGINT,
  PRIMARY KEY (direction, header_id, event_code, sender_mailbox)
);
INSERT INTO discharge_adw_messages_v4 (direction, header_id, event_code, sender_mailbox, referral_identifier, responds_to, status, detail, our_ods, peer_ods, peer_mailbox, body, claimed_ms, mesh_message_id, attempts, at_ms, next_attempt_ms)
SELECT direction, header_id, event_code, CASE WHEN direction = 'in' THEN COALESCE(peer_mailbox, '') ELSE '' END, referral_identifier, responds_to, status, detail, our_ods, peer_ods, peer_mailbox, body, claimed_ms, mesh_message_id, attempts, at_ms, next_attempt_ms
FROM discharge_adw_messages;
DROP TABLE discharge_adw_messages;
ALTER TABLE discharge_adw_messages_v4 RENAME TO discharge_adw_messages;
CREATE INDEX discharge_adw_messages_episode ON discharge_adw_messages (referral_identifier, direction, status);
CREATE INDEX discharge_adw_messages_status ON discharge_adw_messages (direction, status);
`,
  },
];
