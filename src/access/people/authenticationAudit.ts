// Sign-ins, refused sign-ins, lockouts and sign-outs as AuditEvents (DICOM 110114 User Authentication,
// subtype 110122 Login or 110123 Logout), written to the same hash-chained trail as every record access.
import { agent, auditSource, USER_ID_SYSTEM, type AuditedRequest } from '../audit/auditEvent.ts';

const DCM = 'http://dicom.nema.org/resources/ontology/DCM';
const METHOD = { password: 'password', oidc: 'OpenID Connect' } as const;

export interface AuthenticationAttempt {
  action: 'login' | 'logout';
  /** How the person authenticated: a password (with or without TOTP) or an OpenID Connect provider. */
  method?: 'password' | 'oidc';
  /** The username as typed (for a refused attempt), and the account it named when there is one. */
  username?: string;
  userId?: string;
  /** Why it was refused, or what followed (e.g. the account is now locked), in words. */
  detail?: string;
  ok: boolean;
}

/** The audit entry for one attempt: what the trail writer stores (see audit/trail.ts). */
export function authenticationRequest(at: number, address: string, attempt: AuthenticationAttempt, actor?: AuditedRequest['actor']): AuditedRequest {
  return {
    at,
    actor,
    address,
    events: [],
    outcome: { status: attempt.ok ? 200 : 401, method: 'POST', path: attempt.action === 'login' ? 'sign-in' : 'sign-out', query: '' },
    authentication: attempt,
  };
}

export function authenticationEvent(request: AuditedRequest, attempt: AuthenticationAttempt, observer: string): Record<string, any> {
  const network = request.address ? { network: { address: request.address, type: '2' } } : {};
  // Before sign-in completes there is no actor: name the account tried (or the username typed) instead.
  const who = request.actor
    ? agent(request)
    : {
        who: {
          ...(attempt.userId ? { identifier: { system: USER_ID_SYSTEM, value: attempt.userId } } : {}),
          display: attempt.username ? `${attempt.username}${attempt.userId ? '' : ' (no such user)'}` : 'unknown user',
        },
        ...(attempt.userId ? { altId: attempt.userId } : {}),
        requestor: true,
        ...network,
      };
  return {
    resourceType: 'AuditEvent',
    type: { system: DCM, code: '110114', display: 'User Authentication' },
    subtype: [attempt.action === 'login' ? { system: DCM, code: '110122', display: 'Login' } : { system: DCM, code: '110123', display: 'Logout' }],
    action: 'E',
    recorded: new Date(request.at).toISOString(),
    outcome: attempt.ok ? '0' : '4',
    outcomeDesc: [attempt.method && METHOD[attempt.method], attempt.detail].filter(Boolean).join(': ') || (attempt.action === 'logout' ? 'signed out' : attempt.ok ? 'signed in' : 'refused'),
    agent: [who],
    source: auditSource(observer),
  };
}
