// A form's submission id: made when the form is first shown and sent back with it, so that whatever the
// form creates can recognise a second click (or a resent request) of the same form as the same submission.
import { randomUUID } from 'node:crypto';
import { validate } from 'uuid';

/** The id the form came back with, or a fresh one (a first showing, a page from before, a hand-made request). */
export function formSubmission(sent: unknown): string {
  return typeof sent === 'string' && validate(sent) ? sent : randomUUID();
}
