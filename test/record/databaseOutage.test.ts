// PostgreSQL going away while the server runs (a restart, a failover, the network between them cut): a
// request meanwhile is answered at once with a 503 OperationOutcome a client can retry on, not a 500 that
// reads as a fault of the server nor a hang, and the server carries on once the database is back, without
// a restart. The outage is a real one: the server reaches PostgreSQL through a TCP relay the test cuts.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { buildServer, type CareBridgeServer } from '../../src/server.ts';
import { loadServerConfig } from '../../src/config.ts';
import { DatabaseUnavailable } from '../../src/record/index.ts';
import { TEST_ADMIN, clientToken, fhirClient, type FhirClient } from '../support/server.ts';
import { freshPostgresDatabase } from '../support/postgres.ts';
import { MESH_KEY, meshCall } from '../support/mesh.ts';
import { addMailbox } from '../../src/messaging/index.ts';
import { addOrganisation, addUser } from '../../src/access/index.ts';
import { csrfTokenIn } from '../portal/portalServer.ts';
import { addPerson, personToken } from '../support/people.ts';

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
  let url: string;
  const MAILBOX = { id: 'OUTAGE01', password: 'outage-mailbox-password' };
  const NURSE = { username: 'outage.nurse', password: 'outage nurse password 1' };
  before(async () => {
    const direct = new URL(await freshPostgresDatabase());
    relay = new Relay(direct.hostname, Number(direct.port));
    await relay.open();
    const database = Object.assign(new URL(direct), { port: String(relay.port) }).href;
    server = await buildServer(loadServerConfig({ port: 0, db: database }, { CAREBRIDGE_ADMIN_CLIENT_ID: TEST_ADMIN.id, CAREBRIDGE_ADMIN_CLIENT_SECRET: TEST_ADMIN.secret, CAREBRIDGE_MESH_SHARED_KEY: MESH_KEY }));
    url = await server.app.listen({ host: '127.0.0.1', port: 0 });
    await addMailbox(server.driver, { mailboxId: MAILBOX.id, ods: 'RX8', password: MAILBOX.password }, MESH_KEY);
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
  // The audit writer's thread died this way during an outage (exit code 1), and the server would have too:
  // a connection lost while a transaction held it between statements was an unheard 'error' event.
  it('a transaction holding its connection when PostgreSQL goes away fails as unavailable, and the process carries on', async () => {
    let resume!: () => void;
    const held = new Promise<void>((resolve) => (resume = resolve));
    let begun!: () => void;
    const started = new Promise<void>((resolve) => (begun = resolve));
    const transaction = server.driver.transaction(async (tx) => {
      await tx.get('SELECT 1 AS one');
      begun();
      await held;
      return tx.get('SELECT 2 AS two');
    });
    await started;
    await relay.cut();
    try {
      await new Promise((resolve) => setTimeout(resolve, 200)); // the loss reaches the idle connection
      resume();
      await assert.rejects(transaction, (err: Error) => err instanceof DatabaseUnavailable);
    } finally {
      await relay.open();
    }
    assert.deepEqual(await server.driver.transaction((tx) => tx.get('SELECT 3 AS three')), { three: 3 }, 'the next transaction gets a working connection');
  });

  it('answers 503 on the token endpoint, the MESH mailbox and the portal too, saying to try again, not that the caller is wrong', async () => {
    await addOrganisation(server.driver, { ods: 'RX9', name: 'Outage Hospital', kind: 'other' });
    await addUser(server.driver, { username: NURSE.username, name: 'Outage Nurse', password: NURSE.password, memberships: [{ organisation: 'RX9', role: 'ward-nurse' }] });
    const signInForm = await fetch(`${url}/sign-in`);
    const formCookie = signInForm.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ');
    const csrf = csrfTokenIn(await signInForm.text());
    assert.equal((await meshCall(url, MAILBOX.id, MAILBOX.password, 'GET', '/inbox')).status, 200);
    const asTestServer = { engine: 'postgres' as const, auth: {}, url, base: `${url}/fhir`, database: '', server, fhir, close: async () => undefined };
    await addPerson(asTestServer, { username: 'outage.carer', role: 'care-home-staff', org: 'RX7' });
    const personAuth = { authorization: `Bearer ${await personToken(asTestServer, 'outage.carer')}`, 'content-type': 'application/json' };
    const adminAuth = { authorization: `Bearer ${await clientToken(url, TEST_ADMIN.id, TEST_ADMIN.secret)}` };

    await relay.cut();
    try {
      const token = await fetch(`${url}/oauth2/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${TEST_ADMIN.id}:${TEST_ADMIN.secret}`).toString('base64')}` },
        body: new URLSearchParams({ grant_type: 'client_credentials' }).toString(),
      });
      const tokenBody = await token.json();
      assert.equal(token.status, 503, JSON.stringify(tokenBody));
      assert.equal(tokenBody.error, 'temporarily_unavailable');
      assert.equal(token.headers.get('retry-after'), '5');

      const mesh = await meshCall(url, MAILBOX.id, MAILBOX.password, 'GET', '/inbox');
      assert.equal(mesh.status, 503, mesh.body.toString());
      assert.equal(mesh.headers.get('retry-after'), '5');
      assert.match(mesh.json().errorDescription ?? JSON.stringify(mesh.json()), /try again/i);

      const signIn = await fetch(`${url}/sign-in`, {
        method: 'POST', redirect: 'manual',
        headers: { cookie: formCookie, 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ _csrf: csrf, username: NURSE.username, password: NURSE.password }).toString(),
      });
      const page = await signIn.text();
      assert.equal(signIn.status, 503, page.slice(0, 400));
      assert.equal(signIn.headers.get('retry-after'), '5');
      assert.match(page, /Sorry, the service is unavailable/);
      assert.doesNotMatch(page, /password|username/i, 'an outage is not the person\'s mistake');

      const appSignIn = await fetch(`${url}/oauth2/authorize?response_type=code&client_id=test-app&scope=user%2F*.rs`);
      assert.equal(appSignIn.status, 503);
      assert.match(await appSignIn.text(), /cannot sign you in just now/);

      for (const answer of [
        await fetch(`${url}/messaging/dead-letters`, { headers: adminAuth }),
        await fetch(`${url}/access/break-glass`, { method: 'POST', headers: personAuth, body: JSON.stringify({ patient: 'Patient/x', reasonCode: 'emergency', reason: 'Collapsed in the lounge' }) }),
      ]) {
        const body = await answer.json();
        assert.equal(answer.status, 503, `${answer.url}: ${JSON.stringify(body)}`);
        assert.equal(body.issue[0].code, 'transient');
        assert.equal(answer.headers.get('retry-after'), '5');
      }
    } finally {
      await relay.open();
    }
    assert.equal((await meshCall(url, MAILBOX.id, MAILBOX.password, 'GET', '/inbox')).status, 200, 'served again once the database is back');
  });
});
