// The audit journal: append-only tables of its own, outside the record's resource tables. One row per
// answered request holds the AuditEvent's own JSON text; its agent and source elements, the same for every
// request a caller makes through one node, are stored once in audit_part under a key that is their
// SHA-256 (so a row stays ~0.5 KB instead of ~1.5 KB, which halves the cost of writing it). Served, an
// AuditEvent is the row's text with meta (from recorded), its part and its chain position added.
// hash = SHA-256(previous hash + text + part key): changing, removing or reordering any row, or changing a
// part, breaks the chain from there on. Two narrow tables index it: audit_patient (the patients an event
// is about, and the person themself when they are the one acting) and audit_entity (other resources it
// names, and what failed requests asked for).
import { hash } from 'node:crypto';
import { partKey, type SharedPart } from './auditEvent.ts';
import type { Migration, Param, SqlDriver, SqlExecutor } from '../../record/index.ts';


import { chainExtension } from './chain.ts';
import type { JournalEntry } from './auditEvent.ts';
import { APPEND_LOCK, batchMigration, storedHead, type ChainHead } from './batchJournal.ts';
/** Longest entity reference or name kept in the index tables (the AuditEvent holds it whole). */
export const INDEXED_REF_LENGTH = 256;

/** Rows written before the journal (hash over canonical JSON, see chain.ts) and rows written since (text + part). */
export const LEGACY_FORMAT = 1;
export const TEXT_FORMAT = 2;

export const HEAD = '{"resourceType":"AuditEvent","id":"';

/**
 * The migrations of the component 'audit'. Version 1 creates the journal and moves an existing
 * deployment's chained AuditEvents (stored as record resources, chained in access_audit_chain) into it
 * with their hashes unchanged, so the chain stays verifiable from its first entry; then removes them
 * from the record's tables and drops access_audit_chain.
 */
