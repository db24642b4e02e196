// A search with several index filters starts from its most selective one and checks the others row by row,
// so its cost follows the few rows that filter matches, not the many an unselective filter matches (the
// referral a discharge notice looks up by encounter and by the code every referral has).
//
// (1) The plan, on SQLite: the compiled driving set reads the unselective code lookup only by row id.
// (2) The answers, on both engines: several filters together (references, codes, chains, _has, :not,
//     :missing, OR-ed values, a resource matching a filter twice) find exactly the resources they should.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { handleFhirRequest, openRecordStore, parseSearchRequest, UNRESTRICTED, type QueryParams, type SqlDriver } from '../../src/record/index.ts';
import { compileSearch } from '../../src/record/search/compile.ts';
import { visibleRowOfType } from '../../src/record/search/visibility.ts';
import { ENGINES, testDatabase } from '../support/server.ts';
import { stopOwnPostgres } from '../support/postgres.ts';

after(stopOwnPostgres);

const REFERRAL = 'http://snomed.info/sct|306206005';
const NHS = 'https://fhir.nhs.uk/Id/nhs-number';

describe('the driving set of a search with several index filters (SQLite plan)', () => {
  let driver: SqlDriver;
  let cleanup: () => void;
  before(async () => {
    const db = await testDatabase('sqlite');
    cleanup = db.cleanup;
    driver = await openRecordStore(db.database);
  });
  after(async () => {
    await driver.close();
    cleanup();
  });

  const planOf = async (type: string, query: QueryParams) => {
    const { driving } = compileSearch(parseSearchRequest(type, query, 'strict'));
    assert.ok(driving, 'the search has a driving set');
    const rows = await driver.all<{ detail: string }>(`EXPLAIN QUERY PLAN ${driving.text}`, driving.params);
    return rows.map((r) => r.detail);
  };

  for (const order of ['encounter first', 'code first'] as const) {
    it(`starts from the referral's encounter and checks the common code by row id (${order})`, async () => {
      const filters: QueryParams = [['encounter', 'Encounter/e5'], ['code', REFERRAL]];
      const plan = await planOf('ServiceRequest', order === 'code first' ? [...filters].reverse() : filters);
      const reads = plan.filter((line) => /^(SEARCH|SCAN) /.test(line));
      assert.match(reads[0], /search_reference USING INDEX search_reference_target/, `the encounter lookup drives:\n${plan.join('\n')}`);
      assert.deepEqual(reads.filter((line) => /search_token|chk/.test(line)).map((line) => /USING INDEX (\w+)/.exec(line)?.[1]), ['search_token_rid'],
        `every referral's code row is never listed, only the candidate's looked up:\n${plan.join('\n')}`);
      assert.ok(!plan.some((line) => /INTERSECT/.test(line)), `no side is materialised and sorted:\n${plan.join('\n')}`);
    });
  }

  // Left free to choose, SQLite probed a date range through the (type, param, hi) index: every date of the
  // whole table from then on, for each row probed (a code and date search of 100,000 resources ran for
  // minutes). Each probe must read only its own row's index rows for its own parameter, whatever the kind
  // of filter (by row id alone it read all ten or more of them, each from the table).
  for (const [type, query, table] of [
    ['Observation', [['code', 'http://loinc.org|8867-4'], ['date', 'ge2020-01-01']], 'search_date'],
    ['Observation', [['code', 'http://loinc.org|8867-4'], ['value-quantity', 'gt5']], 'search_quantity'],
    ['Patient', [['identifier', `${NHS}|9000000009`], ['name', 'smi']], 'search_string'],
    ['Observation', [['identifier', 'urn:x|1'], ['subject', 'Patient/p1']], 'search_reference'],
    ['ServiceRequest', [['identifier', 'urn:x|1'], ['subject.identifier', `${NHS}|9000000009`]], 'search_reference'],
    ['Patient', [['identifier', `${NHS}|9000000009`], ['address-postalcode', 'NE1']], 'search_string'],
  ] as [string, QueryParams, string][]) {
    it(`probes ${table} by row id and parameter only (${query.map(([k]) => k).join(' + ')})`, async () => {
      const plan = await planOf(type, query);
      const probes = plan.filter((line) => / chk /.test(line));
      assert.ok(probes.length > 0, `the second filter is probed:\n${plan.join('\n')}`);
      for (const line of probes) assert.match(line, new RegExp(`^SEARCH chk EXISTS USING INDEX ${table}_rid \\(rid=\\? AND param=\\?\\)$`), `probed by row id and parameter:\n${plan.join('\n')}`);
    });
  }

  // A care home's search checks every row it matches, and counts, against the people the caller may see,
  // listed once per request (a resolved scope: up to 500 ids). Probing the compartment index once per
  // person for each row cost ~40 µs a row at 500 people; an empty relationship list still built a list and
  // a Bloom filter in every statement.
  it("checks a row against the caller's listed people through its own compartment rows, once each", async () => {
    const people = Array.from({ length: 500 }, (_, i) => `resident-${i}`);
    const visible = visibleRowOfType('r', 'Observation', { patientIds: people, via: [] })!;
    const rows = await driver.all<{ detail: string }>(`EXPLAIN QUERY PLAN SELECT r.rid FROM resources r WHERE r.rid = ? AND ${visible.text}`, [1, ...visible.params]);
    const plan = rows.map((r) => r.detail);
    const lookups = plan.filter((line) => /compartment/.test(line));
    assert.equal(lookups.length, 1, `one lookup of the row's compartment:\n${plan.join('\n')}`);
    assert.match(lookups[0], /USING COVERING INDEX compartment_rid \(rid=\?\)$/, `found by row id, each tested against the list:\n${plan.join('\n')}`);
    assert.ok(!plan.some((line) => /LIST SUBQUERY/.test(line)), `no relationship subquery for a scope already listed:\n${plan.join('\n')}`);
  });

  it('lets an identifier drive ahead of a status, and a chain ahead of a code, whatever their order', async () => {
    // The driving lookup's own parameters come first: its resource type, then its search parameter.
    const drivenBy = (type: string, query: QueryParams) => compileSearch(parseSearchRequest(type, query, 'strict')).driving!.params[1];
    assert.equal(drivenBy('Patient', [['active', 'true'], ['identifier', `${NHS}|9000000009`]]), 'identifier');
    assert.equal(drivenBy('ServiceRequest', [['code', REFERRAL], ['subject.identifier', `${NHS}|9000000009`]]), 'subject');
    assert.equal(drivenBy('ServiceRequest', [['authored', 'ge2026-01-01'], ['status', 'active'], ['code', REFERRAL]]), 'status', 'among equals, the first given');
    assert.equal(drivenBy('Encounter', [['status', 'finished'], ['_has:ServiceRequest:encounter:code', '306206005']]), 'encounter', '_has drives (its source parameter)');
  });
});

