// Sign-in, the choice of organisation and role, and sign-out. The password check and sessions belong to
// people's accounts (src/access); the portal only asks them and keeps the session id in a cookie.
import { randomBytes } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { mac, sameText } from './keys.ts';
import { cookieOptions, PENDING_COOKIE, SESSION_COOKIE, visitOf } from './visit.ts';
import { errorView, type FieldError, type SendPage } from './page.ts';
import { homePath, ROLE_LABELS } from './roles.ts';
import type { Membership, OidcHandshake, PortalAccess, SignedInUser } from './portalAccess.ts';

/** Time allowed to choose an organisation and role after the password was accepted. */
const CHOICE_SECONDS = 5 * 60;
/** Time allowed at the identity provider. */
const OIDC_SECONDS = 10 * 60;
const OIDC_COOKIE = 'cb_oidc';

const NOTICES: Record<string, string> = {
  expired: 'Your session has ended, so you have been signed out. Sign in again to continue.',
  'signed-out': 'You have signed out.',
  'choice-expired': 'You took too long to choose an organisation and role. Sign in again.',
  'oidc-failed': 'Signing in with your organisation’s account did not work. Try again, or sign in with your CareBridge username and password.',
};

interface Pending {
  user: SignedInUser;
  memberships: Membership[];
  /** Epoch ms after which the choice is refused. */
  until: number;
  /** Random: the choice is made once per password check (claimed server-side), and sign-out spends it. */
  nonce: string;
}

export interface SignInOptions {
  send: SendPage;
  accounts: PortalAccess['accounts'];
  /** Signs the pending sign-in cookie, so a person can only choose among their own memberships. */
  pendingKey: Buffer;
  /** Sign-in attempts per minute per address: lockout protects each account, this protects the service. */
  perMinute: number;
  /** The address the identity provider sends people back to (CAREBRIDGE_OIDC_REDIRECT_URI); default /auth/oidc/callback here. */
  oidcRedirectUri?: string;
}

