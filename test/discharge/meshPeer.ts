// A CareBridge server for the discharge-over-MESH tests: on a database that outlives it (so it can be
// stopped and started again), on a port it can take again (a MESH client elsewhere keeps its address),
// with the admin client, and discharge's workers left to the test (runWorkers).
import { buildServer, type CareBridgeServer } from '../../src/server.ts';
import { loadServerConfig } from '../../src/config.ts';
import { TEST_ADMIN, clientToken, fhirClient, type FhirClient } from '../support/server.ts';

export interface Peer {
  server: CareBridgeServer;
  url: string;
  port: number;
  fhir: FhirClient;
  /** The first resource a search finds, or undefined. */
  searchOne(query: string): Promise<any>;
  close(): Promise<void>;
}

export async function startPeer(database: string, env: Record<string, string>, port = 0): Promise<Peer> {
  const config = loadServerConfig({ port, db: database }, {
    CAREBRIDGE_ADMIN_CLIENT_ID: TEST_ADMIN.id, CAREBRIDGE_ADMIN_CLIENT_SECRET: TEST_ADMIN.secret, CAREBRIDGE_DISCHARGE_POLL_SECONDS: '3600', ...env,
  });
  const server = await buildServer(config);
  const url = await server.app.listen({ host: '127.0.0.1', port });
  const auth = { authorization: `Bearer ${await clientToken(url, TEST_ADMIN.id, TEST_ADMIN.secret)}` };
  const fhir = fhirClient(`${url}/fhir`, auth);
  let closed = false;
  return {
    server, url, port: Number(new URL(url).port), fhir,
    async searchOne(query) {
      const r = await fhir.get(query);
      if (r.status !== 200) throw new Error(JSON.stringify(r.body));
      return r.body.entry?.[0]?.resource;
    },
    async close() {
      if (closed) return;
      closed = true;
      await server.close();
    },
  };
}
