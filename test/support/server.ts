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

export const TEST_ADMIN = { id: 'test-admin', secret: 'test-admin-secret-0123456789' };

export interface TestServer {
  engine: Engine;
  /** Authorization header with an admin token, for tests that call fetch themselves. */
  auth: Record<string, string>;
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
  const config = loadServerConfig({ port: 0, db: database }, { CAREBRIDGE_ADMIN_CLIENT_ID: TEST_ADMIN.id, CAREBRIDGE_ADMIN_CLIENT_SECRET: TEST_ADMIN.secret, ...env });
  const server = await buildServer(config);
  const address = await server.app.listen({ host: '127.0.0.1', port: 0 });
  const base = `${address}/fhir`;
  const auth = { authorization: `Bearer ${await clientToken(address, TEST_ADMIN.id, TEST_ADMIN.secret)}` };
  return {
    engine,
    auth,
    url: address,
    base,
    database,
    server,
    fhir: fhirClient(base, auth),
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

/** A token from /oauth2/token with client_credentials and a client secret (HTTP Basic). */
export async function clientToken(origin: string, clientId: string, secret: string, scope?: string): Promise<string> {
  const res = await fetch(`${origin}/oauth2/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${clientId}:${secret}`).toString('base64')}` },
    body: new URLSearchParams({ grant_type: 'client_credentials', ...(scope ? { scope } : {}) }).toString(),
  });
  const body = await res.json();
  if (res.status !== 200) throw new Error(`token request failed: ${res.status} ${JSON.stringify(body)}`);
  return body.access_token;
}

export function fhirClient(base: string, auth: Record<string, string> = {}): FhirClient {
  const request = async (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) => {
    const init: RequestInit = { method, headers: { accept: 'application/fhir+json', ...auth, ...headers } };
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
