// Access tokens: short-lived JWTs signed with an ES256 key kept in the database, so every app node
// signs and verifies with the same keys and a restart invalidates nothing.
import { randomUUID } from 'node:crypto';
import { SignJWT, exportJWK, generateKeyPair, importJWK, jwtVerify, type JWK, type JWTPayload, type CryptoKey } from 'jose';
import type { SqlExecutor } from '../record/index.ts';

export const TOKEN_LIFETIME_SECONDS = 300;
const ALG = 'ES256';
const VERIFIED_CACHE_SIZE = 10_000;
/** A verified token's cache key: its last characters, from its signature (ES256: 86). */
const cacheKey = (token: string) => token.slice(-32);

interface KeyRow { kid: string; private_jwk: string; public_jwk: string }
interface SigningKey { kid: string; privateKey: CryptoKey; publicJwk: JWK }

export interface AccessClaims extends JWTPayload {
  scope: string;
  client_id: string;
  /** ODS code of the organisation the client acts for, when it acts for one. */
  org?: string;
  /** Present when the token speaks for a person (sub is then their user id): the role they act in. */
  role?: string;
  /** Who the person is in the record (Practitioner/…, RelatedPerson/…, Patient/…). */
  fhirUser?: string;
  name?: string;
  /** SMART patient context: the one person whose record the token is bound to (patient/ scopes). */
  patient?: string;
  /** The sign-in (authorization code) an app's token for a person comes from, refreshed or not (refreshTokens.ts). */
  sid?: string;
}

/** The person a token speaks for (absent for a system client's own token). */
export interface TokenUser { userId: string; name: string; role: string; fhirUser?: string; patient?: string; signIn?: string }

export class TokenService {
  private signing?: Promise<SigningKey>;
  private verifying = new Map<string, Promise<CryptoKey | undefined>>();
  /**
   * Verified tokens, with the issuer and audience they were verified against, keyed by the token's last
   * characters (part of its signature) and compared whole on a hit: hashing the whole ~700-character token
   * for the lookup cost about a microsecond on every request.
   */
  private verified = new Map<string, { token: string; expected: { issuer: string; audience: string }; claims: AccessClaims }>();

  constructor(private readonly db: SqlExecutor) {}

  /** The signing key: the oldest stored one, created on first use (nodes racing converge on the oldest). */
  private signingKey(): Promise<SigningKey> {
    this.signing ??= (async () => {
      let row = await this.oldestKey();
      if (!row) {
        const { privateKey, publicKey } = await generateKeyPair(ALG, { extractable: true });
        const kid = randomUUID();
        const publicJwk = { ...(await exportJWK(publicKey)), kid, alg: ALG, use: 'sig' };
        await this.db.run('INSERT INTO access_signing_keys (kid, private_jwk, public_jwk, created_ms) VALUES (?, ?, ?, ?) ON CONFLICT (kid) DO NOTHING', [
          kid, JSON.stringify(await exportJWK(privateKey)), JSON.stringify(publicJwk), Date.now(),
        ]);
        row = (await this.oldestKey())!;
      }
      return { kid: row.kid, privateKey: (await importJWK(JSON.parse(row.private_jwk), ALG)) as CryptoKey, publicJwk: JSON.parse(row.public_jwk) };
    })();
    return this.signing;
  }

  private oldestKey(): Promise<KeyRow | undefined> {
    return this.db.get<KeyRow>('SELECT kid, private_jwk, public_jwk FROM access_signing_keys ORDER BY created_ms, kid LIMIT 1');
  }

  /** A signed access token; `jti` identifies it (the audit's session id for its calls), never a credential. */
  async issue(claims: { issuer: string; audience: string; clientId: string; scope: string; org?: string | null; user?: TokenUser }): Promise<{ token: string; expiresIn: number; jti: string }> {
    const key = await this.signingKey();
    const jti = randomUUID();
    const user = claims.user
      ? { role: claims.user.role, name: claims.user.name, ...(claims.user.fhirUser ? { fhirUser: claims.user.fhirUser } : {}), ...(claims.user.patient ? { patient: claims.user.patient } : {}), ...(claims.user.signIn ? { sid: claims.user.signIn } : {}) }
      : {};
    const token = await new SignJWT({ scope: claims.scope, client_id: claims.clientId, ...(claims.org ? { org: claims.org } : {}), ...user })
      .setProtectedHeader({ alg: ALG, kid: key.kid, typ: 'at+jwt' })
      .setIssuer(claims.issuer)
      .setAudience(claims.audience)
      .setSubject(claims.user?.userId ?? claims.clientId)
      .setIssuedAt()
      .setExpirationTime(`${TOKEN_LIFETIME_SECONDS}s`)
      .setJti(jti)
      .sign(key.privateKey);
    return { token, expiresIn: TOKEN_LIFETIME_SECONDS, jti };
  }

