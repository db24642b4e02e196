// Outbound ADW messages (responses, and notices of councils that also send) wait in discharge_adw_messages
// until the delivery poll hands them to MESH. Each poll sends what is queued and what a sender that died
// mid-send left claimed past its lease, and nothing else; and it finds them without reading the messages
// already sent, which a council accumulates by the hundred thousand. A message that cannot be sent waits
// (backoff) or is given up and listed, and never holds up the messages queued after it.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { addMailbox } from '../../src/messaging/index.ts';
import { deliverPendingAdw, handleAdwMessage, listFailedAdw, retryFailedAdw, triage } from '../../src/discharge/index.ts';
import { DUE_FOR_SENDING, GIVE_UP_AFTER, backoff } from '../../src/discharge/adw/delivery.ts';
import { ENGINES, startTestServer, type Engine } from '../support/server.ts';
import { stopOwnPostgres } from '../support/postgres.ts';
import { waitFor } from '../support/mesh.ts';
import { EXAMPLES, COUNCIL_ODS, HOSPITAL_ODS, episodeIds, inbound, renamed, searchOne, seedOrganisations } from './support.ts';

after(stopOwnPostgres);

const WORKFLOWS = { notice: 'TOC_FHIR_DISCHARGE_NOTICE', response: 'TOC_FHIR_DISCHARGE_RESPONSE' };
const MINUTE = 60_000;
const MESH_KEY = 'delivery-test-shared-key';

/** The poll is run by the test, not a timer. */
const serverFor = (engine: Engine) => startTestServer(engine, { CAREBRIDGE_DISCHARGE_POLL_SECONDS: '3600', CAREBRIDGE_MESH_SHARED_KEY: MESH_KEY });

