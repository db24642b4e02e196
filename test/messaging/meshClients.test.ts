// The built-in mailbox driven the way NHS England's own MESH clients drive a MESH server, not the way our
// own client does: one nonce per session with a rising nonce count, capitalised Mex- header names,
// "Accept: application/vnd.mesh.v2+json" and "Accept-Encoding: gzip", each chunk of a compressed message
// gzipped on its own, the content type of a chunked message in Mex-Content-Type, the inbox listed with
// workflow_filter and max_results and paged by following links.next from the server's root.
import { describe, it, before, after } from 'node:test';
import { request } from 'node:http';
import { createHmac, randomUUID } from 'node:crypto';
import { gunzipSync, gzipSync } from 'node:zlib';
import assert from 'node:assert/strict';
import { addMailbox, type InboundMessage } from '../../src/messaging/index.ts';
import { MeshClient } from '../../src/messaging/meshClient.ts';
import { MeshPoller } from '../../src/messaging/meshPoller.ts';
import { ENGINES, testDatabase } from '../support/server.ts';
import { stopOwnPostgres } from '../support/postgres.ts';
import { MESH_KEY, startServerOn, waitFor, type RunningServer } from '../support/mesh.ts';
import { startFakeMesh } from '../support/fakeMesh.ts';

after(stopOwnPostgres);

const SENDER = { id: 'TRUST01', password: 'trust-password-1' };
const POLLED = { id: 'COUNCIL01', password: 'council-password-1' };
const PROCESSED = { id: 'CAREBRIDGE01', password: 'carebridge-password-1' };
/** A mailbox two systems collect from, each asking only for its own workflows. */
const SHARED = { id: 'SHARED01', password: 'shared-password-1' };
const WORKFLOW = 'TOC_FHIR_DISCHARGE';

interface Answer { status: number; headers: Record<string, string | string[] | undefined>; body: Buffer; json(): any }

/** What NHS England's Python mesh-client puts on every request, as it puts it. */
function meshClientSession(origin: string, mailbox: string, password: string) {
  const nonce = randomUUID();
  let nonceCount = 0;
  const authorization = () => {
    const timestamp = new Date().toISOString().replace(/[-:T]/g, '').slice(0, 12);
    const hash = createHmac('sha256', MESH_KEY).update(`${mailbox}:${nonce}:${nonceCount}:${password}:${timestamp}`).digest('hex');
    return `NHSMESH ${mailbox}:${nonce}:${nonceCount++}:${timestamp}:${hash}`;
  };
  /**
   * `path` from the server's root, as the client joins links.next to its base URL. A `streamed` body goes
   * with Transfer-Encoding: chunked and no Content-Length, as requests sends the stream mesh-client gzips into.
   */
  const call = (method: string, path: string, headers: Record<string, string> = {}, body?: Buffer, streamed = false) => new Promise<Answer>((resolve, reject) => {
    const req = request(`${origin}${path}`, {
      method,
      headers: {
        Accept: 'application/vnd.mesh.v2+json', 'Accept-Encoding': 'gzip', 'User-Agent': 'mesh_client;5.0.2;N/A;x86_64;Linux;6.1',
        Authorization: authorization(), ...(streamed ? {} : { 'Content-Length': String(body?.length ?? 0) }), ...headers,
      },
    }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (p: Buffer) => parts.push(p)).on('error', reject).on('end', () => {
        const all = Buffer.concat(parts);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: all, json: () => JSON.parse(all.toString('utf8')) });
      });
    });
    req.on('error', reject);
    if (streamed && body) {
      const half = Math.floor(body.length / 2);
      req.write(body.subarray(0, half));
      req.end(body.subarray(half));
    } else {
      req.end(body);
    }
  });
  const box = `/messageexchange/${mailbox}`;
  return { call, box };
}

