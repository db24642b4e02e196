// The record enforces access at each interaction and filters what searches, includes, $everything and
// history return. Who may do what is decided elsewhere (src/access); the record only asks.
import { FhirError } from './outcome.ts';

export type RecordInteraction = 'create' | 'read' | 'update' | 'delete' | 'search';

export interface AccessControl {
  /** Throws a FhirError (403) when the caller may not do `interaction` on `resourceType` ('*' = every type). */
  require(resourceType: string, interaction: RecordInteraction): void;
  /** Whether resources of this type may be shown to the caller at all (for _include, $everything…). */
  mayRead(resourceType: string): boolean;
  /**
   * Told, once the request is answered, what it touched (empty when it failed) and how it ended, so the
   * grantor can keep the audit trail. Must not throw or block the answer.
   */
  accessed?(events: AccessEvent[], outcome: { status: number; method: string; path: string; query: string }): void;
}

/** For callers inside the server (import, demo) and a server started with --insecure-no-auth. */
export const UNRESTRICTED: AccessControl = {
  require: () => undefined,
  mayRead: () => true,
};

export function forbidden(diagnostics: string): FhirError {
  return new FhirError(403, [{ severity: 'error', code: 'forbidden', diagnostics }]);
}

/** One access to the record, as the audit trail needs it. Reported after the interaction succeeded. */
export interface AccessEvent {
  interaction: 'read' | 'vread' | 'search' | 'history' | 'create' | 'update' | 'patch' | 'delete' | 'everything';
  resourceType?: string;
  id?: string;
  /** The patients whose records were touched (the compartment owners of what was read or written). */
  patientIds: string[];
  /** The search or history query, as sent. */
  query?: string;
}
