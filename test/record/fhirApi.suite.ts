// The FHIR API suite, run over real HTTP against each storage engine (see fhirApi.*.test.ts).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type Engine, type TestServer, type FhirClient } from '../support/server.ts';
import { generateSyntheticNhsNumber, SYNTHETIC_TAG, NHS_NUMBER_SYSTEM } from '../../src/record/nhsNumber.ts';

let seed = 42;
const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);

export function patient(family: string, given: string, extra: Record<string, unknown> = {}) {
  return {
    resourceType: 'Patient',
    meta: { tag: [SYNTHETIC_TAG] },
    identifier: [{ system: NHS_NUMBER_SYSTEM, value: generateSyntheticNhsNumber(random) }],
    name: [{ family, given: [given] }],
    ...extra,
  };
}

export function observation(patientId: string, code: string, effective: string, value: number) {
  return {
    resourceType: 'Observation',
    status: 'final',
    code: { coding: [{ system: 'http://loinc.org', code }] },
    subject: { reference: `Patient/${patientId}` },
    effectiveDateTime: effective,
    valueQuantity: { value, unit: '/min', system: 'http://unitsofmeasure.org', code: '/min' },
  };
}

const ids = (bundle: any) => (bundle.entry ?? []).filter((e: any) => e.search?.mode !== 'include').map((e: any) => e.resource.id);

