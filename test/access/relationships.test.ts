// Roles × relationships × resource types × interactions, over HTTP on both engines, against the demo
// dataset. Who should see whom is worked out here from the dataset's own JSON (an oracle independent of
// the server's SQL), then every route a person could use is tried: search, totals, reads, _include,
// _revinclude, chains, compartment search, $everything, history, conditional writes and transactions.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ENGINES, fhirClient, startTestServer, type FhirClient, type TestServer } from '../support/server.ts';
import { buildDemoDataset } from '../../src/demo/index.ts';
import { addPerson, personToken } from '../support/people.ts';
import type { Role } from '../../src/access/actor.ts';
import { declareBreakGlass } from '../../src/access/breakGlass.ts';
import { waitForAudit } from '../support/audit.ts';

const { bundle } = buildDemoDataset();
const resources = bundle.entry.map((e) => e.resource as Record<string, any>);
const byType = (type: string) => resources.filter((r) => r.resourceType === type);
const ODS = 'https://fhir.nhs.uk/Id/ods-organization-code';
const orgId = (ods: string) => byType('Organization').find((o) => o.identifier?.some((i: any) => i.system === ODS && i.value === ods))!.id as string;
const refId = (ref: any) => String(ref?.reference ?? '').split('/')[1];
const allPatients = byType('Patient').map((p) => p.id as string);

// The oracle: whose records each organisation's relationships reach, read straight from the dataset.
const residents = (ods: string) => byType('EpisodeOfCare').filter((e) => e.status === 'active' && refId(e.managingOrganization) === orgId(ods)).map((e) => refId(e.patient));
const inpatients = (ods: string) => byType('Encounter').filter((e) => e.status === 'in-progress' && refId(e.serviceProvider) === orgId(ods)).map((e) => refId(e.subject));
const referred = (ods: string) => byType('ServiceRequest').filter((s) => s.status === 'active' && s.performer?.some((p: any) => refId(p) === orgId(ods))).map((s) => refId(s.subject));
const registered = (ods: string) => byType('Patient').filter((p) => p.generalPractitioner?.some((g: any) => refId(g) === orgId(ods))).map((p) => p.id as string);
const compartmentOf = (r: Record<string, any>): string | undefined => {
  if (r.resourceType === 'Patient') return r.id;
  for (const k of ['subject', 'patient']) if (String(r[k]?.reference ?? '').startsWith('Patient/')) return refId(r[k]);
  return undefined;
};

interface Persona { role: Role; org?: string; fhirUser?: string; sees: string[] }
const carerRp = byType('Consent').find((c) => c.category?.[0]?.coding?.[0]?.code === 'OPTIN')!;
const PERSONAS: Record<string, Persona> = {
  careHome: { role: 'care-home-staff', org: 'VM101', sees: residents('VM101') },
  wardNurse: { role: 'ward-nurse', org: 'RX9', sees: inpatients('RX9') },
  socialWorker: { role: 'social-worker', org: 'LA918', sees: referred('LA918') },
  gp: { role: 'gp', org: 'Y01234', sees: registered('Y01234') },
  carer: { role: 'carer', fhirUser: carerRp.provision.actor[0].reference.reference, sees: [refId(carerRp.patient)] },
  person: { role: 'person', fhirUser: 'Patient/demo-pat-vm102-01', sees: ['demo-pat-vm102-01'] },
};

const sorted = (xs: Iterable<string>) => [...new Set(xs)].sort();
const ids = (bundle: any, type?: string) => (bundle.entry ?? []).filter((e: any) => !type || e.resource.resourceType === type).map((e: any) => e.resource.id as string);

