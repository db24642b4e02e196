// Search latency as the record grows: sequential requests (one at a time, so the figure is latency, not
// queueing), after a short warm-up, against the server in its own process.
import { percentile, request, seededRandom, type ChildServer } from './support.ts';

export interface SearchLatency { p50: number; p99: number; requests: number; total: number }

export const QUERIES = {
  compartment: (patient: string) => `/fhir/Patient/${patient}/Observation?_count=20`,
  tokenDate: () => '/fhir/Observation?code=http://loinc.org|8867-4&date=ge2020-01-01&_count=20',
} as const;

/**
 * `requests` sequential requests, stopping early (after at least 20) once `seconds` have passed, after a
 * warm-up of `warmup` requests (or 10 s).
 */
async function measure(server: ChildServer, paths: () => string, requests: number, seconds: number, warmup = 20): Promise<SearchLatency> {
  const get = async () => {
    const path = paths();
    const reply = await request('GET', server.url + path);
    if (reply.status !== 200) throw new Error(`search ${path} failed with ${reply.status}: ${reply.body.slice(0, 300)}`);
    const bundle = JSON.parse(reply.body) as { total?: number; entry?: unknown[] };
    if (!bundle.entry?.length) throw new Error(`search ${path} found nothing`);
    return { ms: reply.ms, total: bundle.total ?? 0 };
  };
  const until = (s: number) => performance.now() + s * 1000;
  for (let i = 0, end = until(10); i < warmup && performance.now() < end; i++) await get();
  const times: number[] = [];
  let total = 0;
  for (let i = 0, end = until(seconds); i < requests && (i < 20 || performance.now() < end); i++) {
    const r = await get();
    times.push(r.ms);
    total = r.total;
  }
  return { p50: percentile(times, 50), p99: percentile(times, 99), requests: times.length, total };
}

/** Compartment search for random patients. */
export function compartmentSearch(server: ChildServer, patientIds: string[], requests: number, seconds: number): Promise<SearchLatency> {
  const random = seededRandom(patientIds.length);
  return measure(server, () => QUERIES.compartment(patientIds[Math.floor(random() * patientIds.length)]), requests, seconds);
}

export function tokenDateSearch(server: ChildServer, requests: number, seconds: number): Promise<SearchLatency> {
  return measure(server, QUERIES.tokenDate, requests, seconds);
}
