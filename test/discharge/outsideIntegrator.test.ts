// What an outside integrator will try first (issue 4, item 3), on a fresh database per engine with no
// organisations: the operator's `carebridge mesh mailbox add` for the hospital and the council of the
// official ADW examples (spawned as a real command), then a server, and the hospital played over raw
// MESH HTTP: it sends the official Assessment Notice; the episode is found by its ReferralRequest.identifier
// over the FHIR API; a bad notice's reject and the council's accept wait in the hospital's inbox for its
// client to download and acknowledge, each answering its notice's MessageHeader.id. The server runs its own
// workers (nothing here calls them), as it would for the integrator.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ENGINES, testDatabase } from '../support/server.ts';
import { stopOwnPostgres } from '../support/postgres.ts';
import { MESH_KEY, meshCall, waitFor } from '../support/mesh.ts';
import { runCli } from '../cli/cli.ts';
import { inboxState, listDeadLetters } from '../../src/messaging/index.ts';
import { ADW_EVENT, DEFAULT_ADW_WORKFLOW_IDS, parseAdwMessage, triage, triageStateOf, type AdwMessage } from '../../src/discharge/index.ts';
import { EXAMPLES, episodeIds, renamed, COUNCIL_ODS, HOSPITAL_ODS } from './support.ts';
import { startPeer, type Peer } from './meshPeer.ts';

after(stopOwnPostgres);

const HOSPMBX = { id: 'HOSPMBX', password: 'hospital-mailbox-pw' };
const COUNCILMBX = { id: 'COUNCILMBX', password: 'council-mailbox-pw' };
const [NOTICE_WORKFLOW, RESPONSE_WORKFLOW] = DEFAULT_ADW_WORKFLOW_IDS;
const OFFICIAL_NOTICE = parseAdwMessage(EXAMPLES['Assessment-Notice']);

