// The access capability's own tables, in the record's database, migrated under the component 'access'.
import type { Migration } from '../record/index.ts';

export const ACCESS_MIGRATIONS: Migration[] = [
  {
    version: 1,
    name: 'system clients, token signing keys, used client assertions',
    sql: `
CREATE TABLE access_clients (
  client_id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  secret_hash TEXT,
  jwks TEXT,
  scopes TEXT NOT NULL,
  organization TEXT,
  revoked SMALLINT NOT NULL DEFAULT 0,
  created_ms BIGINT NOT NULL
);
CREATE TABLE access_signing_keys (kid TEXT PRIMARY KEY, private_jwk TEXT NOT NULL, public_jwk TEXT NOT NULL, created_ms BIGINT NOT NULL);
CREATE TABLE access_used_assertions (jti TEXT PRIMARY KEY, expires_ms BIGINT NOT NULL);
`,
  },
  {
    version: 2,
    name: 'audit hash chain',
    // One row per AuditEvent, in the order appended: seq is dense (assigned under a lock, never by a
    // sequence, so a rolled-back append leaves no gap and a missing row shows as one).
    sql: `
CREATE TABLE access_audit_chain (
  seq BIGINT PRIMARY KEY,
  audit_id TEXT NOT NULL UNIQUE,
  prev_hash TEXT NOT NULL,
  hash TEXT NOT NULL,
  at_ms BIGINT NOT NULL
);
`,
  },
  {
    version: 4,
    name: 'break-glass grants and their review',
    // A grant lets one user, acting in one role for one organisation, see one person's record until it
    // expires; until a privacy officer reviews it, it is an alert in their queue.
    sql: `
CREATE TABLE access_break_glass (
  id TEXT PRIMARY KEY,
  user_id TEXT NOT NULL,
  user_name TEXT NOT NULL,
  organisation TEXT,
  role TEXT NOT NULL,
  patient_id TEXT NOT NULL,
  reason_code TEXT NOT NULL,
  reason TEXT NOT NULL,
  started_ms BIGINT NOT NULL,
  expires_ms BIGINT NOT NULL,
  reviewed_by TEXT,
  reviewed_ms BIGINT,
  review_outcome TEXT,
  review_note TEXT
);
CREATE INDEX access_break_glass_user ON access_break_glass (user_id, expires_ms);
CREATE INDEX access_break_glass_queue ON access_break_glass (reviewed_ms, started_ms);
CREATE INDEX access_break_glass_patient ON access_break_glass (patient_id, started_ms);
`,
  },
];
