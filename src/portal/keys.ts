// The portal's one secret, kept in the database so that every node signs and checks alike and a restart
// signs nobody out: it keys the CSRF tokens and the signed cookie that carries a pending sign-in.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { migrate, type Migration, type SqlDriver } from '../record/index.ts';

export const PORTAL_MIGRATIONS: Migration[] = [
  {
    version: 1,
    name: 'portal secret',
    sql: 'CREATE TABLE portal_keys (name TEXT PRIMARY KEY, secret TEXT NOT NULL, created_ms BIGINT NOT NULL)',
  },
];

/** The portal's secret, created on first start (two nodes starting together agree: the first insert wins). */
export async function portalSecret(driver: SqlDriver): Promise<Buffer> {
  await migrate(driver, 'portal', PORTAL_MIGRATIONS);
  await driver.run('INSERT INTO portal_keys (name, secret, created_ms) VALUES (?, ?, ?) ON CONFLICT (name) DO NOTHING', [
    'portal',
    randomBytes(32).toString('base64url'),
    Date.now(),
  ]);
  const row = await driver.get<{ secret: string }>('SELECT secret FROM portal_keys WHERE name = ?', ['portal']);
  return Buffer.from(row!.secret, 'base64url');
}

/** Keys for separate purposes, derived from the one secret so that a value made for one is useless for another. */
export function derivedKey(secret: Buffer, purpose: string): Buffer {
  return createHmac('sha256', secret).update(`carebridge-portal:${purpose}`).digest();
}

export function mac(key: Buffer, value: string): string {
  return createHmac('sha256', key).update(value).digest('base64url');
}

export function sameText(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
