// Patient/{id}/$everything: the patient, everything in their compartment, and the resources those
// point at (practitioners, organisations, medications…), paged.
import type { FoundResource } from './search/execute.ts';
import { boundedInt, readResource, type Ctx } from './interactions.ts';
import { andVisible } from './search/visibility.ts';
import { badRequest } from './outcome.ts';
import { definitions } from './definitions.ts';
import { queryString } from './bundle.ts';
import type { QueryParams } from './search/request.ts';
import type { AccessControl } from './accessControl.ts';

/** Say how the answer is written, not what is in it. */
const PRESENTATION = new Set(['_format', '_pretty']);

/**
 * A parameter $everything does not apply. Ignored, it would answer with the whole record as if it had: a
 * client asking for one episode's dates (start, end) would take everything for what it asked for.
 */
function unsupportedParameter(name: string) {
  if (name === 'start' || name === 'end') {
    return badRequest(`$everything here does not narrow the record by the dates care was given ('${name}'): leave out start and end, and narrow with _since (changed since) or _type instead.`, name);
  }
  return badRequest(`$everything takes _count, _offset, _type and _since, not '${name.slice(0, 100)}'.`, name);
}

export async function everything(ctx: Ctx, base: string, patientId: string, query: QueryParams, access: AccessControl): Promise<string> {
  await readResource(ctx, 'Patient', patientId); // 404/410/403 before anything else
  let count = 1000;
  let offset = 0;
  let types: string[] | undefined;
  let since: number | undefined;
  for (const [k, v] of query) {
    // Bounded as a search's are: an _offset of 1e20 is an integer to JavaScript but not to SQLite (a 500).
    if (k === '_count') count = boundedInt(v, '_count', 1, 10_000);
    else if (k === '_offset') offset = boundedInt(v, '_offset', 0, 10_000_000);
    else if (k === '_type') types = v.split(',').map((t) => t.trim());
    else if (k === '_since') since = Date.parse(v);
    else if (!PRESENTATION.has(k)) throw unsupportedParameter(k);
  }
  if (since !== undefined && Number.isNaN(since)) throw badRequest('_since must be an instant.', '_since');
  for (const t of types ?? []) if (!definitions().resourceTypes.has(t)) throw badRequest(`_type: '${t}' is not a resource type.`, '_type');

  const filters: string[] = [];
  const params: (string | number)[] = [];
  if (types) {
    filters.push(`r.type IN (${types.map(() => '?').join(', ')})`);
    params.push(...types);
  }
  if (since !== undefined) {
    filters.push('r.last_updated_ms >= ?');
    params.push(since);
  }
  // Referenced resources can lie in another person's compartment; the caller's scope decides those too.
  const visible = andVisible('r', ctx.patients);
  const extra = (filters.length ? ` AND ${filters.join(' AND ')}` : '') + visible.text;
  params.push(...(visible.params as (string | number)[]));
  // Members of the compartment, then what they reference that is outside it. AuditEvents are in the
  // Patient compartment in R4, but they record who looked, not care: they are not part of the record's content.
  const rows = await ctx.db.all<FoundResource>(
    `SELECT r.rid, r.type, r.id, r.content, r.patient_id FROM resources r WHERE r.deleted = 0 AND r.type <> 'AuditEvent'${extra} AND (
       r.rid IN (SELECT rid FROM compartment WHERE patient_id = ?)
       OR r.rid IN (SELECT t.rid FROM compartment c JOIN search_reference s ON s.rid = c.rid
                    JOIN resources t ON t.type = s.target_type AND t.id = s.target_id
                    WHERE c.patient_id = ? AND NOT EXISTS (SELECT 1 FROM compartment x WHERE x.rid = t.rid))
     ) ORDER BY r.rid LIMIT ? OFFSET ?`,
    [...params, patientId, patientId, count + 1, offset],
  );
  const more = rows.length > count;
  // Types the caller may not read are left out of the page (the page may then hold fewer than _count).
  const page = (more ? rows.slice(0, count) : rows).filter((r) => access.mayRead(r.type));
  const url = (o: number) => `${base}/Patient/${patientId}/$everything?${queryString([...query.filter(([k]) => k !== '_offset'), ['_offset', String(o)]])}`;
  const links = [{ relation: 'self', url: url(offset) }, ...(more ? [{ relation: 'next', url: url(offset + count) }] : [])];
  const entries = page.map((r) => `{"fullUrl":${JSON.stringify(`${base}/${r.type}/${r.id}`)},"resource":${r.content},"search":{"mode":"match"}}`);
  return `{"resourceType":"Bundle","type":"searchset","link":${JSON.stringify(links)},"entry":[${entries.join(',')}]}`;
}
