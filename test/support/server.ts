// Starts a real CareBridge server on a loopback port over a real database (a SQLite file in a temp
// folder, or a fresh database on the run's PostgreSQL), and gives tests a tiny FHIR HTTP client.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildServer, type CareBridgeServer } from '../../src/server.ts';
import { loadServerConfig } from '../../src/config.ts';
import { freshPostgresDatabase } from './postgres.ts';

export type Engine = 'sqlite' | 'postgres';
export const ENGINES: Engine[] = ['sqlite', 'postgres'];

export interface TestServer {
  engine: Engine;
  url: string; // http://127.0.0.1:PORT
  base: string; // url + /fhir
  database: string;
  server: CareBridgeServer;
  fhir: FhirClient;
  close(): Promise<void>;
}

export async function testDatabase(engine: Engine): Promise<{ database: string; cleanup(): void }> {
  if (engine === 'postgres') return { database: await freshPostgresDatabase(), cleanup: () => undefined };
  const dir = mkdtempSync(join(tmpdir(), 'carebridge-test-'));
  return { database: `sqlite:${join(dir, 'carebridge.db')}`, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export async function startTestServer(engine: Engine, env: Record<string, string> = {}): Promise<TestServer> {
  const { database, cleanup } = await testDatabase(engine);
  const config = loadServerConfig({ port: 0, db: database }, { ...env });
  const server = await buildServer(config);
  const address = await server.app.listen({ host: '127.0.0.1', port: 0 });
  const base = `${address}/fhir`;
  return {
    engine,
    url: address,
    base,
    database,
    server,
    fhir: fhirClient(base),
    async close() {
      await server.close();
      cleanup();
    },
  };
}

export interface FhirReply<T = any> { status: number; headers: Headers; body: T }

export interface FhirClient {
  request<T = any>(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<FhirReply<T>>;
  get<T = any>(path: string, headers?: Record<string, string>): Promise<FhirReply<T>>;
  post<T = any>(path: string, body: unknown, headers?: Record<string, string>): Promise<FhirReply<T>>;
  put<T = any>(path: string, body: unknown, headers?: Record<string, string>): Promise<FhirReply<T>>;
  delete<T = any>(path: string, headers?: Record<string, string>): Promise<FhirReply<T>>;
}

export function fhirClient(base: string): FhirClient {
  const request = async (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) => {
    const init: RequestInit = { method, headers: { accept: 'application/fhir+json', ...headers } };
    if (body !== undefined) {
      init.body = typeof body === 'string' ? body : JSON.stringify(body);
      (init.headers as Record<string, string>)['content-type'] ??= 'application/fhir+json';
    }
    const res = await fetch(`${base}/${path.replace(/^\//, '')}`, init);
    const text = await res.text();
    return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : undefined };
  };
  return {
    request,
    get: (p, h) => request('GET', p, undefined, h),
    post: (p, b, h) => request('POST', p, b, h),
    put: (p, b, h) => request('PUT', p, b, h),
    delete: (p, h) => request('DELETE', p, undefined, h),
  };
}
