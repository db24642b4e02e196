// Every failure the record reports is a FhirError: an HTTP status plus an OperationOutcome a person can act on.
// Errors are built here and nowhere else, so wording and issue codes stay consistent.
import { DatabaseUnavailable } from './storage/driver.ts';

export type IssueCode =
  | 'invalid' | 'structure' | 'required' | 'value' | 'invariant' | 'processing' | 'not-supported'
  | 'duplicate' | 'multiple-matches' | 'not-found' | 'deleted' | 'too-long' | 'conflict' | 'exception'
  | 'security' | 'forbidden' | 'login' | 'too-costly' | 'business-rule' | 'informational' | 'transient';

export interface OutcomeIssue {
  severity: 'fatal' | 'error' | 'warning' | 'information';
  code: IssueCode;
  diagnostics?: string;
  expression?: string[];
}

export interface OperationOutcome {
  resourceType: 'OperationOutcome';
  id?: string;
  issue: OutcomeIssue[];
}

export class FhirError extends Error {
  constructor(
    readonly status: number,
    readonly issues: OutcomeIssue[],
    /** Extra response headers, e.g. WWW-Authenticate on a 401. */
    readonly headers: Record<string, string> = {},
  ) {
    super(issues.map((i) => i.diagnostics ?? i.code).join('; '));
  }

  get outcome(): OperationOutcome {
    return { resourceType: 'OperationOutcome', issue: this.issues };
  }
}

function issue(code: IssueCode, diagnostics: string, expression?: string): OutcomeIssue {
  return { severity: 'error', code, diagnostics, ...(expression ? { expression: [expression] } : {}) };
}

export const badRequest = (diagnostics: string, expression?: string) =>
  new FhirError(400, [issue('invalid', diagnostics, expression)]);
export const unprocessable = (issues: OutcomeIssue[]) => new FhirError(422, issues);
export const notFound = (diagnostics: string) => new FhirError(404, [issue('not-found', diagnostics)]);
export const gone = (diagnostics: string) => new FhirError(410, [issue('deleted', diagnostics)]);
export const conflict = (diagnostics: string) => new FhirError(409, [issue('conflict', diagnostics)]);
export const preconditionFailed = (diagnostics: string) => new FhirError(412, [issue('conflict', diagnostics)]);
export const tooLarge = (diagnostics: string) => new FhirError(413, [issue('too-long', diagnostics)]);
export const unsupportedMediaType = (diagnostics: string) => new FhirError(415, [issue('not-supported', diagnostics)]);
export const notSupported = (diagnostics: string) => new FhirError(400, [issue('not-supported', diagnostics)]);
export const notAcceptable = (diagnostics: string) => new FhirError(406, [issue('not-supported', diagnostics)]);
/** RFC 9110 §15.5.6: a 405 must say, in Allow, which methods the target does take (it may be none). */
/** A target that takes GET takes HEAD too: the HTTP layer serves HEAD as GET without the body. */
export const methodNotAllowed = (diagnostics: string, allowed: readonly string[]) =>
  new FhirError(405, [issue('not-supported', diagnostics)], { Allow: (allowed.includes('GET') ? [...allowed, 'HEAD'] : allowed).join(', ') });
export const multipleMatches = (diagnostics: string) => new FhirError(412, [issue('multiple-matches', diagnostics)]);

export function successOutcome(diagnostics: string): OperationOutcome {
  return { resourceType: 'OperationOutcome', issue: [{ severity: 'information', code: 'informational', diagnostics }] };
}

/**
 * Whether an error means the service cannot work just now and a retry shortly may succeed: the database
 * unreachable, or the record's own 503 (the database, or the audit trail it must write). Routes outside the
 * FHIR API (sign-in, tokens, MESH) answer these 503 with Retry-After, as the API does, not 500.
 */
export function isTemporaryOutage(err: unknown): boolean {
  return err instanceof DatabaseUnavailable || (err instanceof FhirError && err.status === 503);
}

/** How long a client told of a temporary outage should wait before trying again (Retry-After, seconds). */
export const OUTAGE_RETRY_AFTER_SECONDS = 5;

/** Converts anything thrown into a FhirError; unexpected errors become a 500 without leaking internals. */
export function toFhirError(err: unknown): FhirError {
  if (err instanceof FhirError) return err;
  // The database gone for a while (restarting, failing over): a client may try again, and should be told
  // so rather than that the server failed. Where the database is stays in the log, not in the answer.
  if (err instanceof DatabaseUnavailable) {
    return new FhirError(503, [issue('transient', 'The record\'s database cannot be reached just now; try again shortly.')], { 'Retry-After': String(OUTAGE_RETRY_AFTER_SECONDS) });
  }
  return new FhirError(500, [issue('exception', 'The server could not complete the request; it has been logged.')]);
}
