// What the discharge page tests share: a hospital, two councils, a council team with two social workers,
// three people in hospital with referrals (one overdue, one discharged after 4 delayed days, one to the
// other council), a council social worker and a hospital discharge coordinator who can sign in.
import assert from 'node:assert/strict';
import { addOrganisation, addUser } from '../../src/access/index.ts';
import { createReferral, recordDischarge } from '../../src/discharge/index.ts';
import { csrfTokenIn, TEST_PASSWORD } from '../portal/portalServer.ts';
import type { TestServer } from '../support/server.ts';

export const ODS_ORG = 'https://fhir.nhs.uk/Id/ods-organization-code';
export const HOSPITAL = 'RHX';
export const COUNCIL = 'LA777';
export const OTHER_COUNCIL = 'LA888';

/** Signs a person in through the sign-in form; the Cookie header value. */
export async function signIn(t: Pick<TestServer, 'url'>, username: string): Promise<string> {
  const form = await fetch(`${t.url}/sign-in`);
  const formCookie = form.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ');
  const res = await fetch(`${t.url}/sign-in`, {
    method: 'POST', redirect: 'manual', headers: { cookie: formCookie, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ _csrf: csrfTokenIn(await form.text()), username, password: TEST_PASSWORD }).toString(),
  });
  const id = /carebridge_session=([^;]+)/.exec(res.headers.getSetCookie().join('\n'))?.[1];
  if (res.status !== 303 || !id) throw new Error(`${username} could not sign in (${res.status})`);
  return `carebridge_session=${id}`;
}

/** Seeds the record and the accounts; the referral ids by person (alice: open, overdue; bert: discharged; cora: other council). Dora is in hospital with no referral yet. */
export async function seedDischargePages(t: TestServer): Promise<Record<'alice' | 'bert' | 'cora', string>> {
  const ids = {} as Record<'alice' | 'bert' | 'cora', string>;
  const put = async (r: any) => assert.ok((await t.fhir.put(`${r.resourceType}/${r.id}`, r)).status < 300);
  await put({ resourceType: 'Organization', id: 'rhx', identifier: [{ system: ODS_ORG, value: HOSPITAL }], name: 'Riverside Hospital' });
  const localAuthority = [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/organization-type', code: 'govt' }], text: 'Local authority' }];
  await put({ resourceType: 'Organization', id: 'la777', identifier: [{ system: ODS_ORG, value: COUNCIL }], name: 'Eastshire Council', type: localAuthority });
  await put({ resourceType: 'Organization', id: 'la777-team', partOf: { reference: 'Organization/la777' }, name: 'Eastshire hospital social work team', type: localAuthority });
  await put({ resourceType: 'Organization', id: 'la888', identifier: [{ system: ODS_ORG, value: OTHER_COUNCIL }], name: 'Westshire Council', type: localAuthority });
  await put({ resourceType: 'Location', id: 'heron', name: 'Heron Ward', managingOrganization: { reference: 'Organization/rhx' } });
  await put({ resourceType: 'Location', id: 'kestrel', name: '=Kestrel Ward', managingOrganization: { reference: 'Organization/rhx' } });
  for (const p of ['sam-social', 'ola-other']) {
    await put({ resourceType: 'Practitioner', id: p, name: [{ text: p === 'sam-social' ? 'Sam Social' : 'Ola Other' }] });
    await put({ resourceType: 'PractitionerRole', id: `${p}-role`, active: true, practitioner: { reference: `Practitioner/${p}` }, organization: { reference: 'Organization/la777-team' }, code: [{ text: 'Social worker' }] });
  }
  const people = [['alice', 'Alice Jones', '9449305552', 'heron'], ['bert', 'Bert Smith', '9449306621', 'kestrel'], ['cora', 'Cora West', '9449304424', 'heron'], ['dora', 'Dora North', '9449303878', 'kestrel']] as const;
  for (const [id, name, nhs, ward] of people) {
    await put({ resourceType: 'Patient', id, identifier: [{ system: 'https://fhir.nhs.uk/Id/nhs-number', value: nhs }], name: [{ text: name }] });
    await put({ resourceType: 'Encounter', id: `${id}-stay`, status: 'in-progress', class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'IMP' }, subject: { reference: `Patient/${id}` }, serviceProvider: { reference: 'Organization/rhx' }, location: [{ location: { reference: `Location/${ward}` } }] });
  }
  const ctx = t.server.discharge.context;
  const refer = async (id: string, council: string, ward: string, extra: Record<string, unknown> = {}) =>
    (await createReferral(ctx, { patient: `Patient/${id}`, encounter: `Encounter/${id}-stay`, hospitalOds: HOSPITAL, councilOds: council, ward: `Location/${ward}`, pathway: 1, reason: 'Needs support at home', ...extra })).referral.id;
  ids.alice = await refer('alice', COUNCIL, 'heron', { medicallyReady: '2026-01-01', receivedAt: Date.parse('2026-01-01T09:00:00Z') });
  ids.bert = await refer('bert', COUNCIL, 'kestrel', { pathway: 3, medicallyReady: '2026-01-02' });
  ids.cora = await refer('cora', OTHER_COUNCIL, 'heron');
  await recordDischarge(ctx, ids.bert, '2026-01-06T10:00:00Z');

  for (const [ods, name, kind] of [[HOSPITAL, 'Riverside Hospital', 'hospital'], [COUNCIL, 'Eastshire Council', 'council']]) await addOrganisation(t.server.driver, { ods, name, kind });
  await addUser(t.server.driver, { username: 'sam.social', name: 'Sam Social', password: TEST_PASSWORD, fhirUser: 'Practitioner/sam-social', memberships: [{ organisation: COUNCIL, role: 'social-worker' }] });
  await addUser(t.server.driver, { username: 'cath.coord', name: 'Cath Coordinator', password: TEST_PASSWORD, memberships: [{ organisation: HOSPITAL, role: 'discharge-coordinator' }] });
  return ids;
}