export function signInRoutes(app: FastifyInstance, { send, accounts, pendingKey, perMinute, oidcRedirectUri }: SignInOptions): void {
  const sealPending = (p: Pending) => {
    const body = Buffer.from(JSON.stringify(p)).toString('base64url');
    return `${body}.${mac(pendingKey, body)}`;
  };
  const openPending = (req: FastifyRequest): Pending | undefined => {
    const [body, signature] = (req.cookies[PENDING_COOKIE] ?? '').split('.');
    if (!body || !signature || !sameText(signature, mac(pendingKey, body))) return undefined;
    const pending = JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as Pending;
    return pending.until > Date.now() && typeof pending.nonce === 'string' ? pending : undefined;
  };

  const signInPage = (req: FastifyRequest, values: Record<string, string>, errors: FieldError[], askTotp: boolean, notice?: string) => ({
    pageTitle: 'Sign in',
    values,
    askTotp,
    notice,
    unavailable: !accounts,
    oidc: Boolean(accounts?.people.oidc),
    ...errorView(errors),
  });

  app.get<{ Querystring: { reason?: string } }>('/sign-in', async (req, reply) => {
    const visit = visitOf(req);
    if (visit.actor) return reply.redirect(homePath(visit.actor.role));
    const notice = visit.sessionEnded ? NOTICES.expired : NOTICES[req.query.reason ?? ''];
    return send(req, reply, 'pages/sign-in.njk', signInPage(req, {}, [], false, notice));
  });

  // Counted after the portal's own checks (preHandler), so only real attempts count and the refusal page
  // can be drawn like any other.
  const limit = { rateLimit: { hook: 'preHandler' as const, max: perMinute, timeWindow: '1 minute', errorResponseBuilder: () => ({ statusCode: 429, message: 'Too many sign-in attempts' }) } };
  app.post<{ Body: Record<string, string | undefined> }>('/sign-in', { config: limit }, async (req, reply) => {
    const username = (req.body.username ?? '').trim();
    const password = req.body.password ?? '';
    const totp = (req.body.totp ?? '').replace(/\s+/g, '');
    const askedTotp = req.body.askTotp === 'yes';
    const errors: FieldError[] = [];
    if (!username) errors.push({ field: 'username', text: 'Enter your username' });
    if (!password) errors.push({ field: 'password', text: 'Enter your password' });
    if (askedTotp && !/^\d{6}$/.test(totp)) errors.push({ field: 'totp', text: totp ? 'Enter the security code as 6 digits' : 'Enter the 6-digit security code from your authenticator app' });
    if (!accounts) errors.push({ field: 'username', text: 'Sign-in is not available on this server yet: people’s accounts are not switched on' });
    // Never send the password back into the page; the username and the code are kept.
    const kept = { username, totp };
    if (errors.length || !accounts) return send(req, reply, 'pages/sign-in.njk', signInPage(req, kept, errors, askedTotp), 400);

    const result = await accounts.people.signIn({ username, password, totp: askedTotp ? totp : undefined, address: req.ip });
    if (!result.ok) {
      const askTotp = askedTotp || result.reason === 'totp-required' || result.reason === 'totp-invalid';
      const field = result.reason === 'totp-invalid' ? 'totp' : result.reason === 'totp-required' ? 'password' : 'username';
      const text = result.reason === 'totp-required' ? 'Enter your password again and the 6-digit security code from your authenticator app' : result.message;
      return send(req, reply, 'pages/sign-in.njk', signInPage(req, kept, [{ field, text }], askTotp), result.reason === 'totp-required' ? 200 : 401);
    }
    return signedIn(req, reply, result.user, result.memberships, kept);
  });

  /** After the password or the provider said yes: straight in with one membership, or choose among several. */
  async function signedIn(req: FastifyRequest, reply: FastifyReply, user: SignedInUser, memberships: Membership[], kept: Record<string, string> = {}) {
    if (memberships.length === 0) {
      return send(req, reply, 'pages/sign-in.njk', signInPage(req, kept, [{ field: 'username', text: 'Your account is not linked to any organisation or role yet; ask your administrator to add you' }], false), 403);
    }
    if (memberships.length === 1) return startSession(req, reply, user.userId, memberships[0]);
    const pending = { user, memberships, until: Date.now() + CHOICE_SECONDS * 1000, nonce: randomBytes(16).toString('base64url') };
    reply.setCookie(PENDING_COOKIE, sealPending(pending), cookieOptions(req, CHOICE_SECONDS));
    return reply.redirect('/sign-in/choose', 303);
  }

  // OpenID Connect: off to the organisation's provider, and back. The handshake (state, nonce, PKCE
  // verifier) waits in a signed cookie; the provider's answer is checked by people's accounts.
  const seal = (value: unknown) => {
    const body = Buffer.from(JSON.stringify(value)).toString('base64url');
    return `${body}.${mac(pendingKey, `oidc:${body}`)}`;
  };
  const unseal = (sealed: string | undefined): OidcHandshake | undefined => {
    const [body, signature] = (sealed ?? '').split('.');
    if (!body || !signature || !sameText(signature, mac(pendingKey, `oidc:${body}`))) return undefined;
    return JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as OidcHandshake;
  };

  app.get('/auth/oidc/start', async (req, reply) => {
    const oidc = accounts?.people.oidc;
    if (!oidc) return reply.redirect('/sign-in', 303);
    const origin = `${req.protocol}://${req.headers.host ?? 'localhost'}`;
    const { url, state } = await oidc.start({ returnTo: '/', redirectUri: oidcRedirectUri ?? `${origin}/auth/oidc/callback` });
    reply.setCookie(OIDC_COOKIE, seal(state), cookieOptions(req, OIDC_SECONDS));
    return reply.redirect(url, 303);
  });

  app.get('/auth/oidc/callback', async (req, reply) => {
    const oidc = accounts?.people.oidc;
    const state = unseal(req.cookies[OIDC_COOKIE]);
    reply.clearCookie(OIDC_COOKIE, cookieOptions(req));
    if (!oidc || !state) return reply.redirect('/sign-in?reason=oidc-failed', 303);
    const callback = new URL(req.url, state.redirectUri);
    const result = await oidc.finish(callback, state, { address: req.ip }).catch(() => undefined);
    if (!result?.ok) return send(req, reply, 'pages/sign-in.njk', signInPage(req, {}, [{ field: 'username', text: result?.message ?? NOTICES['oidc-failed'] }], false), 401);
    return signedIn(req, reply, result.user, result.memberships);
  });

  const choices = (p: Pending) =>
    p.memberships.map((m, i) => ({ value: String(i), text: `${ROLE_LABELS[m.role]}${m.organisationName ? ` at ${m.organisationName}` : m.organisation ? ` at ${m.organisation}` : ''}` }));

  app.get('/sign-in/choose', async (req, reply) => {
    const pending = openPending(req);
    if (!pending) return reply.redirect('/sign-in?reason=choice-expired');
    return send(req, reply, 'pages/choose-role.njk', { pageTitle: 'Choose your organisation and role', name: pending.user.name, choices: choices(pending), ...errorView([]) });
  });

  app.post<{ Body: Record<string, string | undefined> }>('/sign-in/choose', async (req, reply) => {
    const pending = openPending(req);
    if (!pending) return reply.redirect('/sign-in?reason=choice-expired', 303);
    const index = Number(req.body.membership);
    const membership = Number.isInteger(index) && req.body.membership !== '' ? pending.memberships[index] : undefined;
    if (!membership) {
      return send(req, reply, 'pages/choose-role.njk', {
        pageTitle: 'Choose your organisation and role', name: pending.user.name, choices: choices(pending),
        ...errorView([{ field: 'membership', text: 'Select the organisation and role you are working in today' }]),
      }, 400);
    }
    reply.clearCookie(PENDING_COOKIE, cookieOptions(req));
    // Clearing the cookie does not stop a copy of it being sent again: the server claims it once.
    if (!(await accounts?.sessions.claimOnce(`pending:${pending.nonce}`, pending.until - Date.now()))) return reply.redirect('/sign-in?reason=choice-expired', 303);
    return startSession(req, reply, pending.user.userId, membership);
  });

  async function startSession(req: FastifyRequest, reply: FastifyReply, userId: string, membership: Membership) {
    const session = await accounts!.sessions.start(userId, membership, { address: req.ip });
    // Signing in again replaces the browser's session: the old id is ended, not left live beside the new
    // one (a fresh id at every sign-in, so an id known before it is worth nothing after).
    const previous = visitOf(req).sessionId;
    if (previous) await accounts!.sessions.end(previous);
    // A browser-session cookie (no Max-Age): the server's idle and absolute expiry decide when the session
    // ends, and are extended by activity. A Max-Age fixed at sign-in would make the browser drop the cookie
    // 30 minutes in, however busy the person was, and their next form would be lost.
    reply.setCookie(SESSION_COOKIE, session.id, cookieOptions(req));
    return reply.redirect(homePath(membership.role), 303);
  }

  app.post('/sign-out', async (req, reply) => {
    const visit = visitOf(req);
    if (visit.sessionId && accounts) await accounts.sessions.end(visit.sessionId);
    // Signing out part-way through signing in (before choosing a role) spends that step too.
    const pending = openPending(req);
    if (pending && accounts) await accounts.sessions.claimOnce(`pending:${pending.nonce}`, pending.until - Date.now());
    reply.clearCookie(SESSION_COOKIE, cookieOptions(req));
    reply.clearCookie(PENDING_COOKIE, cookieOptions(req));
    return reply.redirect('/sign-in?reason=signed-out', 303);
  });
}
