// People's accounts: who they are, how they sign in (password, TOTP, an external identity provider) and
// the memberships (organisation + role) they may act in. Sign-in itself is in signIn.ts.
import { randomUUID } from 'node:crypto';
import { handleFhirRequest, UNRESTRICTED, type SqlDriver, type SqlExecutor } from '../../record/index.ts';
import { ROLES, isRole, type Role } from '../actor.ts';
import { findOrganisation, normaliseOds } from './organisations.ts';
import { argon2Hasher, checkNewPassword } from './passwords.ts';
import { newTotpSecret, totpUri } from './totp.ts';
import { revokeRefreshTokensOf } from '../refreshTokens.ts';

export interface Membership { organisation?: string; role: Role }
export interface NamedMembership extends Membership { organisationName?: string }

export interface NewUser {
  username: string;
  name: string;
  password?: string;
  memberships: Membership[];
  /** Who the user is in the record: Practitioner/…, RelatedPerson/… (a carer) or Patient/… (the person). */
  fhirUser?: string;
  /** Enrol a TOTP authenticator: the answer carries the otpauth:// URI to show once. */
  totp?: boolean;
  /** Sign-in through the configured OpenID Connect provider as this issuer + subject. */
  oidc?: { issuer: string; subject: string };
}

export interface UserSummary {
  userId: string;
  username: string;
  name: string;
  fhirUser?: string;
  disabled: boolean;
  /** ISO time until which password sign-in is locked, when it is. */
  lockedUntil?: string;
  hasPassword: boolean;
  totp: boolean;
  oidc?: { issuer: string; subject: string };
  memberships: NamedMembership[];
  createdAt: string;
}

export interface UserRow {
  user_id: string;
  username: string;
  name: string;
  password_hash: string | null;
  disabled: number;
  failed_attempts: number;
  locked_until_ms: number | string | null;
  totp_secret: string | null;
  totp_last_step: number | string | null;
  oidc_issuer: string | null;
  oidc_subject: string | null;
  fhir_user: string | null;
  created_ms: number | string;
}

const USERNAME = /^[A-Za-z0-9][A-Za-z0-9._@-]{2,63}$/;
const FHIR_USER = /^(Practitioner|RelatedPerson|Patient)\/[A-Za-z0-9\-.]{1,64}$/;
// Who acts for no organisation: the person themself and a family carer; an administrator may or may not.
const NO_ORGANISATION: readonly Role[] = ['person', 'carer'];
const ORGANISATION_OPTIONAL: readonly Role[] = ['admin'];

/** Issuer URLs compare without a trailing slash, however an administrator typed them. */
export function normaliseIssuer(issuer: string): string {
  return issuer.replace(/\/+$/, '');
}

export function usernameKey(username: string): string {
  return username.trim().toLowerCase();
}

export async function findUserRow(db: SqlExecutor, username: string): Promise<UserRow | undefined> {
  return db.get<UserRow>('SELECT * FROM access_users WHERE username_key = ?', [usernameKey(username)]);
}

async function requireUser(db: SqlExecutor, username: string): Promise<UserRow> {
  const row = await findUserRow(db, username);
  if (!row) throw new Error(`No user '${username}'.`);
  return row;
}

/** The user's memberships with their organisations' names, in a stable order. */
export async function membershipsOf(db: SqlExecutor, userId: string): Promise<NamedMembership[]> {
  const rows = await db.all<{ organisation: string; role: Role; name: string | null }>(
    'SELECT m.organisation, m.role, o.name FROM access_memberships m LEFT JOIN access_organisations o ON o.ods = m.organisation WHERE m.user_id = ? ORDER BY m.organisation, m.role',
    [userId],
  );
  return rows.map((r) => ({ ...(r.organisation ? { organisation: r.organisation } : {}), ...(r.name ? { organisationName: r.name } : {}), role: r.role }));
}