export function auditMigrations(dialect: 'sqlite' | 'postgres'): Migration[] {
  const sqlite = dialect === 'sqlite';
  // Narrow index tables clustered on their key: one b-tree each on SQLite, a primary key on PostgreSQL.
  const clustered = sqlite ? ' WITHOUT ROWID' : '';
  const json = (path: string) => (sqlite ? `json_extract(r.content, '$.${path}')` : `(r.content::jsonb #>> '{${path.replace(/\[(\d+)\]/g, ',$1').replace(/\./g, ',')}}')`);
  const recordedMs = sqlite
    ? `CAST(ROUND((julianday(${json('recorded')}) - 2440587.5) * 86400000) AS INTEGER)`
    : `(extract(epoch from (${json('recorded')})::timestamptz) * 1000)::bigint`;
  return [
    {
      version: 1,
      name: 'audit journal (one row per request, hash-chained) with patient and entity indexes',
      // seq is dense, assigned under a lock (never by a sequence: a rolled-back append leaves no gap, so
      // a missing row shows as one) and is the AuditEvent's id; legacy_id keeps the ids of moved events.
      sql: `
CREATE TABLE audit_journal (
  seq BIGINT PRIMARY KEY,
  legacy_id TEXT,
  recorded_ms BIGINT NOT NULL,
  agent TEXT,
  agent_ref TEXT,
  type TEXT NOT NULL,
  subtype TEXT,
  action TEXT,
  outcome TEXT,
  purpose TEXT,
  content TEXT NOT NULL,
  part TEXT,
  prev_hash TEXT NOT NULL,
  hash TEXT NOT NULL,
  format SMALLINT NOT NULL
);
CREATE INDEX audit_journal_recorded ON audit_journal (recorded_ms, seq);
CREATE INDEX audit_journal_agent ON audit_journal (agent, recorded_ms, seq);
CREATE INDEX audit_journal_agent_ref ON audit_journal (agent_ref, recorded_ms, seq) WHERE agent_ref IS NOT NULL;
CREATE UNIQUE INDEX audit_journal_legacy_id ON audit_journal (legacy_id) WHERE legacy_id IS NOT NULL;
CREATE TABLE audit_part (part_key TEXT PRIMARY KEY, content TEXT NOT NULL);
CREATE TABLE audit_patient (patient_id TEXT NOT NULL, recorded_ms BIGINT NOT NULL, seq BIGINT NOT NULL, as_agent SMALLINT NOT NULL, PRIMARY KEY (patient_id, recorded_ms, seq))${clustered};
CREATE TABLE audit_entity (ref TEXT NOT NULL, recorded_ms BIGINT NOT NULL, seq BIGINT NOT NULL, named SMALLINT NOT NULL, PRIMARY KEY (ref, recorded_ms, seq))${clustered};

INSERT INTO audit_journal (seq, legacy_id, recorded_ms, agent, agent_ref, type, subtype, action, outcome, purpose, content, prev_hash, hash, format)
SELECT c.seq, c.audit_id, ${recordedMs}, ${json('agent[0].altId')}, ${json('agent[0].who.reference')}, COALESCE(${json('type.code')}, 'rest'),
       ${json('subtype[0].code')}, ${json('action')}, ${json('outcome')}, ${json('agent[0].purposeOfUse[0].coding[0].code')}, r.content, c.prev_hash, c.hash, ${LEGACY_FORMAT}
  FROM access_audit_chain c JOIN resources r ON r.type = 'AuditEvent' AND r.id = c.audit_id AND r.content IS NOT NULL;
INSERT INTO audit_patient (patient_id, recorded_ms, seq, as_agent)
SELECT DISTINCT s.target_id, j.recorded_ms, j.seq, 0 FROM audit_journal j JOIN resources r ON r.type = 'AuditEvent' AND r.id = j.legacy_id
  JOIN search_reference s ON s.rid = r.rid AND s.param = 'entity' AND s.target_type = 'Patient';
INSERT INTO audit_entity (ref, recorded_ms, seq, named)
SELECT DISTINCT substr(s.target_type || '/' || s.target_id, 1, ${INDEXED_REF_LENGTH}), j.recorded_ms, j.seq, 0 FROM audit_journal j JOIN resources r ON r.type = 'AuditEvent' AND r.id = j.legacy_id
  JOIN search_reference s ON s.rid = r.rid AND s.param = 'entity' AND s.target_type <> 'Patient' AND s.target_id IS NOT NULL;
INSERT INTO audit_entity (ref, recorded_ms, seq, named)
SELECT DISTINCT substr(s.raw, 1, ${INDEXED_REF_LENGTH}), j.recorded_ms, j.seq, 1 FROM audit_journal j JOIN resources r ON r.type = 'AuditEvent' AND r.id = j.legacy_id
  JOIN search_string s ON s.rid = r.rid AND s.param = 'entity-name';

DELETE FROM search_token WHERE rid IN (SELECT rid FROM resources WHERE type = 'AuditEvent');
DELETE FROM search_string WHERE rid IN (SELECT rid FROM resources WHERE type = 'AuditEvent');
DELETE FROM search_date WHERE rid IN (SELECT rid FROM resources WHERE type = 'AuditEvent');
DELETE FROM search_reference WHERE rid IN (SELECT rid FROM resources WHERE type = 'AuditEvent');
DELETE FROM search_number WHERE rid IN (SELECT rid FROM resources WHERE type = 'AuditEvent');
DELETE FROM search_quantity WHERE rid IN (SELECT rid FROM resources WHERE type = 'AuditEvent');
DELETE FROM search_uri WHERE rid IN (SELECT rid FROM resources WHERE type = 'AuditEvent');
DELETE FROM compartment WHERE rid IN (SELECT rid FROM resources WHERE type = 'AuditEvent');
DELETE FROM resource_history WHERE type = 'AuditEvent';
DELETE FROM outbox WHERE type = 'AuditEvent';
DELETE FROM resources WHERE type = 'AuditEvent';
DROP TABLE access_audit_chain
`,
    },
    batchMigration(dialect),
  ];
}

/** SHA-256 over the previous hash, the entry's text and its part key, one after the other. */
export function linkHash(previousHash: string, text: string, part: string): string {
  // One-shot hashing of the joined text: the same digest as three updates, at half the cost of a Hash object.
  return hash('sha256', previousHash + text + part, 'hex');
}

export { partKey };

export interface StoredEvent { seq: number; recorded_ms: number; content: string; part: string | null; hash: string; format: number }

/** The AuditEvent as served: the row's text with meta, its part (agent and source) and its chain position. */
export function servedText(row: StoredEvent, partText: string | undefined): string {
  if (Number(row.format) === LEGACY_FORMAT) return row.content; // complete, with its chain extension inside
  const meta = `"meta":{"versionId":"1","lastUpdated":"${new Date(Number(row.recorded_ms)).toISOString()}"}`;
  return `${row.content.slice(0, -1)},${meta}${partText ? `,${partText}` : ''},"extension":[${chainExtension(Number(row.seq), row.hash)}]}`;
}

/** Reads parts by key, remembering them (a part never changes). */
export class PartTexts {
  private texts = new Map<string, string>();
  constructor(private readonly db: SqlExecutor) {}

