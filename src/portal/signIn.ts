// Sign-in, the choice of organisation and role, and sign-out. The password check and sessions belong to
// people's accounts (src/access); the portal only asks them and keeps the session id in a cookie.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { mac, sameText } from './keys.ts';
import { cookieOptions, PENDING_COOKIE, SESSION_COOKIE, visitOf } from './visit.ts';
import { errorView, type FieldError, type SendPage } from './page.ts';
import { homePath, ROLE_LABELS } from './roles.ts';
import type { Membership, PortalAccess, SignedInUser } from './portalAccess.ts';

/** Time allowed to choose an organisation and role after the password was accepted. */
const CHOICE_SECONDS = 5 * 60;

const NOTICES: Record<string, string> = {
  expired: 'Your session has ended, so you have been signed out. Sign in again to continue.',
  'signed-out': 'You have signed out.',
  'choice-expired': 'You took too long to choose an organisation and role. Sign in again.',
};

interface Pending {
  user: SignedInUser;
  memberships: Membership[];
  /** Epoch ms after which the choice is refused. */
  until: number;
}

export interface SignInOptions {
  send: SendPage;
  accounts: PortalAccess['accounts'];
  /** Signs the pending sign-in cookie, so a person can only choose among their own memberships. */
  pendingKey: Buffer;
}

export function signInRoutes(app: FastifyInstance, { send, accounts, pendingKey }: SignInOptions): void {
  const sealPending = (p: Pending) => {
    const body = Buffer.from(JSON.stringify(p)).toString('base64url');
    return `${body}.${mac(pendingKey, body)}`;
  };
  const openPending = (req: FastifyRequest): Pending | undefined => {
    const [body, signature] = (req.cookies[PENDING_COOKIE] ?? '').split('.');
    if (!body || !signature || !sameText(signature, mac(pendingKey, body))) return undefined;
    const pending = JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as Pending;
    return pending.until > Date.now() ? pending : undefined;
  };

  const signInPage = (req: FastifyRequest, values: Record<string, string>, errors: FieldError[], askTotp: boolean, notice?: string) => ({
    pageTitle: 'Sign in',
    values,
    askTotp,
    notice,
    unavailable: !accounts,
    ...errorView(errors),
  });

  app.get<{ Querystring: { reason?: string } }>('/sign-in', async (req, reply) => {
    const visit = visitOf(req);
    if (visit.actor) return reply.redirect(homePath(visit.actor.role));
    const notice = visit.sessionEnded ? NOTICES.expired : NOTICES[req.query.reason ?? ''];
    return send(req, reply, 'pages/sign-in.njk', signInPage(req, {}, [], false, notice));
  });

  app.post<{ Body: Record<string, string | undefined> }>('/sign-in', async (req, reply) => {
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
    if (result.memberships.length === 0) {
      return send(req, reply, 'pages/sign-in.njk', signInPage(req, kept, [{ field: 'username', text: 'Your account is not linked to any organisation or role yet; ask your administrator to add you' }], false), 403);
    }
    if (result.memberships.length === 1) return startSession(req, reply, result.user.userId, result.memberships[0]);
    reply.setCookie(PENDING_COOKIE, sealPending({ user: result.user, memberships: result.memberships, until: Date.now() + CHOICE_SECONDS * 1000 }), cookieOptions(req, CHOICE_SECONDS));
    return reply.redirect('/sign-in/choose', 303);
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
    return startSession(req, reply, pending.user.userId, membership);
  });

  async function startSession(req: FastifyRequest, reply: import('fastify').FastifyReply, userId: string, membership: Membership) {
    const session = await accounts!.sessions.start(userId, membership, { address: req.ip });
    const seconds = Math.max(1, Math.floor((session.expiresAt - Date.now()) / 1000));
    reply.setCookie(SESSION_COOKIE, session.id, cookieOptions(req, seconds));
    return reply.redirect(homePath(membership.role), 303);
  }

  app.post('/sign-out', async (req, reply) => {
    const visit = visitOf(req);
    if (visit.sessionId && accounts) await accounts.sessions.end(visit.sessionId);
    reply.clearCookie(SESSION_COOKIE, cookieOptions(req));
    return reply.redirect('/sign-in?reason=signed-out', 303);
  });
}
