// Configuration is read once, from flags and the environment, validated, and passed down.
import { isIP } from 'node:net';

export interface ServerConfig {
  host: string;
  port: number;
  database: string; // sqlite:PATH or postgres://…
  baseUrl?: string;
  bodyLimitBytes: number;
  /** No authentication at all: must be asked for by name, and prints a warning. */
  insecureNoAuth: boolean;
  /** An administrative system client the server ensures exists (CAREBRIDGE_ADMIN_CLIENT_ID/_SECRET). */
  adminClient?: { id: string; secret: string };
  tokenRequestsPerMinute: number;
  /** The audit trail; CAREBRIDGE_AUDIT=off turns it off, for measuring its cost only. */
  audit: boolean;
  /** People signing in: lockout, session lifetimes, and an OpenID Connect provider when one is configured. */
  people: PeopleConfig;
}

export interface PeopleConfig {
  lockoutFailures: number;
  lockoutMinutes: number;
  sessionIdleMinutes: number;
  sessionMaxHours: number;
  oidc?: { issuer: string; clientId: string; clientSecret: string; redirectUri?: string };
}

export interface ConfigFlags {
  host?: string;
  port?: string | number;
  db?: string;
  baseUrl?: string;
  insecureNoAuth?: boolean;
}

export const DEFAULT_DATABASE = 'sqlite:./data/carebridge.db';

export function resolveDatabase(value: string | undefined): string {
  const db = value ?? DEFAULT_DATABASE;
  if (db.startsWith('sqlite:') || db.startsWith('postgres://') || db.startsWith('postgresql://')) return db;
  throw new Error(`CAREBRIDGE_DB must be sqlite:PATH or a postgres:// URL, not '${db}'.`);
}

export function loadServerConfig(flags: ConfigFlags, env: NodeJS.ProcessEnv = process.env): ServerConfig {
  const port = Number(flags.port ?? env.PORT ?? 8080);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`PORT must be a whole number from 0 to 65535, not '${flags.port ?? env.PORT}'.`);
  const host = flags.host ?? env.HOST ?? '127.0.0.1';
  const insecureNoAuth = Boolean(flags.insecureNoAuth);
  const adminId = env.CAREBRIDGE_ADMIN_CLIENT_ID;
  const adminSecret = env.CAREBRIDGE_ADMIN_CLIENT_SECRET;
  if (Boolean(adminId) !== Boolean(adminSecret)) throw new Error('Set both CAREBRIDGE_ADMIN_CLIENT_ID and CAREBRIDGE_ADMIN_CLIENT_SECRET, or neither.');
  const tokenRequestsPerMinute = Number(env.CAREBRIDGE_TOKEN_RATE_LIMIT ?? 60);
  if (!Number.isInteger(tokenRequestsPerMinute) || tokenRequestsPerMinute < 1) throw new Error(`CAREBRIDGE_TOKEN_RATE_LIMIT must be a whole number of 1 or more, not '${env.CAREBRIDGE_TOKEN_RATE_LIMIT}'.`);
  const bodyLimitMb = Number(env.CAREBRIDGE_BODY_LIMIT_MB ?? 64);
  if (!(bodyLimitMb > 0)) throw new Error(`CAREBRIDGE_BODY_LIMIT_MB must be a positive number, not '${env.CAREBRIDGE_BODY_LIMIT_MB}'.`);
  const auditSetting = env.CAREBRIDGE_AUDIT ?? 'on';
  if (auditSetting !== 'on' && auditSetting !== 'off') throw new Error(`CAREBRIDGE_AUDIT must be on or off, not '${auditSetting}'.`);
  const people = loadPeopleConfig(env, flags.baseUrl ?? env.CAREBRIDGE_BASE_URL);
  return {
    host,
    port,
    database: resolveDatabase(flags.db ?? env.CAREBRIDGE_DB),
    baseUrl: flags.baseUrl ?? env.CAREBRIDGE_BASE_URL,
    bodyLimitBytes: Math.round(bodyLimitMb * 1024 * 1024),
    insecureNoAuth,
    adminClient: adminId && adminSecret ? { id: adminId, secret: adminSecret } : undefined,
    tokenRequestsPerMinute,
    audit: auditSetting === 'on',
    people,
  };
}

function wholeNumber(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  const value = Number(raw ?? fallback);
  if (!Number.isInteger(value) || value < min || value > max) throw new Error(`${name} must be a whole number from ${min} to ${max}, not '${raw}'.`);
  return value;
}

function loadPeopleConfig(env: NodeJS.ProcessEnv, baseUrl: string | undefined): PeopleConfig {
  const issuer = env.CAREBRIDGE_OIDC_ISSUER;
  const clientId = env.CAREBRIDGE_OIDC_CLIENT_ID;
  const clientSecret = env.CAREBRIDGE_OIDC_CLIENT_SECRET;
  const given = [issuer, clientId, clientSecret].filter(Boolean).length;
  if (given && given < 3) throw new Error('Set all of CAREBRIDGE_OIDC_ISSUER, CAREBRIDGE_OIDC_CLIENT_ID and CAREBRIDGE_OIDC_CLIENT_SECRET, or none.');
  if (issuer && !/^https?:\/\/[^/]/.test(issuer)) throw new Error(`CAREBRIDGE_OIDC_ISSUER must be an https URL, not '${issuer}'.`);
  // Without an explicit redirect URI, the provider sends people back to this server's public address.
  const redirectUri = env.CAREBRIDGE_OIDC_REDIRECT_URI ?? (baseUrl ? `${new URL(baseUrl).origin}/auth/oidc/callback` : undefined);
  return {
    lockoutFailures: wholeNumber(env, 'CAREBRIDGE_LOCKOUT_FAILURES', 5, 1, 100),
    lockoutMinutes: wholeNumber(env, 'CAREBRIDGE_LOCKOUT_MINUTES', 15, 1, 24 * 60),
    sessionIdleMinutes: wholeNumber(env, 'CAREBRIDGE_SESSION_IDLE_MINUTES', 30, 1, 24 * 60),
    sessionMaxHours: wholeNumber(env, 'CAREBRIDGE_SESSION_MAX_HOURS', 12, 1, 7 * 24),
    ...(issuer && clientId && clientSecret ? { oidc: { issuer, clientId, clientSecret, ...(redirectUri ? { redirectUri } : {}) } } : {}),
  };
}

export function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  return host === '::1';
}
