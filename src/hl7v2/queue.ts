// The messages a person must look at: those held because the patient could not be matched safely, and,
// for the record, those refused (AR) or failed (AE). A held message is resolved by naming the Patient or
// making a new one (which applies it), or dismissed (never applied); either way the messages held behind
// it for the same visit are then applied in order, so one bad message cannot stop a stay's feed for good.
import type { SqlDriver } from '../record/index.ts';
import type { HeldMessageDecision } from '../access/index.ts';
import { parseAdt, type AdtEvent, type PidPerson } from './adtMessage.ts';
import type { PatientDecision } from './applyAdt.ts';
import type { Hl7Intake, Settled } from './intake.ts';
import type { MessageStatus, StoredMessage } from './schema.ts';

export const LISTABLE_STATUSES = ['queued', 'rejected', 'failed', 'applied', 'dismissed', 'received'] as const;

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
  /** The person's decision, for the audit trail; absent when it was not carried out (the message failed or is held again). */
  decision?: HeldMessageDecision;
}

export type { HeldMessageDecision };

/** `ADT^A08 RX9-777103 from RX9, visit VN2026000801, NHS number 9413946000`: the message, without its content. */
function describeMessage(row: StoredMessage, event: AdtEvent): string {
  return [
    `${row.message_type ?? 'ADT'} ${row.control_id ?? '(no control id)'} from ${row.organisation ?? '?'}`,
    `visit ${event.visit.visitNumber}`,
    event.person.nhsNumber && `NHS number ${event.person.nhsNumber}`,
  ].filter(Boolean).join(', ');
}

export async function resolveQueued(intake: Hl7Intake, driver: SqlDriver, seq: number, decision: PatientDecision, resolvedBy: string): Promise<Resolution> {
  const row = await waiting(driver, seq);
  const event = parseAdt(row.body);
  const resolved = await intake.settle(seq, event, row.organisation!, addressOf(resolvedBy), { decision, resolvedBy });
  if (resolved.status !== 'applied') return { resolved, followed: [] };
  const accepted = 'patientId' in decision && decision.acceptDifferentNhsNumber && /although the message carries NHS number/.test(resolved.reason ?? '');
  const audited: HeldMessageDecision = {
    decision: 'newPatient' in decision ? 'hl7v2-new-patient' : accepted ? 'hl7v2-different-nhs-number-accepted' : 'hl7v2-patient-confirmed',
    seq, message: describeMessage(row, event), patientIds: [resolved.patientId!], encounterId: resolved.encounterId, by: resolvedBy, reason: resolved.reason ?? '',
  };
  return { resolved, followed: await releaseHeldBehind(intake, driver, row, resolvedBy), decision: audited };
}

/**
 * A person sets a held message aside without applying it (it is not about this stay, or it is wrong and the
 * PAS will send a correction): it is kept as dismissed, with who and why, and the messages held behind it
 * are applied in order. A repeat of it from the PAS gets the reply it was given and is not applied.
 */
export async function dismissQueued(intake: Hl7Intake, driver: SqlDriver, seq: number, why: string, dismissedBy: string): Promise<Resolution> {
  if (!why.trim()) throw new Error('say why the message is dismissed.');
  const row = await waiting(driver, seq);
  const reason = `dismissed by ${dismissedBy}: ${why.trim()} (it was held because ${row.reason ?? 'of its patient'})`;
  const changed = await driver.run("UPDATE hl7v2_messages SET status = 'dismissed', reason = ?, resolved_by = ?, updated_ms = ? WHERE seq = ? AND status = 'queued'", [reason, dismissedBy, Date.now(), seq]);
  if (!changed) throw new Error(`message ${seq} was settled by someone else just now.`);
  const resolved: Settled = { seq, status: 'dismissed', ack: row.ack ?? '', reason };
  const event = parseAdt(row.body);
  const audited: HeldMessageDecision = {
    decision: 'hl7v2-dismissed', seq, message: describeMessage(row, event), patientIds: await intake.patientsConcerned(event, row.organisation!), by: dismissedBy,
    reason: `${why.trim()} (it was held because ${row.reason ?? 'of its patient'})`,
  };
  return { resolved, followed: await releaseHeldBehind(intake, driver, row, dismissedBy), decision: audited };
}

async function waiting(driver: SqlDriver, seq: number): Promise<StoredMessage> {
  const row = await driver.get<StoredMessage>('SELECT * FROM hl7v2_messages WHERE seq = ?', [seq]);
  if (!row) throw new Error(`there is no HL7 v2 message ${seq}.`);
  if (row.status !== 'queued') throw new Error(`message ${seq} is ${row.status}, not waiting for a person.`);
  return row;
}

const addressOf = (person: string) => `cli:${person}`;

/**
 * Applies, in arrival order, the messages held behind a message a person has just settled, until one needs
 * a person too (the rest stay behind it). The next one is looked up each time, so a message that arrived
 * while earlier ones were being applied is not left behind.
 */
async function releaseHeldBehind(intake: Hl7Intake, driver: SqlDriver, settled: StoredMessage, resolvedBy: string): Promise<Settled[]> {
  const followed: Settled[] = [];
  for (let after = Number(settled.seq); ;) {
    const next = await driver.get<StoredMessage>("SELECT * FROM hl7v2_messages WHERE visit_key = ? AND status = 'queued' AND seq > ? ORDER BY seq LIMIT 1", [settled.visit_key, after]);
    if (!next) return followed;
    const result = await intake.settle(Number(next.seq), parseAdt(next.body), next.organisation!, addressOf(resolvedBy), { fromQueue: true, resolvedBy });
    followed.push(result);
    if (result.status === 'queued') return followed;
    after = Number(next.seq);
  }
}

/**
 * "van DIJK, Jane; born 1940-02-03; F; NX1 2AB; NHS 9990001234 (PID-2)": who the message says the person is,
 * read as the intake reads it (the whole surname, the NHS number from PID-2 where a v2.3 feed puts it), so
 * the person resolving it sees what matching saw. A message that no longer reads is shown from its raw PID.
 */
function personOf(body: string): string {
  let person: PidPerson;
  try {
    person = parseAdt(body).person;
  } catch {
    return rawPersonOf(body);
  }
  return [
    [person.family, person.given].filter(Boolean).join(', '),
    person.birthDate && `born ${person.birthDate}`,
    person.gender && SEX_LETTER[person.gender],
    person.postcode,
    person.nhsNumber && `NHS ${person.nhsNumber}${person.nhsNumberField === 'PID-2' ? ' (PID-2)' : ''}`,
  ].filter(Boolean).join('; ');
}

const SEX_LETTER: Readonly<Record<NonNullable<PidPerson['gender']>, string>> = { male: 'M', female: 'F', other: 'O', unknown: 'U' };

/** The PID fields as sent, first repetitions and components only, for a message the reader refuses. */
function rawPersonOf(body: string): string {
  const pid = body.split(/[\r\n]+/).find((s) => s.startsWith('PID|'));
  if (!pid) return '';
  const f = pid.split('|');
  const comp = (i: number, c: number) => ((f[i] ?? '').split('~')[0].split('^')[c] ?? '').split('&')[0];
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
