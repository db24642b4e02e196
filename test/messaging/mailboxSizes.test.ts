// The sizes the built-in MESH mailbox takes are MESH's, not the server's limit for other bodies: a request
// (a message, or a chunk of one) up to 100 MB, refused beyond that before its body is read; a chunked
// message up to 20 GB for a client to download, or 100 MB when processed here (it is joined and kept
// whole). A message that grows past its limit is refused at the chunk that takes it over, and discarded.
import { describe, it, before, after } from 'node:test';
import { request } from 'node:http';
import assert from 'node:assert/strict';
import { addMailbox, meshAuthorisationHeader } from '../../src/messaging/index.ts';
import { MESH_SIZE_LIMITS, addChunk, findMessage, startUpload } from '../../src/messaging/mailboxStore.ts';
import { ENGINES, testDatabase } from '../support/server.ts';
import { stopOwnPostgres } from '../support/postgres.ts';
import { MESH_KEY, meshCall, startServerOn, type RunningServer } from '../support/mesh.ts';

after(stopOwnPostgres);

const SENDER = { id: 'TRUST01', password: 'trust-password-1' };
const POLLED = { id: 'COUNCIL01', password: 'council-password-1' };
const HERE = 'COUNCIL02';
const MB = 1024 * 1024;

/** Sends only the headers of a POST declaring `length` bytes, and the answer that comes before any body. */
function declareOnly(url: string, path: string, length: number, headers: Record<string, string>): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}${path}`, { method: 'POST', headers: { ...headers, 'content-type': 'application/octet-stream', 'content-length': String(length) } }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (p: Buffer) => parts.push(p)).on('end', () => {
        req.destroy();
        resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(parts).toString('utf8')) });
      });
    });
    req.on('error', reject);
    req.flushHeaders();
  });
}

for (const engine of ENGINES) {
  describe(`built-in MESH mailbox: the sizes MESH takes (${engine})`, () => {
    let s: RunningServer;
    let cleanup: () => void;
    before(async () => {
      const db = await testDatabase(engine);
      cleanup = db.cleanup;
      // Other bodies are held to 1 MB here; the mailbox's own limits are MESH's.
      s = await startServerOn(db.database, { CAREBRIDGE_BODY_LIMIT_MB: '1' });
      await addMailbox(s.server.driver, { mailboxId: SENDER.id, ods: 'RX9', password: SENDER.password, polled: true }, MESH_KEY);
      await addMailbox(s.server.driver, { mailboxId: POLLED.id, ods: 'LA918', password: POLLED.password, polled: true }, MESH_KEY);
      await addMailbox(s.server.driver, { mailboxId: HERE, ods: 'LA919', password: 'council-password-2' }, MESH_KEY);
    });
    after(async () => {
      await s?.close();
      cleanup?.();
    });
    const asSender = (method: string, path: string, options?: Parameters<typeof meshCall>[5]) => meshCall(s.url, SENDER.id, SENDER.password, method, path, options);
    const asRecipient = (method: string, path: string, options?: Parameters<typeof meshCall>[5]) => meshCall(s.url, POLLED.id, POLLED.password, method, path, options);

    it('takes chunks larger than the server\'s limit for other bodies, as MESH does, and gives them out intact', async () => {
      const parts = [Buffer.alloc(2 * MB, 'a'), Buffer.alloc(3 * MB / 2, 'b')];
      const first = await asSender('POST', '/outbox', { body: parts[0], headers: { 'mex-To': POLLED.id, 'mex-WorkflowID': 'TOC_FHIR_DISCHARGE', 'mex-Chunk-Range': '1:2' } });
      assert.equal(first.status, 202, first.body.toString());
      const messageId = first.json().message_id;
      assert.equal((await asSender('POST', `/outbox/${messageId}/2`, { body: parts[1] })).status, 202);
      const got = [await asRecipient('GET', `/inbox/${messageId}`), await asRecipient('GET', `/inbox/${messageId}/2`)];
      assert.deepEqual(got.map((g) => g.status), [206, 200]);
      assert.ok(Buffer.concat(got.map((g) => g.body)).equals(Buffer.concat(parts)));
      assert.equal((await asRecipient('PUT', `/inbox/${messageId}/status/acknowledged`)).status, 200);
    });

    it('refuses a request declared larger than MESH takes (100 MB) before reading it, with a MESH-style error', async () => {
      const headers = { authorization: meshAuthorisationHeader(SENDER.id, SENDER.password, MESH_KEY), 'mex-To': POLLED.id, 'mex-WorkflowID': 'TOC_FHIR_DISCHARGE' };
      const refused = await declareOnly(s.url, `/messageexchange/${SENDER.id}/outbox`, MESH_SIZE_LIMITS.chunkBytes + 1, headers);
      assert.equal(refused.status, 413);
      assert.equal(refused.body.errorCode, 'EPL-156');
      assert.match(refused.body.errorDescription, /larger than the 100 MB MESH takes in one; send the message in smaller chunks/);
      assert.deepEqual((await asRecipient('GET', '/inbox')).json().messages, [], 'nothing stored');
    });

    it('refuses a message that grows past what its recipient takes at the chunk that takes it over, and discards it', async () => {
      const { driver } = s.server;
      // MESH's figures in small, so the test moves kilobytes, not gigabytes.
      const limits = { chunkBytes: 1000, messageBytes: 1500, processedHereBytes: 1000 };
      const headers = { sender: SENDER.id, workflowId: 'TOC_FHIR_DISCHARGE' };
      const chunk = Buffer.alloc(600, 'x');

      const toHere = await startUpload(driver, { ...headers, recipient: HERE }, 2, chunk, Date.now(), limits);
      await assert.rejects(addChunk(driver, SENDER.id, toHere.messageId, 2, chunk, Date.now(), limits), (err: Error & { status: number }) => {
        assert.equal(err.status, 413);
        assert.match(err.message, new RegExp(`Message ${toHere.messageId} is more than the 1000 bytes a message to mailbox ${HERE} may be, with chunk 2 of 2; the message was discarded with the chunks sent before`));
        return true;
      });
      assert.equal(await findMessage(driver, toHere.messageId), undefined, 'discarded');
      assert.equal(Number((await driver.get<{ n: number }>('SELECT COUNT(*) AS n FROM mesh_chunks WHERE message_id = ?', [toHere.messageId]))?.n), 0, 'its chunks too');

      // A client's mailbox takes more than one processed here.
      const toClient = await startUpload(driver, { ...headers, recipient: POLLED.id }, 3, chunk, Date.now(), limits);
      await addChunk(driver, SENDER.id, toClient.messageId, 2, chunk, Date.now(), limits);
      await assert.rejects(addChunk(driver, SENDER.id, toClient.messageId, 3, chunk, Date.now(), limits), /more than the 1500 bytes a message to mailbox COUNCIL01 may be, with chunk 3 of 3/);
      assert.equal(await findMessage(driver, toClient.messageId), undefined);

      await assert.rejects(startUpload(driver, { ...headers, recipient: POLLED.id }, 1, Buffer.alloc(1001), Date.now(), limits), /The message is 1001 bytes, more than the 1000 bytes a message to mailbox COUNCIL01 may be; nothing was stored/);
      await assert.rejects(addChunk(driver, SENDER.id, (await startUpload(driver, { ...headers, recipient: POLLED.id }, 2, chunk, Date.now(), limits)).messageId, 2, Buffer.alloc(1001), Date.now(), limits), /Chunk 2 is 1001 bytes, more than the 1000 bytes a chunk may be/);
    });
  });
}
