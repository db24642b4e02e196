// The audit journal's batches (format 3, since audit migration 2): one row per batch of answered requests,
// holding the requests as the trail packed them (batchMessage.ts) rather than one row per AuditEvent.
// Why: one row per request cost the writer ~23 µs of CPU per request even alone (the row went into five
// b-trees, with its patient and entity rows, and was built as JSON text first), as much as a read itself.
// A batch of 1,000 requests is one row and a few index rows: its AuditEvents are built when they are read.
//
// Entries keep their own ids: seq first_seq … last_seq, dense and continuing the one-row-per-request
// entries before them. The chain links batches: hash = SHA-256 over the previous hash, the batch's
// format, first seq, observer, actors and packed bytes (and, since format 4, its entry digests).
// audit_batch_key indexes each batch by what its requests have in common with a search (patients,
// resources, agents, codes), once per batch: a search reads the batches that can match and tests each of
// their entries (batchSearch.ts).
//
// Since audit migration 3 (format 4) a batch also keeps a digest of each entry's packed bytes
// (entry_digests), covered by its hash: when the hash fails, `audit verify` compares each entry with its
// digest and names the entry that was changed, not only the batch (an information-governance lead needs to
// know which access record was altered). The digests only locate a change; what makes a change evident is
// still the batch's SHA-256 chain, which covers them.
import { createHash } from 'node:crypto';
import { crc32 } from 'node:zlib';
import type { Migration, SqlDriver, SqlExecutor } from '../../record/index.ts';
import type { Actor } from '../actor.ts';
import { SharedParts, entryValuesFor, journalEntryFor, type AuditedRequest, type EntryValues, type JournalEntry } from './auditEvent.ts';
import { decodeBatch, type BatchMessage } from './batchMessage.ts';
import { GENESIS_HASH } from './chain.ts';

/** Batches written since audit migration 3: with entry digests, which their hash covers. */
export const BATCH_FORMAT = 4;
/** Batches written before it: no entry digests (verified as a whole, as they always were). */
export const UNDIGESTED_BATCH_FORMAT = 3;
/** Serialises appends across every app node on one PostgreSQL (SQLite's writer lock does it there). */
export const APPEND_LOCK = 727275;
/** Longest key kept in audit_batch_key (an entity reference or name beyond it is cut, as in the old indexes). */
export const KEY_LENGTH = 256;

export function batchMigration(dialect: 'sqlite' | 'postgres'): Migration {
  const clustered = dialect === 'sqlite' ? ' WITHOUT ROWID' : '';
  return {
    version: 2,
    name: 'audit journal batches (one row per batch of requests, hash-chained) and their search keys',
    sql: `
CREATE TABLE audit_batch (
  first_seq BIGINT PRIMARY KEY,
  last_seq BIGINT NOT NULL,
  min_ms BIGINT NOT NULL,
  max_ms BIGINT NOT NULL,
  observer TEXT NOT NULL,
  actors TEXT NOT NULL,
  body TEXT NOT NULL,
  prev_hash TEXT NOT NULL,
  hash TEXT NOT NULL,
  format SMALLINT NOT NULL
);
CREATE INDEX audit_batch_newest ON audit_batch (max_ms, first_seq);
CREATE INDEX audit_batch_oldest ON audit_batch (min_ms, first_seq);
CREATE UNIQUE INDEX audit_batch_last ON audit_batch (last_seq);
CREATE TABLE audit_batch_key (key TEXT NOT NULL, first_seq BIGINT NOT NULL, positions TEXT NOT NULL, PRIMARY KEY (key, first_seq))${clustered}
`,
  };
}

/**
 * Audit migration 3, applied where the journal's tables are (see ownDatabase.ts): on SQLite they have
 * already moved to a file of their own, which the record's migrations cannot reach. Batches from before it
 * keep entry_digests null.
 */
export function entryDigestMigration(): Migration {
  return {
    version: 3,
    name: 'audit journal batches: a digest of each entry, so that verify names the entry that was changed',
    sql: 'ALTER TABLE audit_batch ADD COLUMN entry_digests TEXT',
  };
}

/** A batch as stored. `body` is the packed requests in base64 (PostgreSQL text cannot hold every byte). */
export interface StoredBatch {
  first_seq: number;
  last_seq: number;
  min_ms: number;
  max_ms: number;
  observer: string;
  actors: string;
  body: string;
  prev_hash: string;
  hash: string;
  format: number;
  /** Format 4: each entry's digest (entryDigests), in base64; null before audit migration 3. Read by verify only. */
  entry_digests?: string | null;
}

export const BATCH_COLUMNS = 'b.first_seq, b.last_seq, b.min_ms, b.max_ms, b.observer, b.actors, b.body, b.prev_hash, b.hash, b.format';

/**
 * The batch's link in the chain. Format 4 covers its entry digests too (after a newline, which base64
 * never holds); format 3's hash is unchanged, so batches from before the digests still verify.
 */
