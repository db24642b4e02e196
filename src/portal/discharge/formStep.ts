// What every discharge form shares: running one workflow step as the signed-in person, and turning a
// refusal they can act on (someone else changed the referral; the step is not allowed now) into a message
// on the form instead of an error page.
import { FhirError } from '../../record/index.ts';
import type { UserActor } from '../../access/index.ts';
import type { FieldError } from '../page.ts';

export const MAX_TEXT = 2000;

export type FormResult = { ok: true } | { ok: false; errors: FieldError[]; stale?: boolean };

const STALE = 'This referral was changed by someone else while you had it open. The page now shows the latest version: check it, then try again.';

/** Runs a workflow step; a refusal the person can act on becomes a message on the form. */
export async function runStep(step: () => Promise<unknown>, field: string): Promise<FormResult> {
  try {
    await step();
    return { ok: true };
  } catch (err) {
    if (!(err instanceof FhirError)) throw err;
    if (err.status === 412) return { ok: false, stale: true, errors: [{ field, text: STALE }] };
    if (err.status === 409 || err.status === 400 || err.status === 422) {
      return { ok: false, errors: [{ field, text: err.issues?.[0]?.diagnostics ?? 'The referral could not be changed.' }] };
    }
    throw err;
  }
}

export function by(actor: UserActor) {
  return actor.fhirUser ? { reference: actor.fhirUser, display: actor.name } : { display: actor.name };
}

/** An NHS date input's three fields as YYYY-MM-DD, or what is wrong with them, for the error summary (a date after `notAfter`, when given, is wrong too). */
export function dateFrom(fields: { day?: string; month?: string; year?: string }, what: string, notAfter?: Date): { date?: string; error?: string } {
  const [day, month, year] = [fields.day, fields.month, fields.year].map((v) => (v ?? '').trim());
  if (!day && !month && !year) return { error: `Enter ${what}` };
  if (!/^\d{1,2}$/.test(day!) || !/^\d{1,2}$/.test(month!) || !/^\d{4}$/.test(year!)) return { error: `${capitalised(what)} must be a real date, like 27 3 2026` };
  const date = `${year}-${month!.padStart(2, '0')}-${day!.padStart(2, '0')}`;
  const parsed = new Date(`${date}T00:00:00Z`);
  if (Number.isNaN(parsed.getTime()) || parsed.toISOString().slice(0, 10) !== date) return { error: `${capitalised(what)} must be a real date, like 27 3 2026` };
  if (notAfter && date > londonDate(notAfter)) return { error: `${capitalised(what)} must be today or in the past` };
  return { date };
}

/** The calendar date in England at `at` (a ward's "today" is the UK's, not UTC's). */
function londonDate(at: Date): string {
  return new Intl.DateTimeFormat('en-CA', { timeZone: 'Europe/London', year: 'numeric', month: '2-digit', day: '2-digit' }).format(at);
}

function capitalised(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}
