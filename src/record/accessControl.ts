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
   * Whose records the caller may see and change; absent means every patient's. The record applies it inside
   * every query it runs for the caller (searches, totals, includes, chains, $everything, history, reads,
   * conditional matches, writes), so nothing outside it can be seen or touched by any route.
   */
  patients?: PatientScope;
  /**
   * Throws a FhirError (422) when the caller may not store this resource as it is written: a rule of the
   * grantor's about what a resource says, because the grantor reads access from it (a consent the access
   * rules could not honour as written). Called with every resource a create, update, patch or transaction
   * would store, after it is validated and before anything is stored.
   */
  checkContent?(resource: Readonly<Record<string, unknown>>): void;
  /**
   * Told, once the request is answered, what it touched (empty when it failed) and how it ended, so the
   * grantor can keep the audit trail. Must not throw or block the answer.
   */
  accessed?(events: AccessEvent[], outcome: { status: number; method: string; path: string; query: string }): void;
  /** Who is calling, for workflows that record who did each step (absent for internal callers). */
  caller?: RecordCaller;
}

/** The caller as a workflow names them in what it writes (a Task note's author, an attester). */
export interface RecordCaller {
  /** The person's name, or the system client's. */
  display: string;
  /** Practitioner/…, RelatedPerson/… or Patient/… when the person is in the record. */
  reference?: string;
  /** ODS code of the organisation they act for. */
  organisation?: string;
  /** Their role (care-home-staff, ward-nurse, …), or 'system' for a system client. */
  role: string;
}

/**
 * The patients a caller may see: those named, plus those the `via` searches point at (relationships read
 * from the record at the moment of each query, so a new admission or a closed episode counts at once),
 * less those the `except` searches point at. Resources outside every patient's compartment (organisations,
 * practitioners, locations, medications…) are not restricted by it.
 */
export interface PatientScope {
  patientIds: string[];
  via: RelationshipSearch[];
  except?: RelationshipSearch[];
  /** Said after "outside the records you may see" when a read or write is refused: what the caller can do. */
  refusalAdvice?: string;
}

/** A search whose matches name patients: e.g. EpisodeOfCare?status=active&organization.identifier=…, through 'patient'. */
export interface RelationshipSearch {
  resourceType: string;
  query: [string, string][];
  /** The reference parameter naming the patient; for Patient searches, '_id' (the match is the patient). */
  patientParam: string;
}

/** For callers inside the server (import, demo) and a server started with --insecure-no-auth. */
export const UNRESTRICTED: AccessControl = {
  require: () => undefined,
  mayRead: () => true,
};

/** A 403; `patientIds` are the people whose records the refusal kept the caller out of, for the audit. */
export function forbidden(diagnostics: string, patientIds: string[] = []): FhirError {
  const err = new FhirError(403, [{ severity: 'error', code: 'forbidden', diagnostics }]);
  if (patientIds.length) refusals.set(err, patientIds);
  return err;
}

const refusals = new WeakMap<FhirError, string[]>();

/**
 * Whose records a refused request was kept out of (none for other errors). An attempt on someone's record
 * is about them: the audit files it under that person, so a privacy officer's search by patient, and the
 * person's own "who has looked at my record", show it (as refused).
 */
function refusedPatients(err: unknown): string[] {
  return err instanceof FhirError ? refusals.get(err) ?? [] : [];
}

/**
 * `wrapped`, made from `err` (its message said again with where it happened: a transaction's entry, a
 * conditional match), refused for the same people: so the audit still files the attempt under them.
 */
export function rewrapped(err: FhirError, wrapped: FhirError): FhirError {
  const refused = refusals.get(err);
  if (refused) refusals.set(wrapped, refused);
  return wrapped;
}

/**
 * What a failed request reports to the audit: nothing it showed or changed, but, when it was refused for
 * being outside the caller's records, the attempt on those people's records (empty otherwise). A batch
 * reports its refused entries the same way, each with what it asked for (`asked`), among what the others touched.
 */
export function failedAccessEvents(err: unknown, asked?: { resourceType?: string; id?: string }): AccessEvent[] {
  const refused = refusedPatients(err);
  return refused.length ? [{ interaction: 'refused', ...asked, patientIds: refused }] : [];
}

/**
 * One access to the record, as the audit trail needs it. Reported after the interaction succeeded, or, as
 * 'refused', when it was refused for being outside the caller's records (failedAccessEvents).
 */
export interface AccessEvent {
  /**
   * 'export': what a person took out of the record (a CSV, a printed pack), reported by the screen that made it.
   * 'refused': an attempt on these people's records that was refused (403); nothing of them was shown or changed.
   */
  interaction: 'read' | 'vread' | 'search' | 'history' | 'create' | 'update' | 'patch' | 'delete' | 'everything' | 'export' | 'refused';
  resourceType?: string;
  id?: string;
  /** The patients whose records were touched (the compartment owners of what was read or written). */
  patientIds: string[];
  /** The search or history query, as sent. */
  query?: string;
}
