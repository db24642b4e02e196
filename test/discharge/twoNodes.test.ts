// Two council app nodes on one PostgreSQL (the deployment for scale), both hosting the council's MESH mailbox
// and both running its inbox: ADW notices waiting in the inbox or uploaded to either node, some of them
// twice, each become exactly one episode, one referral with one triage Task, one stay and one person,
// however the two nodes' workers race for them. Every notice names the same person and the same ward, neither known yet, so both nodes
// look for them and create them at the same moment: the case that would make duplicate records (hazard H-016).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { freshPostgresDatabase, stopOwnPostgres } from '../support/postgres.ts';
import { MESH_KEY, meshCall, waitFor } from '../support/mesh.ts';
import { runCli } from '../cli/cli.ts';
import { EXAMPLES, episodeIds, inbound, renamed, COUNCIL_ODS, HOSPITAL_ODS } from './support.ts';
import { openRecordStore } from '../../src/record/index.ts';
import { storeInbound } from '../../src/messaging/inbox.ts';
import { startPeer, type Peer } from './meshPeer.ts';

after(stopOwnPostgres);

const HOSPITAL_BOX = { id: 'HOSPITAL01', password: 'hospital-mesh-password' };
const COUNCIL_BOX = { id: 'COUNCIL01', password: 'council-mesh-password' };
const EPISODE = '311fcae7-32a7-4a8e-a15c-eebae3a246b9';
const STAY = '2562b8b6-c0db-424a-8c6b-0fa43b0d6c2f';
/** The person every official example names (its NHS number). */
const NHS_NUMBER = '9413946000';
const NOTICES = 24;
const SENT_TWICE = 6;

describe('two council nodes on one PostgreSQL share one MESH inbox', () => {
  const nodes: Peer[] = [];
  const episodes: { episode: string; stay: string; xml: string }[] = [];

  before(async () => {
    const database = await freshPostgresDatabase();
    // Linking each mailbox to its organisation adds the organisation; the person and the ward come with the notices.
    for (const [box, ods, flags] of [[COUNCIL_BOX, COUNCIL_ODS, []], [HOSPITAL_BOX, HOSPITAL_ODS, ['--polled']]] as const) {
      const added = await runCli(['mesh', 'mailbox', 'add', box.id, '--ods', ods, '--password', box.password, ...flags, '--db', database], { CAREBRIDGE_MESH_SHARED_KEY: MESH_KEY });
      assert.equal(added.code, 0, added.stderr);
    }
    for (let i = 0; i < NOTICES; i++) {
      const ids = episodeIds();
      episodes.push({ episode: ids[EPISODE], stay: ids[STAY], xml: renamed(EXAMPLES['Assessment-Notice'], ids) });
    }
    // The notices arrived while the council's nodes were down (a deploy): both start on a full inbox at once,
    // so each node's first batches all meet the new person and the new ward before either has committed them.
    const store = await openRecordStore(database);
    try {
      for (const e of episodes) assert.equal(await storeInbound(store, inbound(e.xml, { receivedAt: Date.now() })), true);
    } finally {
      await store.close();
    }
    // Behind a load balancer both nodes answer for one public URL.
    const env = { CAREBRIDGE_MESH_SHARED_KEY: MESH_KEY, CAREBRIDGE_BASE_URL: 'http://council.test/fhir' };
    nodes.push(...(await Promise.all([startPeer(database, env), startPeer(database, env)])));
    // Meanwhile the hospital sends some of them again, each through the other node's MESH mailbox.
    const answers = await Promise.all(episodes.slice(0, SENT_TWICE).map((e, i) => meshCall(nodes[i % 2].url, HOSPITAL_BOX.id, HOSPITAL_BOX.password, 'POST', '/outbox', {
      headers: { 'mex-to': COUNCIL_BOX.id, 'mex-workflowid': 'ADW_NOTICE', 'content-type': 'application/xml' }, body: e.xml,
    })));
    assert.deepEqual(answers.map((a) => a.status), episodes.slice(0, SENT_TWICE).map(() => 202));
    await waitFor('both nodes to work through the inbox', async () => {
      const row = await nodes[0].server.driver.get<{ n: number }>("SELECT COUNT(*) AS n FROM messaging_inbox WHERE status = 'pending'");
      return Number(row?.n) === 0;
    }, 60_000);
  });
  after(async () => {
    for (const node of nodes) await node.close();
  });

  it('processes every message once, and dead-letters none', async () => {
    const rows = await nodes[0].server.driver.all<{ status: string; n: number }>('SELECT status, COUNT(*) AS n FROM messaging_inbox GROUP BY status');
    assert.deepEqual(Object.fromEntries(rows.map((r) => [r.status, Number(r.n)])), { done: NOTICES + SENT_TWICE });
  });

  it('makes one referral with one triage Task per episode, whichever node got it and however often', async () => {
    for (const { episode } of episodes) {
      const referrals = await nodes[1].fhir.get(`ServiceRequest?identifier=${episode}`);
      assert.equal(referrals.body.total ?? referrals.body.entry?.length ?? 0, 1, `one referral for episode ${episode}`);
      const referral = referrals.body.entry[0].resource;
      const tasks = await nodes[0].fhir.get(`Task?focus=ServiceRequest/${referral.id}&code=triage-referral`);
      assert.equal(tasks.body.entry?.length ?? 0, 1, `one triage Task for episode ${episode}`);
    }
  });

  it('records one stay per hospital encounter', async () => {
    for (const { stay } of episodes) {
      const found = await nodes[0].fhir.get(`Encounter?identifier=${stay}`);
      assert.equal(found.body.entry?.length ?? 0, 1, `one Encounter for ${stay}`);
    }
  });

  it('makes one record for the person all the notices name, though both nodes met them first at the same moment', async () => {
    const people = await nodes[1].fhir.get(`Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|${NHS_NUMBER}`);
    assert.equal(people.body.entry?.length ?? 0, 1, JSON.stringify(people.body.entry?.map((e: any) => e.resource.id)));
  });

  it('makes one Location for the ward all the notices name', async () => {
    const wards = await nodes[0].fhir.get(`Location?name:exact=${encodeURIComponent('Collier Ward')}`);
    assert.equal(wards.body.entry?.length ?? 0, 1, JSON.stringify(wards.body.entry?.map((e: any) => e.resource.id)));
  });

  it('keeps one inbound ADW message per MessageHeader, with the repeats not applied again', async () => {
    const rows = await nodes[0].server.driver.all<{ header_id: string; n: number }>(
      "SELECT header_id, COUNT(*) AS n FROM discharge_adw_messages WHERE direction = 'in' GROUP BY header_id");
    assert.equal(rows.length, NOTICES);
    assert.deepEqual(rows.filter((r) => Number(r.n) !== 1), []);
  });
});