export function batchHash(previous: string, batch: Pick<StoredBatch, 'first_seq' | 'observer' | 'actors' | 'body' | 'format' | 'entry_digests'>): string {
  const hash = createHash('sha256')
    .update(`${previous}\n${batch.format}\n${batch.first_seq}\n${batch.observer}\n${batch.actors}\n`)
    .update(batch.body);
  if (Number(batch.format) !== UNDIGESTED_BATCH_FORMAT) hash.update(`\n${batch.entry_digests ?? ''}`);
  return hash.digest('hex');
}

/** Bytes per entry digest. */
const DIGEST_BYTES = 4;

/**
 * Each entry's digest, in base64: the CRC-32 of its packed bytes (`ends` as decodeBatch gives them),
 * 4 bytes each, in order. Why CRC-32 and not a SHA-256 per entry: a digest only says which entry no longer
 * matches; it is trusted because the batch's SHA-256 covers it (whoever can rewrite an entry can rewrite its
 * digest, whatever the digest is, and the batch's hash then fails as before). On the writer thread, which
 * spends ~10 µs per entry, a SHA-256 per entry cost ~0.7 to 1.2 µs and CRC-32 ~0.3 to 0.4 µs (1,000 entries
 * of ~216 bytes, timed alone on a loaded 2-core machine).
 */
export function entryDigests(bytes: Uint8Array, ends: readonly number[]): string {
  const digests = Buffer.allocUnsafe(ends.length * DIGEST_BYTES);
  let start = 0;
  for (let i = 0; i < ends.length; i++) {
    digests.writeUInt32LE(crc32(bytes.subarray(start, ends[i])), i * DIGEST_BYTES);
    start = ends[i];
  }
  return digests.toString('base64');
}

/**
 * The positions (0 = first) of a format-4 batch's entries whose bytes no longer match their digests;
 * undefined when that cannot be told: no digests, digests that do not decode or do not number its entries,
 * or a body that does not decode into its entries.
 */
export function changedEntries(row: StoredBatch): number[] | undefined {
  if (Number(row.format) !== BATCH_FORMAT || typeof row.entry_digests !== 'string') return undefined;
  const count = Number(row.last_seq) - Number(row.first_seq) + 1;
  const digests = Buffer.from(row.entry_digests, 'base64');
  // Buffer.from skips what is not base64: text that does not come back the same was not written as digests.
  if (digests.length !== count * DIGEST_BYTES || digests.toString('base64') !== row.entry_digests) return undefined;
  const bytes = Buffer.from(row.body, 'base64');
  const ends: number[] = [];
  try {
    decodedRequests(row, ends);
  } catch {
    return undefined;
  }
  const changed: number[] = [];
  let start = 0;
  for (let i = 0; i < count; i++) {
    if (crc32(bytes.subarray(start, ends[i])) !== digests.readUInt32LE(i * DIGEST_BYTES)) changed.push(i);
    start = ends[i];
  }
  return changed;
}

/** One entry of a stored batch: its seq, and its journal entry as a search tests it and the API serves it. */
export interface BatchEntry { seq: number; entry: JournalEntry }

const partsByObserver = new Map<string, SharedParts>();

/** The entries of a stored batch, in order (throws when its bytes do not decode). */
export function batchEntries(row: StoredBatch): BatchEntry[] {
  const parts = partsFor(row.observer);
  return decodedRequests(row).map((r, i) => ({ seq: Number(row.first_seq) + i, entry: journalEntryFor(r, parts) }));
}

function partsFor(observer: string): SharedParts {
  let parts = partsByObserver.get(observer);
  if (!parts) {
    if (partsByObserver.size > 100) partsByObserver.clear();
    partsByObserver.set(observer, (parts = new SharedParts(observer)));
  }
  return parts;
}

function decodedRequests(row: StoredBatch, ends?: number[]) {
  const bytes = Buffer.from(row.body, 'base64');
  return decodeBatch({ bytes: new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), actors: JSON.parse(row.actors) as Actor[], count: Number(row.last_seq) - Number(row.first_seq) + 1 }, ends);
}

/** The requests of a stored batch, in order (throws when its bytes do not decode). */
export const batchRequests = (row: StoredBatch): AuditedRequest[] => decodedRequests(row);

/** One of a stored batch's requests as its journal entry, built in full. */
export const batchEntryOf = (row: StoredBatch, request: AuditedRequest): JournalEntry => journalEntryFor(request, partsFor(row.observer));

/** The patient an entry was made by, when a person acted for themself (their own events are about them too). */
export function selfPatient(entry: EntryValues): string | undefined {
  const self = entry.agentRef?.startsWith('Patient/') ? entry.agentRef.slice('Patient/'.length) : undefined;
  return self && !entry.patients.includes(self) ? self : undefined;
}

/**
 * The search keys of a batch, each with the positions (0 = the batch's first entry) of the entries that
 * have it: a search reads the positions, and decodes only the batches its page needs.
 */
export class BatchKeys {
  private readonly values = new Map<string, Map<string, number[]>>();