  /**
   * An OpenID Connect id_token: who signed in to the app (sub, and fhirUser, who they are in the record),
   * for the app alone (aud, its client_id). Signed with the access tokens' key, published at jwks_uri; its
   * typ (JWT) and audience keep it from ever being taken as an access token or a statement of the server's.
   */
  async idToken(claims: { issuer: string; clientId: string; userId: string; nonce?: string; fhirUser?: string; name?: string }): Promise<string> {
    const key = await this.signingKey();
    return new SignJWT({ ...(claims.nonce ? { nonce: claims.nonce } : {}), ...(claims.fhirUser ? { fhirUser: claims.fhirUser } : {}), ...(claims.name ? { name: claims.name } : {}) })
      .setProtectedHeader({ alg: ALG, kid: key.kid, typ: 'JWT' })
      .setIssuer(claims.issuer)
      .setSubject(claims.userId)
      .setAudience(claims.clientId)
      .setIssuedAt()
      .setExpirationTime(`${TOKEN_LIFETIME_SECONDS}s`)
      .sign(key.privateKey);
  }

  /**
   * Verifies signature (ES256 only: never "none", never an HMAC), issuer, audience and expiry. A token
   * already verified is remembered until it expires: an ECDSA check costs more than a whole read.
   */
  async verify(token: string, expected: { issuer: string; audience: string }): Promise<AccessClaims> {
    const known = this.verifiedBefore(token, expected);
    if (known) return known;
    const claims = await this.verifyOnce(token, expected);
    if (this.verified.size >= VERIFIED_CACHE_SIZE) this.verified.delete(this.verified.keys().next().value!);
    // Kept as given when frozen (the authenticator's per-origin expectations), so a hit compares one reference.
    this.verified.set(cacheKey(token), { token, expected: Object.isFrozen(expected) ? expected : Object.freeze({ ...expected }), claims });
    return claims;
  }

  /** The claims of a token verified before against the same issuer and audience, while it has not expired. */
  verifiedBefore(token: string, expected: { issuer: string; audience: string }): AccessClaims | undefined {
    const known = this.verified.get(cacheKey(token));
    if (!known || known.token !== token || known.claims.exp! * 1000 <= Date.now()) return undefined;
    const same = known.expected === expected || (known.expected.issuer === expected.issuer && known.expected.audience === expected.audience);
    return same ? known.claims : undefined;
  }

  private async verifyOnce(token: string, expected: { issuer: string; audience: string }): Promise<AccessClaims> {
    const { payload } = await jwtVerify(token, (header) => this.publicKey(header.kid), {
      algorithms: [ALG],
      issuer: expected.issuer,
      audience: expected.audience,
      typ: 'at+jwt',
      requiredClaims: ['exp', 'iat', 'sub', 'scope', 'client_id'],
    });
    return payload as AccessClaims;
  }

  private async publicKey(kid: string | undefined): Promise<CryptoKey> {
    if (!kid) throw new Error('token has no key id');
    if (!this.verifying.has(kid)) {
      this.verifying.set(kid, (async () => {
        const row = await this.db.get<KeyRow>('SELECT kid, private_jwk, public_jwk FROM access_signing_keys WHERE kid = ?', [kid]);
        return row ? ((await importJWK(JSON.parse(row.public_jwk), ALG)) as CryptoKey) : undefined;
      })());
    }
    const key = await this.verifying.get(kid)!;
    if (!key) {
      this.verifying.delete(kid); // a key another node created a moment ago may appear later
      throw new Error('unknown signing key');
    }
    return key;
  }

  /**
   * A short-lived signed statement of the server's own (an authorization code, a sign-in ticket): `typ`
   * keeps each kind from being accepted as another, and as an access token.
   */
  async signStatement(claims: Record<string, unknown>, options: { typ: string; issuer: string; seconds: number }): Promise<string> {
    const key = await this.signingKey();
    return new SignJWT(claims)
      .setProtectedHeader({ alg: ALG, kid: key.kid, typ: options.typ })
      .setIssuer(options.issuer)
      .setIssuedAt()
      .setExpirationTime(`${options.seconds}s`)
      .setJti(randomUUID())
      .sign(key.privateKey);
  }

  async verifyStatement(token: string, options: { typ: string; issuer: string }): Promise<JWTPayload & Record<string, unknown>> {
    const { payload } = await jwtVerify(token, (header) => this.publicKey(header.kid), { algorithms: [ALG], issuer: options.issuer, typ: options.typ, requiredClaims: ['exp', 'jti'] });
    return payload as JWTPayload & Record<string, unknown>;
  }

  async jwks(): Promise<{ keys: JWK[] }> {
    const rows = await this.db.all<KeyRow>('SELECT kid, private_jwk, public_jwk FROM access_signing_keys ORDER BY created_ms, kid');
    return { keys: rows.map((r) => JSON.parse(r.public_jwk)) };
  }
}
