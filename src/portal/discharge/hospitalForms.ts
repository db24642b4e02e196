// The hospital's forms on a referral (discharge coordinators): the day the person became medically ready,
// the actual discharge, and withdrawing the referral with a reason. Checked here first for the NHS error
// summary, then run through the discharge workflow as the signed-in person with the version the page showed.
import { recordDischarge, setMedicallyReady, withdrawReferral, type DischargeContext } from '../../discharge/index.ts';
import type { UserActor } from '../../access/index.ts';
import { by, dateFrom, MAX_TEXT, runStep, type FormResult } from './formStep.ts';

export interface DateForm { _csrf?: string; version?: string; day?: string; month?: string; year?: string }
export interface WithdrawForm { _csrf?: string; version?: string; reason?: string }

export async function submitMedicallyReady(ctx: DischargeContext, actor: UserActor, referralId: string, form: DateForm, now = new Date()): Promise<FormResult> {
  const { date, error } = dateFrom(form, 'the date the patient became medically ready', now);
  if (!date) return { ok: false, errors: [{ field: 'ready-day', text: error! }] };
  return runStep(() => setMedicallyReady(ctx, referralId, date, { ifMatch: form.version ?? '', by: by(actor) }), 'ready-day');
}

export async function submitDischarge(ctx: DischargeContext, actor: UserActor, referralId: string, form: DateForm, now = new Date()): Promise<FormResult> {
  const { date, error } = dateFrom(form, 'the date the patient left hospital', now);
  if (!date) return { ok: false, errors: [{ field: 'discharged-day', text: error! }] };
  return runStep(() => recordDischarge(ctx, referralId, date, { ifMatch: form.version ?? '', by: by(actor) }), 'discharged-day');
}

export async function submitWithdraw(ctx: DischargeContext, actor: UserActor, referralId: string, form: WithdrawForm): Promise<FormResult> {
  const reason = (form.reason ?? '').trim();
  if (!reason) return { ok: false, errors: [{ field: 'reason', text: 'Enter why the referral is being withdrawn' }] };
  if (reason.length > MAX_TEXT) return { ok: false, errors: [{ field: 'reason', text: `The reason must be ${MAX_TEXT} characters or fewer` }] };
  return runStep(() => withdrawReferral(ctx, referralId, reason, { ifMatch: form.version ?? '', by: by(actor) }), 'reason');
}
