// carebridge users add|list|disable|enable|set-password|sign-out and carebridge orgs add|list: people's accounts
// and the organisations they act for, managed on the database directly by an operator.
import type { Command } from 'commander';
import {
  addOrganisation, addUser, describeMemberships, disableUser, enableUser, findUser, generatePassword, listOrganisations, listUsers, ORGANISATION_KINDS, ROLES, setPassword, signOutEverywhere,
  type Membership, type Role, type UserSummary,
} from '../access/index.ts';
import type { SqlDriver } from '../record/index.ts';
import { DB_OPTION_HELP, plainErrors } from './store.ts';
import { administer, withAccessStore } from './accessStore.ts';

const userIdOf = async (driver: SqlDriver, username: string) => (await findUser(driver, username))?.userId;

const collect = (value: string, previous: string[] = []) => [...previous, value];

// Roles that act for nobody but the person themself take no --org; the rest take the --orgs in order.
const ACTS_FOR_NO_ORGANISATION = new Set(['person', 'carer']);

/** Pairs each --role with the next --org, skipping roles held for no organisation. */
export function membershipsFrom(orgs: string[], roles: string[]): Membership[] {
  if (!roles.length) throw new Error('give at least one --role (with its --org), e.g. --org VM101 --role care-home-staff.');
  const left = [...orgs];
  const memberships = roles.map((role): Membership => {
    if (!(ROLES as readonly string[]).includes(role)) throw new Error(`'${role}' is not a role: use one of ${ROLES.join(', ')}.`);
    if (ACTS_FOR_NO_ORGANISATION.has(role)) return { role: role as Role };
    const organisation = left.shift();
    if (!organisation && role !== 'admin') throw new Error(`--role ${role} needs an --org (the ODS code of the organisation it is held at).`);
    return { organisation, role: role as Role };
  });
  if (left.length) {
    // Say why when a role was given: a carer's or a person's role pairs with no --org.
    const unpaired = roles.filter((role) => ACTS_FOR_NO_ORGANISATION.has(role));
    throw new Error(`--org ${left[0]} has no --role to go with it${unpaired.length ? ` (--role ${unpaired[0]} is held for no organisation)` : ''}.`);
  }
  return memberships;
}

/** The whole of stdin, without the final line break (for --password-stdin). */
async function readStdin(): Promise<string> {
  if (process.stdin.isTTY) throw new Error('--password-stdin reads the password from a pipe, e.g. printf %s "$PASSWORD" | carebridge users add …');
  let text = '';
  for await (const chunk of process.stdin) text += chunk;
  return text.replace(/\r?\n$/, '');
}

function signInMethods(u: UserSummary): string {
  return [u.hasPassword && 'password', u.totp && 'totp', u.oidc && `oidc:${u.oidc.subject}@${u.oidc.issuer}`].filter(Boolean).join('+') || 'none';
}

function status(u: UserSummary): string {
  if (u.disabled) return 'DISABLED';
  return u.lockedUntil ? `LOCKED until ${u.lockedUntil}` : 'active';
}

