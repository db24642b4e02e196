// The audit trail is hash-chained: `carebridge audit verify` (the real command) passes on an intact chain,
// and names exactly the entry whose AuditEvent was changed or whose chain row was deleted (both storage
// engines). Two app nodes on one PostgreSQL extend one chain.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ENGINES, TEST_ADMIN, clientToken, fhirClient, startTestServer, testDatabase, type TestServer } from '../support/server.ts';
import { stopOwnPostgres } from '../support/postgres.ts';
import { runCli } from '../cli/cli.ts';
import { buildServer, type CareBridgeServer } from '../../src/server.ts';
import { loadServerConfig } from '../../src/config.ts';
import { migrateAccess, verifyAuditChain } from '../../src/access/index.ts';
import { appendToChain } from '../../src/access/audit/chain.ts';
import { openRecordStore, type SqlDriver } from '../../src/record/index.ts';

after(() => stopOwnPostgres());

const verify = async (database: string) => {
  const r = await runCli(['audit', 'verify', '--db', database]);
  return { ...r, lines: r.stdout.trim().split('\n').filter(Boolean) };
};

const chainLength = async (driver: SqlDriver) => Number((await driver.get<{ n: number }>('SELECT COUNT(*) AS n FROM access_audit_chain'))!.n);

async function waitForChain(driver: SqlDriver, atLeast: number): Promise<void> {
  const deadline = Date.now() + 10_000;
  while ((await chainLength(driver)) < atLeast) {
    if (Date.now() > deadline) assert.fail(`the audit chain did not reach ${atLeast} entries`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

for (const engine of ENGINES) {
  describe(`audit hash chain (${engine})`, { concurrency: 1 }, () => {
    let t: TestServer;
    before(async () => {
      t = await startTestServer(engine);
      const pid = (await t.fhir.post('Patient', { resourceType: 'Patient', name: [{ family: 'Chained' }] })).body.id;
      for (let i = 0; i < 6; i++) await t.fhir.get(`Patient/${pid}`);
      await waitForChain(t.server.driver, 7);
    });
    after(async () => t?.close());

    it('verify passes on an intact chain', async () => {
      const r = await verify(t.database);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.match(r.stdout, /intact: \d+ entries checked/);
    });

    it('verify names exactly the entry whose stored AuditEvent was changed', async () => {
      const target = (await t.server.driver.get<{ seq: number; audit_id: string }>('SELECT seq, audit_id FROM access_audit_chain ORDER BY seq LIMIT 1 OFFSET 3'))!;
      const { content } = (await t.server.driver.get<{ content: string }>("SELECT content FROM resources WHERE type = 'AuditEvent' AND id = ?", [target.audit_id]))!;
      const forged = JSON.stringify({ ...JSON.parse(content), outcome: '8' });
      const setContent = (text: string) => t.server.driver.transaction((tx) => tx.run("UPDATE resources SET content = ? WHERE type = 'AuditEvent' AND id = ?", [text, target.audit_id]));
      await setContent(forged);
      try {
        const r = await verify(t.database);
        assert.equal(r.code, 1, r.stdout + r.stderr);
        assert.equal(r.lines.length, 1, r.stdout);
        assert.match(r.lines[0], new RegExp(`seq ${target.seq} \\(AuditEvent ${target.audit_id}\\)`));
        assert.match(r.lines[0], /does not match its hash/);
      } finally {
        await setContent(content);
      }
      assert.equal((await verify(t.database)).code, 0, 'intact again once restored');
    });

    it('verify names exactly the entry whose chain row was deleted', async () => {
      const row = (await t.server.driver.get<{ seq: number; audit_id: string; prev_hash: string; hash: string; at_ms: number }>('SELECT * FROM access_audit_chain ORDER BY seq LIMIT 1 OFFSET 2'))!;
      await t.server.driver.transaction((tx) => tx.run('DELETE FROM access_audit_chain WHERE seq = ?', [row.seq]));
      try {
        const r = await verify(t.database);
        assert.equal(r.code, 1, r.stdout + r.stderr);
        assert.equal(r.lines.length, 1, r.stdout);
        assert.match(r.lines[0], new RegExp(`seq ${row.seq} \\(AuditEvent ${row.audit_id}\\)`));
        assert.match(r.lines[0], /chain row has been deleted/);
      } finally {
        await t.server.driver.transaction((tx) => tx.run('INSERT INTO access_audit_chain (seq, audit_id, prev_hash, hash, at_ms) VALUES (?, ?, ?, ?, ?)', [row.seq, row.audit_id, row.prev_hash, row.hash, row.at_ms]));
      }
      assert.equal((await verify(t.database)).code, 0, 'intact again once restored');
    });

    it('verify notices an AuditEvent removed from the record', async () => {
      const row = (await t.server.driver.get<{ seq: number; audit_id: string }>('SELECT seq, audit_id FROM access_audit_chain ORDER BY seq LIMIT 1 OFFSET 1'))!;
      await t.server.driver.transaction((tx) => tx.run("UPDATE resources SET deleted = 1, content = NULL WHERE type = 'AuditEvent' AND id = ?", [row.audit_id]));
      const result = await verifyAuditChain(t.server.driver);
      assert.deepEqual({ ...result, problem: undefined }, { intact: false, checked: row.seq - 1, seq: row.seq, auditId: row.audit_id, problem: undefined });
    });
  });
}

// Several app nodes share one database only on PostgreSQL (SQLite is one process per file).
describe('two app nodes on one PostgreSQL extend one chain', () => {
  const engine = 'postgres';
  let database: string;
  let cleanup: () => void;
  const servers: CareBridgeServer[] = [];
  before(async () => {
    ({ database, cleanup } = await testDatabase(engine));
  });
  after(() => cleanup?.());

  it('appends racing from two connection pools are serialised into one chain', async () => {
    const db = await testDatabase(engine);
    const pools = [await openRecordStore(db.database), await openRecordStore(db.database)];
    try {
      await migrateAccess(pools[0]);
      const event = (i: number) => ({ resourceType: 'AuditEvent', type: { code: 'rest' }, recorded: new Date().toISOString(), agent: [{ requestor: true, altId: `racer-${i}` }], source: { observer: { display: 'test' } } });
      await Promise.all(Array.from({ length: 20 }, (_, i) => appendToChain(pools[i % 2], Array.from({ length: 5 }, () => event(i)))));
      const result = await verifyAuditChain(pools[1]);
      assert.deepEqual(result.intact && result.checked, 100, JSON.stringify(result));
    } finally {
      for (const p of pools) await p.close();
      db.cleanup();
    }
  });

  it('concurrent requests through both nodes leave one intact, dense chain; deleting its last link is noticed', async () => {
    const env = { CAREBRIDGE_ADMIN_CLIENT_ID: TEST_ADMIN.id, CAREBRIDGE_ADMIN_CLIENT_SECRET: TEST_ADMIN.secret };
    for (let i = 0; i < 2; i++) servers.push(await buildServer(loadServerConfig({ port: 0, db: database }, env)));
    const clients = await Promise.all(servers.map(async (s) => {
      const url = await s.app.listen({ host: '127.0.0.1', port: 0 });
      return fhirClient(`${url}/fhir`, { authorization: `Bearer ${await clientToken(url, TEST_ADMIN.id, TEST_ADMIN.secret)}` });
    }));
    const pid = (await clients[0].post('Patient', { resourceType: 'Patient', name: [{ family: 'Twice' }] })).body.id;
    const PER_NODE = 60;
    const statuses = await Promise.all(clients.flatMap((c) => Array.from({ length: PER_NODE }, () => c.get(`Patient/${pid}`).then((r) => r.status))));
    assert.ok(statuses.every((s) => s === 200));
    for (const s of servers) await s.close(); // each flushes what it buffered

    const r = await verify(database);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const checked = Number(/(\d+) entries checked/.exec(r.stdout)![1]);
    assert.equal(checked, 1 + 2 * PER_NODE, 'one entry per request, none lost, no fork');

    const driver = await openRecordStore(database);
    let last: { seq: number; audit_id: string };
    try {
      last = (await driver.get<{ seq: number; audit_id: string }>('SELECT seq, audit_id FROM access_audit_chain ORDER BY seq DESC LIMIT 1'))!;
      assert.equal(Number(last.seq), checked, 'seq is dense');
      await driver.transaction((tx) => tx.run('DELETE FROM access_audit_chain WHERE seq = ?', [last.seq]));
    } finally {
      await driver.close();
    }
    const tail = await verify(database);
    assert.equal(tail.code, 1);
    assert.match(tail.lines[0], new RegExp(`seq ${checked} \\(AuditEvent ${last.audit_id}\\)`));
  });
});
