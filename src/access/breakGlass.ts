// Break-glass: a person caring for someone outside their recorded relationships (an emergency, a referral
// not yet on the record) declares why, and sees that person's record for a few hours. It is allowed, audited,
// and raises an alert that stays in the privacy officers' queue until one of them reviews it.
import { randomUUID } from 'node:crypto';
import { validate } from 'uuid';
import { FhirError, handleFhirRequest, UNRESTRICTED, type SqlDriver, type SqlExecutor } from '../record/index.ts';
import type { Role, UserActor } from './actor.ts';

export const BREAK_GLASS_HOURS = 4;

/** Why the glass was broken: a short list a privacy officer can sort by, plus free text. */
export const BREAK_GLASS_REASONS = {
  emergency: 'Emergency care: the person needs care now',
  'new-referral': 'A new referral or admission not yet on the record',
  safeguarding: 'A safeguarding concern',
  other: 'Another reason (explained below)',
} as const;
export type BreakGlassReason = keyof typeof BREAK_GLASS_REASONS;

/** Roles that give direct care; only they may break the glass. */
const MAY_BREAK_GLASS: ReadonlySet<Role> = new Set(['care-home-staff', 'care-home-manager', 'ward-nurse', 'discharge-coordinator', 'social-worker', 'gp']);

export interface BreakGlassGrant {
  id: string;
  userId: string;
  userName: string;
  organisation: string | null;
  role: Role;
  patientId: string;
  reasonCode: BreakGlassReason;
  reason: string;
  startedAt: string;
  expiresAt: string;
  review?: { by: string; at: string; outcome: 'appropriate' | 'inappropriate'; note: string };
}

interface GrantRow {
  id: string; user_id: string; user_name: string; organisation: string | null; role: string; patient_id: string; reason_code: string; reason: string;
  started_ms: number; expires_ms: number; reviewed_by: string | null; reviewed_ms: number | null; review_outcome: string | null; review_note: string | null;
}

function toGrant(r: GrantRow): BreakGlassGrant {
  return {
    id: r.id,
    userId: r.user_id,
    userName: r.user_name,
    organisation: r.organisation,
    role: r.role as Role,
    patientId: r.patient_id,
    reasonCode: r.reason_code as BreakGlassReason,
    reason: r.reason,
    startedAt: new Date(Number(r.started_ms)).toISOString(),
    expiresAt: new Date(Number(r.expires_ms)).toISOString(),
    ...(r.reviewed_ms !== null && r.reviewed_ms !== undefined
      ? { review: { by: r.reviewed_by ?? '', at: new Date(Number(r.reviewed_ms)).toISOString(), outcome: r.review_outcome as 'appropriate' | 'inappropriate', note: r.review_note ?? '' } }
      : {}),
  };
}

function invalid(diagnostics: string, expression?: string): FhirError {
  return new FhirError(400, [{ severity: 'error', code: 'invalid', diagnostics, ...(expression ? { expression: [expression] } : {}) }]);
}

/**
 * `submission` (optional) names the form or request the declaration came from: the same submission again
 * (a second click, a resent request) answers with the grant it made instead of a second grant and alert.
 */
export interface BreakGlassRequest { patientId: string; reasonCode: string; reason: string; submission?: string }

