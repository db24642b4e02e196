// A resource type another capability keeps and serves itself (read and search only), in its own tables,
// while the record still checks access, reports the access for the audit trail, and refuses writes. The
// record knows nothing of what such a type holds: the service answers with searchset Bundles and
// resources as JSON text, built with the record's bundle and outcome code.
import type { AccessControl } from './accessControl.ts';
import type { QueryParams } from './search/request.ts';

export interface ServedSearch {
  base: string;
  /** The caller's access, so the service can narrow what it shows (e.g. to one person's own records). */
  access: AccessControl;
  query: QueryParams;
  /** Prefer: handling=strict: unknown parameters are an error rather than ignored. */
  strict: boolean;
}

export interface ServedRead {
  base: string;
  access: AccessControl;
  id: string;
}

export interface ServedAnswer {
  /** A searchset Bundle (search) or the resource (read), as JSON text. */
  body: string;
  /** The patients the answer is about, for the audit trail. */
  patientIds: string[];
}

export interface ResourceTypeService {
  /** The search parameters it supports, for the CapabilityStatement. */
  searchParams: { name: string; type: string; documentation?: string }[];
  /** Throws a FhirError (400) for a search it cannot run. */
  search(request: ServedSearch): Promise<ServedAnswer>;
  /** Throws a FhirError (404) when there is no such resource (or the caller may not know of it). */
  read(request: ServedRead): Promise<ServedAnswer>;
}

/** Resource types served by other capabilities, by type name. */
export type ResourceTypeServices = Readonly<Record<string, ResourceTypeService>>;
