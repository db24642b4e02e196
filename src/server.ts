// The app, assembled from one plugin per capability.
import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify';
import { fhirApi, openRecordStore, UNRESTRICTED, type SqlDriver } from './record/index.ts';
import type { ServerConfig } from './config.ts';
import {
  addClient, addOrganisation, addUser, describeClient, describeMemberships, disableUser, enableUser, findUser, listClients, listOrganisations, listUsers, revokeClient, setPassword, setUpAccess, signOutEverywhere,
  type Access, type Actor, type AdministrativeChange,
} from './access/index.ts';
import { portal, type PortalAdministration, type PortalDeadLetters } from './portal/index.ts';
import { dischargeOperations, parseDeadlineRule, setUpDischarge, type Discharge } from './discharge/index.ts';
import {
  NotForThisService, PermanentFailure, awaitReplayOutcome, countDeadLetters, pageOfDeadLetters, replayDeadLetter, replayOutcome, setUpMessaging, type MessagingService,
} from './messaging/index.ts';
import { startHl7v2, type Hl7v2Listener } from './hl7v2/index.ts';
import { connectRedBagToMesh, redBagOperations, RED_BAG_CLIENT_ID } from './redbag/index.ts';

function outcomeText(diagnostics: string): string {
  return JSON.stringify({ resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'invalid', diagnostics }] });
}

/**
 * Sent with every answer unless a route set its own (the portal's pages and assets do): nothing is sniffed,
 * framed or cached on the way (records are personal data, often on shared computers), and no page of
 * ours leaks its address to another site.
 */
const SECURITY_HEADERS: Record<string, string> = {
  'x-content-type-options': 'nosniff',
  'cache-control': 'no-store',
  'content-security-policy': "default-src 'none'; frame-ancestors 'none'",
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'strict-transport-security': 'max-age=31536000',
};

/** Trusts the nearest `hops` proxies, as Fastify's trustProxy does for a number. */
function trustHops(hops: number): (address: string, hop: number) => boolean {
  return (_address, hop) => hop < hops;
}

/**
 * What the portal's administrators manage, through src/access; `administered` (Access.administered)
 * records each change made in the audit trail as the administrator's.
 */
export function portalAdministration(driver: SqlDriver, administered: Access['administered']): PortalAdministration {
  type Attempt = Omit<AdministrativeChange, 'ok'>;
  /**
   * Runs `change` and audits it once made, with what `made` adds from its result; a change the access
   * layer refuses (it throws, having changed nothing) is audited as a refused attempt, with the reason.
   */
  const audited = async <T>(by: { actor: Actor; address: string }, attempt: Attempt, change: () => Promise<T>, made?: (result: T) => Partial<Attempt>): Promise<T> => {
    let result: T;
    try {
      result = await change();
    } catch (err) {
      administered(by.actor, by.address, { ...attempt, ok: false, reason: String((err as Error)?.message ?? err).slice(0, 300) });
      throw err;
    }
    administered(by.actor, by.address, { ...attempt, ...made?.(result), ok: true });
    return result;
  };
  /** Disables or enables an account, audited with the account's id as well as its username. */
  const changeUser = async (action: 'user-disabled' | 'user-enabled' | 'user-password-set' | 'user-signed-out', username: string, by: { actor: Actor; address: string }, change: () => Promise<void>) => {
    const userId = (await findUser(driver, username))?.userId;
    await audited(by, { action, target: username, targetId: userId }, change);
  };
  return {
    users: {
      list: () => listUsers(driver),
      add: (user, by) => audited(by, { action: 'user-added', target: user.username, detail: describeMemberships(user.memberships) }, () => addUser(driver, user), ({ userId }) => ({ targetId: userId })),
      disable: (username, by) => changeUser('user-disabled', username, by, () => disableUser(driver, username)),
      enable: (username, by) => changeUser('user-enabled', username, by, () => enableUser(driver, username)),
      setPassword: (username, password, by) => changeUser('user-password-set', username, by, () => setPassword(driver, username, password)),
      signOut: (username, by) => changeUser('user-signed-out', username, by, () => signOutEverywhere(driver, username)),
    },
    clients: {
      list: () => listClients(driver),
      // A client refused has no id yet: the attempt names it by the name asked for.
      add: (client, by) => audited(by, { action: 'client-added', target: client.name }, () => addClient(driver, client), (added) => ({ target: added.client.clientId, detail: describeClient(added.client) })),
      revoke: (clientId, by) => audited(by, { action: 'client-revoked', target: clientId }, () => revokeClient(driver, clientId)),
    },
    organisations: {
      list: () => listOrganisations(driver),
      add: (organisation, by) => audited(by, { action: 'organisation-added', target: organisation.ods }, () => addOrganisation(driver, organisation), (added) => ({ target: added.ods, detail: `${added.name} (${added.kind})` })),
    },
    refused: (by, attempt) => administered(by.actor, by.address, { ...attempt, ok: false }),
  };
}

