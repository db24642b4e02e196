// PostgreSQL going away while the server runs (a restart, a failover, the network between them cut): a
// request meanwhile is answered at once with a 503 OperationOutcome a client can retry on, not a 500 that
// reads as a fault of the server nor a hang, and the server carries on once the database is back, without
// a restart. The outage is a real one: the server reaches PostgreSQL through a TCP relay the test cuts.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { buildServer, type CareBridgeServer } from '../../src/server.ts';
import { loadServerConfig } from '../../src/config.ts';
import { TEST_ADMIN, clientToken, fhirClient, type FhirClient } from '../support/server.ts';
import { freshPostgresDatabase } from '../support/postgres.ts';

/** A TCP relay to host:port that can be cut (every connection dropped, new ones refused) and restored. */
class Relay {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  port = 0;
  constructor(private readonly host: string, private readonly targetPort: number) {}

  async open(): Promise<void> {
    this.server = createServer((inbound) => {
      const outbound = createConnection(this.targetPort, this.host);
      for (const [a, b] of [[inbound, outbound], [outbound, inbound]] as const) {
        this.sockets.add(a);
        a.on('error', () => b.destroy());
        a.on('close', () => (this.sockets.delete(a), b.destroy()));
        a.pipe(b);
      }
    });
    await new Promise<void>((resolve) => this.server!.listen(this.port, '127.0.0.1', resolve));
    this.port = (this.server.address() as { port: number }).port;
  }

  async cut(): Promise<void> {
    const closed = new Promise((resolve) => this.server!.close(resolve));
    for (const socket of this.sockets) socket.destroy();
    await closed;
  }
}

describe('PostgreSQL lost while serving, and back', () => {
  let relay: Relay;
  let server: CareBridgeServer;
  let fhir: FhirClient;
  before(async () => {
    const direct = new URL(await freshPostgresDatabase());
    relay = new Relay(direct.hostname, Number(direct.port));
    await relay.open();
    const database = Object.assign(new URL(direct), { port: String(relay.port) }).href;
    server = await buildServer(loadServerConfig({ port: 0, db: database }, { CAREBRIDGE_ADMIN_CLIENT_ID: TEST_ADMIN.id, CAREBRIDGE_ADMIN_CLIENT_SECRET: TEST_ADMIN.secret }));
    const url = await server.app.listen({ host: '127.0.0.1', port: 0 });
    fhir = fhirClient(`${url}/fhir`, { authorization: `Bearer ${await clientToken(url, TEST_ADMIN.id, TEST_ADMIN.secret)}` });
  });
  after(async () => {
    await server?.close();
    await relay?.cut().catch(() => undefined);
  });

  it('answers 503 with an OperationOutcome during the outage, and serves again when it ends', async () => {
    const patient = { resourceType: 'Patient', name: [{ family: 'Outage' }] };
    assert.equal((await fhir.post('Patient', patient)).status, 201);

    await relay.cut();
    for (const answer of [await fhir.get('Patient?family=outage'), await fhir.post('Patient', patient)]) {
      assert.equal(answer.status, 503, JSON.stringify(answer.body));
      assert.equal(answer.body.resourceType, 'OperationOutcome');
      assert.equal(answer.body.issue[0].code, 'transient');
      assert.equal(answer.headers.get('retry-after'), '5');
      assert.doesNotMatch(JSON.stringify(answer.body), /127\.0\.0\.1|postgres/i, 'where the database is stays in the log');
    }

    await relay.open();
    assert.equal((await fhir.post('Patient', patient)).status, 201);
    const found = await fhir.get('Patient?family=outage');
    assert.equal(found.status, 200);
    assert.equal(found.body.total ?? found.body.entry.length, 2);
  });
});
