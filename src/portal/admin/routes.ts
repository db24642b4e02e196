// The administrator's pages: people's accounts (list, add with memberships, disable and enable), system
// clients (list, add showing the secret once, revoke) and organisations (list, add), through
// PortalAccess.administration; the MESH dead letters have pages of their own (deadLetters.ts). Administrators never see care records: these pages read no record.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { generatePassword, ORGANISATION_KINDS, ROLES, type Role } from '../../access/index.ts';
import { errorView, type FieldError, type SendPage } from '../page.ts';
import { NotAllowedHere, PageNotFound } from '../pageErrors.ts';
import { signedInAs } from '../person/recordPages.ts';
import { ROLE_LABELS } from '../roles.ts';
import type { PortalAdministration, RefusedAttempt } from '../portalAccess.ts';
import { visitOf } from '../visit.ts';
import { checkClientForm, checkOrganisationForm, checkUserForm, MEMBERSHIP_ROWS, placeError, type FormValues } from './forms.ts';
import { formSubmission } from '../formSubmission.ts';

const ADMIN: ReadonlySet<Role> = new Set(['admin']);
const REFUSAL = 'These pages are for administrators.';

const KIND_LABELS: Record<string, string> = { 'care-home': 'Care home', hospital: 'Hospital', council: 'Council', 'gp-practice': 'GP practice', other: 'Other' };
const DONE: Record<string, string> = {
  disabled: 'Account disabled: its sessions and apps\' sign-ins have ended',
  'signed-out': 'Signed out everywhere: their sessions and apps\' sign-ins have ended',
  enabled: 'Account enabled',
  revoked: 'Client revoked: it can get no more tokens',
  'organisation-added': 'Organisation added',
};

export interface AdminOptions {
  send: SendPage;
  administration?: PortalAdministration;
  /** The MESH dead-letter queue, for its count on the administration page (its own pages: deadLetters.ts). */
  deadLetters?: { count(): Promise<number> };
}