for (const engine of ENGINES) {
  describe(`ADW delivery poll (${engine})`, () => {
    it('sends the queued and the lease-expired, leaves a live claim and the sent alone', async () => {
      const t = await serverFor(engine);
      try {
        const { driver } = t.server;
        await addMailbox(driver, { mailboxId: 'COUNCILMB1', ods: COUNCIL_ODS }, undefined);
        // Hosted here for the hospital's own MESH client: what is sent waits in it, unprocessed.
        await addMailbox(driver, { mailboxId: 'HOSPITALMB1', ods: HOSPITAL_ODS, password: 'hospital-mesh-password', polled: true }, MESH_KEY);
        const now = Date.now();
        const rows: [string, string, number | null][] = [
          ['queued', 'pending', null],
          ['claimed-long-ago', 'sending', now - 2 * MINUTE], // its sender died mid-send
          ['claimed-just-now', 'sending', now - 1000], // its sender is still at it
          ['already-sent', 'sent', now - 10 * MINUTE],
        ];
        for (const [id, status, claimed] of rows) {
          await driver.run(
            "INSERT INTO discharge_adw_messages (direction, header_id, event_code, status, our_ods, peer_ods, body, claimed_ms, at_ms) VALUES ('out', ?, '01', ?, ?, ?, ?, ?, ?)",
            [id, status, COUNCIL_ODS, HOSPITAL_ODS, `<Bundle id="${id}"/>`, claimed, now - 5 * MINUTE],
          );
        }

        assert.equal((await deliverPendingAdw(driver, t.server.messaging, WORKFLOWS, 20, now)).sent, 2);

        const after = await driver.all<{ header_id: string; status: string; mesh_message_id: string | null }>(
          "SELECT header_id, status, mesh_message_id FROM discharge_adw_messages WHERE direction = 'out' ORDER BY header_id",
        );
        assert.deepEqual(after.map((r) => [r.header_id, r.status, r.mesh_message_id !== null]), [
          ['already-sent', 'sent', false],
          ['claimed-just-now', 'sending', false],
          ['claimed-long-ago', 'sent', true],
          ['queued', 'sent', true],
        ]);
        const inHospitalMailbox = await driver.all<{ local_id: string }>("SELECT local_id FROM mesh_messages WHERE recipient = 'HOSPITALMB1' ORDER BY local_id");
        assert.deepEqual(inHospitalMailbox.map((m) => m.local_id), ['claimed-long-ago', 'queued']);
      } finally {
        await t.close();
      }
    });

    it('twenty old messages to an organisation with no mailbox do not hold up a newer one: they are marked failed and listed, and sent once its mailbox is linked', async () => {
      const t = await serverFor(engine);
      try {
        const { driver } = t.server;
        await addMailbox(driver, { mailboxId: 'COUNCILMB1', ods: COUNCIL_ODS }, undefined);
        await addMailbox(driver, { mailboxId: 'HOSPITALMB1', ods: HOSPITAL_ODS, password: 'hospital-mesh-password', polled: true }, MESH_KEY);
        const now = Date.now();
        const queue = (id: string, peer: string, atMs: number) => driver.run(
          "INSERT INTO discharge_adw_messages (direction, header_id, event_code, status, our_ods, peer_ods, body, at_ms) VALUES ('out', ?, '01', 'pending', ?, ?, ?, ?)",
          [id, COUNCIL_ODS, peer, `<Bundle id="${id}"/>`, atMs],
        );
        for (let i = 0; i < 20; i++) await queue(`stuck-${String(i).padStart(2, '0')}`, 'RZZ99', now - 10 * MINUTE + i);
        await queue('newer', HOSPITAL_ODS, now - MINUTE);

        for (let i = 0; i < 5; i++) await t.server.discharge.runWorkers();

        const status = async (id: string) => (await driver.get<{ status: string }>("SELECT status FROM discharge_adw_messages WHERE direction = 'out' AND header_id = ?", [id]))?.status;
        assert.equal(await status('newer'), 'sent', 'the newer message to a linked mailbox went out');
        const inHospitalMailbox = await driver.all<{ local_id: string }>("SELECT local_id FROM mesh_messages WHERE recipient = 'HOSPITALMB1'");
        assert.deepEqual(inHospitalMailbox.map((m) => m.local_id), ['newer']);
        const failed = await listFailedAdw(driver);
        assert.equal(failed.length, 20, 'the undeliverable ones are failed and listed, not retried for ever');
        assert.match(failed[0].detail ?? '', /No MESH mailbox is linked to RZZ99.*carebridge discharge adw retry --peer RZZ99/);

        // The mailbox is linked: one command queues them again and they go.
        await addMailbox(driver, { mailboxId: 'RZZ99MB1', ods: 'RZZ99', password: 'rzz99-mesh-password', polled: true }, MESH_KEY);
        assert.equal(await retryFailedAdw(driver, { peerOds: 'rzz99' }), 20);
        await t.server.discharge.runWorkers();
        assert.equal((await listFailedAdw(driver)).length, 0);
        assert.equal((await driver.all("SELECT local_id FROM mesh_messages WHERE recipient = 'RZZ99MB1'")).length, 20);
      } finally {
        await t.close();
      }
    });

    it('a message MESH refuses waits longer after each failure, while others are sent, and is given up (and listed) after the last attempt', async () => {
      const t = await serverFor(engine);
      try {
        const { driver } = t.server;
        let now = Date.now();
        await driver.run(
          "INSERT INTO discharge_adw_messages (direction, header_id, event_code, status, our_ods, peer_ods, body, at_ms) VALUES ('out', 'refused', '01', 'pending', ?, ?, '<Bundle/>', ?)",
          [COUNCIL_ODS, HOSPITAL_ODS, now - MINUTE],
        );
        const refusing = { mailboxForOrganisation: async (ods: string) => `${ods}MB`, send: async (): Promise<{ messageId: string }> => { throw new Error('MESH answered 503'); } };
        const row = () => driver.get<{ status: string; attempts: number | string; detail: string }>("SELECT status, attempts, detail FROM discharge_adw_messages WHERE header_id = 'refused'");

        assert.equal((await deliverPendingAdw(driver, refusing, WORKFLOWS, 20, now)).claimed, 1);
        assert.equal((await row())?.status, 'pending');
        assert.equal((await deliverPendingAdw(driver, refusing, WORKFLOWS, 20, now + 1000)).claimed, 0, 'not tried again at once');
        for (let attempt = 1; attempt < GIVE_UP_AFTER; attempt++) {
          assert.equal((await deliverPendingAdw(driver, refusing, WORKFLOWS, 20, now + backoff(attempt) - 1000)).claimed, 0, `still waiting after attempt ${attempt}`);
          now += backoff(attempt);
          assert.equal((await deliverPendingAdw(driver, refusing, WORKFLOWS, 20, now)).claimed, 1, `attempt ${attempt + 1} once due`);
        }
        assert.ok(backoff(GIVE_UP_AFTER - 1) > backoff(1), 'the wait grows');
        const last = await row();
        assert.equal(last?.status, 'failed');
        assert.equal(Number(last?.attempts), GIVE_UP_AFTER);
        assert.match(last?.detail ?? '', /MESH answered 503; gave up after 12 attempts/);
        assert.deepEqual((await listFailedAdw(driver)).map((r) => r.header_id), ['refused']);
        assert.equal((await deliverPendingAdw(driver, refusing, WORKFLOWS, 20, now + 24 * 60 * MINUTE)).claimed, 0, 'given up: not tried again by itself');
      } finally {
        await t.close();
      }
    });

    it('an answer that cannot be sent is noted on the referral, so the council knows the hospital was not told', async () => {
      const t = await serverFor(engine);
      try {
        await seedOrganisations(t);
        const ctx = t.server.discharge.context;
        const ids = episodeIds();
        await handleAdwMessage({ ctx }, inbound(renamed(EXAMPLES['Assessment-Notice'], ids)));
        const referral = await searchOne(t, `ServiceRequest?identifier=${ids['311fcae7-32a7-4a8e-a15c-eebae3a246b9']}`);
        await triage(ctx, referral.id, { action: 'accept' }); // queues the assessment accept; the council has no mailbox linked
        await t.server.discharge.runWorkers();
        const notes = (await t.fhir.get(`Communication?based-on=ServiceRequest/${referral.id}`)).body.entry.map((e: any) => e.resource);
        const note = notes.find((c: any) => c.category?.[0]?.text === 'Message not sent');
        assert.ok(note, notes.map((c: any) => c.category?.[0]?.text).join(', '));
        assert.match(note.payload[0].contentString, /assessment notice accept to RFM8C2 could not be sent, so they have not been told: No MESH mailbox is linked to V396BB/);
      } finally {
        await t.close();
      }
    });

    it('an answer goes out as soon as the step that queued it commits, without waiting for the poll', async () => {
      const t = await serverFor(engine); // the poll runs once an hour
      try {
        const { driver } = t.server;
        await seedOrganisations(t);
        await addMailbox(driver, { mailboxId: 'COUNCILMB1', ods: COUNCIL_ODS }, undefined);
        await addMailbox(driver, { mailboxId: 'HOSPITALMB1', ods: HOSPITAL_ODS, password: 'hospital-mesh-password', polled: true }, MESH_KEY);
        const ctx = t.server.discharge.context;
        const ids = episodeIds();
        await handleAdwMessage({ ctx }, inbound(renamed(EXAMPLES['Assessment-Notice'], ids), { from: 'HOSPITALMB1', to: 'COUNCILMB1' }));
        const referral = await searchOne(t, `ServiceRequest?identifier=${ids['311fcae7-32a7-4a8e-a15c-eebae3a246b9']}`);
        await triage(ctx, referral.id, { action: 'accept' });
        const inHospitalMailbox = await waitFor('the accept in the hospital\'s mailbox', async () => {
          const rows = await driver.all<{ workflow_id: string }>("SELECT workflow_id FROM mesh_messages WHERE recipient = 'HOSPITALMB1'");
          return rows.length ? rows : undefined;
        }, 5_000);
        assert.deepEqual(inHospitalMailbox.map((m) => m.workflow_id), ['ADW_NOTICE_ACK'], 'the accept, under the default response workflow id');
      } finally {
        await t.close();
      }
    });

    if (engine === 'sqlite') {
      it("searches the status index for each of the two states, not every outbound message's entry", async () => {
        const t = await serverFor(engine);
        try {
          const plan = (await t.server.driver.all<{ detail: string }>(`EXPLAIN QUERY PLAN ${DUE_FOR_SENDING}`, [0, 0, 20])).map((r) => r.detail);
          assert.ok(plan.some((d) => /discharge_adw_messages_status \(direction=\? AND status=\?\)/.test(d)), plan.join('\n'));
        } finally {
          await t.close();
        }
      });
    }
  });
}
