// A real OpenID Connect provider for tests (the oidc-provider package) on a loopback port, with one
// confidential client, any account name accepted at its development login form, and a scripted
// "browser" that signs in there and returns the URL the provider redirects back to.
import { createServer, type Server } from 'node:http';
import Provider from 'oidc-provider';
import { freePort } from './postgres.ts';

export interface TestIdentityProvider {
  issuer: string;
  clientId: string;
  clientSecret: string;
  redirectUri: string;
  /** Follows the authorization URL, signs in as `account` and consents; the callback URL with the code. */
  signInAs(authorizationUrl: string, account: string): Promise<string>;
  close(): Promise<void>;
}

export async function startIdentityProvider(): Promise<TestIdentityProvider> {
  const port = await freePort();
  const issuer = `http://127.0.0.1:${port}`;
  const client = { clientId: 'carebridge-test', clientSecret: 'a-test-client-secret-of-some-length', redirectUri: 'http://127.0.0.1:8080/auth/oidc/callback' };
  const provider = new Provider(issuer, {
    clients: [{
      client_id: client.clientId,
      client_secret: client.clientSecret,
      redirect_uris: [client.redirectUri],
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    }],
    findAccount: async (_ctx: unknown, id: string) => ({ accountId: id, claims: async () => ({ sub: id }) }),
    features: { devInteractions: { enabled: true } },
    cookies: { keys: ['test-cookie-signing-key'] },
  });
  const server: Server = createServer(provider.callback() as Parameters<typeof createServer>[0]);
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));

  async function signInAs(authorizationUrl: string, account: string): Promise<string> {
    const cookies = new Map<string, string>();
    const send = async (url: string, body?: Record<string, string>) => {
      const res = await fetch(url, {
        method: body ? 'POST' : 'GET',
        redirect: 'manual',
        headers: { cookie: [...cookies].map(([k, v]) => `${k}=${v}`).join('; '), ...(body ? { 'content-type': 'application/x-www-form-urlencoded' } : {}) },
        body: body ? new URLSearchParams(body).toString() : undefined,
      });
      for (const c of res.headers.getSetCookie()) {
        const [pair] = c.split(';');
        const eq = pair.indexOf('=');
        cookies.set(pair.slice(0, eq), pair.slice(eq + 1));
      }
      return res;
    };
    let url = authorizationUrl;
    for (let step = 0; step < 10; step++) {
      if (url.startsWith(client.redirectUri)) return url;
      const res = await send(url);
      if (res.status >= 300 && res.status < 400) {
        url = new URL(res.headers.get('location')!, url).href;
        continue;
      }
      const page = await res.text();
      const prompt = /name="prompt" value="(\w+)"/.exec(page)?.[1];
      if (!prompt) throw new Error(`the identity provider answered ${res.status} without a form: ${page.slice(0, 300)}`);
      const answer = await send(url, prompt === 'login' ? { prompt, login: account, password: 'any' } : { prompt });
      url = new URL(answer.headers.get('location')!, url).href;
    }
    throw new Error('the identity provider never redirected back');
  }

  return {
    issuer,
    ...client,
    signInAs,
    close: () => new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}
