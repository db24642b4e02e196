// The hospital's forms on a referral (discharge coordinators): the day the person became medically ready,
// the actual discharge, and withdrawing the referral with a reason. Checked here first for the NHS error
// summary, then run through the discharge workflow as the signed-in person with the version the page showed.
import { ADW_WITHDRAWAL_REASONS, recordDischarge, setMedicallyReady, withdrawReferral, type DischargeContext } from '../../discharge/index.ts';
import type { UserActor } from '../../access/index.ts';
import { by, dateFrom, MAX_TEXT, runStep, type FormResult } from './formStep.ts';

export interface DateForm { _csrf?: string; version?: string; day?: string; month?: string; year?: string }
export interface WithdrawForm { _csrf?: string; version?: string; reasonCode?: string; reason?: string }

/** The ADW withdrawal reasons in order (01–13; "10"–"13" are integer-like keys, which an object lists first): the council is sent the code. */
export const WITHDRAWAL_CHOICES = Object.entries(ADW_WITHDRAWAL_REASONS).sort(([a], [b]) => a.localeCompare(b)).map(([code, text]) => ({ value: code, text }));

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
  const code = form.reasonCode ?? '';
  const label = ADW_WITHDRAWAL_REASONS[code];
  const details = (form.reason ?? '').trim();
  if (!label) return { ok: false, errors: [{ field: 'reasonCode', text: 'Select why the referral is being withdrawn' }] };
  if (code === '13' && !details) return { ok: false, errors: [{ field: 'reason', text: 'Enter why the referral is being withdrawn' }] };
  if (details.length > MAX_TEXT) return { ok: false, errors: [{ field: 'reason', text: `The details must be ${MAX_TEXT} characters or fewer` }] };
  // As an ADW withdrawal received reads ("08 Patient has died: …"): the code is what a council is sent.
  const reason = `${code} ${label}${details ? `: ${details}` : ''}`;
  return runStep(() => withdrawReferral(ctx, referralId, reason, { ifMatch: form.version ?? '', by: by(actor) }), 'reasonCode');
}
