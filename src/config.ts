// Configuration is read once, from flags and the environment, validated, and passed down.
import { isIP } from 'node:net';
import { accessSync, constants } from 'node:fs';

export interface ServerConfig {
  host: string;
  port: number;
  database: string; // sqlite:PATH or postgres://…
  baseUrl?: string;
  bodyLimitBytes: number;
  /**
   * Which proxies in front of the server to believe about the caller's address and protocol
   * (X-Forwarded-For, X-Forwarded-Proto): none by default, so no caller can claim another's address.
   * As Fastify's trustProxy: true (every hop), a hop count, or proxies' addresses and CIDR ranges.
   */
  trustProxy: TrustProxy;
  /** No authentication at all: must be asked for by name, and prints a warning. */
  insecureNoAuth: boolean;
  /** An administrative system client the server ensures exists (CAREBRIDGE_ADMIN_CLIENT_ID/_SECRET). */
  adminClient?: { id: string; secret: string };
  tokenRequestsPerMinute: number;
  /** Sign-in attempts per minute per address, in the portal and at /oauth2/authorize (CAREBRIDGE_SIGN_IN_RATE_LIMIT). */
  signInsPerMinute: number;
  /** The audit trail; CAREBRIDGE_AUDIT=off turns it off, for measuring its cost only. */
  audit: boolean;
  /** People signing in: lockout, session lifetimes, and an OpenID Connect provider when one is configured. */
  people: PeopleConfig;
  /**
   * How long the refresh tokens of one sign-in to an app last: online_access (CAREBRIDGE_ONLINE_ACCESS_MINUTES)
   * and offline_access (CAREBRIDGE_OFFLINE_ACCESS_DAYS).
   */
  refreshLifetimes: { onlineMinutes: number; offlineDays: number };
  /**
   * The red bag: hours before an unacknowledged pack's reminder falls due (CAREBRIDGE_RED_BAG_ACK_HOURS), and
   * the MESH workflow id its messages to and from other deployments travel under (CAREBRIDGE_RED_BAG_WORKFLOW_ID).
   */
  redBag: { acknowledgeWithinHours: number; workflowId: string };
  /** Digital discharge: default response deadlines, worker interval, ADW workflow ids. */
  discharge: DischargeConfig;
  /** MESH: the built-in mailbox, inbound processing and, when configured, a client for an external MESH. */
  messaging: MessagingConfig;
  /** The HL7 v2 MLLP listener (CAREBRIDGE_HL7_PORT); absent when it is off. It binds to `host`, like the HTTP server. */
  hl7?: Hl7Config;
}

export type TrustProxy = boolean | number | string[];

export interface DischargeConfig {
  /** "48 working-hours" or "2 working-days": for councils without their own (carebridge discharge council set). */
  assessmentDeadline: string;
  dischargeDeadline: string;
  pollSeconds: number;
  /** MESH workflow ids for ADW notices and for responses. */
  adwWorkflowIds: { notice: string; response: string };
}

export interface MessagingConfig {
  /** CAREBRIDGE_MESH_SHARED_KEY: keys the NHSMESH HMAC of the built-in mailbox; without it the mailbox is not served. */
  sharedKey?: string;
  clockSkewMinutes: number;
  /** A message waiting in a built-in mailbox's inbox this long uncollected expires, and its sender is sent a report (MESH's 5 days). */
  expiryDays: number;
  /** Attempts before a message that keeps failing goes to the dead-letter queue. */
  maxAttempts: number;
  /** The first retry waits this long; each further one twice as long. */
  retryBaseMs: number;
  /** How long a stopping server waits for handlers in flight before handing their messages back. */
  stopWaitMs: number;
  /** An external MESH mailbox this server polls and sends through, when CAREBRIDGE_MESH_URL is set. */
  client?: MeshClientConfig;
}

