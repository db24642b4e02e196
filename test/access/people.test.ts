// People's accounts and sign-in on both storage engines: passwords with lockout, TOTP, disabled accounts,
// sessions and their expiry (on a clock the test moves), and unknown usernames costing the same hash.
import { auditEventService } from '../../src/access/audit/search.ts';
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { openRecordStore, handleFhirRequest, UNRESTRICTED, type SqlDriver } from '../../src/record/index.ts';
import {
  addOrganisation, addUser, argon2Hasher, disableUser, enableUser, findUser, listOrganisations, listUsers, setPassword, setUpAccess, totpCode,
  type Access, type PasswordHasher, type SignInResult,
} from '../../src/access/index.ts';
import { ENGINES, testDatabase } from '../support/server.ts';
import { stopOwnPostgres } from '../support/postgres.ts';

after(stopOwnPostgres);

const PASSWORD = 'correct horse battery';
const MINUTE = 60_000;
const ADDRESS = '192.0.2.10';

/** The real argon2 hasher, counting what it verifies. */
function countingHasher(): PasswordHasher & { verified: number } {
  const counting = {
    verified: 0,
    hash: (p: string) => argon2Hasher.hash(p),
    outdated: (h: string) => argon2Hasher.outdated(h),
    async verify(hash: string, password: string) {
      counting.verified += 1;
      return argon2Hasher.verify(hash, password);
    },
  };
  return counting;
}

function failure(result: SignInResult): string {
  assert.equal(result.ok, false, 'expected the sign-in to be refused');
  return (result as { reason: string }).reason;
}

async function put(driver: SqlDriver, resource: Record<string, unknown>): Promise<void> {
  await handleFhirRequest({ base: 'http://localhost/fhir', driver, access: UNRESTRICTED }, { method: 'PUT', path: `${resource.resourceType}/${resource.id}`, query: [], body: resource });
}

async function authenticationEvents(driver: SqlDriver): Promise<any[]> {
  const res = await handleFhirRequest({ base: 'http://localhost/fhir', driver, access: UNRESTRICTED, services: { AuditEvent: auditEventService(driver) } }, {
    method: 'GET', path: 'AuditEvent', query: [['type', 'http://dicom.nema.org/resources/ontology/DCM|110114'], ['_count', '100'], ['_sort', 'date']],
  });
  const body = typeof res.body === 'string' ? JSON.parse(res.body) : res.body;
  return (body.entry ?? []).map((e: any) => e.resource);
}

