// For messaging tests: raw calls to a MESH mailbox over real HTTP (so tests can also send bad headers),
// starting a server on a database the test chose, and waiting for background work.
import { buildServer, type CareBridgeServer } from '../../src/server.ts';
import { loadServerConfig } from '../../src/config.ts';
import { meshAuthorisationHeader } from '../../src/messaging/index.ts';
import { TEST_ADMIN, clientToken } from './server.ts';

export const MESH_KEY = 'test-mesh-shared-key';

export interface MeshAnswer { status: number; headers: Headers; body: Buffer; json(): any }

export async function meshCall(
  url: string,
  mailbox: string,
  password: string,
  method: string,
  path: string,
  options: { headers?: Record<string, string>; body?: string | Buffer; authorization?: string; key?: string; at?: number } = {},
): Promise<MeshAnswer> {
  const authorization = options.authorization ?? meshAuthorisationHeader(mailbox, password, options.key ?? MESH_KEY, options.at);
  const res = await fetch(`${url}/messageexchange/${mailbox}${path}`, {
    method,
    headers: { authorization, ...(options.body !== undefined ? { 'content-type': 'application/octet-stream' } : {}), ...options.headers },
    ...(options.body !== undefined ? { body: typeof options.body === 'string' ? options.body : new Uint8Array(options.body) } : {}),
  });
  const body = Buffer.from(await res.arrayBuffer());
  return { status: res.status, headers: res.headers, body, json: () => JSON.parse(body.toString('utf8')) };
}

export interface RunningServer { server: CareBridgeServer; url: string; auth: Record<string, string>; close(): Promise<void> }

/**
 * A real server on `database` (which outlives it), with the admin client and `env`; `beforeListen` runs where
 * server.ts wires workflows, before the inbound worker starts.
 */
export async function startServerOn(database: string, env: Record<string, string> = {}, beforeListen?: (server: CareBridgeServer) => void): Promise<RunningServer> {
  const config = loadServerConfig({ port: 0, db: database }, { CAREBRIDGE_ADMIN_CLIENT_ID: TEST_ADMIN.id, CAREBRIDGE_ADMIN_CLIENT_SECRET: TEST_ADMIN.secret, CAREBRIDGE_MESH_SHARED_KEY: MESH_KEY, ...env });
  const server = await buildServer(config);
  beforeListen?.(server);
  const url = await server.app.listen({ host: '127.0.0.1', port: 0 });
  const auth = { authorization: `Bearer ${await clientToken(url, TEST_ADMIN.id, TEST_ADMIN.secret)}` };
  return { server, url, auth, close: () => server.close() };
}

export async function waitFor<T>(what: string, check: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 10_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
