// People for API tests: real accounts (addUser), signed in through the real SMART authorization code flow
// with PKCE (GET/POST /oauth2/authorize, then POST /oauth2/token), as an app would.
import { createHash, randomBytes } from 'node:crypto';
import { addClient, addOrganisation, addUser, findClient, findOrganisation, type Role } from '../../src/access/index.ts';
import type { TestServer } from './server.ts';

export const TEST_APP = { clientId: 'test-app', redirectUri: 'http://127.0.0.1:9/callback' };
export const PERSON_PASSWORD = 'correct horse battery staple';

export interface TestPerson { username: string; role: Role; org?: string; fhirUser?: string; name?: string; alsoAs?: { org?: string; role: Role }[] }

/** Registers the public test app (once), the person's organisations and account; answers their user id. */
export async function addPerson(t: TestServer, p: TestPerson): Promise<string> {
  const db = t.server.driver;
  if (!(await findClient(db, TEST_APP.clientId))) {
    await addClient(db, { clientId: TEST_APP.clientId, name: 'Test app', scopes: 'user/*.cruds', redirectUris: [TEST_APP.redirectUri], publicClient: true });
  }
  const memberships = [{ org: p.org, role: p.role }, ...(p.alsoAs ?? [])];
  for (const m of memberships) {
    if (m.org && !(await findOrganisation(db, m.org))) await addOrganisation(db, { ods: m.org, name: `Organisation ${m.org}`, kind: 'other' });
  }
  const { userId } = await addUser(db, { username: p.username, name: p.name ?? p.username, password: PERSON_PASSWORD, memberships: memberships.map((m) => ({ organisation: m.org, role: m.role })), fhirUser: p.fhirUser });
  return userId;
}

export interface FlowStep { status: number; location?: string; html: string }

/** Starts the flow; answers the sign-in page (or the error). */
export async function authorize(t: TestServer, params: Record<string, string>): Promise<{ res: Response; html: string; cookie: string }> {
  const res = await fetch(`${t.url}/oauth2/authorize?${new URLSearchParams(params)}`, { redirect: 'manual' });
  return { res, html: await res.text(), cookie: (res.headers.get('set-cookie') ?? '').split(';')[0] };
}

export function hiddenField(html: string, name: string): string {
  const m = new RegExp(`name="${name}" value="([^"]*)"`).exec(html);
  if (!m) throw new Error(`no hidden field ${name} in ${html.slice(0, 300)}`);
  return m[1].replace(/&amp;/g, '&').replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>');
}

export function pkce(): { verifier: string; challenge: string } {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
}

export async function postAuthorize(t: TestServer, cookie: string, form: Record<string, string>): Promise<Response> {
  return fetch(`${t.url}/oauth2/authorize`, { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded', cookie }, body: new URLSearchParams(form).toString() });
}

export async function exchange(t: TestServer, form: Record<string, string>): Promise<{ status: number; body: any }> {
  const res = await fetch(`${t.url}/oauth2/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ grant_type: 'authorization_code', ...form }).toString() });
  return { status: res.status, body: await res.json() };
}

/** The whole flow for one person (acting as `role` when they hold several): an access token for them. */
export async function personToken(t: TestServer, username: string, scope = 'user/*.cruds', role?: Role): Promise<string> {
  return (await personSignIn(t, username, { scope, role })).access_token;
}

export interface SignInOptions { scope?: string; role?: Role; app?: { clientId: string; redirectUri: string }; nonce?: string; form?: Record<string, string> }

/**
 * The whole flow for one person, through `app` (the test app unless given), with `nonce` when given: the
 * token response the app gets.
 */
export async function personSignIn(t: TestServer, username: string, options: SignInOptions = {}): Promise<any> {
  const { code, exchangeForm } = await personCode(t, username, options);
  const token = await exchange(t, { code, ...exchangeForm });
  if (token.status !== 200) throw new Error(`token: ${token.status} ${JSON.stringify(token.body)}`);
  return token.body;
}

/** personSignIn up to the code the app is sent back with, and the rest of the form that exchanges it. */
export async function personCode(t: TestServer, username: string, options: SignInOptions = {}): Promise<{ code: string; exchangeForm: Record<string, string> }> {
  const { scope = 'user/*.cruds', role, app = TEST_APP, nonce } = options;
  const { verifier, challenge } = pkce();
  const start = await authorize(t, { response_type: 'code', client_id: app.clientId, redirect_uri: app.redirectUri, scope, state: 'st', code_challenge: challenge, code_challenge_method: 'S256', aud: t.base, ...(nonce ? { nonce } : {}) });
  if (start.res.status !== 200) throw new Error(`authorize: ${start.res.status} ${start.html.slice(0, 300)}`);
  const form = { request: hiddenField(start.html, 'request'), csrf: hiddenField(start.html, 'csrf') };
  let signedIn = await postAuthorize(t, start.cookie, { ...form, username, password: PERSON_PASSWORD });
  if (signedIn.status === 200) {
    const choice = await signedIn.text();
    const option = [...choice.matchAll(/value="(\d+)"[^>]*> <label for="m\d+">([^<,]+)/g)].find((m) => m[2] === role);
    if (!option) throw new Error(`no membership ${role} offered: ${choice.slice(0, 400)}`);
    signedIn = await postAuthorize(t, start.cookie, { ...form, ticket: hiddenField(choice, 'ticket'), membership: option[1] });
  }
  const location = signedIn.headers.get('location');
  if (signedIn.status !== 303 || !location) throw new Error(`sign-in: ${signedIn.status} ${(await signedIn.text()).slice(0, 300)}`);
  const code = new URL(location).searchParams.get('code');
  if (!code) throw new Error(`sign-in refused: ${location}`);
  return { code, exchangeForm: { redirect_uri: app.redirectUri, code_verifier: verifier, client_id: app.clientId, ...options.form } };
}

/** POST /oauth2/token with grant_type=refresh_token. */
export async function refreshToken(t: TestServer, form: Record<string, string>, headers: Record<string, string> = {}): Promise<{ status: number; body: any }> {
  const res = await fetch(`${t.url}/oauth2/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, body: new URLSearchParams({ grant_type: 'refresh_token', ...form }).toString() });
  return { status: res.status, body: await res.json() };
}
