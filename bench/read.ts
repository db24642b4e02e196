// Read by id: GET [type]/[id] of random stored resources, 32 connections against the server in its own process.
import { load, type LoadResult } from './load.ts';
import { seededRandom, type ChildServer } from './support.ts';

export async function readById(server: ChildServer, locations: string[], seconds: number, connections = 32): Promise<LoadResult> {
  const random = seededRandom(7);
  // Locations are "Type/id/_history/1"; read the current version.
  const paths = locations.map((l) => `/fhir/${l.split('/').slice(0, 2).join('/')}`);
  return load(server.url, connections, seconds, () => paths[Math.floor(random() * paths.length)]);
}