async function checkMemberships(db: SqlExecutor, memberships: Membership[]): Promise<Membership[]> {
  if (!memberships?.length) throw new Error('A user needs at least one membership (an organisation and a role).');
  const seen = new Set<string>();
  const out: Membership[] = [];
  for (const m of memberships) {
    if (!isRole(m.role)) throw new Error(`'${m.role}' is not a role: use one of ${ROLES.join(', ')}.`);
    if (m.organisation && NO_ORGANISATION.includes(m.role)) throw new Error(`A ${m.role} acts for themself, not for an organisation: leave the organisation out.`);
    if (!m.organisation && !NO_ORGANISATION.includes(m.role) && !ORGANISATION_OPTIONAL.includes(m.role)) throw new Error(`The role ${m.role} needs the organisation (ODS code) it is held at.`);
    const organisation = m.organisation ? normaliseOds(m.organisation) : undefined;
    if (organisation && !(await findOrganisation(db, organisation))) throw new Error(`No organisation ${organisation}: add it first (carebridge orgs add).`);
    const key = `${organisation ?? ''} ${m.role}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push({ organisation, role: m.role });
  }
  return out;
}

/**
 * A person or carer sees records through the resource they are linked to, so the link must name the right
 * kind of resource and that resource must exist: a typo could show someone another person's record (H-008).
 */
async function checkFhirUser(driver: SqlDriver, fhirUser: string | undefined, memberships: Membership[]): Promise<void> {
  const roles = new Set(memberships.map((m) => m.role));
  const type = fhirUser?.split('/')[0];
  if (fhirUser !== undefined && !FHIR_USER.test(fhirUser)) throw new Error(`'${fhirUser}' is not a link to a Practitioner, RelatedPerson or Patient (e.g. Practitioner/abc).`);
  if (roles.has('person') && type !== 'Patient') throw new Error('A user with the role person must be linked to their Patient resource (fhirUser Patient/…).');
  if (roles.has('carer') && type !== 'RelatedPerson') throw new Error('A user with the role carer must be linked to their RelatedPerson resource (fhirUser RelatedPerson/…).');
  const staff = [...roles].filter((r) => !NO_ORGANISATION.includes(r));
  if (staff.length && (type === 'Patient' || type === 'RelatedPerson')) throw new Error(`A ${type} cannot also hold the staff role ${staff[0]}: give them a separate account.`);
  if (roles.size > 1 && (roles.has('person') || roles.has('carer'))) throw new Error('The roles person and carer cannot be combined with other roles in one account.');
  if (!fhirUser) return;
  const [resourceType, id] = fhirUser.split('/');
  try {
    await handleFhirRequest({ base: 'http://localhost/fhir', driver, access: UNRESTRICTED }, { method: 'GET', path: `${resourceType}/${id}`, query: [] });
  } catch (err) {
    const status = (err as { status?: number }).status;
    if (status === 404 || status === 410) throw new Error(`${fhirUser} is not in the record${status === 410 ? ' (it was deleted)' : ''}: link the user to an existing resource.`);
    throw err;
  }
}

function checkOidc(oidc: NewUser['oidc']): void {
  if (!oidc) return;
  let url: URL;
  try {
    url = new URL(oidc.issuer);
  } catch {
    throw new Error(`The OpenID Connect issuer must be a URL, not '${oidc.issuer}'.`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new Error(`The OpenID Connect issuer must be an https URL, not '${oidc.issuer}'.`);
  if (!oidc.subject?.trim()) throw new Error('The OpenID Connect subject (the user\'s id at the identity provider) is missing.');
}

/** Creates a user and their memberships in one transaction. */
export async function addUser(driver: SqlDriver, user: NewUser): Promise<{ userId: string; totpUri?: string }> {
  const username = user.username?.trim() ?? '';
  if (!USERNAME.test(username)) throw new Error(`'${user.username}' is not a valid username: 3–64 letters, digits or . _ @ -, starting with a letter or digit.`);
  const name = user.name?.trim();
  if (!name) throw new Error('A user needs a name (as colleagues know them).');
  if (user.password !== undefined) checkNewPassword(user.password, username);
  checkOidc(user.oidc);
  const oidc = user.oidc ? { issuer: normaliseIssuer(user.oidc.issuer), subject: user.oidc.subject.trim() } : undefined;
  const memberships = await checkMemberships(driver, user.memberships);
  await checkFhirUser(driver, user.fhirUser, memberships);
  if (await findUserRow(driver, username)) throw new Error(`A user '${username}' already exists.`);
  if (oidc && (await driver.get('SELECT 1 AS one FROM access_users WHERE oidc_issuer = ? AND oidc_subject = ?', [oidc.issuer, oidc.subject]))) {
    throw new Error(`Another user is already linked to ${oidc.subject} at ${oidc.issuer}.`);
  }
  const userId = randomUUID();
  const passwordHash = user.password === undefined ? null : await argon2Hasher.hash(user.password);
  const secret = user.totp ? newTotpSecret() : null;
  await driver.transaction(async (tx) => {
    // ON CONFLICT: two administrators adding the same username at once; the loser is told, nothing half-made.
    const inserted = await tx.run(
      `INSERT INTO access_users (user_id, username, username_key, name, password_hash, disabled, failed_attempts, totp_secret, oidc_issuer, oidc_subject, fhir_user, created_ms)
       VALUES (?, ?, ?, ?, ?, 0, 0, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
      [userId, username, usernameKey(username), name, passwordHash, secret, oidc?.issuer ?? null, oidc?.subject ?? null, user.fhirUser ?? null, Date.now()],
    );
    if (!inserted) throw new Error(`A user '${username}' already exists (or that identity provider link is taken).`);
    await tx.insertMany('access_memberships', ['user_id', 'organisation', 'role'], memberships.map((m) => [userId, m.organisation ?? '', m.role]));
  });
  return { userId, ...(secret ? { totpUri: totpUri(secret, username) } : {}) };
}