/** Checks the request and the person exist, then records the grant. */
export async function declareBreakGlass(driver: SqlDriver, actor: UserActor, request: BreakGlassRequest, now = Date.now()): Promise<BreakGlassGrant> {
  if (!MAY_BREAK_GLASS.has(actor.role)) {
    throw new FhirError(403, [{ severity: 'error', code: 'forbidden', diagnostics: `Break-glass is for staff giving direct care; the ${actor.role} role cannot use it.` }]);
  }
  if (!(request.reasonCode in BREAK_GLASS_REASONS)) {
    throw invalid(`reasonCode must be one of ${Object.keys(BREAK_GLASS_REASONS).join(', ')}.`, 'reasonCode');
  }
  const reason = (request.reason ?? '').trim();
  if (reason.length < 10) throw invalid('Say why you need this record (at least 10 characters): a privacy officer will read it.', 'reason');
  if (reason.length > 1000) throw invalid('The reason must be at most 1000 characters.', 'reason');
  const patientId = request.patientId.replace(/^Patient\//, '');
  if (!/^[A-Za-z0-9\-.]{1,64}$/.test(patientId)) throw invalid(`'${request.patientId}' is not a Patient id.`, 'patient');
  // The person must exist (404 otherwise); looked up without restriction, as nothing is shown.
  await handleFhirRequest({ base: '', driver, access: UNRESTRICTED }, { method: 'GET', path: `Patient/${patientId}`, query: [] });
  const grant: GrantRow = {
    id: randomUUID(), user_id: actor.userId, user_name: actor.name, organisation: actor.organisation ?? null, role: actor.role, patient_id: patientId,
    reason_code: request.reasonCode, reason, started_ms: now, expires_ms: now + BREAK_GLASS_HOURS * 3_600_000,
    reviewed_by: null, reviewed_ms: null, review_outcome: null, review_note: null,
  };
  const submission = request.submission && validate(request.submission) ? request.submission : null;
  const inserted = await driver.run(
    `INSERT INTO access_break_glass (id, user_id, user_name, organisation, role, patient_id, reason_code, reason, started_ms, expires_ms, submission)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
    [grant.id, grant.user_id, grant.user_name, grant.organisation, grant.role, grant.patient_id, grant.reason_code, grant.reason, grant.started_ms, grant.expires_ms, submission],
  );
  if (inserted || !submission) return toGrant(grant);
  const first = await driver.get<GrantRow>('SELECT * FROM access_break_glass WHERE user_id = ? AND patient_id = ? AND submission = ?', [actor.userId, patientId, submission]);
  if (!first) throw new Error(`The break-glass grant for submission ${submission} was neither stored nor found.`);
  const again = toGrant(first);
  repeated.add(again);
  return again;
}

/** Grants answered to a form sent again (a double click): the declaration they repeat is audited already. */
const repeated = new WeakSet<BreakGlassGrant>();

/** Whether this grant was answered to the same form sent again, rather than declared by this request. */
export function isRepeatedDeclaration(grant: BreakGlassGrant): boolean {
  return repeated.has(grant);
}

/**
 * The patients this user, in this role and organisation, holds a break-glass grant for right now, and when
 * the first of those grants ends (Infinity when there are none).
 */
export async function grantsInForce(db: SqlExecutor, actor: UserActor, now = Date.now()): Promise<{ patientIds: string[]; until: number }> {
  const rows = await db.all<{ patient_id: string; expires_ms: number }>(
    'SELECT patient_id, expires_ms FROM access_break_glass WHERE user_id = ? AND expires_ms > ? AND role = ? AND COALESCE(organisation, \'\') = ?',
    [actor.userId, now, actor.role, actor.organisation ?? ''],
  );
  return { patientIds: rows.map((r) => r.patient_id), until: Math.min(Infinity, ...rows.map((r) => Number(r.expires_ms))) };
}

/** The privacy officers' queue: grants not yet reviewed, oldest first; or every grant, newest first. */
export async function listBreakGlass(db: SqlExecutor, filter: { open?: boolean; patientId?: string; limit?: number } = {}): Promise<BreakGlassGrant[]> {
  const where: string[] = [];
  const params: (string | number)[] = [];
  if (filter.open) where.push('reviewed_ms IS NULL');
  if (filter.patientId) {
    where.push('patient_id = ?');
    params.push(filter.patientId);
  }
  const order = filter.open ? 'started_ms ASC' : 'started_ms DESC';
  const rows = await db.all<GrantRow>(
    `SELECT * FROM access_break_glass ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY ${order}, id LIMIT ?`,
    [...params, Math.min(filter.limit ?? 200, 1000)],
  );
  return rows.map(toGrant);
}

/** A privacy officer's verdict; a grant is reviewed once. */
export async function reviewBreakGlass(
  driver: SqlDriver, reviewer: UserActor, id: string, review: { outcome: string; note?: string }, now = Date.now(),
): Promise<BreakGlassGrant> {
  if (reviewer.role !== 'privacy-officer') throw new FhirError(403, [{ severity: 'error', code: 'forbidden', diagnostics: 'Only a privacy officer reviews break-glass alerts.' }]);
  if (review.outcome !== 'appropriate' && review.outcome !== 'inappropriate') throw invalid("outcome must be 'appropriate' or 'inappropriate'.", 'outcome');
  const note = (review.note ?? '').trim();
  if (review.outcome === 'inappropriate' && note.length < 5) throw invalid('Say what was inappropriate (the note is kept with the alert).', 'note');
  // Kept with the alert and copied into the audit trail, as a declaration's reason is: bounded alike.
  if (note.length > 1000) throw invalid('The note must be at most 1000 characters.', 'note');
  return driver.transaction(async (tx) => {
    const row = await tx.get<GrantRow>('SELECT * FROM access_break_glass WHERE id = ?', [id]);
    if (!row) throw new FhirError(404, [{ severity: 'error', code: 'not-found', diagnostics: `No break-glass alert has id '${id}'.` }]);
    if (row.reviewed_ms !== null && row.reviewed_ms !== undefined) throw new FhirError(409, [{ severity: 'error', code: 'conflict', diagnostics: `This alert was already reviewed by ${row.reviewed_by}.` }]);
    await tx.run('UPDATE access_break_glass SET reviewed_by = ?, reviewed_ms = ?, review_outcome = ?, review_note = ? WHERE id = ? AND reviewed_ms IS NULL', [
      reviewer.name, now, review.outcome, note, id,
    ]);
    return toGrant({ ...row, reviewed_by: reviewer.name, reviewed_ms: now, review_outcome: review.outcome, review_note: note });
  });
}
