// MESH tells the sender when a message was not delivered (a REPORT: mex-MessageType REPORT, mex-LinkedMsgID
// naming the message, a status code, no content). A red bag pack sent over MESH to a hospital on another
// system that MESH reports undelivered is marked "Not received by the hospital" with MESH's reason, and the
// care home's red bag page says so plainly, with what to do and a way to send it again; the report is
// acknowledged once that is recorded. A report about a message this server never sent stays a dead letter.
// Hazard H-042.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { addMailbox, inboxState, listDeadLetters } from '../../src/messaging/index.ts';
import { ENGINES } from '../support/server.ts';
import { stopOwnPostgres } from '../support/postgres.ts';
import { PERSON_PASSWORD } from '../support/people.ts';
import { waitFor } from '../support/mesh.ts';
import { startFakeMesh, type FakeMesh, type FakeMeshMessage } from '../support/fakeMesh.ts';
import { csrfTokenIn, textOf } from '../portal/portalServer.ts';
import { STEP_EVENT, redBagMessage } from '../../src/redbag/index.ts';
import { COMPLETE, params, startRedBagServer, type RedBagServer } from './support.ts';

after(stopOwnPostgres);

const HOME_BOX = 'VM101MESH';
const WARD_BOX = 'RX9MESH';
const WORKFLOW = 'CAREBRIDGE_RED_BAG';
const NOT_COLLECTED = 'Message not collected by recipient after 5 days';
const stepCode = (task: any) => task.businessStatus?.coding?.[0]?.code;

function report(id: string, linked: string): FakeMeshMessage {
  return {
    id, workflowId: WORKFLOW, messageType: 'REPORT',
    headers: { 'mex-linkedmsgid': linked, 'mex-statuscode': '14', 'mex-statusevent': 'TRANSFER', 'mex-statusdescription': NOT_COLLECTED, 'mex-statussuccess': 'ERROR' },
  };
}

