// A "hospital" and a "council" CareBridge server run discharges over real MESH, on both engines. The
// hospital's server is also the MESH: its built-in mailbox hosts the hospital's mailbox (processed there),
// the council's (held for the council's MESH client) and, held for clients the test plays over raw HTTP,
// a third trust's, a fourth trust's (another ODS code) and another council's. Nothing is stubbed: ADW XML goes through the built-in mailbox, the MESH client, the
// inbox and the discharge workflow on both sides, with the workflow ids each side uses by default.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ENGINES, testDatabase } from '../support/server.ts';
import { stopOwnPostgres } from '../support/postgres.ts';
import { MESH_KEY, meshCall, waitFor } from '../support/mesh.ts';
import { runCli } from '../cli/cli.ts';
import { addMailbox, inboxState, listDeadLetters } from '../../src/messaging/index.ts';
import {
  ADW_EVENT, EXPECTED_DISCHARGE_URL, confirmReady, createReferral, parseAdwMessage, setCouncilSettings, triage, triageStateOf, withdrawReferral,
} from '../../src/discharge/index.ts';
import { addOrganisation, addUser } from '../../src/access/index.ts';
import { generateSyntheticNhsNumber } from '../../src/record/index.ts';
import { TEST_PASSWORD, csrfTokenIn } from '../portal/portalServer.ts';
import { EXAMPLES, episodeIds, renamed, seedOrganisations, seedPatient, COUNCIL_ODS, HOSPITAL_ODS } from './support.ts';
import { signIn } from './pagesSeed.ts';
import { startPeer, type Peer } from './meshPeer.ts';

after(stopOwnPostgres);

const HOSPITAL_BOX = { id: 'HOSPITAL01', password: 'hospital-mesh-password' };
const COUNCIL_BOX = { id: 'COUNCIL01', password: 'council-mesh-password' };
/** Another trust of the same hospital ODS code, whose system the test plays with raw MESH calls. */
const TRUST_BOX = { id: 'TRUST02', password: 'trust-mesh-password' };
/** A trust of its own ODS code whose system numbers its MessageHeader.ids as TRUST02's does (H-048). */
const OTHER_TRUST = { id: 'TRUST04', password: 'other-trust-mesh-password', ods: 'RXX04', name: 'Fourth Trust' };
/** The fourth trust's second mailbox, linked to it on both servers: its system may send from either. */
const OTHER_TRUST_SECOND_BOX = { id: 'TRUST05', password: 'other-trust-second-mesh-password' };
/** A council the hospital's notices are not sent to (H-049). */
const OTHER_COUNCIL = { id: 'COUNCIL02', password: 'other-council-mesh-password', ods: 'LA779', name: 'Fourth Council' };
const EPISODE = '311fcae7-32a7-4a8e-a15c-eebae3a246b9';
const ASSESSMENT_HEADER = '5bfa2a2e-923b-440d-82d6-38e24b666be6';