for (const engine of ENGINES) {
  describe(`relationship-based access (${engine})`, () => {
    let t: TestServer;
    const as: Record<string, FhirClient> = {};
    const userIds = new Map<string, string>();
    /** Signs the persona in through the real authorization code flow (creating their account the first time). */
    const tokenFor = async (p: Omit<Persona, 'sees'>, scope = 'user/*.cruds', username = `${p.role}-${p.org ?? 'self'}`) => {
      if (!userIds.has(username)) userIds.set(username, await addPerson(t, { username, role: p.role, org: p.org, fhirUser: p.fhirUser }));
      return { authorization: `Bearer ${await personToken(t, username, scope)}` };
    };

    before(async () => {
      t = await startTestServer(engine, { CAREBRIDGE_SIGN_IN_RATE_LIMIT: '100' }); // a sign-in per persona and role, more than a person makes in a minute
      const loaded = await t.fhir.post('', bundle, { prefer: 'return=minimal' });
      assert.equal(loaded.status, 200);
      for (const [name, p] of Object.entries(PERSONAS)) as[name] = fhirClient(t.base, await tokenFor(p));
      for (const p of Object.values(PERSONAS)) assert.ok(p.sees.length > 0 && p.sees.length < allPatients.length, `${p.role}: the dataset gives a partial view`);
    });
    after(() => t.close());

    it('search and totals show exactly the people each relationship reaches', async () => {
      for (const [name, p] of Object.entries(PERSONAS)) {
        const found = await as[name].get('Patient?_count=100&_total=accurate');
        assert.equal(found.status, 200, name);
        assert.deepEqual(sorted(ids(found.body)), sorted(p.sees), `${name} sees its people`);
        assert.equal(found.body.total, new Set(p.sees).size, `${name}: total`);
        const count = await as[name].get('Observation?_summary=count');
        const expected = byType('Observation').filter((o) => p.sees.includes(compartmentOf(o)!)).length;
        assert.equal(count.body.total, expected, `${name}: observation count`);
      }
    });

    // A read checks its one resource's people relationship by relationship (not by listing everyone in
    // scope, as a search does): every person in the dataset, and one observation of each, as the oracle says.
    it('a read of anyone in the dataset, or of their observation, is allowed exactly when a relationship reaches them', async () => {
      for (const [name, p] of Object.entries(PERSONAS)) {
        for (const patient of allPatients) {
          const expected = p.sees.includes(patient) ? 200 : 403;
          assert.equal((await as[name].get(`Patient/${patient}`)).status, expected, `${name} reading Patient/${patient}`);
          const observation = byType('Observation').find((o) => compartmentOf(o) === patient);
          if (observation) assert.equal((await as[name].get(`Observation/${observation.id}`)).status, expected, `${name} reading ${patient}'s Observation/${observation.id}`);
        }
      }
    });

    it('a chain or _has needs the right to search every type it passes through, whatever the role may see', async () => {
      const stay = byType('Encounter').find((e) => e.status === 'in-progress')!;
      const probes: [Role, string, string][] = [
        // An administrator reads the directory only: where a person is staying is not theirs to find.
        ['admin', `Organization?_has:Encounter:service-provider:subject=Patient/${refId(stay.subject)}`, 'Encounter'],
        ['privacy-officer', `Organization?_has:Encounter:service-provider:subject=Patient/${refId(stay.subject)}`, 'Encounter'],
        // A broker arranges care without clinical detail: who has a condition is clinical.
        ['broker', 'Patient?_has:Condition:subject:clinical-status=active', 'Condition'],
        ['broker', 'Patient?_has:Observation:subject:code=http://loinc.org|9279-1', 'Observation'],
        ['admin', 'Organization?_has:Patient:general-practitioner:family=Smith', 'Patient'],
      ];
      const clients = new Map<Role, FhirClient>();
      for (const role of new Set(probes.map(([r]) => r))) clients.set(role, fhirClient(t.base, await tokenFor({ role, org: role === 'admin' ? undefined : 'LA918' })));
      for (const [role, query, type] of probes) {
        const res = await clients.get(role)!.get(query);
        assert.equal(res.status, 403, `${role}: ${query}`);
        assert.match(res.body.issue[0].diagnostics, new RegExp(`does not allow search on ${type} resources`), `${role}: ${query}`);
      }
      const systemFinds = await t.fhir.get(probes[0][1]);
      assert.equal(systemFinds.body.entry?.length, 1, 'the probe does find the hospital, for a client allowed to search Encounters');
    });

    it('reads inside the relationship; 403 outside, with the way forward', async () => {
      for (const [name, p] of Object.entries(PERSONAS)) {
        const inside = await as[name].get(`Patient/${p.sees[0]}`);
        assert.equal(inside.status, 200, name);
        const outsider = allPatients.find((id) => !p.sees.includes(id))!;
        const outside = await as[name].get(`Patient/${outsider}`);
        assert.equal(outside.status, 403, `${name} reading ${outsider}`);
        assert.match(outside.body.issue[0].diagnostics, /outside the records you may see.*break-glass/);
        const theirObservation = byType('Observation').find((o) => compartmentOf(o) === outsider)!;
        assert.equal((await as[name].get(`Observation/${theirObservation.id}`)).status, 403, `${name}: another person's observation`);
        assert.equal((await as[name].get(`Observation/${theirObservation.id}/_history/1`)).status, 403, `${name}: vread`);
        assert.equal((await as[name].get(`Patient/${outsider}/Observation`)).status, 403, `${name}: compartment search`);
        assert.equal((await as[name].get(`Patient/${outsider}/$everything`)).status, 403, `${name}: $everything`);
        assert.equal((await as[name].get(`Patient/${outsider}/_history`)).status, 403, `${name}: instance history`);
      }
    });

    it('_include, _revinclude, chains, _has, $everything and history never carry anyone else', async () => {
      for (const [name, p] of Object.entries(PERSONAS)) {
        const mine = (bundle: any) => (bundle.entry ?? []).map((e: any) => compartmentOf(e.resource)).filter(Boolean).every((id: string) => p.sees.includes(id));
        const rev = await as[name].get('Patient?_revinclude=Observation:subject&_count=50');
        assert.ok(mine(rev.body) && ids(rev.body, 'Observation').length > 0, `${name}: _revinclude`);
        const inc = await as[name].get('Observation?_include=Observation:subject&_count=200');
        assert.ok(mine(inc.body), `${name}: _include`);
        // Everyone in the dataset has an observation: a chain on an outsider's family name must find none of theirs.
        const outsider = byType('Patient').find((x) => !p.sees.includes(x.id))!;
        const chained = await as[name].get(`Observation?subject.family=${encodeURIComponent(outsider.name[0].family)}&_count=200`);
        assert.ok(mine(chained.body), `${name}: chain`);
        // _has must not reveal facts about an outsider through a resource that is visible (an organisation).
        const outsiderStay = byType('Encounter').find((e) => !p.sees.includes(refId(e.subject)));
        if (outsiderStay) {
          const probe = `Organization?_has:Encounter:service-provider:subject=Patient/${refId(outsiderStay.subject)}`;
          assert.equal((await t.fhir.get(probe)).body.entry?.length, 1, 'the probe finds the hospital for a system client');
          const hidden = await as[name].get(probe);
          assert.ok(hidden.status === 403 || !hidden.body.entry?.length, `${name}: _has through another person's encounter`);
        }
        const everything = await as[name].get(`Patient/${p.sees[0]}/$everything?_count=5000`);
        assert.equal(everything.status, 200);
        assert.ok(mine(everything.body), `${name}: $everything`);
        const history = await as[name].get('Observation/_history?_count=1000');
        assert.equal(history.status, 200);
        assert.ok(mine(history.body) && history.body.entry.length > 0, `${name}: history`);
        assert.equal(history.body.total, byType('Observation').filter((o) => p.sees.includes(compartmentOf(o)!)).length, `${name}: history total`);
      }
    });

    it('writes follow the role and the relationship, and a refused transaction leaves nothing behind', async () => {
      const careHome = PERSONAS.careHome;
      const resident = careHome.sees[0];
      const outsider = allPatients.find((id) => !careHome.sees.includes(id))!;
      const observation = (patient: string) => ({
        resourceType: 'Observation', status: 'final', code: { coding: [{ system: 'http://loinc.org', code: '8310-5', display: 'Body temperature' }] },
        subject: { reference: `Patient/${patient}` }, effectiveDateTime: '2026-11-26T08:00:00Z', valueQuantity: { value: 37.1, unit: 'Cel', system: 'http://unitsofmeasure.org', code: 'Cel' },
      });
      assert.equal((await as.careHome.post('Observation', observation(resident))).status, 201, 'a care home records its resident');
      const refused = await as.careHome.post('Observation', observation(outsider));
      assert.equal(refused.status, 403, 'nor another home\'s resident');
      const encounter = byType('Encounter')[0];
      assert.equal((await as.careHome.put(`Encounter/${encounter.id}`, encounter)).status, 403, 'a care home cannot change a hospital encounter');
      assert.equal((await as.wardNurse.put(`Encounter/${encounter.id}`, encounter)).status, 200, 'the ward can');
      // Moving an observation from a resident into an outsider's record is refused too.
      const own = byType('Observation').find((o) => compartmentOf(o) === resident)!;
      assert.equal((await as.careHome.put(`Observation/${own.id}`, { ...own, subject: { reference: `Patient/${outsider}` } })).status, 403);

      const before = (await t.fhir.get(`Observation?subject=Patient/${resident}&_summary=count`)).body.total;
      const tx = await as.careHome.post('', {
        resourceType: 'Bundle', type: 'transaction',
        entry: [
          { fullUrl: 'urn:uuid:0b6e7d7e-0000-4000-8000-000000000001', resource: observation(resident), request: { method: 'POST', url: 'Observation' } },
          { fullUrl: 'urn:uuid:0b6e7d7e-0000-4000-8000-000000000002', resource: observation(outsider), request: { method: 'POST', url: 'Observation' } },
        ],
      });
      assert.equal(tx.status, 403);
      assert.equal((await t.fhir.get(`Observation?subject=Patient/${resident}&_summary=count`)).body.total, before, 'all or nothing');
      // A conditional create must not answer with (or reveal) another person's resource.
      const theirs = byType('Observation').find((o) => compartmentOf(o) === outsider)!;
      const conditional = await as.careHome.post('Observation', observation(resident), { 'if-none-exist': `_id=${theirs.id}` });
      assert.equal(conditional.status, 201, 'no match is visible, so it creates');
      assert.notEqual(conditional.body.id, theirs.id);
    });

    // Conditional criteria are a search run for the caller: whether they match (200, 201, 412) tells what the search would.
    it('conditional criteria need the rights a search by the same criteria needs, refused before they are evaluated', async () => {
      const broker = fhirClient(t.base, await tokenFor({ role: 'broker', org: 'LA918' }));
      const person = 'demo-pat-vm101-04';
      assert.ok(referred('LA918').includes(person), 'referred to the council: the broker sees them');
      const refusedFor = (res: any, type: string, what: string) => {
        const outcome = res.body.issue ? res.body : res.body.entry?.[0]?.response?.outcome;
        assert.equal(res.body.issue ? res.status : Number(res.body.entry?.[0]?.response?.status), 403, `${what}: ${JSON.stringify(res.body)}`);
        assert.match(outcome.issue[0].diagnostics, new RegExp(`is a search.*does not allow search on ${type} resources`), what);
      };
      // The same answer whether or not the person has the condition: nothing is evaluated.
      const about = (subject: string) => ({ resourceType: 'Bundle', type: 'transaction', entry: [{ resource: { resourceType: 'Communication', status: 'completed', subject: { reference: subject } }, request: { method: 'POST', url: 'Communication' } }] });
      for (const code of ['38341003', '13645005']) {
        refusedFor(await broker.post('', about(`Patient?_id=${person}&_has:Condition:subject:code=${code}`)), 'Condition', `conditional reference through _has, ${code}`);
      }
      assert.equal((await broker.post('', about(`Patient?_id=${person}`))).status, 200, 'criteria the broker may search still resolve');

      const chained = `patient=Patient/${person}&focus:Condition.clinical-status=active`;
      const task = { resourceType: 'Task', status: 'requested', intent: 'order', for: { reference: `Patient/${person}` }, description: 'Arrange a care package' };
      refusedFor(await broker.post('Task', task, { 'if-none-exist': chained }), 'Condition', 'If-None-Exist');
      refusedFor(await broker.put(`Task?${chained}`, task), 'Condition', 'conditional update');
      refusedFor(await broker.post('', { resourceType: 'Bundle', type: 'transaction', entry: [{ resource: task, request: { method: 'POST', url: 'Task', ifNoneExist: chained } }] }), 'Condition', 'transaction If-None-Exist');
      refusedFor(await broker.post('', { resourceType: 'Bundle', type: 'transaction', entry: [{ resource: task, request: { method: 'PUT', url: `Task?${chained}` } }] }), 'Condition', 'transaction conditional update');
      refusedFor(await broker.post('', { resourceType: 'Bundle', type: 'batch', entry: [{ resource: task, request: { method: 'POST', url: 'Task', ifNoneExist: chained } }] }), 'Condition', 'batch If-None-Exist');
      const admin = fhirClient(t.base, await tokenFor({ role: 'admin' }));
      const stay = byType('Encounter').find((e) => e.status === 'in-progress')!;
      refusedFor(await admin.delete(`Organization?_has:Encounter:service-provider:subject=Patient/${refId(stay.subject)}`), 'Encounter', 'conditional delete');
      assert.equal((await t.fhir.get(`Organization/${refId(stay.serviceProvider)}`)).status, 200, 'the hospital is still there');

      const identified = { ...task, identifier: [{ system: 'https://carebridge.example/test/broker-task', value: 'criteria-1' }] };
      const criteria = { 'if-none-exist': `identifier=https://carebridge.example/test/broker-task|criteria-1&patient=Patient/${person}` };
      assert.equal((await broker.post('Task', identified, criteria)).status, 201, 'criteria the broker may search: created');
      assert.equal((await broker.post('Task', identified, criteria)).status, 200, 'and found the second time');
    });

    it('a write must keep to the people the writer may see: every person it names, not one of them', async () => {
      const careHome = PERSONAS.careHome;
      const [resident, neighbour] = careHome.sees;
      // Someone no persona sees, so what this test stores changes no other persona's view.
      const outsider = allPatients.find((id) => Object.values(PERSONAS).every((p) => !p.sees.includes(id)))!;
      assert.ok(outsider && careHome.sees.length > 1);
      const observation = (subject: string, performers: string[]) => ({
        resourceType: 'Observation', status: 'final', code: { coding: [{ system: 'http://loinc.org', code: '8867-4', display: 'Heart rate' }] },
        subject: { reference: `Patient/${subject}` }, performer: performers.map((p) => ({ reference: `Patient/${p}` })), effectiveDateTime: '2026-11-26T09:00:00Z',
        valueQuantity: { value: 72, unit: '/min', system: 'http://unitsofmeasure.org', code: '/min' },
      });
      const refusedNaming = (res: any, what: string) => {
        assert.equal(res.status, 403, `${what}: ${JSON.stringify(res.body)}`);
        assert.match(res.body.issue[0].diagnostics, new RegExp(`Patient/${outsider}, a person outside the records you may see`), what);
      };
      refusedNaming(await as.careHome.post('Observation', observation(outsider, [resident])), 'about an outsider, performed by a resident');
      refusedNaming(await as.careHome.post('Observation', observation(resident, [outsider])), 'about a resident, naming an outsider as performer');
      refusedNaming(await as.careHome.post('Communication', { resourceType: 'Communication', status: 'completed', subject: { reference: `Patient/${resident}` }, recipient: [{ reference: `Patient/${outsider}` }] }), 'a message to an outsider');
      refusedNaming(await as.careHome.post('', {
        resourceType: 'Bundle', type: 'transaction',
        entry: [{ fullUrl: 'urn:uuid:0b6e7d7e-0000-4000-8000-0000000000a1', resource: observation(outsider, [resident]), request: { method: 'POST', url: 'Observation' } }],
      }), 'in a transaction');
      const own = await as.careHome.post('Observation', observation(resident, [neighbour]));
      assert.equal(own.status, 201, 'two residents of the home: both are theirs');
      refusedNaming(await as.careHome.put(`Observation/${own.body.id}`, { ...own.body, performer: [{ reference: `Patient/${outsider}` }] }), 'an update that names an outsider');
      // What is there now counts too: a resource already in an outsider's record is not the home's to change.
      const shared = await t.fhir.post('Observation', observation(resident, [outsider]));
      assert.equal(shared.status, 201);
      const { performer: _, ...withoutOutsider } = shared.body;
      refusedNaming(await as.careHome.put(`Observation/${shared.body.id}`, withoutOutsider), 'an update of a resource in an outsider\'s record');
      refusedNaming(await as.careHome.request('PATCH', `Observation/${shared.body.id}`, [{ op: 'remove', path: '/performer' }], { 'content-type': 'application/json-patch+json' }), 'a patch of one');
      const stored = await t.fhir.get('Observation?code=http://loinc.org|8867-4&date=2026-11-26T09:00:00Z&_count=100');
      assert.deepEqual(sorted(ids(stored.body)), sorted([own.body.id, shared.body.id]), 'nothing refused was stored');
      assert.equal((await t.fhir.get(`Communication?recipient=Patient/${outsider}&_summary=count`)).body.total, 0);
    });

    it('the role matrix limits types, and token scopes narrow it further', async () => {
      const broker = fhirClient(t.base, await tokenFor({ role: 'broker', org: 'LA918' }));
      const referredPerson = PERSONAS.socialWorker.sees[0];
      assert.equal((await broker.get(`Patient/${referredPerson}`)).status, 200);
      const obs = await broker.get(`Observation?subject=Patient/${referredPerson}`);
      assert.equal(obs.status, 403, 'a broker arranges care; clinical detail is not theirs');
      const po = fhirClient(t.base, await tokenFor({ role: 'privacy-officer', org: 'LA918' }));
      assert.equal((await po.get(`Patient/${referredPerson}`)).status, 403, 'privacy officers do not read care records');
      assert.equal((await po.get('AuditEvent?_count=1')).status, 200);
      const admin = fhirClient(t.base, await tokenFor({ role: 'admin', org: 'LA918' }));
      assert.equal((await admin.get('Organization?_count=1')).status, 200);
      assert.equal((await admin.get('Patient?_count=1')).status, 403);
      const narrow = fhirClient(t.base, await tokenFor(PERSONAS.careHome, 'user/Observation.rs'));
      assert.equal((await narrow.get(`Patient/${PERSONAS.careHome.sees[0]}`)).status, 403, 'the token was not granted Patient');
      assert.equal((await narrow.get('Observation?_count=1')).status, 200);
    });

    it('dissent shuts out care arrangement but not direct care; relationships follow the record as it changes', async () => {
      const person = PERSONAS.socialWorker.sees[0];
      const broker = fhirClient(t.base, await tokenFor({ role: 'broker', org: 'LA918' }));
      assert.equal((await broker.get(`Patient/${person}`)).status, 200);
      const dissent = await t.fhir.post('Consent', {
        resourceType: 'Consent', status: 'active', scope: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/consentscope', code: 'patient-privacy' }] },
        category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'OPTOUT' }] }], patient: { reference: `Patient/${person}` }, provision: { type: 'deny' },
      });
      assert.equal(dissent.status, 201);
      assert.equal((await broker.get(`Patient/${person}`)).status, 403, 'dissent: the broker no longer sees them');
      assert.equal((await as.socialWorker.get(`Patient/${person}`)).status, 200, 'the social worker giving care still does');
      assert.equal((await t.fhir.delete(`Consent/${dissent.body.id}`)).status, 200);
      assert.equal((await broker.get(`Patient/${person}`)).status, 200, 'withdrawn dissent restores it at once');

      // A person's own dissent never shuts them out of their own record, nor stops them withdrawing it.
      const self = PERSONAS.person.sees[0];
      const own = await t.fhir.post('Consent', {
        resourceType: 'Consent', status: 'active', scope: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/consentscope', code: 'patient-privacy' }] },
        category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'OPTOUT' }] }], patient: { reference: `Patient/${self}` }, provision: { type: 'deny' },
      });
      assert.equal(own.status, 201);
      assert.equal((await as.person.get(`Patient/${self}`)).status, 200, 'their own record, read');
      assert.deepEqual(ids((await as.person.get('Patient?_count=10')).body), [self], 'and found');
      const theirObservation = byType('Observation').find((o) => compartmentOf(o) === self)!;
      assert.equal((await as.person.get(`Observation/${theirObservation.id}`)).status, 200, 'what is in it');
      const withdrawn = await as.person.put(`Consent/${own.body.id}`, { ...own.body, status: 'inactive' });
      assert.equal(withdrawn.status, 200, `they withdraw it themselves: ${JSON.stringify(withdrawn.body.issue ?? '')}`);

      // Discharge from hospital ends the ward's relationship at once.
      const enc = byType('Encounter').find((e) => refId(e.subject) === PERSONAS.wardNurse.sees[0])!;
      assert.equal((await as.wardNurse.get(`Patient/${refId(enc.subject)}`)).status, 200);
      assert.equal((await t.fhir.put(`Encounter/${enc.id}`, { ...enc, status: 'finished', period: { ...enc.period, end: '2026-11-26T10:00:00Z' } })).status, 200);
      assert.equal((await as.wardNurse.get(`Patient/${refId(enc.subject)}`)).status, 403, 'discharged: no longer the ward\'s patient');
    });

    it('break-glass: refused, declared with a reason, allowed, audited, queued for review', async () => {
      const nurse = { role: 'ward-nurse' as const, org: 'RX9' };
      const outsider = allPatients.find((id) => !inpatients('RX9').includes(id))!;
      const auth = await tokenFor(nurse, 'user/*.cruds', 'nurse-on-call');
      const client = fhirClient(t.base, auth);
      assert.equal((await client.get(`Patient/${outsider}`)).status, 403);
      const declare = (body: unknown, headers = auth) => fetch(`${t.url}/access/break-glass`, { method: 'POST', headers: { ...headers, 'content-type': 'application/json' }, body: JSON.stringify(body) });
      const vague = await declare({ patient: `Patient/${outsider}`, reasonCode: 'emergency', reason: 'need' });
      assert.equal(vague.status, 400);
      assert.match((await vague.json()).issue[0].diagnostics, /at least 10 characters/);
      assert.equal((await declare({ patient: 'Patient/nobody-here', reasonCode: 'emergency', reason: 'Collapsed in ED, no records' })).status, 404);
      const carer = await tokenFor({ role: 'carer', fhirUser: PERSONAS.carer.fhirUser });
      assert.equal((await declare({ patient: `Patient/${outsider}`, reasonCode: 'emergency', reason: 'I want to see their notes' }, carer)).status, 403, 'carers cannot break the glass');
      const granted = await declare({ patient: `Patient/${outsider}`, reasonCode: 'emergency', reason: 'Brought in unconscious to ED; care home not yet known' });
      assert.equal(granted.status, 201);
      const grant = await granted.json();
      assert.equal((await client.get(`Patient/${outsider}`)).status, 200, 'allowed while the grant lasts');
      assert.equal((await client.get(`Patient/${outsider}/$everything`)).status, 200);

      const po = await tokenFor({ role: 'privacy-officer', org: 'RX9' });
      const queue = await (await fetch(`${t.url}/access/break-glass?open=true`, { headers: po })).json();
      const alert = queue.alerts.find((a: any) => a.id === grant.id);
      assert.ok(alert, 'the alert is in the privacy officer\'s queue');
      assert.equal(alert.patientId, outsider);
      assert.equal(alert.userId, userIds.get('nurse-on-call'));
      assert.equal((await fetch(`${t.url}/access/break-glass?open=true`, { headers: auth })).status, 403, 'the queue is the privacy officers\'');

      let events: any;
      for (let i = 0; i < 50; i++) {
        events = (await fhirClient(t.base, po).get(`AuditEvent?entity=Patient/${outsider}&_sort=-date&_count=100`)).body;
        if ((events.entry ?? []).some((e: any) => e.resource.agent?.[0]?.purposeOfUse?.[0]?.coding?.[0]?.code === 'BTG')) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.ok(events.entry.some((e: any) => e.resource.agent[0].purposeOfUse[0].coding[0].code === 'BTG'), 'the break-glass is in the audit, under purpose BTG');
      // What the nurse saw under the grant is audited as break-glass too, for the review; their own patients are not.
      let own: string | undefined;
      for (const id of inpatients('RX9')) if ((await client.get(`Patient/${id}`)).status === 200) { own = id; break; }
      assert.ok(own, 'one of the ward\'s inpatients is still in hospital');
      const nurseId = userIds.get('nurse-on-call');
      const purposeOf = (e: any) => [e.agent[0].purposeOfUse[0].coding[0].code, e.purposeOfEvent?.[0]?.coding?.[0]?.code ?? e.agent[0].purposeOfUse[0].coding[0].code];
      const underGrant = await waitForAudit(fhirClient(t.base, po), `patient=Patient/${outsider}&altid=${nurseId}&subtype=read,operation&outcome=0`, (e) => e.length >= 2);
      assert.deepEqual([...new Set(underGrant.map((e) => purposeOf(e)[0]))], ['BTG'], 'the reads and $everything under the grant');
      const count = async (query: string) => (await fhirClient(t.base, po).get(`AuditEvent?patient=Patient/${outsider}&altid=${nurseId}&purpose=TREAT&${query}&_summary=count`)).body.total;
      assert.equal(await count('outcome=0'), 0, 'nothing seen of the person under the nurse\'s own purpose');
      assert.equal(await count('outcome=4'), 1, 'the read refused before the grant, filed under the person');
      const ownRead = await waitForAudit(fhirClient(t.base, po), `patient=Patient/${own}&altid=${nurseId}&subtype=read`);
      assert.equal(purposeOf(ownRead[0])[0], 'TREAT');

      const review = await fetch(`${t.url}/access/break-glass/${grant.id}/review`, { method: 'POST', headers: { ...po, 'content-type': 'application/json' }, body: JSON.stringify({ outcome: 'appropriate', note: 'ED attendance confirmed' }) });
      assert.equal(review.status, 200);
      const after = await (await fetch(`${t.url}/access/break-glass?open=true`, { headers: po })).json();
      assert.ok(!after.alerts.some((a: any) => a.id === grant.id), 'reviewed alerts leave the queue');
      assert.equal((await fetch(`${t.url}/access/break-glass/${grant.id}/review`, { method: 'POST', headers: { ...po, 'content-type': 'application/json' }, body: JSON.stringify({ outcome: 'appropriate' }) })).status, 409);
    });

    it('a break-glass grant ends after its hours', async () => {
      const outsider = allPatients.find((id) => !residents('VM101').includes(id))!;
      const userId = await addPerson(t, { username: 'early-shift', role: 'care-home-staff', org: 'VM101', alsoAs: [{ org: 'VM101', role: 'care-home-manager' }] });
      const actor = { kind: 'user' as const, userId, name: 'Early shift', organisation: 'VM101', role: 'care-home-staff' as const, purpose: 'TREAT' as const, scope: 'user/*.cruds' };
      await declareBreakGlass(t.server.driver, actor, { patientId: outsider, reasonCode: 'emergency', reason: 'Fell in the garden, ambulance called' }, Date.now() - 5 * 3_600_000);
      const client = fhirClient(t.base, { authorization: `Bearer ${await personToken(t, 'early-shift', 'user/*.cruds', 'care-home-staff')}` });
      assert.equal((await client.get(`Patient/${outsider}`)).status, 403, 'a grant from five hours ago has expired');
      const other = fhirClient(t.base, { authorization: `Bearer ${await personToken(t, 'early-shift', 'user/*.cruds', 'care-home-manager')}` });
      await declareBreakGlass(t.server.driver, actor, { patientId: outsider, reasonCode: 'emergency', reason: 'Fell in the garden, ambulance called' });
      assert.equal((await client.get(`Patient/${outsider}`)).status, 200);
      assert.equal((await other.get(`Patient/${outsider}`)).status, 403, 'a grant is for the role it was declared in');
    });

    // Last: what these admit (a new person, a resident through break-glass) would change the other tests' oracle.
    // demo-pat-vm102-01 lives at another home, is in no hospital and has no referral to the council.
    const newcomerOf = 'demo-pat-vm102-01';
    const stay = (patient: string, ods = 'VM101') => ({ resourceType: 'EpisodeOfCare', status: 'active', patient: { reference: patient }, managingOrganization: { reference: `Organization/${orgId(ods)}` }, period: { start: '2026-11-27' } });
    const refusedNaming = (res: any, what: string, patient = newcomerOf) => {
      assert.equal(res.status, 403, `${what}: ${JSON.stringify(res.body)}`);
      assert.match(res.body.issue[0].diagnostics, new RegExp(`Patient/${patient}, a person outside the records you may see.*declare break-glass`), what);
    };
    const manager = async () => {
      const auth = await tokenFor({ role: 'care-home-manager', org: 'VM101' });
      return { auth, client: fhirClient(t.base, auth) };
    };
    /** Everything that could make a relationship with the person: their stays, admissions and referrals. */
    const relationshipsOf = async (patient: string) => (await t.fhir.get(`EpisodeOfCare?patient=Patient/${patient}&_summary=count`)).body.total
      + (await t.fhir.get(`Encounter?subject=Patient/${patient}&_summary=count`)).body.total
      + (await t.fhir.get(`ServiceRequest?subject=Patient/${patient}&_summary=count`)).body.total;

    it('a care home cannot make someone its resident by writing their stay: the write is refused and they stay out of reach', async () => {
      const outsider = newcomerOf;
      assert.ok(!residents('VM101').includes(outsider));
      const { client: home } = await manager();
      const before = await relationshipsOf(outsider);
      assert.equal((await home.get(`Patient/${outsider}`)).status, 403);
      refusedNaming(await home.post('EpisodeOfCare', stay(`Patient/${outsider}`)), 'another home\'s resident, admitted by writing their stay');
      assert.equal((await home.get(`Patient/${outsider}`)).status, 403, 'still not the home\'s');
      assert.equal((await home.get(`Patient/${outsider}/$everything`)).status, 403);
      refusedNaming(await home.post('', { resourceType: 'Bundle', type: 'transaction', entry: [{ resource: stay(`Patient/${outsider}`), request: { method: 'POST', url: 'EpisodeOfCare' } }] }), 'in a transaction');
      const own = byType('EpisodeOfCare').find((e) => e.status === 'active' && refId(e.managingOrganization) === orgId('VM101'))!;
      refusedNaming(await home.put(`EpisodeOfCare/${own.id}`, { ...own, patient: { reference: `Patient/${outsider}` } }), 'by moving a resident\'s stay to them');
      assert.equal((await home.get(`Patient/${outsider}`)).status, 403);
      assert.equal(await relationshipsOf(outsider), before, 'nothing refused was stored');
      assert.equal((await t.fhir.get(`EpisodeOfCare/${own.id}`)).body.meta.versionId, '1', 'the resident\'s stay is as it was');
    });

    it('a council cannot refer someone to itself, nor a ward admit someone to its hospital, to read their record', async () => {
      const outsider = newcomerOf;
      assert.ok(!referred('LA918').includes(outsider) && !inpatients('RX9').includes(outsider));
      const before = await relationshipsOf(outsider);
      const council = { reference: `Organization/${orgId('LA918')}` };
      refusedNaming(await as.socialWorker.post('ServiceRequest', {
        resourceType: 'ServiceRequest', status: 'active', intent: 'order', subject: { reference: `Patient/${outsider}` }, performer: [council],
        code: { text: 'Care Act assessment' }, authoredOn: '2026-11-27',
      }), 'a referral to the social worker\'s own council');
      refusedNaming(await as.socialWorker.post('EpisodeOfCare', { resourceType: 'EpisodeOfCare', status: 'active', patient: { reference: `Patient/${outsider}` }, managingOrganization: council }), 'a package of care the council manages');
      refusedNaming(await as.wardNurse.post('Encounter', {
        resourceType: 'Encounter', status: 'in-progress', class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'IMP' },
        subject: { reference: `Patient/${outsider}` }, serviceProvider: { reference: `Organization/${orgId('RX9')}` }, period: { start: '2026-11-27T08:00:00Z' },
      }), 'an admission to the ward nurse\'s own hospital');
      assert.equal((await as.socialWorker.get(`Patient/${outsider}`)).status, 403);
      assert.equal((await as.wardNurse.get(`Patient/${outsider}`)).status, 403);
      assert.equal(await relationshipsOf(outsider), before, 'nothing refused was stored');
    });

    it('a person new to the record, created in the same transaction as their stay, is the home\'s to record; nobody else comes in with them', async () => {
      const { client: home } = await manager();
      const admitted = await home.post('', {
        resourceType: 'Bundle', type: 'transaction',
        entry: [
          { fullUrl: 'urn:uuid:0b6e7d7e-0000-4000-8000-0000000000b1', resource: { resourceType: 'Patient', name: [{ family: 'Newcome', given: ['Ada'] }], birthDate: '1938-04-02' }, request: { method: 'POST', url: 'Patient' } },
          { resource: stay('urn:uuid:0b6e7d7e-0000-4000-8000-0000000000b1'), request: { method: 'POST', url: 'EpisodeOfCare' } },
        ],
      });
      assert.equal(admitted.status, 200, JSON.stringify(admitted.body));
      const newcomer = admitted.body.entry[0].response.location.split('/')[1];
      assert.equal((await home.get(`Patient/${newcomer}`)).status, 200, 'the new resident is the home\'s');
      const before = await relationshipsOf(newcomerOf);
      refusedNaming(await home.post('', {
        resourceType: 'Bundle', type: 'transaction',
        entry: [
          { fullUrl: 'urn:uuid:0b6e7d7e-0000-4000-8000-0000000000b2', resource: { resourceType: 'Patient', name: [{ family: 'Othername', given: ['Bea'] }] }, request: { method: 'POST', url: 'Patient' } },
          { resource: stay(`Patient/${newcomerOf}`), request: { method: 'POST', url: 'EpisodeOfCare' } },
        ],
      }), 'a new person in the transaction does not open an existing one');
      assert.equal((await t.fhir.get('Patient?family=Othername&_summary=count')).body.total, 0, 'all or nothing');
      assert.equal(await relationshipsOf(newcomerOf), before);
    });

    it('admitting someone the home has no relationship with yet goes through break-glass, which allows the stay to be written', async () => {
      const outsider = newcomerOf;
      const { auth, client: home } = await manager();
      const declared = await fetch(`${t.url}/access/break-glass`, {
        method: 'POST', headers: { ...auth, 'content-type': 'application/json' },
        body: JSON.stringify({ patient: `Patient/${outsider}`, reasonCode: 'new-referral', reason: 'Moving here from VM102 today; placement agreed by the council' }),
      });
      assert.equal(declared.status, 201);
      const moved = await home.post('EpisodeOfCare', stay(`Patient/${outsider}`));
      assert.equal(moved.status, 201, JSON.stringify(moved.body));
      assert.equal((await home.get(`Patient/${outsider}`)).status, 200);
    });

    // The same rule the other way: a write is decided on who was the writer's before it, not after it.
    it('a ward discharges its own patient, although the finished stay takes them out of its records', async () => {
      const inpatient = inpatients('RX9').find((id) => id !== PERSONAS.wardNurse.sees[0])!;
      const enc = byType('Encounter').find((e) => refId(e.subject) === inpatient && e.status === 'in-progress')!;
      assert.equal((await as.wardNurse.get(`Patient/${inpatient}`)).status, 200);
      const finished = await as.wardNurse.put(`Encounter/${enc.id}`, { ...enc, status: 'finished', period: { ...enc.period, end: '2026-11-27T10:00:00Z' } });
      assert.equal(finished.status, 200, JSON.stringify(finished.body));
      assert.equal((await as.wardNurse.get(`Patient/${inpatient}`)).status, 403, 'discharged: no longer the ward\'s patient');
    });

    it('an attempt on someone\'s record that is refused is audited under them, and shows in their own "who has looked" list', async () => {
      const person = PERSONAS.person.sees[0];
      // Someone with no relationship to the person now (earlier tests changed some relationships).
      let outsider = '';
      for (const name of ['gp', 'wardNurse', 'socialWorker', 'careHome']) if (!outsider && (await as[name].get(`Patient/${person}`)).status === 403) outsider = name;
      assert.ok(outsider);
      const userId = userIds.get(`${PERSONAS[outsider].role}-${PERSONAS[outsider].org}`)!;
      const theirObservation = byType('Observation').find((o) => compartmentOf(o) === person)!;
      // Past the millisecond of the probe's own refused read above, which would otherwise count as a fourth.
      await new Promise((resolve) => setTimeout(resolve, 5));
      const since = `date=ge${new Date().toISOString()}`;
      assert.equal((await as[outsider].get(`Patient/${person}`)).status, 403);
      assert.equal((await as[outsider].get(`Observation/${theirObservation.id}`)).status, 403);
      assert.equal((await as[outsider].get(`Patient/${person}/$everything`)).status, 403);
      const refused = await waitForAudit(t.fhir, `patient=Patient/${person}&altid=${userId}&outcome=4&${since}`, (e) => e.length >= 3);
      assert.deepEqual(refused.map((e) => e.subtype?.[0]?.code).sort(), ['operation', 'read', 'read']);
      for (const e of refused) {
        assert.match(e.outcomeDesc, /^HTTP 403/);
        assert.deepEqual(e.entity.filter((x: any) => x.role?.code === '1').map((x: any) => x.what.reference), [`Patient/${person}`]);
      }
      const own = await as.person.get(`AuditEvent?patient=Patient/${person}&altid=${userId}&${since}&_count=100`);
      assert.equal(own.status, 200);
      assert.equal(own.body.entry?.length, 3, 'the person sees the three refused attempts on their record');
    });

    /** Another home's resident the care home cannot see now (earlier tests broke the glass for some). */
    const homeOutsider = async () => {
      for (const id of allPatients.filter((p) => !PERSONAS.careHome.sees.includes(p))) if ((await as.careHome.get(`Patient/${id}`)).status === 403) return id;
      throw new Error('the care home sees everyone');
    };
    /** An AuditEvent search for what is audited from now on (after a millisecond: what came before may share this one). */
    const auditedFromNow = async () => {
      await new Promise((resolve) => setTimeout(resolve, 2));
      return `date=ge${new Date().toISOString()}`;
    };

    // Care-home staff probing another home's resident inside a Bundle: the batch answers 200 with the entries
    // refused, the transaction 403. Each probe is an attempt on the person's record, as the read on its own is.
    it('an attempt refused inside a batch or transaction is audited under the person, as the same read on its own is', async () => {
      const person = PERSONAS.person.sees[0];
      let outsider = '';
      for (const name of ['careHome', 'gp', 'wardNurse', 'socialWorker']) if (!outsider && (await as[name].get(`Patient/${person}`)).status === 403) outsider = name;
      assert.ok(outsider);
      const userId = userIds.get(`${PERSONAS[outsider].role}-${PERSONAS[outsider].org}`)!;
      const resident = PERSONAS[outsider].sees.find((id) => id !== person)!;
      const since = await auditedFromNow();
      const get = (url: string) => ({ request: { method: 'GET', url } });

      assert.equal((await as[outsider].get(`Patient/${person}`)).status, 403);
      const batch = await as[outsider].post('', { resourceType: 'Bundle', type: 'batch', entry: [get(`Patient/${person}`), get(`Patient/${person}/$everything`)] });
      assert.equal(batch.status, 200, 'a batch answers 200 whatever its entries did');
      assert.deepEqual(batch.body.entry.map((e: any) => e.response.status), ['403', '403']);
      const transaction = await as[outsider].post('', { resourceType: 'Bundle', type: 'transaction', entry: [get(`Patient/${person}`)] });
      assert.equal(transaction.status, 403);
      // One of their own residents and the person, in one batch.
      const mixed = await as[outsider].post('', { resourceType: 'Bundle', type: 'batch', entry: [get(`Patient/${resident}`), get(`Patient/${person}`)] });
      assert.deepEqual(mixed.body.entry.map((e: any) => e.response.status), ['200 OK', '403']);

      const refused = await waitForAudit(t.fhir, `patient=Patient/${person}&altid=${userId}&outcome=4&${since}`, (e) => e.length >= 4);
      assert.equal(refused.length, 4, 'the read, both batches and the transaction, each a refused attempt on the person');
      const patientsOf = (e: any) => e.entity.filter((x: any) => x.role?.code === '1').map((x: any) => x.what.reference).sort();
      const find = (desc: RegExp) => refused.find((e) => desc.test(e.outcomeDesc));
      const directEvent = find(/^HTTP 403: GET Patient\//);
      assert.equal(directEvent?.subtype[0].code, 'read');
      const transactionEvent = find(/^HTTP 403: POST/);
      assert.deepEqual(patientsOf(transactionEvent), [`Patient/${person}`], 'the transaction');
      const batchEvent = find(/^HTTP 200: POST .*2 entries refused/);
      assert.ok(batchEvent, 'the batch is audited as not a plain success');
      assert.deepEqual(patientsOf(batchEvent), [`Patient/${person}`]);
      const mixedEvent = find(/^HTTP 200: POST .*1 entry refused/);
      assert.deepEqual(patientsOf(mixedEvent), [`Patient/${person}`, `Patient/${resident}`].sort(), 'the resident read, and the person refused');
      assert.ok(!mixedEvent.outcomeDesc.includes(person) && !mixedEvent.outcomeDesc.includes(resident), 'the description names nobody');

      const own = await as.person.get(`AuditEvent?patient=Patient/${person}&altid=${userId}&${since}&_count=100`);
      assert.equal(own.status, 200);
      assert.equal(own.body.entry?.length, 4, 'the person sees every refused attempt on their record');
      assert.ok(!JSON.stringify(own.body).includes(resident), 'and nothing of the resident the same batch read');
    });

    // An allergy filed on the wrong person and then corrected: its first version is about someone the home
    // does not look after, and stays theirs in history although the resource is now the resident's.
    it('a version written about someone else stays out of reach after the resource moves to one\'s own resident', async () => {
      const resident = PERSONAS.careHome.sees[0];
      // Someone the home cannot see now (earlier tests broke the glass for some outsiders).
      let outsider = '';
      for (const id of allPatients.filter((p) => !PERSONAS.careHome.sees.includes(p))) {
        if ((await as.careHome.get(`Patient/${id}`)).status === 403) { outsider = id; break; }
      }
      assert.ok(outsider);
      const allergy = (patient: string, note: string) => ({
        resourceType: 'AllergyIntolerance', clinicalStatus: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical', code: 'active' }] },
        code: { text: 'Penicillin' }, patient: { reference: `Patient/${patient}` }, note: [{ text: note }],
      });
      const filed = await t.fhir.post('AllergyIntolerance', allergy(outsider, 'Rash after amoxicillin, 2019 (outsider)'));
      assert.equal(filed.status, 201);
      const id = filed.body.id as string;
      assert.equal((await t.fhir.put(`AllergyIntolerance/${id}`, { ...allergy(resident, 'Recorded for this resident'), id })).status, 200);

      assert.equal((await as.careHome.get(`AllergyIntolerance/${id}`)).status, 200, 'the resident\'s allergy as it is now');
      assert.equal((await as.careHome.get(`AllergyIntolerance/${id}/_history/2`)).status, 200, 'its current version');
      const old = await as.careHome.get(`AllergyIntolerance/${id}/_history/1`);
      assert.equal(old.status, 403, 'the version about the outsider');
      assert.match(old.body.issue[0].diagnostics, /Version 1 of AllergyIntolerance\/.* outside the records you may see/);
      for (const path of [`AllergyIntolerance/${id}/_history`, 'AllergyIntolerance/_history?_count=1000']) {
        const history = await as.careHome.get(path);
        assert.equal(history.status, 200, path);
        const versions = (history.body.entry ?? []).filter((e: any) => e.resource?.id === id);
        assert.deepEqual(versions.map((e: any) => e.resource.meta.versionId), ['2'], `${path}: only the version about the resident`);
        assert.ok(!JSON.stringify(history.body).includes('(outsider)'), `${path}: nothing of the first version`);
      }
      // Whoever may see the outsider still sees the whole history.
      const all = await t.fhir.get(`AllergyIntolerance/${id}/_history`);
      assert.deepEqual(all.body.entry.map((e: any) => e.resource.meta.versionId), ['2', '1']);
    });

    it('a history\'s total counts the versions shown, not those about someone else', async () => {
      const resident = PERSONAS.careHome.sees[0];
      const outsider = await homeOutsider();
      const observation = (patient: string) => ({
        resourceType: 'Observation', status: 'final', code: { text: 'Weight' }, subject: { reference: `Patient/${patient}` },
        valueQuantity: { value: 61, unit: 'kg', system: 'http://unitsofmeasure.org', code: 'kg' },
      });
      const filed = await t.fhir.post('Observation', observation(outsider));
      const id = filed.body.id as string;
      assert.equal((await t.fhir.put(`Observation/${id}`, { ...observation(resident), id })).status, 200);
      const history = await as.careHome.get(`Observation/${id}/_history`);
      assert.equal(history.status, 200);
      assert.equal(history.body.entry.length, 1, 'the version about the resident');
      assert.equal(history.body.total, 1, 'the total says what the page holds: one version');
      assert.equal((await t.fhir.get(`Observation/${id}/_history`)).body.total, 2, 'whoever sees both people is told of both versions');
    });

    it('a deleted resource outside one\'s records answers as a live one does (403, audited under the person); one\'s own answers 410', async () => {
      const resident = PERSONAS.careHome.sees[0];
      const outsider = await homeOutsider();
      const userId = userIds.get('care-home-staff-VM101')!;
      const observation = (patient: string) => ({ resourceType: 'Observation', status: 'final', code: { text: 'Pulse' }, subject: { reference: `Patient/${patient}` } });
      const live = (await t.fhir.post('Observation', observation(outsider))).body.id as string;
      const deleted = (await t.fhir.post('Observation', observation(outsider))).body.id as string;
      const ownDeleted = (await t.fhir.post('Observation', observation(resident))).body.id as string;
      for (const id of [deleted, ownDeleted]) assert.equal((await t.fhir.delete(`Observation/${id}`)).status, 200);
      const since = await auditedFromNow();

      const liveRead = await as.careHome.get(`Observation/${live}`);
      const deletedRead = await as.careHome.get(`Observation/${deleted}`);
      assert.equal(liveRead.status, 403);
      assert.equal(deletedRead.status, 403, 'not 410: that would tell the outsider it was there');
      assert.equal(deletedRead.body.issue[0].diagnostics, liveRead.body.issue[0].diagnostics.replace(live, deleted), 'in the same words');
      const deletion = await as.careHome.get(`Observation/${deleted}/_history/2`);
      assert.equal(deletion.status, 403, 'nor its deletion version');
      assert.equal((await as.careHome.get(`Observation/${deleted}/_history/1`)).status, 403);
      assert.equal((await as.careHome.get(`Observation/${ownDeleted}`)).status, 410, 'the resident\'s deleted observation');
      assert.equal((await as.careHome.get(`Observation/${ownDeleted}/_history/2`)).status, 410);
      assert.equal((await as.careHome.get(`Observation/${crypto.randomUUID()}`)).status, 404);
      // The history of one's own deleted resource shows what it was and its deletion; an outsider's is refused.
      const ownHistory = await as.careHome.get(`Observation/${ownDeleted}/_history`);
      assert.equal(ownHistory.status, 200);
      assert.deepEqual(ownHistory.body.entry.map((e: any) => e.request.method), ['DELETE', 'POST']);
      assert.equal((await as.careHome.get(`Observation/${deleted}/_history`)).status, 403);

      const refused = await waitForAudit(t.fhir, `patient=Patient/${outsider}&altid=${userId}&outcome=4&${since}`, (e) => e.length >= 5);
      const asked = (e: any) => e.entity.find((x: any) => x.name)?.name;
      assert.deepEqual(refused.map((e) => `${e.subtype[0].code} ${asked(e)}`).sort(), [
        `history-instance Observation/${deleted}`, `read Observation/${deleted}`, `read Observation/${live}`, `vread Observation/${deleted}`, `vread Observation/${deleted}`,
      ].sort(), 'every attempt, filed under the person');
    });
  });
}
