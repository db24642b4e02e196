// Hands queued ADW messages to MESH. A row is claimed (pending → sending, with a lease) before it is sent
// and marked sent with MESH's message id after; a node that dies mid-send leaves a lease that expires, and
// the message is sent again (at-least-once: the receiver drops the copy by MessageHeader.id and event).
//
// A message that cannot be sent must not hold up the others: after a failure it waits (next_attempt_ms,
// doubling from BACKOFF_MS up to MAX_BACKOFF_MS) while newer messages go out, and a message that can never
// go (no MESH mailbox is linked for a side of it), or still fails after GIVE_UP_AFTER attempts, is marked
// 'failed' with the reason: the delivery worker logs it and notes it on the referral, `carebridge discharge
// adw failed` lists it, and `carebridge discharge adw retry` queues it again once the cause is fixed.
import type { SqlDriver, SqlExecutor } from '../../record/index.ts';
import { clock, inRecordTransaction, type DischargeContext } from '../recordSession.ts';
import { fileCommunication, loadReferral } from '../referrals.ts';
import { ANSWERS, EVENT_NAMES, type EventCode } from './codes.ts';
import { episodeWith } from './outbound.ts';
import type { Messaging } from '../messagingPort.ts';

export interface AdwWorkflowIds { notice: string; response: string }

const LEASE_MS = 60_000;
export const BACKOFF_MS = 30_000;
export const MAX_BACKOFF_MS = 60 * 60_000;
/** About six hours of MESH refusing (30 s doubling to an hour): long enough for an outage, short enough to be seen the same day. */
export const GIVE_UP_AFTER = 12;

interface OutRow { header_id: string; event_code: string; our_ods: string | null; peer_ods: string | null; peer_mailbox: string | null; body: string; referral_identifier: string | null; attempts: number | string }

/** An outgoing message given up on: what it was, to whom, and why. */
export interface UndeliveredAdw { headerId: string; event: string; eventName: string; peerOds: string | null; referralIdentifier: string | null; attempts: number; reason: string }

/** What one delivery pass did: rows claimed (sent, failed or put back to wait), sent, and given up. */
export interface AdwDeliveryPass { claimed: number; sent: number; failed: UndeliveredAdw[] }

/**
 * The queued messages due now and those whose sender's lease ran out (parameters: lease start before which
 * a claim has expired, now, limit). The status is named as a list so that the (direction, status) index is
 * searched for each of the two: written as "pending, or sending with an old claim", SQLite read every
 * outbound row's index entry, a council's years of sent responses on each poll (8 ms per poll at 100,000).
 * A message waiting after a failure is not due until its next_attempt_ms, so it does not hold up newer ones.
 */
export const DUE_FOR_SENDING =
  "SELECT header_id, event_code, our_ods, peer_ods, peer_mailbox, body, referral_identifier, attempts FROM discharge_adw_messages WHERE direction = 'out' AND status IN ('pending', 'sending') AND (status = 'pending' OR claimed_ms < ?) AND (next_attempt_ms IS NULL OR next_attempt_ms <= ?) ORDER BY at_ms LIMIT ?";

