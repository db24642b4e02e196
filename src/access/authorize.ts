// SMART on FHIR's authorization code flow, so apps can act for a signed-in person through the FHIR API:
//   GET  /oauth2/authorize   checks the client, its redirect URI, PKCE and scopes, then asks the person to
//                            sign in (and to choose an organisation and role when they hold several)
//   POST /oauth2/authorize   signs them in and sends them back to the app with a one-minute, single-use code
// The token endpoint (tokenEndpoint.ts) exchanges the code, with the PKCE verifier, for an access token
// that carries the person's role and organisation, so the record applies their relationships.
import { randomBytes, timingSafeEqual } from 'node:crypto';
import rateLimit from '@fastify/rate-limit';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { isTemporaryOutage, OUTAGE_RETRY_AFTER_SECONDS, type SqlDriver } from '../record/index.ts';
import { findClient, type SystemClient } from './clients.ts';
import { grantScopes, signInExtraScopes } from './scopes.ts';
import { ownPatientId } from './relationships.ts';
import type { TokenService } from './tokens.ts';
import type { People } from './people/people.ts';
import { authorizePage, choicePage, errorPage } from './authorizePages.ts';

export const CODE_TYP = 'cb-code+jwt';
const MAX_NONCE_LENGTH = 256;
const REQUEST_TYP = 'cb-authz-request+jwt';
const TICKET_TYP = 'cb-sign-in-ticket+jwt';
const CSRF_COOKIE = 'cb_authorize';
/** The sign-in form: a signed request, a ticket, a username, password and code are a few KB at most. */
const FORM_BODY_LIMIT = 16 * 1024;

export interface AuthorizeOptions {
  driver: SqlDriver;
  tokens: TokenService;
  people: People;
  originOf(req: FastifyRequest): string;
  /** Sign-in attempts per minute per address; lockout protects each account, this protects the service. */
  signInsPerMinute: number;
}

/**
 * What the app asked for, once checked; carried through the sign-in pages signed, so it cannot be altered.
 * `patientContext`: the app asked for patient/ scopes or launch/patient, so the token must be bound to one
 * patient, known only once the person has signed in (issueCode).
 */
export interface AuthorizationRequest { clientId: string; clientName: string; redirectUri: string; scope: string; state?: string; codeChallenge: string; patientContext?: boolean; nonce?: string }

class RedirectError extends Error {
  constructor(readonly code: string, description: string) {
    super(description);
  }
}