for (const engine of ENGINES) {
  describe(`hospital and council over the built-in MESH (${engine})`, () => {
    const cleanups: Array<() => void> = [];
    let hospital: Peer;
    let council: Peer;
    let hospitalDb: string;
    let councilDb: string;
    const councilEnv = (meshUrl: string) => ({
      CAREBRIDGE_MESH_SHARED_KEY: '', // the council hosts no mailbox: it is a MESH client of the hospital's
      CAREBRIDGE_MESH_URL: meshUrl,
      CAREBRIDGE_MESH_MAILBOX: COUNCIL_BOX.id,
      CAREBRIDGE_MESH_PASSWORD: COUNCIL_BOX.password,
      CAREBRIDGE_MESH_CLIENT_SHARED_KEY: MESH_KEY,
      CAREBRIDGE_MESH_POLL_MS: String(24 * 3600_000), // the test polls (pollExternal), so each step is deterministic
    });

    before(async () => {
      const h = await testDatabase(engine);
      const c = await testDatabase(engine);
      cleanups.push(h.cleanup, c.cleanup);
      hospitalDb = h.database;
      councilDb = c.database;
      // The operator's command links the hospital's mailbox to its organisation (the names the issue fixes).
      const added = await runCli(['mesh', 'mailbox', 'add', HOSPITAL_BOX.id, '--ods', HOSPITAL_ODS, '--password', HOSPITAL_BOX.password, '--db', hospitalDb], { CAREBRIDGE_MESH_SHARED_KEY: MESH_KEY });
      assert.equal(added.code, 0, added.stderr);
      hospital = await startPeer(hospitalDb, { CAREBRIDGE_MESH_SHARED_KEY: MESH_KEY });
      await addMailbox(hospital.server.driver, { mailboxId: COUNCIL_BOX.id, ods: COUNCIL_ODS, password: COUNCIL_BOX.password, polled: true }, MESH_KEY);
      await addMailbox(hospital.server.driver, { mailboxId: TRUST_BOX.id, ods: HOSPITAL_ODS, password: TRUST_BOX.password, polled: true }, MESH_KEY);
      await addMailbox(hospital.server.driver, { mailboxId: OTHER_TRUST.id, ods: OTHER_TRUST.ods, password: OTHER_TRUST.password, polled: true }, MESH_KEY);
      await addMailbox(hospital.server.driver, { mailboxId: OTHER_TRUST_SECOND_BOX.id, ods: OTHER_TRUST.ods, password: OTHER_TRUST_SECOND_BOX.password, polled: true }, MESH_KEY);
      await addMailbox(hospital.server.driver, { mailboxId: OTHER_COUNCIL.id, ods: OTHER_COUNCIL.ods, password: OTHER_COUNCIL.password, polled: true }, MESH_KEY);
      council = await startPeer(councilDb, councilEnv(hospital.url));
      await addMailbox(council.server.driver, { mailboxId: COUNCIL_BOX.id, ods: COUNCIL_ODS }, undefined);
      await addMailbox(council.server.driver, { mailboxId: HOSPITAL_BOX.id, ods: HOSPITAL_ODS }, undefined);
      await addMailbox(council.server.driver, { mailboxId: OTHER_TRUST.id, ods: OTHER_TRUST.ods }, undefined);
      await addMailbox(council.server.driver, { mailboxId: OTHER_TRUST_SECOND_BOX.id, ods: OTHER_TRUST.ods }, undefined);
      await Promise.all([seedOrganisations(hospital), seedOrganisations(council)]);
      // Organisations each side knows, so nothing but the point of a test refuses their messages.
      await council.fhir.put('Organization/other-trust', { resourceType: 'Organization', id: 'other-trust', identifier: [{ system: 'https://fhir.nhs.uk/Id/ods-organization-code', value: OTHER_TRUST.ods }], name: OTHER_TRUST.name });
      await hospital.fhir.put('Organization/other-council', { resourceType: 'Organization', id: 'other-council', identifier: [{ system: 'https://fhir.nhs.uk/Id/ods-organization-code', value: OTHER_COUNCIL.ods }], name: OTHER_COUNCIL.name });
      // The hospital's council works elsewhere, over ADW.
      await setCouncilSettings(hospital.server.driver, { ods: COUNCIL_ODS, assessmentDeadline: '48 working-hours', dischargeDeadline: '24 working-hours', adw: true });
    });
    after(async () => {
      await council?.close();
      await hospital?.close();
      for (const cleanup of cleanups) cleanup();
    });

    /** Waits until a server's inbox has nothing left to process. */
    const settled = (peer: Peer) => waitFor('the inbox to settle', async () => {
      const row = await peer.server.driver.get<{ n: number }>("SELECT COUNT(*) AS n FROM messaging_inbox WHERE status = 'pending'");
      return Number(row?.n) === 0;
    }, 30_000);
    /** What the hospital queued goes out; the council fetches and processes it. */
    async function toCouncil(): Promise<number> {
      await hospital.server.discharge.runWorkers();
      const fetched = await council.server.messaging.pollExternal();
      await settled(council);
      return fetched;
    }
    /** What the council queued goes out through its MESH client; the hospital processes it. */
    async function toHospital(): Promise<void> {
      await council.server.discharge.runWorkers();
      await settled(hospital);
    }
    const triageTask = async (peer: Peer, identifier: string) => {
      const referral = await peer.searchOne(`ServiceRequest?identifier=${identifier}`);
      return { referral, task: referral && await peer.searchOne(`Task?focus=ServiceRequest/${referral.id}&code=triage-referral`) };
    };
    const sentBy = (peer: Peer, identifier: string) => peer.server.driver.all<{ event_code: string; status: string; body: string }>(
      "SELECT event_code, status, body FROM discharge_adw_messages WHERE direction = 'out' AND referral_identifier = ? ORDER BY at_ms", [identifier]);
    /** A trust's MESH inbox (by default the third trust's): each waiting message read and acknowledged, as a MESH client would. */
    async function trustInbox(box: { id: string; password: string } = TRUST_BOX): Promise<string[]> {
      const ids: string[] = (await meshCall(hospital.url, box.id, box.password, 'GET', '/inbox')).json().messages;
      const bodies: string[] = [];
      for (const id of ids) {
        bodies.push((await meshCall(hospital.url, box.id, box.password, 'GET', `/inbox/${id}`)).body.toString('utf8'));
        assert.equal((await meshCall(hospital.url, box.id, box.password, 'PUT', `/inbox/${id}/status/acknowledged`)).status, 200);
      }
      return bodies;
    }
    /** A mailbox the test plays sends ADW XML through the MESH (by default the trust, to the council's mailbox). */
    async function sendAs(box: { id: string; password: string }, xml: string, to = COUNCIL_BOX.id, workflowId = 'ADW_NOTICE'): Promise<string> {
      const sent = await meshCall(hospital.url, box.id, box.password, 'POST', '/outbox', {
        headers: { 'mex-to': to, 'mex-workflowid': workflowId, 'mex-subject': 'ADW', 'content-type': 'application/xml' }, body: xml,
      });
      assert.equal(sent.status, 202, sent.body.toString());
      return sent.json().message_id;
    }
    const trustSends = (xml: string) => sendAs(TRUST_BOX, xml);
    /** The council's referral queue as a social worker there sees it in the portal. */
    let councilWorker: string | undefined;
    async function councilQueue(): Promise<string> {
      if (!councilWorker) {
        await addOrganisation(council.server.driver, { ods: COUNCIL_ODS, name: 'Hebburn Council', kind: 'council' });
        await addUser(council.server.driver, { username: 'sw.hebburn', name: 'Sandy Worker', password: TEST_PASSWORD, memberships: [{ organisation: COUNCIL_ODS, role: 'social-worker' }] });
        councilWorker = await signIn(council, 'sw.hebburn');
      }
      const page = await fetch(`${council.url}/discharge/referrals`, { headers: { cookie: councilWorker } });
      assert.equal(page.status, 200);
      return page.text();
    }

    it('notice → accept → discharge notice → agreement → withdrawal, with both servers restarted on the way', async () => {
      const patient = await seedPatient(hospital, 'mesh-rt');
      await hospital.fhir.put('Encounter/mesh-stay', { resourceType: 'Encounter', id: 'mesh-stay', status: 'in-progress', class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'IMP' }, subject: { reference: `Patient/${patient}` }, period: { start: '2026-05-01T08:00:00Z' }, location: [{ location: { reference: 'Location/collier-ward' } }] });
      // The council's server is down when the hospital refers: the notice waits in the council's MESH mailbox.
      await council.close();
      const { referral } = await createReferral(hospital.server.discharge.context, {
        patient: `Patient/${patient}`, encounter: 'Encounter/mesh-stay', hospitalOds: HOSPITAL_ODS, councilOds: COUNCIL_ODS, ward: 'Location/collier-ward',
        reason: 'Fall at home, lives alone', referrer: { name: 'Leticia Gulliver', phone: '01911223344' },
      });
      const identifier = referral.identifier[0].value;
      await hospital.server.discharge.runWorkers();
      const waiting = (await meshCall(hospital.url, COUNCIL_BOX.id, COUNCIL_BOX.password, 'GET', '/inbox')).json().messages;
      assert.equal(waiting.length, 1, 'the notice waits in the council\'s mailbox');

      council = await startPeer(councilDb, councilEnv(hospital.url)); // its MESH client polls once on starting
      await toCouncil();
      let atCouncil = await triageTask(council, identifier);
      assert.equal(atCouncil.referral.reasonCode[0].text, 'Fall at home, lives alone');
      assert.equal(atCouncil.referral.performer[0].display, 'Hebburn Council');
      assert.equal(triageStateOf(atCouncil.task), 'received');
      assert.equal((await inboxState(council.server.driver, waiting[0]))?.status, 'done');

      // The MESH (the hospital's server) is down when the council accepts: the answer waits at the council.
      await hospital.close();
      await triage(council.server.discharge.context, atCouncil.referral.id, { action: 'accept', note: 'We will assess at home.' });
      await council.server.discharge.runWorkers();
      assert.deepEqual((await sentBy(council, identifier)).map((r) => r.status), ['pending'], 'kept until MESH takes it');
      // Tried again after a wait (backoff), so it holds up no other message meanwhile.
      const wait = await council.server.driver.get<{ next_attempt_ms: number | string | null }>("SELECT next_attempt_ms FROM discharge_adw_messages WHERE direction = 'out' AND referral_identifier = ?", [identifier]);
      assert.ok(Number(wait?.next_attempt_ms) > Date.now(), 'waits before it is tried again');
      hospital = await startPeer(hospitalDb, { CAREBRIDGE_MESH_SHARED_KEY: MESH_KEY }, hospital.port);
      // MESH is back and the wait is over.
      await council.server.driver.run("UPDATE discharge_adw_messages SET next_attempt_ms = NULL WHERE direction = 'out' AND referral_identifier = ?", [identifier]);
      await toHospital();
      let atHospital = await triageTask(hospital, identifier);
      assert.equal(atHospital.referral.id, referral.id, 'the hospital finds its episode by the same identifier');
      assert.equal(triageStateOf(atHospital.task), 'accepted');

      // The ward sets an expected discharge date: a discharge notice goes out; the council agrees.
      const stay = (await hospital.fhir.get('Encounter/mesh-stay')).body;
      await hospital.fhir.put('Encounter/mesh-stay', { ...stay, extension: [{ url: EXPECTED_DISCHARGE_URL, valueDateTime: '2026-05-08' }] });
      await toCouncil();
      atCouncil = await triageTask(council, identifier);
      assert.equal(atCouncil.referral.extension.find((e: any) => e.url === EXPECTED_DISCHARGE_URL).valueDateTime, '2026-05-08');
      await confirmReady(council.server.discharge.context, atCouncil.referral.id);
      await toHospital();
      atHospital = await triageTask(hospital, identifier);
      assert.equal(triageStateOf(atHospital.task), 'ready');

      // MESH hands the council the same assessment notice again (a new MESH message, the same MessageHeader.id).
      const version = (await triageTask(council, identifier)).task.meta.versionId;
      const [notice] = await sentBy(hospital, identifier);
      const copy = await meshCall(hospital.url, HOSPITAL_BOX.id, HOSPITAL_BOX.password, 'POST', '/outbox', {
        headers: { 'mex-to': COUNCIL_BOX.id, 'mex-workflowid': 'ADW_NOTICE' }, body: notice.body,
      });
      assert.equal(copy.status, 202);
      assert.equal(await toCouncil(), 1);
      assert.equal((await inboxState(council.server.driver, copy.json().message_id))?.status, 'done');
      assert.equal((await triageTask(council, identifier)).task.meta.versionId, version, 'the copy changes nothing');
      assert.equal((await sentBy(council, identifier)).length, 2, 'and is not answered twice');

      // The person's plans change: the hospital withdraws; the council's work stops and it accepts the withdrawal.
      await withdrawReferral(hospital.server.discharge.context, referral.id, '11 Own arrangements made by the family');
      await toCouncil();
      assert.equal(triageStateOf((await triageTask(council, identifier)).task), 'withdrawn');
      await toHospital();
      const fromHospital = await sentBy(hospital, identifier);
      assert.deepEqual(fromHospital.map((r) => parseAdwMessage(r.body).eventCode), [ADW_EVENT.assessmentNotice, ADW_EVENT.dischargeNotice, ADW_EVENT.withdrawAll]);
      const withdrawal = parseAdwMessage(fromHospital[2].body);
      assert.deepEqual([withdrawal.reason?.code, withdrawal.reason?.text], ['11', 'Own arrangements made by the family'], 'the reason\'s code, and the words beyond it');
      assert.equal((await triageTask(council, identifier)).task.statusReason.text, '11 Patient has made their own arrangements: Own arrangements made by the family');
      assert.deepEqual(fromHospital.map((r) => r.status), ['accepted', 'accepted', 'accepted'], 'every notice answered, over MESH');
      assert.deepEqual(await listDeadLetters(hospital.server.driver), []);
      assert.deepEqual(await listDeadLetters(council.server.driver), []);
    });

    it('a withdrawal that arrives before its notice: withdrawn at once, answered to the sender\'s mailbox; the late notice opens no work', async () => {
      const ids = episodeIds();
      await trustSends(renamed(EXAMPLES['Withdrawal-Notice'], { ...ids, [ASSESSMENT_HEADER]: crypto.randomUUID() }));
      await toCouncil();
      let { task } = await triageTask(council, ids[EPISODE]);
      assert.equal(triageStateOf(task), 'withdrawn');
      await trustSends(renamed(EXAMPLES['Assessment-Notice'], ids));
      await toCouncil();
      ({ task } = await triageTask(council, ids[EPISODE]));
      assert.equal(triageStateOf(task), 'withdrawn');
      await council.server.discharge.runWorkers();
      const answers = (await trustInbox()).map(parseAdwMessage);
      assert.deepEqual(answers.map((a) => a.eventCode), [ADW_EVENT.withdrawalAccept], 'the withdrawal is accepted; the late notice asks for nothing');
      assert.equal(answers[0].referral?.identifier, ids[EPISODE]);
    });

    it('bad input: a reject response to the sender\'s mailbox and a dead letter with the reason; unreadable XML is dead-lettered; the council keeps working', async () => {
      const ids = episodeIds();
      const badNhs = await trustSends(renamed(EXAMPLES['Assessment-Notice'], ids).replace('value="9413946000"', 'value="9413946001"'));
      const garbled = await trustSends('<Bundle xmlns="http://hl7.org/fhir"><entry>');
      await toCouncil();
      assert.equal((await triageTask(council, ids[EPISODE])).referral, undefined, 'nothing half-written');
      const dead = await listDeadLetters(council.server.driver);
      assert.match(dead.find((d) => d.messageId === badNhs)?.reason ?? '', /NHS number 9413946001 is not valid/);
      // Read on the reader thread, yet the reason names where the XML broke.
      assert.match(dead.find((d) => d.messageId === garbled)?.reason ?? '', /not well-formed XML: .+ \(line \d+, column \d+\)/, 'the unreadable message is kept as a dead letter, with why');
      await council.server.discharge.runWorkers();
      const answers = (await trustInbox()).map(parseAdwMessage);
      assert.deepEqual(answers.map((a) => a.eventCode), [ADW_EVENT.assessmentReject]);
      assert.match(answers[0].reason?.text ?? '', /NHS number 9413946001 is not valid/);

      // The same episode, sent right, is processed.
      const fixed = episodeIds();
      await trustSends(renamed(EXAMPLES['Assessment-Notice'], fixed));
      await toCouncil();
      assert.equal(triageStateOf((await triageTask(council, fixed[EPISODE])).task), 'received');
    });

    it('two trusts that both use one MessageHeader.id: each trust\'s notice opens its referral in the council\'s queue; a copy from the same trust is still a copy (H-048)', async () => {
      const first = episodeIds();
      // The fourth trust's system counts its MessageHeader.ids as the third's does: the same id, another trust, person and episode.
      const second: Record<string, string> = { ...episodeIds(), [ASSESSMENT_HEADER]: first[ASSESSMENT_HEADER] };
      const fromOtherTrust = renamed(EXAMPLES['Assessment-Notice'], second).replace(/RFM8C2/g, OTHER_TRUST.ods).replace(/9413946000/g, '9449306060');
      const sent = [await trustSends(renamed(EXAMPLES['Assessment-Notice'], first)), await sendAs(OTHER_TRUST, fromOtherTrust)];
      await toCouncil();
      const one = await triageTask(council, first[EPISODE]);
      const two = await triageTask(council, second[EPISODE]);
      assert.ok(one.referral, 'the third trust\'s notice opened its referral');
      assert.ok(two.referral, 'the fourth trust\'s notice opened its referral, though its MessageHeader.id is the third trust\'s');
      assert.equal(triageStateOf(two.task), 'received');
      const queue = await councilQueue();
      assert.ok(queue.includes(`/discharge/referrals/${one.referral.id}"`), 'the third trust\'s referral is in the council\'s queue');
      assert.ok(queue.includes(`/discharge/referrals/${two.referral.id}"`), 'and so is the fourth trust\'s');
      const dead = await listDeadLetters(council.server.driver);
      assert.deepEqual(dead.filter((d) => sent.includes(d.messageId)), [], 'neither is a dead letter');

      // The fourth trust's system sends its notice again (a new MESH message): a copy, not applied or answered twice.
      const copy = await sendAs(OTHER_TRUST, fromOtherTrust);
      await toCouncil();
      assert.equal((await inboxState(council.server.driver, copy))?.status, 'done');
      assert.equal((await triageTask(council, second[EPISODE])).task.meta.versionId, two.task.meta.versionId, 'the copy changes nothing');
      assert.equal((await council.fhir.get(`ServiceRequest?identifier=${second[EPISODE]}`)).body.entry.length, 1, 'one referral for the episode');
    });

    it('a trust that sends its notice again from another of its linked mailboxes: a copy, marked done, that opens nothing, files no note and is not answered again (H-048)', async () => {
      const ids = episodeIds();
      const notice = renamed(EXAMPLES['Assessment-Notice'], ids).replace(/RFM8C2/g, OTHER_TRUST.ods).replace(/9413946000/g, '9449306087');
      await sendAs(OTHER_TRUST, notice);
      await toCouncil();
      const { referral } = await triageTask(council, ids[EPISODE]);
      assert.ok(referral, 'the notice opened its referral');
      await triage(council.server.discharge.context, referral.id, { action: 'accept', note: 'We will assess at home.' });
      await council.server.discharge.runWorkers();
      const accepted = await triageTask(council, ids[EPISODE]);
      const notes = async () => ((await council.fhir.get(`Communication?based-on=ServiceRequest/${referral.id}`)).body.entry ?? []).map((e: any) => e.resource);
      const notesBefore = await notes();

      // The trust's system sends the same message (the same MessageHeader.id) again, from its other mailbox.
      const copy = await sendAs(OTHER_TRUST_SECOND_BOX, notice);
      await toCouncil();
      await council.server.discharge.runWorkers();
      assert.equal((await inboxState(council.server.driver, copy))?.status, 'done', 'marked done');
      assert.deepEqual((await listDeadLetters(council.server.driver)).filter((d) => d.messageId === copy), [], 'not a dead letter');
      assert.equal((await council.fhir.get(`ServiceRequest?identifier=${ids[EPISODE]}`)).body.entry.length, 1, 'one referral');
      const after = await triageTask(council, ids[EPISODE]);
      assert.equal(after.referral.meta.versionId, accepted.referral.meta.versionId, 'the referral is unchanged');
      assert.equal(after.task.meta.versionId, accepted.task.meta.versionId, 'and so is its triage Task');
      const notesAfter = await notes();
      assert.deepEqual(notesAfter.map((n: any) => n.id), notesBefore.map((n: any) => n.id), 'no note added');
      assert.ok(!notesAfter.some((n: any) => n.category?.[0]?.text === 'Assessment notice updated'), 'no "new assessment notice" note');
      assert.deepEqual((await sentBy(council, ids[EPISODE])).map((r) => parseAdwMessage(r.body).eventCode), [ADW_EVENT.assessmentAccept], 'one answer');
      const answered = async (box: { id: string; password: string }) => (await trustInbox(box)).map(parseAdwMessage).filter((a) => a.referral?.identifier === ids[EPISODE]);
      assert.deepEqual((await answered(OTHER_TRUST)).map((a) => a.eventCode), [ADW_EVENT.assessmentAccept], 'the trust got the one accept');
      assert.deepEqual(await answered(OTHER_TRUST_SECOND_BOX), [], 'and no second answer at its other mailbox');
    });

    it('as the hospital: an answer from a council the notice was not sent to is dead-lettered with why and changes nothing; the council it was sent to is answered as usual (H-049)', async () => {
      const patient = await seedPatient(hospital, 'mesh-h49', '9449304424');
      const { referral } = await createReferral(hospital.server.discharge.context, { patient: `Patient/${patient}`, hospitalOds: HOSPITAL_ODS, councilOds: COUNCIL_ODS, reason: 'Needs support at home' });
      const identifier = referral.identifier[0].value;
      await toCouncil();
      const [notice] = await sentBy(hospital, identifier);
      const noticeHeader = parseAdwMessage(notice.body).headerId;
      const before = await triageTask(hospital, identifier);
      assert.equal(triageStateOf(before.task), 'received');

      // Another council accepts it (or rejects it), in its own name, answering the notice's MessageHeader.id.
      const answerFrom = (example: string, ods: string) => renamed(EXAMPLES[example], { ...episodeIds(), [EPISODE]: identifier, [ASSESSMENT_HEADER]: noticeHeader }).replace(/V396BB/g, ods);
      const accept = await sendAs(OTHER_COUNCIL, answerFrom('Assessment-Notice-Accept-Response', OTHER_COUNCIL.ods), HOSPITAL_BOX.id, 'ADW_NOTICE_ACK');
      const reject = await sendAs(OTHER_COUNCIL, answerFrom('Assessment-Notice-Reject-Response', OTHER_COUNCIL.ods), HOSPITAL_BOX.id, 'ADW_NOTICE_ACK');
      // Its mailbox answering in the name of the council the notice was sent to.
      const posing = await sendAs(OTHER_COUNCIL, answerFrom('Assessment-Notice-Reject-Response', COUNCIL_ODS), HOSPITAL_BOX.id, 'ADW_NOTICE_ACK');
      await settled(hospital);

      const after = await triageTask(hospital, identifier);
      assert.equal(triageStateOf(after.task), 'received', 'the referral is neither accepted nor rejected');
      assert.equal(after.task.meta.versionId, before.task.meta.versionId, 'its triage Task is unchanged');
      assert.equal(after.referral.meta.versionId, before.referral.meta.versionId, 'and so is the referral');
      assert.equal((await sentBy(hospital, identifier))[0].status, 'sent', 'the notice still waits for its council\'s answer');
      const dead = await listDeadLetters(hospital.server.driver);
      const reasonOf = (messageId: string) => dead.find((d) => d.messageId === messageId)?.reason ?? '';
      assert.match(reasonOf(accept), new RegExp(`assessment notice ${noticeHeader}, which was sent to ${COUNCIL_ODS}, not to ${OTHER_COUNCIL.ods}`));
      assert.match(reasonOf(reject), new RegExp(`which was sent to ${COUNCIL_ODS}, not to ${OTHER_COUNCIL.ods}`));
      assert.match(reasonOf(posing), new RegExp(`mailbox ${OTHER_COUNCIL.id}, which belongs to ${OTHER_COUNCIL.ods}`));
      assert.equal((await meshCall(hospital.url, OTHER_COUNCIL.id, OTHER_COUNCIL.password, 'GET', '/inbox')).json().messages.length, 0, 'ADW has no reject of an answer: nothing is sent back');

      // The council the notice went to accepts it: applied.
      const atCouncil = await triageTask(council, identifier);
      await triage(council.server.discharge.context, atCouncil.referral.id, { action: 'accept', note: 'We will assess at home.' });
      await toHospital();
      assert.equal(triageStateOf((await triageTask(hospital, identifier)).task), 'accepted');
      assert.equal((await sentBy(hospital, identifier))[0].status, 'accepted');
    });

    it('a social worker\'s answer in the council\'s portal reaches the hospital in their name: the hospital\'s note says who answered, and the answer keeps the referrer and the council as the referral\'s parties', async () => {
      const patient = await seedPatient(hospital, 'mesh-answered', generateSyntheticNhsNumber());
      const { referral } = await createReferral(hospital.server.discharge.context, {
        patient: `Patient/${patient}`, hospitalOds: HOSPITAL_ODS, councilOds: COUNCIL_ODS, reason: 'Needs support at home',
        referrer: { name: 'Leticia Gulliver', phone: '01911223344', email: 'leticia.gulliver@nhs.example' },
      });
      const identifier = referral.identifier[0].value;
      await toCouncil();
      await councilQueue(); // signs the council's social worker in
      const atCouncil = await triageTask(council, identifier);
      const path = `${council.url}/discharge/referrals/${atCouncil.referral.id}`;
      const html = await (await fetch(path, { headers: { cookie: councilWorker! } })).text();
      const posted = await fetch(`${path}/triage`, {
        method: 'POST', redirect: 'manual', headers: { cookie: councilWorker!, 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ _csrf: csrfTokenIn(html), version: /name="version" value="([^"]*)"/.exec(html)![1], decision: 'accept', details: 'We will assess at home.' }).toString(),
      });
      assert.equal(posted.status, 303);
      await toHospital();
      assert.equal(triageStateOf((await triageTask(hospital, identifier)).task), 'accepted');

      const [answer] = await sentBy(council, identifier);
      const parsed = parseAdwMessage(answer.body);
      assert.deepEqual(parsed.referrer && [parsed.referrer.name, parsed.referrer.phone, parsed.referrer.email, parsed.referrer.organisationOds], ['Leticia Gulliver', '01911223344', 'leticia.gulliver@nhs.example', HOSPITAL_ODS], 'requested by the hospital\'s referrer');
      assert.equal(parsed.council?.ods, COUNCIL_ODS, 'received by the council');
      assert.deepEqual(parsed.author && [parsed.author.name, parsed.author.organisationOds], ['Sandy Worker', COUNCIL_ODS], 'answered by the worker');
      const note = await hospital.searchOne(`Communication?based-on=ServiceRequest/${referral.id}&category:text=${encodeURIComponent('Assessment notice accept')}`);
      assert.equal(note.sender?.display, 'Sandy Worker', 'the hospital\'s people see who answered');
      assert.equal(note.payload[0].contentString, 'Assessment notice accept: We will assess at home.');
    });
  });
}