/**
 * The MESH dead-letter queue for the portal's administrators. A replay is audited (through `administered`)
 * as the administrator's, naming the message id, when it is made; then the inbound worker (which looks for
 * due messages every half second, on whichever node) tries it and the page waits briefly to say how it went.
 * Each view of the queue (a page, a replay's outcome) is audited (through `deadLettersViewed`) as the viewer's,
 * naming the people whose NHS numbers it shows.
 */
export function portalDeadLetters(driver: SqlDriver, audit: Pick<Access, 'administered' | 'deadLettersViewed'>, waitMs = 5000): PortalDeadLetters {
  return {
    viewed: (viewer, view, shownText) => audit.deadLettersViewed(viewer.actor, viewer.address, view, shownText),
    page: (offset, limit) => pageOfDeadLetters(driver, { offset, limit }),
    count: () => countDeadLetters(driver),
    outcome: (messageId) => replayOutcome(driver, messageId),
    async replay(messageId, by) {
      const change = { action: 'dead-letter-replayed', target: messageId } as const;
      try {
        await replayDeadLetter(driver, messageId, Date.now());
      } catch (err) {
        audit.administered(by.actor, by.address, { ...change, ok: false, reason: String((err as Error)?.message ?? err).slice(0, 300) });
        throw err;
      }
      audit.administered(by.actor, by.address, { ...change, ok: true });
      return awaitReplayOutcome(driver, messageId, waitMs);
    },
  };
}

export interface CareBridgeServer {
  app: FastifyInstance;
  driver: SqlDriver;
  discharge: Discharge;
  /** MESH in and out: workflows register their inbound handlers here and send through it. */
  messaging: MessagingService;
  /** The HL7 v2 MLLP listener, when CAREBRIDGE_HL7_PORT is set. */
  hl7?: Hl7v2Listener;
  close(): Promise<void>;
}

