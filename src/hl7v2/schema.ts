// The HL7 v2 capability's own table, in the record's database, migrated under the component 'hl7v2'.
import { migrate, type Migration, type SqlDriver } from '../record/index.ts';

export const HL7V2_MIGRATIONS: Migration[] = [
  {
    version: 1,
    name: 'received HL7 v2 messages: idempotency, replies, queue for a person',
    // Every message received is kept with what became of it. status: received (stored, not yet
    // settled), applied, queued (waiting for a person to say who the patient is), rejected (AR),
    // failed (AE), and dismissed (set aside by a person from the queue, never applied; added later, no
    // change to the table). A repeat of (sender, control_id) gets the stored ack without being applied again.
    sql: `
CREATE TABLE hl7v2_messages (
  seq {{identity}},
  sender TEXT,
  control_id TEXT,
  message_type TEXT,
  organisation TEXT,
  visit_key TEXT,
  peer TEXT,
  received_ms BIGINT NOT NULL,
  updated_ms BIGINT NOT NULL,
  body TEXT NOT NULL,
  body_sha256 TEXT NOT NULL,
  status TEXT NOT NULL,
  reason TEXT,
  ack TEXT,
  patient_id TEXT,
  encounter_id TEXT,
  resolved_by TEXT,
  UNIQUE (sender, control_id)
);
CREATE INDEX hl7v2_messages_status ON hl7v2_messages (status, seq);
CREATE INDEX hl7v2_messages_visit ON hl7v2_messages (visit_key, status, seq);
`,
  },
];

export async function migrateHl7v2(driver: SqlDriver): Promise<void> {
  await migrate(driver, 'hl7v2', HL7V2_MIGRATIONS);
}

export type MessageStatus = 'received' | 'applied' | 'queued' | 'rejected' | 'failed' | 'dismissed';

export interface StoredMessage {
  seq: number;
  sender: string | null;
  control_id: string | null;
  message_type: string | null;
  organisation: string | null;
  visit_key: string | null;
  peer: string | null;
  received_ms: number;
  body: string;
  body_sha256: string;
  status: MessageStatus;
  reason: string | null;
  ack: string | null;
  patient_id: string | null;
  encounter_id: string | null;
  resolved_by: string | null;
}
