// Sign-ins, refused sign-ins, lockouts and sign-outs as AuditEvents (DICOM 110114 User Authentication,
// subtype 110122 Login or 110123 Logout), written to the same hash-chained trail as every record access.
// Token requests at POST /oauth2/token are authentications too (tokenEndpoint.ts): a system client
// authenticating with its secret or a signed assertion, or an app exchanging a person's authorization code,
// each a Login, issued or refused; an app revoking a person's token at POST /oauth2/revoke is a Logout.
// Never a secret, assertion, code or token: the event names who, how and why.
import { agent, auditSource, CLIENT_ID_SYSTEM, USER_ID_SYSTEM, type AuditedRequest } from '../audit/auditEvent.ts';

const DCM = 'http://dicom.nema.org/resources/ontology/DCM';
const METHOD = {
  password: 'password',
  oidc: 'OpenID Connect',
  client_secret: 'token request (client_credentials, client secret)',
  private_key_jwt: 'token request (client_credentials, private_key_jwt)',
  authorization_code: 'token request (authorization_code)',
  refresh_token: 'token request (refresh_token)',
  token_request: 'token request',
  token_revocation: 'token revocation',
} as const;
/** The methods of POST /oauth2/token (token_request: one whose grant_type is not supported). */
const TOKEN_METHODS: Record<string, true> = { client_secret: true, private_key_jwt: true, authorization_code: true, refresh_token: true, token_request: true };
/** DICOM PS3.16 CID 402 Audit Active Participant Role ID: a system client or app. */
const APPLICATION = { coding: [{ system: DCM, code: '110150', display: 'Application' }] };

export interface AuthenticationAttempt {
  action: 'login' | 'logout';
  /**
   * How the person authenticated (a password, with or without TOTP, or an OpenID Connect provider), or how a
   * token was asked for at /oauth2/token.
   */
  method?: keyof typeof METHOD;
  /** The username as typed (for a refused attempt), and the account it named when there is one. */
  username?: string;
  userId?: string;
  /** The person's name, when they are known but no username was typed (an authorization code names them). */
  name?: string;
  /** Who that account is in the record (Practitioner/…), when known: what agent= searches. */
  fhirUser?: string;
  /**
   * The system client or app of a token request: the client_id it gave, its registered name, and whether
   * it is registered at all (an unregistered id is shown as given, and not indexed as an agent).
   */
  client?: { clientId: string; name?: string; registered: boolean };
  /** Why it was refused, or what followed (e.g. the account is now locked, the scopes granted), in words. */
  detail?: string;
  ok: boolean;
}

/** The audit entry for one attempt: what the trail writer stores (see audit/trail.ts). */
export function authenticationRequest(at: number, address: string, attempt: AuthenticationAttempt, actor?: AuditedRequest['actor']): AuditedRequest {
  const path = attempt.method === 'token_revocation' ? 'oauth2/revoke' : attempt.method && TOKEN_METHODS[attempt.method] ? 'oauth2/token' : attempt.action === 'login' ? 'sign-in' : 'sign-out';
  return {
    at,
    actor,
    address,
    events: [],
    outcome: { status: attempt.ok ? 200 : 401, method: 'POST', path, query: '' },
    authentication: attempt,
  };
}

/** A client or app as an agent: the one asking (client_credentials) or the app a person signs in through. */
function clientAgent(client: NonNullable<AuthenticationAttempt['client']>, requestor: boolean, network: Record<string, unknown>): Record<string, any> {
  return {
    type: APPLICATION,
    who: {
      ...(client.registered ? { identifier: { system: CLIENT_ID_SYSTEM, value: client.clientId } } : {}),
      display: client.registered ? client.name ?? client.clientId : `${client.clientId} (no such client)`,
    },
    ...(client.registered ? { altId: client.clientId } : {}),
    requestor,
    ...network,
  };
}

export function authenticationEvent(request: AuditedRequest, attempt: AuthenticationAttempt, observer: string): Record<string, any> {
  const network = request.address ? { network: { address: request.address, type: '2' } } : {};
  // A token request with no person in it (client_credentials, or a code that named no one) is the client's.
  const clientAlone = !!attempt.client && request.actor?.kind !== 'user' && !attempt.userId && !attempt.username;
  // Before sign-in completes there is no actor: name the account tried (or the username typed) instead.
  const who = request.actor
    ? agent(request)
    : clientAlone
      ? clientAgent(attempt.client!, true, network)
      : {
          who: {
            ...(attempt.fhirUser ? { reference: attempt.fhirUser } : {}),
            ...(attempt.userId ? { identifier: { system: USER_ID_SYSTEM, value: attempt.userId } } : {}),
            display: attempt.username
              ? `${attempt.username}${attempt.userId ? '' : ' (no such user)'}`
              : attempt.name ?? (attempt.method && TOKEN_METHODS[attempt.method] ? 'unknown client' : 'unknown user'),
          },
          ...(attempt.userId ? { altId: attempt.userId } : {}),
          requestor: true,
          ...network,
        };
  // A person signing in through an app: the app is the second participant.
  const app = attempt.client && !clientAlone ? [clientAgent(attempt.client, false, {})] : [];
  return {
    resourceType: 'AuditEvent',
    type: { system: DCM, code: '110114', display: 'User Authentication' },
    subtype: [attempt.action === 'login' ? { system: DCM, code: '110122', display: 'Login' } : { system: DCM, code: '110123', display: 'Logout' }],
    action: 'E',
    recorded: new Date(request.at).toISOString(),
    outcome: attempt.ok ? '0' : '4',
    outcomeDesc: [attempt.method && METHOD[attempt.method], attempt.detail].filter(Boolean).join(': ') || (attempt.action === 'logout' ? 'signed out' : attempt.ok ? 'signed in' : 'refused'),
    agent: [who, ...app],
    source: auditSource(observer),
  };
}
