// HL7 v2 ADT intake: an MLLP listener for A01/A02/A03/A08/A11/A13 from hospital PAS feeds. Each message
// is stored, acknowledged (AA/AE/AR) and applied to the spell's Encounter in the record (an A08 also to the
// Patient's name and address, when it is certainly about them: H-058); a message whose
// patient cannot be matched safely waits for a person (`carebridge hl7 queue`). It never calls discharge:
// discharge reads the Encounter changes from the record's change feed.
import type { AccessControl, SqlDriver } from '../record/index.ts';
import type { Actor } from '../access/index.ts';
import { Hl7Intake } from './intake.ts';
import { listenMllp } from './mllp.ts';
import { migrateHl7v2 } from './schema.ts';

export { EXPECTED_DISCHARGE_EXTENSION, VISIT_NUMBER_SYSTEM_BASE, DISCHARGE_DESTINATION_SYSTEM, visitNumberSystem } from './encounterUpdate.ts';
export { WARD_SYSTEM_BASE, type PatientDecision } from './applyAdt.ts';
export { listMessages, resolveQueued, dismissQueued, LISTABLE_STATUSES, type QueuedMessage, type Resolution, type HeldMessageDecision } from './queue.ts';
export { migrateHl7v2, HL7V2_MIGRATIONS, type MessageStatus } from './schema.ts';
export { Hl7Intake, type Settled } from './intake.ts';

export interface Hl7v2Options {
  driver: SqlDriver;
  /** Bound like the HTTP server: loopback unless HOST says otherwise. */
  host: string;
  port: number;
  maxMessageBytes: number;
  facilities: Record<string, string>;
  base?: string;
  controlFor?: (actor: Actor, address?: string) => Promise<AccessControl>;
  log?: (text: string) => void;
}

export interface Hl7v2Listener {
  host: string;
  port: number;
  close(): Promise<void>;
}

export async function startHl7v2(options: Hl7v2Options): Promise<Hl7v2Listener> {
  await migrateHl7v2(options.driver);
  const intake = hl7Intake(options);
  return listenMllp(
    { host: options.host, port: options.port, maxMessageBytes: options.maxMessageBytes, onProblem: options.log },
    (frame, peer) => intake.receive(frame, peer),
  );
}

/** The intake without a listener: for the CLI resolving queued messages, and for tests. */
export function hl7Intake(options: Omit<Hl7v2Options, 'host' | 'port' | 'maxMessageBytes'> & { maxMessageBytes?: number }): Hl7Intake {
  return new Hl7Intake({
    driver: options.driver,
    base: options.base ?? 'http://localhost/fhir',
    facilities: options.facilities,
    controlFor: options.controlFor,
    maxMessageBytes: options.maxMessageBytes ?? 1024 * 1024,
    log: options.log,
  });
}
