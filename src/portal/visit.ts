// Who is behind a page request: the session cookie → the signed-in person (through the accounts'
// sessions), plus the CSRF token every form on the page must send back. Cookies are HttpOnly,
// SameSite=Lax, and Secure whenever the portal is reached over https.
import { randomBytes } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { CookieSerializeOptions } from '@fastify/cookie';
import type { UserActor } from '../access/index.ts';
import { mac, sameText } from './keys.ts';
import type { PortalSessions } from './portalAccess.ts';

export const SESSION_COOKIE = 'carebridge_session';
/** Before sign-in there is no session: this random value stands in for it, so the sign-in form is protected too. */
export const FORM_COOKIE = 'carebridge_form';
/** The signed result of a password check while the person chooses an organisation and role. */
export const PENDING_COOKIE = 'carebridge_signin';

export interface Visit {
  actor?: UserActor;
  sessionId?: string;
  /** A session cookie was sent but its session has ended (expired, or signed out elsewhere). */
  sessionEnded: boolean;
  csrfToken: string;
}

const visits = new WeakMap<FastifyRequest, Visit>();

export function visitOf(req: FastifyRequest): Visit {
  const visit = visits.get(req);
  if (!visit) throw new Error('The portal visit is read before the portal hook ran.');
  return visit;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The server's public address (CAREBRIDGE_BASE_URL) is https: set by server.ts. */
    publicHttps?: boolean;
  }
}

/** Secure when the request came over https (as the trusted proxy says, CAREBRIDGE_TRUST_PROXY) or the public address is https. */
export function cookieOptions(req: FastifyRequest, maxAgeSeconds?: number): CookieSerializeOptions {
  return { path: '/', httpOnly: true, sameSite: 'lax', secure: req.protocol === 'https' || req.publicHttps === true, ...(maxAgeSeconds ? { maxAge: maxAgeSeconds } : {}) };
}

export class CsrfRefused extends Error {}

/** The forms anyone may post, signed in or not: signing in and out. Every other form needs a session. */
const OPEN_FORMS: ReadonlySet<string> = new Set(['/sign-in', '/sign-in/choose', '/sign-out']);

/**
 * Runs as every page request arrives, before its body is read: finds the person. A form posted to a page
 * that needs a session, without one, is sent to sign in (303) there and then, its body neither received nor
 * parsed: anyone can reach the portal, and only the sign-in forms are for people not yet known.
 */
export function visitHook(csrfKey: Buffer, sessions: PortalSessions | undefined) {
  return async (req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | void> => {
    let actor: UserActor | undefined;
    let sessionId = req.cookies[SESSION_COOKIE];
    let sessionEnded = false;
    if (sessionId) {
      actor = sessions ? await sessions.actor(sessionId) : undefined;
      if (!actor) {
        sessionEnded = true;
        sessionId = undefined;
        reply.clearCookie(SESSION_COOKIE, cookieOptions(req));
      }
    }
    let formKey = req.cookies[FORM_COOKIE];
    if (!sessionId && !formKey) {
      formKey = randomBytes(24).toString('base64url');
      reply.setCookie(FORM_COOKIE, formKey, cookieOptions(req));
    }
    const csrfToken = mac(csrfKey, sessionId ? `session:${sessionId}` : `form:${formKey}`);
    visits.set(req, { actor, sessionId, sessionEnded, csrfToken });
    if (req.method === 'POST' && !actor && !OPEN_FORMS.has(req.routeOptions.url ?? '')) {
      if (req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0) reply.header('connection', 'close'); // nor is the unread body drained
      return reply.redirect(sessionEnded ? '/sign-in?reason=expired' : '/sign-in', 303);
    }
  };
}

/**
 * Runs before every page's handler, once a form's body is read: on a POST, refuses a form whose CSRF token
 * is not this session's (or, signed out, this browser's), or that comes from another site.
 */
export function csrfHook() {
  return async (req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | void> => {
    const { sessionEnded, csrfToken } = visitOf(req);
    if (req.method === 'POST') {
      if (req.headers.origin !== undefined && !sameHost(req.headers.origin, req.headers.host)) throw new CsrfRefused('cross-site');
      // The header's sign-out button is nhsuk-frontend's own form, which has no room for a hidden field,
      // so its token rides in the form's action; every other form sends it in the body.
      const fromQuery = req.routeOptions.url === '/sign-out' ? (req.query as Record<string, unknown>)._csrf : undefined;
      const sent = (req.body as Record<string, unknown> | undefined)?._csrf ?? fromQuery;
      if (typeof sent !== 'string' || !sameText(sent, csrfToken)) {
        // A form from a session that has since ended (idle too long, or signed out elsewhere) cannot be
        // accepted, but the person should learn why and be able to sign in again, not meet a CSRF refusal.
        if (sessionEnded) return reply.redirect('/sign-in?reason=expired', 303);
        throw new CsrfRefused('token');
      }
    }
  };
}

function sameHost(origin: string, host: string | undefined): boolean {
  try {
    return new URL(origin).host === host;
  } catch {
    return false; // "null" (a sandboxed frame, a privacy redirect) is not this site
  }
}