export interface MeshClientConfig {
  url: string;
  mailbox: string;
  password: string;
  sharedKey: string;
  /** Only messages for these workflow ids are taken from the external mailbox; empty takes every one. */
  workflowIds: string[];
  pollMs: number;
  /** Largest chunk sent in one request; bigger messages go as several chunks. */
  chunkBytes: number;
  tls?: { certFile: string; keyFile: string; caFile?: string };
}

export interface Hl7Config {
  port: number;
  /** MSH-4 sending facility → ODS code of the sending organisation, for facilities that are not sent as ODS codes. */
  facilities: Record<string, string>;
  /** A message (one MLLP frame) larger than this is refused with an AR. */
  maxMessageBytes: number;
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

/**
 * The database to open: `value` (from --db when `fromFlag`, else CAREBRIDGE_DB), else the default. Throws a
 * one-line message when it is neither sqlite:PATH nor a postgres:// URL, or names no file: SQLite would open
 * a temporary database for an empty path, and everything stored would be gone when the server stopped.
 */
export function resolveDatabase(value: string | undefined, fromFlag = false): string {
  const db = value ?? DEFAULT_DATABASE;
  const named = fromFlag ? '--db' : 'CAREBRIDGE_DB';
  if (db === 'sqlite:') throw new Error(`${named} 'sqlite:' needs a file path, e.g. sqlite:./data/carebridge.db.`);
  if (db.startsWith('sqlite:') || db.startsWith('postgres://') || db.startsWith('postgresql://')) return db;
  throw new Error(`${named} must be sqlite:PATH or a postgres:// URL, not '${db}'.`);
}

/**
 * The HTTP port: --port, else PORT, else 8080. An empty PORT (a line `PORT=` in an env file) is not set:
 * read as a number it was 0, and the server listened on a port of the system's choosing.
 */
function listeningPort(flags: ConfigFlags, env: NodeJS.ProcessEnv): number {
  const setting = listenSettings(flags, env).port;
  const raw = setting === '--port' ? String(flags.port) : setting === 'PORT' ? env.PORT! : '8080';
  const port = Number(raw.trim() || NaN);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`${setting} must be a whole number from 0 to 65535, not '${raw}'.`);
  return port;
}

/** Which setting gave the address and the port the server listens on, for messages about them. */
export function listenSettings(flags: ConfigFlags, env: NodeJS.ProcessEnv = process.env): { host: string; port: string } {
  return {
    host: flags.host !== undefined ? '--host' : env.HOST ? 'HOST' : 'the default host',
    port: flags.port !== undefined ? '--port' : env.PORT?.trim() ? 'PORT' : 'the default port',
  };
}

/** The levels the server's log takes (pino's); CAREBRIDGE_LOG_LEVEL, error by default. */
const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

export function serverLogLevel(env: NodeJS.ProcessEnv = process.env): string {
  const level = (env.CAREBRIDGE_LOG_LEVEL ?? 'error').trim().toLowerCase();
  if (!LOG_LEVELS.includes(level)) throw new Error(`CAREBRIDGE_LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}, not '${env.CAREBRIDGE_LOG_LEVEL}'.`);
  return level;
}

