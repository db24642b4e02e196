// The built-in MESH mailbox over real HTTP on both engines: send, list, download (chunked, 206), acknowledge,
// tracking; the NHSMESH checks (wrong password or key, old timestamp, replayed nonce, wrong mailbox); and
// mex-From, which must be the mailbox signed in.
import { describe, it, before, after } from 'node:test';
import { request } from 'node:http';
import { gunzipSync, gzipSync } from 'node:zlib';
import assert from 'node:assert/strict';
import { addMailbox } from '../../src/messaging/index.ts';
import { ENGINES, testDatabase } from '../support/server.ts';
import { stopOwnPostgres } from '../support/postgres.ts';
import { MESH_KEY, meshCall, startServerOn, type RunningServer } from '../support/mesh.ts';
import { meshAuthorisationHeader } from '../../src/messaging/index.ts';

after(stopOwnPostgres);

const SENDER = { id: 'TRUST01', password: 'trust-password-1' };
const POLLED = { id: 'COUNCIL01', password: 'council-password-1' };

for (const engine of ENGINES) {
  describe(`built-in MESH mailbox (${engine})`, () => {
    let s: RunningServer;
    let cleanup: () => void;
    before(async () => {
      const db = await testDatabase(engine);
      cleanup = db.cleanup;
      s = await startServerOn(db.database);
      await addMailbox(s.server.driver, { mailboxId: SENDER.id, ods: 'RX9', password: SENDER.password }, MESH_KEY);
      await addMailbox(s.server.driver, { mailboxId: POLLED.id, ods: 'LA918', password: POLLED.password, polled: true }, MESH_KEY);
    });
    after(async () => {
      await s?.close();
      cleanup?.();
    });
    const asSender = (method: string, path: string, options?: Parameters<typeof meshCall>[5]) => meshCall(s.url, SENDER.id, SENDER.password, method, path, options);
    const asRecipient = (method: string, path: string, options?: Parameters<typeof meshCall>[5]) => meshCall(s.url, POLLED.id, POLLED.password, method, path, options);

    it('sends, lists, downloads, tracks and acknowledges a message', async () => {
      assert.equal((await asSender('GET', '')).status, 200, 'handshake');
      const sent = await asSender('POST', '/outbox', {
        body: '<Bundle>notice</Bundle>',
        headers: { 'content-type': 'application/xml', 'mex-To': POLLED.id, 'mex-WorkflowID': 'TOC_FHIR_DISCHARGE', 'mex-Subject': 'Assessment notice', 'mex-LocalID': 'local-1', 'mex-FileName': 'notice.xml' },
      });
      assert.equal(sent.status, 202, sent.body.toString());
      const messageId = sent.json().message_id;
      assert.match(messageId, /^\d{17}_[0-9A-F]{10}$/);

      assert.deepEqual((await asRecipient('GET', '/inbox')).json().messages, [messageId]);
      const got = await asRecipient('GET', `/inbox/${messageId}`);
      assert.equal(got.status, 200);
      assert.equal(got.body.toString(), '<Bundle>notice</Bundle>');
      assert.equal(got.headers.get('mex-from'), SENDER.id);
      assert.equal(got.headers.get('mex-workflowid'), 'TOC_FHIR_DISCHARGE');
      assert.equal(got.headers.get('mex-subject'), 'Assessment notice');
      assert.equal(got.headers.get('mex-localid'), 'local-1');
      assert.equal(got.headers.get('content-type'), 'application/xml');

      assert.equal((await asSender('GET', `/outbox/tracking?messageID=${messageId}`)).json().status, 'Accepted');
      assert.equal((await asSender('GET', '/outbox/tracking?localID=local-1')).json().message_id, messageId);
      // The sender cannot download the recipient's message.
      assert.equal((await asSender('GET', `/inbox/${messageId}`)).status, 404);

      assert.equal((await asRecipient('PUT', `/inbox/${messageId}/status/acknowledged`)).status, 200);
      assert.deepEqual((await asRecipient('GET', '/inbox')).json().messages, []);
      assert.equal((await asRecipient('GET', `/inbox/${messageId}`)).status, 404);
      assert.equal((await asRecipient('PUT', `/inbox/${messageId}/status/acknowledged`)).status, 200, 'acknowledging again is harmless');
      const tracked = (await asSender('GET', `/outbox/tracking/${messageId}`)).json();
      assert.equal(tracked.status, 'Acknowledged');
      assert.ok(tracked.acknowledged_timestamp);
    });

    it('takes a message in chunks and gives it out in chunks, 206 until the last', async () => {
      const parts = ['first part|', 'second part|', 'third part'];
      const headers = { 'mex-To': POLLED.id, 'mex-WorkflowID': 'TOC_FHIR_DISCHARGE' };
      const first = await asSender('POST', '/outbox', { body: parts[0], headers: { ...headers, 'mex-Chunk-Range': '1:3' } });
      assert.equal(first.status, 202);
      const messageId = first.json().message_id;
      assert.equal((await asSender('POST', `/outbox/${messageId}/2`, { body: parts[1], headers: { 'mex-Chunk-Range': '2:3' } })).status, 202);
      assert.deepEqual((await asRecipient('GET', '/inbox')).json().messages, [], 'not delivered before its last chunk');
      assert.equal((await asSender('GET', `/outbox/tracking/${messageId}`)).json().status, 'Uploading');
      assert.equal((await asSender('POST', `/outbox/${messageId}/2`, { body: parts[1] })).status, 409, 'a chunk twice');
      assert.equal((await asSender('POST', `/outbox/${messageId}/4`, { body: 'x' })).status, 400, 'a chunk beyond the range');
      assert.equal((await asSender('POST', `/outbox/${messageId}/3`, { body: parts[2] })).status, 202);
      assert.deepEqual((await asRecipient('GET', '/inbox')).json().messages, [messageId]);

      const c1 = await asRecipient('GET', `/inbox/${messageId}`);
      assert.equal(c1.status, 206);
      assert.equal(c1.headers.get('mex-chunk-range'), '1:3');
      const c2 = await asRecipient('GET', `/inbox/${messageId}/2`);
      assert.equal(c2.status, 206);
      const c3 = await asRecipient('GET', `/inbox/${messageId}/3`);
      assert.equal(c3.status, 200);
      assert.equal(c3.headers.get('mex-chunk-range'), '3:3');
      assert.equal(Buffer.concat([c1.body, c2.body, c3.body]).toString(), parts.join(''));
      assert.equal((await asRecipient('GET', `/inbox/${messageId}/4`)).status, 404);
      assert.equal((await asRecipient('PUT', `/inbox/${messageId}/status/acknowledged`)).status, 200);
    });

    it('a compressed message (Content-Encoding: gzip) travels as sent, and every chunk says it is gzip', async () => {
      const content = `<notice>${'Mrs Example, discharge to assess. '.repeat(400)}</notice>`;
      const gz = gzipSync(content);
      const half = Math.floor(gz.length / 2);
      const headers = { 'mex-To': POLLED.id, 'mex-WorkflowID': 'TOC_FHIR_DISCHARGE', 'content-encoding': 'gzip' };
      const first = await asSender('POST', '/outbox', { body: gz.subarray(0, half), headers: { ...headers, 'mex-Chunk-Range': '1:2' } });
      assert.equal(first.status, 202, first.body.toString());
      const messageId = first.json().message_id;
      assert.equal((await asSender('POST', `/outbox/${messageId}/2`, { body: gz.subarray(half), headers: { 'mex-Chunk-Range': '2:2', 'content-encoding': 'gzip' } })).status, 202);

      // Read raw, as a MESH client does: fetch would try to inflate each chunk on its own.
      const raw = (path: string) => new Promise<{ headers: Record<string, unknown>; body: Buffer }>((resolve, reject) => {
        request(`${s.url}/messageexchange/${POLLED.id}${path}`, { headers: { authorization: meshAuthorisationHeader(POLLED.id, POLLED.password, MESH_KEY) } }, (res) => {
          const parts: Buffer[] = [];
          res.on('data', (p: Buffer) => parts.push(p)).on('end', () => resolve({ headers: res.headers, body: Buffer.concat(parts) })).on('error', reject);
        }).on('error', reject).end();
      });
      const chunks = [await raw(`/inbox/${messageId}`), await raw(`/inbox/${messageId}/2`)];
      for (const c of chunks) assert.deepEqual([c.headers['content-encoding'], c.headers['mex-content-compressed']], ['gzip', 'Y']);
      assert.deepEqual(Buffer.concat(chunks.map((c) => c.body)), gz, 'stored as sent');
      assert.equal(gunzipSync(Buffer.concat(chunks.map((c) => c.body))).toString(), content);
      assert.equal((await asRecipient('PUT', `/inbox/${messageId}/status/acknowledged`)).status, 200);

      const br = await asSender('POST', '/outbox', { body: 'x', headers: { 'mex-To': POLLED.id, 'mex-WorkflowID': 'TOC_FHIR_DISCHARGE', 'content-encoding': 'br' } });
      assert.equal(br.status, 415);
      assert.match(br.json().errorDescription, /Content-Encoding 'br' is not one MESH takes/);
      assert.deepEqual((await asRecipient('GET', '/inbox')).json().messages, [], 'nothing stored');
    });

    it('refuses a wrong password or key, an old timestamp, a replayed nonce and another mailbox, with MESH-style errors', async () => {
      const wrongPassword = await meshCall(s.url, SENDER.id, 'not-the-password', 'GET', '/inbox');
      assert.equal(wrongPassword.status, 403);
      assert.match(wrongPassword.json().errorDescription, /refused for mailbox TRUST01/);
      assert.equal((await meshCall(s.url, SENDER.id, SENDER.password, 'GET', '/inbox', { key: 'another-key' })).status, 403);

      const old = await asSender('GET', '/inbox', { at: Date.now() - 60 * 60_000 });
      assert.equal(old.status, 403);
      assert.match(old.json().errorDescription, /more than 5 minutes from this server's clock/);
      assert.equal((await asSender('GET', '/inbox', { at: Date.now() + 60 * 60_000 })).status, 403, 'from the future');

      const header = meshAuthorisationHeader(SENDER.id, SENDER.password, MESH_KEY);
      assert.equal((await asSender('GET', '/inbox', { authorization: header })).status, 200);
      const replayed = await asSender('GET', '/inbox', { authorization: header });
      assert.equal(replayed.status, 403);
      assert.match(replayed.json().errorDescription, /used before/);

      const none = await asSender('GET', '/inbox', { authorization: '' });
      assert.equal(none.status, 401);
      assert.equal(none.json().detail[0].code, 'EPL-101');
      // A valid header for one mailbox does not open another.
      assert.equal((await meshCall(s.url, POLLED.id, POLLED.password, 'GET', '/inbox', { authorization: meshAuthorisationHeader(SENDER.id, SENDER.password, MESH_KEY) })).status, 403);
      // An unknown mailbox answers as a wrong password does.
      assert.equal((await meshCall(s.url, 'NOSUCH01', 'whatever-pw', 'GET', '/inbox')).status, 403);
    });

    it('refuses a message whose mex-From names another mailbox than the one signed in (MESH error 07), sending nothing', async () => {
      const headers = { 'mex-To': POLLED.id, 'mex-WorkflowID': 'TOC_FHIR_DISCHARGE' };
      const spoofed = await asSender('POST', '/outbox', { body: '<Bundle>notice</Bundle>', headers: { ...headers, 'mex-From': POLLED.id } });
      assert.equal(spoofed.status, 417, spoofed.body.toString());
      assert.equal(spoofed.json().errorCode, '07');
      assert.match(spoofed.json().errorDescription, /mex-From is COUNCIL01, but the request signed in as mailbox TRUST01/);
      assert.deepEqual((await asRecipient('GET', '/inbox')).json().messages, [], 'nothing sent, as either mailbox');

      const first = await asSender('POST', '/outbox', { body: 'part 1|', headers: { ...headers, 'mex-From': 'trust01', 'mex-Chunk-Range': '1:2' } });
      assert.equal(first.status, 202, 'its own mailbox, in any case');
      const messageId = first.json().message_id;
      const chunk = await asSender('POST', `/outbox/${messageId}/2`, { body: 'part 2', headers: { 'mex-From': 'SOMEONE01', 'mex-Chunk-Range': '2:2' } });
      assert.equal(chunk.status, 417);
      assert.equal(chunk.json().errorCode, '07');
      assert.deepEqual((await asRecipient('GET', '/inbox')).json().messages, [], 'the message waits for a chunk from its sender');
      assert.equal((await asSender('POST', `/outbox/${messageId}/2`, { body: 'part 2', headers: { 'mex-From': SENDER.id } })).status, 202);
      assert.deepEqual((await asRecipient('GET', '/inbox')).json().messages, [messageId]);
      assert.equal((await asRecipient('PUT', `/inbox/${messageId}/status/acknowledged`)).status, 200);
    });

    it('refuses a send to an unknown mailbox or without a workflow id, storing nothing', async () => {
      const unknown = await asSender('POST', '/outbox', { body: 'x', headers: { 'mex-To': 'NOSUCH01', 'mex-WorkflowID': 'W' } });
      assert.equal(unknown.status, 417);
      assert.match(unknown.json().errorDescription, /NOSUCH01 is not hosted/);
      assert.equal((await asSender('POST', '/outbox', { body: 'x', headers: { 'mex-To': POLLED.id } })).status, 417);
      assert.equal((await asSender('POST', '/outbox', { body: 'x', headers: { 'mex-To': POLLED.id, 'mex-WorkflowID': 'W', 'mex-Chunk-Range': '2:3' } })).status, 400);
      assert.deepEqual((await asRecipient('GET', '/inbox')).json().messages, []);
    });
  });
}