/** `logLevel` (pino levels: error, warn, info…) turns on logging; tests leave it off. */
export async function buildServer(config: ServerConfig, options: { logLevel?: string } = {}): Promise<CareBridgeServer> {
  const driver = await openRecordStore(config.database);
  const access = config.insecureNoAuth ? undefined : await setUpAccess(driver, { adminClient: config.adminClient, tokenRequestsPerMinute: config.tokenRequestsPerMinute, signInsPerMinute: config.signInsPerMinute, baseUrl: config.baseUrl, audit: config.audit, database: config.database, people: config.people, refreshLifetimes: config.refreshLifetimes });
  const app = Fastify({
    logger: options.logLevel ? { level: options.logLevel } : false,
    bodyLimit: config.bodyLimitBytes,
    // Only when asked for: otherwise X-Forwarded-* would let anyone choose their address. A hop count is
    // given as the function Fastify makes of one (its types take no number).
    trustProxy: typeof config.trustProxy === 'number' ? trustHops(config.trustProxy) : config.trustProxy,
    routerOptions: { maxParamLength: 500 },
    // Errors Fastify raises before a route runs still answer with an OperationOutcome.
    frameworkErrors: (err, _req, reply: FastifyReply) => {
      reply.code(400).header('content-type', 'application/fhir+json').send(outcomeText(`The request could not be read: ${err.message}`));
    },
    clientErrorHandler: (err, socket) => {
      const status = (err as { code?: string }).code === 'HPE_HEADER_OVERFLOW' ? 431 : 400;
      const body = outcomeText(status === 431 ? 'The request line and headers are too large; send long searches as POST [type]/_search.' : 'The request is not valid HTTP.');
      if (socket.writable) socket.end(`HTTP/1.1 ${status} ${status === 431 ? 'Request Header Fields Too Large' : 'Bad Request'}\r\nContent-Type: application/fhir+json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
      else socket.destroy(err);
    },
  });
  // Cookies are Secure when the public address is https, even where the proxy in front does not say so.
  app.decorateRequest('publicHttps', Boolean(config.baseUrl?.toLowerCase().startsWith('https:')));
  app.addHook('onSend', async (_req, reply, payload) => {
    for (const [name, value] of Object.entries(SECURITY_HEADERS)) if (!reply.hasHeader(name)) reply.header(name, value);
    return payload;
  });
  if (access) await app.register(access.routes);
  // A replay or a listing through the dead-letter API is audited as its caller's, as the portal's are the administrator's.
  const messaging = await setUpMessaging(driver, {
    config: config.messaging, authenticate: access?.authenticate, log: (err) => app.log.error(err),
    replayAudit: access && ((control, messageId, attempt) => access.administeredThrough(control, { action: 'dead-letter-replayed', target: messageId, ...attempt, reason: attempt.reason?.slice(0, 300) })),
    listingAudit: access && ((control, { shownText, ...listing }) => access.deadLettersViewedThrough(control, { path: '/messaging/dead-letters', ...listing, reason: listing.reason?.slice(0, 300) }, shownText)),
  });
  await app.register(messaging.routes);
  app.addHook('onReady', async () => messaging.start()); // after every workflow has registered its handlers
  // The red bag carries packs and steps over MESH to organisations served elsewhere (registered before messaging starts).
  const base = config.baseUrl ?? `http://${config.host}:${config.port}/fhir`;
  const courier = await connectRedBagToMesh({
    driver, messaging, PermanentFailure, base, workflowId: config.redBag.workflowId, ownMailbox: config.messaging.client?.mailbox, settings: config.redBag,
    access: access ? await access.controlFor({ kind: 'system', clientId: RED_BAG_CLIENT_ID, name: 'CareBridge red bag over MESH', purpose: 'TREAT', scope: 'system/*.cruds' }) : UNRESTRICTED,
  });
  const redBag = { ...config.redBag, courier };
  // Discharge registers its ADW handlers with messaging here, before the server is ready and messaging starts.
  const discharge = await setUpDischarge(driver, access?.controlFor, {
    base, pollMs: config.discharge.pollSeconds * 1000, workflowIds: config.discharge.adwWorkflowIds,
    deadlines: { assessment: parseDeadlineRule(config.discharge.assessmentDeadline), discharge: parseDeadlineRule(config.discharge.dischargeDeadline) },
    messaging: { api: messaging, PermanentFailure, NotForThisService },
  });
  const operations = [...redBagOperations(redBag), ...dischargeOperations((call) => discharge.contextFor(call.access))];
  await app.register(fhirApi, { driver, baseUrl: config.baseUrl, authenticate: access?.authenticate, allowsOrigin: access?.allowsOrigin, services: access?.services, operations });
  // The portal needs people to sign in, so it is not served without authentication.
  if (access) {
    await app.register(portal, { driver, baseUrl: config.baseUrl, signInsPerMinute: config.signInsPerMinute, oidcRedirectUri: config.people?.oidc?.redirectUri, redBag, services: access.services, access: { controlFor: access.controlFor, accounts: { people: access.people, sessions: access.sessions }, breakGlass: access.breakGlass, administration: portalAdministration(driver, access.administered) }, discharge, deadLetters: portalDeadLetters(driver, access) });
  }
  const hl7 = config.hl7 && await startHl7v2({ driver, host: config.host, ...config.hl7, base: config.baseUrl, controlFor: access?.controlFor, log: (text) => app.log.error(text) });
  return {
    app,
    driver,
    messaging,
    hl7,
    discharge,
    async close() {
      await hl7?.close();
      await discharge.close();
      await messaging.close(); // handlers in flight finish or are handed back before the database closes
      await app.close();
      await access?.close(); // buffered audit events
      await driver.close();
    },
  };
}
