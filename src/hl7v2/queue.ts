// The messages a person must look at: those held because the patient could not be matched safely
// (resolved by naming the Patient or making a new one, which applies the message and then the messages
// held behind it for the same visit), and, for the record, those refused (AR) or failed (AE).
import type { SqlDriver } from '../record/index.ts';
import { parseAdt } from './adtMessage.ts';
import type { PatientDecision } from './applyAdt.ts';
import type { Hl7Intake, Settled } from './intake.ts';
import type { MessageStatus, StoredMessage } from './schema.ts';

export const LISTABLE_STATUSES = ['queued', 'rejected', 'failed', 'applied', 'received'] as const;

export interface QueuedMessage {
  seq: number;
  receivedAt: string;
  status: MessageStatus;
  messageType: string | null;
  controlId: string | null;
  organisation: string | null;
  visit: string | null;
  /** Who the message says the person is, from PID, for the person resolving it. */
  person: string;
  reason: string | null;
}

export async function listMessages(driver: SqlDriver, status: MessageStatus = 'queued', limit = 200): Promise<QueuedMessage[]> {
  const rows = await driver.all<StoredMessage>('SELECT * FROM hl7v2_messages WHERE status = ? ORDER BY seq LIMIT ?', [status, limit]);
  return rows.map((r) => ({
    seq: Number(r.seq),
    receivedAt: new Date(Number(r.received_ms)).toISOString(),
    status: r.status,
    messageType: r.message_type,
    controlId: r.control_id,
    organisation: r.organisation,
    visit: r.visit_key ? r.visit_key.slice(r.visit_key.indexOf('|') + 1) : null,
    person: personOf(r.body),
    reason: r.reason,
  }));
}

export interface Resolution {
  resolved: Settled;
  /** Messages that were held behind it for the same visit, applied (or queued again) in order. */
  followed: Settled[];
}

export async function resolveQueued(intake: Hl7Intake, driver: SqlDriver, seq: number, decision: PatientDecision, resolvedBy: string): Promise<Resolution> {
  const row = await driver.get<StoredMessage>('SELECT * FROM hl7v2_messages WHERE seq = ?', [seq]);
  if (!row) throw new Error(`there is no HL7 v2 message ${seq}.`);
  if (row.status !== 'queued') throw new Error(`message ${seq} is ${row.status}, not waiting for a person.`);
  const address = `cli:${resolvedBy}`;
  const resolved = await intake.settle(seq, parseAdt(row.body), row.organisation!, address, { decision, resolvedBy });
  const followed: Settled[] = [];
  if (resolved.status !== 'applied') return { resolved, followed };
  const held = await driver.all<StoredMessage>("SELECT * FROM hl7v2_messages WHERE visit_key = ? AND status = 'queued' AND seq > ? ORDER BY seq", [row.visit_key, seq]);
  for (const next of held) {
    const settled = await intake.settle(Number(next.seq), parseAdt(next.body), next.organisation!, address, { fromQueue: true, resolvedBy });
    followed.push(settled);
    if (settled.status === 'queued') break; // it needs a person too; the rest stay behind it
  }
  return { resolved, followed };
}

/** "SMITH, Jane; born 1940-02-03; F; NX1 2AB; NHS 9990001234" from PID, without trusting it to parse. */
function personOf(body: string): string {
  const pid = body.split(/[\r\n]+/).find((s) => s.startsWith('PID|'));
  if (!pid) return '';
  const f = pid.split('|');
  const comp = (i: number, c: number) => (f[i] ?? '').split('~')[0].split('^')[c] ?? '';
  const ids = (f[3] ?? '').split('~').map((r) => r.split('^'));
  const nhs = ids.find((r) => r[4] === 'NH' || r[3] === 'NHS')?.[0];
  const born = (f[7] ?? '').slice(0, 8);
  return [
    [comp(5, 0), comp(5, 1)].filter(Boolean).join(', '),
    born && `born ${born.slice(0, 4)}-${born.slice(4, 6)}-${born.slice(6, 8)}`,
    f[8],
    comp(11, 4),
    nhs && `NHS ${nhs}`,
  ].filter(Boolean).join('; ');
}