const snomed = (code: string) => ({ system: 'http://snomed.info/sct', code });
const referral = (id: string, code: string, status: string, patient: string, encounter?: string, twice = false) => ({
  resourceType: 'ServiceRequest', id, status, intent: 'order',
  // A referral coded twice with the same code is listed twice by the code lookup, yet found once.
  code: { coding: twice ? [snomed(code), snomed(code)] : [snomed(code)] },
  subject: { reference: `Patient/${patient}` },
  ...(encounter ? { encounter: { reference: `Encounter/${encounter}` } } : {}),
});

const DATASET: Record<string, unknown>[] = [
  { resourceType: 'Patient', id: 'pa', identifier: [{ system: NHS, value: '9000000009' }], active: true },
  { resourceType: 'Patient', id: 'pb', identifier: [{ system: NHS, value: '9000000017' }], active: true },
  { resourceType: 'Encounter', id: 'e1', status: 'finished', class: { code: 'IMP' }, subject: { reference: 'Patient/pa' } },
  { resourceType: 'Encounter', id: 'e2', status: 'in-progress', class: { code: 'IMP' }, subject: { reference: 'Patient/pb' } },
  referral('sr1', '306206005', 'active', 'pa', 'e1', true),
  referral('sr2', '306206005', 'completed', 'pa', 'e1'),
  referral('sr3', '183524004', 'active', 'pa', 'e1'),
  referral('sr4', '306206005', 'active', 'pb', 'e2', true),
  referral('sr5', '306206005', 'revoked', 'pa'),
];

