// The portal: server-rendered pages at /, styled with nhsuk-frontend, working without JavaScript. A
// Fastify plugin with its own scope: security headers, compression, cookies, forms and CSRF checks apply
// to its pages only, never to the FHIR API.
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import helmet from '@fastify/helmet';
import rateLimit from '@fastify/rate-limit';
import compress from '@fastify/compress';
import cookie from '@fastify/cookie';
import formbody from '@fastify/formbody';
import { FhirError, isTemporaryOutage, OUTAGE_RETRY_AFTER_SECONDS, type ResourceTypeServices, type SqlDriver } from '../record/index.ts';
import { derivedKey, portalSecret } from './keys.ts';
import { portalAssets } from './assets.ts';
import { portalViews } from './views.ts';
import { pageSender, type SendPage } from './page.ts';
import { CsrfRefused, csrfHook, visitHook, visitOf } from './visit.ts';
import { signInRoutes } from './signIn.ts';
import { careHomeRoutes } from './careHome/routes.ts';
import { hospitalRoutes } from './hospital/routes.ts';
import { councilRoutes } from './council/routes.ts';
import { adminRoutes } from './admin/routes.ts';
import { deadLetterRoutes, type PortalDeadLetters } from './admin/deadLetters.ts';
import { liveRoutes } from './live/routes.ts';
import { NotAllowedHere, NotInRecord, PageNotFound } from './pageErrors.ts';
import { homePath } from './roles.ts';
import { breakGlassPrompt, NoCareRelationship } from './breakGlass.ts';
import { auditSearchRoutes } from './auditSearch.ts';
import { ownRecordRoutes } from './ownRecord/routes.ts';
import { communityRoutes } from './community/routes.ts';
import { privacyOfficerRoutes } from './privacyOfficer.ts';
import { redBagRoutes, RedBagNotAllowed } from './redBag/routes.ts';
import type { RedBagSettings } from '../redbag/index.ts';
import { errorView } from './page.ts';
import type { PortalAccess } from './portalAccess.ts';
import { dischargeRoutes, type DischargePortal } from './discharge/routes.ts';

export interface PortalOptions {
  driver: SqlDriver;
  access: PortalAccess;
  /** The configured public FHIR base URL; when absent the request's Host decides. */
  baseUrl?: string;
  /** Sign-in attempts per minute per address (default 20). */
  signInsPerMinute?: number;
  /** Where the OpenID Connect provider sends people back, when configured with one. */
  oidcRedirectUri?: string;
  /** Types other capabilities serve through the record (the audit trail's AuditEvents, for privacy officers). */
  services?: ResourceTypeServices;
  /** The red bag's reminder timing (CAREBRIDGE_RED_BAG_ACK_HOURS). */
  redBag?: RedBagSettings;
  /** The discharge workflow, for the discharge pages' actions (without it they are read-only). */
  discharge?: DischargePortal;
  /** The MESH dead-letter queue, for administrators (without it its page says it is not available). */
  deadLetters?: PortalDeadLetters;
}

/** Forms are small: a NEWS2 form is well under 1 KB. */
const FORM_BODY_LIMIT = 16 * 1024;

