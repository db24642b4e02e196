// Delivery of a sent pack and of each later step. Inside one CareBridge deployment there is nothing to
// move: the pack, its Task and the hospital's relationship are on the shared record the moment the sending
// transaction commits, so the ward sees it on its next request. For a hospital served by another system a
// courier (src/redbag/overMesh.ts, wired by the server) carries the pack there as a FHIR message over MESH,
// and carries each step back and forth, so both sides' Tasks move together.
import type { RecordCall, Resource } from './recordCalls.ts';
import type { TransferStep } from './codes.ts';

export interface DeliveryTarget {
  /** ODS code of the receiving hospital. */
  hospitalOds: string;
  /** ODS code of the sending care home. */
  homeOds?: string;
  /** The lifecycle Task just written (its id ties replies back to this pack). */
  task: Resource;
}

export type TransferPackDeliverer = (pack: Resource, target: DeliveryTarget) => Promise<void>;

/** Carries packs and steps to organisations served by another system; one per server. */
export interface RedBagCourier {
  /** Before anything is written: why a pack from this home cannot reach this hospital (no route), or undefined. */
  cannotDeliver(homeOds: string, hospitalOds: string): Promise<string | undefined>;
  /** The pack, once it is on the record here. */
  deliverPack(pack: Resource, target: DeliveryTarget): Promise<void>;
  /** A step just recorded here, to the other side when it is served elsewhere (nothing when it is local). */
  relayStep(call: RecordCall, task: Resource, step: TransferStep): Promise<void>;
}

let external: TransferPackDeliverer | undefined;

/** A process-wide deliverer (kept for callers of the first slice); a server's courier takes precedence. */
export function setTransferPackDeliverer(deliverer: TransferPackDeliverer | undefined): void {
  external = deliverer;
}

/** Called once a pack is on the record; a failure here leaves the pack sent and visible in this deployment. */
export async function deliverTransferPack(pack: Resource, target: DeliveryTarget, courier?: RedBagCourier): Promise<void> {
  if (courier) await courier.deliverPack(pack, target);
  else await external?.(pack, target);
}
