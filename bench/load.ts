// Closed-loop HTTP load with autocannon (N connections, each sending its next request when the last
// answer arrives). Latencies are collected per response at full precision (autocannon's own histogram
// rounds to whole milliseconds).
import autocannon from 'autocannon';
import { authHeader, percentile } from './support.ts';

export interface LoadResult { requestsPerSecond: number; p50: number; p99: number; requests: number; failures: number }

export async function load(url: string, connections: number, seconds: number, nextPath?: () => string, authenticated = true): Promise<LoadResult> {
  const latencies: number[] = [];
  // Every CareBridge route needs a bearer token; the empty-route baseline has none to give.
  const authorization: Record<string, string> = authenticated ? { authorization: await authHeader(new URL(url).origin) } : {};
  const instance = autocannon({
    url,
    connections,
    duration: seconds,
    headers: { accept: 'application/fhir+json', ...authorization },
    requests: nextPath ? [{ method: 'GET', setupRequest: (req) => ({ ...req, path: nextPath() }) }] : undefined,
  });
  instance.on('response', (_client, status, _bytes, ms) => {
    if (status >= 200 && status < 300) latencies.push(ms);
  });
  const result = await instance;
  const failures = result.errors + result.timeouts + result.non2xx;
  return {
    requestsPerSecond: result['2xx'] / result.duration,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    requests: result['2xx'],
    failures,
  };
}