for (const engine of ENGINES) {
  describe(`a red bag MESH reports undelivered (${engine})`, () => {
    let mesh: FakeMesh;
    let home: RedBagServer;
    let cookie: string;
    let taskId = '';

    before(async () => {
      // The home's server reaches MESH through its client (the national MESH, faked); the hospital is on
      // another system, reached through its own mailbox there.
      mesh = await startFakeMesh(HOME_BOX);
      home = await startRedBagServer(engine, undefined, {
        CAREBRIDGE_MESH_URL: mesh.url, CAREBRIDGE_MESH_MAILBOX: HOME_BOX, CAREBRIDGE_MESH_PASSWORD: 'pw',
        CAREBRIDGE_MESH_CLIENT_SHARED_KEY: 'key', CAREBRIDGE_MESH_POLL_MS: String(24 * 3600_000), CAREBRIDGE_MESSAGING_RETRY_MS: '200',
      });
      await addMailbox(home.t.server.driver, { mailboxId: HOME_BOX, ods: 'VM101' }, undefined);
      await addMailbox(home.t.server.driver, { mailboxId: WARD_BOX, ods: 'RX9' }, undefined);
      // The carer signs in to the portal (the account startRedBagServer made).
      const form = await fetch(`${home.t.url}/sign-in`);
      const formCookie = form.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ');
      const res = await fetch(`${home.t.url}/sign-in`, {
        method: 'POST', redirect: 'manual', headers: { cookie: formCookie, 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ _csrf: csrfTokenIn(await form.text()), username: 'carer', password: PERSON_PASSWORD }).toString(),
      });
      const id = /carebridge_session=([^;]+)/.exec(res.headers.getSetCookie().join('\n'))?.[1];
      assert.ok(id, 'the carer signed in');
      cookie = `carebridge_session=${id}`;
    });
    after(async () => {
      await home?.close();
      await mesh?.close();
    });

    const page = async (path: string) => {
      const res = await fetch(home.t.url + path, { headers: { cookie }, redirect: 'manual' });
      return { status: res.status, html: await res.text() };
    };
    const post = async (path: string, form: [string, string][]) => {
      const res = await fetch(home.t.url + path, { method: 'POST', headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(form).toString(), redirect: 'manual' });
      return { status: res.status, location: res.headers.get('location'), html: await res.text() };
    };
    const settled = (id: string) => waitFor(`${id} to be settled`, async () => {
      const state = await inboxState(home.t.server.driver, id);
      return state && state.status !== 'pending' && state;
    });
    const task = async (id: string) => (await home.t.fhir.get(`Task/${id}`)).body;

    it('marks the pack not received, tells the care home on its red bag page, and lets it send the pack again', async () => {
      const sent = await home.as.carer.post(`Patient/${home.resident}/$red-bag-send`, params(COMPLETE));
      assert.equal(sent.status, 201, JSON.stringify(sent.body));
      taskId = sent.body.id;
      const identifier: string = sent.body.identifier[0].value;
      const [first] = mesh.sent;
      assert.ok(first, 'the pack went to MESH');
      assert.equal(first.headers['mex-to'], WARD_BOX);
      assert.match(textOf((await page(`/red-bag/${taskId}`)).html), /Sent to hospital/);

      // Five days later the hospital has not collected it: MESH tells the home, and about a message it never sent.
      mesh.inbox.push(report('REPORT_1', first.messageId), report('REPORT_2', 'SOMEONE_ELSES_MESSAGE'));
      await home.t.server.messaging.pollExternal();

      const settledReport = await settled('REPORT_1');
      assert.equal(settledReport.status, 'done', `the report is settled, not a dead letter: ${settledReport.lastError}`);
      const failed = await task(taskId);
      assert.equal(stepCode(failed), 'not-delivered', 'the pack no longer reads as sent');
      assert.equal(failed.status, 'requested', 'still open: listed for the home, and still the hospital\'s to take');
      assert.match(failed.note.at(-1).text, new RegExp(`Not received by .*MESH reported that it was not delivered \\(14: ${NOT_COLLECTED}\\)`));

      const unknown = await settled('REPORT_2');
      assert.equal(unknown.status, 'dead', 'a report of a message never sent here is a dead letter, as before');
      assert.match(unknown.lastError ?? '', /MESH reports that message SOMEONE_ELSES_MESSAGE of workflow CAREBRIDGE_RED_BAG was not delivered .*, but no message sent from here has that MESH id/);
      assert.deepEqual((await listDeadLetters(home.t.server.driver)).map((d) => d.messageId), ['REPORT_2']);
      assert.equal(mesh.inbox.length, 0, 'both reports acknowledged to MESH');

      // What the care home sees.
      const list = textOf((await page('/red-bag')).html);
      assert.match(list, /Not received by the hospital/, 'the list of red bags says so');
      const shown = await page(`/red-bag/${taskId}`);
      assert.equal(shown.status, 200);
      const text = textOf(shown.html);
      assert.match(text, /Not received by the hospital/);
      assert.match(text, /did not receive this red bag/);
      assert.match(text, new RegExp(NOT_COLLECTED), 'with why');
      assert.match(text, /[Tt]elephone the ward/, 'and what to do');
      assert.doesNotMatch(text, /The hospital can see it now/);
      assert.match(text, /Send the red bag again/);

      // MESH delivers the same report again: nothing more changes.
      mesh.inbox.push(report('REPORT_1', first.messageId));
      await home.t.server.messaging.pollExternal();
      assert.equal((await task(taskId)).meta.versionId, failed.meta.versionId);

      // The carer sends it again from the page: the same pack goes to MESH once more and reads as sent.
      const again = await post(`/red-bag/${taskId}`, [['_csrf', csrfTokenIn(shown.html)], ['step', 'sent'], ['version', failed.meta.versionId]]);
      assert.equal(again.status, 303, textOf(again.html).slice(0, 500));
      assert.equal(mesh.sent.length, 2, 'sent to MESH again');
      assert.equal(mesh.sent[1]!.headers['mex-to'], WARD_BOX);
      assert.equal(JSON.parse(mesh.sent[1]!.body).entry[1].resource.identifier.value, identifier, 'the same pack, which the hospital files once');
      const resent = await task(taskId);
      assert.equal(stepCode(resent), 'sent');
      assert.match(resent.note.at(-1).text, /Sent again to .*by Test carer/);
      const after = textOf((await page(`/red-bag/${taskId}`)).html);
      assert.doesNotMatch(after, /did not receive this red bag/);

      // A late report about the first copy, superseded by the second, changes nothing.
      mesh.inbox.push(report('REPORT_3', first.messageId));
      await home.t.server.messaging.pollExternal();
      assert.equal((await settled('REPORT_3')).status, 'done');
      assert.equal(stepCode(await task(taskId)), 'sent');

      // The second copy is not collected either: not received again.
      mesh.inbox.push(report('REPORT_4', mesh.sent[1]!.messageId));
      await home.t.server.messaging.pollExternal();
      assert.equal((await settled('REPORT_4')).status, 'done');
      assert.equal(stepCode(await task(taskId)), 'not-delivered');
    });

    it('believes a hospital that acknowledges it after all; a step MESH reports undelivered is a dead letter naming the step', async () => {
      // A copy reached the ward after all: its acknowledgement arrives over MESH and is applied.
      const atHospital = { ...(await task(taskId)), businessStatus: { coding: [{ system: 'https://carebridge.example/CodeSystem/red-bag-status', code: 'received' }] } };
      mesh.inbox.push({ id: 'ACK_1', workflowId: WORKFLOW, headers: { 'mex-from': WARD_BOX }, body: JSON.stringify(redBagMessage(STEP_EVENT, { ods: 'RX9' }, { ods: 'VM101' }, atHospital)) });
      await home.t.server.messaging.pollExternal();
      const acked = await settled('ACK_1');
      assert.equal(acked.status, 'done', acked.lastError);
      const received = await task(taskId);
      assert.equal(stepCode(received), 'received');
      assert.doesNotMatch(textOf((await page(`/red-bag/${taskId}`)).html), /did not receive this red bag/);

      // The home records the resident's return; that step is relayed to the ward, and MESH reports it undelivered.
      const returned = await home.as.carer.post(`Task/${taskId}/$red-bag-step`, { resourceType: 'Parameters', parameter: [{ name: 'step', valueCode: 'returned' }] }, { 'if-match': `W/"${received.meta.versionId}"` });
      assert.equal(returned.status, 200, JSON.stringify(returned.body));
      const relayed = mesh.sent.at(-1)!;
      assert.equal(relayed.headers['mex-to'], WARD_BOX);
      mesh.inbox.push(report('REPORT_5', relayed.messageId));
      await home.t.server.messaging.pollExternal();
      const dead = await settled('REPORT_5');
      assert.equal(dead.status, 'dead');
      assert.match(dead.lastError ?? '', new RegExp(`Task/${taskId}\\): the step "Returned to the care home" sent to mailbox ${WARD_BOX} .* did not arrive: MESH reported that it was not delivered \\(14: ${NOT_COLLECTED}\\)\\. .*telephone them`));
      assert.equal(stepCode(await task(taskId)), 'returned', 'the home\'s own step stands');
    });
  });
}