  add(e: EntryValues, position = 0): void {
    for (const p of e.patients) this.put('P', p, position);
    const self = selfPatient(e);
    if (self) this.put('S', self, position);
    for (const r of e.entities) this.put('E', r, position);
    for (const n of e.names) this.put('N', n, position);
    if (e.agentRef) this.put('A', e.agentRef, position);
    if (e.agent) this.put('I', e.agent, position);
    this.put('T', e.type, position);
    if (e.subtype) this.put('B', e.subtype, position);
    this.put('C', e.action, position);
    this.put('O', e.outcome, position);
    if (e.purpose) this.put('U', e.purpose, position);
  }

  /** Each key (cut to KEY_LENGTH) with its positions, ascending. */
  rows(): Map<string, number[]> {
    const rows = new Map<string, number[]>();
    for (const [kind, values] of this.values) {
      for (const [value, positions] of values) {
        const key = `${kind}|${value}`.slice(0, KEY_LENGTH + 2);
        const known = rows.get(key);
        // Two values cut to one key: one row with both's positions.
        rows.set(key, known ? [...new Set([...known, ...positions])].sort((a, b) => a - b) : positions);
      }
    }
    return rows;
  }

  private put(kind: string, value: string, position: number): void {
    let values = this.values.get(kind);
    if (!values) this.values.set(kind, (values = new Map()));
    const positions = values.get(value);
    if (!positions) values.set(value, [position]);
    else if (positions[positions.length - 1] !== position) positions.push(position);
  }
}

/** The search keys of one entry. */
export function entryKeys(e: EntryValues): Set<string> {
  const keys = new BatchKeys();
  keys.add(e);
  return new Set(keys.rows().keys());
}

/** Positions as stored in audit_batch_key (decimal, comma-separated, ascending). */
export const positionsText = (positions: number[]) => positions.join(',');
export const positionsOf = (text: string) => (text ? text.split(',').map(Number) : []);

/** The chain's last entry: its position and hash. */
export interface ChainHead { seq: number; hash: string }

/** The chain's head in the database: the last batch's, else the last one-row entry's, else none. */
export async function storedHead(db: SqlExecutor): Promise<ChainHead> {
  const batch = await db.get<{ seq: number; hash: string }>('SELECT last_seq AS seq, hash FROM audit_batch ORDER BY first_seq DESC LIMIT 1');
  if (batch) return { seq: Number(batch.seq), hash: batch.hash };
  const row = await db.get<{ seq: number; hash: string }>('SELECT seq, hash FROM audit_journal ORDER BY seq DESC LIMIT 1');
  return { seq: Number(row?.seq ?? 0), hash: row?.hash ?? GENESIS_HASH };
}

/**
 * The chain's hash as it stood after entry `seq`: a one-row entry's own, or the batch's that ends there
 * (undefined when no entry or batch ends at seq: the chain's head is only ever at a batch's end).
 */
export async function hashAfter(db: SqlExecutor, seq: number): Promise<string | undefined> {
  const batch = await db.get<{ hash: string }>('SELECT hash FROM audit_batch WHERE last_seq = ?', [seq]);
  if (batch) return batch.hash;
  return (await db.get<{ hash: string }>('SELECT hash FROM audit_journal WHERE seq = ?', [seq]))?.hash;
}

/**
 * Appends each batch as one row, in one transaction, after the chain's head read inside it (after taking
 * the append lock on PostgreSQL), so two app nodes never fork the chain.
 */
export class BatchAppender {
  constructor(private readonly driver: SqlDriver, private readonly observer: string) {}

  /** Appends; resolves to the chain's head after this append (undefined when there was nothing to append). */
  async append(batch: BatchMessage): Promise<ChainHead | undefined> {
    if (!batch.count) return undefined;
    const body = Buffer.from(batch.bytes.buffer, batch.bytes.byteOffset, batch.bytes.byteLength).toString('base64');
    const actors = JSON.stringify(batch.actors);
    const ends: number[] = [];
    const requests = decodeBatch(batch, ends);
    const digests = entryDigests(batch.bytes, ends);
    const keys = new BatchKeys();
    let min = Infinity;
    let max = -Infinity;
    // The values a search will test, without the text it will serve.
    for (const [position, r] of requests.entries()) {
      keys.add(entryValuesFor(r, this.observer), position);
      if (r.at < min) min = r.at;
      if (r.at > max) max = r.at;
    }
    return this.driver.transaction(async (tx) => {
      if (this.driver.dialect === 'postgres') await tx.run(`SELECT pg_advisory_xact_lock(${APPEND_LOCK})`);
      const head = await storedHead(tx);
      const row = { first_seq: head.seq + 1, observer: this.observer, actors, body, format: BATCH_FORMAT, entry_digests: digests };
      const hash = batchHash(head.hash, row);
      const last = head.seq + batch.count;
      await tx.run(
        'INSERT INTO audit_batch (first_seq, last_seq, min_ms, max_ms, observer, actors, body, prev_hash, hash, format, entry_digests) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
        [row.first_seq, last, Math.floor(min), Math.ceil(max), this.observer, actors, body, head.hash, hash, BATCH_FORMAT, digests],
      );
      await tx.insertMany('audit_batch_key', ['key', 'first_seq', 'positions'], [...keys.rows()].map(([k, positions]) => [k, row.first_seq, positionsText(positions)]));
      return { seq: last, hash };
    });
  }
}