export async function authorizeEndpoint(app: FastifyInstance, options: AuthorizeOptions): Promise<void> {
  // Anyone may post the sign-in form before they are known: it is read only up to what it needs.
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: FORM_BODY_LIMIT }, (_req, body, done) => done(null, Object.fromEntries(new URLSearchParams(body as string))));

  // Before the routes: each takes the error handler in force when it is added.
  app.setErrorHandler((err, _req, reply) => {
    const status = (err as { statusCode?: number }).statusCode ?? 500;
    if (status === 429) return html(reply, 429, errorPage('Too many sign-in attempts from this address. Wait a minute and try again.'));
    if (status === 413) return html(reply.header('connection', 'close'), 413, errorPage('This sign-in form was larger than CareBridge accepts. Go back to the app and start again.'));
    if (isTemporaryOutage(err)) return html(reply.header('retry-after', String(OUTAGE_RETRY_AFTER_SECONDS)), 503, errorPage('CareBridge cannot sign you in just now. Wait a minute, then go back to the app and try again.'));
    throw err;
  });

  app.get('/oauth2/authorize', async (req, reply) => {
    const { params: q, repeated } = singleValued(req.query as Record<string, string | string[] | undefined>);
    // Which app, or where to send the person back, is ambiguous: there is no one to tell but the person.
    if (repeated.includes('client_id') || repeated.includes('redirect_uri')) {
      return html(reply, 400, errorPage(`The app sent ${repeated.filter((name) => name === 'client_id' || name === 'redirect_uri').join(' and ')} more than once, so CareBridge cannot tell which is meant and stopped here.`));
    }
    const client = q.client_id ? await findClient(options.driver, q.client_id) : undefined;
    if (!client || client.revoked) return html(reply, 400, errorPage('This app is not registered with CareBridge (unknown or revoked client_id).'));
    const redirectUri = q.redirect_uri ?? (client.redirectUris.length === 1 ? client.redirectUris[0] : undefined);
    // Never send anyone to an address the client did not register.
    if (!redirectUri || !client.redirectUris.includes(redirectUri)) return html(reply, 400, errorPage('The app asked to send you back to an address it has not registered, so CareBridge stopped here.'));
    try {
      if (repeated.length) throw new RedirectError('invalid_request', `Each parameter may be sent once (RFC 6749 section 3.1); ${repeated.join(', ')} came more than once.`);
      const request = checkRequest(client, redirectUri, q, options.originOf(req));
      const csrf = randomBytes(24).toString('base64url');
      reply.header('set-cookie', `${CSRF_COOKIE}=${csrf}; Path=/oauth2/authorize; HttpOnly; SameSite=Strict${req.protocol === 'https' || options.originOf(req).startsWith('https:') ? '; Secure' : ''}`);
      const signed = await options.tokens.signStatement({ ...request }, { typ: REQUEST_TYP, issuer: options.originOf(req), seconds: 600 });
      return html(reply, 200, authorizePage({ request, signed, csrf }));
    } catch (err) {
      if (err instanceof RedirectError) return redirectWithError(reply, redirectUri, err, q.state);
      throw err;
    }
  });

  await app.register(rateLimit, { global: false });
  const limit = { rateLimit: { max: options.signInsPerMinute, timeWindow: '1 minute', errorResponseBuilder: () => ({ statusCode: 429, message: 'Too many sign-in attempts from this address; wait a minute.' }) } };

  app.post('/oauth2/authorize', { config: limit }, async (req, reply) => {
    const form = (req.body ?? {}) as Record<string, string>;
    const origin = options.originOf(req);
    let request: AuthorizationRequest;
    try {
      request = (await options.tokens.verifyStatement(form.request ?? '', { typ: REQUEST_TYP, issuer: origin })) as unknown as AuthorizationRequest;
    } catch {
      return html(reply, 400, errorPage('This sign-in page has expired. Go back to the app and start again.'));
    }
    if (!sameCsrf(cookie(req, CSRF_COOKIE), form.csrf)) return html(reply, 400, errorPage('This sign-in could not be checked (cookies may be blocked). Go back to the app and start again.'));
    const page = { request, signed: form.request, csrf: form.csrf };

    if (form.ticket) {
      let ticket;
      try {
        ticket = await options.tokens.verifyStatement(form.ticket, { typ: TICKET_TYP, issuer: origin });
      } catch {
        return html(reply, 400, errorPage('This sign-in has expired. Go back to the app and start again.'));
      }
      if (!ticketFor(ticket, request)) return html(reply, 400, errorPage('This sign-in was for another request. Go back to the app and start again.'));
      const memberships = ticket.memberships as { organisation?: string; organisationName?: string; role: string }[];
      const chosen = memberships[Number(form.membership)];
      if (!chosen) return html(reply, 400, choicePage({ ...page, ticket: form.ticket, memberships, error: 'Choose who you are acting as.' }));
      if (!(await claimTicket(options.driver, ticket))) return html(reply, 400, errorPage('This sign-in has been used already. Go back to the app and start again.'));
      return issueCode(reply, options, origin, request, { userId: String(ticket.sub), name: String(ticket.name), fhirUser: ticket.fhirUser as string | undefined }, chosen);
    }

    const result = await options.people.signIn({ username: form.username ?? '', password: form.password ?? '', totp: form.totp || undefined, address: req.ip });
    if (!result.ok) {
      return html(reply, result.reason === 'totp-required' ? 200 : 401, authorizePage({ ...page, username: form.username, askTotp: result.reason === 'totp-required' || result.reason === 'totp-invalid', error: result.message }));
    }
    if (result.memberships.length === 1) return issueCode(reply, options, origin, request, result.user, result.memberships[0]);
    const ticket = await options.tokens.signStatement(
      { sub: result.user.userId, name: result.user.name, fhirUser: result.user.fhirUser, memberships: result.memberships, ...ticketBinding(request) },
      { typ: TICKET_TYP, issuer: origin, seconds: 300 },
    );
    return html(reply, 200, choicePage({ ...page, ticket, memberships: result.memberships }));
  });
}

