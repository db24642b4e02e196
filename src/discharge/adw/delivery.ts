// Hands queued ADW messages to MESH. A row is claimed (pending → sending, with a lease) before it is sent
// and marked sent with MESH's message id after; a node that dies mid-send leaves a lease that expires, and
// the message is sent again (at-least-once: the receiver drops the copy by MessageHeader.id and event).
import type { SqlDriver } from '../../record/index.ts';
import { ANSWERS, EVENT_NAMES, type EventCode } from './codes.ts';
import type { Messaging } from '../messagingPort.ts';

export interface AdwWorkflowIds { notice: string; response: string }

const LEASE_MS = 60_000;

interface OutRow { header_id: string; event_code: string; our_ods: string | null; peer_ods: string | null; peer_mailbox: string | null; body: string }

/**
 * The queued messages and those whose sender's lease ran out (parameters: lease start before which a claim
 * has expired, limit). The status is named as a list so that the (direction, status) index is searched for
 * each of the two: written as "pending, or sending with an old claim", SQLite read every outbound row's
 * index entry, a council's years of sent responses on each poll (8 ms per poll at 100,000).
 */
export const DUE_FOR_SENDING =
  "SELECT header_id, event_code, our_ods, peer_ods, peer_mailbox, body FROM discharge_adw_messages WHERE direction = 'out' AND status IN ('pending', 'sending') AND (status = 'pending' OR claimed_ms < ?) ORDER BY at_ms LIMIT ?";

/** Sends what is queued; returns how many were handed to MESH. */
export async function deliverPendingAdw(driver: SqlDriver, messaging: Pick<Messaging, 'send' | 'mailboxForOrganisation'>, workflowIds: AdwWorkflowIds, limit = 20, now = Date.now()): Promise<number> {
  const rows = await driver.all<OutRow>(DUE_FOR_SENDING, [now - LEASE_MS, limit]);
  let sent = 0;
  for (const row of rows) {
    const key = [row.header_id, row.event_code];
    const claimed = await driver.run(
      "UPDATE discharge_adw_messages SET status = 'sending', claimed_ms = ?, attempts = attempts + 1 WHERE direction = 'out' AND header_id = ? AND event_code = ? AND (status = 'pending' OR (status = 'sending' AND claimed_ms < ?))",
      [now, ...key, now - LEASE_MS],
    );
    if (!claimed) continue;
    const release = (detail: string) => driver.run("UPDATE discharge_adw_messages SET status = 'pending', detail = ? WHERE direction = 'out' AND header_id = ? AND event_code = ?", [detail, ...key]);
    const from = row.our_ods ? await messaging.mailboxForOrganisation(row.our_ods) : undefined;
    const to = row.peer_mailbox ?? (row.peer_ods ? await messaging.mailboxForOrganisation(row.peer_ods) : undefined);
    if (!from || !to) {
      await release(`No MESH mailbox is linked to ${!from ? row.our_ods : row.peer_ods}; link one with carebridge mesh mailbox add.`);
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
      await driver.run("UPDATE discharge_adw_messages SET status = 'sent', mesh_message_id = ?, detail = NULL WHERE direction = 'out' AND header_id = ? AND event_code = ?", [messageId, ...key]);
      sent++;
    } catch (err) {
      await release(`Sending failed: ${(err as Error).message}`);
    }
  }
  return sent;
}
