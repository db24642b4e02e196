// What happens to each message received: it is stored before anything is acknowledged; a repeat of a
// control id gets the reply the first one got, without being applied again (unless that reply was an AR
// for a cause since fixed on our side, H-045); then it is applied to the record and settled (applied,
// queued for a person, rejected AR, failed AE) in the same transaction.
import { createHash } from 'node:crypto';
import { FhirError, NHS_NUMBER_SYSTEM, type AccessControl, type SqlDriver } from '../record/index.ts';
import type { Actor } from '../access/index.ts';
import { Hl7Rejection, parseAdt, readHeader, type AdtEvent, type Hl7Header, type Hl7Problem } from './adtMessage.ts';
import { buildAck, type AckNote } from './ack.ts';
import { textOfBytes } from './hl7Text.ts';
import { applyAdt, sendingOrganisation, type PatientDecision } from './applyAdt.ts';
import { RecordSession, searchToken } from './recordSession.ts';
import { visitNumberSystem } from './encounterUpdate.ts';
import type { MessageStatus, StoredMessage } from './schema.ts';
import type { MllpFrame } from './mllp.ts';

export interface IntakeOptions {
  driver: SqlDriver;
  /** The FHIR base URL the record writes into answers (nothing stored depends on it). */
  base: string;
  /** MSH-4 as sent → ODS code, for facilities not sent as ODS codes. */
  facilities: Record<string, string>;
  /** The AccessControl (audited) the feed writes with; absent only on a server without authentication. */
  controlFor?: (actor: Actor, address?: string) => Promise<AccessControl>;
  maxMessageBytes: number;
  /** Where failures that are not the message's fault are reported (the server's log). */
  log?: (text: string) => void;
}

export interface Settled {
  seq: number;
  status: MessageStatus;
  ack: string;
  reason?: string;
  patientId?: string;
  encounterId?: string;
}

/** How a stored message is settled: from the wire, or from the queue (a person's decision, or replayed after one). */
export interface SettleHow {
  decision?: PatientDecision;
  resolvedBy?: string;
  /** A held message replayed after the one ahead of it was resolved. */
  fromQueue?: boolean;
}

const ODS_CODE = /^[A-Z0-9]{3,10}$/;
const FINAL: ReadonlySet<string> = new Set(['applied', 'queued', 'rejected', 'failed', 'dismissed']);
const UNRESTRICTED_FEED: AccessControl = { require: () => undefined, mayRead: () => true };

export class Hl7Intake {
  constructor(private readonly options: IntakeOptions) {}

  /** The reply to one MLLP frame. Never throws: whatever goes wrong becomes an AE or AR. */
  async receive(frame: MllpFrame, peer: string): Promise<string> {
    const text = textOfBytes(frame.bytes);
    const header = readHeader(text);
    try {
      if (frame.oversized) {
        return (await this.reject(text, header, peer, { ack: 'AR', code: 100, location: 'MSH', text: `The message is ${frame.size} bytes, more than the ${this.options.maxMessageBytes} this listener accepts.` }, false)).ack;
      }
      const sender = header.controlId && header.sendingFacility !== undefined ? senderKey(header) : undefined;
      const hash = sha256(text);
      if (sender) {
        const earlier = await this.find(sender, header.controlId!);
        if (earlier && earlier.body_sha256 !== hash) {
          return (await this.reject(text, header, peer, { ack: 'AR', code: 205, location: 'MSH-10', text: `Control id ${header.controlId} was already used by message ${earlier.seq}, which said something else; send each message with a new control id.` }, false)).ack;
        }
        // A rejection whose cause was ours to fix (a facility not mapped, an Organization not yet in the
        // record) is not an answer for good: its AR told the PAS to send it again (hazard H-045).
        const fixed = earlier?.status === 'rejected' && (await this.releaseFixedRejection(earlier, text, peer));
        if (earlier && !fixed && FINAL.has(earlier.status)) return earlier.ack!;
        if (earlier && !fixed) return (await this.settle(Number(earlier.seq), parseAdt(text), earlier.organisation!, peer)).ack;
      }
      let event: AdtEvent;
      try {
        event = parseAdt(text);
      } catch (err) {
        if (err instanceof Hl7Rejection) return (await this.reject(text, header, peer, err.problem, true)).ack;
        return (await this.reject(text, header, peer, { ack: 'AR', code: 100, text: `The message could not be read: ${(err as Error).message}` }, true)).ack;
      }
      const ods = this.organisationOf(event.header.sendingFacility);
      if (!ods) {
        return (await this.reject(text, header, peer, { ack: 'AR', code: 204, location: 'MSH-4', text: `Sending facility ${JSON.stringify(event.header.sendingFacility)} is not an ODS code and is not mapped to one (CAREBRIDGE_HL7_FACILITIES).` }, true)).ack;
      }
      const seq = await this.store(text, event, ods, peer);
      if (seq === undefined) return this.receive(frame, peer); // another connection stored the same message just now
      return (await this.settle(seq, event, ods, peer)).ack;
    } catch (err) {
      // The database is down or something unforeseen: nothing is settled, so a resend is applied afresh.
      // AR, not AE: HL7 table 0008 keeps AR for a failure unrelated to the message's content, after which
      // the sender decides to send it again; AE says the content is wrong, and a PAS may then drop it.
      // The sender is not told the internal detail; the operator's log is.
      this.options.log?.(`HL7 v2 message ${header.controlId ?? '(no control id)'} from ${peer} not applied: ${(err as Error).stack ?? err}`);
      return buildAck(header, 'AR', { severity: 'E', problem: { code: 207, text: 'CareBridge could not store or apply the message just now; send it again.' } });
    }
  }