/** Sends what is due (at most `limit`); a full pass may leave more, so callers repeat while rows were claimed. */
export async function deliverPendingAdw(driver: SqlDriver, messaging: Pick<Messaging, 'send' | 'mailboxForOrganisation'>, workflowIds: AdwWorkflowIds, limit = 20, now = Date.now()): Promise<AdwDeliveryPass> {
  const rows = await driver.all<OutRow>(DUE_FOR_SENDING, [now - LEASE_MS, now, limit]);
  const pass: AdwDeliveryPass = { claimed: 0, sent: 0, failed: [] };
  for (const row of rows) {
    const key = [row.header_id, row.event_code];
    const claimed = await driver.run(
      "UPDATE discharge_adw_messages SET status = 'sending', claimed_ms = ?, attempts = attempts + 1 WHERE direction = 'out' AND header_id = ? AND event_code = ? AND (status = 'pending' OR (status = 'sending' AND claimed_ms < ?))",
      [now, ...key, now - LEASE_MS],
    );
    if (!claimed) continue;
    pass.claimed++;
    const attempts = Number(row.attempts) + 1;
    const from = row.our_ods ? await messaging.mailboxForOrganisation(row.our_ods) : undefined;
    const to = row.peer_mailbox ?? (row.peer_ods ? await messaging.mailboxForOrganisation(row.peer_ods) : undefined);
    if (!from || !to) {
      // Not a passing fault: trying again changes nothing until someone links the mailbox.
      // Without our own mailbox every message fails alike, so all are sent again; without theirs, theirs.
      const [ods, resend] = !from ? [row.our_ods, '--all'] : [row.peer_ods, `--peer ${row.peer_ods}`];
      pass.failed.push(await giveUp(driver, row, attempts, `No MESH mailbox is linked to ${ods}; link one with carebridge mesh mailbox add, then resend with carebridge discharge adw retry ${resend}.`));
      continue;
    }
    try {
      const { messageId } = await messaging.send({
        from, to,
        workflowId: ANSWERS[row.event_code] ? workflowIds.response : workflowIds.notice,
        subject: EVENT_NAMES[row.event_code as EventCode],
        localId: row.header_id,
        fileName: `${row.header_id}.xml`,
        contentType: 'application/xml',
        body: Buffer.from(row.body, 'utf8'),
      });
      await driver.run("UPDATE discharge_adw_messages SET status = 'sent', mesh_message_id = ?, next_attempt_ms = NULL, detail = NULL WHERE direction = 'out' AND header_id = ? AND event_code = ?", [messageId, ...key]);
      pass.sent++;
    } catch (err) {
      const reason = `Sending failed (attempt ${attempts}): ${(err as Error).message}`;
      if (attempts >= GIVE_UP_AFTER) pass.failed.push(await giveUp(driver, row, attempts, `${reason}; gave up after ${attempts} attempts. Resend with carebridge discharge adw retry ${row.header_id}.`));
      else await driver.run("UPDATE discharge_adw_messages SET status = 'pending', next_attempt_ms = ?, detail = ? WHERE direction = 'out' AND header_id = ? AND event_code = ?", [now + backoff(attempts), reason, ...key]);
    }
  }
  return pass;
}

/** How long to wait after the n-th failed attempt. */
export function backoff(attempts: number): number {
  return Math.min(BACKOFF_MS * 2 ** Math.max(0, attempts - 1), MAX_BACKOFF_MS);
}

async function giveUp(driver: SqlDriver, row: OutRow, attempts: number, reason: string): Promise<UndeliveredAdw> {
  await driver.run("UPDATE discharge_adw_messages SET status = 'failed', next_attempt_ms = NULL, detail = ? WHERE direction = 'out' AND header_id = ? AND event_code = ?", [reason, row.header_id, row.event_code]);
  return {
    headerId: row.header_id, event: row.event_code, eventName: EVENT_NAMES[row.event_code as EventCode] ?? row.event_code, peerOds: row.peer_ods,
    referralIdentifier: row.referral_identifier, attempts, reason,
  };
}

/**
 * MESH reported that a message sent from here was not delivered (a REPORT naming its MESH message id, say
 * not collected in time): it is marked failed like one given up on, so it is listed and can be resent, and
 * returned for the log line and the note on the referral. `known` is false when no message sent from here
 * has that MESH id. A report about a message already answered, or already settled by an earlier copy of the
 * same report, changes nothing (MESH delivers at least once).
 */
