// Anyone can reach the server, so a caller without valid credentials must not get to send it a large body:
// the FHIR API, the MESH mailbox, break-glass and the dead letters refuse them before their body is read (as
// the portal sends a form posted without a session to sign in), and the forms anyone may post (the token
// request, the sign-in) are read only up to a few KB.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { ENGINES, startTestServer, type TestServer } from '../support/server.ts';
import { MESH_KEY } from '../support/mesh.ts';

/** What the server answered a request of which only the first part of its declared body was sent. */
interface PartAnswer { status: number; head: string; body: string; closedByServer: boolean }

/**
 * Sends the request line, headers and `sentBytes` of a body declared as `declaredBytes`, then waits (no more
 * than `waitMs`, after which the answer counts as missing: status 0) for the server's answer. A server
 * that waits for the whole body never answers.
 */
function sendPart(url: string, method: string, path: string, headers: Record<string, string>, declaredBytes: number, sentBytes: number, waitMs = 10_000): Promise<PartAnswer> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname);
    let received = '';
    let answered: PartAnswer | undefined;
    const timer = setTimeout(() => finish({ status: 0, head: '', body: '', closedByServer: false }), waitMs);
    const finish = (answer: PartAnswer) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(answer);
    };
    const parse = (closedByServer: boolean): PartAnswer | undefined => {
      const end = received.indexOf('\r\n\r\n');
      if (end < 0) return undefined;
      const head = received.slice(0, end);
      const length = Number(/\r\ncontent-length:\s*(\d+)/i.exec(head)?.[1] ?? 0);
      const body = received.slice(end + 4);
      if (body.length < length) return undefined;
      return { status: Number(head.split(' ')[1]), head, body: body.slice(0, length), closedByServer };
    };
    socket.on('error', (err) => (answered ? undefined : reject(err)));
    socket.on('data', (chunk) => {
      received += chunk.toString('latin1');
      answered ??= parse(false);
    });
    // The answer is complete once its body is in; whether the server then ends the connection is part of it.
    socket.on('end', () => finish({ ...(answered ?? parse(true) ?? { status: -1, head: received, body: '' }), closedByServer: true }));
    socket.on('connect', () => {
      const lines = [`${method} ${path} HTTP/1.1`, `Host: ${hostname}:${port}`, `Content-Length: ${declaredBytes}`, ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)];
      socket.write(`${lines.join('\r\n')}\r\n\r\n`);
      socket.write(Buffer.alloc(sentBytes, 0x20));
    });
  });
}

const MB = 1024 * 1024;

