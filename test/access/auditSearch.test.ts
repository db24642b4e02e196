// The audit journal through FHIR: one AuditEvent per request (a search over several patients, a
// transaction writing several resources), the search parameters a privacy officer uses, paging and
// sorting, clear errors, AuditEvents kept out of history and includes, and a caller narrowed to the
// events about one person. Both storage engines, over real HTTP.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ENGINES, clientToken, fhirClient, startTestServer, type FhirClient, type TestServer } from '../support/server.ts';
import { stopOwnPostgres } from '../support/postgres.ts';
import { addClient, onlyAuditEventsAbout, type UserActor } from '../../src/access/index.ts';
import { auditEventService } from '../../src/access/audit/search.ts';
import { SharedParts, journalEntryFor } from '../../src/access/audit/auditEvent.ts';
import { JournalAppender } from '../../src/access/audit/journal.ts';
import { journalConnection } from '../support/auditJournal.ts';
import { handleFhirRequest, UNRESTRICTED } from '../../src/record/index.ts';
import { waitForAudit } from '../support/audit.ts';

after(() => stopOwnPostgres());

const patientsOf = (e: any) => (e.entity ?? []).filter((x: any) => x.role?.code === '1').map((x: any) => x.what.reference);
const ids = (bundle: any) => (bundle.entry ?? []).map((e: any) => e.resource.id);

