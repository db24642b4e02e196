// Break-glass in the portal: when the record refuses a person's page because the user has no care
// relationship with them, the page says so and offers to break the glass with a reason. While a grant is
// in effect every page of that person's record says so, so nobody forgets they are outside their own
// records. The grant itself, its audit and the privacy officers' queue belong to src/access.
import { BREAK_GLASS_HOURS, BREAK_GLASS_REASONS, type UserActor } from '../access/index.ts';
import { FhirError } from '../record/index.ts';
import type { FieldError } from './page.ts';
import { formSubmission } from './formSubmission.ts';
import type { PortalBreakGlass } from './portalAccess.ts';

/** Where the prompt's way back leads (the list the person was found on). */
export interface PromptBackLink {
  href: string;
  text: string;
}

/** The record refused this person's record for want of a care relationship. */
export class NoCareRelationship extends Error {
  constructor(
    readonly patientId: string,
    /** The page of that person's record that was refused; the form posts to <recordPath>/break-glass. */
    readonly recordPath: string,
    /** The list the page belongs to, for the prompt's breadcrumb and way back. */
    readonly back: PromptBackLink,
    /** False where break-glass is not offered (a carer's access comes only from the person's consent). */
    readonly offerBreakGlass = true,
  ) {
    super('You do not have a care relationship with this person.');
  }
}

/** Whether a FhirError is the record's "outside the records you may see" refusal (not a role refusal). */
export function isRelationshipRefusal(err: unknown): boolean {
  return err instanceof FhirError && err.status === 403 && err.issues.some((i) => /outside the records you may see/.test(i.diagnostics ?? ''));
}

export interface BreakGlassBanner {
  reason: string;
  /** ISO time the grant ends. */
  until: string;
}

/** The grant this user, in this role and organisation, holds for the person right now (the latest-ending one). */
export async function grantInEffect(breakGlass: PortalBreakGlass | undefined, actor: UserActor, patientId: string, now = Date.now()): Promise<BreakGlassBanner | undefined> {
  if (!breakGlass) return undefined;
  const grants = await breakGlass.list({ patientId });
  const mine = grants
    .filter((g) => g.userId === actor.userId && g.role === actor.role && (g.organisation ?? '') === (actor.organisation ?? '') && Date.parse(g.expiresAt) > now)
    .sort((a, b) => b.expiresAt.localeCompare(a.expiresAt))[0];
  return mine ? { reason: mine.reason, until: mine.expiresAt } : undefined;
}

export const REASON_CHOICES = Object.entries(BREAK_GLASS_REASONS).map(([value, text]) => ({ value, text }));

export interface BreakGlassForm {
  reasonCode?: string;
  reason?: string;
  /** Made when the prompt is first shown: a second click of the button makes no second grant or alert. */
  submission?: string;
}

/** The form's own checks, worded for the page; src/access checks the same again. */
export function checkBreakGlassForm(form: BreakGlassForm): FieldError[] {
  const errors: FieldError[] = [];
  if (!form.reasonCode || !(form.reasonCode in BREAK_GLASS_REASONS)) errors.push({ field: 'reasonCode', text: 'Select why you need to see this record' });
  const reason = (form.reason ?? '').trim();
  if (reason.length < 10) errors.push({ field: 'reason', text: reason ? 'Explain why in at least 10 characters: a privacy officer will read it' : 'Explain why you need to see this record' });
  if (reason.length > 1000) errors.push({ field: 'reason', text: 'The explanation must be 1000 characters or fewer' });
  return errors;
}

/** A 400 from src/access, turned into field errors (its `expression` names the field). */
export function fieldErrorsOf(err: FhirError, fields: Record<string, string>): FieldError[] | undefined {
  if (err.status !== 400) return undefined;
  return err.issues.map((i) => ({ field: fields[i.expression?.[0] ?? ''] ?? Object.values(fields)[0], text: i.diagnostics ?? 'This was not accepted' }));
}

/** What the prompt page needs. */
export function breakGlassPrompt(patientId: string, action: string, back: PromptBackLink, values: BreakGlassForm = {}) {
  return {
    pageTitle: 'You do not have a care relationship with this person', patientId, action, back,
    values: { ...values, submission: formSubmission(values.submission) }, reasonChoices: REASON_CHOICES, hours: BREAK_GLASS_HOURS,
  };
}