for (const engine of ENGINES) {
  describe(`unauthenticated bodies are not read (${engine})`, () => {
    let t: TestServer;
    before(async () => (t = await startTestServer(engine, { CAREBRIDGE_MESH_SHARED_KEY: MESH_KEY })));
    after(() => t?.close());

    it('a 32 MB FHIR POST without a token is answered 401, with an OperationOutcome, before its body is sent', async () => {
      const answer = await sendPart(t.url, 'POST', '/fhir/Bundle', { 'Content-Type': 'application/fhir+json' }, 32 * MB, 64 * 1024);
      assert.equal(answer.status, 401, answer.head);
      assert.equal(JSON.parse(answer.body).resourceType, 'OperationOutcome');
      assert.ok(answer.closedByServer, 'the server ends the connection rather than reading the rest of the body');
    });

    it('a FHIR POST with a token that is not valid is refused the same way', async () => {
      const answer = await sendPart(t.url, 'POST', '/fhir/Patient', { 'Content-Type': 'application/fhir+json', Authorization: 'Bearer not.a.token' }, 32 * MB, 64 * 1024);
      assert.equal(answer.status, 401, answer.head);
    });

    it('a caller with a token still sends bodies, and the CapabilityStatement stays public', async () => {
      const created = await t.fhir.post('Patient', { resourceType: 'Patient', name: [{ family: 'Body' }] });
      assert.equal(created.status, 201);
      assert.equal((await fetch(`${t.base}/metadata`)).status, 200);
    });

    it('a 32 MB MESH upload without an NHSMESH header is answered 401, in MESH\'s error shape, before its body is sent', async () => {
      const answer = await sendPart(t.url, 'POST', '/messageexchange/X26ABC001/outbox', { 'Content-Type': 'application/octet-stream', 'mex-To': 'X26ABC002', 'mex-WorkflowID': 'TEST' }, 32 * MB, 64 * 1024);
      assert.equal(answer.status, 401, answer.head);
      assert.equal(JSON.parse(answer.body).errorCode, 'EPL-101');
      assert.ok(answer.closedByServer, 'the server ends the connection rather than reading the rest of the body');
    });

    it('a dead-letter replay without a token is answered 401, with an OperationOutcome, before its body is read: malformed or over the limit', async () => {
      const malformed = await fetch(`${t.url}/messaging/dead-letters/ABC123/replay`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"not json' });
      assert.equal(malformed.status, 401);
      assert.equal((await malformed.json()).resourceType, 'OperationOutcome');
      const oversized = await sendPart(t.url, 'POST', '/messaging/dead-letters/ABC123/replay', { 'Content-Type': 'application/json' }, 100 * MB, 64 * 1024);
      assert.equal(oversized.status, 401, oversized.head);
      assert.equal(JSON.parse(oversized.body).resourceType, 'OperationOutcome');
      assert.ok(oversized.closedByServer, 'the server ends the connection rather than reading the rest of the body');
      const badToken = await sendPart(t.url, 'POST', '/messaging/dead-letters/ABC123/replay', { 'Content-Type': 'application/json', Authorization: 'Bearer not.a.token' }, 32 * MB, 64 * 1024);
      assert.equal(badToken.status, 401, badToken.head);
      // With a token the route still answers as before: the message is not a dead letter.
      const res = await fetch(`${t.url}/messaging/dead-letters/ABC123/replay`, { method: 'POST', headers: t.auth });
      assert.equal(res.status, 404);
      assert.equal((await fetch(`${t.url}/messaging/dead-letters`, { headers: t.auth })).status, 200);
    });

    it('break-glass: a POST without a token is answered 401 before its body is read, whether malformed or over the limit', async () => {
      for (const path of ['/access/break-glass', '/access/break-glass/00000000-0000-4000-8000-000000000000/review']) {
        const malformed = await fetch(`${t.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"patient": ' });
        assert.equal(malformed.status, 401, `${path}: malformed body`);
        assert.equal((await malformed.json()).resourceType, 'OperationOutcome');
        const large = await sendPart(t.url, 'POST', path, { 'Content-Type': 'application/json' }, 32 * MB, 64 * 1024);
        assert.equal(large.status, 401, `${path}: ${large.head}`);
        assert.equal(JSON.parse(large.body).resourceType, 'OperationOutcome');
        assert.ok(large.closedByServer, 'the server ends the connection rather than reading the rest of the body');
        const badToken = await fetch(`${t.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: 'Bearer not.a.token' }, body: '{"patient": ' });
        assert.equal(badToken.status, 401, `${path}: a token that is not valid`);
      }
      const asSystem = await fetch(`${t.url}/access/break-glass`, { method: 'POST', headers: { ...t.auth, 'content-type': 'application/json' }, body: '{"patient": ' });
      assert.equal(asSystem.status, 400, 'a signed-in caller\'s malformed body is still answered as such');
    });

    it('portal: a form posted to a signed-in page without a session is sent to sign in before its body is read', async () => {
      for (const path of ['/privacy-officer/alerts/00000000-0000-4000-8000-000000000000/review', '/admin/users', '/care-home/residents/someone/break-glass']) {
        const malformed = await fetch(`${t.url}${path}`, { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/json' }, body: '{"outcome": ' });
        assert.equal(malformed.status, 303, `${path}: malformed body`);
        assert.match(malformed.headers.get('location') ?? '', /^\/sign-in/);
        const tooLarge = await fetch(`${t.url}${path}`, { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `note=${'y'.repeat(20 * 1024)}` });
        assert.equal(tooLarge.status, 303, `${path}: a form over the portal's limit`);
        const large = await sendPart(t.url, 'POST', path, { 'Content-Type': 'application/x-www-form-urlencoded' }, 32 * MB, 64 * 1024);
        assert.equal(large.status, 303, `${path}: ${large.head}`);
        assert.ok(large.closedByServer, 'the server ends the connection rather than reading the rest of the body');
        const ended = await fetch(`${t.url}${path}`, { method: 'POST', redirect: 'manual', headers: { cookie: 'carebridge_session=ended-or-never-was', 'content-type': 'application/json' }, body: '{"outcome": ' });
        assert.equal(ended.status, 303, `${path}: a session that has ended`);
        assert.equal(ended.headers.get('location'), '/sign-in?reason=expired');
      }
      const signIn = await fetch(`${t.url}/sign-in`, { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `username=someone&password=${'y'.repeat(20 * 1024)}` });
      assert.equal(signIn.status, 413, 'the sign-in form is for people not yet signed in: read, up to its limit');
    });

    it('a token request form over 16 KB is refused 413', async () => {
      const res = await fetch(`${t.url}/oauth2/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: `grant_type=client_credentials&client_id=x&client_secret=${'y'.repeat(20 * 1024)}`,
      });
      assert.equal(res.status, 413);
      assert.equal((await res.json()).error, 'invalid_request');
    });

    it('a sign-in form over 16 KB is refused 413', async () => {
      const res = await fetch(`${t.url}/oauth2/authorize`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: `username=someone&password=${'y'.repeat(20 * 1024)}`,
      });
      assert.equal(res.status, 413);
    });
  });
}
