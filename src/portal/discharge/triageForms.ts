// The council's forms on a referral: triage (accept, ask for more information, reject with a reason),
// assign a worker, record the support arranged, confirm the person is ready (agreeing to a discharge notice)
// or disagree with the discharge the hospital's notice proposes, add a note (the hospital's
// people add notes too). Each is checked here first (the NHS error summary names the field), then
// run through the discharge workflow as the signed-in person, with the version of the referral the page
// showed: if someone else changed it meanwhile the step is refused (412) and nothing is overwritten.
import { triage, assignWorker, addNote, recordSupportArranged, confirmReady, disagreeWithDischarge, type DischargeContext, type TriageDecision } from '../../discharge/index.ts';
import type { UserActor } from '../../access/index.ts';
import type { FieldError } from '../page.ts';
import { by, runStep as run, MAX_TEXT, type FormResult } from './formStep.ts';

export interface TriageForm { _csrf?: string; version?: string; decision?: string; details?: string }
export interface AssignForm { _csrf?: string; version?: string; worker?: string }
export interface NoteForm { _csrf?: string; version?: string; note?: string }
export interface SupportForm { _csrf?: string; version?: string; support?: string }
export interface ReadyForm { _csrf?: string; version?: string; note?: string }
export interface DisagreeForm { _csrf?: string; version?: string; reason?: string }
export type { FormResult };

export function checkTriage(form: TriageForm): { decision?: TriageDecision; errors: FieldError[] } {
  const details = (form.details ?? '').trim();
  if (details.length > MAX_TEXT) return { errors: [{ field: 'details', text: `Details must be ${MAX_TEXT} characters or fewer` }] };
  switch (form.decision) {
    case 'accept':
      return { decision: { action: 'accept', ...(details ? { note: details } : {}) }, errors: [] };
    case 'requestInformation':
      if (!details) return { errors: [{ field: 'details', text: 'Enter the information you need from the hospital' }] };
      return { decision: { action: 'requestInformation', request: details }, errors: [] };
    case 'reject':
      if (!details) return { errors: [{ field: 'details', text: 'Enter the reason for rejecting the referral' }] };
      return { decision: { action: 'reject', reason: details }, errors: [] };
    default:
      return { errors: [{ field: 'decision', text: 'Select whether to accept the referral, ask for more information or reject it' }] };
  }
}

export async function submitTriage(ctx: DischargeContext, actor: UserActor, referralId: string, form: TriageForm): Promise<FormResult> {
  const checked = checkTriage(form);
  if (!checked.decision) return { ok: false, errors: checked.errors };
  return run(() => triage(ctx, referralId, checked.decision!, { ifMatch: form.version ?? '', by: by(actor) }), 'decision');
}

/** `choices` are the workers offered on the page: only one of them can be chosen. */
export async function submitAssign(ctx: DischargeContext, actor: UserActor, referralId: string, form: AssignForm, choices: { value: string; text: string }[]): Promise<FormResult> {
  const choice = choices.find((c) => c.value === form.worker);
  if (!choice) return { ok: false, errors: [{ field: 'worker', text: 'Select the worker to assign' }] };
  return run(() => assignWorker(ctx, referralId, { reference: choice.value, display: choice.text }, { ifMatch: form.version ?? '', by: by(actor) }), 'worker');
}

export async function submitNote(ctx: DischargeContext, actor: UserActor, referralId: string, form: NoteForm): Promise<FormResult> {
  const note = (form.note ?? '').trim();
  if (!note) return { ok: false, errors: [{ field: 'note', text: 'Enter the note' }] };
  if (note.length > MAX_TEXT) return { ok: false, errors: [{ field: 'note', text: `The note must be ${MAX_TEXT} characters or fewer` }] };
  return run(() => addNote(ctx, referralId, note, { ifMatch: form.version ?? '', by: by(actor) }), 'note');
}

export async function submitSupport(ctx: DischargeContext, actor: UserActor, referralId: string, form: SupportForm): Promise<FormResult> {
  const support = (form.support ?? '').trim();
  if (!support) return { ok: false, errors: [{ field: 'support', text: 'Describe the support arranged' }] };
  if (support.length > MAX_TEXT) return { ok: false, errors: [{ field: 'support', text: `The support arranged must be ${MAX_TEXT} characters or fewer` }] };
  return run(() => recordSupportArranged(ctx, referralId, support, { ifMatch: form.version ?? '', by: by(actor) }), 'support');
}

export async function submitReady(ctx: DischargeContext, actor: UserActor, referralId: string, form: ReadyForm): Promise<FormResult> {
  const note = (form.note ?? '').trim();
  if (note.length > MAX_TEXT) return { ok: false, errors: [{ field: 'ready-note', text: `The note must be ${MAX_TEXT} characters or fewer` }] };
  return run(() => confirmReady(ctx, referralId, { ifMatch: form.version ?? '', by: by(actor), ...(note ? { note } : {}) }), 'ready-note');
}

export async function submitDisagree(ctx: DischargeContext, actor: UserActor, referralId: string, form: DisagreeForm): Promise<FormResult> {
  const reason = (form.reason ?? '').trim();
  if (!reason) return { ok: false, errors: [{ field: 'disagree-reason', text: 'Enter why the council cannot agree to the proposed discharge' }] };
  if (reason.length > MAX_TEXT) return { ok: false, errors: [{ field: 'disagree-reason', text: `The reason must be ${MAX_TEXT} characters or fewer` }] };
  return run(() => disagreeWithDischarge(ctx, referralId, reason, { ifMatch: form.version ?? '', by: by(actor) }), 'disagree-reason');
}
