// The audit trail's hash chain: the journal (journal.ts) hashes each AuditEvent's stored text. Entries
// written before the journal (LEGACY_FORMAT, moved in by its first migration) were hashed over the
// AuditEvent's canonical JSON without storage bookkeeping and carry their chain position inside; this
// file keeps that rule so they stay verifiable, and the chain extension that every served AuditEvent carries.
import { createHash } from 'node:crypto';

/** The previous hash of the first entry. */
export const GENESIS_HASH = '0'.repeat(64);
/** Carries the entry's place in the chain (seq) and its hash inside the AuditEvent itself. */
export const CHAIN_EXTENSION = 'https://carebridge.example/fhir/StructureDefinition/audit-chain';

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

/** The chain extension for an entry (served with each AuditEvent, from its journal row). */
export function chainExtension(seq: number, hash: string): string {
  return JSON.stringify({ url: CHAIN_EXTENSION, extension: [{ url: 'seq', valueDecimal: seq }, { url: 'hash', valueString: hash }] });
}