/**
 * The ticket stands for a password (and TOTP) already checked, so it is good only for the request it was
 * issued in: the same app, return address and PKCE challenge. Without this, anyone holding it could mint
 * codes for any app for its 5 minutes.
 */
function ticketBinding(request: AuthorizationRequest): Record<string, string> {
  return { client_id: request.clientId, redirect_uri: request.redirectUri, code_challenge: request.codeChallenge };
}

function ticketFor(ticket: Record<string, unknown>, request: AuthorizationRequest): boolean {
  return Object.entries(ticketBinding(request)).every(([claim, value]) => ticket[claim] === value);
}

/** A ticket gives one code: claimed in the table single-use codes share, atomically (ON CONFLICT). */
async function claimTicket(driver: SqlDriver, ticket: Record<string, unknown>): Promise<boolean> {
  return Boolean(await driver.run('INSERT INTO access_used_assertions (jti, expires_ms) VALUES (?, ?) ON CONFLICT (jti) DO NOTHING', [`ticket:${String(ticket.jti)}`, Number(ticket.exp ?? 0) * 1000]));
}

/**
 * The query with each parameter once; a parameter sent more than once is left out and named in `repeated`,
 * never read as one of its values (which would be a guess) nor as a list (which no check expects).
 */
function singleValued(query: Record<string, string | string[] | undefined>): { params: Record<string, string | undefined>; repeated: string[] } {
  const params: Record<string, string | undefined> = {};
  const repeated: string[] = [];
  for (const [name, value] of Object.entries(query)) {
    if (Array.isArray(value)) repeated.push(name);
    else params[name] = value;
  }
  return { params, repeated };
}

function checkRequest(client: SystemClient, redirectUri: string, q: Record<string, string | undefined>, origin: string): AuthorizationRequest {
  if (q.response_type !== 'code') throw new RedirectError('unsupported_response_type', "response_type must be 'code'.");
  if (!q.code_challenge || q.code_challenge_method !== 'S256' || !/^[A-Za-z0-9_-]{43,128}$/.test(q.code_challenge)) {
    throw new RedirectError('invalid_request', 'PKCE is required: send code_challenge with code_challenge_method=S256.');
  }
  // SMART requires aud: it is how an app learns, before any token exists, that it was sent to a counterfeit
  // server. A request without it was not made for this server's record, so it gets no code for it.
  if (!q.aud || q.aud.replace(/\/$/, '') !== `${origin}/fhir`) throw new RedirectError('invalid_request', `aud is required and must be this server's FHIR base, ${origin}/fhir.`);
  const scopes = grantScopes(q.scope, client.scopes).filter((s) => s.startsWith('user/') || s.startsWith('patient/'));
  if (!scopes.length) throw new RedirectError('invalid_scope', `None of the requested scopes ('${q.scope ?? ''}') is granted to this app for a person.`);
  const launchPatient = (q.scope ?? '').split(/\s+/).includes('launch/patient');
  const patientContext = scopes.some((s) => s.startsWith('patient/')) || launchPatient;
  // The patient context asked for is granted (or the sign-in refused), so the granted scope says so, as
  // SMART apps read it; launch/patient grants no resource access of its own (parseScope ignores it).
  const granted = [...(launchPatient ? ['launch/patient'] : []), ...scopes, ...signInExtraScopes(q.scope, client.scopes)];
  // OpenID Connect: the app's nonce comes back in the id_token, tying it to this request. Bounded, as it is
  // carried through the sign-in pages and the code.
  if (q.nonce !== undefined && (!q.nonce || q.nonce.length > MAX_NONCE_LENGTH)) throw new RedirectError('invalid_request', `nonce, when sent, must be 1 to ${MAX_NONCE_LENGTH} characters.`);
  return {
    clientId: client.clientId, clientName: client.name, redirectUri, scope: granted.join(' '), ...(q.state ? { state: q.state } : {}), codeChallenge: q.code_challenge,
    ...(patientContext ? { patientContext } : {}), ...(q.nonce ? { nonce: q.nonce } : {}),
  };
}

