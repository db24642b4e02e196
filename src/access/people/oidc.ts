// Sign-in through an external OpenID Connect identity provider (an NHS trust's or council's own): the
// authorization code flow with PKCE, state and nonce. The provider's issuer + subject must already be
// linked to a local user (carebridge users add --oidc-issuer --oidc-subject): accounts are never created
// on the fly, so the provider proves who someone is but CareBridge still decides whether they may act.
import * as client from 'openid-client';
import type { SqlDriver } from '../../record/index.ts';
import { isLoopback } from '../../config.ts';
import type { AuditTrail } from '../audit/trail.ts';
import { authenticationRequest } from './authenticationAudit.ts';
import { signedIn, type SignInResult } from './signIn.ts';
import { normaliseIssuer, type UserRow } from './users.ts';

export interface OidcSettings {
  issuer: string;
  clientId: string;
  clientSecret: string;
  /** Where the provider sends the browser back; may instead be given to each start(). */
  redirectUri?: string;
}

/** What the portal keeps (in a signed, short-lived cookie) between start() and finish(). */
export interface OidcState {
  state: string;
  nonce: string;
  codeVerifier: string;
  redirectUri: string;
  /** The local path to go to after signing in. */
  returnTo: string;
}

export interface PeopleOidc {
  start(options: { returnTo?: string; redirectUri?: string }): Promise<{ url: string; state: OidcState }>;
  finish(callbackUrl: string | URL, state: OidcState, context: { address: string }): Promise<SignInResult>;
}

/** Only a local path: an absolute or protocol-relative URL would make sign-in an open redirect. */
export function safeReturnTo(returnTo: string | undefined): string {
  if (!returnTo) return '/';
  if (!returnTo.startsWith('/') || returnTo.startsWith('//') || returnTo.startsWith('/\\') || /[\u0000-\u001f]/.test(returnTo)) {
    throw new Error(`returnTo must be a path on this site (starting with one /), not '${returnTo}'.`);
  }
  return returnTo;
}

export function oidcSignIn(driver: SqlDriver, settings: OidcSettings, audit?: AuditTrail): PeopleOidc {
  const issuerUrl = new URL(settings.issuer);
  let configuration: Promise<client.Configuration> | undefined;
  const config = () =>
    (configuration ??= client
      .discovery(issuerUrl, settings.clientId, undefined, client.ClientSecretBasic(settings.clientSecret), {
        // Plain http only for a provider on this machine (development and tests); https everywhere else.
        execute: issuerUrl.protocol === 'http:' && isLoopback(issuerUrl.hostname.replace(/^\[|\]$/g, '')) ? [client.allowInsecureRequests] : [],
      })
      .catch((err) => {
        configuration = undefined; // the provider may be back next time
        throw new Error(`cannot reach the OpenID Connect provider ${settings.issuer}: ${(err as Error).message}`);
      }));

  const refuse = (address: string, detail: string, message: string, username?: string, userId?: string): SignInResult => {
    audit?.record(authenticationRequest(Date.now(), address, { action: 'login', method: 'oidc', ok: false, detail, username, userId }));
    return { ok: false, reason: 'invalid', message };
  };

  return {
    async start({ returnTo, redirectUri }) {
      const redirect = redirectUri ?? settings.redirectUri;
      if (!redirect) throw new Error('No OpenID Connect redirect URI: set CAREBRIDGE_OIDC_REDIRECT_URI or pass redirectUri.');
      const state: OidcState = {
        state: client.randomState(),
        nonce: client.randomNonce(),
        codeVerifier: client.randomPKCECodeVerifier(),
        redirectUri: redirect,
        returnTo: safeReturnTo(returnTo),
      };
      const url = client.buildAuthorizationUrl(await config(), {
        redirect_uri: redirect,
        scope: 'openid',
        code_challenge: await client.calculatePKCECodeChallenge(state.codeVerifier),
        code_challenge_method: 'S256',
        state: state.state,
        nonce: state.nonce,
      });
      return { url: url.href, state };
    },

    async finish(callbackUrl, state, { address }) {
      let claims: client.IDToken | undefined;
      try {
        const tokens = await client.authorizationCodeGrant(await config(), new URL(callbackUrl), {
          pkceCodeVerifier: state.codeVerifier,
          expectedState: state.state,
          expectedNonce: state.nonce,
          idTokenExpected: true,
        }, { redirect_uri: state.redirectUri });
        claims = tokens.claims();
      } catch (err) {
        return refuse(address, `the provider's answer was refused (${(err as Error).message})`, 'Signing in with your organisation\'s account did not complete: please start again.');
      }
      if (!claims?.sub) return refuse(address, 'no subject in the ID token', 'Signing in with your organisation\'s account did not complete: please start again.');
      const row = await driver.get<UserRow>('SELECT * FROM access_users WHERE oidc_issuer = ? AND oidc_subject = ?', [normaliseIssuer(claims.iss), claims.sub]);
      if (!row) {
        return refuse(address, `no local user is linked to ${claims.sub} at ${claims.iss}`, 'Your organisation\'s account is not linked to a CareBridge user: ask your CareBridge administrator.', claims.sub);
      }
      if (Number(row.disabled)) {
        audit?.record(authenticationRequest(Date.now(), address, { action: 'login', method: 'oidc', ok: false, detail: 'account disabled', username: row.username, userId: row.user_id }));
        return { ok: false, reason: 'disabled', message: 'This account has been disabled: ask your organisation\'s CareBridge administrator.' };
      }
      audit?.record(authenticationRequest(Date.now(), address, { action: 'login', method: 'oidc', ok: true, username: row.username, userId: row.user_id }));
      return signedIn(driver, row);
    },
  };
}
