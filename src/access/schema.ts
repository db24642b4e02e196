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
    version: 3,
    name: 'people: organisations, users, memberships, sessions',
    // Usernames are unique whatever their case (username_key is the lower-cased username). A membership
    // with no organisation (a person, a family carer) stores '' so the primary key still holds.
    // Sessions store only the SHA-256 of the cookie token; session_id is a separate public id for the audit.
    sql: `
CREATE TABLE access_organisations (
  ods TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  kind TEXT NOT NULL,
  created_ms BIGINT NOT NULL
);
CREATE TABLE access_users (
  user_id TEXT PRIMARY KEY,
  username TEXT NOT NULL,
  username_key TEXT NOT NULL UNIQUE,
  name TEXT NOT NULL,
  password_hash TEXT,
  disabled SMALLINT NOT NULL DEFAULT 0,
  failed_attempts INTEGER NOT NULL DEFAULT 0,
  locked_until_ms BIGINT,
  totp_secret TEXT,
  totp_last_step BIGINT,
  oidc_issuer TEXT,
  oidc_subject TEXT,
  fhir_user TEXT,
  created_ms BIGINT NOT NULL,
  UNIQUE (oidc_issuer, oidc_subject)
);
CREATE TABLE access_memberships (
  user_id TEXT NOT NULL REFERENCES access_users (user_id),
  organisation TEXT NOT NULL,
  role TEXT NOT NULL,
  PRIMARY KEY (user_id, organisation, role)
);
CREATE TABLE access_sessions (
  session_id TEXT PRIMARY KEY,
  token_hash TEXT NOT NULL UNIQUE,
  user_id TEXT NOT NULL REFERENCES access_users (user_id),
  organisation TEXT NOT NULL,
  role TEXT NOT NULL,
  address TEXT,
  created_ms BIGINT NOT NULL,
  seen_ms BIGINT NOT NULL,
  idle_expires_ms BIGINT NOT NULL,
  absolute_expires_ms BIGINT NOT NULL,
  ended_ms BIGINT
);
CREATE INDEX access_sessions_user ON access_sessions (user_id);
CREATE INDEX access_sessions_expiry ON access_sessions (absolute_expires_ms);
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
  {
    version: 5,
    name: 'redirect URIs for clients that sign people in (SMART authorization code)',
    // A JSON array of exact URIs; NULL for clients that only use client_credentials.
    sql: `ALTER TABLE access_clients ADD COLUMN redirect_uris TEXT`,
  },
  {
    version: 6,
    name: 'the form submission a break-glass grant came from, so a repeated request makes no second grant',
    sql: `
ALTER TABLE access_break_glass ADD COLUMN submission TEXT;
CREATE UNIQUE INDEX access_break_glass_submission ON access_break_glass (user_id, patient_id, submission) WHERE submission IS NOT NULL;
`,
  },
  {
    version: 7,
    name: 'the audit chain\'s head, anchored in the record\'s own database (one row)',
    // Outside the journal (on SQLite, in the other file): entries removed from the chain's end leave no
    // broken link, but they leave the chain shorter than the head recorded here.
    sql: `CREATE TABLE access_audit_anchor (id SMALLINT PRIMARY KEY, seq BIGINT NOT NULL, hash TEXT NOT NULL, anchored_ms BIGINT NOT NULL)`,
  },
  {
    version: 8,
    name: 'refresh tokens for apps a person signed in to (SMART online_access, offline_access)',
    // Only the SHA-256 of each token is kept. Every token a sign-in leads to shares its family_id and the
    // family's expiry; a token is used once (used_ms), and one presented again revokes its whole family.
    sql: `
CREATE TABLE access_refresh_tokens (
  token_hash TEXT PRIMARY KEY,
  family_id TEXT NOT NULL,
  client_id TEXT NOT NULL,
  user_id TEXT NOT NULL,
  organisation TEXT,
  role TEXT NOT NULL,
  scope TEXT NOT NULL,
  patient TEXT,
  created_ms BIGINT NOT NULL,
  expires_ms BIGINT NOT NULL,
  used_ms BIGINT,
  revoked_ms BIGINT
);
CREATE INDEX access_refresh_tokens_family ON access_refresh_tokens (family_id);
CREATE INDEX access_refresh_tokens_expiry ON access_refresh_tokens (expires_ms);
`,
  },
  {
    version: 9,
    name: 'the authorization code each refresh token family came from, so a replayed code revokes the family',
    // The code's jti, on every token of its family (NULL for families stored before this).
    sql: `
ALTER TABLE access_refresh_tokens ADD COLUMN code_id TEXT;
CREATE INDEX access_refresh_tokens_code ON access_refresh_tokens (code_id);
`,
  },
  {
    version: 10,
    name: 'sign-ins ended by a replayed code or refresh token, so the access tokens they gave stop working too',
    // Kept until every access token of the sign-in has expired (expires_ms); refreshTokens.ts prunes them.
    sql: `
CREATE TABLE access_ended_sign_ins (sign_in TEXT PRIMARY KEY, ended_ms BIGINT NOT NULL, expires_ms BIGINT NOT NULL);
`,
  },
  {
    version: 11,
    name: 'the moment a person was signed out everywhere (password reset, disabled): their apps\' tokens from before it are refused',
    // Whole seconds, as a token's iat is; NULL while they never were.
    sql: `
ALTER TABLE access_users ADD COLUMN tokens_not_before_s BIGINT;
`,
  },
];
