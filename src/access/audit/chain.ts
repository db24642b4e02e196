// The audit trail's hash chain: every AuditEvent is stored as an ordinary resource in the record and, in
// the same transaction, appended to access_audit_chain with hash = SHA-256(previous hash + the
// AuditEvent's canonical JSON). Changing, removing or reordering any stored entry breaks every link after it.
import { createHash, randomUUID } from 'node:crypto';
import { createResources, type SqlDriver } from '../../record/index.ts';

/** The previous hash of the first entry. */
export const GENESIS_HASH = '0'.repeat(64);
/** Carries the entry's place in the chain (seq) and its hash inside the AuditEvent itself. */
export const CHAIN_EXTENSION = 'https://carebridge.example/fhir/StructureDefinition/audit-chain';
/** Serialises appends across every app node on one PostgreSQL (SQLite's writer lock does it there). */
const APPEND_LOCK = 727275;

/** JSON with object keys sorted at every level (arrays keep their order): one text per value. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  let out: string;
  if (Array.isArray(value)) {
    out = '[';
    for (let i = 0; i < value.length; i++) out += (i ? ',' : '') + (value[i] === undefined ? 'null' : canonicalJson(value[i]));
    return `${out}]`;
  }
  out = '{';
  for (const key of Object.keys(value).sort()) {
    const v = (value as Record<string, unknown>)[key];
    if (v === undefined) continue;
    out += `${out.length > 1 ? ',' : ''}${JSON.stringify(key)}:${canonicalJson(v)}`;
  }
  return `${out}}`;
}

/**
 * What the hash covers: the AuditEvent as stored, except the storage bookkeeping the record adds on
 * write (meta.versionId, meta.lastUpdated) and the chain extension (which holds the hash itself).
 */
export function hashedContent(auditEvent: Record<string, any>): string {
  const { meta, extension, ...rest } = auditEvent;
  const body: Record<string, unknown> = { ...rest };
  const { versionId: _v, lastUpdated: _l, ...otherMeta } = (meta ?? {}) as Record<string, unknown>;
  if (Object.keys(otherMeta).length) body.meta = otherMeta;
  const ownExtensions = ((extension ?? []) as { url?: string }[]).filter((e) => e?.url !== CHAIN_EXTENSION);
  if (ownExtensions.length) body.extension = ownExtensions;
  return canonicalJson(body);
}

export function chainHash(previousHash: string, auditEvent: Record<string, any>): string {
  return createHash('sha256').update(previousHash).update(hashedContent(auditEvent)).digest('hex');
}

/** The seq and hash an AuditEvent says it has (from its chain extension). */
export function chainPosition(auditEvent: Record<string, any>): { seq?: number; hash?: string } {
  const ext = ((auditEvent.extension ?? []) as { url?: string; extension?: { url: string; valueDecimal?: number; valueString?: string }[] }[]).find((e) => e?.url === CHAIN_EXTENSION);
  return { seq: ext?.extension?.find((e) => e.url === 'seq')?.valueDecimal, hash: ext?.extension?.find((e) => e.url === 'hash')?.valueString };
}

/**
 * Stores AuditEvents (given without ids) and appends them to the chain, in one transaction: both or
 * neither. The last link is read inside the transaction, after taking the append lock, so two app nodes
 * never fork the chain.
 */
export async function appendToChain(driver: SqlDriver, auditEvents: Record<string, any>[]): Promise<void> {
  if (!auditEvents.length) return;
  await driver.transaction(async (tx) => {
    if (driver.dialect === 'postgres') await tx.run(`SELECT pg_advisory_xact_lock(${APPEND_LOCK})`);
    const last = await tx.get<{ seq: number; hash: string }>('SELECT seq, hash FROM access_audit_chain ORDER BY seq DESC LIMIT 1');
    let seq = Number(last?.seq ?? 0);
    let previous = last?.hash ?? GENESIS_HASH;
    const now = Date.now();
    const links: [number, string, string, string, number][] = [];
    for (const event of auditEvents) {
      event.id = randomUUID();
      seq += 1;
      const hash = chainHash(previous, event);
      event.extension = [...(event.extension ?? []), { url: CHAIN_EXTENSION, extension: [{ url: 'seq', valueDecimal: seq }, { url: 'hash', valueString: hash }] }];
      links.push([seq, event.id, previous, hash, now]);
      previous = hash;
    }
    await createResources(tx, auditEvents);
    await tx.insertMany('access_audit_chain', ['seq', 'audit_id', 'prev_hash', 'hash', 'at_ms'], links);
  });
}