/** [type, query, the ids it must find, sorted]. */
const SEARCHES: [string, string, string[]][] = [
  ['ServiceRequest', `code=${REFERRAL}&encounter=Encounter/e1`, ['sr1', 'sr2']],
  ['ServiceRequest', `encounter=Encounter/e1&code=${REFERRAL}&_sort=-authored`, ['sr1', 'sr2']],
  ['ServiceRequest', `encounter=Encounter/e1&code=${REFERRAL}&status=active`, ['sr1']],
  ['ServiceRequest', 'code=306206005,183524004&encounter=e1', ['sr1', 'sr2', 'sr3']],
  ['ServiceRequest', 'code=306206005&status=active&intent=order', ['sr1', 'sr4']],
  ['ServiceRequest', 'code=306206005&status=active,revoked&subject=Patient/pa', ['sr1', 'sr5']],
  ['ServiceRequest', `code=306206005&subject.identifier=${NHS}|9000000009`, ['sr1', 'sr2', 'sr5']],
  ['ServiceRequest', `encounter.status=in-progress&code=306206005`, ['sr4']],
  ['ServiceRequest', `code=306206005&encounter=e1&status:not=active`, ['sr2']],
  ['ServiceRequest', `code=306206005&subject=pa&encounter:missing=true`, ['sr5']],
  ['ServiceRequest', `code=183524004&encounter=e2`, []],
  ['Encounter', 'status=finished&_has:ServiceRequest:encounter:code=306206005', ['e1']],
  ['Encounter', '_has:ServiceRequest:encounter:code=306206005&subject=Patient/pb', ['e2']],
  ['Encounter', '_has:ServiceRequest:encounter:code=183524004&status=in-progress', []],
  ['Patient', `active=true&identifier=${NHS}|9000000017`, ['pb']],
];

for (const engine of ENGINES) {
  describe(`searches with several index filters find the same resources (${engine})`, () => {
    let driver: SqlDriver;
    let cleanup: () => void;
    before(async () => {
      const db = await testDatabase(engine);
      cleanup = db.cleanup;
      driver = await openRecordStore(db.database);
      await fhir('POST', '', { resourceType: 'Bundle', type: 'transaction', entry: DATASET.map((resource) => ({ resource, request: { method: 'PUT', url: `${resource.resourceType}/${resource.id}` } })) });
    });
    after(async () => {
      await driver.close();
      cleanup();
    });

    async function fhir(method: string, path: string, body?: unknown, query: QueryParams = []) {
      const reply = await handleFhirRequest({ base: 'http://test/fhir', driver, access: UNRESTRICTED }, { method, path, query, body });
      assert.ok(reply.status < 300, `${method} ${path}?${new URLSearchParams(query)} answered ${reply.status}: ${JSON.stringify(reply.body).slice(0, 400)}`);
      return (typeof reply.body === 'string' ? JSON.parse(reply.body) : reply.body) as { total?: number; entry?: { resource: { id: string } }[] };
    }

    for (const [type, query, expected] of SEARCHES) {
      it(`${type}?${query} finds ${expected.join(', ') || 'nothing'}`, async () => {
        const found = await fhir('GET', type, undefined, [...new URLSearchParams(query)] as QueryParams);
        const ids = (found.entry ?? []).map((e) => e.resource.id);
        assert.deepEqual([...ids].sort(), expected, 'the matching resources, each once');
        assert.equal(found.total, expected.length, 'the total counts each resource once');
      });
    }
  });
}