export function loadServerConfig(flags: ConfigFlags, env: NodeJS.ProcessEnv = process.env): ServerConfig {
  const port = listeningPort(flags, env);
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
  const baseUrl = publicBaseUrl(flags.baseUrl, env.CAREBRIDGE_BASE_URL);
  const people = loadPeopleConfig(env, baseUrl);
  const messaging = loadMessagingConfig(env);
  const hl7 = loadHl7Config(env);
  return {
    host,
    port,
    database: resolveDatabase(flags.db ?? env.CAREBRIDGE_DB, flags.db !== undefined),
    baseUrl,
    bodyLimitBytes: Math.round(bodyLimitMb * 1024 * 1024),
    trustProxy: parseTrustProxy(env.CAREBRIDGE_TRUST_PROXY),
    insecureNoAuth,
    adminClient: adminId && adminSecret ? { id: adminId, secret: adminSecret } : undefined,
    tokenRequestsPerMinute,
    signInsPerMinute: wholeNumber(env, 'CAREBRIDGE_SIGN_IN_RATE_LIMIT', 20, 1, 100_000),
    audit: auditSetting === 'on',
    people,
    refreshLifetimes: {
      onlineMinutes: wholeNumber(env, 'CAREBRIDGE_ONLINE_ACCESS_MINUTES', 60, 1, 24 * 60),
      offlineDays: wholeNumber(env, 'CAREBRIDGE_OFFLINE_ACCESS_DAYS', 30, 1, 365),
    },
    messaging,
    ...(hl7 ? { hl7 } : {}),
    discharge: loadDischargeConfig(env),
    redBag: { acknowledgeWithinHours: wholeNumber(env, 'CAREBRIDGE_RED_BAG_ACK_HOURS', 4, 1, 168), workflowId: redBagWorkflowId(env) },
  };
}

/** proxy-addr's names for address ranges, which Fastify's trustProxy takes as well as addresses. */
const PROXY_RANGES = new Set(['loopback', 'linklocal', 'uniquelocal']);

/** CAREBRIDGE_TRUST_PROXY: off (the default), true, a hop count, or a comma-separated list of addresses/CIDRs. */
export function parseTrustProxy(value: string | undefined): TrustProxy {
  const text = (value ?? '').trim().toLowerCase();
  if (text === '' || text === 'false' || text === 'off') return false;
  if (text === 'true' || text === 'on') return true;
  if (/^\d+$/.test(text)) {
    const hops = Number(text);
    if (hops < 1 || hops > 100) throw new Error(`CAREBRIDGE_TRUST_PROXY as a hop count must be from 1 to 100, not '${value}'.`);
    return hops;
  }
  const proxies = text.split(',').map((p) => p.trim()).filter(Boolean);
  for (const proxy of proxies) {
    const [address, bits, extra] = proxy.split('/');
    const family = isIP(address);
    const rangeOk = bits === undefined || (/^\d{1,3}$/.test(bits) && Number(bits) <= (family === 6 ? 128 : 32));
    if (!(PROXY_RANGES.has(proxy) || (family && rangeOk && extra === undefined))) {
      throw new Error(`CAREBRIDGE_TRUST_PROXY must be off, true, a hop count, or proxies' addresses and CIDR ranges separated by commas (e.g. 10.0.0.1,10.1.0.0/16), not '${value}'.`);
    }
  }
  return proxies;
}

function redBagWorkflowId(env: NodeJS.ProcessEnv): string {
  const id = (env.CAREBRIDGE_RED_BAG_WORKFLOW_ID ?? 'CAREBRIDGE_RED_BAG').trim();
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(id)) throw new Error(`CAREBRIDGE_RED_BAG_WORKFLOW_ID must be one MESH workflow id (letters, digits, _ . -), not '${env.CAREBRIDGE_RED_BAG_WORKFLOW_ID}'.`);
  return id;
}

const DEADLINE_TEXT = /^\s*\d{1,3}\s*(working-days|working-hours)\s*$/;

function loadDischargeConfig(env: NodeJS.ProcessEnv): DischargeConfig {
  const deadline = (name: string, fallback: string) => {
    const value = env[name] ?? fallback;
    if (!DEADLINE_TEXT.test(value) || /^\s*0+\s/.test(value)) throw new Error(`${name} must be a whole number and a unit, e.g. "48 working-hours" or "2 working-days", not '${value}'.`);
    return value.trim();
  };
  const ids = (env.CAREBRIDGE_ADW_WORKFLOW_IDS ?? 'ADW_NOTICE,ADW_NOTICE_ACK').split(',').map((s) => s.trim());
  if (ids.length !== 2 || ids.some((id) => !/^[A-Za-z0-9_.-]{1,64}$/.test(id))) throw new Error(`CAREBRIDGE_ADW_WORKFLOW_IDS must be two MESH workflow ids separated by a comma (notices, responses), not '${env.CAREBRIDGE_ADW_WORKFLOW_IDS}'.`);
  return {
    assessmentDeadline: deadline('CAREBRIDGE_DISCHARGE_ASSESSMENT_DEADLINE', '48 working-hours'),
    dischargeDeadline: deadline('CAREBRIDGE_DISCHARGE_DISCHARGE_DEADLINE', '24 working-hours'),
    pollSeconds: wholeNumber(env, 'CAREBRIDGE_DISCHARGE_POLL_SECONDS', 5, 1, 3600),
    adwWorkflowIds: { notice: ids[0], response: ids[1] },
  };
}

