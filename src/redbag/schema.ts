// The red bag's own tables (component 'redbag'): every red bag message taken in from another deployment,
// by MessageHeader.id, so a message delivered or sent twice is applied once; and every one sent to MESH, by
// the MESH message id, so a MESH report that one was not delivered finds its pack (H-042). The pack and its
// Task live in the record as FHIR resources.
import type { Migration } from '../record/index.ts';

export const RED_BAG_MIGRATIONS: Migration[] = [
  {
    version: 1,
    name: 'red bag messages taken in',
    sql: `
CREATE TABLE redbag_messages (
  header_id TEXT PRIMARY KEY,
  event_code TEXT NOT NULL,
  pack_identifier TEXT,
  status TEXT NOT NULL,
  claimed_ms BIGINT NOT NULL,
  mesh_message_id TEXT NOT NULL,
  from_mailbox TEXT NOT NULL,
  at_ms BIGINT NOT NULL
);`,
  },
  {
    version: 2,
    name: 'red bag messages sent over MESH',
    // step: 'sent' for the pack itself, else the step relayed. superseded: 1 once the same pack was sent again
    // (a report about an older copy then changes nothing). undelivered: MESH's reason, once it reported it.
    sql: `
CREATE TABLE redbag_sent (
  mesh_message_id TEXT PRIMARY KEY,
  pack_identifier TEXT NOT NULL,
  task_id TEXT NOT NULL,
  step TEXT NOT NULL,
  to_mailbox TEXT NOT NULL,
  sent_ms BIGINT NOT NULL,
  superseded INTEGER NOT NULL DEFAULT 0,
  undelivered TEXT
);
CREATE INDEX redbag_sent_pack ON redbag_sent (pack_identifier, step);`,
  },
];
