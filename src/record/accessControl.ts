// The record enforces access at each interaction and filters what searches, includes, $everything and
// history return. Who may do what is decided elsewhere (src/access); the record only asks.
import { FhirError } from './outcome.ts';

export type RecordInteraction = 'create' | 'read' | 'update' | 'delete' | 'search';

export interface AccessControl {
  /** Throws a FhirError (403) when the caller may not do `interaction` on `resourceType` ('*' = every type). */
  require(resourceType: string, interaction: RecordInteraction): void;
  /** Whether resources of this type may be shown to the caller at all (for _include, $everything…). */
  mayRead(resourceType: string): boolean;
}

/** For callers inside the server (import, demo) and a server started with --insecure-no-auth. */
export const UNRESTRICTED: AccessControl = {
  require: () => undefined,
  mayRead: () => true,
};

export function forbidden(diagnostics: string): FhirError {
  return new FhirError(403, [{ severity: 'error', code: 'forbidden', diagnostics }]);
}