/** How the Python client sends: chunks of `chunkBytes`, each gzipped on its own (and streamed) when `compress`. */
async function sendAsMeshClient(session: ReturnType<typeof meshClientSession>, to: string, data: Buffer, options: { chunkBytes: number; compress: boolean; contentType: string; workflowId?: string }): Promise<string> {
  const chunks: Buffer[] = [];
  for (let at = 0; at < data.length; at += options.chunkBytes) chunks.push(data.subarray(at, at + options.chunkBytes));
  const total = chunks.length;
  const encode = (chunk: Buffer) => (options.compress ? gzipSync(chunk) : chunk);
  const first = await session.call('POST', `${session.box}/outbox`, {
    'Content-Type': total === 1 ? options.contentType : 'application/octet-stream',
    ...(total > 1 ? { 'Mex-Content-Type': options.contentType } : {}),
    'Mex-Chunk-Range': `1:${total}`, 'Mex-To': to, 'Mex-WorkflowID': options.workflowId ?? WORKFLOW, 'Mex-FileName': 'notice.xml', 'Mex-LocalID': `local-${randomUUID()}`,
    'Mex-Subject': 'Assessment notice', 'Mex-Content-Compressed': 'N', 'Mex-Content-Encrypted': 'N',
    ...(options.compress ? { 'Content-Encoding': 'gzip' } : {}),
  }, encode(chunks[0]!), options.compress);
  assert.equal(first.status, 202, first.body.toString());
  const messageId: string = first.json().message_id;
  for (let n = 2; n <= total; n++) {
    const next = await session.call('POST', `${session.box}/outbox/${messageId}/${n}`, {
      'Content-Type': 'application/octet-stream', 'Mex-Chunk-Range': `${n}:${total}`, ...(options.compress ? { 'Content-Encoding': 'gzip' } : {}),
    }, encode(chunks[n - 1]!), options.compress);
    assert.equal(next.status, 202, next.body.toString());
  }
  return messageId;
}

/** How the Python client reads a message: chunk by chunk, each inflated on its own when it says gzip. */
async function readAsMeshClient(session: ReturnType<typeof meshClientSession>, messageId: string): Promise<{ first: Answer; content: Buffer }> {
  const first = await session.call('GET', `${session.box}/inbox/${messageId}`);
  assert.ok(first.status === 200 || first.status === 206, first.body.toString());
  const [, total] = String(first.headers['mex-chunk-range'] ?? '1:1').split(':').map(Number);
  const decoded = (a: Answer) => (a.headers['content-encoding'] === 'gzip' ? gunzipSync(a.body) : a.body);
  const parts = [decoded(first)];
  for (let n = 2; n <= total!; n++) parts.push(decoded(await session.call('GET', `${session.box}/inbox/${messageId}/${n}`)));
  return { first, content: Buffer.concat(parts) };
}

