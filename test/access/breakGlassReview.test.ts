// A privacy officer's review of a break-glass alert is an administrative decision about someone's record:
// it is in the audit trail (who reviewed, when, which alert and person, the verdict and note), found by the
// person's id like every other entry about them, and the person sees it in their own "who has looked" list.
// A refused review is audited too. Both storage engines.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ENGINES, fhirClient, startTestServer, type TestServer } from '../support/server.ts';
import { addPerson, personToken } from '../support/people.ts';
import { waitForAudit } from '../support/audit.ts';
import { stopOwnPostgres } from '../support/postgres.ts';

after(stopOwnPostgres);

for (const engine of ENGINES) {
  describe(`break-glass review in the audit trail (${engine})`, () => {
    let t: TestServer;
    let patientId: string;
    let nurse: Record<string, string>;
    let officer: Record<string, string>;
    let officerId: string;

    before(async () => {
      t = await startTestServer(engine);
      const created = await t.fhir.post('Patient', { resourceType: 'Patient', name: [{ family: 'Reviewed', given: ['Rita'] }] });
      assert.equal(created.status, 201);
      patientId = created.body.id;
      await addPerson(t, { username: 'nurse', role: 'ward-nurse', org: 'RX9', name: 'Nora Nurse' });
      officerId = await addPerson(t, { username: 'officer', role: 'privacy-officer', org: 'RX9', name: 'Pat Privacy' });
      await addPerson(t, { username: 'rita', role: 'person', fhirUser: `Patient/${patientId}`, name: 'Rita Reviewed' });
      nurse = { authorization: `Bearer ${await personToken(t, 'nurse')}` };
      officer = { authorization: `Bearer ${await personToken(t, 'officer')}` };
    });
    after(() => t.close());

    const post = (path: string, auth: Record<string, string>, body: unknown) =>
      fetch(`${t.url}${path}`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify(body) });

    it('the review is audited: who, which alert and person, the outcome and note; the person sees it too', async () => {
      const declared = await post('/access/break-glass', nurse, { patient: `Patient/${patientId}`, reasonCode: 'emergency', reason: 'Brought in unconscious, no records here' });
      assert.equal(declared.status, 201);
      const grant = await declared.json();

      const refused = await post(`/access/break-glass/${grant.id}/review`, nurse, { outcome: 'appropriate' });
      assert.equal(refused.status, 403, 'only a privacy officer reviews');
      const long = await post(`/access/break-glass/${grant.id}/review`, officer, { outcome: 'inappropriate', note: 'x'.repeat(1001) });
      assert.equal(long.status, 400, 'a note is bounded as a declaration\'s reason is');
      assert.match((await long.json()).issue[0].diagnostics, /at most 1000 characters/);
      const review = await post(`/access/break-glass/${grant.id}/review`, officer, { outcome: 'inappropriate', note: 'No ED attendance on record' });
      assert.equal(review.status, 200);

      const admin = fhirClient(t.base, t.auth);
      const events = await waitForAudit(admin, `patient=Patient/${patientId}&type=110113`, (e) => e.some((x) => x.outcome === '0'));
      const reviewed = events.find((x) => x.outcome === '0')!;
      assert.match(reviewed.outcomeDesc, new RegExp(`^break-glass alert reviewed: ${grant.id} \\(inappropriate: No ED attendance on record; Patient/${patientId}; declared by Nora Nurse`));
      assert.equal(reviewed.agent[0].altId, officerId, 'the privacy officer is the agent');
      assert.equal(reviewed.agent[0].who.display, 'Pat Privacy');
      assert.equal(reviewed.agent[0].purposeOfUse[0].coding[0].code, 'HOPERAT');
      assert.ok(reviewed.entity.some((e: any) => e.what?.reference === `Patient/${patientId}`), 'filed under the person');
      assert.ok(reviewed.entity.some((e: any) => e.what?.identifier?.value === grant.id), 'names the alert');

      const attempts = await waitForAudit(admin, `type=110113&outcome=8`, (e) => e.some((x) => x.outcomeDesc.includes(grant.id)));
      assert.match(attempts.find((x) => x.outcomeDesc.includes(grant.id))!.outcomeDesc, /^break-glass alert reviewed, refused: .*Only a privacy officer/);

      const own = fhirClient(t.base, { authorization: `Bearer ${await personToken(t, 'rita')}` });
      const theirs = await waitForAudit(own, `patient=Patient/${patientId}`, (e) => e.some((x) => x.type?.code === '110113'));
      assert.match(theirs.find((x) => x.type?.code === '110113')!.outcomeDesc, /break-glass alert reviewed/);
    });
  });
}
