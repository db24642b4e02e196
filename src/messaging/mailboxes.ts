// The mailboxes CareBridge knows, each linked to an organisation by ODS code:
// - hosted here and processed here (a password; the default): messages to it go to this server's workflows,
//   and one a workflow says is not its business waits for the mailbox's MESH client, if one has signed in;
// - hosted here for a client elsewhere (a password and `polled`): messages wait until that client downloads
//   and acknowledges them;
// - elsewhere (no password): a mailbox on another MESH, reached through the MESH client, known here only for
//   its organisation.
// NHSMESH signs with the password itself, so the mailbox must be able to recover it: it is kept sealed
// (AES-256-GCM, key derived from CAREBRIDGE_MESH_SHARED_KEY), never in clear. See docs/decisions/.
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import type { SqlDriver, SqlExecutor } from '../record/index.ts';
import { normaliseOds } from '../access/index.ts';

export interface Mailbox {
  mailboxId: string;
  ods: string;
  /** Hosted by the built-in mailbox (has a password). */
  hosted: boolean;
  /** Hosted for a client elsewhere to download; not processed here. */
  polled: boolean;
}

const MAILBOX_ID = /^[A-Z0-9][A-Z0-9_-]{2,31}$/;
export const MIN_MAILBOX_PASSWORD = 8;

export function normaliseMailboxId(value: string): string {
  const id = value.trim().toUpperCase();
  if (!MAILBOX_ID.test(id)) throw new Error(`'${value}' is not a MESH mailbox id: 3 to 32 letters, digits, - or _, e.g. X26ABC123.`);
  return id;
}

/** The last key derived: every MESH request unseals its mailbox's password, and the shared key rarely changes. */
let derived: { sharedKey: string; key: Buffer } | undefined;

function sealingKey(sharedKey: string): Buffer {
  if (derived?.sharedKey !== sharedKey) derived = { sharedKey, key: Buffer.from(hkdfSync('sha256', sharedKey, 'carebridge', 'mesh mailbox passwords', 32)) };
  return derived.key;
}

export function sealPassword(password: string, sharedKey: string): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', sealingKey(sharedKey), iv);
  const sealed = Buffer.concat([cipher.update(password, 'utf8'), cipher.final()]);
  return ['v1', iv, cipher.getAuthTag(), sealed].map((p) => (typeof p === 'string' ? p : p.toString('base64url'))).join('.');
}

/** The password, or undefined when it was sealed with another key (the shared key has changed). */
export function unsealPassword(sealed: string, sharedKey: string): string | undefined {
  const [version, iv, tag, data] = sealed.split('.');
  if (version !== 'v1' || !iv || !tag || !data) return undefined;
  try {
    const decipher = createDecipheriv('aes-256-gcm', sealingKey(sharedKey), Buffer.from(iv, 'base64url'));
    decipher.setAuthTag(Buffer.from(tag, 'base64url'));
    return Buffer.concat([decipher.update(Buffer.from(data, 'base64url')), decipher.final()]).toString('utf8');
  } catch {
    return undefined;
  }
}

export interface NewMailbox {
  mailboxId: string;
  ods: string;
  password?: string;
  polled?: boolean;
}

export async function addMailbox(driver: SqlDriver, mailbox: NewMailbox, sharedKey: string | undefined): Promise<Mailbox> {
  const mailboxId = normaliseMailboxId(mailbox.mailboxId);
  const ods = normaliseOds(mailbox.ods);
  if (mailbox.password !== undefined) {
    if (mailbox.password.length < MIN_MAILBOX_PASSWORD) throw new Error(`A mailbox password needs at least ${MIN_MAILBOX_PASSWORD} characters.`);
    if (!sharedKey) throw new Error('Set CAREBRIDGE_MESH_SHARED_KEY (the same the server uses): a hosted mailbox\'s password is sealed with it.');
  } else if (mailbox.polled) {
    throw new Error('A mailbox polled by a client elsewhere is hosted here, so it needs a --password.');
  }
  const sealed = mailbox.password !== undefined ? sealPassword(mailbox.password, sharedKey!) : null;
  const inserted = await driver.transaction((tx) =>
    tx.run('INSERT INTO mesh_mailboxes (mailbox_id, ods, password_sealed, polled, created_ms) VALUES (?, ?, ?, ?, ?) ON CONFLICT (mailbox_id) DO NOTHING', [mailboxId, ods, sealed, mailbox.polled ? 1 : 0, Date.now()]),
  );
  if (!inserted) throw new Error(`A mailbox ${mailboxId} already exists.`);
  return { mailboxId, ods, hosted: sealed !== null, polled: Boolean(mailbox.polled) };
}

/** Sets a hosted mailbox's password again (after a shared-key change, or to rotate it). */
export async function setMailboxPassword(driver: SqlDriver, mailboxId: string, password: string, sharedKey: string | undefined): Promise<void> {
  const id = normaliseMailboxId(mailboxId);
  if (password.length < MIN_MAILBOX_PASSWORD) throw new Error(`A mailbox password needs at least ${MIN_MAILBOX_PASSWORD} characters.`);
  if (!sharedKey) throw new Error('Set CAREBRIDGE_MESH_SHARED_KEY (the same the server uses): a hosted mailbox\'s password is sealed with it.');
  const changed = await driver.transaction((tx) => tx.run('UPDATE mesh_mailboxes SET password_sealed = ? WHERE mailbox_id = ? AND password_sealed IS NOT NULL', [sealPassword(password, sharedKey), id]));
  if (!changed) throw new Error(`There is no mailbox ${id} hosted here.`);
}

interface MailboxRow { mailbox_id: string; ods: string; password_sealed: string | null; polled: number }

function mailboxOf(row: MailboxRow): Mailbox {
  return { mailboxId: row.mailbox_id, ods: row.ods, hosted: row.password_sealed !== null, polled: Boolean(Number(row.polled)) };
}

export async function listMailboxes(db: SqlExecutor): Promise<Mailbox[]> {
  return (await db.all<MailboxRow>('SELECT mailbox_id, ods, password_sealed, polled FROM mesh_mailboxes ORDER BY mailbox_id')).map(mailboxOf);
}

export async function findMailbox(db: SqlExecutor, mailboxId: string): Promise<(Mailbox & { sealedPassword?: string }) | undefined> {
  const row = await db.get<MailboxRow>('SELECT mailbox_id, ods, password_sealed, polled FROM mesh_mailboxes WHERE mailbox_id = ?', [mailboxId.trim().toUpperCase()]);
  return row ? { ...mailboxOf(row), ...(row.password_sealed ? { sealedPassword: row.password_sealed } : {}) } : undefined;
}

/** The mailbox of an organisation: one processed here first, then one hosted here, then any. */
export async function mailboxOfOrganisation(db: SqlExecutor, ods: string): Promise<string | undefined> {
  const rows = (await db.all<MailboxRow>('SELECT mailbox_id, ods, password_sealed, polled FROM mesh_mailboxes WHERE ods = ? ORDER BY mailbox_id', [ods.trim().toUpperCase()])).map(mailboxOf);
  const rank = (m: Mailbox) => (m.hosted && !m.polled ? 0 : m.hosted ? 1 : 2);
  return rows.sort((a, b) => rank(a) - rank(b))[0]?.mailboxId;
}