/** Off unless CAREBRIDGE_HL7_PORT is set (0 picks a free port, for tests). */
export function loadHl7Config(env: NodeJS.ProcessEnv): Hl7Config | undefined {
  if (env.CAREBRIDGE_HL7_PORT === undefined || env.CAREBRIDGE_HL7_PORT === '') return undefined;
  const port = wholeNumber(env, 'CAREBRIDGE_HL7_PORT', 0, 0, 65535);
  const maxKb = wholeNumber(env, 'CAREBRIDGE_HL7_MAX_MESSAGE_KB', 1024, 1, 64 * 1024);
  return { port, facilities: parseFacilities(env.CAREBRIDGE_HL7_FACILITIES ?? ''), maxMessageBytes: maxKb * 1024 };
}

/** `CITYGEN=RX9,NORTHPAS=RX9`: sending facility (MSH-4, as sent) → ODS code. */
function parseFacilities(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of text.split(',').map((p) => p.trim()).filter(Boolean)) {
    const m = /^([^=]+)=([A-Za-z0-9]{3,10})$/.exec(pair);
    if (!m) throw new Error(`CAREBRIDGE_HL7_FACILITIES must be FACILITY=ODS pairs separated by commas (e.g. CITYGEN=RX9), not '${pair}'.`);
    out[m[1].trim()] = m[2].toUpperCase();
  }
  return out;
}

/** --base-url, else CAREBRIDGE_BASE_URL: an absolute http(s) URL (links, token issuer and audience are made from it). */
function publicBaseUrl(flag: string | undefined, fromEnv: string | undefined): string | undefined {
  const value = flag ?? fromEnv;
  if (value === undefined) return undefined;
  const protocol = URL.canParse(value) ? new URL(value).protocol : undefined;
  if (protocol !== 'https:' && protocol !== 'http:') {
    throw new Error(`${flag !== undefined ? '--base-url' : 'CAREBRIDGE_BASE_URL'} must be the FHIR API's public address as an http(s) URL, e.g. https://carebridge.example.org/fhir, not '${value}'.`);
  }
  return value;
}