export function usersCommand(program: Command): void {
  const users = program.command('users').description("Manage people's accounts (staff, carers, people themselves).");
  plainErrors(users);

  plainErrors(
    users
      .command('add <username>')
      .description('Add a user. Unless --password-stdin or an identity provider is given, a password is generated and shown only this once.')
      .requiredOption('--name <name>', 'the name colleagues know them by')
      .option('--org <ods>', 'ODS code of an organisation they act for (repeat, one per --role)', collect, [])
      .option('--role <role>', `a role held at the matching --org (repeat): ${ROLES.join(', ')}`, collect, [])
      .option('--fhir-user <reference>', 'who they are in the record: Practitioner/…, RelatedPerson/… (a carer) or Patient/… (the person)')
      .option('--totp', 'enrol an authenticator app (prints its otpauth:// URI once)')
      .option('--oidc-issuer <url>', 'sign in through this OpenID Connect provider…')
      .option('--oidc-subject <sub>', '…as this subject (their id at the provider)')
      .option('--password-stdin', 'read the password from standard input instead of generating one')
      .option('--db <database>', DB_OPTION_HELP)
      .action(async (username: string, flags: { name: string; org: string[]; role: string[]; fhirUser?: string; totp?: boolean; oidcIssuer?: string; oidcSubject?: string; passwordStdin?: boolean; db?: string }) => {
        const memberships = membershipsFrom(flags.org, flags.role);
        if (Boolean(flags.oidcIssuer) !== Boolean(flags.oidcSubject)) throw new Error('give both --oidc-issuer and --oidc-subject, or neither.');
        const oidc = flags.oidcIssuer && flags.oidcSubject ? { issuer: flags.oidcIssuer, subject: flags.oidcSubject } : undefined;
        const generated = !flags.passwordStdin && !oidc ? generatePassword() : undefined;
        const password = flags.passwordStdin ? await readStdin() : generated;
        const { userId, totpUri } = await administer(
          flags.db,
          'users add',
          (d) => addUser(d, { username, name: flags.name, password, memberships, fhirUser: flags.fhirUser, totp: flags.totp, oidc }),
          (added) => ({ action: 'user-added', target: username, targetId: added.userId, detail: describeMemberships(memberships), ok: true }),
        );
        console.log(`user_id:   ${userId}`);
        console.log(`username:  ${username}`);
        if (generated) console.log(`password:  ${generated}\n(Give the password to the person now: only a hash of it is kept.)`);
        if (totpUri) console.log(`totp:      ${totpUri}\n(Add this to their authenticator app now: it is not shown again.)`);
      }),
  );

  plainErrors(
    users
      .command('list')
      .description('List users: status, memberships, record link and how they sign in (never secrets).')
      .option('--db <database>', DB_OPTION_HELP)
      .action(async (flags: { db?: string }) => {
        const all = await withAccessStore(flags.db, listUsers);
        if (!all.length) return console.log('No users.');
        for (const u of all) {
          const memberships = u.memberships.map((m) => (m.organisation ? `${m.role}@${m.organisation}` : m.role)).join(',');
          console.log(`${u.username}\t${status(u)}\t${memberships}\t${u.fhirUser ?? '-'}\t${signInMethods(u)}\t${u.name}`);
        }
      }),
  );

  plainErrors(
    users
      .command('disable <username>')
      .description('Stop a user signing in; their open sessions end at once.')
      .option('--db <database>', DB_OPTION_HELP)
      .action(async (username: string, flags: { db?: string }) => {
        await administer(flags.db, 'users disable', (d) => disableUser(d, username), async (_, d) => ({ action: 'user-disabled', target: username, targetId: await userIdOf(d, username), ok: true }));
        console.log(`Disabled ${username}.`);
      }),
  );

  plainErrors(
    users
      .command('sign-out <username>')
      .description('End all of a user\'s portal sessions and app sign-ins now (a lost or shared device), leaving the account enabled.')
      .option('--db <database>', DB_OPTION_HELP)
      .action(async (username: string, flags: { db?: string }) => {
        await administer(flags.db, 'users sign-out', (d) => signOutEverywhere(d, username), async (_, d) => ({ action: 'user-signed-out', target: username, targetId: await userIdOf(d, username), ok: true }));
        console.log(`Signed ${username} out everywhere.`);
      }),
  );

  plainErrors(
    users
      .command('enable <username>')
      .description('Let a disabled user sign in again; also lifts a lockout.')
      .option('--db <database>', DB_OPTION_HELP)
      .action(async (username: string, flags: { db?: string }) => {
        await administer(flags.db, 'users enable', (d) => enableUser(d, username), async (_, d) => ({ action: 'user-enabled', target: username, targetId: await userIdOf(d, username), ok: true }));
        console.log(`Enabled ${username}.`);
      }),
  );

  plainErrors(
    users
      .command('set-password <username>')
      .description('Set a new password (generated and shown once, or read with --password-stdin); also lifts a lockout.')
      .option('--password-stdin', 'read the password from standard input instead of generating one')
      .option('--db <database>', DB_OPTION_HELP)
      .action(async (username: string, flags: { passwordStdin?: boolean; db?: string }) => {
        const generated = flags.passwordStdin ? undefined : generatePassword();
        const password = generated ?? (await readStdin());
        await administer(flags.db, 'users set-password', (d) => setPassword(d, username, password), async (_, d) => ({ action: 'user-password-set', target: username, targetId: await userIdOf(d, username), ok: true }));
        console.log(generated ? `password:  ${generated}\n(Give the password to the person now: only a hash of it is kept.)` : `Set the password of ${username}.`);
      }),
  );
}

export function orgsCommand(program: Command): void {
  const orgs = program.command('orgs').description('Manage the organisations people act for (by ODS code).');
  plainErrors(orgs);

  plainErrors(
    orgs
      .command('add <ods>')
      .description('Register an organisation by its ODS code.')
      .requiredOption('--name <name>', 'its name, e.g. "Willow Court Care Home"')
      .requiredOption('--kind <kind>', ORGANISATION_KINDS.join(' | '))
      .option('--db <database>', DB_OPTION_HELP)
      .action(async (ods: string, flags: { name: string; kind: string; db?: string }) => {
        const org = await administer(flags.db, 'orgs add', (d) => addOrganisation(d, { ods, name: flags.name, kind: flags.kind }), (added) => ({ action: 'organisation-added', target: added.ods, detail: `${added.name} (${added.kind})`, ok: true }));
        console.log(`Added ${org.ods} (${org.kind}): ${org.name}.`);
      }),
  );

  plainErrors(
    orgs
      .command('list')
      .description('List organisations.')
      .option('--db <database>', DB_OPTION_HELP)
      .action(async (flags: { db?: string }) => {
        const all = await withAccessStore(flags.db, listOrganisations);
        if (!all.length) return console.log('No organisations.');
        for (const o of all) console.log(`${o.ods}\t${o.kind}\t${o.name}`);
      }),
  );
}