for (const engine of ENGINES) {
  describe(`people's accounts and sign-in (${engine})`, () => {
    let driver: SqlDriver;
    let cleanup: () => void;
    let access: Access;
    let clock = Date.now(); // listUsers reports lockouts against the real clock
    const hasher = countingHasher();

    before(async () => {
      const db = await testDatabase(engine);
      cleanup = db.cleanup;
      driver = await openRecordStore(db.database);
      access = await setUpAccess(driver, { tokenRequestsPerMinute: 60, people: { now: () => clock, passwords: hasher } });
      await addOrganisation(driver, { ods: 'vm101', name: 'Willow Court Care Home', kind: 'care-home' });
      await addOrganisation(driver, { ods: 'RX9', name: 'Northshire Hospitals NHS Foundation Trust', kind: 'hospital' });
      await put(driver, { resourceType: 'Patient', id: 'p1', name: [{ family: 'Resident' }] });
      await put(driver, { resourceType: 'RelatedPerson', id: 'rp1', patient: { reference: 'Patient/p1' } });
      await put(driver, { resourceType: 'Practitioner', id: 'nurse1', name: [{ family: 'Nurse' }] });
    });
    after(async () => {
      await access?.close();
      await driver?.close();
      cleanup?.();
    });

    it('organisations are kept by upper-case ODS code, with clear errors for bad ones', async () => {
      assert.deepEqual((await listOrganisations(driver)).map((o) => o.ods), ['RX9', 'VM101']);
      await assert.rejects(addOrganisation(driver, { ods: 'VM101', name: 'Again', kind: 'care-home' }), /already exists/);
      await assert.rejects(addOrganisation(driver, { ods: 'V!', name: 'Bad', kind: 'care-home' }), /not an ODS code/);
      await assert.rejects(addOrganisation(driver, { ods: 'ZZ1', name: 'Bad', kind: 'pharmacy' }), /not a kind of organisation.*care-home/);
    });

    it('refuses accounts that break the rules, saying which rule, and keeps nothing of them', async () => {
      const base = { username: 'rule.check', name: 'Rule Check', password: PASSWORD, memberships: [{ organisation: 'VM101', role: 'care-home-staff' as const }] };
      await assert.rejects(addUser(driver, { ...base, password: 'short-pass' }), /at least 12 characters/);
      await assert.rejects(addUser(driver, { ...base, memberships: [{ organisation: 'VM101', role: 'surgeon' as any }] }), /'surgeon' is not a role: use one of care-home-staff/);
      await assert.rejects(addUser(driver, { ...base, memberships: [{ organisation: 'XX999', role: 'gp' }] }), /No organisation XX999/);
      await assert.rejects(addUser(driver, { ...base, memberships: [{ role: 'ward-nurse' }] }), /needs the organisation/);
      await assert.rejects(addUser(driver, { ...base, memberships: [] }), /at least one membership/);
      await assert.rejects(addUser(driver, { ...base, memberships: [{ role: 'person' }] }), /linked to their Patient/);
      await assert.rejects(addUser(driver, { ...base, memberships: [{ role: 'person' }], fhirUser: 'Patient/nobody' }), /Patient\/nobody is not in the record/);
      await assert.rejects(addUser(driver, { ...base, fhirUser: 'Patient/p1' }), /cannot also hold the staff role/);
      await assert.rejects(addUser(driver, { ...base, username: 'x' }), /not a valid username/);
      assert.equal(await findUser(driver, 'rule.check'), undefined);
    });

    it('signs in by password, whatever the username\'s case, and lists the memberships to choose from', async () => {
      await addUser(driver, {
        username: 'Nina.Nurse', name: 'Nina Nurse', password: PASSWORD, fhirUser: 'Practitioner/nurse1',
        memberships: [{ organisation: 'RX9', role: 'ward-nurse' }, { organisation: 'rx9', role: 'discharge-coordinator' }],
      });
      await assert.rejects(addUser(driver, { username: 'nina.nurse', name: 'Other', password: PASSWORD, memberships: [{ organisation: 'RX9', role: 'ward-nurse' }] }), /already exists/);
      const result = await access.people.signIn({ username: 'nina.NURSE', password: PASSWORD, address: ADDRESS });
      assert.ok(result.ok);
      assert.equal(result.user.username, 'Nina.Nurse');
      assert.equal(result.user.fhirUser, 'Practitioner/nurse1');
      assert.deepEqual(result.memberships, [
        { organisation: 'RX9', organisationName: 'Northshire Hospitals NHS Foundation Trust', role: 'discharge-coordinator' },
        { organisation: 'RX9', organisationName: 'Northshire Hospitals NHS Foundation Trust', role: 'ward-nurse' },
      ]);
      assert.equal(failure(await access.people.signIn({ username: 'nina.nurse', password: 'not the password', address: ADDRESS })), 'invalid');
    });

    it('locks an account after 5 failures in a row, for 15 minutes, even against the right password', async () => {
      await addUser(driver, { username: 'lock.me', name: 'Lock Me', password: PASSWORD, memberships: [{ organisation: 'VM101', role: 'care-home-staff' }] });
      const attempt = (password: string) => access.people.signIn({ username: 'lock.me', password, address: ADDRESS });
      for (let i = 1; i <= 4; i++) assert.equal(failure(await attempt(`wrong guess ${i}`)), 'invalid');
      const fifth = await attempt('wrong guess 5');
      assert.equal(failure(fifth), 'locked');
      assert.match((fifth as { message: string }).message, /locked for 15 more minutes/);
      assert.ok((await findUser(driver, 'lock.me'))!.lockedUntil, 'the account shows as locked');
      clock += 14 * MINUTE;
      assert.equal(failure(await attempt(PASSWORD)), 'locked');
      clock += 1 * MINUTE;
      assert.ok((await attempt(PASSWORD)).ok, 'unlocked once the 15 minutes have passed');
      // A success clears the count: four more failures do not lock it.
      for (let i = 1; i <= 4; i++) assert.equal(failure(await attempt(`again ${i}`)), 'invalid');
      assert.ok((await attempt(PASSWORD)).ok);
    });

    it('a username that is no account locks as an account would, so the answers do not tell which names exist', async () => {
      await addUser(driver, { username: 'real.user', name: 'Real User', password: PASSWORD, memberships: [{ organisation: 'VM101', role: 'care-home-staff' }] });
      const answers = async (username: string) => {
        const seen: string[] = [];
        for (let i = 1; i <= 6; i++) {
          const r = await access.people.signIn({ username, password: `wrong guess ${i}`, address: ADDRESS });
          seen.push(`${failure(r)}: ${(r as { message: string }).message}`);
        }
        return seen;
      };
      const real = await answers('real.user');
      assert.deepEqual(await answers('No.Such.User'), real);
      assert.match(real[5], /^locked: .*locked for 15 more minutes/);
      clock += 15 * MINUTE;
      assert.equal(failure(await access.people.signIn({ username: 'no.such.user', password: 'x', address: ADDRESS })), 'invalid', 'the lock ends as an account\'s does');
    });

    it('an administrator can lift a lockout by enabling the account or setting a new password', async () => {
      await addUser(driver, { username: 'locked.out', name: 'Locked Out', password: PASSWORD, memberships: [{ organisation: 'VM101', role: 'care-home-staff' }] });
      for (let i = 1; i <= 5; i++) await access.people.signIn({ username: 'locked.out', password: `nope nope ${i}`, address: ADDRESS });
      assert.equal(failure(await access.people.signIn({ username: 'locked.out', password: PASSWORD, address: ADDRESS })), 'locked');
      await assert.rejects(setPassword(driver, 'locked.out', 'tiny'), /at least 12/);
      await setPassword(driver, 'locked.out', 'a brand new passphrase');
      assert.ok((await access.people.signIn({ username: 'locked.out', password: 'a brand new passphrase', address: ADDRESS })).ok);
    });

    it('an unknown username costs one password hash, like a known one, and gets the same answer', async () => {
      const before = hasher.verified;
      const unknown = await access.people.signIn({ username: 'no.such.person', password: PASSWORD, address: ADDRESS });
      assert.equal(hasher.verified - before, 1, 'a decoy hash was verified');
      const known = await access.people.signIn({ username: 'nina.nurse', password: 'wrong password!', address: ADDRESS });
      assert.equal(hasher.verified - before, 2);
      assert.deepEqual(unknown, known);
      // A locked account is checked too, so its answer takes as long as any other.
      const lockedBefore = hasher.verified;
      for (let i = 1; i <= 6; i++) await access.people.signIn({ username: 'lock.me', password: `wrong ${i} wrong`, address: ADDRESS });
      assert.equal(hasher.verified - lockedBefore, 6);
      clock += 15 * MINUTE;
    });

    it('with TOTP enrolled, asks for a code, checks it, and never accepts the same code twice', async () => {
      const { totpUri } = await addUser(driver, { username: 'totp.user', name: 'Totp User', password: PASSWORD, totp: true, memberships: [{ organisation: 'VM101', role: 'care-home-manager' }] });
      assert.match(totpUri!, /^otpauth:\/\/totp\/CareBridge:totp\.user\?/);
      const secret = new URL(totpUri!).searchParams.get('secret')!;
      const attempt = (totp?: string) => access.people.signIn({ username: 'totp.user', password: PASSWORD, totp, address: ADDRESS });
      assert.equal(failure(await attempt()), 'totp-required');
      const code = totpCode(secret, clock);
      const wrong = String((Number(code) + 1) % 1_000_000).padStart(6, '0');
      assert.equal(failure(await attempt(wrong)), 'totp-invalid');
      assert.ok((await attempt(code)).ok);
      assert.equal(failure(await attempt(code)), 'totp-invalid', 'a code is single-use');
      clock += 30_000;
      assert.ok((await attempt(totpCode(secret, clock))).ok, 'the next code works');
      // A wrong code counts towards the lockout: guessing six digits is not free.
      for (let i = 0; i < 4; i++) assert.equal(failure(await attempt('000000')), 'totp-invalid');
      assert.equal(failure(await attempt('000000')), 'locked');
      clock += 15 * MINUTE;
    });

    it('a session acts as the chosen membership, refreshes while used, and ends after 30 idle minutes', async () => {
      const signIn = await access.people.signIn({ username: 'nina.nurse', password: PASSWORD, address: ADDRESS });
      assert.ok(signIn.ok);
      await assert.rejects(access.sessions.start(signIn.user.userId, { organisation: 'VM101', role: 'care-home-manager' }, { address: ADDRESS }), /not a care-home-manager at VM101/);
      const session = await access.sessions.start(signIn.user.userId, { organisation: 'RX9', role: 'ward-nurse' }, { address: ADDRESS });
      assert.equal(session.expiresAt, clock + 30 * MINUTE);
      const actor = await access.sessions.actor(session.id);
      assert.deepEqual({ ...actor, sessionId: undefined }, {
        kind: 'user', userId: signIn.user.userId, name: 'Nina Nurse', organisation: 'RX9', role: 'ward-nurse',
        fhirUser: 'Practitioner/nurse1', purpose: 'TREAT', scope: 'user/*.cruds', sessionId: undefined,
      });
      assert.match(actor!.sessionId!, /^[0-9a-f-]{36}$/);
      assert.notEqual(actor!.sessionId, session.id, 'the audit never sees the cookie token');
      clock += 25 * MINUTE;
      assert.ok(await access.sessions.actor(session.id), 'still live after 25 minutes');
      clock += 25 * MINUTE;
      assert.ok(await access.sessions.actor(session.id), 'used 25 minutes ago: still live');
      clock += 30 * MINUTE;
      assert.equal(await access.sessions.actor(session.id), undefined, 'idle for 30 minutes: ended');
      assert.equal(await access.sessions.actor('not-a-session-token-at-all-000000'), undefined);
    });

    it('a session ends after 12 hours however busy, and at once when signed out', async () => {
      const signIn = await access.people.signIn({ username: 'nina.nurse', password: PASSWORD, address: ADDRESS });
      assert.ok(signIn.ok);
      const busy = await access.sessions.start(signIn.user.userId, { organisation: 'RX9', role: 'discharge-coordinator' }, { address: ADDRESS });
      for (let hour = 0; hour < 12; hour++) {
        assert.ok(await access.sessions.actor(busy.id), `live at hour ${hour}`);
        clock += 20 * MINUTE;
        assert.ok(await access.sessions.actor(busy.id));
        clock += 20 * MINUTE;
        assert.ok(await access.sessions.actor(busy.id));
        clock += 20 * MINUTE;
      }
      assert.equal(await access.sessions.actor(busy.id), undefined, '12 hours after it started');
      const short = await access.sessions.start(signIn.user.userId, { organisation: 'RX9', role: 'ward-nurse' }, { address: ADDRESS });
      assert.ok(await access.sessions.actor(short.id));
      await access.sessions.end(short.id);
      assert.equal(await access.sessions.actor(short.id), undefined);
    });

    it('a disabled user is refused, and their live sessions stop working even once enabled again', async () => {
      await addUser(driver, { username: 'carer.one', name: 'Carer One', password: PASSWORD, fhirUser: 'RelatedPerson/rp1', memberships: [{ role: 'carer' }] });
      const signIn = await access.people.signIn({ username: 'carer.one', password: PASSWORD, address: ADDRESS });
      assert.ok(signIn.ok);
      assert.deepEqual(signIn.memberships, [{ role: 'carer' }]);
      const session = await access.sessions.start(signIn.user.userId, { role: 'carer' }, { address: ADDRESS });
      const actor = await access.sessions.actor(session.id);
      assert.equal(actor?.purpose, 'FAMRQT');
      assert.equal(actor?.organisation, undefined);
      await disableUser(driver, 'carer.one');
      assert.equal(await access.sessions.actor(session.id), undefined);
      const refused = await access.people.signIn({ username: 'carer.one', password: PASSWORD, address: ADDRESS });
      assert.equal(failure(refused), 'disabled');
      assert.equal(failure(await access.people.signIn({ username: 'carer.one', password: 'wrong password!!', address: ADDRESS })), 'invalid', 'only the right password learns the account is disabled');
      await assert.rejects(access.sessions.start(signIn.user.userId, { role: 'carer' }, { address: ADDRESS }), /disabled/);
      await enableUser(driver, 'carer.one');
      assert.equal(await access.sessions.actor(session.id), undefined, 'the old session stays ended');
      assert.ok((await access.people.signIn({ username: 'carer.one', password: PASSWORD, address: ADDRESS })).ok);
      const listed = (await listUsers(driver)).find((u) => u.username === 'carer.one')!;
      assert.equal(listed.disabled, false);
      assert.equal(listed.fhirUser, 'RelatedPerson/rp1');
    });

    it("an administrator's password reset ends the user's live sessions, so whoever knew the old password is shut out", async () => {
      await addUser(driver, { username: 'reset.me', name: 'Reset Me', password: PASSWORD, memberships: [{ organisation: 'VM101', role: 'care-home-staff' }] });
      const signIn = await access.people.signIn({ username: 'reset.me', password: PASSWORD, address: ADDRESS });
      assert.ok(signIn.ok);
      const session = await access.sessions.start(signIn.user.userId, { organisation: 'VM101', role: 'care-home-staff' }, { address: ADDRESS });
      assert.ok(await access.sessions.actor(session.id));
      await setPassword(driver, 'reset.me', 'a brand new passphrase');
      assert.equal(await access.sessions.actor(session.id), undefined, 'the session started with the old password has ended');
      const again = await access.people.signIn({ username: 'reset.me', password: 'a brand new passphrase', address: ADDRESS });
      assert.ok(again.ok);
      const fresh = await access.sessions.start(signIn.user.userId, { organisation: 'VM101', role: 'care-home-staff' }, { address: ADDRESS });
      assert.ok(await access.sessions.actor(fresh.id), 'signing in with the new password works');
    });

    it('refusals, lockouts, sign-ins and sign-outs are in the audit trail', async () => {
      await access.close(); // writes what is buffered
      const events = await authenticationEvents(driver);
      const desc = events.map((e) => `${e.outcome} ${e.subtype[0].code} ${e.agent[0].who.display} ${e.outcomeDesc}`);
      assert.ok(desc.some((d) => /^4 110122 no\.such\.person \(no such user\) password: no such user$/.test(d)), desc.join('\n'));
      assert.ok(desc.some((d) => /^4 110122 lock\.me password: wrong password; account locked until \d{4}-/.test(d)), desc.join('\n'));
      assert.ok(desc.some((d) => /^4 110122 lock\.me password: account locked$/.test(d)));
      assert.ok(desc.some((d) => /^4 110122 carer\.one password: account disabled$/.test(d)));
      assert.ok(desc.some((d) => /^4 110122 totp\.user password: wrong or reused TOTP code$/.test(d)));
      assert.ok(desc.some((d) => /^0 110122 Nina Nurse session started as ward-nurse at RX9$/.test(d)));
      assert.ok(desc.some((d) => /^0 110123 Nina Nurse signed out$/.test(d)));
      const started = events.find((e) => e.outcomeDesc === 'session started as ward-nurse at RX9')!;
      assert.equal(started.agent[0].network.address, ADDRESS);
      assert.equal(started.agent[0].purposeOfUse[0].coding[0].code, 'TREAT');
      assert.equal(started.agent[0].who.reference, 'Practitioner/nurse1');
      access = await setUpAccess(driver, { tokenRequestsPerMinute: 60, people: { now: () => clock, passwords: hasher } });
    });
  });
}
