// A token's requests are one actor: the audit trail sends each distinct actor to its writer once per batch
// (and builds its agent text once), so a person whose every request made a new actor cost the writer a
// copy and a hash per request. People's actors are named after the person, not the client that asked.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { FastifyRequest } from 'fastify';
import { bearerIdentifier } from '../../src/access/authenticate.ts';
import { TokenService } from '../../src/access/tokens.ts';
import { addClient, addOrganisation, addUser, migrateAccess } from '../../src/access/index.ts';
import { openRecordStore } from '../../src/record/index.ts';
import { testDatabase } from '../support/server.ts';

const ORIGIN = 'http://127.0.0.1:8080';

describe('actors of verified tokens', () => {
  it('are one object per token, for a person as for a system client, and a person is named as themself', async () => {
    const db = await testDatabase('sqlite');
    const driver = await openRecordStore(db.database);
    try {
      await migrateAccess(driver, db.database);
      await addClient(driver, { clientId: 'ward-app', name: 'Ward app', scopes: 'user/*.rs system/*.rs' });
      await addOrganisation(driver, { ods: 'VM101', name: 'Demo care home', kind: 'care-home' });
      const { userId } = await addUser(driver, { username: 'carol.carer', name: 'Carol Carer', password: 'a long enough password 1', memberships: [{ organisation: 'VM101', role: 'care-home-staff' }] });
      const tokens = new TokenService(driver);
      const issue = async (user?: { userId: string; name: string; role: string }) =>
        (await tokens.issue({ issuer: ORIGIN, audience: `${ORIGIN}/fhir`, clientId: 'ward-app', scope: user ? 'user/*.rs' : 'system/*.rs', org: 'VM101', user })).token;
      const identify = bearerIdentifier(driver, tokens, () => ORIGIN);
      const request = (token: string) => ({ headers: { authorization: `Bearer ${token}` } }) as FastifyRequest;

      const person = await issue({ userId, name: 'Carol Carer', role: 'care-home-staff' });
      const first = await identify(request(person));
      assert.equal(first.kind, 'user');
      assert.equal(first.name, 'Carol Carer');
      assert.equal(await identify(request(person)), first, "a person's second request reuses the actor");

      const system = await issue();
      const client = await identify(request(system));
      assert.equal(client.name, 'Ward app');
      assert.equal(await identify(request(system)), client, "a client's second request reuses the actor");
      assert.notEqual(await identify(request(await issue({ userId, name: 'Carol Carer', role: 'care-home-staff' }))), first, 'another token is another actor');
    } finally {
      await driver.close();
      db.cleanup();
    }
  });
});
