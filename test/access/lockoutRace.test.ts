// Lockout holds against guesses made at once. Each guess is settled against the lock as it stands when its
// slow password check ends, so the right password, among wrong guesses that locked the account while it
// was being checked, is refused and leaves the lock in place. Both storage engines.
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { openRecordStore } from '../../src/record/index.ts';
import { addOrganisation, addUser, argon2Hasher, findUser, setUpAccess, type PasswordHasher, type SignInResult } from '../../src/access/index.ts';
import { ENGINES, testDatabase } from '../support/server.ts';
import { stopOwnPostgres } from '../support/postgres.ts';

after(stopOwnPostgres);

const PASSWORD = 'correct horse battery';
const MINUTE = 60_000;
const ADDRESS = '192.0.2.20';

/**
 * argon2, with the race made certain: the wrong guesses' checks start only once the right password's has
 * (so it read the account before any of them counted), and the right one's ends only on `release()`.
 */
function racingHasher(right: string): { hasher: PasswordHasher; release(): void } {
  let began!: () => void;
  const rightBegan = new Promise<void>((resolve) => (began = resolve));
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  const hasher: PasswordHasher = {
    hash: (password) => argon2Hasher.hash(password),
    outdated: (hash) => argon2Hasher.outdated(hash),
    async verify(hash, password) {
      if (password !== right) {
        await rightBegan;
        return argon2Hasher.verify(hash, password);
      }
      began();
      const ok = await argon2Hasher.verify(hash, password);
      await released;
      return ok;
    },
  };
  return { hasher, release };
}

const reasonOf = (result: SignInResult) => (result.ok ? 'ok' : result.reason);

for (const engine of ENGINES) {
  describe(`lockout against guesses made at once (${engine})`, () => {
    it('twelve wrong guesses and the right one, fired together, leave the account locked and the right one refused until the lock ends', async () => {
      const db = await testDatabase(engine);
      const driver = await openRecordStore(db.database);
      let clock = Date.now(); // findUser reports a lockout against the real clock
      const { hasher, release } = racingHasher(PASSWORD);
      const access = await setUpAccess(driver, { tokenRequestsPerMinute: 60, people: { now: () => clock, passwords: hasher } });
      try {
        await addOrganisation(driver, { ods: 'VM101', name: 'Willow Court Care Home', kind: 'care-home' });
        await addUser(driver, { username: 'race.me', name: 'Race Me', password: PASSWORD, memberships: [{ organisation: 'VM101', role: 'care-home-staff' }] });
        const attempt = (password: string) => access.people.signIn({ username: 'race.me', password, address: ADDRESS });

        const guesses = Array.from({ length: 12 }, (_, i) => attempt(`wrong guess ${i + 1}`));
        const right = attempt(PASSWORD);
        const wrong = await Promise.all(guesses);
        release();
        assert.equal(reasonOf(await right), 'locked', 'the right password, checked while the guesses locked the account');
        assert.deepEqual(wrong.map(reasonOf).sort(), [...Array(4).fill('invalid'), ...Array(8).fill('locked')], 'five failures lock it; later guesses are refused as locked, not counted');
        assert.ok((await findUser(driver, 'race.me'))!.lockedUntil, 'the lock was not cleared');

        clock += 14 * MINUTE;
        assert.equal(reasonOf(await attempt(PASSWORD)), 'locked');
        clock += MINUTE;
        assert.equal(reasonOf(await attempt(PASSWORD)), 'ok', 'unlocked once the 15 minutes have passed');
      } finally {
        await access.close();
        await driver.close();
        db.cleanup();
      }
    });
  });
}