function toSummary(r: UserRow, memberships: NamedMembership[], now: number): UserSummary {
  const lockedUntil = r.locked_until_ms === null ? undefined : Number(r.locked_until_ms);
  return {
    userId: r.user_id,
    username: r.username,
    name: r.name,
    ...(r.fhir_user ? { fhirUser: r.fhir_user } : {}),
    disabled: Boolean(Number(r.disabled)),
    ...(lockedUntil && lockedUntil > now ? { lockedUntil: new Date(lockedUntil).toISOString() } : {}),
    hasPassword: Boolean(r.password_hash),
    totp: Boolean(r.totp_secret),
    ...(r.oidc_issuer && r.oidc_subject ? { oidc: { issuer: r.oidc_issuer, subject: r.oidc_subject } } : {}),
    memberships,
    createdAt: new Date(Number(r.created_ms)).toISOString(),
  };
}

export async function listUsers(db: SqlExecutor): Promise<UserSummary[]> {
  const rows = await db.all<UserRow>('SELECT * FROM access_users ORDER BY username_key');
  const now = Date.now();
  return Promise.all(rows.map(async (r) => toSummary(r, await membershipsOf(db, r.user_id), now)));
}

/** Who a user id is, as a token names them: their name, and who they are in the record when linked. */
export async function personNamed(db: SqlExecutor, userId: string): Promise<{ name: string; fhirUser?: string } | undefined> {
  const row = await db.get<{ name: string; fhir_user: string | null }>('SELECT name, fhir_user FROM access_users WHERE user_id = ?', [userId]);
  return row ? { name: row.name, ...(row.fhir_user ? { fhirUser: row.fhir_user } : {}) } : undefined;
}

export async function findUser(db: SqlExecutor, username: string): Promise<UserSummary | undefined> {
  const row = await findUserRow(db, username);
  return row ? toSummary(row, await membershipsOf(db, row.user_id), Date.now()) : undefined;
}