export async function portal(app: FastifyInstance, options: PortalOptions): Promise<void> {
  const secret = await portalSecret(options.driver);
  const assets = portalAssets();
  const views = portalViews({ assetPath: assets.path, serviceName: 'CareBridge' });
  const send = pageSender(views);

  await app.register(helmet, {
    // URLs can hold a search for a person's name or NHS number: never send them to another site. (Not
    // no-referrer: with it browsers send "Origin: null" on the portal's own forms, which the CSRF check refuses.)
    referrerPolicy: { policy: 'same-origin' },
    contentSecurityPolicy: {
      useDefaults: false,
      directives: {
        defaultSrc: ["'self'"],
        baseUri: ["'self'"],
        formAction: ["'self'"],
        frameAncestors: ["'none'"],
        imgSrc: ["'self'"],
        objectSrc: ["'none'"],
        scriptSrc: ["'self'"],
        scriptSrcAttr: ["'none'"],
        styleSrc: ["'self'"],
        fontSrc: ["'self'"],
        connectSrc: ["'self'"],
      },
    },
  });
  await app.register(compress, { threshold: 1024 });
  await app.register(cookie);
  await app.register(formbody, { bodyLimit: FORM_BODY_LIMIT });
  await app.register(async (scope) => assets.register(scope));
  await app.register(async (pages) => {
    // Who is asking is known before a form's body is read (onRequest); its CSRF token is checked once it is.
    pages.addHook('onRequest', visitHook(derivedKey(secret, 'csrf'), options.access.accounts?.sessions));
    pages.addHook('preHandler', csrfHook());
    pages.setErrorHandler((err, req, reply) => errorPage(err as Error, req, reply, send, Boolean(options.access.breakGlass)));
    const connection = (req: FastifyRequest) => ({
      driver: options.driver,
      access: options.access,
      services: options.services,
      base: options.baseUrl ?? `${req.protocol}://${req.headers.host ?? 'localhost'}/fhir`,
    });

    pages.get('/', async (req, reply) => {
      const actor = visitOf(req).actor;
      if (actor) return reply.redirect(homePath(actor.role));
      return send(req, reply, 'pages/start.njk', { pageTitle: 'Shared care record' });
    });
    pages.get('/home', async (req, reply) => {
      if (!visitOf(req).actor) return reply.redirect('/sign-in', 303);
      return send(req, reply, 'pages/home.njk', { pageTitle: 'Home' });
    });
    await pages.register(rateLimit, { global: false });
    signInRoutes(pages, { send, accounts: options.access.accounts, pendingKey: derivedKey(secret, 'pending-sign-in'), perMinute: options.signInsPerMinute ?? 20, oidcRedirectUri: options.oidcRedirectUri });
    careHomeRoutes(pages, { send, connection, breakGlass: options.access.breakGlass });
    hospitalRoutes(pages, { send, connection, breakGlass: options.access.breakGlass });
    councilRoutes(pages, { send, connection, breakGlass: options.access.breakGlass });
    adminRoutes(pages, { send, administration: options.access.administration, deadLetters: options.deadLetters });
    deadLetterRoutes(pages, { send, administration: options.access.administration, deadLetters: options.deadLetters });
    liveRoutes(pages, { driver: options.driver, connection });
    privacyOfficerRoutes(pages, { send, breakGlass: options.access.breakGlass });
    auditSearchRoutes(pages, { send, connection });
    ownRecordRoutes(pages, { send, connection });
    communityRoutes(pages, { send, connection, breakGlass: options.access.breakGlass });
    redBagRoutes(pages, { send, connection, settings: options.redBag });
    dischargeRoutes(pages, { send, driver: options.driver, connection, discharge: options.discharge });
    pages.get('/*', async (req, reply) => send(req, reply, 'pages/error.njk', { pageTitle: 'Page not found', heading: 'Page not found', message: 'If you typed the web address, check it is correct. If you pasted the web address, check you copied the entire address.' }, 404));
  });
}

function errorPage(err: FastifyError | Error, req: FastifyRequest, reply: FastifyReply, send: SendPage, canBreakGlass: boolean): FastifyReply {
  const page = (status: number, pageTitle: string, message: string) => send(req, reply, 'pages/error.njk', { pageTitle, heading: pageTitle, message }, status);
  if (err instanceof NoCareRelationship) {
    if (!canBreakGlass || !err.offerBreakGlass) return page(403, err.message, 'The shared record only shows the records of people your organisation cares for, or who named you as their carer.');
    return send(req, reply, 'pages/break-glass.njk', { ...breakGlassPrompt(err.patientId, `${err.recordPath}/break-glass`, err.back), ...errorView([]) }, 403);
  }
  if (err instanceof CsrfRefused) return page(403, 'This form was not accepted', 'The form had expired or did not come from this service. Go back, reload the page and try again.');
  if (err instanceof NotAllowedHere || err instanceof RedBagNotAllowed) return page(403, 'You cannot use this page', err.message);
  if (err instanceof NotInRecord || err instanceof PageNotFound) return page(404, 'Not found', err.message);
  if (err instanceof FhirError && err.status === 403) return page(403, 'You do not have access', 'The shared record did not allow you to see this. If you need it for someone’s care, ask your administrator.');
  const status = (err as FastifyError).statusCode;
  if (status === 429) return page(429, 'Too many sign-in attempts', 'There have been too many attempts to sign in from this computer. Wait a minute, then try again.');
  if (status && status >= 400 && status < 500) return page(status, 'There is a problem with the request', 'The request could not be read. Go back and try again.');
  if (isTemporaryOutage(err)) {
    req.log.error({ err }, 'portal page could not be served: the service is unavailable');
    reply.header('retry-after', String(OUTAGE_RETRY_AFTER_SECONDS));
    return page(503, 'Sorry, the service is unavailable', 'The shared record cannot be reached just now. Wait a minute, then try again. If you were saving a form, check whether it was saved before you send it again.');
  }
  req.log.error({ err }, 'portal page failed');
  return page(500, 'Sorry, there is a problem with the service', 'Try again later.');
}
