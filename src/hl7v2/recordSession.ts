// The HL7 v2 feed's way into the record: FHIR interactions through the record's own REST handler, with
// the feed's AccessControl (so they are checked, audited and in the history), all inside one database
// transaction that also settles the message, so a message is applied exactly once or not at all.
import { escapeSearchValue, FhirError, handleFhirRequest, type AccessControl, type AccessEvent, type FhirResponse, type SqlDriver, type SqlExecutor } from '../record/index.ts';

export interface Resource {
  resourceType: string;
  id: string;
  meta?: { versionId?: string; lastUpdated?: string };
  [element: string]: any;
}

interface Call {
  events: AccessEvent[];
  outcome: { status: number; method: string; path: string; query: string };
}

export class RecordSession {
  private readonly calls: Call[] = [];

  constructor(
    private readonly base: string,
    private readonly driver: SqlDriver,
    private readonly tx: SqlExecutor,
    private readonly access: AccessControl,
  ) {}

  async search(type: string, query: [string, string][]): Promise<Resource[]> {
    const bundle = json(await this.call('GET', type, query));
    return (bundle.entry ?? []).filter((e: any) => e.search?.mode !== 'include').map((e: any) => e.resource);
  }

  async read(type: string, id: string): Promise<Resource | undefined> {
    try {
      return json(await this.call('GET', `${type}/${encodeURIComponent(id)}`, []));
    } catch (err) {
      if (err instanceof FhirError && (err.status === 404 || err.status === 410)) return undefined;
      throw err;
    }
  }

  /** Creates the resource, or (with `ifNoneExist`) returns the one that matches those criteria. */
  async create(resource: Omit<Resource, 'id'>, ifNoneExist?: string): Promise<Resource> {
    return json(await this.call('POST', resource.resourceType, [], resource, { ifNoneExist }));
  }

  /**
   * Creates the resource unless one matches `ifNoneExist`, under the record's lock on those criteria (so
   * two transactions on PostgreSQL cannot both find nothing and both create); says which happened.
   */
  async createUnlessExists(resource: Omit<Resource, 'id'>, ifNoneExist: string): Promise<{ resource: Resource; created: boolean }> {
    const response = await this.call('POST', resource.resourceType, [], resource, { ifNoneExist });
    return { resource: json(response), created: response.status === 201 };
  }

  /** Updates a resource read in this session; its version must still be current. */
  async update(resource: Resource): Promise<Resource> {
    const version = resource.meta?.versionId;
    return json(await this.call('PUT', `${resource.resourceType}/${encodeURIComponent(resource.id)}`, [], resource, version ? { ifMatch: `W/"${version}"` } : {}));
  }

  /** Tells the audit what each interaction touched, once the transaction has committed (or not). */
  report(committed: boolean): void {
    for (const call of this.calls) this.access.accessed?.(committed ? call.events : [], committed ? call.outcome : { ...call.outcome, status: call.outcome.status < 400 ? 500 : call.outcome.status });
    this.calls.length = 0;
  }

  private async call(method: string, path: string, query: [string, string][], body?: unknown, extra: { ifMatch?: string; ifNoneExist?: string } = {}): Promise<FhirResponse> {
    const call: Call = { events: [], outcome: { status: 500, method, path, query: new URLSearchParams(query).toString() } };
    this.calls.push(call);
    try {
      const response = await handleFhirRequest(
        { base: this.base, driver: this.driver, tx: this.tx, access: this.access, onAccess: (e) => call.events.push(e) },
        { method, path, query, body, contentType: body === undefined ? undefined : 'application/fhir+json', prefer: 'return=representation', ...extra },
      );
      call.outcome.status = response.status;
      return response;
    } catch (err) {
      call.outcome.status = err instanceof FhirError ? err.status : 500;
      call.events.length = 0;
      throw err;
    }
  }
}

/**
 * A token search (system|value) for a message's `value`, taken literally: a visit number or ward code may hold
 * the search's own syntax; unescaped, visit "V9,V1" would find visit V1, someone else's stay (H-053).
 */
export function searchToken(system: string, value: string): string {
  return `${system}|${escapeSearchValue(value)}`;
}

function json(response: FhirResponse): any {
  return typeof response.body === 'string' ? JSON.parse(response.body) : response.body;
}
