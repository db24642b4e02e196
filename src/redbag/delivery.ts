// Delivery of a sent pack. Inside one CareBridge deployment there is nothing to move: the pack, its Task
// and the hospital's relationship are on the shared record the moment the sending transaction commits, so
// the ward sees it on its next request. This is the seam for sending to another organisation's system:
// when src/messaging exists, a deliverer registered here wraps the document Bundle in a FHIR message and
// sends it over MESH to the hospital's mailbox (found from its ODS code).
import type { Resource } from './recordCalls.ts';

export interface DeliveryTarget {
  /** ODS code of the receiving hospital. */
  hospitalOds: string;
  /** The lifecycle Task just written (its id ties replies back to this pack). */
  task: Resource;
}

export type TransferPackDeliverer = (pack: Resource, target: DeliveryTarget) => Promise<void>;

let external: TransferPackDeliverer | undefined;

/** For the messaging capability: deliver packs to hospitals outside this deployment too. */
export function setTransferPackDeliverer(deliverer: TransferPackDeliverer | undefined): void {
  external = deliverer;
}

/** Called once a pack is on the record; a failure here leaves the pack sent and visible in this deployment. */
export async function deliverTransferPack(pack: Resource, target: DeliveryTarget): Promise<void> {
  await external?.(pack, target);
}
