// Hazard H-043: a discharge notice on a referral the council has already accepted is work the council owes
// the hospital, with its own deadline. Over real HTTP, both engines, as a social worker sees it: the queue
// says "Answer discharge notice by …" (overdue when past), sorts the referral by that due time against
// untriaged referrals, counts it as waiting; the referral page, the hospital's board and the CSV say the same.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ENGINES, type TestServer } from '../support/server.ts';
import { stopOwnPostgres } from '../support/postgres.ts';
import { confirmReady, fireDueTimers, handleAdwMessage, triage, type DischargeContext } from '../../src/discharge/index.ts';
import { addOrganisation, addUser } from '../../src/access/index.ts';
import { formatDateTime } from '../../src/portal/views.ts';
import { TEST_PASSWORD, textOf } from '../portal/portalServer.ts';
import { signIn } from './pagesSeed.ts';
import { EXAMPLES, at, dischargeServer, episodeIds, inbound, renamed, searchOne, seedOrganisations, COUNCIL_ODS, HOSPITAL_ODS } from './support.ts';

after(stopOwnPostgres);

const EPISODE = '311fcae7-32a7-4a8e-a15c-eebae3a246b9';
const HOUR = 3_600_000;

/** 09:00Z on the first Monday at least two weeks from now: the deadlines it leads to are still to come. */
function comingMonday(): number {
  const d = new Date(Date.now() + 14 * 24 * HOUR);
  d.setUTCDate(d.getUTCDate() + ((8 - d.getUTCDay()) % 7));
  d.setUTCHours(9, 0, 0, 0);
  return d.getTime();
}

