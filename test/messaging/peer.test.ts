// Two CareBridge servers on the same engine: a "hospital" whose built-in mailbox hosts the council's
// mailbox, and a "council" whose MESH client polls it (a real peer over real HTTP). A notice goes from the
// hospital to the council's handler; the council's response goes back through its client, in chunks, to
// the hospital's handler. A message MESH delivers twice is processed once.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';
import { addMailbox, inboxState, listDeadLetters, type InboundMessage } from '../../src/messaging/index.ts';
import { ENGINES, testDatabase } from '../support/server.ts';
import { stopOwnPostgres } from '../support/postgres.ts';
import { MESH_KEY, meshCall, startServerOn, waitFor, type RunningServer } from '../support/mesh.ts';

after(stopOwnPostgres);

const HOSPITAL = 'RX9MESH1';
const COUNCIL = { id: 'LA918MESH', password: 'council-mesh-password' };

for (const engine of ENGINES) {
  describe(`two CareBridge servers over the built-in MESH (${engine})`, () => {
    const cleanups: Array<() => void> = [];
    let hospital: RunningServer;
    let council: RunningServer;
    const atHospital: InboundMessage[] = [];
    const atCouncil: InboundMessage[] = [];

    before(async () => {
      const h = await testDatabase(engine);
      const c = await testDatabase(engine);
      cleanups.push(h.cleanup, c.cleanup);
      hospital = await startServerOn(h.database, {}, (server) => server.messaging.onInbound(['ADW_RESPONSE'], async (msg) => void atHospital.push(msg)));
      await addMailbox(hospital.server.driver, { mailboxId: HOSPITAL, ods: 'RX9', password: 'hospital-password' }, MESH_KEY);
      await addMailbox(hospital.server.driver, { mailboxId: COUNCIL.id, ods: 'LA918', password: COUNCIL.password, polled: true }, MESH_KEY);

      council = await startServerOn(c.database, {
        CAREBRIDGE_MESH_SHARED_KEY: '', // the council hosts no mailbox of its own
        CAREBRIDGE_MESH_URL: hospital.url,
        CAREBRIDGE_MESH_MAILBOX: COUNCIL.id,
        CAREBRIDGE_MESH_PASSWORD: COUNCIL.password,
        CAREBRIDGE_MESH_CLIENT_SHARED_KEY: MESH_KEY,
        CAREBRIDGE_MESH_WORKFLOW_IDS: 'ADW_NOTICE',
        CAREBRIDGE_MESH_POLL_MS: '100',
        CAREBRIDGE_MESH_CHUNK_BYTES: '1024',
      }, (server) => server.messaging.onInbound(['ADW_NOTICE'], async (msg) => {
        atCouncil.push(msg);
        // The council answers the sender's mailbox, with a response big enough to travel in chunks.
        await server.messaging.send({ from: msg.to, to: msg.from, workflowId: 'ADW_RESPONSE', localId: `re-${msg.messageId}`, contentType: 'application/xml', body: Buffer.from(`<accept of="${msg.messageId}">${'x'.repeat(5000)}</accept>`) });
      }));
      // The council knows its own mailbox and the hospital's, which live on the other MESH.
      await addMailbox(council.server.driver, { mailboxId: COUNCIL.id, ods: 'LA918' }, undefined);
      await addMailbox(council.server.driver, { mailboxId: HOSPITAL, ods: 'RX9' }, undefined);
    });
    after(async () => {
      await council?.close();
      await hospital?.close();
      for (const cleanup of cleanups) cleanup();
    });

    it('a notice reaches the council through its MESH client, and the response comes back to the hospital', async () => {
      const { messageId } = await hospital.server.messaging.send({ from: HOSPITAL, to: COUNCIL.id, workflowId: 'ADW_NOTICE', subject: 'Assessment notice', body: Buffer.from('<notice/>') });
      const notice = await waitFor('the council handler', () => atCouncil.find((m) => m.messageId === messageId));
      assert.equal(notice.from, HOSPITAL);
      assert.equal(notice.mailbox, COUNCIL.id);
      assert.equal(notice.subject, 'Assessment notice');
      assert.equal(notice.body.toString(), '<notice/>');
      assert.equal(await council.server.messaging.organisationForMailbox(notice.mailbox), 'LA918');
      assert.equal(await council.server.messaging.mailboxForOrganisation('RX9'), HOSPITAL);

      const response = await waitFor('the hospital handler', () => atHospital.find((m) => m.localId === `re-${messageId}`));
      assert.equal(response.from, COUNCIL.id);
      assert.equal(response.to, HOSPITAL);
      assert.equal(response.contentType, 'application/xml');
      assert.equal(response.body.toString(), `<accept of="${messageId}">${'x'.repeat(5000)}</accept>`, 'reassembled from its chunks');

      // Acknowledged on the hospital's mailbox only after the council stored it.
      const tracked = await meshCall(hospital.url, HOSPITAL, 'hospital-password', 'GET', `/outbox/tracking?messageID=${messageId}`);
      assert.equal(tracked.json().status, 'Acknowledged');
      const waiting = await meshCall(hospital.url, COUNCIL.id, COUNCIL.password, 'GET', '/inbox');
      assert.deepEqual(waiting.json().messages, []);
      // Marked done once its handler has returned, which may be after the handler's answer reached the hospital.
      await waitFor('the notice marked done', async () => (await inboxState(council.server.driver, messageId))?.status === 'done');
    });

    it('the council\'s MESH client inflates a compressed message that came in chunks', async () => {
      const content = `<notice compressed="yes">${'y'.repeat(8000)}</notice>`;
      const gz = gzipSync(content);
      const half = Math.floor(gz.length / 2);
      const first = await meshCall(hospital.url, HOSPITAL, 'hospital-password', 'POST', '/outbox', { body: gz.subarray(0, half), headers: { 'mex-To': COUNCIL.id, 'mex-WorkflowID': 'ADW_NOTICE', 'mex-Chunk-Range': '1:2', 'content-encoding': 'gzip' } });
      assert.equal(first.status, 202, first.body.toString());
      const messageId = first.json().message_id as string;
      assert.equal((await meshCall(hospital.url, HOSPITAL, 'hospital-password', 'POST', `/outbox/${messageId}/2`, { body: gz.subarray(half), headers: { 'mex-Chunk-Range': '2:2', 'content-encoding': 'gzip' } })).status, 202);
      const notice = await waitFor('the council handler', () => atCouncil.find((m) => m.messageId === messageId));
      assert.equal(notice.body.toString(), content);
    });

    it('a message that says gzip and is not is kept as received among the council\'s dead letters, and acknowledged', async () => {
      const content = Buffer.from('<notice>sent plain, labelled gzip</notice>');
      // The hospital's mailbox holds a message for a polled mailbox as sent: only its recipient can find out.
      const sent = await meshCall(hospital.url, HOSPITAL, 'hospital-password', 'POST', '/outbox', { body: content, headers: { 'mex-To': COUNCIL.id, 'mex-WorkflowID': 'ADW_NOTICE', 'content-encoding': 'gzip' } });
      assert.equal(sent.status, 202, sent.body.toString());
      const messageId = sent.json().message_id as string;
      await council.server.messaging.pollExternal();
      const state = await inboxState(council.server.driver, messageId);
      assert.equal(state?.status, 'dead');
      assert.match(state?.lastError ?? '', /Content-Encoding: gzip but could not be inflated/);
      const [dead] = (await listDeadLetters(council.server.driver)).filter((d) => d.messageId === messageId);
      assert.equal(dead?.from, HOSPITAL);
      assert.equal(dead?.size, content.length, 'the bytes as received');
      assert.equal(atCouncil.some((m) => m.messageId === messageId), false, 'never handed to the workflow');
      // Acknowledged: not downloaded and refused again on every poll.
      const tracked = await meshCall(hospital.url, HOSPITAL, 'hospital-password', 'GET', `/outbox/tracking?messageID=${messageId}`);
      assert.equal(tracked.json().status, 'Acknowledged');
    });

    it('a message MESH delivers twice is stored and processed once', async () => {
      const { messageId } = await hospital.server.messaging.send({ from: HOSPITAL, to: COUNCIL.id, workflowId: 'ADW_NOTICE', body: Buffer.from('<notice n="2"/>') });
      await waitFor('processed', async () => (await inboxState(council.server.driver, messageId))?.status === 'done');
      // MESH is at-least-once: the same message appears in the mailbox again (as after a lost acknowledgement).
      await hospital.server.driver.transaction(async (tx) => {
        await tx.run("UPDATE mesh_messages SET status = 'accepted', acknowledged_ms = NULL WHERE message_id = ?", [messageId]);
        await tx.run('INSERT INTO mesh_chunks (message_id, chunk_no, body) VALUES (?, 1, ?)', [messageId, Buffer.from('<notice n="2"/>') as unknown as string]);
      });
      await waitFor('downloaded and acknowledged again', async () => (await meshCall(hospital.url, COUNCIL.id, COUNCIL.password, 'GET', '/inbox')).json().messages.length === 0);
      await council.server.messaging.pollExternal();
      assert.equal(atCouncil.filter((m) => m.messageId === messageId).length, 1);
      assert.equal(atHospital.filter((m) => m.localId === `re-${messageId}`).length, 1, 'one response, not two');
    });

    it('leaves messages for other workflows in the external mailbox, and refuses to send where there is no route', async () => {
      const { messageId } = await hospital.server.messaging.send({ from: HOSPITAL, to: COUNCIL.id, workflowId: 'SOMETHING_ELSE', body: Buffer.from('not for CareBridge') });
      await council.server.messaging.pollExternal();
      assert.deepEqual((await meshCall(hospital.url, COUNCIL.id, COUNCIL.password, 'GET', '/inbox')).json().messages, [messageId]);
      assert.equal(await inboxState(council.server.driver, messageId), undefined);
      await assert.rejects(hospital.server.messaging.send({ from: HOSPITAL, to: 'NOWHERE01', workflowId: 'W', body: Buffer.from('x') }), /No route to MESH mailbox NOWHERE01/);
    });
  });
}