  async load(keys: (string | null)[]): Promise<Map<string, string>> {
    const missing = [...new Set(keys.filter((k): k is string => !!k && !this.texts.has(k)))];
    for (let i = 0; i < missing.length; i += 500) {
      const some = missing.slice(i, i + 500);
      const rows = await this.db.all<{ part_key: string; content: string }>(`SELECT part_key, content FROM audit_part WHERE part_key IN (${some.map(() => '?').join(', ')})`, some);
      if (this.texts.size + rows.length > 10_000) this.texts.clear();
      for (const r of rows) this.texts.set(r.part_key, r.content);
    }
    return this.texts;
  }
}

interface Link { seq: number; text: string; hash: string; prev: string }

export type { ChainHead };

/**
 * Appends entries in order, in one transaction: every row or none. The last link is read inside the
 * transaction, after taking the append lock, so two app nodes never fork the chain. Hashing is done
 * before the transaction against the head this writer last saw, and redone inside only when another
 * writer moved it meanwhile (keeping the lock short).
 */
export class JournalAppender {
  private head?: { seq: number; hash: string };
  /** Parts known to be stored already (parts are never changed or removed). */
  private stored = new Set<string>();

  constructor(private readonly driver: SqlDriver) {}

  /** Appends; resolves to the chain's head after this append (undefined when there was nothing to append). */
  async append(entries: JournalEntry[]): Promise<ChainHead | undefined> {
    if (!entries.length) return undefined;
    let links = this.head ? chain(this.head, entries) : undefined;
    await this.driver.transaction(async (tx) => {
      if (this.driver.dialect === 'postgres') await tx.run(`SELECT pg_advisory_xact_lock(${APPEND_LOCK})`);
      const head = await storedHead(tx);
      if (!links || head.seq !== this.head!.seq || head.hash !== this.head!.hash) links = chain(head, entries);
      await this.storeParts(tx, entries);
      await insertLinks(tx, entries, links);
    }).catch((err) => {
      this.head = undefined;
      this.stored.clear();
      throw err;
    });
    const end = links![links!.length - 1];
    this.head = { seq: end.seq, hash: end.hash };
    return this.head;
  }

  private async storeParts(tx: SqlExecutor, entries: JournalEntry[]): Promise<void> {
    const fresh = new Map<string, SharedPart>();
    for (const e of entries) if (!this.stored.has(e.part.key)) fresh.set(e.part.key, e.part);
    for (const part of fresh.values()) {
      // Another node may have stored the same part: the same key is the same text.
      await tx.run('INSERT INTO audit_part (part_key, content) VALUES (?, ?) ON CONFLICT (part_key) DO NOTHING', [part.key, part.text]);
      this.stored.add(part.key);
    }
  }
}

function chain(head: { seq: number; hash: string }, entries: JournalEntry[]): Link[] {
  let { seq, hash } = head;
  return entries.map((e) => {
    seq += 1;
    const text = `${HEAD}${seq}${e.tail}`;
    const prev = hash;
    hash = linkHash(prev, text, e.part.key);
    return { seq, text, hash, prev };
  });
}

async function insertLinks(tx: SqlExecutor, entries: JournalEntry[], links: Link[]): Promise<void> {
  const rows: Param[][] = [];
  const patients: Param[][] = [];
  const refs: Param[][] = [];
  entries.forEach((e, i) => {
    const { seq, text, hash, prev } = links[i];
    rows.push([seq, e.recordedMs, e.agent, e.agentRef, e.type, e.subtype, e.action, e.outcome, e.purpose, text, e.part.key, prev, hash, TEXT_FORMAT]);
    for (const p of e.patients) patients.push([p, e.recordedMs, seq, 0]);
    // A person acting for themself: their own events are about them too (FHIR's patient parameter).
    const self = e.agentRef?.startsWith('Patient/') ? e.agentRef.slice('Patient/'.length) : undefined;
    if (self && !e.patients.includes(self)) patients.push([self, e.recordedMs, seq, 1]);
    // Truncation could make two references one key: keep the first.
    const seen = new Set<string>();
    for (const [named, list] of [[0, e.entities], [1, e.names]] as const) {
      for (const ref of list) {
        const key = ref.slice(0, INDEXED_REF_LENGTH);
        if (seen.has(key)) continue;
        seen.add(key);
        refs.push([key, e.recordedMs, seq, named]);
      }
    }
  });
  await tx.insertMany('audit_journal', ['seq', 'recorded_ms', 'agent', 'agent_ref', 'type', 'subtype', 'action', 'outcome', 'purpose', 'content', 'part', 'prev_hash', 'hash', 'format'], rows);
  await tx.insertMany('audit_patient', ['patient_id', 'recorded_ms', 'seq', 'as_agent'], patients);
  await tx.insertMany('audit_entity', ['ref', 'recorded_ms', 'seq', 'named'], refs);
}
