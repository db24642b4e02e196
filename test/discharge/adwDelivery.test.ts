// Outbound ADW messages (responses, and notices of councils that also send) wait in discharge_adw_messages
// until the delivery poll hands them to MESH. Each poll sends what is queued and what a sender that died
// mid-send left claimed past its lease, and nothing else; and it finds them without reading the messages
// already sent, which a council accumulates by the hundred thousand.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { addMailbox } from '../../src/messaging/index.ts';
import { deliverPendingAdw } from '../../src/discharge/index.ts';
import { DUE_FOR_SENDING } from '../../src/discharge/adw/delivery.ts';
import { ENGINES, startTestServer, type Engine } from '../support/server.ts';
import { stopOwnPostgres } from '../support/postgres.ts';
import { COUNCIL_ODS, HOSPITAL_ODS } from './support.ts';

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

        assert.equal(await deliverPendingAdw(driver, t.server.messaging, WORKFLOWS, 20, now), 2);

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

    if (engine === 'sqlite') {
      it("searches the status index for each of the two states, not every outbound message's entry", async () => {
        const t = await serverFor(engine);
        try {
          const plan = (await t.server.driver.all<{ detail: string }>(`EXPLAIN QUERY PLAN ${DUE_FOR_SENDING}`, [0, 20])).map((r) => r.detail);
          assert.ok(plan.some((d) => /discharge_adw_messages_status \(direction=\? AND status=\?\)/.test(d)), plan.join('\n'));
        } finally {
          await t.close();
        }
      });
    }
  });
}