export function fhirApiSuite(engine: Engine): void {
  describe(`FHIR API over HTTP (${engine})`, () => {
    let t: TestServer;
    let fhir: FhirClient;
    before(async () => {
      t = await startTestServer(engine);
      fhir = t.fhir;
    });
    after(async () => t?.close());

    describe('metadata', () => {
      it('lists every resource type with its interactions and search parameters', async () => {
        const r = await fhir.get('metadata');
        assert.equal(r.status, 200);
        assert.equal(r.body.resourceType, 'CapabilityStatement');
        assert.equal(r.body.fhirVersion, '4.0.1');
        const pat = r.body.rest[0].resource.find((x: any) => x.type === 'Patient');
        assert.ok(pat.searchParam.some((p: any) => p.name === 'birthdate' && p.type === 'date'));
        assert.ok(pat.interaction.some((i: any) => i.code === 'patch'));
        assert.ok(r.body.rest[0].resource.length > 140);
        assert.deepEqual(r.body.rest[0].interaction.map((i: any) => i.code).sort(), ['batch', 'history-system', 'transaction']);
      });
    });

    describe('create, read, update, delete', () => {
      it('creates with a server id and reads it back with ETag and Last-Modified', async () => {
        const c = await fhir.post('Patient', patient('Ashworth', 'Edith'));
        assert.equal(c.status, 201);
        assert.match(c.headers.get('location')!, new RegExp(`/fhir/Patient/${c.body.id}/_history/1$`));
        assert.equal(c.headers.get('etag'), 'W/"1"');
        const r = await fhir.get(`Patient/${c.body.id}`);
        assert.equal(r.status, 200);
        assert.equal(r.body.name[0].family, 'Ashworth');
        assert.equal(r.body.meta.versionId, '1');
        assert.equal(r.headers.get('etag'), 'W/"1"');
        assert.ok(r.headers.get('last-modified'));
        assert.match(r.headers.get('content-type')!, /application\/fhir\+json/);
      });

      it('HEAD answers as GET without the body: a read\'s ETag, Last-Modified and length, a search\'s status; an unknown id 404', async () => {
        const c = await fhir.post('Patient', patient('Heald', 'Agnes'));
        const got = await fetch(`${t.base}/Patient/${c.body.id}`, { headers: t.auth });
        const head = await fetch(`${t.base}/Patient/${c.body.id}`, { method: 'HEAD', headers: t.auth });
        assert.equal(head.status, 200);
        assert.equal(await head.text(), '');
        for (const name of ['etag', 'last-modified', 'content-type', 'content-length']) assert.equal(head.headers.get(name), got.headers.get(name), name);
        assert.ok(Number(head.headers.get('content-length')) > 0);
        assert.equal((await fetch(`${t.base}/Patient?family=Heald`, { method: 'HEAD', headers: t.auth })).status, 200);
        assert.equal((await fetch(`${t.base}/Patient/no-such-patient`, { method: 'HEAD', headers: t.auth })).status, 404);
        assert.equal((await fetch(`${t.base}/Patient/${c.body.id}`, { method: 'HEAD', headers: { ...t.auth, 'if-none-match': 'W/"1"' } })).status, 304);
      });

      it('_elements on a read and a vread: only the elements named, tagged SUBSETTED; a bad list is a 400', async () => {
        const c = await fhir.post('Patient', { ...patient('Elwood', 'Rose'), birthDate: '1938-02-11', gender: 'female' });
        for (const path of [`Patient/${c.body.id}`, `Patient/${c.body.id}/_history/1`]) {
          const r = await fhir.get(`${path}?_elements=name,birthDate`);
          assert.equal(r.status, 200, path);
          assert.deepEqual(Object.keys(r.body).sort(), ['birthDate', 'id', 'meta', 'name', 'resourceType'], path);
          assert.equal(r.body.name[0].family, 'Elwood');
          assert.ok(r.body.meta.tag.some((tag: any) => tag.code === 'SUBSETTED'), path);
          assert.equal(r.headers.get('etag'), 'W/"1"');
        }
        assert.equal((await fhir.get(`Patient/${c.body.id}`)).body.gender, 'female', 'without _elements, the whole resource');
        const bad = await fhir.get(`Patient/${c.body.id}?_elements=name;gender`);
        assert.equal(bad.status, 400);
        assert.match(bad.body.issue[0].diagnostics, /_elements takes top-level element names/);
      });

      it('conditional read: If-None-Match with the current version gives 304', async () => {
        const c = await fhir.post('Patient', patient('Nash', 'Ivy'));
        const res = await fetch(`${t.base}/Patient/${c.body.id}`, { headers: { ...t.auth, 'if-none-match': 'W/"1"' } });
        assert.equal(res.status, 304);
        await fhir.put(`Patient/${c.body.id}`, { ...c.body, active: true });
        const changed = await fhir.get(`Patient/${c.body.id}`, { 'if-none-match': 'W/"1"' });
        assert.equal(changed.status, 200);
        assert.equal(changed.body.active, true);
      });

      it('ignores a client id on POST', async () => {
        const c = await fhir.post('Patient', { ...patient('Bell', 'Amos'), id: 'chosen-by-client' });
        assert.equal(c.status, 201);
        assert.notEqual(c.body.id, 'chosen-by-client');
      });

      it('PUT creates with a client id, then updates with versioning and vread', async () => {
        const id = `pat-${engine}-put`;
        const c = await fhir.put(`Patient/${id}`, { ...patient('Carter', 'Joan'), id });
        assert.equal(c.status, 201);
        const u = await fhir.put(`Patient/${id}`, { ...patient('Carter', 'Joanna'), id });
        assert.equal(u.status, 200);
        assert.equal(u.body.meta.versionId, '2');
        const v1 = await fhir.get(`Patient/${id}/_history/1`);
        assert.equal(v1.body.name[0].given[0], 'Joan');
        const v2 = await fhir.get(`Patient/${id}/_history/2`);
        assert.equal(v2.body.name[0].given[0], 'Joanna');
        assert.equal((await fhir.get(`Patient/${id}/_history/9`)).status, 404);
      });

      it('rejects an update whose body id differs from the URL', async () => {
        const r = await fhir.put('Patient/abc', { ...patient('Dale', 'Ruth'), id: 'xyz' });
        assert.equal(r.status, 400);
        assert.equal(r.body.resourceType, 'OperationOutcome');
        assert.deepEqual(r.body.issue[0].expression, ['Patient.id']);
      });

      it('If-Match: a stale version gets 412 and changes nothing', async () => {
        const c = await fhir.post('Patient', patient('Evans', 'Mary'));
        const ok = await fhir.put(`Patient/${c.body.id}`, { ...c.body, active: true }, { 'if-match': 'W/"1"' });
        assert.equal(ok.status, 200);
        const stale = await fhir.put(`Patient/${c.body.id}`, { ...c.body, active: false }, { 'if-match': 'W/"1"' });
        assert.equal(stale.status, 412);
        assert.equal(stale.body.resourceType, 'OperationOutcome');
        assert.match(stale.body.issue[0].diagnostics, /version 2/);
        assert.equal((await fhir.get(`Patient/${c.body.id}`)).body.active, true);
      });

      it('Prefer return=minimal and return=OperationOutcome', async () => {
        const minimal = await fhir.post('Patient', patient('Frost', 'Lily'), { prefer: 'return=minimal' });
        assert.equal(minimal.status, 201);
        assert.equal(minimal.body, undefined);
        assert.ok(minimal.headers.get('location'));
        const oo = await fhir.post('Patient', patient('Frost', 'Ivy'), { prefer: 'return=OperationOutcome' });
        assert.equal(oo.body.resourceType, 'OperationOutcome');
        assert.equal(oo.body.issue[0].severity, 'information');
        // Read as a preference by name (RFC 7240), beside others; a value that only starts like one is unknown.
        const among = await fhir.post('Patient', patient('Frost', 'Ada'), { prefer: 'handling=strict, return=minimal' });
        assert.equal(among.body, undefined, 'return=minimal among other preferences');
        const unknown = await fhir.post('Patient', patient('Frost', 'Eve'), { prefer: 'return=minimalist' });
        assert.equal(unknown.body?.resourceType, 'Patient', 'an unknown return value gets the resource, the default');
      });

      it('deletes with a new version: read gives 410, history keeps it, the old version is still readable', async () => {
        const c = await fhir.post('Patient', patient('Grant', 'Hugh'));
        const d = await fhir.delete(`Patient/${c.body.id}`);
        assert.equal(d.status, 200);
        const r = await fhir.get(`Patient/${c.body.id}`);
        assert.equal(r.status, 410);
        assert.equal(r.body.resourceType, 'OperationOutcome');
        const h = await fhir.get(`Patient/${c.body.id}/_history`);
        assert.equal(h.body.type, 'history');
        assert.equal(h.body.total, 2);
        assert.equal(h.body.entry[0].request.method, 'DELETE');
        assert.equal((await fhir.get(`Patient/${c.body.id}/_history/1`)).status, 200);
        assert.equal((await fhir.get(`Patient/${c.body.id}/_history/2`)).status, 410);
        assert.equal((await fhir.delete(`Patient/${c.body.id}`)).status, 204);
        const s = await fhir.get(`Patient?_id=${c.body.id}`);
        assert.equal(s.body.total, 0);
        const again = await fhir.put(`Patient/${c.body.id}`, { ...patient('Grant', 'Hugh'), id: c.body.id });
        assert.equal(again.status, 201);
        assert.equal(again.body.meta.versionId, '3');
      });

      it('404 for unknown ids and types', async () => {
        const a = await fhir.get('Patient/does-not-exist');
        assert.equal(a.status, 404);
        assert.match(a.body.issue[0].diagnostics, /Patient\/does-not-exist/);
        const b = await fhir.get('Spaceship/1');
        assert.equal(b.status, 404);
        assert.match(b.body.issue[0].diagnostics, /Spaceship/);
        assert.equal((await fhir.delete('Patient/never-existed')).status, 404);
      });

      it('JSON Patch applies, validates and versions', async () => {
        const c = await fhir.post('Patient', patient('Hall', 'Rose'));
        const patchHeaders = { 'content-type': 'application/json-patch+json' };
        const p = await fhir.request('PATCH', `Patient/${c.body.id}`, [{ op: 'replace', path: '/name/0/family', value: 'Hale' }, { op: 'add', path: '/gender', value: 'female' }], patchHeaders);
        assert.equal(p.status, 200);
        assert.equal(p.body.name[0].family, 'Hale');
        assert.equal(p.body.meta.versionId, '2');
        const bad = await fhir.request('PATCH', `Patient/${c.body.id}`, [{ op: 'add', path: '/birthDate', value: 12 }], patchHeaders);
        assert.equal(bad.status, 400);
        assert.deepEqual(bad.body.issue[0].expression, ['Patient.birthDate']);
        const stale = await fhir.request('PATCH', `Patient/${c.body.id}`, [{ op: 'add', path: '/active', value: true }], { ...patchHeaders, 'if-match': 'W/"1"' });
        assert.equal(stale.status, 412);
        const broken = await fhir.request('PATCH', `Patient/${c.body.id}`, [{ op: 'remove', path: '/nope/0' }], patchHeaders);
        assert.equal(broken.status, 422);
        assert.equal((await fhir.get(`Patient/${c.body.id}`)).body.meta.versionId, '2');
      });
    });

    describe('validation', () => {
      it('rejects structural errors naming the element', async () => {
        const r = await fhir.post('Patient', { resourceType: 'Patient', birthDate: 1950, colour: 'blue' });
        assert.equal(r.status, 400);
        const expressions = r.body.issue.flatMap((i: any) => i.expression ?? []);
        assert.ok(expressions.includes('Patient.birthDate'), JSON.stringify(r.body));
        assert.ok(expressions.includes('Patient.colour'), JSON.stringify(r.body));
      });
      it('rejects a resource posted to the wrong type', async () => {
        const r = await fhir.post('Observation', patient('Ives', 'Tom'));
        assert.equal(r.status, 400);
      });
      it('rejects an NHS number with a bad check digit (UK Core)', async () => {
        const good = generateSyntheticNhsNumber(random);
        const bad = good.slice(0, 9) + ((Number(good[9]) + 1) % 10);
        const r = await fhir.post('Patient', { ...patient('Jones', 'Ann'), identifier: [{ system: NHS_NUMBER_SYSTEM, value: bad }] });
        assert.equal(r.status, 422);
        assert.deepEqual(r.body.issue[0].expression, ['Patient.identifier[0].value']);
      });
    });

    describe('conditional interactions', () => {
      it('conditional create returns the existing resource instead of a duplicate', async () => {
        const p = patient('King', 'Ada');
        const nhs = p.identifier[0].value;
        const first = await fhir.post('Patient', p, { 'if-none-exist': `identifier=${NHS_NUMBER_SYSTEM}|${nhs}` });
        assert.equal(first.status, 201);
        const second = await fhir.post('Patient', p, { 'if-none-exist': `identifier=${NHS_NUMBER_SYSTEM}|${nhs}` });
        assert.equal(second.status, 200);
        assert.equal(second.body.id, first.body.id);
      });
      it('conditional update creates then updates by identifier; several matches give 412', async () => {
        const p = patient('Lane', 'Bea');
        const q = `identifier=${encodeURIComponent(`${NHS_NUMBER_SYSTEM}|${p.identifier[0].value}`)}`;
        const a = await fhir.put(`Patient?${q}`, p);
        assert.equal(a.status, 201);
        const b = await fhir.put(`Patient?${q}`, { ...p, active: true });
        assert.equal(b.status, 200);
        assert.equal(b.body.id, a.body.id);
        await fhir.post('Patient', patient('Twin', 'One', { gender: 'other', birthDate: '1931-03-03' }));
        await fhir.post('Patient', patient('Twin', 'Two', { gender: 'other', birthDate: '1931-03-03' }));
        const many = await fhir.put('Patient?birthdate=1931-03-03', patient('Twin', 'Three'));
        assert.equal(many.status, 412);
      });
    });

    describe('search', () => {
      let pid: string;
      let other: string;
      before(async () => {
        pid = (await fhir.post('Patient', patient('Müller', 'Zoë', { gender: 'female', birthDate: '1938-07-14', address: [{ city: 'Whitby', postalCode: 'YO21 1AA' }] }))).body.id;
        other = (await fhir.post('Patient', patient('Mullins', 'Zachary', { gender: 'male', birthDate: '1941' }))).body.id;
        await fhir.post('Observation', observation(pid, '8867-4', '2026-10-01T09:00:00Z', 72));
        await fhir.post('Observation', observation(pid, '8867-4', '2026-10-02T09:00:00Z', 96));
        await fhir.post('Observation', observation(pid, '9279-1', '2026-10-02T09:05:00Z', 22));
        await fhir.post('Observation', observation(other, '8867-4', '2025-01-01', 60));
      });

      it('string: starts-with, case- and accent-insensitive; :exact; :contains', async () => {
        assert.deepEqual(ids((await fhir.get('Patient?family=muller')).body), [pid]);
        assert.deepEqual(ids((await fhir.get('Patient?given=ZOE')).body), [pid]);
        assert.equal((await fhir.get('Patient?family=mull')).body.total, 2);
        assert.deepEqual(ids((await fhir.get(`Patient?family:exact=${encodeURIComponent('Müller')}`)).body), [pid]);
        assert.equal((await fhir.get('Patient?family:exact=muller')).body.total, 0);
        assert.deepEqual(ids((await fhir.get('Patient?family:contains=LLIN')).body), [other]);
        assert.deepEqual(ids((await fhir.get('Patient?address-city=whit')).body), [pid]);
      });

      it('token: code, system|code, :not, :missing', async () => {
        assert.equal((await fhir.get(`Observation?subject=Patient/${pid}&code=8867-4`)).body.total, 2);
        assert.equal((await fhir.get(`Observation?subject=${pid}&code=http://loinc.org|8867-4`)).body.total, 2);
        assert.equal((await fhir.get(`Observation?subject=${pid}&code=http://snomed.info/sct|8867-4`)).body.total, 0);
        assert.equal((await fhir.get(`Observation?subject=${pid}&code:not=8867-4`)).body.total, 1);
        assert.equal((await fhir.get(`Patient?_id=${pid},${other}&gender=female`)).body.total, 1);
        assert.equal((await fhir.get(`Patient?_id=${pid},${other}&gender:missing=true`)).body.total, 0);
        assert.equal((await fhir.get(`Patient?_id=${pid},${other}&general-practitioner:missing=true`)).body.total, 2);
      });

      it('token :text matches the display text', async () => {
        const c = await fhir.post('Condition', {
          resourceType: 'Condition',
          subject: { reference: `Patient/${pid}` },
          code: { coding: [{ system: 'http://snomed.info/sct', code: '52448006', display: 'Dementia' }], text: 'Dementia (Alzheimer type)' },
        });
        assert.equal(c.status, 201, JSON.stringify(c.body));
        assert.deepEqual(ids((await fhir.get(`Condition?subject=${pid}&code:text=dement`)).body), [c.body.id]);
        assert.equal((await fhir.get(`Condition?subject=${pid}&code:text=diabetes`)).body.total, 0);
      });

      it('date: prefixes and precision', async () => {
        const q = (s: string) => fhir.get(`Observation?subject=${pid}&${s}`).then((r) => r.body.total);
        assert.equal(await q('date=2026-10'), 3);
        assert.equal(await q('date=2026-10-01'), 1);
        assert.equal(await q('date=gt2026-10-01'), 2);
        assert.equal(await q('date=ge2026-10-02T09:05:00Z'), 1);
        assert.equal(await q('date=lt2026-10-02'), 1);
        assert.equal(await q('date=sa2026-10-01&date=eb2026-10-03'), 2);
        assert.equal(await q('date=ne2026-10-01'), 2);
        assert.equal((await fhir.get(`Patient?_id=${other}&birthdate=1941-06-01`)).body.total, 0);
        assert.equal((await fhir.get(`Patient?_id=${other}&birthdate=1941`)).body.total, 1);
        assert.equal((await fhir.get(`Patient?_id=${other}&birthdate=ge1941-06-01`)).body.total, 1);
      });

      it('number and quantity', async () => {
        assert.equal((await fhir.get(`Observation?subject=${pid}&value-quantity=gt90`)).body.total, 1);
        assert.equal((await fhir.get(`Observation?subject=${pid}&value-quantity=72||/min`)).body.total, 1);
        assert.equal((await fhir.get(`Observation?subject=${pid}&value-quantity=le72|http://unitsofmeasure.org|/min`)).body.total, 2);
        assert.equal((await fhir.get(`Observation?subject=${pid}&value-quantity=le96|http://unitsofmeasure.org|/min`)).body.total, 3);
      });

      it('reference: id, Type/id, chained and :Type', async () => {
        assert.equal((await fhir.get(`Observation?patient=${pid}`)).body.total, 3);
        assert.equal((await fhir.get(`Observation?subject:Patient=${pid}`)).body.total, 3);
        const nhs = (await fhir.get(`Patient/${pid}`)).body.identifier[0].value;
        assert.equal((await fhir.get(`Observation?patient.identifier=${NHS_NUMBER_SYSTEM}|${nhs}`)).body.total, 3);
        assert.equal((await fhir.get('Observation?subject:Patient.family=mullins')).body.total, 1);
        const deep = await fhir.get('Observation?subject.organization.name=x');
        assert.equal(deep.status, 400);
        assert.equal(deep.body.resourceType, 'OperationOutcome');
      });

      it('_sort with several keys and descending; _count paging with next/previous links', async () => {
        const asc = await fhir.get(`Observation?subject=${pid}&_sort=date`);
        const desc = await fhir.get(`Observation?subject=${pid}&_sort=-date`);
        assert.deepEqual(ids(desc.body), ids(asc.body).reverse());
        const multi = await fhir.get(`Observation?subject=${pid}&_sort=code,-date`);
        const codes = multi.body.entry.map((e: any) => e.resource.code.coding[0].code + ' ' + e.resource.effectiveDateTime);
        assert.deepEqual(codes, ['8867-4 2026-10-02T09:00:00Z', '8867-4 2026-10-01T09:00:00Z', '9279-1 2026-10-02T09:05:00Z']);
        const page1 = await fhir.get(`Observation?subject=${pid}&_sort=date&_count=2`);
        assert.equal(page1.body.entry.length, 2);
        assert.equal(page1.body.total, 3);
        const next = page1.body.link.find((l: any) => l.relation === 'next').url;
        const page2 = await fetch(next, { headers: t.auth }).then((r) => r.json());
        assert.equal(page2.entry.length, 1);
        assert.ok(page2.link.some((l: any) => l.relation === 'previous'));
        assert.ok(!page2.link.some((l: any) => l.relation === 'next'));
        assert.deepEqual([...ids(page1.body), ...ids(page2)], ids(asc.body));
      });

      it('_total, _summary=count, _elements', async () => {
        const none = await fhir.get(`Observation?subject=${pid}&_total=none&_count=1`);
        assert.equal(none.body.total, undefined);
        const count = await fhir.get(`Observation?subject=${pid}&_summary=count`);
        assert.equal(count.body.total, 3);
        assert.equal(count.body.entry.length, 0);
        const el = await fhir.get(`Patient?_id=${pid}&_elements=gender`);
        const res = el.body.entry[0].resource;
        assert.equal(res.gender, 'female');
        assert.equal(res.name, undefined);
        assert.ok(res.meta.tag.some((t: any) => t.code === 'SUBSETTED'));
      });

      it('_include and _revinclude (with :iterate)', async () => {
        const inc = await fhir.get(`Observation?subject=${pid}&code=9279-1&_include=Observation:subject`);
        const modes = inc.body.entry.map((e: any) => `${e.search.mode}:${e.resource.resourceType}`);
        assert.deepEqual(modes, ['match:Observation', 'include:Patient']);
        const rev = await fhir.get(`Patient?_id=${pid}&_revinclude=Observation:subject`);
        assert.equal(rev.body.entry.filter((e: any) => e.search.mode === 'include').length, 3);
        const org = (await fhir.post('Organization', { resourceType: 'Organization', name: 'Seaview Care Home' })).body.id;
        const current = (await fhir.get(`Patient/${pid}`)).body;
        await fhir.put(`Patient/${pid}`, { ...current, managingOrganization: { reference: `Organization/${org}` } });
        const iter = await fhir.get(`Observation?subject=${pid}&code=9279-1&_include=Observation:subject&_include:iterate=Patient:organization`);
        assert.deepEqual(iter.body.entry.map((e: any) => e.resource.resourceType), ['Observation', 'Patient', 'Organization']);
      });

      it('POST _search, compartment search and $everything', async () => {
        const post = await fhir.request('POST', 'Observation/_search', `subject=${pid}&code=9279-1`, { 'content-type': 'application/x-www-form-urlencoded' });
        assert.equal(post.body.total, 1);
        const comp = await fhir.get(`Patient/${pid}/Observation?code=8867-4`);
        assert.equal(comp.body.total, 2);
        const ev = await fhir.get(`Patient/${pid}/$everything`);
        const types = ev.body.entry.map((e: any) => e.resource.resourceType);
        assert.equal(types.filter((x: string) => x === 'Observation').length, 3);
        assert.ok(types.includes('Patient'));
        assert.ok(types.includes('Organization'), 'referenced organisation is included');
        assert.ok(!ev.body.entry.some((e: any) => e.resource.id === other));
      });

      it('_tag, _profile and _lastUpdated', async () => {
        const tagged = await fhir.get(`Patient?_id=${pid},${other}&_tag=${SYNTHETIC_TAG.system}|${SYNTHETIC_TAG.code}`);
        assert.equal(tagged.body.total, 2);
        const profile = 'https://fhir.hl7.org.uk/StructureDefinition/UKCore-Patient';
        await fhir.put(`Patient/profiled-${engine}`, { ...patient('Pro', 'File'), id: `profiled-${engine}`, meta: { profile: [profile] } });
        assert.deepEqual(ids((await fhir.get(`Patient?_profile=${profile}`)).body), [`profiled-${engine}`]);
        assert.equal((await fhir.get(`Patient?_id=${pid}&_lastUpdated=gt2000-01-01`)).body.total, 1);
        assert.equal((await fhir.get(`Patient?_id=${pid}&_lastUpdated=lt2000-01-01`)).body.total, 0);
      });

      it('unknown parameters: lenient ignores, strict rejects', async () => {
        const lenient = await fhir.get(`Patient?_id=${pid}&shoe-size=9`);
        assert.equal(lenient.status, 200);
        assert.equal(lenient.body.total, 1);
        assert.ok(!lenient.body.link[0].url.includes('shoe-size'));
        const strict = await fhir.get(`Patient?_id=${pid}&shoe-size=9`, { prefer: 'handling=strict' });
        assert.equal(strict.status, 400);
        assert.match(strict.body.issue[0].diagnostics, /shoe-size/);
      });
    });

    describe('history', () => {
      it('type and system history list versions newest first, paged', async () => {
        const c = await fhir.post('Practitioner', { resourceType: 'Practitioner', name: [{ family: 'Okafor' }] });
        await fhir.put(`Practitioner/${c.body.id}`, { ...c.body, active: true });
        const h = await fhir.get('Practitioner/_history');
        assert.equal(h.body.entry[0].resource.id, c.body.id);
        assert.equal(h.body.entry[0].resource.meta.versionId, '2');
        assert.equal(h.body.entry[1].resource.meta.versionId, '1');
        const sys = await fhir.get('_history?_count=1');
        assert.equal(sys.body.entry.length, 1);
        assert.ok(sys.body.link.some((l: any) => l.relation === 'next'));
      });
    });

    describe('batch and transaction', () => {
      it('a transaction resolves urn:uuid and conditional references and returns locations', async () => {
        const nhs = generateSyntheticNhsNumber(random);
        const patientUrl = 'urn:uuid:11111111-1111-4111-8111-111111111111';
        const tx = await fhir.post('', {
          resourceType: 'Bundle',
          type: 'transaction',
          entry: [
            { fullUrl: patientUrl, resource: { ...patient('Quinn', 'Ada'), identifier: [{ system: NHS_NUMBER_SYSTEM, value: nhs }] }, request: { method: 'POST', url: 'Patient' } },
            { resource: { ...observation('x', '8867-4', '2026-11-01', 80), subject: { reference: patientUrl } }, request: { method: 'POST', url: 'Observation' } },
            { resource: { ...observation('x', '9279-1', '2026-11-01', 18), subject: { reference: patientUrl } }, request: { method: 'POST', url: 'Observation' } },
          ],
        });
        assert.equal(tx.status, 200, JSON.stringify(tx.body));
        assert.equal(tx.body.type, 'transaction-response');
        assert.equal(tx.body.entry.length, 3);
        assert.match(tx.body.entry[0].response.location, /^Patient\/[^/]+\/_history\/1$/);
        assert.equal(tx.body.entry[0].response.status, '201 Created');
        assert.equal(tx.body.entry[0].response.etag, 'W/"1"');
        const patientId = tx.body.entry[0].response.location.split('/')[1];
        assert.equal((await fhir.get(`Observation?subject=Patient/${patientId}`)).body.total, 2);
        const tx2 = await fhir.post('', {
          resourceType: 'Bundle', type: 'transaction',
          entry: [{ resource: { ...observation('x', '8310-5', '2026-11-02', 37), subject: { reference: `Patient?identifier=${NHS_NUMBER_SYSTEM}|${nhs}` } }, request: { method: 'POST', url: 'Observation' } }],
        });
        assert.equal(tx2.status, 200, JSON.stringify(tx2.body));
        assert.equal((await fhir.get(`Observation?subject=Patient/${patientId}`)).body.total, 3);
      });

      // Generated Bundles repeat a conditional create wherever the resource is referenced (the same
      // practitioner for each observation): each found nothing, so each created, and the record held copies.
      it('conditional creates with the same criteria in one transaction make one resource, which every reference to them names', async () => {
        const ods = `https://example.org/Id/staff-${engine}`;
        const practitioner = (code: string, given: string) => ({ resourceType: 'Practitioner', identifier: [{ system: ods, value: code }], name: [{ family: 'Okafor', given: [given] }] });
        const ids = ['22222222-2222-4222-8222-222222222222', '33333333-3333-4333-8333-333333333333'].map((u) => `urn:uuid:${u}`);
        const onePerObservation = ids.flatMap((url, i) => [
          { fullUrl: url, resource: practitioner('C1234567', 'Chidi'), request: { method: 'POST', url: 'Practitioner', ifNoneExist: i === 0 ? `identifier=${ods}|C1234567` : `identifier=${encodeURIComponent(`${ods}|C1234567`)}` } },
          { resource: { ...observation('x', '8867-4', '2026-11-01', 70 + i), performer: [{ reference: url }] }, request: { method: 'POST', url: 'Observation' } },
        ]);
        const tx = await fhir.post('', { resourceType: 'Bundle', type: 'transaction', entry: onePerObservation });
        assert.equal(tx.status, 200, JSON.stringify(tx.body));
        assert.deepEqual(tx.body.entry.map((e: any) => e.response.status), ['201 Created', '201 Created', '200 OK', '201 Created']);
        const found = (await fhir.get(`Practitioner?identifier=${encodeURIComponent(`${ods}|C1234567`)}`)).body;
        assert.equal(found.total, 1, 'one Practitioner');
        const performers = await Promise.all([1, 3].map(async (i) => (await fhir.get(tx.body.entry[i].response.location.split('/_history')[0])).body.performer[0].reference));
        assert.deepEqual(performers, [`Practitioner/${found.entry[0].resource.id}`, `Practitioner/${found.entry[0].resource.id}`]);

        // Alike criteria whose first resource they do not find: the entries meant different things.
        const mismatch = await fhir.post('', { resourceType: 'Bundle', type: 'transaction', entry: [
          { resource: practitioner('C7654321', 'Ngozi'), request: { method: 'POST', url: 'Practitioner', ifNoneExist: `identifier=${ods}|C9999999` } },
          { resource: practitioner('C9999999', 'Ade'), request: { method: 'POST', url: 'Practitioner', ifNoneExist: `identifier=${ods}|C9999999` } },
        ] });
        assert.equal(mismatch.status, 400, JSON.stringify(mismatch.body));
        assert.match(mismatch.body.issue[0].diagnostics, /entry 1 .*same If-None-Exist as Bundle\.entry\[0\]/);
        assert.equal((await fhir.get(`Practitioner?identifier=${encodeURIComponent(ods)}|&_summary=count`)).body.total, 1, 'nothing more stored');
      });

      it('a transaction is all or nothing', async () => {
        const family = `Atomic${engine}`;
        const tx = await fhir.post('', {
          resourceType: 'Bundle', type: 'transaction',
          entry: [
            { resource: patient(family, 'One'), request: { method: 'POST', url: 'Patient' } },
            { resource: { resourceType: 'Patient', birthDate: 'not-a-date' }, request: { method: 'POST', url: 'Patient' } },
          ],
        });
        assert.ok(tx.status >= 400 && tx.status < 500, String(tx.status));
        assert.equal(tx.body.resourceType, 'OperationOutcome');
        assert.match(tx.body.issue[0].diagnostics, /entry 1/);
        assert.equal((await fhir.get(`Patient?family=${family}`)).body.total, 0);
      });

      it('entries run in spec order: DELETE, POST, PUT, GET', async () => {
        const victim = (await fhir.post('Patient', patient('Victim', 'Val'))).body.id;
        const tx = await fhir.post('', {
          resourceType: 'Bundle', type: 'transaction',
          entry: [
            { request: { method: 'GET', url: `Patient?_id=${victim}` } },
            { resource: { ...patient('Order', 'Put'), id: `order-put-${engine}` }, request: { method: 'PUT', url: `Patient/order-put-${engine}` } },
            { request: { method: 'DELETE', url: `Patient/${victim}` } },
          ],
        });
        assert.equal(tx.status, 200, JSON.stringify(tx.body));
        assert.equal(tx.body.entry[0].resource.total, 0, 'GET ran after DELETE');
        assert.equal(tx.body.entry[1].response.status, '201 Created');
        assert.equal(tx.body.entry[2].response.status, '200 OK');
      });

      it('a batch reports each entry on its own', async () => {
        const b = await fhir.post('', {
          resourceType: 'Bundle', type: 'batch',
          entry: [
            { resource: patient('Batch', 'Good'), request: { method: 'POST', url: 'Patient' } },
            { resource: { resourceType: 'Patient', gender: 7 }, request: { method: 'POST', url: 'Patient' } },
            { request: { method: 'GET', url: 'Patient/missing-one' } },
          ],
        });
        assert.equal(b.status, 200);
        assert.equal(b.body.type, 'batch-response');
        assert.equal(b.body.entry[0].response.status, '201 Created');
        assert.equal(b.body.entry[1].response.status, '400');
        assert.equal(b.body.entry[1].response.outcome.resourceType, 'OperationOutcome');
        assert.equal(b.body.entry[2].response.status, '404');
      });
    });

    describe('errors', () => {
      it('malformed JSON is a 400 OperationOutcome', async () => {
        const r = await fhir.request('POST', 'Patient', '{"resourceType": "Patient",', { 'content-type': 'application/fhir+json' });
        assert.equal(r.status, 400);
        assert.match(r.body.issue[0].diagnostics, /not valid JSON/);
      });
      it('asking for XML only is a 406 OperationOutcome', async () => {
        const r = await fhir.get('metadata', { accept: 'application/fhir+xml' });
        assert.equal(r.status, 406);
        assert.equal(r.body.resourceType, 'OperationOutcome');
        assert.equal((await fhir.get('metadata', { accept: 'application/fhir+json, application/fhir+xml;q=0.5' })).status, 200);
      });
      it('a wrong media type is a 415 OperationOutcome', async () => {
        const r = await fhir.request('POST', 'Patient', '<Patient/>', { 'content-type': 'application/xml' });
        assert.equal(r.status, 415);
        assert.equal(r.body.resourceType, 'OperationOutcome');
      });
    });
  });
}
