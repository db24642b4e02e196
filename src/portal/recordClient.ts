// The portal's way into the record: FHIR interactions run in-process through the record's own REST
// handler, with the signed-in person's AccessControl, so every check and audit entry the FHIR API makes
// is made here too. The portal never reads record tables itself.
import { FhirError, handleFhirRequest, failedAccessEvents, type AccessControl, type AccessEvent, type FhirRequest, type FhirResponse, type ResourceTypeServices, type SqlDriver } from '../record/index.ts';
import type { Actor } from '../access/index.ts';
import type { PortalAccess } from './portalAccess.ts';

/** A FHIR resource as the portal reads it: only resourceType and id are certain. */
export interface Resource {
  resourceType: string;
  id: string;
  [element: string]: any;
}

export interface SearchResult {
  /** Entries with search mode "match", in the record's order. */
  matches: Resource[];
  /** Entries brought in by _include / _revinclude. */
  included: Resource[];
  /** Whether the record has more matches than this page. */
  more: boolean;
}

export interface RecordClient {
  search(type: string, params: [string, string][]): Promise<SearchResult>;
  /** The resource, or undefined when there is none (never created, or deleted). */
  read(type: string, id: string): Promise<Resource | undefined>;
  /** Runs a transaction Bundle: everything in it is written, or nothing. */
  transaction(entries: unknown[]): Promise<Resource>;
  /** Any FHIR interaction as this person (for workflows that take the record's own requests). */
  fhir(request: FhirRequest): Promise<FhirResponse>;
  /**
   * Audits an export: `what` (a file name) made from `resourceType` resources about these people, already
   * read through this client, is leaving the record with the person (a download, a print).
   */
  exported(what: string, resourceType: string, patientIds: string[], id?: string): Promise<void>;
}

export interface RecordConnection {
  driver: SqlDriver;
  /** The FHIR base URL the record writes into Bundle fullUrls. */
  base: string;
  access: PortalAccess;
  /** Types other capabilities serve through the record (the audit trail's AuditEvents). */
  services?: ResourceTypeServices;
}

export function recordFor(connection: RecordConnection, actor: Actor, address: string): RecordClient {
  let control: Promise<AccessControl> | undefined;
  const call = (method: string, path: string, query: [string, string][], body?: unknown) => request({ method, path, query, body, contentType: body === undefined ? undefined : 'application/fhir+json' });
  const request = async (req: FhirRequest): Promise<FhirResponse> => {
    const access = await (control ??= connection.access.controlFor(actor, address));
    const events: AccessEvent[] = [];
    const outcome = { status: 500, method: req.method, path: req.path, query: new URLSearchParams(req.query).toString() };
    try {
      const response = await handleFhirRequest({ base: connection.base, driver: connection.driver, access, services: connection.services, onAccess: (e) => events.push(e) }, req);
      outcome.status = response.status;
      return response;
    } catch (err) {
      outcome.status = err instanceof FhirError ? err.status : 500;
      events.splice(0, events.length, ...failedAccessEvents(err));
      throw err;
    } finally {
      access.accessed?.(events, outcome);
    }
  };
  return {
    async search(type, params) {
      const bundle = json(await call('GET', type, params));
      const entries: { resource: Resource; search?: { mode?: string } }[] = bundle.entry ?? [];
      return {
        matches: entries.filter((e) => e.search?.mode !== 'include').map((e) => e.resource),
        included: entries.filter((e) => e.search?.mode === 'include').map((e) => e.resource),
        more: (bundle.link ?? []).some((l: { relation: string }) => l.relation === 'next'),
      };
    },
    async read(type, id) {
      try {
        return json(await call('GET', `${type}/${encodeURIComponent(id)}`, []));
      } catch (err) {
        if (err instanceof FhirError && (err.status === 404 || err.status === 410)) return undefined;
        throw err;
      }
    },
    async transaction(entries) {
      return json(await call('POST', '', [], { resourceType: 'Bundle', type: 'transaction', entry: entries }));
    },
    fhir: request,
    async exported(what, resourceType, patientIds, id) {
      const access = await (control ??= connection.access.controlFor(actor, address));
      const event: AccessEvent = { interaction: 'export', resourceType, id, patientIds: [...new Set(patientIds)], query: what };
      access.accessed?.([event], { status: 200, method: 'GET', path: `${resourceType}/$export`, query: '' });
    },
  };
}

function json(response: FhirResponse): any {
  return typeof response.body === 'string' ? JSON.parse(response.body) : response.body;
}