for (const engine of ENGINES) {
  describe(`ADW from an outside hospital over the built-in MESH, as an integrator tries it (${engine})`, () => {
    let cleanup = (): void => undefined;
    let server: Peer;

    before(async () => {
      const db = await testDatabase(engine);
      cleanup = db.cleanup;
      for (const [box, ods] of [[HOSPMBX, HOSPITAL_ODS], [COUNCILMBX, COUNCIL_ODS]] as const) {
        const added = await runCli(['mesh', 'mailbox', 'add', box.id, '--ods', ods, '--password', box.password, '--db', db.database], { CAREBRIDGE_MESH_SHARED_KEY: MESH_KEY });
        assert.equal(added.code, 0, added.stderr);
        assert.equal(added.stdout, `Added mailbox ${box.id} for ${ods} (hosted, processed here); ${ods} was not a known organisation, so it was added as "Organisation ${ods} (added with its MESH mailbox)".\n`);
      }
      // Discharge's timers wait an hour here: what is sent must go out because the step that queued it committed.
      server = await startPeer(db.database, { CAREBRIDGE_MESH_SHARED_KEY: MESH_KEY });
    });
    after(async () => {
      await server?.close();
      cleanup();
    });

    const asHospital = (method: string, path: string, options: Parameters<typeof meshCall>[5] = {}) => meshCall(server.url, HOSPMBX.id, HOSPMBX.password, method, path, options);
    async function hospitalSends(xml: string): Promise<string> {
      const sent = await asHospital('POST', '/outbox', { headers: { 'mex-to': COUNCILMBX.id, 'mex-workflowid': NOTICE_WORKFLOW, 'content-type': 'application/xml' }, body: xml });
      assert.equal(sent.status, 202, sent.body.toString());
      return sent.json().message_id;
    }
    /** The one response that arrives in the hospital's inbox: downloaded and acknowledged as its MESH client would. */
    async function hospitalReceives(): Promise<{ messageId: string; adw: AdwMessage; headers: Headers }> {
      const ids = await waitFor('a response in HOSPMBX\'s inbox', async () => {
        const listed: string[] = (await asHospital('GET', '/inbox')).json().messages;
        return listed.length ? listed : undefined;
      }, 30_000);
      assert.equal(ids.length, 1, 'one response');
      const download = await asHospital('GET', `/inbox/${ids[0]}`);
      assert.equal(download.status, 200);
      assert.equal((await asHospital('PUT', `/inbox/${ids[0]}/status/acknowledged`)).status, 200);
      assert.deepEqual((await asHospital('GET', '/inbox')).json().messages, [], 'gone once acknowledged');
      return { messageId: ids[0], adw: parseAdwMessage(download.body.toString('utf8')), headers: download.headers };
    }
    const episode = (identifier: string) => server.searchOne(`ServiceRequest?identifier=${identifier}`);

    it('the official Assessment Notice opens an episode found by its ReferralRequest.identifier', async () => {
      await hospitalSends(EXAMPLES['Assessment-Notice']);
      const referral = await waitFor('the episode', () => episode(OFFICIAL_NOTICE.referral!.identifier!), 30_000);
      assert.equal(referral.performer[0].display, `Organisation ${COUNCIL_ODS} (added with its MESH mailbox)`);
      const task = await server.searchOne(`Task?focus=ServiceRequest/${referral.id}&code=triage-referral`);
      assert.equal(triageStateOf(task), 'received');
      assert.deepEqual((await asHospital('GET', '/inbox')).json().messages, [], 'a notice is answered only when the council decides');
    });

    it('a notice with an invalid NHS number: its reject waits in HOSPMBX\'s inbox for the hospital\'s client, and the notice is a dead letter', async () => {
      const ids = episodeIds();
      const bad = renamed(EXAMPLES['Assessment-Notice'], ids).replace('value="9413946000"', 'value="9413946001"');
      const badId = await hospitalSends(bad);
      const { messageId, adw, headers } = await hospitalReceives();
      assert.equal(adw.eventCode, ADW_EVENT.assessmentReject);
      assert.equal(adw.response?.identifier, parseAdwMessage(bad).headerId);
      assert.equal(adw.referral?.identifier, ids[OFFICIAL_NOTICE.referral!.identifier!]);
      assert.match(adw.reason?.text ?? '', /NHS number 9413946001 is not valid/);
      assert.equal(headers.get('mex-from'), COUNCILMBX.id);
      assert.equal(headers.get('mex-workflowid'), RESPONSE_WORKFLOW);
      assert.equal((await inboxState(server.server.driver, messageId))?.status, 'held-for-client', 'not consumed here');
      assert.equal(await episode(ids[OFFICIAL_NOTICE.referral!.identifier!]), undefined, 'nothing half-written');
      const dead = await listDeadLetters(server.server.driver);
      assert.deepEqual(dead.map((d) => d.messageId), [badId], 'the bad notice, and only it, is a dead letter');
      assert.match(dead[0].reason, /NHS number 9413946001 is not valid/);
    });

    it('the council accepts the official notice: the accept waits in HOSPMBX\'s inbox, answering the notice\'s MessageHeader.id', async () => {
      const referral = await episode(OFFICIAL_NOTICE.referral!.identifier!);
      await triage(server.server.discharge.context, referral.id, { action: 'accept', note: 'We will assess at home.' });
      const { adw, headers } = await hospitalReceives();
      assert.equal(adw.eventCode, ADW_EVENT.assessmentAccept);
      assert.equal(adw.response?.identifier, OFFICIAL_NOTICE.headerId);
      assert.equal(adw.referral?.identifier, OFFICIAL_NOTICE.referral!.identifier);
      assert.equal(adw.sourceOds, COUNCIL_ODS);
      assert.equal(adw.destinationOds, HOSPITAL_ODS);
      assert.equal(headers.get('mex-workflowid'), RESPONSE_WORKFLOW);
      assert.equal(triageStateOf(await server.searchOne(`Task?focus=ServiceRequest/${referral.id}&code=triage-referral`)), 'accepted');
      assert.equal((await listDeadLetters(server.server.driver)).length, 1, 'still only the bad notice');
    });
  });
}