export async function settleReportedUndelivered(driver: SqlDriver, report: { linkedMessageId: string; statusCode?: string; statusDescription?: string }): Promise<{ known: boolean; failure?: UndeliveredAdw }> {
  const row = await driver.get<OutRow>(
    "SELECT header_id, event_code, our_ods, peer_ods, peer_mailbox, body, referral_identifier, attempts FROM discharge_adw_messages WHERE direction = 'out' AND mesh_message_id = ?",
    [report.linkedMessageId],
  );
  if (!row) return { known: false };
  const status = [report.statusCode, report.statusDescription].filter(Boolean).join(': ');
  const reason = `MESH reported that it was not delivered${status ? ` (${status})` : ''}. Resend with carebridge discharge adw retry ${row.header_id}.`;
  const settled = await driver.run(
    "UPDATE discharge_adw_messages SET status = 'failed', next_attempt_ms = NULL, detail = ? WHERE direction = 'out' AND header_id = ? AND event_code = ? AND mesh_message_id = ? AND status = 'sent'",
    [reason, row.header_id, row.event_code, report.linkedMessageId],
  );
  if (!settled) return { known: true };
  return {
    known: true,
    failure: {
      headerId: row.header_id, event: row.event_code, eventName: EVENT_NAMES[row.event_code as EventCode] ?? row.event_code, peerOds: row.peer_ods,
      referralIdentifier: row.referral_identifier, attempts: Number(row.attempts), reason,
    },
  };
}

/**
 * Tells the people working on the referral that the other side was not told: a note on it both sides see
 * (the council thinks it answered; the hospital is still waiting). A message of no episode here (a reject
 * of a notice that opened nothing) has no referral to note it on; the log line and the listing show it.
 */
export async function noteUndelivered(ctx: DischargeContext, failure: UndeliveredAdw): Promise<void> {
  if (!failure.referralIdentifier || !failure.peerOds) return;
  await inRecordTransaction(ctx, 'adw-undelivered', async (session) => {
    // A response is sent by us as the council, a notice by us as the hospital, to the episode's peer: a reject sent to
    // another trust that reused this episode's id is not noted on this trust's referral (H-041).
    const episode = await episodeWith(session.tx, { role: ANSWERS[failure.event] ? 'council' : 'hospital', peerOds: failure.peerOds!, identifier: failure.referralIdentifier! });
    if (!episode) return;
    await fileCommunication(session, await loadReferral(session, episode.service_request_id), {
      category: 'Message not sent',
      text: `The ${failure.eventName.toLowerCase()} to ${failure.peerOds ?? 'the other organisation'} could not be sent, so they have not been told: ${failure.reason}`,
    }, undefined, clock(ctx));
  });
}

/** An outgoing message given up on, for the listing. */
export interface FailedAdwRow { header_id: string; event_code: string; peer_ods: string | null; referral_identifier: string | null; attempts: number; at_ms: number; detail: string | null }

/** Every outgoing message given up on, oldest first. */
export async function listFailedAdw(db: SqlExecutor): Promise<FailedAdwRow[]> {
  const rows = await db.all<FailedAdwRow>("SELECT header_id, event_code, peer_ods, referral_identifier, attempts, at_ms, detail FROM discharge_adw_messages WHERE direction = 'out' AND status = 'failed' ORDER BY at_ms, header_id");
  return rows.map((r) => ({ ...r, attempts: Number(r.attempts), at_ms: Number(r.at_ms) }));
}

/**
 * Queues failed messages again, due at once with their attempts reset: one by MessageHeader.id, all to one
 * organisation (after its mailbox was linked), or all. Returns how many.
 */
export async function retryFailedAdw(db: SqlExecutor, which: { headerId: string } | { peerOds: string } | { all: true }): Promise<number> {
  const [where, params] = 'headerId' in which ? ['header_id = ?', [which.headerId]] : 'peerOds' in which ? ['peer_ods = ?', [which.peerOds.trim().toUpperCase()]] : ['1 = 1', []];
  return db.run(`UPDATE discharge_adw_messages SET status = 'pending', attempts = 0, next_attempt_ms = NULL, claimed_ms = NULL WHERE direction = 'out' AND status = 'failed' AND ${where}`, params);
}