/** A file a setting names must be there to read at start-up, not at the first poll an hour later. */
function readableFile(name: string, file: string): void {
  try {
    accessSync(file, constants.R_OK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code ?? (err as Error).message;
    throw new Error(`${name} names '${file}', which cannot be read (${why}).`);
  }
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
  if (env.CAREBRIDGE_OIDC_REDIRECT_URI !== undefined && !/^https?:\/\/[^/]/.test(env.CAREBRIDGE_OIDC_REDIRECT_URI)) {
    throw new Error(`CAREBRIDGE_OIDC_REDIRECT_URI must be an http(s) URL (this server's /auth/oidc/callback as the identity provider reaches it), not '${env.CAREBRIDGE_OIDC_REDIRECT_URI}'.`);
  }
  return {
    lockoutFailures: wholeNumber(env, 'CAREBRIDGE_LOCKOUT_FAILURES', 5, 1, 100),
    lockoutMinutes: wholeNumber(env, 'CAREBRIDGE_LOCKOUT_MINUTES', 15, 1, 24 * 60),
    sessionIdleMinutes: wholeNumber(env, 'CAREBRIDGE_SESSION_IDLE_MINUTES', 30, 1, 24 * 60),
    sessionMaxHours: wholeNumber(env, 'CAREBRIDGE_SESSION_MAX_HOURS', 12, 1, 7 * 24),
    ...(issuer && clientId && clientSecret ? { oidc: { issuer, clientId, clientSecret, ...(redirectUri ? { redirectUri } : {}) } } : {}),
  };
}

export function loadMessagingConfig(env: NodeJS.ProcessEnv): MessagingConfig {
  const sharedKey = env.CAREBRIDGE_MESH_SHARED_KEY || undefined;
  const url = env.CAREBRIDGE_MESH_URL;
  let client: MeshClientConfig | undefined;
  if (url) {
    if (!/^https?:\/\/[^/]/.test(url)) throw new Error(`CAREBRIDGE_MESH_URL must be an http(s) URL, not '${url}'.`);
    const mailbox = env.CAREBRIDGE_MESH_MAILBOX;
    const password = env.CAREBRIDGE_MESH_PASSWORD;
    const clientKey = env.CAREBRIDGE_MESH_CLIENT_SHARED_KEY || sharedKey;
    if (!mailbox || !password || !clientKey) throw new Error('CAREBRIDGE_MESH_URL needs CAREBRIDGE_MESH_MAILBOX, CAREBRIDGE_MESH_PASSWORD and a shared key (CAREBRIDGE_MESH_CLIENT_SHARED_KEY, or CAREBRIDGE_MESH_SHARED_KEY).');
    const certFile = env.CAREBRIDGE_MESH_CLIENT_CERT;
    const keyFile = env.CAREBRIDGE_MESH_CLIENT_KEY;
    if (Boolean(certFile) !== Boolean(keyFile)) throw new Error('Set both CAREBRIDGE_MESH_CLIENT_CERT and CAREBRIDGE_MESH_CLIENT_KEY, or neither.');
    for (const name of ['CAREBRIDGE_MESH_CLIENT_CERT', 'CAREBRIDGE_MESH_CLIENT_KEY', 'CAREBRIDGE_MESH_CA']) if (env[name]) readableFile(name, env[name]!);
    client = {
      url: url.replace(/\/+$/, ''),
      mailbox,
      password,
      sharedKey: clientKey,
      workflowIds: (env.CAREBRIDGE_MESH_WORKFLOW_IDS ?? '').split(',').map((w) => w.trim()).filter(Boolean),
      pollMs: wholeNumber(env, 'CAREBRIDGE_MESH_POLL_MS', 60_000, 50, 24 * 3600_000),
      chunkBytes: wholeNumber(env, 'CAREBRIDGE_MESH_CHUNK_BYTES', 20 * 1024 * 1024, 1024, 100 * 1024 * 1024),
      ...(certFile && keyFile ? { tls: { certFile, keyFile, ...(env.CAREBRIDGE_MESH_CA ? { caFile: env.CAREBRIDGE_MESH_CA } : {}) } } : {}),
    };
  }
  return {
    sharedKey,
    clockSkewMinutes: wholeNumber(env, 'CAREBRIDGE_MESH_CLOCK_SKEW_MINUTES', 5, 1, 24 * 60),
    expiryDays: wholeNumber(env, 'CAREBRIDGE_MESH_EXPIRY_DAYS', 5, 1, 30),
    maxAttempts: wholeNumber(env, 'CAREBRIDGE_MESSAGING_MAX_ATTEMPTS', 5, 1, 100),
    retryBaseMs: wholeNumber(env, 'CAREBRIDGE_MESSAGING_RETRY_MS', 5_000, 1, 3600_000),
    stopWaitMs: wholeNumber(env, 'CAREBRIDGE_MESSAGING_STOP_WAIT_MS', 10_000, 0, 600_000),
    ...(client ? { client } : {}),
  };
}

export function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  return host === '::1';
}
