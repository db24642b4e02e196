// Live lists over real HTTP: the Server-Sent Events stream behind the ward list and the residents list
// says "changed" when an Observation, Encounter or Flag about someone on the user's page is written, and
// says nothing about anyone else, read from the record's change feed (readChanges). A stream ends once its
// session does, however it ends (signed out elsewhere, expired, account disabled, password reset). Both
// storage engines.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ENGINES } from '../support/server.ts';
import { stopOwnPostgres } from '../support/postgres.ts';
import { latestChangeSeq, readChanges } from '../../src/record/index.ts';
import { disableUser, setPassword } from '../../src/access/index.ts';
import { CARE_HOME_CARER, WARD_NURSE, startPortalServer, type PortalTestServer, type TestPerson } from './portalServer.ts';

after(() => stopOwnPostgres());

/** An open event stream: the events it has sent so far, and a way to wait for the next. */
async function openStream(t: PortalTestServer, path: string, cookie: string) {
  const abort = new AbortController();
  const res = await fetch(t.url + path, { headers: { cookie }, signal: abort.signal, redirect: 'manual' });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
  const events: string[] = [];
  let buffer = '';
  const reading = (async () => {
    const decoder = new TextDecoder();
    try {
      for await (const chunk of res.body!) {
        buffer += decoder.decode(chunk as Uint8Array, { stream: true });
        let end;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const name = /^event: (.+)$/m.exec(buffer.slice(0, end))?.[1];
          if (name) events.push(name);
          buffer = buffer.slice(end + 2);
        }
      }
    } catch {
      // aborted
    }
  })();
  return {
    events,
    /** Whether the server ends the stream within `ms` (generous: the server ends it within a few seconds). */
    async endsWithin(ms = 15_000) {
      let timer: NodeJS.Timeout | undefined;
      const ended = await Promise.race([reading.then(() => true), new Promise<boolean>((r) => (timer = setTimeout(() => r(false), ms)))]);
      clearTimeout(timer);
      return ended;
    },
    /** Waits up to `ms` for the count of events to pass `count`. */
    async waitFor(count: number, ms = 8000) {
      const until = Date.now() + ms;
      while (events.length <= count && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
      return events.length > count;
    },
    async close() {
      abort.abort();
      await reading;
    },
  };
}

const observation = (patientId: string) => ({
  resourceType: 'Observation', status: 'final', code: { text: 'Pulse' }, subject: { reference: `Patient/${patientId}` },
  effectiveDateTime: new Date().toISOString(), valueQuantity: { value: 80, unit: '/min' },
});