/**
 * A hospital of its own, so its figures hold only what a test puts there: one ward and a discharge
 * coordinator who can sign in (`coord.<ods>`); `refer` makes a referral from it to Eastshire for a new person.
 */
export async function ownHospital(t: TestServer, ods: string, name: string): Promise<{ username: string; refer(person: string, extra?: Record<string, unknown>): Promise<string> }> {
  const id = ods.toLowerCase();
  const put = async (r: any) => assert.ok((await t.fhir.put(`${r.resourceType}/${r.id}`, r)).status < 300);
  await put({ resourceType: 'Organization', id, identifier: [{ system: ODS_ORG, value: ods }], name });
  await put({ resourceType: 'Location', id: `${id}-wren`, name: 'Wren Ward', managingOrganization: { reference: `Organization/${id}` } });
  await addOrganisation(t.server.driver, { ods, name, kind: 'hospital' });
  const username = `coord.${id}`;
  await addUser(t.server.driver, { username, name: `${name} coordinator`, password: TEST_PASSWORD, memberships: [{ organisation: ods, role: 'discharge-coordinator' }] });
  const refer = async (person: string, extra: Record<string, unknown> = {}) => {
    const patient = `${id}-${person}`;
    await put({ resourceType: 'Patient', id: patient, name: [{ text: `${person} ${name}` }] });
    await put({ resourceType: 'Encounter', id: `${patient}-stay`, status: 'in-progress', class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'IMP' }, subject: { reference: `Patient/${patient}` }, serviceProvider: { reference: `Organization/${id}` }, location: [{ location: { reference: `Location/${id}-wren` } }] });
    return (await createReferral(t.server.discharge.context, { patient: `Patient/${patient}`, encounter: `Encounter/${patient}-stay`, hospitalOds: ods, councilOds: COUNCIL, ward: `Location/${id}-wren`, pathway: 1, reason: 'Needs support at home', ...extra })).referral.id;
  };
  return { username, refer };
}
