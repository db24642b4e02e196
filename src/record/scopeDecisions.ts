// Which patients a caller's scope was found to reach, remembered for that scope object (the access layer
// keeps one per caller for a moment) until this server's next write, and never longer than DECISION_MS.
// A person opening a resident's record reads many of that resident's resources; each read would otherwise
// test the same relationships again, which costs more than the read. Only "reaches" is remembered: a
// refusal is always decided afresh. A write through this server (an admission ending, a dissent recorded)
// forgets everything at once; DECISION_MS bounds what another server's write on the same PostgreSQL can
// leave unseen (hazard H-006).
import type { PatientScope } from './accessControl.ts';
import type { SqlDriver, SqlExecutor } from './storage/driver.ts';
import { patientCheck, scopedPatients } from './search/visibility.ts';

export const DECISION_MS = 2000;

interface Decisions { writes: number; since: number; reached: Set<string>; resolved?: PatientScope }
const remembered = new WeakMap<PatientScope, Decisions>();

const isDriver = (db: SqlExecutor): db is SqlDriver => typeof (db as Partial<SqlDriver>).writes === 'function';

/** What is remembered for the scope, if it is still current (no write ended since, and young enough). */
function currentDecisions(scope: PatientScope, writes: number | undefined): Decisions | undefined {
  const known = remembered.get(scope);
  return known && known.writes === writes && Date.now() - known.since < DECISION_MS ? known : undefined;
}

/** Whether the scope is remembered to reach the patient (answered without a promise: most reads ask it). */
export function knownToReach(db: SqlExecutor, scope: PatientScope, patientId: string): boolean {
  return isDriver(db) && currentDecisions(scope, db.writes())?.reached.has(patientId) === true;
}

/** Whether the scope reaches the patient now. Inside a transaction (`db` is not the driver) nothing is remembered. */
export async function scopeReaches(db: SqlExecutor, scope: PatientScope, patientId: string): Promise<boolean> {
  const driver = isDriver(db) ? db : undefined;
  const writes = driver?.writes();
  const current = currentDecisions(scope, writes);
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

/** The most people a scope is resolved to as a list of ids (see resolvedScope); beyond it, searches keep its relationships. */
export const MAX_RESOLVED = 500;

/**
 * The scope with its relationships already evaluated: the same people, given as ids, when they are at most
 * MAX_RESOLVED (a care home's residents, a ward's patients). A search then checks each row against a short
 * list instead of evaluating every relationship again in each of its statements (the page, the total, each
 * include). Remembered like a decision; inside a transaction, or for a larger scope, the scope itself.
 */
export async function resolvedScope(db: SqlExecutor, scope: PatientScope): Promise<PatientScope> {
  if (!scope.via.length || !isDriver(db)) return scope;
  const writes = db.writes();
  const current = currentDecisions(scope, writes);
  if (current?.resolved) return current.resolved;
  const listed = scopedPatients(scope);
  const rows = await db.all<{ pid: string }>(`${listed.text} LIMIT ${MAX_RESOLVED + 1}`, listed.params);
  if (rows.length > MAX_RESOLVED) return scope;
  const resolved: PatientScope = { patientIds: [...new Set([...scope.patientIds, ...rows.map((r) => r.pid)])], via: [], refusalAdvice: scope.refusalAdvice };
  if (db.writes() === writes) {
    const decisions = current ?? { writes, since: Date.now(), reached: new Set<string>() };
    decisions.resolved = resolved;
    for (const id of resolved.patientIds) decisions.reached.add(id);
    remembered.set(scope, decisions);
  }
  return resolved;
}