for (const engine of ENGINES) {
  describe(`a discharge notice on an accepted referral, in the council's queue (${engine})`, () => {
    let t: TestServer;
    let ctx: DischargeContext;
    let worker: string;
    let coordinator: string;
    before(async () => {
      t = await dischargeServer(engine);
      await seedOrganisations(t);
      // The hospital's staff use this deployment too: access to its patients follows its organisation code.
      const hospital = (await t.fhir.get('Organization/hebburn-hospital')).body;
      await t.fhir.put('Organization/hebburn-hospital', { ...hospital, identifier: [...hospital.identifier, { system: 'https://fhir.nhs.uk/Id/ods-organization-code', value: HOSPITAL_ODS }] });
      ctx = t.server.discharge.context;
      await addOrganisation(t.server.driver, { ods: COUNCIL_ODS, name: 'Hebburn Council', kind: 'council' });
      await addOrganisation(t.server.driver, { ods: HOSPITAL_ODS, name: 'Hebburn Hospital', kind: 'hospital' });
      await addUser(t.server.driver, { username: 'sandy.worker', name: 'Sandy Worker', password: TEST_PASSWORD, memberships: [{ organisation: COUNCIL_ODS, role: 'social-worker' }] });
      await addUser(t.server.driver, { username: 'dee.coord', name: 'Dee Coordinator', password: TEST_PASSWORD, memberships: [{ organisation: HOSPITAL_ODS, role: 'discharge-coordinator' }] });
      worker = await signIn(t, 'sandy.worker');
      coordinator = await signIn(t, 'dee.coord');
    });
    after(() => t?.close());

    const page = async (path: string, cookie = worker) => {
      const res = await fetch(t.url + path, { headers: { cookie } });
      assert.equal(res.status, 200, path);
      return res.text();
    };
    /** The text of the table row that links to this referral, and where it stands in the page. */
    const rowOf = (html: string, id: string) => {
      const rows = html.split('<tr role="row" class="nhsuk-table__row">').slice(1);
      const index = rows.findIndex((r) => r.includes(`/discharge/referrals/${id}"`));
      assert.ok(index >= 0, `referral ${id} is listed`);
      return { index, text: textOf(rows[index].split('</tr>')[0]) };
    };
    const csvLine = async (id: string) => {
      const lines = (await (await fetch(`${t.url}/discharge/metrics.csv`, { headers: { cookie: worker } })).text()).trim().split('\r\n');
      const header = lines[0].split(',').map((c) => JSON.parse(c));
      const line = lines.find((l) => l.startsWith(`"${id}"`));
      assert.ok(line, `referral ${id} is in the CSV`);
      const cells = line.split(',').map((c) => (c ? JSON.parse(c) : ''));
      return Object.fromEntries(header.map((h: string, i: number) => [h, cells[i]]));
    };
    const noticeDue = async (referralId: string) => {
      const row = await t.server.driver.get<{ due_ms: number | string }>("SELECT due_ms FROM discharge_timers WHERE referral_id = ? AND kind = 'discharge-notice' ORDER BY created_ms DESC", [referralId]);
      return new Date(Number(row!.due_ms)).toISOString();
    };
    /**
     * The reviewer's steps from `monday` (09:00Z): referral A's assessment notice at 09:00, accepted at 09:30,
     * its discharge notice at 10:00; referral B's assessment notice at 11:00, not yet triaged.
     */
    const acceptedThenNoticeAndNewReferral = async (monday: number) => {
      const a = episodeIds();
      const b = episodeIds();
      await handleAdwMessage({ ctx: at(ctx, new Date(monday).toISOString()) }, inbound(renamed(EXAMPLES['Assessment-Notice'], a), { receivedAt: monday }));
      const referralA = (await searchOne(t, `ServiceRequest?identifier=${a[EPISODE]}`)).id as string;
      await triage(at(ctx, new Date(monday + HOUR / 2).toISOString()), referralA, { action: 'accept' });
      await handleAdwMessage({ ctx: at(ctx, new Date(monday + HOUR).toISOString()) }, inbound(renamed(EXAMPLES['Discharge-Notice'], a), { receivedAt: monday + HOUR }));
      await handleAdwMessage({ ctx: at(ctx, new Date(monday + 2 * HOUR).toISOString()) }, inbound(renamed(EXAMPLES['Assessment-Notice'], b), { receivedAt: monday + 2 * HOUR }));
      const referralB = (await searchOne(t, `ServiceRequest?identifier=${b[EPISODE]}`)).id as string;
      const taskA = await searchOne(t, `Task?focus=ServiceRequest/${referralA}&code=triage-referral`);
      const taskB = await searchOne(t, `Task?focus=ServiceRequest/${referralB}&code=triage-referral`);
      return { referralA, referralB, oldDeadlineA: taskA.restriction.period.end as string, deadlineB: taskB.restriction.period.end as string, noticeDueA: await noticeDue(referralA) };
    };

    it('the answer owed to a discharge notice is shown, sorted by its due time before a later untriaged referral, and exported', async () => {
      const { referralA, referralB, oldDeadlineA, deadlineB, noticeDueA } = await acceptedThenNoticeAndNewReferral(comingMonday());
      assert.ok(Date.parse(noticeDueA) < Date.parse(deadlineB), 'the notice is due before B\'s response');

      const queue = await page('/discharge/referrals');
      const a = rowOf(queue, referralA);
      const b = rowOf(queue, referralB);
      assert.ok(a.index < b.index, 'A, whose discharge notice is due first, is listed before B');
      assert.match(a.text, new RegExp(`Accepted .*Answer discharge notice by ${formatDateTime(noticeDueA)}`), 'A says what it is waiting for, and by when');
      assert.ok(!a.text.includes(formatDateTime(oldDeadlineA)), 'not the response deadline the council met when it accepted');
      assert.doesNotMatch(a.text, /Overdue/);
      assert.match(b.text, new RegExp(`Received .*Respond to referral by ${formatDateTime(deadlineB)}`));

      const referralPage = textOf(await page(`/discharge/referrals/${referralA}`));
      assert.match(referralPage, new RegExp(`Answer discharge notice by ${formatDateTime(noticeDueA)}`));

      const lineA = await csvLine(referralA);
      assert.equal(lineA.Awaiting, 'Answer to discharge notice');
      assert.equal(lineA['Next due'], noticeDueA);
      assert.equal(lineA.Overdue, 'no');
      assert.equal(lineA['Response due'], oldDeadlineA, 'the referral\'s own deadline is still there, named as such');
      const lineB = await csvLine(referralB);
      assert.equal(lineB.Awaiting, 'Response to referral');
      assert.equal(lineB['Next due'], deadlineB);

      // Answered (the council confirms the person ready): nothing is owed on A any more.
      await confirmReady(ctx, referralA);
      assert.match(rowOf(await page('/discharge/referrals'), referralA).text, /Nothing due/);
      assert.equal((await csvLine(referralA)).Awaiting, '');
    });

    it('once the answer is past due the referral is overdue on the queue, the board and in the CSV, before and after its deadline fires', async () => {
      // Monday 1 June 2026, long past: the notice was due by Tuesday, and B's response by Wednesday.
      const monday = Date.parse('2026-06-01T09:00:00Z');
      const { referralA, referralB, deadlineB, noticeDueA } = await acceptedThenNoticeAndNewReferral(monday);
      const check = async () => {
        const queue = await page('/discharge/referrals');
        const a = rowOf(queue, referralA);
        assert.ok(a.index < rowOf(queue, referralB).index, 'the most overdue first');
        assert.match(a.text, new RegExp(`Overdue Answer discharge notice by ${formatDateTime(noticeDueA)}`));
        assert.match(textOf(queue), /2 referrals are past the response deadline/, 'A counts as waiting, overdue, as B does');
        const lineA = await csvLine(referralA);
        assert.deepEqual([lineA.Awaiting, lineA['Next due'], lineA.Overdue], ['Answer to discharge notice', noticeDueA, 'yes']);
        assert.deepEqual(Object.values(await csvLine(referralB)).slice(8, 11), ['Response to referral', deadlineB, 'yes']);
        const board = rowOf(await page('/discharge/board', coordinator), referralA).text;
        assert.match(board, new RegExp(`Council response overdue Discharge notice: the council's answer is overdue, due by ${formatDateTime(noticeDueA)}`));
      };
      await check(); // the deadline worker has not run yet
      await fireDueTimers(at(ctx, '2026-06-10T09:00:00Z'));
      await check(); // fired and escalated: still owed, still shown
    });
  });
}
