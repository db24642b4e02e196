// Upgrading a database made before discharge migration 4, which put the sending mailbox into the key of
// inbound ADW messages (H-048): a notice claimed before the upgrade is still a copy when MESH delivers it
// again from the same mailbox, and another trust's notice with the same MessageHeader.id is processed.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { handleAdwMessage } from '../../src/discharge/index.ts';
import { DISCHARGE_MIGRATIONS } from '../../src/discharge/schema.ts';
import { migrate, openRecordStore } from '../../src/record/index.ts';
import { ENGINES, testDatabase } from '../support/server.ts';
import { stopOwnPostgres } from '../support/postgres.ts';
import { EXAMPLES, episodeIds, inbound, renamed, seedOrganisations, HOSPITAL_ODS } from './support.ts';
import { startPeer } from './meshPeer.ts';

after(stopOwnPostgres);

const EPISODE = '311fcae7-32a7-4a8e-a15c-eebae3a246b9';
const ASSESSMENT_HEADER = '5bfa2a2e-923b-440d-82d6-38e24b666be6';
const ASSESSMENT_NOTICE = '975701000000106';

for (const engine of ENGINES) {
  describe(`discharge migration 4 on an older database (${engine})`, () => {
    it('a notice claimed before the upgrade is still a copy after it; another trust\'s notice with its MessageHeader.id is processed', async () => {
      const { database, cleanup } = await testDatabase(engine);
      try {
        const ids = episodeIds();
        const old = await openRecordStore(database);
        await migrate(old, 'discharge', DISCHARGE_MIGRATIONS.filter((m) => m.version <= 3));
        // The claim version 3 wrote for the trust's notice from HOSPITAL01 (the referral it opened is not needed here).
        await old.transaction((tx) => tx.run(
          `INSERT INTO discharge_adw_messages (direction, header_id, event_code, referral_identifier, responds_to, status, peer_ods, peer_mailbox, mesh_message_id, at_ms)
           VALUES ('in', ?, ?, ?, NULL, 'awaiting-response', ?, 'HOSPITAL01', 'MESH-BEFORE-UPGRADE', 1000)`,
          [ids[ASSESSMENT_HEADER], ASSESSMENT_NOTICE, ids[EPISODE], HOSPITAL_ODS],
        ));
        await old.close();

        const peer = await startPeer(database, {});
        try {
          await seedOrganisations(peer);
          await peer.fhir.put('Organization/trust-rxx05', { resourceType: 'Organization', id: 'trust-rxx05', identifier: [{ system: 'https://fhir.nhs.uk/Id/ods-organization-code', value: 'RXX05' }], name: 'Fifth Trust' });
          const deps = { ctx: peer.server.discharge.context };
          // MESH delivers the same notice again, from the same mailbox.
          await handleAdwMessage(deps, inbound(renamed(EXAMPLES['Assessment-Notice'], ids)));
          assert.equal(await peer.searchOne(`ServiceRequest?identifier=${ids[EPISODE]}`), undefined, 'claimed before the upgrade, so a copy now');

          // Another trust whose system chose the same MessageHeader.id, for its own episode and person.
          const other: Record<string, string> = { ...episodeIds(), [ASSESSMENT_HEADER]: ids[ASSESSMENT_HEADER] };
          const fromOther = renamed(EXAMPLES['Assessment-Notice'], other).replace(/RFM8C2/g, 'RXX05').replace(/9413946000/g, '9449306060');
          await handleAdwMessage(deps, inbound(fromOther, { from: 'TRUST05' }));
          assert.ok(await peer.searchOne(`ServiceRequest?identifier=${other[EPISODE]}`), 'the other trust\'s notice opened its referral');
          const claims = await peer.server.driver.all<{ sender_mailbox: string; peer_ods: string }>(
            "SELECT sender_mailbox, peer_ods FROM discharge_adw_messages WHERE direction = 'in' AND header_id = ? ORDER BY sender_mailbox", [ids[ASSESSMENT_HEADER]]);
          assert.deepEqual(claims.map((c) => ({ ...c })), [{ sender_mailbox: 'HOSPITAL01', peer_ods: HOSPITAL_ODS }, { sender_mailbox: 'TRUST05', peer_ods: 'RXX05' }]);
        } finally {
          await peer.close();
        }
      } finally {
        cleanup();
      }
    });
  });
}
