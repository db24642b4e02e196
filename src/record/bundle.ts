// Response Bundles are assembled as JSON text around the stored resource text, so a search never
// parses and re-serialises the resources it returns (unless _elements asks for a subset).
import type { FoundResource, SearchResult } from './search/execute.ts';
import type { QueryParams, SearchRequest } from './search/request.ts';

const SUBSETTED = { system: 'http://terminology.hl7.org/CodeSystem/v3-ObservationValue', code: 'SUBSETTED' };

export function queryString(params: QueryParams): string {
  return params.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&');
}

export function searchsetBundle(base: string, path: string, req: SearchRequest, result: SearchResult): string {
  const link = (relation: string, offset: number) => {
    const params: QueryParams = req.used.filter(([k]) => k !== '_offset' && k !== '_count');
    params.push(['_count', String(req.count)]);
    if (offset > 0) params.push(['_offset', String(offset)]);
    return { relation, url: `${base}/${path}?${queryString(params)}` };
  };
  const links = [link('self', req.offset)];
  if (req.summary !== 'count') {
    links.push(link('first', 0));
    if (req.offset > 0) links.push(link('previous', Math.max(0, req.offset - req.count)));
    if (result.hasMore) links.push(link('next', req.offset + req.count));
  }
  const head: Record<string, unknown> = { resourceType: 'Bundle', type: 'searchset' };
  if (result.total !== undefined) head.total = result.total;
  head.link = links;
  const entries = [
    ...result.matches.map((m) => entryText(base, m, 'match', req.elements)),
    ...result.included.map((m) => entryText(base, m, 'include', undefined)),
  ];
  return `${JSON.stringify(head).slice(0, -1)},"entry":[${entries.join(',')}]}`;
}

function entryText(base: string, r: FoundResource, mode: string, elements: string[] | undefined): string {
  const content = elements ? JSON.stringify(subset(JSON.parse(r.content), elements)) : r.content;
  return `{"fullUrl":${JSON.stringify(`${base}/${r.type}/${r.id}`)},"resource":${content},"search":{"mode":"${mode}"}}`;
}

/** `_elements`: keep the named top-level elements plus what every resource needs, and mark it SUBSETTED. */
export function subset(resource: Record<string, any>, elements: string[]): Record<string, any> {
  const keep = new Set(['resourceType', 'id', 'meta', ...elements.flatMap((e) => (e.endsWith('[x]') ? [] : [e]))]);
  const choicePrefixes = elements.filter((e) => e.endsWith('[x]')).map((e) => e.slice(0, -3));
  const out: Record<string, any> = {};
  for (const [k, v] of Object.entries(resource)) {
    if (keep.has(k) || choicePrefixes.some((p) => k.startsWith(p))) out[k] = v;
    else if (elements.some((e) => k.startsWith(e) && /^[A-Z]/.test(k.slice(e.length)))) out[k] = v; // value → valueQuantity
  }
  out.meta = { ...(out.meta ?? {}), tag: [...(out.meta?.tag ?? []), SUBSETTED] };
  return out;
}

export interface HistoryRow { type: string; id: string; version_id: number; last_updated_ms: number; method: string; content: string | null }

export function historyBundle(base: string, selfUrl: string, rows: HistoryRow[], total: number | undefined, next: string | undefined): string {
  const head: Record<string, unknown> = { resourceType: 'Bundle', type: 'history' };
  if (total !== undefined) head.total = total;
  head.link = [{ relation: 'self', url: selfUrl }, ...(next ? [{ relation: 'next', url: next }] : [])];
  const entries = rows.map((r) => {
    const url = `${r.type}/${r.id}`;
    const request = r.method === 'POST' ? { method: 'POST', url: r.type } : { method: r.method, url };
    const response = {
      status: r.method === 'DELETE' ? '204' : r.method === 'POST' ? '201' : '200',
      etag: `W/"${r.version_id}"`,
      lastModified: new Date(Number(r.last_updated_ms)).toISOString(),
    };
    const body = r.content ? `"resource":${r.content},` : '';
    return `{"fullUrl":${JSON.stringify(`${base}/${url}`)},${body}"request":${JSON.stringify(request)},"response":${JSON.stringify(response)}}`;
  });
  return `${JSON.stringify(head).slice(0, -1)},"entry":[${entries.join(',')}]}`;
}
