// Ingest: the 20 Synthea patients posted as transaction Bundles over HTTP, a few in flight, into a fresh
// database each run. Also the ids stored, for the read benchmark.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { join } from 'node:path';
import { inParallel, postTransaction, type ChildServer } from './support.ts';

const SHARED = new URL('../../shared/data/synthea-r4/', import.meta.url).pathname;
const FIXTURES = new URL('../test/fixtures/synthea/', import.meta.url).pathname;

export interface SyntheaBundle { name: string; text: string; resources: Record<string, any>[] }

/** The Synthea transaction Bundles, from ../shared/data/synthea-r4 if present, else the repo's fixtures. */
export function loadSynthea(): { source: string; bundles: SyntheaBundle[] } {
  const dir = existsSync(SHARED) ? SHARED : FIXTURES;
  const bundles = readdirSync(dir)
    .filter((f) => f.endsWith('.json') || f.endsWith('.json.gz'))
    .sort()
    .map((name) => {
      const raw = readFileSync(join(dir, name));
      const text = (name.endsWith('.gz') ? gunzipSync(raw) : raw).toString();
      const resources = (JSON.parse(text).entry as { resource: Record<string, any> }[]).map((e) => e.resource);
      return { name, text, resources };
    });
  return { source: dir, bundles };
}

export interface IngestRun { resources: number; seconds: number; perSecond: number; locations: string[] }

export async function ingest(server: ChildServer, bundles: SyntheaBundle[], inFlight: number): Promise<IngestRun> {
  const locations: string[] = [];
  const start = performance.now();
  await inParallel(bundles, inFlight, async (b) => {
    locations.push(...(await postTransaction(server.url, b.text)));
  });
  const seconds = (performance.now() - start) / 1000;
  const resources = bundles.reduce((n, b) => n + b.resources.length, 0);
  if (locations.length !== resources) throw new Error(`stored ${locations.length} of ${resources} resources`);
  return { resources, seconds, perSecond: resources / seconds, locations };
}
