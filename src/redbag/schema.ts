// The red bag's own table (component 'redbag'): every red bag message taken in from another deployment,
// by MessageHeader.id, so a message delivered or sent twice is applied once. The pack and its Task live
// in the record as FHIR resources.
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
];