/**
 * The patient a token for this sign-in is bound to, when the app asked for a patient context. CareBridge has
 * no patient picker, so the context can only be a person's own record; for anyone else (staff, carers) such
 * a request is refused rather than granted as if it were for every record they may see.
 */
function patientFor(request: AuthorizationRequest, user: { fhirUser?: string }, membership: { role: string }): { patient?: string } {
  if (!request.patientContext) return {};
  const patient = ownPatientId(membership.role, user.fhirUser);
  if (patient === undefined) {
    throw new RedirectError('invalid_scope', `patient/ scopes and launch/patient need a patient context, and CareBridge can give one only to a person signing in to their own record (role 'person'); you signed in as '${membership.role}'. Ask for user/ scopes instead.`);
  }
  return { patient };
}

async function issueCode(
  reply: FastifyReply, options: AuthorizeOptions, origin: string, request: AuthorizationRequest,
  user: { userId: string; name: string; fhirUser?: string }, membership: { organisation?: string; role: string },
): Promise<FastifyReply> {
  let context;
  try {
    context = patientFor(request, user, membership);
  } catch (err) {
    if (err instanceof RedirectError) return redirectWithError(reply, request.redirectUri, err, request.state);
    throw err;
  }
  const code = await options.tokens.signStatement(
    {
      ...context,
      sub: user.userId, name: user.name, ...(user.fhirUser ? { fhirUser: user.fhirUser } : {}), role: membership.role, ...(membership.organisation ? { org: membership.organisation } : {}),
      client_id: request.clientId, redirect_uri: request.redirectUri, scope: request.scope, code_challenge: request.codeChallenge,
      ...(request.nonce ? { nonce: request.nonce } : {}),
    },
    { typ: CODE_TYP, issuer: origin, seconds: 60 },
  );
  const target = new URL(request.redirectUri);
  target.searchParams.set('code', code);
  if (request.state) target.searchParams.set('state', request.state);
  return reply.code(303).header('location', target.toString()).header('cache-control', 'no-store').send();
}

function redirectWithError(reply: FastifyReply, redirectUri: string, err: RedirectError, state?: string): FastifyReply {
  const target = new URL(redirectUri);
  target.searchParams.set('error', err.code);
  target.searchParams.set('error_description', err.message);
  if (state) target.searchParams.set('state', state);
  return reply.code(303).header('location', target.toString()).send();
}

function html(reply: FastifyReply, status: number, body: string): FastifyReply {
  return reply.code(status).type('text/html; charset=utf-8').header('cache-control', 'no-store').header('content-security-policy', "default-src 'none'; frame-ancestors 'none'").send(body);
}

function cookie(req: FastifyRequest, name: string): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const [k, ...v] = part.trim().split('=');
    if (k === name) return v.join('=');
  }
  return undefined;
}

function sameCsrf(a: string | undefined, b: string | undefined): boolean {
  if (!a || !b || a.length !== b.length) return false;
  return timingSafeEqual(Buffer.from(a), Buffer.from(b));
}