/**
 * Stops the user signing in and ends their live sessions (they stop working at the next request), so
 * enabling the account again later does not bring an old session back.
 */
export async function disableUser(driver: SqlDriver, username: string): Promise<void> {
  const row = await requireUser(driver, username);
  await driver.transaction(async (tx) => {
    await tx.run('UPDATE access_users SET disabled = 1 WHERE user_id = ?', [row.user_id]);
    await signOutEverywhereIn(tx, row.user_id);
  });
}

/**
 * Ends everything the person is signed in with, in `tx`: their portal sessions, and every app's sign-in,
 * whose refresh tokens are revoked and whose access tokens issued until now are refused (authenticate.ts).
 * For good: enabling them again, or a new password, brings none of it back; they sign in afresh.
 */
async function signOutEverywhereIn(tx: SqlExecutor, userId: string): Promise<void> {
  const now = Date.now();
  await tx.run('UPDATE access_sessions SET ended_ms = ? WHERE user_id = ? AND ended_ms IS NULL', [now, userId]);
  await revokeRefreshTokensOf(tx, userId);
  // Rounded up: a token's iat is in whole seconds, so one issued in this second, before now, is refused too.
  await tx.run('UPDATE access_users SET tokens_not_before_s = ? WHERE user_id = ?', [Math.ceil(now / 1000), userId]);
}

/** Signs the person out of everything, leaving their account as it is (a lost or shared device). */
export async function signOutEverywhere(driver: SqlDriver, username: string): Promise<void> {
  const row = await requireUser(driver, username);
  await driver.transaction((tx) => signOutEverywhereIn(tx, row.user_id));
}

/**
 * Whether an app's token for the person, issued at `issuedAtS` (its iat), was issued before they were last
 * signed out everywhere.
 */
export async function signedOutSince(db: SqlExecutor, userId: string, issuedAtS: number): Promise<boolean> {
  const row = await db.get<{ tokens_not_before_s: number | string | null }>('SELECT tokens_not_before_s FROM access_users WHERE user_id = ?', [userId]);
  return row?.tokens_not_before_s != null && issuedAtS < Number(row.tokens_not_before_s);
}

/** Lets the user sign in again, and lifts any lockout. */
export async function enableUser(db: SqlExecutor, username: string): Promise<void> {
  const row = await requireUser(db, username);
  await db.run('UPDATE access_users SET disabled = 0, failed_attempts = 0, locked_until_ms = NULL WHERE user_id = ?', [row.user_id]);
}

/**
 * Sets a new password (checked against the rules), lifts any lockout and signs the person out everywhere
 * in the same transaction: a reset is how an administrator shuts out whoever learned the old password, so
 * neither a portal session nor an app's sign-in they already started may outlive it.
 */
export async function setPassword(driver: SqlDriver, username: string, password: string): Promise<void> {
  const row = await requireUser(driver, username);
  checkNewPassword(password, row.username);
  const hash = await argon2Hasher.hash(password);
  await driver.transaction(async (tx) => {
    await tx.run('UPDATE access_users SET password_hash = ?, failed_attempts = 0, locked_until_ms = NULL WHERE user_id = ?', [hash, row.user_id]);
    await signOutEverywhereIn(tx, row.user_id);
  });
}

/** Whether the user is enabled and still holds this membership (a token or code for it stays good only then). */
export async function holdsMembership(db: SqlExecutor, userId: string, membership: { organisation?: string; role: string }): Promise<boolean> {
  const row = await db.get<{ one: number }>(
    `SELECT 1 AS one FROM access_users u JOIN access_memberships m ON m.user_id = u.user_id
     WHERE u.user_id = ? AND u.disabled = 0 AND m.organisation = ? AND m.role = ?`,
    [userId, membership.organisation ?? '', membership.role],
  );
  return Boolean(row);
}