for (const engine of ENGINES) {
  describe(`AuditEvent search (${engine})`, () => {
    let t: TestServer;
    let reader: FhirClient;
    let readerId: string;
    let a: string;
    let b: string;
    let searchEvent: any;

    before(async () => {
      t = await startTestServer(engine);
      const { client, secret } = await addClient(t.server.driver, { name: 'Ward reader', scopes: 'system/Patient.rs system/Observation.rs', organization: 'RXX01' });
      readerId = client.clientId;
      reader = fhirClient(t.base, { authorization: `Bearer ${await clientToken(t.url, readerId, secret!)}` });
      a = (await t.fhir.post('Patient', { resourceType: 'Patient', name: [{ family: 'Alpha' }] })).body.id;
      b = (await t.fhir.post('Patient', { resourceType: 'Patient', name: [{ family: 'Beta' }] })).body.id;
      for (const p of [a, a, b]) await t.fhir.post('Observation', { resourceType: 'Observation', status: 'final', code: { text: 'weight' }, subject: { reference: `Patient/${p}` } });
      assert.equal((await reader.get('Observation?code:text=weight&_count=50')).body.total, 3);
      [searchEvent] = await waitForAudit(t.fhir, `altid=${readerId}&subtype=search-type`);
    });
    after(async () => t?.close());

    it('a search touching several patients is one event naming each patient once, with its query', async () => {
      const events = await waitForAudit(t.fhir, `altid=${readerId}&type=rest`); // not its token request (110114)
      assert.equal(events.length, 1, 'one request, one event');
      assert.deepEqual(patientsOf(searchEvent).sort(), [`Patient/${a}`, `Patient/${b}`].sort());
      const query = searchEvent.entity.find((x: any) => x.query);
      assert.equal(Buffer.from(query.query, 'base64').toString(), 'code%3Atext=weight&_count=50');
    });

    it('a transaction is one event listing what it wrote, found by any of them', async () => {
      const entry = (p: string) => ({ request: { method: 'POST', url: 'Observation' }, resource: { resourceType: 'Observation', status: 'final', code: { text: 'bp' }, subject: { reference: `Patient/${p}` } } });
      const res = await t.fhir.post('', { resourceType: 'Bundle', type: 'transaction', entry: [entry(a), entry(b), entry(a)] });
      assert.equal(res.status, 200);
      const written = res.body.entry.map((e: any) => e.response.location.split('/_history')[0]);
      const [event] = await waitForAudit(t.fhir, `entity=${written[1]}`);
      assert.equal(event.subtype[0].code, 'transaction');
      assert.deepEqual(patientsOf(event).sort(), [`Patient/${a}`, `Patient/${b}`].sort());
      assert.deepEqual(event.entity.filter((x: any) => x.what?.reference?.startsWith('Observation/')).map((x: any) => x.what.reference).sort(), [...written].sort());
      assert.deepEqual(ids((await t.fhir.get(`AuditEvent?entity=${written[2]}`)).body), [event.id]);
    });

    it('searches by date with precision, and by type, action, outcome, purpose and agent', async () => {
      const id = searchEvent.id;
      const recorded: string = searchEvent.recorded;
      const has = async (q: string) => ids((await t.fhir.get(`AuditEvent?altid=${readerId}&${q}`)).body).includes(id);
      assert.ok(await has(`date=${recorded.slice(0, 10)}`), 'the day it happened');
      assert.ok(await has(`date=${recorded.slice(0, 16)}Z`), 'the minute it happened');
      assert.ok(await has(`date=le${encodeURIComponent(recorded)}`));
      assert.ok(!(await has(`date=gt${encodeURIComponent(recorded)}`)));
      assert.ok(!(await has('date=lt2000')));
      assert.ok(await has('date=ge2000&date=lt3000'));
      assert.ok(await has('type=rest') && await has(`type=${encodeURIComponent('http://terminology.hl7.org/CodeSystem/audit-event-type|rest')}`));
      assert.ok(!(await has(`type=${encodeURIComponent('http://example.org/other|rest')}`)));
      assert.ok(await has('action=E') && !(await has('action=R')));
      assert.ok(await has('outcome=0') && !(await has('outcome=4,8')));
      assert.ok(await has('purpose=TREAT') && await has(`purpose=${encodeURIComponent('http://terminology.hl7.org/CodeSystem/v3-ActReason|TREAT')}`));
      assert.ok(!(await has('purpose=BTG')));
      assert.ok(await has('subtype=search-type') && !(await has('subtype=read')));

      // A person's events name them as the agent (their user id and who they are in the record).
      const gp: UserActor = { kind: 'user', userId: 'user-gp-1', name: 'Dr Synthetic', organisation: 'A81001', role: 'gp', fhirUser: 'Practitioner/gp-1', purpose: 'TREAT', scope: 'user/*.rs' };
      const journal = await journalConnection(t.server.driver);
      await new JournalAppender(journal.db).append([journalEntryFor({ at: Date.now(), actor: gp, address: '10.0.0.1', events: [{ interaction: 'read', resourceType: 'Patient', id: a, patientIds: [a] }], outcome: { status: 200, method: 'GET', path: `Patient/${a}`, query: '' } }, new SharedParts('test'))]);
      await journal.close();
      const byAgent = (await t.fhir.get('AuditEvent?agent=Practitioner/gp-1')).body;
      assert.equal(byAgent.total, 1);
      assert.equal(byAgent.entry[0].resource.agent[0].who.reference, 'Practitioner/gp-1');
      assert.deepEqual(ids((await t.fhir.get('AuditEvent?altid=user-gp-1')).body), ids(byAgent));
      assert.equal((await t.fhir.get('AuditEvent?agent=Practitioner/someone-else')).body.total, 0);
    });

    it('"who has looked at my record": newest first, paged with next links, oldest first on request, also as a compartment and POST _search', async () => {
      for (let i = 0; i < 3; i++) assert.equal((await reader.get(`Patient/${b}`)).status, 200);
      // Only the reader's events: the admin's own searches of the audit are audited too, and keep arriving.
      const mine = `altid=${readerId}`;
      const all = await waitForAudit(t.fhir, `patient=Patient/${b}&${mine}`, (es) => es.filter((e) => e.subtype[0].code === 'read').length >= 3);
      const newestFirst = (await t.fhir.get(`AuditEvent?patient=Patient/${b}&${mine}&_sort=-date`)).body;
      assert.deepEqual(ids(newestFirst), all.map((e) => e.id));
      const recorded = newestFirst.entry.map((e: any) => Date.parse(e.resource.recorded));
      assert.deepEqual(recorded, [...recorded].sort((x: number, y: number) => y - x));
      assert.deepEqual(ids((await t.fhir.get(`AuditEvent?patient=${b}&${mine}&_sort=date`)).body), [...ids(newestFirst)].reverse());

      const first = (await t.fhir.get(`AuditEvent?patient=${b}&${mine}&_count=2&_total=accurate`)).body;
      assert.equal(first.total, all.length);
      assert.deepEqual(ids(first), ids(newestFirst).slice(0, 2));
      const next = first.link.find((l: any) => l.relation === 'next').url;
      const second = await (await fetch(next, { headers: t.auth })).json();
      assert.deepEqual(ids(second), ids(newestFirst).slice(2, 4));
      assert.equal((await t.fhir.get(`AuditEvent?patient=${b}&${mine}&_count=2&_total=none`)).body.total, undefined);

      assert.deepEqual(ids((await t.fhir.get(`Patient/${b}/AuditEvent?${mine}`)).body), ids(newestFirst));
      const posted = await t.fhir.post('AuditEvent/_search', `patient=${b}&${mine}`, { 'content-type': 'application/x-www-form-urlencoded' });
      assert.deepEqual(ids(posted.body), ids(newestFirst));
    });

    it('refuses what it cannot search with a clear 400, and answers 404 for an unknown id', async () => {
      const cases: [string, RegExp][] = [
        ['AuditEvent?_include=AuditEvent:entity', /_include/],
        ['AuditEvent?entity-type=Patient', /cannot be searched by 'entity-type'.*patient, entity/],
        ['AuditEvent?date=yesterday', /not a valid date/],
        ['AuditEvent?_sort=action', /sort by date only/],
        ['AuditEvent?entity=not-a-reference', /takes a reference/],
        ['AuditEvent?outcome:not=0', /Modifier ':not'/],
      ];
      for (const [path, diagnostics] of cases) {
        const res = await t.fhir.get(path);
        assert.equal(res.status, 400, path);
        assert.equal(res.body.resourceType, 'OperationOutcome');
        assert.match(res.body.issue[0].diagnostics, diagnostics, path);
      }
      const strict = await t.fhir.get('AuditEvent?colour=blue', { prefer: 'handling=strict' });
      assert.equal(strict.status, 400);
      assert.equal((await t.fhir.get('AuditEvent?colour=blue')).status, 200, 'lenient by default, like every search');
      const unknown = await t.fhir.get('AuditEvent/999999999');
      assert.equal(unknown.status, 404);
      assert.equal(unknown.body.resourceType, 'OperationOutcome');
    });

    it('AuditEvents are never swept into history or includes', async () => {
      const history = (await t.fhir.get('_history?_count=1000')).body;
      assert.ok(history.entry.length > 0);
      assert.ok(!history.entry.some((e: any) => e.resource?.resourceType === 'AuditEvent'));
      const withRev = (await t.fhir.get(`Patient?_id=${a}&_revinclude=AuditEvent:patient`)).body;
      assert.ok(!withRev.entry.some((e: any) => e.resource.resourceType === 'AuditEvent'));
      assert.equal((await t.fhir.get(`AuditEvent/${searchEvent.id}/_history`)).status, 405);
      const metadata = (await fetch(`${t.base}/metadata`).then((r) => r.json())).rest[0].resource.find((r: any) => r.type === 'AuditEvent');
      assert.deepEqual(metadata.interaction.map((i: any) => i.code), ['read', 'search-type'], 'the CapabilityStatement says AuditEvent is read-only');
      assert.ok(['patient', 'entity', 'agent', 'altid', 'date', 'purpose'].every((p) => metadata.searchParam.some((s: any) => s.name === p)));
    });

    it('an access narrowed to one person shows only the events about them', async () => {
      const services = { AuditEvent: auditEventService(t.server.driver) };
      const ask = (path: string, query: [string, string][] = []) =>
        handleFhirRequest({ base: 'http://test/fhir', driver: t.server.driver, access: onlyAuditEventsAbout(UNRESTRICTED, [a]), services }, { method: 'GET', path, query });
      const mine = JSON.parse((await ask('AuditEvent', [['_count', '1000']])).body as string);
      assert.ok(mine.entry.length > 0);
      assert.ok(mine.entry.every((e: any) => patientsOf(e.resource).includes(`Patient/${a}`)), 'only events about the person');
      const onlyB = (await waitForAudit(t.fhir, `patient=${b}`)).find((e) => !patientsOf(e).includes(`Patient/${a}`));
      await assert.rejects(ask(`AuditEvent/${onlyB.id}`), (err: any) => err.status === 404);
      const asPerson = JSON.parse((await handleFhirRequest({ base: 'http://test/fhir', driver: t.server.driver, access: { ...UNRESTRICTED, patients: { patientIds: [a], via: [] } }, services }, { method: 'GET', path: 'AuditEvent', query: [['_count', '1000']] })).body as string);
      // A caller limited to some patients (a person: themself) sees the same (and whatever was written since).
      assert.ok(asPerson.entry.every((e: any) => patientsOf(e.resource).includes(`Patient/${a}`)));
      assert.ok(ids(mine).every((id: string) => ids(asPerson).includes(id)));
      // Asking by someone else, or by what a redacted event touched, picks nothing out: the events shown
      // have the others taken out, so choosing events by them would tell who else a request involved.
      for (const [name, value] of [['patient', b], ['patient', `Patient/${b}`], ['entity', `Patient/${b}`], ['patient', 'nobody-at-all']] as const) {
        const found = JSON.parse((await ask('AuditEvent', [[name, value], ['_total', 'accurate']])).body as string);
        assert.equal(found.total, 0, `${name}=${value}`);
      }
      assert.ok((await t.fhir.get(`AuditEvent?patient=${b}&entity=Patient/${a}&_summary=count`)).body.total > 0, 'events naming both exist');
      const both = JSON.parse((await ask('AuditEvent', [['patient', a], ['entity', `Patient/${b}`], ['_summary', 'count']])).body as string);
      assert.equal(both.total, 0);
      for (const [name, value] of [['entity', 'Observation/x'], ['entity-name', 'Patient']] as const) {
        await assert.rejects(ask('AuditEvent', [[name, value]]), (err: any) => err.status === 403, `${name} is for privacy officers`);
      }
      assert.ok(JSON.parse((await ask('AuditEvent', [['entity', `Patient/${a}`], ['_summary', 'count']])).body as string).total > 0, 'their own is searchable');
    });

    it('a person sees an event that also names others with the others, and what the request asked, taken out', async () => {
      const services = { AuditEvent: auditEventService(t.server.driver) };
      const asPerson = async (path: string, query: [string, string][] = []) => JSON.parse((await handleFhirRequest(
        { base: 'http://test/fhir', driver: t.server.driver, access: { ...UNRESTRICTED, patients: { patientIds: [a], via: [] } }, services },
        { method: 'GET', path, query },
      )).body as string);
      // The ward reader's search named both people and carried its query.
      const seen = await asPerson(`AuditEvent/${searchEvent.id}`);
      assert.deepEqual(patientsOf(seen), [`Patient/${a}`]);
      assert.equal(JSON.stringify(seen).includes(b), false, 'the other person is not named anywhere');
      assert.equal(seen.entity.some((x: any) => x.query), false, 'nor what was asked');
      assert.ok(seen.meta.security.some((c: any) => c.code === 'REDACTED'));
      assert.equal(seen.agent[0].altId, readerId, 'who looked is still shown');
      const listed = (await asPerson('AuditEvent', [['patient', a], ['_count', '1000']])).entry.find((e: any) => e.resource.id === searchEvent.id).resource;
      assert.deepEqual(patientsOf(listed), [`Patient/${a}`]);
      // A privacy officer sees the event whole.
      const whole = (await t.fhir.get(`AuditEvent/${searchEvent.id}`)).body;
      assert.deepEqual(patientsOf(whole).sort(), [`Patient/${a}`, `Patient/${b}`].sort());
      assert.equal(whole.meta.security, undefined);
    });
  });
}