for (const engine of ENGINES) {
  describe(`live lists (${engine})`, () => {
    let t: PortalTestServer;
    let inpatient: string;
    let resident: string;
    let otherHome: string;

    before(async () => {
      t = await startPortalServer(engine);
      const encounters = await t.fhir('GET', 'Encounter', [['status', 'in-progress']]);
      inpatient = encounters.entry[0].resource.subject.reference.replace('Patient/', '');
      const inHospital = new Set(encounters.entry.map((e: any) => e.resource.subject.reference));
      const episodes = await t.fhir('GET', 'EpisodeOfCare', [['status', 'active'], ['_count', '200']]);
      const home = (ods: string) => episodes.entry.map((e: any) => e.resource).filter((e: any) => e.managingOrganization.reference === `Organization/demo-org-${ods}` && !inHospital.has(e.patient.reference));
      resident = home('vm101')[0].patient.reference.replace('Patient/', '');
      otherHome = home('vm102')[0].patient.reference.replace('Patient/', '');
    });
    after(() => t.close());

    it('reads the change feed from a position: what was written after it, in order', async () => {
      const from = await latestChangeSeq(t.driver);
      await t.fhir('POST', 'Observation', [], observation(resident));
      const changes = await readChanges(t.driver, from, 10);
      assert.equal(changes.length, 1);
      assert.deepEqual([changes[0].type, changes[0].action, changes[0].patientId], ['Observation', 'create', resident]);
      assert.ok(changes[0].seq > from);
      assert.deepEqual(await readChanges(t.driver, changes[0].seq, 10), []);
    });

    it('tells the ward list about its patients’ new observations and admissions, and nothing about anyone else', async () => {
      const { cookie } = await t.signIn(WARD_NURSE);
      const stream = await openStream(t, '/live/wards', cookie);
      try {
        await new Promise((r) => setTimeout(r, 1500)); // the stream's starting point is fixed
        await t.fhir('POST', 'Observation', [], observation(resident));
        assert.equal(await stream.waitFor(0, 3000), false, 'a care-home resident is not on the ward list: nothing is said');
        await t.fhir('POST', 'Observation', [], observation(inpatient));
        assert.ok(await stream.waitFor(0), 'an inpatient’s observation refreshes the list');
        assert.equal(stream.events[0], 'changed');
        await t.fhir('POST', 'Encounter', [], {
          resourceType: 'Encounter', status: 'in-progress', class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'IMP' },
          subject: { reference: `Patient/${otherHome}` }, serviceProvider: { reference: 'Organization/demo-org-rx9' }, period: { start: new Date().toISOString() },
        });
        assert.ok(await stream.waitFor(1), 'an admission to the hospital adds someone to the list');
      } finally {
        await stream.close();
      }
    });

    it('tells the residents list about its own residents’ alerts only; other roles and signed-out browsers get no stream', async () => {
      const { cookie } = await t.signIn(CARE_HOME_CARER);
      const stream = await openStream(t, '/live/residents', cookie);
      try {
        await new Promise((r) => setTimeout(r, 1500));
        const flag = (patientId: string) => ({ resourceType: 'Flag', status: 'active', code: { text: 'Falls risk' }, subject: { reference: `Patient/${patientId}` } });
        await t.fhir('POST', 'Flag', [], flag('demo-pat-vm102-03'));
        assert.equal(await stream.waitFor(0, 3000), false, 'another home’s resident: nothing is said');
        await t.fhir('POST', 'Flag', [], flag(resident));
        assert.ok(await stream.waitFor(0));
      } finally {
        await stream.close();
      }
      assert.equal((await fetch(`${t.url}/live/wards`, { headers: { cookie }, redirect: 'manual' })).status, 403);
      assert.equal((await fetch(`${t.url}/live/residents`, { redirect: 'manual' })).status, 303);
      assert.equal((await fetch(`${t.url}/live/anything`, { headers: { cookie }, redirect: 'manual' })).status, 404);
    });

    /** A carer of their own, so that ending their sessions or disabling them touches no other test. */
    const carer = (username: string): TestPerson => ({ ...CARE_HOME_CARER, username });
    const flag = (patientId: string) => ({ resourceType: 'Flag', status: 'active', code: { text: 'Falls risk' }, subject: { reference: `Patient/${patientId}` } });

    /** Asserts the stream ends by itself, says nothing more about the residents, and that the browser is sent to sign in again. */
    async function assertEnded(stream: Awaited<ReturnType<typeof openStream>>, cookie: string, why: string) {
      const before = stream.events.filter((e) => e === 'changed').length;
      await t.fhir('POST', 'Flag', [], flag(resident));
      assert.ok(await stream.endsWithin(), `${why}: the server ends the open stream (events: ${stream.events.join(', ')})`);
      assert.equal(stream.events.filter((e) => e === 'changed').length, before, `${why}: nothing is said after the session ended`);
      const again = await fetch(`${t.url}/live/residents`, { headers: { cookie }, redirect: 'manual' });
      assert.equal(again.status, 303, `${why}: reconnecting gets no stream`);
      assert.match(again.headers.get('location') ?? '', /^\/sign-in/);
    }

    it('ends an open stream when its session is signed out in another request, with no change written', async () => {
      const { cookie } = await t.signIn(carer('test.carer.signout'));
      const stream = await openStream(t, '/live/residents', cookie);
      try {
        const page = await (await fetch(`${t.url}/care-home`, { headers: { cookie } })).text();
        const csrf = /action="\/sign-out\?_csrf=([^"]+)"/.exec(page)![1];
        const out = await fetch(`${t.url}/sign-out?_csrf=${csrf}`, { method: 'POST', headers: { cookie }, redirect: 'manual' });
        assert.equal(out.status, 303);
        assert.ok(await stream.endsWithin(), 'the stream ends without waiting for a change to be written');
        await assertEnded(stream, cookie, 'signed out');
      } finally {
        await stream.close();
      }
    });

    it('ends an open stream when the account is disabled or its password reset (outside the portal, as the command line does)', async () => {
      const disabled = carer('test.carer.disabled');
      const a = await t.signIn(disabled);
      const first = await openStream(t, '/live/residents', a.cookie);
      const reset = carer('test.carer.reset');
      const b = await t.signIn(reset);
      const second = await openStream(t, '/live/residents', b.cookie);
      try {
        await disableUser(t.driver, disabled.username);
        await assertEnded(first, a.cookie, 'account disabled');
        await setPassword(t.driver, reset.username, 'another-synthetic-passphrase-8');
        await assertEnded(second, b.cookie, 'password reset');
      } finally {
        await first.close();
        await second.close();
      }
    });

    it('ends an open stream when its session expires', async () => {
      const { cookie } = await t.signIn(carer('test.carer.idle'));
      const stream = await openStream(t, '/live/residents', cookie);
      const idle = 31 * 60_000; // past the 30 idle minutes
      try {
        t.advanceClock(idle);
        await assertEnded(stream, cookie, 'expired');
      } finally {
        t.advanceClock(-idle);
        await stream.close();
      }
    });
  });
}
