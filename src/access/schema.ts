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
];
