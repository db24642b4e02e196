// A real portal for tests: the real record (SQLite file or PostgreSQL) loaded with the demo dataset, the
// real access checks and audit trail, over real HTTP. People's accounts are not built yet, so the one
// thing stood in for is the session lookup: a test says which actor a session id speaks for.
import Fastify from 'fastify';
import { openRecordStore, handleFhirRequest, UNRESTRICTED, type SqlDriver } from '../../src/record/index.ts';
import { setUpAccess, type Access, type UserActor } from '../../src/access/index.ts';
import { buildDemoDataset } from '../../src/demo/index.ts';
import { portal, type PortalSessions } from '../../src/portal/index.ts';
import { testDatabase, type Engine } from '../support/server.ts';
import { randomUUID } from 'node:crypto';

export interface PortalTestServer {
  url: string;
  driver: SqlDriver;
  access: Access;
  /** A session for `actor`; returns the Cookie header value. */
  sessionFor(actor: UserActor): { id: string; cookie: string };
  /** Ends a session as its expiry would. */
  expire(id: string): void;
  /** Runs a FHIR request with no access checks (to look at what the portal wrote). */
  fhir(method: string, path: string, query?: [string, string][]): Promise<any>;
  close(): Promise<void>;
}

export const CARE_HOME_CARER: UserActor = {
  kind: 'user',
  userId: 'test-carer',
  name: 'Test Carer',
  organisation: 'VM101',
  role: 'care-home-staff',
  fhirUser: 'Practitioner/demo-prac-vm101-senior-carer',
  purpose: 'TREAT',
  scope: 'user/*.cruds',
};

export async function startPortalServer(engine: Engine): Promise<PortalTestServer> {
  const { database, cleanup } = await testDatabase(engine);
  const driver = await openRecordStore(database);
  const { bundle } = buildDemoDataset();
  await handleFhirRequest({ base: 'http://127.0.0.1/fhir', driver, access: UNRESTRICTED }, { method: 'POST', path: '', query: [], body: bundle, prefer: 'return=minimal' });
  const access = await setUpAccess(driver, { tokenRequestsPerMinute: 60, database });
  const live = new Map<string, UserActor>();
  const sessions: PortalSessions = {
    start: async () => {
      throw new Error('sessions.start belongs to people’s accounts, which these tests do not sign in through');
    },
    actor: async (id) => live.get(id),
    end: async (id) => void live.delete(id),
  };
  const app = Fastify();
  await app.register(portal, {
    driver,
    access: {
      controlFor: access.controlFor,
      accounts: { people: { signIn: async () => ({ ok: false, reason: 'invalid', message: 'Enter a username and password that match an account' }) }, sessions },
    },
  });
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  return {
    url,
    driver,
    access,
    sessionFor(actor) {
      const id = randomUUID();
      live.set(id, { ...actor, sessionId: id });
      return { id, cookie: `carebridge_session=${id}` };
    },
    expire: (id) => void live.delete(id),
    async fhir(method, path, query = []) {
      const r = await handleFhirRequest({ base: `${url}/fhir`, driver, access: UNRESTRICTED }, { method, path, query });
      return typeof r.body === 'string' ? JSON.parse(r.body) : r.body;
    },
    async close() {
      await app.close();
      await access.close();
      await driver.close();
      cleanup();
    },
  };
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