  /**
   * Applies a stored message and settles it. With a person's `decision` about the patient (resolving a
   * queued message) it is applied to that Patient; without, the patient is matched or the message queued.
   */
  async settle(seq: number, event: AdtEvent, ods: string, address: string, how: SettleHow = {}): Promise<Settled> {
    // Another node may update the same Encounter between our read and write (412): read again and retry.
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.settleOnce(seq, event, ods, address, how);
      } catch (err) {
        if (!(err instanceof FhirError && (err.status === 412 || err.status === 409)) || attempt >= 3) throw err;
      }
    }
  }

  private async settleOnce(seq: number, event: AdtEvent, ods: string, address: string, how: SettleHow): Promise<Settled> {
    const { driver } = this.options;
    const { decision, resolvedBy } = how;
    const fromQueue = Boolean(decision || how.fromQueue);
    const access = await this.accessFor(ods, address, resolvedBy);
    let session: RecordSession | undefined;
    let settled: Settled;
    try {
      settled = await driver.transaction(async (tx) => {
        const row = await tx.get<{ status: MessageStatus; ack: string | null; reason: string | null }>(`SELECT status, ack, reason FROM hl7v2_messages WHERE seq = ?${driver.dialect === 'postgres' ? ' FOR UPDATE' : ''}`, [seq]);
        if (!row) throw new Error(`message ${seq} is not stored`);
        const expected = fromQueue ? 'queued' : 'received';
        if (row.status !== expected) {
          if (fromQueue) throw new Error(`message ${seq} is ${row.status}, not waiting for a person.`);
          return { seq, status: row.status, ack: row.ack!, reason: row.reason ?? undefined };
        }
        session = new RecordSession(this.options.base, driver, tx, access);
        const ahead = await tx.get<{ seq: number }>("SELECT seq FROM hl7v2_messages WHERE visit_key = ? AND status = 'queued' AND seq < ? ORDER BY seq LIMIT 1", [visitKey(ods, event), seq]);
        // A visit's messages apply in the order they came, a person's decision too: out of order, the older
        // message would later overwrite the newer (an earlier ward or expected date), or be refused.
        if (ahead && decision) throw new Error(`message ${ahead.seq} for the same visit is waiting ahead of it: resolve or dismiss that one first.`);
        const outcome = ahead
          ? { kind: 'queued' as const, reason: `held behind message ${ahead.seq} for the same visit, which waits for a person` }
          : await applyAdt(session, event, ods, decision);
        const result: Settled = outcome.kind === 'applied'
          ? { seq, status: 'applied', ack: buildAck(event.header, 'AA'), patientId: outcome.patientId, encounterId: outcome.encounterId, reason: `patient matched by ${outcome.how}` }
          : { seq, status: 'queued', ack: buildAck(event.header, 'AA', heldNote(outcome.reason, event)), reason: outcome.reason };
        // A message applied from the queue keeps the reply its sender was given when it arrived.
        if (fromQueue) result.ack = row.ack!;
        await tx.run(
          'UPDATE hl7v2_messages SET status = ?, reason = ?, ack = ?, patient_id = ?, encounter_id = ?, resolved_by = ?, updated_ms = ? WHERE seq = ?',
          [result.status, result.reason ?? null, result.ack, result.patientId ?? null, result.encounterId ?? null, resolvedBy ?? null, Date.now(), seq],
        );
        return result;
      });
    } catch (err) {
      session?.report(false);
      const problem = problemOf(err);
      if (!problem) throw err;
      // Refused: nothing the attempt wrote is kept, and the message is settled with its reason.
      return this.settleRefused(seq, event.header, problem, resolvedBy, fromQueue);
    }
    session?.report(true);
    return settled;
  }

  /**
   * The Patients a stored message concerns, for the audit of a person's decision about it: the one whose
   * stay (visit) it names, and the one holding its NHS number. Read as the feed's own lookup, unaudited:
   * what is read goes only into that audit entry.
   */
  async patientsConcerned(event: AdtEvent, ods: string): Promise<string[]> {
    const { driver, base } = this.options;
    const session = new RecordSession(base, driver, driver, UNRESTRICTED_FEED);
    const visits = await session.search('Encounter', [['identifier', searchToken(visitNumberSystem(ods), event.visit.visitNumber)], ['_count', '2']]);
    const holders = event.person.nhsNumber ? await session.search('Patient', [['identifier', `${NHS_NUMBER_SYSTEM}|${event.person.nhsNumber}`], ['_count', '5']]) : [];
    const ids = [...visits.map((v) => String(v.subject?.reference ?? '').replace(/^Patient\//, '')), ...holders.map((p) => p.id)];
    return [...new Set(ids.filter(Boolean))];
  }

  private async settleRefused(seq: number, header: Hl7Header, problem: Hl7Problem, resolvedBy: string | undefined, fromQueue: boolean): Promise<Settled> {
    const status: MessageStatus = problem.ack === 'AR' ? 'rejected' : 'failed';
    if (fromQueue) {
      // The sender was told long ago; what is left is to record why the message could not be applied.
      await this.options.driver.run("UPDATE hl7v2_messages SET status = ?, reason = ?, resolved_by = ?, updated_ms = ? WHERE seq = ? AND status = 'queued'", [status, problem.text, resolvedBy ?? null, Date.now(), seq]);
      return { seq, status, ack: '', reason: problem.text };
    }
    const ack = buildAck(header, problem.ack, { severity: 'E', problem });
    await this.options.driver.run("UPDATE hl7v2_messages SET status = ?, reason = ?, ack = ?, updated_ms = ? WHERE seq = ? AND status = 'received'", [status, problem.text, ack, Date.now(), seq]);
    return { seq, status, ack, reason: problem.text };
  }

  private organisationOf(facility: string): string | undefined {
    const mapped = this.options.facilities[facility];
    if (mapped) return mapped;
    const namespace = facility.split('^')[0].trim().toUpperCase();
    return ODS_CODE.test(namespace) ? namespace : undefined;
  }

  private async accessFor(ods: string, address: string, resolvedBy?: string): Promise<AccessControl> {
    if (!this.options.controlFor) return UNRESTRICTED_FEED;
    const name = resolvedBy ? `HL7 v2 queue, resolved by ${resolvedBy}` : `HL7 v2 ADT feed from ${ods}`;
    return this.options.controlFor({ kind: 'system', clientId: 'carebridge-hl7v2', name, organisation: ods, purpose: 'TREAT', scope: 'system/*.cruds' }, address);
  }

  private async find(sender: string, controlId: string): Promise<StoredMessage | undefined> {
    return this.options.driver.get<StoredMessage>('SELECT * FROM hl7v2_messages WHERE sender = ? AND control_id = ?', [sender, controlId]);
  }

  /**
   * A message rejected (AR) for a reason that is CareBridge's configuration or reference data, not its
   * content, and sent again unchanged (hazard H-045): its sending facility is not mapped to an ODS code
   * (CAREBRIDGE_HL7_FACILITIES), or its organisation is not in the record (or is there twice). Such a
   * message is read afresh on a repeat. When it still cannot be read or mapped, or its organisation is
   * still not in the record once, nothing has changed and its stored AR stands (false). Otherwise the
   * rejected row gives up its control id (keeping its body, reason and reply, as what happened then) and
   * the caller stores and applies the message as a new one, in arrival order (true). A message whose
   * content was refused (AR for a malformed message, AE), or that was accepted, keeps its reply for good.
   */
  private async releaseFixedRejection(earlier: StoredMessage, text: string, peer: string): Promise<boolean> {
    // Only a refusal the sender was told of: one held (AA) and refused later, from the queue, was answered AA.
    if (!/(^|\r)MSA\|AR\|/.test(earlier.ack ?? '')) return false;
    let event: AdtEvent;
    try {
      event = parseAdt(text);
    } catch {
      return false;
    }
    const ods = this.organisationOf(event.header.sendingFacility);
    if (!ods || !(await this.organisationKnown(ods, peer))) return false;
    await this.options.driver.run("UPDATE hl7v2_messages SET control_id = NULL, updated_ms = ? WHERE seq = ? AND status = 'rejected'", [Date.now(), earlier.seq]);
    return true;
  }

  /** Whether the organisation `ods` is now in the record, once, as applying a message needs it. */
  private async organisationKnown(ods: string, address: string): Promise<boolean> {
    const { driver } = this.options;
    const access = await this.accessFor(ods, address);
    let session: RecordSession | undefined;
    try {
      return await driver.transaction(async (tx) => {
        session = new RecordSession(this.options.base, driver, tx, access);
        try {
          await sendingOrganisation(session, ods);
          return true;
        } catch (err) {
          if (err instanceof Hl7Rejection) return false;
          throw err;
        }
      });
    } finally {
      session?.report(true);
    }
  }

  /** Stores a message to be applied; undefined when the same (sender, control id) was stored meanwhile. */
  private async store(text: string, event: AdtEvent, ods: string, peer: string): Promise<number | undefined> {
    const now = Date.now();
    const rows = await this.options.driver.insertManyReturning<{ seq: number }>(
      'hl7v2_messages',
      ['sender', 'control_id', 'message_type', 'organisation', 'visit_key', 'peer', 'received_ms', 'updated_ms', 'body', 'body_sha256', 'status'],
      [[senderKey(event.header), event.header.controlId, `ADT^${event.trigger}`, ods, visitKey(ods, event), peer, now, now, storable(text), sha256(text), 'received']],
      'seq',
    ).catch(async (err) => {
      if (await this.find(senderKey(event.header), event.header.controlId)) return [];
      throw err;
    });
    return rows.length ? Number(rows[0].seq) : undefined;
  }

  /**
   * Stores a message refused before it could be applied, with its reason, and returns the reply. With
   * `keyed`, under its (sender, control id), so a resend gets the same reply; otherwise without a key
   * (its control id belongs to another message, or it has none).
   */
  private async reject(text: string, header: Partial<Hl7Header>, peer: string, problem: Hl7Problem, keyed: boolean): Promise<Settled> {
    const ack = buildAck(header, problem.ack, { severity: 'E', problem });
    const status: MessageStatus = problem.ack === 'AR' ? 'rejected' : 'failed';
    const key = keyed && header.controlId && header.sendingFacility !== undefined ? [senderKey(header), header.controlId] : [null, null];
    const now = Date.now();
    const type = header.messageType ? header.messageType.split('^').slice(0, 2).join('^').slice(0, 20) : null;
    const insert = (k: (string | null)[]) => this.options.driver.insertManyReturning<{ seq: number }>(
      'hl7v2_messages',
      ['sender', 'control_id', 'message_type', 'peer', 'received_ms', 'updated_ms', 'body', 'body_sha256', 'status', 'reason', 'ack'],
      [[k[0], k[1], type, peer, now, now, storable(text), sha256(text), status, problem.text, ack]],
      'seq',
    );
    const rows = await insert(key).catch(() => insert([null, null]));
    return { seq: Number(rows[0].seq), status, ack, reason: problem.text };
  }
}

/** ERR-2 names the field the NHS number was read from (PID-2 in v2.2/v2.3 feeds), else PID-3, which had none. */
function heldNote(reason: string, event: AdtEvent): AckNote {
  return { severity: 'W', problem: { code: 204, location: event.person.nhsNumberField ?? 'PID-3', text: `Accepted and held for a person to confirm the patient: ${reason}.` } };
}

/** What a refusal says to the sender; undefined for failures that are not about the message. */
function problemOf(err: unknown): Hl7Problem | undefined {
  if (err instanceof Hl7Rejection) return err.problem;
  // The record refused what the message would make (e.g. an invalid value): the message's content is at fault.
  if (err instanceof FhirError && err.status >= 400 && err.status < 500 && err.status !== 409 && err.status !== 412) {
    return { ack: 'AE', code: 207, text: `The record refused the change: ${err.issues.map((i) => i.diagnostics ?? i.code).join('; ')}` };
  }
  return undefined;
}

export function senderKey(header: Partial<Hl7Header>): string {
  return `${header.sendingApplication ?? ''}|${header.sendingFacility ?? ''}`;
}

function visitKey(ods: string, event: AdtEvent): string {
  return `${ods}|${event.visit.visitNumber}`;
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/** PostgreSQL text cannot hold NUL; keep what was sent readable and hashable anyway. */
function storable(text: string): string {
  return text.replace(/\0/g, '\\X00\\');
}
