// A real portal for tests: the real record (SQLite file or PostgreSQL) loaded with the demo dataset, the
// real access checks, audit trail, people's accounts and sessions, over real HTTP. Tests add people with
// addUser and sign them in through the real sign-in form.
import Fastify from 'fastify';
import { openRecordStore, handleFhirRequest, UNRESTRICTED, type SqlDriver } from '../../src/record/index.ts';
import { addOrganisation, addUser, setUpAccess, type Access, type Role } from '../../src/access/index.ts';
import { buildDemoDataset } from '../../src/demo/index.ts';
import { portal } from '../../src/portal/index.ts';
import { portalAdministration, portalDeadLetters } from '../../src/server.ts';
import { migrateMessaging } from '../../src/messaging/index.ts';
import { testDatabase, type Engine } from '../support/server.ts';

/** Every test person's password (synthetic, long enough for the password rules). */
export const TEST_PASSWORD = 'synthetic-test-passphrase-7';

export interface TestPerson {
  username: string;
  name: string;
  role: Role;
  organisation?: string;
  fhirUser?: string;
}

/** A senior carer at Willow Lodge (VM101), the demo dataset's first care home. */
export const CARE_HOME_CARER: TestPerson = {
  username: 'test.carer',
  name: 'Test Carer',
  organisation: 'VM101',
  role: 'care-home-staff',
  fhirUser: 'Practitioner/demo-prac-vm101-senior-carer',
};

export const PRIVACY_OFFICER: TestPerson = { username: 'test.privacy', name: 'Pat Privacy', organisation: 'LA918', role: 'privacy-officer' };
export const WARD_NURSE: TestPerson = { username: 'test.nurse', name: 'Test Nurse', organisation: 'RX9', role: 'ward-nurse' };
export const SOCIAL_WORKER: TestPerson = { username: 'test.social', name: 'Test Social Worker', organisation: 'LA918', role: 'social-worker' };
export const BROKER: TestPerson = { username: 'test.broker', name: 'Test Broker', organisation: 'LA918', role: 'broker' };
export const ADMIN: TestPerson = { username: 'test.admin', name: 'Test Admin', role: 'admin' };

export interface SignedIn {
  /** The session id, as the browser's cookie carries it. */
  id: string;
  /** The Cookie header value. */
  cookie: string;
}

export interface PortalTestServer {
  url: string;
  driver: SqlDriver;
  access: Access;
  /** Adds an account (once per username) with TEST_PASSWORD. */
  addPerson(person: TestPerson): Promise<void>;
  /** Signs `person` in through the sign-in form (adding their account first if need be). */
  signIn(person: TestPerson): Promise<SignedIn>;
  /** Moves the sessions' clock on, as time passing would. */
  advanceClock(ms: number): void;
  /** Runs a FHIR request with no access checks (to look at what the portal wrote). */
  fhir(method: string, path: string, query?: [string, string][], body?: unknown): Promise<any>;
  close(): Promise<void>;
}

const ODS_SYSTEM = 'https://fhir.nhs.uk/Id/ods-organization-code';

/** The demo dataset's organisations, registered as organisations people act for. */
async function addDemoOrganisations(driver: SqlDriver, fhir: PortalTestServer['fhir']): Promise<void> {
  const bundle = await fhir('GET', 'Organization', [['_count', '1000']]);
  for (const { resource } of bundle.entry) {
    const ods = resource.identifier?.find((i: { system?: string }) => i.system === ODS_SYSTEM)?.value;
    const text = String(resource.type?.[0]?.text ?? '').toLowerCase();
    const kind = text.includes('care home') ? 'care-home' : text.includes('council') || text.includes('local authority') ? 'council' : 'other';
    if (ods) await addOrganisation(driver, { ods, name: resource.name ?? ods, kind });
  }
}

export async function startPortalServer(engine: Engine): Promise<PortalTestServer> {
  const { database, cleanup } = await testDatabase(engine);
  const driver = await openRecordStore(database);
  const { bundle } = buildDemoDataset();
  await handleFhirRequest({ base: 'http://127.0.0.1/fhir', driver, access: UNRESTRICTED }, { method: 'POST', path: '', query: [], body: bundle, prefer: 'return=minimal' });
  let shift = 0;
  const access = await setUpAccess(driver, { tokenRequestsPerMinute: 60, database, people: { now: () => Date.now() + shift } });
  await migrateMessaging(driver); // the dead-letter page reads the (here empty) MESH inbox
  const app = Fastify();
  await app.register(portal, {
    driver,
    services: access.services,
    access: { controlFor: access.controlFor, accounts: { people: access.people, sessions: access.sessions }, breakGlass: access.breakGlass, administration: portalAdministration(driver, access.administered) },
    deadLetters: portalDeadLetters(driver, access),
  });
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  const fhir: PortalTestServer['fhir'] = async (method, path, query = [], body) => {
    // With the access layer's services, so AuditEvents are served from the audit journal as over the API.
    const r = await handleFhirRequest({ base: `${url}/fhir`, driver, access: UNRESTRICTED, services: access.services }, { method, path, query, body, contentType: body === undefined ? undefined : 'application/fhir+json' });
    return typeof r.body === 'string' ? JSON.parse(r.body) : r.body;
  };
  await addDemoOrganisations(driver, fhir);
  const added = new Set<string>();
  const addPerson = async (person: TestPerson) => {
    if (added.has(person.username)) return;
    added.add(person.username);
    await addUser(driver, { username: person.username, name: person.name, password: TEST_PASSWORD, fhirUser: person.fhirUser, memberships: [{ organisation: person.organisation, role: person.role }] });
  };
  return {
    url,
    driver,
    access,
    addPerson,
    async signIn(person) {
      await addPerson(person);
      const form = await fetch(`${url}/sign-in`);
      const formCookie = cookiesFrom(form);
      const res = await fetch(`${url}/sign-in`, {
        method: 'POST',
        redirect: 'manual',
        headers: { cookie: formCookie, 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ _csrf: csrfTokenIn(await form.text()), username: person.username, password: TEST_PASSWORD }).toString(),
      });
      const id = /carebridge_session=([^;]+)/.exec(res.headers.getSetCookie().join('\n'))?.[1];
      if (res.status !== 303 || !id) throw new Error(`${person.username} could not sign in: ${res.status}`);
      return { id, cookie: `carebridge_session=${id}` };
    },
    advanceClock: (ms) => void (shift += ms),
    fhir,
    async close() {
      await app.close();
      await access.close();
      await driver.close();
      cleanup();
    },
  };
}

/** The Cookie header value that sends back what a response set. */
function cookiesFrom(res: Response): string {
  return res.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ');
}

/** The CSRF token in a page's forms. */
export function csrfTokenIn(html: string): string {
  const m = /name="_csrf" value="([^"]+)"/.exec(html);
  if (!m) throw new Error('no CSRF token in the page');
  return m[1];
}

/** Visible text of a page, tags stripped and white space collapsed, for assertions about what a person reads. */
export function textOf(html: string): string {
  return html.replace(/<script[\s\S]*?<\/script>/g, '').replace(/<[^>]+>/g, ' ').replace(/&nbsp;/g, ' ').replace(/&#39;/g, "'").replace(/&quot;/g, '"').replace(/&amp;/g, '&').replace(/\s+/g, ' ');
}
