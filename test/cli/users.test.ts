// `carebridge orgs` and `carebridge users`, run as real child processes on both engines: what they add can
// sign in, what they list matches, disabling stops sign-in; bad input is one plain line and exit 1.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openRecordStore } from '../../src/record/index.ts';
import { setUpAccess, totpCode } from '../../src/access/index.ts';
import { freshPostgresDatabase, stopOwnPostgres } from '../support/postgres.ts';
import { lines, runCli } from './cli.ts';

const tmp = mkdtempSync(join(tmpdir(), 'carebridge-cli-users-'));
after(async () => {
  rmSync(tmp, { recursive: true, force: true });
  await stopOwnPostgres();
});

/** Signs in through the library, as the portal will, against the database the CLI wrote. */
async function signIn(database: string, username: string, password: string, totp?: string) {
  const driver = await openRecordStore(database);
  try {
    const access = await setUpAccess(driver, { tokenRequestsPerMinute: 60, audit: false });
    return await access.people.signIn({ username, password, totp, address: '127.0.0.1' });
  } finally {
    await driver.close();
  }
}

describe('carebridge orgs and users', { concurrency: 2 }, () => {
  for (const engine of ['sqlite', 'postgres'] as const) {
    it(`adds organisations and users that can sign in, lists them, disables and enables (${engine})`, async () => {
      const database = engine === 'sqlite' ? `sqlite:${join(tmp, 'users.db')}` : await freshPostgresDatabase();
      const cli = async (args: string[], input?: string) => {
        const r = await runCli([...args, '--db', database], {}, undefined, input);
        assert.equal(r.code, 0, r.stderr);
        return r.stdout;
      };
      assert.equal(await cli(['orgs', 'list']), 'No organisations.\n');
      assert.match(await cli(['orgs', 'add', 'vm101', '--name', 'Willow Court Care Home', '--kind', 'care-home']), /^Added VM101 \(care-home\): Willow Court Care Home\.$/m);
      await cli(['orgs', 'add', 'RX9', '--name', 'Northshire Hospitals', '--kind', 'hospital']);
      assert.deepEqual(lines(await cli(['orgs', 'list'])), ['RX9\thospital\tNorthshire Hospitals', 'VM101\tcare-home\tWillow Court Care Home']);

      // A generated password, shown once, for someone with two memberships.
      const added = await cli(['users', 'add', 'sam.staff', '--name', 'Sam Staff', '--org', 'VM101', '--role', 'care-home-staff', '--org', 'RX9', '--role', 'ward-nurse']);
      const password = /^password: {2}(\S+)$/m.exec(added)![1];
      assert.ok(password.length >= 12);
      const samIn = await signIn(database, 'sam.staff', password);
      assert.ok(samIn.ok);
      assert.deepEqual(samIn.memberships.map((m) => `${m.role}@${m.organisation}`), ['ward-nurse@RX9', 'care-home-staff@VM101']);

      // A password from stdin, with TOTP.
      const withTotp = await cli(['users', 'add', 'Mo.Manager', '--name', 'Mo Manager', '--org', 'VM101', '--role', 'care-home-manager', '--password-stdin', '--totp'], 'a piped passphrase\n');
      assert.doesNotMatch(withTotp, /password:/);
      const secret = new URL(/^totp: {6}(\S+)$/m.exec(withTotp)![1]).searchParams.get('secret')!;
      assert.equal((await signIn(database, 'mo.manager', 'a piped passphrase') as { reason?: string }).reason, 'totp-required');
      assert.ok((await signIn(database, 'mo.manager', 'a piped passphrase', totpCode(secret, Date.now()))).ok);

      // An identity-provider account has no password at all.
      const oidc = await cli(['users', 'add', 'ida', '--name', 'Ida Idp', '--org', 'RX9', '--role', 'discharge-coordinator', '--oidc-issuer', 'https://login.example.nhs.uk/', '--oidc-subject', 'abc-123']);
      assert.doesNotMatch(oidc, /password:/);

      assert.deepEqual(lines(await cli(['users', 'list'])), [
        'ida\tactive\tdischarge-coordinator@RX9\t-\toidc:abc-123@https://login.example.nhs.uk\tIda Idp',
        'Mo.Manager\tactive\tcare-home-manager@VM101\t-\tpassword+totp\tMo Manager',
        'sam.staff\tactive\tward-nurse@RX9,care-home-staff@VM101\t-\tpassword\tSam Staff',
      ]);
      assert.equal(await cli(['users', 'disable', 'SAM.STAFF']), 'Disabled SAM.STAFF.\n');
      assert.match(await cli(['users', 'list']), /^sam\.staff\tDISABLED\t/m);
      assert.equal((await signIn(database, 'sam.staff', password) as { reason?: string }).reason, 'disabled');
      await cli(['users', 'enable', 'sam.staff']);
      assert.ok((await signIn(database, 'sam.staff', password)).ok);
      await cli(['users', 'set-password', 'sam.staff', '--password-stdin'], 'another long passphrase');
      assert.ok((await signIn(database, 'sam.staff', 'another long passphrase')).ok);
    });
  }

  describe('errors are one plain line on stderr and exit 1, adding nothing', () => {
    const database = `sqlite:${join(tmp, 'errors.db')}`;
    const cases: [string[], RegExp, string?][] = [
      [['orgs', 'add', 'VM1!', '--name', 'Bad', '--kind', 'care-home'], /^carebridge: 'VM1!' is not an ODS code: 3 to 10 letters and digits, e\.g\. RX9 or VM101\.$/],
      [['orgs', 'add', 'VM102', '--name', 'Odd', '--kind', 'spa'], /^carebridge: 'spa' is not a kind of organisation: use one of care-home, hospital, council, gp-practice, other\.$/],
      [['users', 'add', 'al', '--name', 'Al', '--org', 'VM101', '--role', 'surgeon'], /^carebridge: 'surgeon' is not a role: use one of care-home-staff, .*, admin\.$/],
      [['users', 'add', 'al.bad', '--name', 'Al', '--org', 'VM1@1', '--role', 'gp'], /^carebridge: 'VM1@1' is not an ODS code/],
      [['users', 'add', 'al.bad', '--name', 'Al', '--org', 'ZZ999', '--role', 'gp'], /^carebridge: No organisation ZZ999: add it first \(carebridge orgs add\)\.$/],
      [['users', 'add', 'al.bad', '--name', 'Al', '--role', 'gp'], /^carebridge: --role gp needs an --org/],
      [['users', 'add', 'al.bad', '--name', 'Al', '--org', 'VM101', '--role', 'gp', '--password-stdin'], /^carebridge: The password must be at least 12 characters long\.$/, 'too short'],
      [['users', 'add', 'DUP', '--name', 'Again', '--org', 'VM101', '--role', 'gp'], /^carebridge: A user 'DUP' already exists\.$/],
      [['users', 'add', 'al.bad', '--name', 'Al', '--role', 'person', '--fhir-user', 'Patient/nobody'], /^carebridge: Patient\/nobody is not in the record: link the user to an existing resource\.$/],
      [['users', 'add', 'al.bad', '--name', 'Al', '--org', 'VM101', '--role', 'carer'], /^carebridge: --org VM101 has no --role to go with it \(--role carer is held for no organisation\)\.$/],
      [['users', 'disable', 'nobody'], /^carebridge: No user 'nobody'\.$/],
      [['users', 'add', 'al.bad', '--org', 'VM101', '--role', 'gp'], /^carebridge: required option '--name <name>' not specified$/],
    ];
    // A hook, not a test: the suite's cases run two at a time (the concurrency is inherited), and none may
    // start before the organisation and the user exist.
    before(async () => {
      assert.equal((await runCli(['orgs', 'add', 'VM101', '--name', 'Willow', '--kind', 'care-home', '--db', database])).code, 0);
      assert.equal((await runCli(['users', 'add', 'dup', '--name', 'Dup', '--org', 'VM101', '--role', 'gp', '--db', database])).code, 0);
    });
    for (const [args, pattern, input] of cases) {
      it(args.join(' '), async () => {
        const r = await runCli([...args, '--db', database], {}, undefined, input);
        assert.equal(r.code, 1);
        assert.equal(r.stdout, '');
        const errs = lines(r.stderr);
        assert.equal(errs.length, 1, r.stderr);
        assert.match(errs[0], pattern);
      });
    }
    it('nothing was added by the refused commands', async () => {
      const r = await runCli(['users', 'list', '--db', database]);
      assert.deepEqual(lines(r.stdout).map((l) => l.split('\t')[0]), ['dup']);
    });
  });
});
