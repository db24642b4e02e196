// Which patients a caller's scope was found to reach, remembered for that scope object (the access layer
// keeps one per caller for a moment) until this server's next write, and never longer than DECISION_MS.
// A person opening a resident's record reads many of that resident's resources; each read would otherwise
// test the same relationships again, which costs more than the read. Only "reaches" is remembered: a
// refusal is always decided afresh. A write through this server (an admission ending, a dissent recorded)
// forgets everything at once; DECISION_MS bounds what another server's write on the same PostgreSQL can
// leave unseen (hazard H-006).
import type { PatientScope } from './accessControl.ts';
import type { SqlDriver, SqlExecutor } from './storage/driver.ts';
import { patientCheck } from './search/visibility.ts';

export const DECISION_MS = 2000;

interface Decisions { writes: number; since: number; reached: Set<string> }
const remembered = new WeakMap<PatientScope, Decisions>();

const isDriver = (db: SqlExecutor): db is SqlDriver => typeof (db as Partial<SqlDriver>).writes === 'function';

/** Whether the scope reaches the patient now. Inside a transaction (`db` is not the driver) nothing is remembered. */
export async function scopeReaches(db: SqlExecutor, scope: PatientScope, patientId: string): Promise<boolean> {
  const driver = isDriver(db) ? db : undefined;
  const writes = driver?.writes();
  const known = remembered.get(scope);
  const current = known && known.writes === writes && Date.now() - known.since < DECISION_MS ? known : undefined;
  if (current?.reached.has(patientId)) return true;
  const check = patientCheck(scope);
  const reached = Boolean(await db.get(check.text, [patientId, ...check.params]));
  // Kept only when no write ended while it was decided (the decision may predate that write).
  if (reached && driver && driver.writes() === writes) {
    if (current) current.reached.add(patientId);
    else remembered.set(scope, { writes: writes!, since: Date.now(), reached: new Set([patientId]) });
  }
  return reached;
}