export function adminRoutes(app: FastifyInstance, { send, administration, deadLetters }: AdminOptions): void {
  /**
   * The signed-in administrator and the administration they manage (undefined: the reply is sent). A
   * change (`attempt`) posted by someone signed in whose role may not administer is audited as refused.
   */
  const admin = (req: FastifyRequest, reply: FastifyReply, attempt?: Omit<RefusedAttempt, 'reason'>) => {
    let actor;
    try {
      actor = signedInAs(req, reply, ADMIN, REFUSAL);
    } catch (err) {
      const visitor = visitOf(req).actor;
      if (err instanceof NotAllowedHere && attempt && visitor) administration?.refused({ actor: visitor, address: req.ip }, { ...attempt, reason: REFUSAL, permitted: false });
      throw err;
    }
    if (!actor) return undefined;
    if (!administration) throw new NotAllowedHere('Administration is not available on this server.');
    return { actor, administration, by: { actor, address: req.ip } };
  };
  const banner = (req: FastifyRequest) => DONE[String((req.query as Record<string, unknown>).done ?? '')];

  app.get('/admin', async (req, reply) => {
    if (!admin(req, reply)) return reply;
    return send(req, reply, 'pages/admin/home.njk', { pageTitle: 'Administration', deadLetters: deadLetters ? { count: await deadLetters.count() } : undefined });
  });

  // ---- people's accounts -------------------------------------------------------------------------
  const organisationChoices = async (a: PortalAdministration, selected?: string) => [
    { value: '', text: 'None (carer, person or administrator)' },
    ...(await a.organisations.list()).map((o) => ({ value: o.ods, text: `${o.name} (${o.ods})`, selected: o.ods === selected })),
  ];
  const roleChoices = (selected?: string) => [{ value: '', text: 'Choose a role' }, ...ROLES.map((r) => ({ value: r, text: ROLE_LABELS[r], selected: r === selected }))];
  const userForm = async (req: FastifyRequest, reply: FastifyReply, a: PortalAdministration, values: FormValues, errors: FieldError[]) => {
    const rows = await Promise.all(MEMBERSHIP_ROWS.map(async (n) => ({ n, organisations: await organisationChoices(a, values[`organisation${n}`]), roles: roleChoices(values[`role${n}`]) })));
    return send(req, reply, 'pages/admin/user-new.njk', { pageTitle: 'Add a user', values, rows, ...errorView(errors) }, errors.length ? 400 : 200);
  };
  const usersPage = async (req: FastifyRequest, reply: FastifyReply, a: PortalAdministration, added?: Record<string, string | undefined>) => {
    const users = (await a.users.list()).map((u) => ({
      ...u,
      memberships: u.memberships.map((m) => `${ROLE_LABELS[m.role]}${m.organisation ? ` at ${m.organisationName ?? m.organisation}` : ''}`),
      status: u.disabled ? { text: 'Disabled', colour: 'grey' } : u.lockedUntil ? { text: 'Locked', colour: 'orange' } : { text: 'Active', colour: 'green' },
      signIn: [u.hasPassword ? 'Password' : '', u.totp ? 'security code' : '', u.oidc ? 'organisation account' : ''].filter(Boolean).join(', ') || 'None',
    }));
    return send(req, reply, 'pages/admin/users.njk', { pageTitle: 'Users', users, added, done: banner(req) });
  };

  app.get('/admin/users', async (req, reply) => {
    const a = admin(req, reply);
    if (!a) return reply;
    return usersPage(req, reply, a.administration);
  });

  app.get('/admin/users/new', async (req, reply) => {
    const a = admin(req, reply);
    if (!a) return reply;
    return userForm(req, reply, a.administration, {}, []);
  });

  app.post<{ Body: FormValues }>('/admin/users', async (req, reply) => {
    const a = admin(req, reply, { action: 'user-added', target: String(req.body?.username ?? '') });
    if (!a) return reply;
    const checked = checkUserForm(req.body);
    if (!checked.ok) return userForm(req, reply, a.administration, req.body, checked.errors);
    const password = generatePassword();
    try {
      const { totpUri } = await a.administration.users.add({ ...checked.value, password }, a.by);
      // Shown on this answer only: the password is stored hashed and the page is never cached.
      return usersPage(req, reply, a.administration, { username: checked.value.username, password, totpUri });
    } catch (err) {
      if (/^A user '.*' already exists\.$/.test((err as Error).message)) {
        // Often the same form sent twice: the first sending added them, and its password page was replaced.
        const text = `${(err as Error).message} If you added them just now and did not see their password, give them a new one from the list of users.`;
        return userForm(req, reply, a.administration, req.body, [{ field: 'username', text }]);
      }
      const error = placeError(err, [[/username|user '/i, 'username'], [/organisation|ODS/i, 'organisation1'], [/role|combined/i, 'role1'], [/link|Practitioner|RelatedPerson|Patient/, 'fhirUser'], [/name/i, 'name']], 'username');
      return userForm(req, reply, a.administration, req.body, [error]);
    }
  });

  const userAction = (action: 'disable' | 'enable') =>
    app.post<{ Params: { username: string } }>(`/admin/users/:username/${action}`, async (req, reply) => {
      const a = admin(req, reply, { action: `user-${action}d`, target: req.params.username });
      if (!a) return reply;
      const user = (await a.administration.users.list()).find((u) => u.username === req.params.username);
      if (!user) throw new PageNotFound('There is no user with this username.');
      if (action === 'disable' && user.userId === a.actor.userId) {
        const reason = 'You cannot disable your own account: ask another administrator.';
        a.administration.refused(a.by, { action: 'user-disabled', target: user.username, targetId: user.userId, reason });
        throw new NotAllowedHere(reason);
      }
      await a.administration.users[action](user.username, a.by);
      return reply.redirect(`/admin/users?done=${action}d`, 303);
    });
  userAction('disable');
  userAction('enable');

  // A lost or shared device: everything the person is signed in with ends; the account stays as it is.
  app.post<{ Params: { username: string } }>('/admin/users/:username/sign-out', async (req, reply) => {
    const a = admin(req, reply, { action: 'user-signed-out', target: req.params.username });
    if (!a) return reply;
    const user = (await a.administration.users.list()).find((u) => u.username === req.params.username);
    if (!user) throw new PageNotFound('There is no user with this username.');
    await a.administration.users.signOut(user.username, a.by);
    return reply.redirect('/admin/users?done=signed-out', 303);
  });

  // A forgotten password, or one shown once and missed: a new one, shown once; it also lifts a lockout.
  app.post<{ Params: { username: string } }>('/admin/users/:username/new-password', async (req, reply) => {
    const a = admin(req, reply, { action: 'user-password-set', target: req.params.username });
    if (!a) return reply;
    const user = (await a.administration.users.list()).find((u) => u.username === req.params.username);
    if (!user) throw new PageNotFound('There is no user with this username.');
    if (!user.hasPassword) {
      const reason = `${user.username} signs in without a CareBridge password, so there is none to replace.`;
      a.administration.refused(a.by, { action: 'user-password-set', target: user.username, targetId: user.userId, reason });
      throw new NotAllowedHere(reason);
    }
    const password = generatePassword();
    await a.administration.users.setPassword(user.username, password, a.by);
    return usersPage(req, reply, a.administration, { username: user.username, password, renewed: 'yes' });
  });

  // ---- system clients ----------------------------------------------------------------------------
  const clientForm = async (req: FastifyRequest, reply: FastifyReply, a: PortalAdministration, values: FormValues, errors: FieldError[]) => {
    const organisations = (await organisationChoices(a, values.organization)).map((o, i) => (i === 0 ? { ...o, text: 'None' } : o));
    return send(req, reply, 'pages/admin/client-new.njk', { pageTitle: 'Add a system client', values, organisations, ...errorView(errors) }, errors.length ? 400 : 200);
  };
  const clientsPage = async (req: FastifyRequest, reply: FastifyReply, a: PortalAdministration, added?: { clientId: string; secret?: string; earlier?: boolean }) => {
    const clients = await a.clients.list();
    return send(req, reply, 'pages/admin/clients.njk', { pageTitle: 'System clients', clients, added, done: banner(req) });
  };

  app.get('/admin/clients', async (req, reply) => {
    const a = admin(req, reply);
    if (!a) return reply;
    return clientsPage(req, reply, a.administration);
  });

  app.get('/admin/clients/new', async (req, reply) => {
    const a = admin(req, reply);
    if (!a) return reply;
    return clientForm(req, reply, a.administration, { scopes: 'system/Patient.rs', submission: formSubmission(undefined) }, []);
  });

  app.post<{ Body: FormValues }>('/admin/clients', async (req, reply) => {
    const a = admin(req, reply, { action: 'client-added', target: String(req.body?.name ?? '') });
    if (!a) return reply;
    // The form's submission id is the new client's id: the same form sent twice (a second click, a resent
    // request) finds the client its first sending added, and cannot add another whose secret nobody saw.
    const submission = formSubmission(req.body?.submission);
    const values = { ...req.body, submission };
    const checked = checkClientForm(req.body);
    if (!checked.ok) return clientForm(req, reply, a.administration, values, checked.errors);
    try {
      const { client, secret } = await a.administration.clients.add({ ...checked.value, clientId: submission }, a.by);
      return clientsPage(req, reply, a.administration, { clientId: client.clientId, secret });
    } catch (err) {
      if ((await a.administration.clients.list()).some((c) => c.clientId === submission)) return clientsPage(req, reply, a.administration, { clientId: submission, earlier: true });
      return clientForm(req, reply, a.administration, values, [placeError(err, [[/scope|grants nothing/i, 'scopes'], [/redirect/i, 'redirectUris']], 'name')]);
    }
  });

  app.post<{ Params: { clientId: string } }>('/admin/clients/:clientId/revoke', async (req, reply) => {
    const a = admin(req, reply, { action: 'client-revoked', target: req.params.clientId });
    if (!a) return reply;
    if (!(await a.administration.clients.list()).some((c) => c.clientId === req.params.clientId)) throw new PageNotFound('There is no system client with this id.');
    await a.administration.clients.revoke(req.params.clientId, a.by);
    return reply.redirect('/admin/clients?done=revoked', 303);
  });

  // ---- organisations -----------------------------------------------------------------------------
  const kinds = (selected?: string) => ORGANISATION_KINDS.map((k) => ({ value: k, text: KIND_LABELS[k], checked: k === selected }));
  const organisationForm = (req: FastifyRequest, reply: FastifyReply, values: FormValues, errors: FieldError[]) =>
    send(req, reply, 'pages/admin/organisation-new.njk', { pageTitle: 'Add an organisation', values, kinds: kinds(values.kind), ...errorView(errors) }, errors.length ? 400 : 200);

  app.get('/admin/organisations', async (req, reply) => {
    const a = admin(req, reply);
    if (!a) return reply;
    const organisations = (await a.administration.organisations.list()).map((o) => ({ ...o, kind: KIND_LABELS[o.kind] ?? o.kind }));
    return send(req, reply, 'pages/admin/organisations.njk', { pageTitle: 'Organisations', organisations, done: banner(req) });
  });

  app.get('/admin/organisations/new', async (req, reply) => {
    if (!admin(req, reply)) return reply;
    return organisationForm(req, reply, {}, []);
  });

  app.post<{ Body: FormValues }>('/admin/organisations', async (req, reply) => {
    const a = admin(req, reply, { action: 'organisation-added', target: String(req.body?.ods ?? '') });
    if (!a) return reply;
    const checked = checkOrganisationForm(req.body);
    if (!checked.ok) return organisationForm(req, reply, req.body, checked.errors);
    try {
      await a.administration.organisations.add(checked.value, a.by);
    } catch (err) {
      return organisationForm(req, reply, req.body, [placeError(err, [[/ODS|exists/i, 'ods'], [/kind/i, 'kind']], 'name')]);
    }
    return reply.redirect('/admin/organisations?done=organisation-added', 303);
  });
}
