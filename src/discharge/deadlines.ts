// Response deadlines: each council's rules (discharge_councils, set with `carebridge discharge council
// set`), and the timers that watch them. A timer is a row with its due time, written in the same
// transaction as the referral, so it survives restarts; a worker polls for due rows, claims each one with
// a conditional UPDATE (so two nodes never fire it twice), and if the council still owes its answer raises
// an escalation Task and marks the triage Task overdue, in one transaction.
import type { SqlExecutor } from '../record/index.ts';
import { formatDeadlineRule, parseDeadlineRule, type DeadlineRule } from './calendar.ts';
import { clock, inRecordTransaction, type DischargeContext } from './recordSession.ts';
import { AWAITING_RESPONSE, ESCALATION_TASK_CODE, OVERDUE_TAG, triageStateOf } from './model.ts';
import { derivedId } from './referrals.ts';
import { dischargeNoticeStillOwed } from './adw/outbound.ts';

export interface CouncilSettings { ods: string; assessmentDeadline: DeadlineRule; dischargeDeadline: DeadlineRule; adw: boolean }

const ODS = /^[A-Z0-9]{3,10}$/;

export async function setCouncilSettings(db: SqlExecutor, settings: { ods: string; assessmentDeadline: string; dischargeDeadline: string; adw?: boolean }, now = Date.now()): Promise<CouncilSettings> {
  const ods = settings.ods.trim().toUpperCase();
  if (!ODS.test(ods)) throw new Error(`'${settings.ods}' is not an ODS code (3 to 10 letters or digits).`);
  const assessment = parseDeadlineRule(settings.assessmentDeadline);
  const discharge = parseDeadlineRule(settings.dischargeDeadline);
  const adw = settings.adw ? 1 : 0;
  const updated = await db.run('UPDATE discharge_councils SET assessment_deadline = ?, discharge_deadline = ?, adw = ?, updated_ms = ? WHERE ods = ?', [formatDeadlineRule(assessment), formatDeadlineRule(discharge), adw, now, ods]);
  if (!updated) await db.run('INSERT INTO discharge_councils (ods, assessment_deadline, discharge_deadline, adw, updated_ms) VALUES (?, ?, ?, ?, ?)', [ods, formatDeadlineRule(assessment), formatDeadlineRule(discharge), adw, now]);
  return { ods, assessmentDeadline: assessment, dischargeDeadline: discharge, adw: Boolean(adw) };
}

export async function listCouncilSettings(db: SqlExecutor): Promise<CouncilSettings[]> {
  const rows = await db.all<{ ods: string; assessment_deadline: string; discharge_deadline: string; adw: number }>('SELECT ods, assessment_deadline, discharge_deadline, adw FROM discharge_councils ORDER BY ods');
  return rows.map((r) => ({ ods: r.ods, assessmentDeadline: parseDeadlineRule(r.assessment_deadline), dischargeDeadline: parseDeadlineRule(r.discharge_deadline), adw: Boolean(Number(r.adw)) }));
}

interface TimerRow { id: string; kind: string; referral_id: string; task_id: string; message_key: string | null; due_ms: number }

/** Fires every timer due by now; returns how many raised an escalation. */
export async function fireDueTimers(ctx: DischargeContext, limit = 50): Promise<number> {
  const now = clock(ctx);
  const due = await ctx.driver.all<TimerRow>("SELECT id, kind, referral_id, task_id, message_key, due_ms FROM discharge_timers WHERE status = 'pending' AND due_ms <= ? ORDER BY due_ms LIMIT ?", [now, limit]);
  let escalated = 0;
  for (const timer of due) {
    const raised = await inRecordTransaction(ctx, 'deadline', async (session) => {
      const claimed = await session.tx.run("UPDATE discharge_timers SET status = 'fired', fired_ms = ? WHERE id = ? AND status = 'pending'", [now, timer.id]);
      if (!claimed) return false; // another node fired it, or the referral was answered meanwhile
      const task = await session.read('Task', timer.task_id);
      const referral = await session.read('ServiceRequest', timer.referral_id);
      if (!task || !referral) return false;
      const owed = timer.kind === 'discharge-notice'
        ? await dischargeNoticeStillOwed(session.tx, timer.referral_id, timer.message_key)
        : AWAITING_RESPONSE.has(triageStateOf(task) ?? 'received');
      if (!owed) return false;
      const what = timer.kind === 'discharge-notice' ? 'the answer to the discharge notice' : 'the response to the discharge referral';
      const dueText = new Date(Number(timer.due_ms)).toISOString();
      const tags = (task.meta?.tag ?? []).filter((t) => !(t.system === OVERDUE_TAG.system && t.code === OVERDUE_TAG.code));
      await session.put({ ...task, meta: { tag: [...tags, OVERDUE_TAG] }, priority: 'urgent' }, task.meta?.versionId);
      const id = derivedId('escalation', timer.referral_id);
      const existing = await session.read('Task', id);
      await session.put({
        resourceType: 'Task',
        id,
        status: 'requested',
        intent: 'order',
        priority: 'urgent',
        code: { coding: [ESCALATION_TASK_CODE], text: ESCALATION_TASK_CODE.display },
        description: `Overdue: ${what} was due by ${dueText}.`,
        focus: { reference: `ServiceRequest/${timer.referral_id}` },
        basedOn: [{ reference: `ServiceRequest/${timer.referral_id}` }],
        partOf: [{ reference: `Task/${timer.task_id}` }],
        for: referral.subject,
        authoredOn: new Date(now).toISOString(),
        lastModified: new Date(now).toISOString(),
        ...(task.owner ? { owner: referral.performer?.[0] ?? task.owner } : {}),
        restriction: { period: { end: dueText } },
      }, existing?.meta?.versionId);
      return true;
    });
    if (raised) escalated++;
  }
  return escalated;
}