for (const engine of ENGINES) {
  describe(`built-in MESH mailbox, driven as NHS England's MESH clients drive it (${engine})`, () => {
    let s: RunningServer;
    let cleanup: () => void;
    const received: InboundMessage[] = [];
    before(async () => {
      const db = await testDatabase(engine);
      cleanup = db.cleanup;
      s = await startServerOn(db.database, {}, (server) => server.messaging.onInbound([WORKFLOW], async (msg) => void received.push(msg)));
      await addMailbox(s.server.driver, { mailboxId: SENDER.id, ods: 'RX9', password: SENDER.password }, MESH_KEY);
      await addMailbox(s.server.driver, { mailboxId: POLLED.id, ods: 'LA918', password: POLLED.password, polled: true }, MESH_KEY);
      await addMailbox(s.server.driver, { mailboxId: PROCESSED.id, ods: 'LA919', password: PROCESSED.password }, MESH_KEY);
      await addMailbox(s.server.driver, { mailboxId: SHARED.id, ods: 'LA920', password: SHARED.password, polled: true }, MESH_KEY);
    });
    after(async () => {
      await s?.close();
      cleanup?.();
    });
    const sender = () => meshClientSession(s.url, SENDER.id, SENDER.password);
    const recipient = () => meshClientSession(s.url, POLLED.id, POLLED.password);

    it("answers mesh-client's ping (GET /messageexchange/_ping) without taking it for a mailbox, and its handshake", async () => {
      const session = sender();
      const ping = await session.call('GET', '/messageexchange/_ping');
      assert.equal(ping.status, 200, ping.body.toString());
      assert.equal(ping.json().status, 'running');
      const anonymous = await new Promise<number>((resolve, reject) => request(`${s.url}/messageexchange/_ping`, (res) => resolve(res.resume().statusCode ?? 0)).on('error', reject).end());
      assert.equal(anonymous, 200, 'no credentials needed');
      const handshake = await session.call('POST', session.box, { 'mex-ClientVersion': 'mesh_client==5.0.2', 'mex-OSArchitecture': 'x86_64', 'mex-OSName': 'Linux', 'mex-OSVersion': '6.1', 'mex-JavaVersion': 'N/A' });
      assert.equal(handshake.status, 200, handshake.body.toString());
    });

    it('lists only the workflows a client filters for (workflow_filter), max_results a page, and keeps both in links.next', async () => {
      const ours: string[] = [];
      const theirs: string[] = [];
      for (let i = 0; i < 12; i++) {
        ours.push(await sendAsMeshClient(sender(), SHARED.id, Buffer.from(`<notice n="${i}"/>`), { chunkBytes: 4000, compress: false, contentType: 'application/xml' }));
        theirs.push(await sendAsMeshClient(sender(), SHARED.id, Buffer.from(`result ${i}`), { chunkBytes: 4000, compress: false, contentType: 'text/plain', workflowId: 'PATH_RESULT' }));
      }
      const session = meshClientSession(s.url, SHARED.id, SHARED.password);
      const first = await session.call('GET', `${session.box}/inbox?max_results=10&workflow_filter=${WORKFLOW}`);
      assert.equal(first.status, 200, first.body.toString());
      assert.deepEqual(first.json().messages, ours.slice(0, 10));
      assert.equal(first.json().approx_inbox_count, 24, 'the whole inbox, as MESH counts it');
      const next: string = first.json().links.next;
      assert.match(next, /workflow_filter=TOC_FHIR_DISCHARGE/);
      // mesh-client joins links.next to its base URL as it is.
      const second = await session.call('GET', next);
      assert.deepEqual(second.json().messages, ours.slice(10), 'the rest of ours, none of theirs');
      assert.equal(second.json().links.next, undefined);

      const list = async (filter: string) => (await session.call('GET', `${session.box}/inbox?workflow_filter=${encodeURIComponent(filter)}`)).json().messages;
      assert.deepEqual(await list(`!${WORKFLOW}`), theirs);
      assert.deepEqual(await list('PATH_*'), theirs);
      assert.deepEqual(await list('!PATH_*'), ours);
      assert.deepEqual(await list('*FHIR*'), ours);
      assert.deepEqual(await list('!*FHIR*'), theirs);
      assert.deepEqual(await list('toc_fhir_discharge'), [], 'case matters, as in MESH');

      for (const bad of ['workflow_filter=*DISCHARGE', 'workflow_filter=TOC*FHIR', 'max_results=5', 'max_results=lots']) {
        const refused = await session.call('GET', `${session.box}/inbox?${bad}`);
        assert.equal(refused.status, 400, bad);
        assert.match(refused.json().errorDescription, /workflow_filter .* is not one MESH takes|max_results must be a whole number from 10 to 5000/, bad);
      }
    });

    it('keeps what a chunked message is (Mex-Content-Type, its chunks being application/octet-stream), through download and into a workflow here, each gzipped chunk inflated', async () => {
      const content = Buffer.from(`<notice>${'Mrs Example, discharge to assess. '.repeat(300)}</notice>`);
      const toClient = await sendAsMeshClient(sender(), POLLED.id, content, { chunkBytes: 4000, compress: true, contentType: 'application/xml' });
      const downloaded = await readAsMeshClient(recipient(), toClient);
      assert.deepEqual(downloaded.content, content);
      assert.equal(downloaded.first.headers['mex-content-type'], 'application/xml', 'mesh-client reads the type from Mex-Content-Type');
      assert.equal(downloaded.first.headers['mex-chunk-range'], '1:3');

      const toHere = await sendAsMeshClient(sender(), PROCESSED.id, content, { chunkBytes: 4000, compress: true, contentType: 'application/xml' });
      const delivered = await waitFor('the message reaches its workflow', () => received.find((m) => m.messageId === toHere));
      assert.deepEqual(delivered.body, content, 'inflated: each chunk was gzipped on its own');
      assert.equal(delivered.contentType, 'application/xml');
    });

    it('our MESH client says what a message is in Mex-Content-Type, and reads it from there', async () => {
      const fake = await startFakeMesh(POLLED.id);
      const client = new MeshClient({ url: fake.url, mailbox: POLLED.id, password: 'pw', sharedKey: 'key', workflowIds: [WORKFLOW], pollMs: 3600_000, chunkBytes: 1024 * 1024 });
      const poller = new MeshPoller(s.server.driver, client, { workflowIds: [WORKFLOW], pollMs: 3600_000, now: Date.now, delivered: () => undefined, onError: () => undefined });
      try {
        await client.send({ to: SENDER.id, workflowId: WORKFLOW, contentType: 'application/xml', body: Buffer.from('<notice/>') });
        assert.equal(fake.sent[0]?.headers['mex-content-type'], 'application/xml');

        fake.inbox.push({ id: 'CHUNKED_XML_1', workflowId: WORKFLOW, body: '<notice/>', headers: { 'content-type': 'application/octet-stream', 'mex-content-type': 'application/xml' } });
        assert.equal(await poller.pollOnce(), 1);
        const delivered = await waitFor('the polled message reaches its workflow', () => received.find((m) => m.messageId === 'CHUNKED_XML_1'));
        assert.equal(delivered.contentType, 'application/xml');
      } finally {
        client.close();
        await fake.close();
      }
    });

    it('tracks a sent message as MESH v2 does for a v2 caller (status in lower case, filename), as before for others', async () => {
      const session = sender();
      const id = await sendAsMeshClient(session, POLLED.id, Buffer.from('<notice/>'), { chunkBytes: 4000, compress: false, contentType: 'application/xml' });
      const tracked = await session.call('GET', `${session.box}/outbox/tracking?messageID=${id}`);
      assert.equal(tracked.status, 200, tracked.body.toString());
      assert.deepEqual([tracked.json().message_id, tracked.json().status, tracked.json().filename, tracked.json().status_success], [id, 'accepted', 'notice.xml', true]);
      const v1 = await session.call('GET', `${session.box}/outbox/tracking?messageID=${id}`, { Accept: 'application/json' });
      assert.equal(v1.json().status, 'Accepted');

      assert.equal((await recipient().call('PUT', `/messageexchange/${POLLED.id}/inbox/${id}/status/acknowledged`)).status, 200);
      assert.equal((await session.call('GET', `${session.box}/outbox/tracking/${id}`)).json().status, 'acknowledged');
    });

    it("tracks by the local id MESH's /outbox/tracking/{localID} names, and answers v1 callers with v1's names", async () => {
      const session = sender();
      const id = await sendAsMeshClient(session, POLLED.id, Buffer.from('<notice/>'), { chunkBytes: 4000, compress: false, contentType: 'application/xml' });
      const localId = (await session.call('GET', `${session.box}/outbox/tracking?messageID=${id}`)).json().local_id;
      const v1 = await session.call('GET', `${session.box}/outbox/tracking/${encodeURIComponent(localId)}`, { Accept: 'application/json' });
      assert.equal(v1.status, 200, v1.body.toString());
      assert.deepEqual([v1.json().messageId, v1.json().localId, v1.json().status, v1.json().fileName, v1.json().downloadTimestamp], [id, localId, 'Accepted', 'notice.xml', null]);
      assert.match(v1.json().uploadTimestamp, /^\d{14}$/);
      assert.equal((await session.call('GET', `${session.box}/outbox/tracking/${id}`)).json().message_id, id, 'a message id there still finds it');
      const none = await session.call('GET', `${session.box}/outbox/tracking/no-such-local-id`);
      assert.equal(none.status, 404);
      assert.match(none.json().errorDescription, /sent no message no-such-local-id \(as message id or local id\)/);
      assert.equal((await recipient().call('PUT', `/messageexchange/${POLLED.id}/inbox/${id}/status/acknowledged`)).status, 200);
    });

    it('our MESH client validates its mailbox (the handshake) on its first poll and once a day after, as MESH asks', async () => {
      const fake = await startFakeMesh(POLLED.id);
      const client = new MeshClient({ url: fake.url, mailbox: POLLED.id, password: 'pw', sharedKey: 'key', workflowIds: [WORKFLOW], pollMs: 3600_000, chunkBytes: 1024 * 1024 });
      let now = Date.now();
      const poller = new MeshPoller(s.server.driver, client, { workflowIds: [WORKFLOW], pollMs: 3600_000, now: () => now, delivered: () => undefined, onError: () => undefined });
      const handshakes = () => fake.requests.filter((r) => r === `POST /messageexchange/${POLLED.id}`).length;
      try {
        await poller.pollOnce();
        assert.equal(handshakes(), 1, fake.requests.join('\n'));
        const sentHeaders = fake.handshakes[0]!;
        assert.match(String(sentHeaders['mex-clientversion']), /^CareBridge==\d+\.\d+\.\d+$/);
        assert.ok(sentHeaders['mex-osname'] && sentHeaders['mex-osversion'], 'the headers MESH requires of a handshake');
        now += 23 * 3600_000;
        await poller.pollOnce();
        assert.equal(handshakes(), 1, 'not again within the day');
        now += 3600_000;
        await poller.pollOnce();
        assert.equal(handshakes(), 2);
      } finally {
        client.close();
        await fake.close();
      }
    });

    it('a chunked message said to be gzip whose chunks are not is refused at its last chunk and discarded whole, not left half-sent', async () => {
      const session = sender();
      const first = await session.call('POST', `${session.box}/outbox`, {
        'Content-Type': 'application/octet-stream', 'Mex-To': PROCESSED.id, 'Mex-WorkflowID': WORKFLOW, 'Mex-Chunk-Range': '1:2', 'Content-Encoding': 'gzip', 'Mex-LocalID': 'half-gzip-1',
      }, gzipSync('<notice>first half'));
      assert.equal(first.status, 202, first.body.toString());
      const messageId: string = first.json().message_id;
      const last = await session.call('POST', `${session.box}/outbox/${messageId}/2`, { 'Mex-Chunk-Range': '2:2' }, Buffer.from(' second half, not compressed</notice>'));
      assert.equal(last.status, 400);
      assert.match(last.json().errorDescription, /sent with Content-Encoding: gzip, but its content is not gzip data; the message was discarded with the chunks sent before: send it again, as a new message/);
      assert.equal((await session.call('GET', `${session.box}/outbox/tracking?messageID=${messageId}`)).status, 404, 'nothing of it is left');
      const again = await session.call('POST', `${session.box}/outbox/${messageId}/2`, { 'Mex-Chunk-Range': '2:2' }, gzipSync(' second half</notice>'));
      assert.equal(again.status, 404, 'a retried chunk finds no upload to join');
      assert.equal(received.find((m) => m.messageId === messageId), undefined);
    });

    it('gives a compressed message inflated, chunk by chunk, to a downloader that does not take gzip, and as sent to one that does', async () => {
      const content = Buffer.from(`<notice>${'Mx Example, discharge to assess. '.repeat(300)}</notice>`);
      const messageId = await sendAsMeshClient(sender(), POLLED.id, content, { chunkBytes: 4000, compress: true, contentType: 'application/xml' });
      const session = recipient();
      // As curl sends it, without --compressed: no Accept-Encoding.
      const plain = [await session.call('GET', `${session.box}/inbox/${messageId}`, { 'Accept-Encoding': '' })];
      for (let n = 2; n <= 3; n++) plain.push(await session.call('GET', `${session.box}/inbox/${messageId}/${n}`, { 'Accept-Encoding': 'identity' }));
      for (const chunk of plain) assert.deepEqual([chunk.headers['content-encoding'], chunk.headers['mex-content-compressed']], [undefined, undefined]);
      assert.deepEqual(Buffer.concat(plain.map((c) => c.body)), content);
      const refused = await session.call('GET', `${session.box}/inbox/${messageId}/2`, { 'Accept-Encoding': 'gzip;q=0' });
      assert.equal(refused.headers['content-encoding'], undefined, 'gzip at q=0 is gzip refused');
      const compressed = await session.call('GET', `${session.box}/inbox/${messageId}/2`, { 'Accept-Encoding': 'gzip, deflate' });
      assert.equal(compressed.headers['content-encoding'], 'gzip');
      assert.equal(gunzipSync(compressed.body).toString(), plain[1]!.body.toString());
      assert.equal((await session.call('PUT', `${session.box}/inbox/${messageId}/status/acknowledged`)).status, 200);
    });

    it("answers mesh-client's endpoint lookup (an organisation's mailbox by ODS code) for any mailbox signed in, and no one else", async () => {
      const session = sender();
      const found = await session.call('GET', `/messageexchange/endpointlookup/la918/${WORKFLOW}`);
      assert.equal(found.status, 200, found.body.toString());
      assert.deepEqual(found.json().results, [{ endpoint_type: 'MESH', description: 'Mailbox of LA918', address: POLLED.id }]);
      assert.deepEqual((await session.call('GET', `/messageexchange/endpointlookup/X99/${WORKFLOW}`)).json().results, [], 'an organisation with no mailbox known here');
      const anonymous = await session.call('GET', `/messageexchange/endpointlookup/LA918/${WORKFLOW}`, { Authorization: '' });
      assert.equal(anonymous.status, 401);
    });
  });
}
