// The administrator's dead-letter page over real HTTP, on a real server with its inbound worker running:
// messages that could not be processed are listed newest first with their reason (never their body), a
// page at a time; only administrators see them or replay them, and only with the form's CSRF token; a
// replay after the cause is put right is processed and leaves the list, one that fails again says why,
// and each replay is in the audit trail as the administrator's, naming the message id. Each view of the
// queue is in the audit trail too (a dead letter's reason can name a person): one AuditEvent per page
// viewed, as the viewer's, naming the page and every dead letter shown, found by agent=, altid= and
// entity-name=; a refused view is there as refused. A page that shows a reason naming an NHS number names
// the person the record holds with it as a patient, so they find the view on their own "who has looked at
// your record" page; a refused view names nobody.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { addMailbox, inboxState, PermanentFailure } from '../../src/messaging/index.ts';
import { addOrganisation, addUser, listOrganisations, verifyAuditChain, type Role } from '../../src/access/index.ts';
import { generateSyntheticNhsNumber, NHS_NUMBER_SYSTEM, SYNTHETIC_TAG } from '../../src/record/index.ts';
import { ENGINES, testDatabase } from '../support/server.ts';
import { stopOwnPostgres } from '../support/postgres.ts';
import { MESH_KEY, startServerOn, waitFor, type RunningServer } from '../support/mesh.ts';
import { csrfTokenIn, textOf, TEST_PASSWORD } from './portalServer.ts';
import { storedJournalTexts } from '../support/auditJournal.ts';

after(stopOwnPostgres);

const COUNCIL_MAILBOX = 'LA918MESH';
const SECRET_BODY = 'Patient Jane Secretname NHS 9434765919';

for (const engine of ENGINES) {
  describe(`the dead-letter page (${engine})`, () => {
    let s: RunningServer;
    let cleanup: () => void;
    const userIds = new Map<string, string>();
    const signIn = async (username: string, role: Role, organisation?: string, fhirUser?: string) => {
      const { userId } = await addUser(s.server.driver, { username, name: `Test ${role}`, password: TEST_PASSWORD, memberships: [{ role, organisation }], fhirUser });
      userIds.set(username, userId);
      const form = await fetch(`${s.url}/sign-in`);
      const cookie = form.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ');
      const res = await fetch(`${s.url}/sign-in`, {
        method: 'POST', redirect: 'manual', headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ _csrf: csrfTokenIn(await form.text()), username, password: TEST_PASSWORD }).toString(),
      });
      const id = /carebridge_session=([^;]+)/.exec(res.headers.getSetCookie().join('\n'))?.[1];
      assert.ok(id, `${username} signed in`);
      return `carebridge_session=${id}`;
    };
    /** AuditEvents as the administrative client finds them, oldest first. */
    const search = async (query: string) => {
      const res = await fetch(`${s.url}/fhir/AuditEvent?${query}&_sort=date&_count=100`, { headers: { ...s.auth, accept: 'application/fhir+json' } });
      const body = await res.json();
      assert.equal(res.status, 200, JSON.stringify(body));
      return (body.entry ?? []).map((e: any) => e.resource) as any[];
    };
    const get = async (path: string, cookie: string) => {
      const res = await fetch(s.url + path, { headers: { cookie }, redirect: 'manual' });
      return { status: res.status, html: await res.text(), location: res.headers.get('location') ?? undefined };
    };
    const post = async (path: string, cookie: string, form: Record<string, string>) => {
      const res = await fetch(s.url + path, { method: 'POST', headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(form).toString(), redirect: 'manual' });
      return { status: res.status, html: await res.text(), location: res.headers.get('location') ?? undefined };
    };
    /** Sends `body` to the council's mailbox (hosted here) from `from`, and waits for it to become a dead letter. */
    const deadLetter = async (from: string, workflowId: string, body: string, localId?: string) => {
      const { messageId } = await s.server.messaging.send({ from, to: COUNCIL_MAILBOX, workflowId, body: Buffer.from(body), localId });
      await waitFor(`${messageId} dead-lettered`, async () => (await inboxState(s.server.driver, messageId))?.status === 'dead');
      return messageId;
    };

    before(async () => {
      const db = await testDatabase(engine);
      cleanup = db.cleanup;
      s = await startServerOn(db.database);
      const driver = s.server.driver;
      await addOrganisation(driver, { ods: 'LA918', name: 'Northshire Council', kind: 'council' });
      await addOrganisation(driver, { ods: 'RX9', name: 'Northshire Hospital', kind: 'hospital' });
      await addMailbox(driver, { mailboxId: COUNCIL_MAILBOX, ods: 'LA918', password: 'council-password' }, MESH_KEY);
      // A workflow that, like the real ones, will not act on a message unless it knows who sent it.
      s.server.messaging.onInbound(['CB_TEST_NOTICE'], async (msg) => {
        const linked = await s.server.messaging.organisationForMailbox(msg.from);
        if (!linked) throw new PermanentFailure(`The sender's mailbox ${msg.from} is not linked to an organisation: add it with carebridge mesh mailbox add ${msg.from} --ods <ODS code>.`);
        const organisation = (await listOrganisations(driver)).find((o) => o.ods === linked);
        if (!organisation) throw new PermanentFailure(`Mailbox ${msg.from} belongs to ${linked}, which is not an organisation this service knows.`);
      });
    });
    after(async () => {
      await s?.close();
      cleanup?.();
    });

    it('shows administrators each dead letter with its reason, never its body; others are refused', async () => {
      const unreadable = await deadLetter('RX9MESH', 'ADW_NOTICE', `<Bundle xmlns="http://hl7.org/fhir"><oops>${SECRET_BODY}`, 'ward-7-0001');
      const unknownSender = await deadLetter('RX9MESH', 'CB_TEST_NOTICE', SECRET_BODY, 'ward-7-0002');
      const admin = await signIn('dl.admin', 'admin');
      const page = await get('/admin/dead-letters', admin);
      assert.equal(page.status, 200);
      const text = textOf(page.html);
      assert.ok(!page.html.includes('Secretname'), 'no message body on the page');
      assert.match(text, /2 dead letters, newest first/);
      assert.ok(text.indexOf(unknownSender) < text.indexOf(unreadable), 'newest first');
      assert.match(text, new RegExp(`Message id ${unknownSender} Local id ward-7-0002 \\d+ bytes, 1 attempt`));
      assert.match(text, /From Mailbox RX9MESH \(a mailbox this service does not know\) To Mailbox LA918MESH Northshire Council \(LA918\) Workflow CB_TEST_NOTICE/);
      assert.match(text, /Reason The sender's mailbox RX9MESH is not linked to an organisation/);
      assert.match(text, /Workflow ADW_NOTICE .*Reason ADW message .* not well-formed XML/);
      assert.equal((page.html.match(/>Replay</g) ?? []).length, 2, 'a Replay button for each');
      assert.match(textOf((await get('/admin', admin)).html), /Dead letters ?: MESH messages that could not be processed, to put right and replay 2 waiting/, 'the count on the administration page');
      const nav = /<nav class="nhsuk-header__navigation"[^>]*aria-label="Your pages"[\s\S]*?<\/nav>/.exec((await get('/admin/users', admin)).html)?.[0] ?? '';
      assert.match(nav, /href="\/admin\/dead-letters"[\s\S]*?Dead letters/, 'in the administrators\' navigation');

      const nurse = await signIn('dl.nurse', 'ward-nurse', 'RX9');
      const council = await signIn('dl.social', 'social-worker', 'LA918');
      for (const cookie of [nurse, council]) {
        const refused = await get('/admin/dead-letters', cookie);
        assert.equal(refused.status, 403);
        assert.ok(!refused.html.includes(unknownSender));
      }
      const nurseReplay = await post(`/admin/dead-letters/${unknownSender}/replay`, nurse, { _csrf: /sign-out\?_csrf=([^"&]+)/.exec((await get('/home', nurse)).html)![1] });
      assert.equal(nurseReplay.status, 403, 'a non-administrator cannot replay, even with a good form');
      assert.equal((await get('/admin/dead-letters', '')).status, 303, 'someone not signed in is sent to sign in');
      assert.equal((await inboxState(s.server.driver, unknownSender))?.status, 'dead');
    });

    it('replays only with the form\'s CSRF token; a replay after the cause is put right is processed and leaves the list', async () => {
      const admin = await signIn('dl.admin2', 'admin');
      const [messageId] = (await s.server.driver.all<{ message_id: string }>("SELECT message_id FROM messaging_inbox WHERE status = 'dead' AND workflow_id = 'CB_TEST_NOTICE'")).map((r) => r.message_id);
      assert.ok(messageId);
      const noToken = await post(`/admin/dead-letters/${messageId}/replay`, admin, {});
      assert.equal(noToken.status, 403);
      assert.match(textOf(noToken.html), /This form was not accepted/);
      assert.equal((await inboxState(s.server.driver, messageId))?.status, 'dead', 'nothing replayed');

      // Put the cause right: link the hospital's mailbox to its organisation.
      await addMailbox(s.server.driver, { mailboxId: 'RX9MESH', ods: 'RX9' }, undefined);
      const csrf = csrfTokenIn((await get('/admin/dead-letters', admin)).html);
      const replay = await post(`/admin/dead-letters/${messageId}/replay`, admin, { _csrf: csrf });
      assert.equal(replay.status, 303);
      assert.equal(replay.location, `/admin/dead-letters?replayed=${messageId}`);
      const after = await get(replay.location!, admin);
      const text = textOf(after.html);
      assert.match(text, new RegExp(`Replayed Message ${messageId} was processed It has left the dead-letter queue\\.`));
      assert.ok(!after.html.includes(`id="message-${messageId}"`), 'no longer listed');
      assert.match(text, /1 dead letter, newest first/);
      assert.equal((await inboxState(s.server.driver, messageId))?.status, 'done');

      const again = await post(`/admin/dead-letters/${messageId}/replay`, admin, { _csrf: csrf });
      assert.equal(again.status, 404, 'a message no longer dead cannot be replayed');
    });

    it('says why a replay failed again, with the new reason, and keeps it listed', async () => {
      const admin = await signIn('dl.admin3', 'admin');
      const messageId = await deadLetter('Y01MESH', 'CB_TEST_NOTICE', SECRET_BODY);
      assert.match((await inboxState(s.server.driver, messageId))?.lastError ?? '', /Y01MESH is not linked to an organisation/);
      // Half put right: the mailbox is linked, but to an organisation this service does not know.
      await addMailbox(s.server.driver, { mailboxId: 'Y01MESH', ods: 'Y01234' }, undefined);
      const csrf = csrfTokenIn((await get('/admin/dead-letters', admin)).html);
      const replay = await post(`/admin/dead-letters/${messageId}/replay`, admin, { _csrf: csrf });
      assert.equal(replay.status, 303);
      const page = await get(replay.location!, admin);
      const text = textOf(page.html);
      assert.match(text, new RegExp(`Failed again Message ${messageId} failed again It is back in the dead-letter queue\\. Reason: Mailbox Y01MESH belongs to Y01234, which is not an organisation this service knows\\.`));
      assert.ok(page.html.includes(`id="message-${messageId}"`), 'still listed');
      assert.ok(text.indexOf(messageId) < text.indexOf('ADW_NOTICE'), 'at the top: newest dead letter first');

      // The unreadable ADW message fails again the same way, however often it is replayed.
      const [unreadable] = (await s.server.driver.all<{ message_id: string }>("SELECT message_id FROM messaging_inbox WHERE status = 'dead' AND workflow_id = 'ADW_NOTICE'")).map((r) => r.message_id);
      const adw = await post(`/admin/dead-letters/${unreadable}/replay`, admin, { _csrf: csrf });
      assert.match(textOf((await get(adw.location!, admin)).html), new RegExp(`Message ${unreadable} failed again .* Reason: ADW message ${unreadable} .*not well-formed XML`));
    });

    it('pages a long queue, newest first', async () => {
      const admin = await signIn('dl.admin4', 'admin');
      const before = Number((await s.server.driver.get<{ n: number }>("SELECT COUNT(*) AS n FROM messaging_inbox WHERE status = 'dead'"))!.n);
      const ids: string[] = [];
      for (let i = 0; i < 30 - before; i++) ids.push(await deadLetter('RX9MESH', 'NOBODY', `message ${i}`));
      const first = await get('/admin/dead-letters', admin);
      assert.match(textOf(first.html), /1 to 25 of 30 dead letters, newest first/);
      assert.equal((first.html.match(/>Replay</g) ?? []).length, 25);
      assert.ok(first.html.includes(`id="message-${ids.at(-1)}"`), 'the newest on the first page');
      assert.match(first.html, /href="\/admin\/dead-letters\?page=2"/);
      const second = await get('/admin/dead-letters?page=2', admin);
      assert.match(textOf(second.html), /26 to 30 of 30 dead letters/);
      assert.equal((second.html.match(/>Replay</g) ?? []).length, 5);
      assert.match(second.html, /href="\/admin\/dead-letters\?page=1"/);
      assert.equal((await get('/admin/dead-letters?page=99', admin)).status, 200, 'a page past the end shows the last');
      assert.equal((await get('/admin/dead-letters?page=nonsense', admin)).status, 200);
    });

    it('audits each replay as the administrator\'s, naming the message id, and a refused one too', async () => {
      let events: any[] = [];
      await waitFor('the replays audited', async () => {
        const res = await fetch(`${s.url}/fhir/AuditEvent?type=110113&subtype=110132&_sort=date&_count=100`, { headers: { ...s.auth, accept: 'application/fhir+json' } });
        const body = await res.json();
        assert.equal(res.status, 200, JSON.stringify(body));
        events = (body.entry ?? []).map((e: any) => e.resource);
        return events.length >= 5 && events;
      });
      const replayed = events.filter((e) => e.outcome === '0');
      assert.equal(replayed.length, 3, 'processed, failed again and the ADW one: each replay made is audited');
      for (const e of replayed) {
        assert.equal(e.subtype[0].display, 'Use of Restricted Function');
        assert.match(e.outcomeDesc, /^dead letter replayed: \S+$/);
        assert.equal(e.entity[0].what.identifier.system, 'https://carebridge.example/mesh-message-id');
        assert.equal(e.entity[0].what.identifier.value, e.entity[0].name);
        assert.equal(e.agent[0].who.display, 'Test admin');
      }
      const refused = events.filter((e) => e.outcome === '8');
      assert.equal(refused.length, 1, 'the ward nurse\'s attempt, refused for their role');
      assert.match(refused[0].outcomeDesc, /^dead letter replayed, refused: \S+ \(These pages are for administrators\.\)$/);
      const notFound = events.filter((e) => e.outcome === '4');
      assert.equal(notFound.length, 1, 'the second replay of a message already processed');
      const journal = (await storedJournalTexts(s.server.driver)).join('\n');
      assert.ok(journal.includes('dead letter replayed') || journal.includes('dead-letter-replayed'), 'the stored trail was read');
      assert.ok(!journal.includes('Secretname'), 'no message body in the audit');
    });

    it('audits each view of the queue as the viewer\'s, naming the page and the dead letters shown; a refused view too', async () => {
      const practitioner = await fetch(`${s.url}/fhir/Practitioner`, {
        method: 'POST', headers: { ...s.auth, 'content-type': 'application/fhir+json', accept: 'application/fhir+json' },
        body: JSON.stringify({ resourceType: 'Practitioner', name: [{ family: 'Viewer', given: ['Dee'] }] }),
      });
      assert.equal(practitioner.status, 201);
      const practitionerId = (await practitioner.json()).id as string;
      const viewer = await signIn('dl.viewer', 'admin', undefined, `Practitioner/${practitionerId}`);
      const viewerId = userIds.get('dl.viewer')!;
      const shown = (html: string) => [...html.matchAll(/id="message-([^"]+)"/g)].map((m) => m[1]);
      const first = await get('/admin/dead-letters', viewer);
      const second = await get('/admin/dead-letters?page=2', viewer);
      const onFirst = shown(first.html);
      const onSecond = shown(second.html);
      assert.equal(onFirst.length, 25);
      assert.equal(onSecond.length, 5);
      // The outcome of one dead letter (with its reason) shown above the second page.
      const withOutcome = await get(`/admin/dead-letters?page=2&replayed=${onFirst[0]}`, viewer);
      assert.equal(withOutcome.status, 200);
      assert.match(textOf(withOutcome.html), new RegExp(`Message ${onFirst[0]} failed again`));
      const nurse = await signIn('dl.nurse.viewing', 'ward-nurse', 'RX9');
      assert.equal((await get('/admin/dead-letters?page=2', nurse)).status, 403);

      const views = await waitFor('the views audited', async () => {
        const found = await search(`altid=${viewerId}&type=http://dicom.nema.org/resources/ontology/DCM|110112`);
        return found.length >= 3 && found;
      });
      assert.equal(views.length, 3, 'one AuditEvent per page viewed, not one per dead letter shown');
      const messagesOf = (e: any) => e.entity.filter((x: any) => x.what?.identifier?.system === 'https://carebridge.example/mesh-message-id').map((x: any) => x.what.identifier.value);
      const queueOf = (e: any) => e.entity.find((x: any) => x.role?.code === '24');
      for (const e of views) {
        assert.equal(e.type.display, 'Query');
        assert.equal(e.action, 'E', 'a search of the queue');
        assert.equal(e.outcome, '0');
        assert.equal(e.agent[0].altId, viewerId, 'as the viewer\'s');
        assert.equal(e.agent[0].who.reference, `Practitioner/${practitionerId}`);
        assert.equal(e.agent[0].network.address, '127.0.0.1', 'from their address');
        assert.equal(queueOf(e).name, 'MESH dead-letter queue');
        for (const x of e.entity.filter((y: any) => y.what)) assert.equal(x.name, x.what.identifier.value, 'each dead letter named, for entity-name=');
      }
      assert.deepEqual(messagesOf(views[0]), onFirst, 'every dead letter on the first page');
      assert.equal(Buffer.from(queueOf(views[0]).query, 'base64').toString(), 'page=1');
      assert.match(views[0].outcomeDesc, /^dead-letter queue viewed: page 1 of 2, dead letters 1 to 25 of 30$/);
      assert.deepEqual(messagesOf(views[1]), onSecond);
      assert.equal(Buffer.from(queueOf(views[1]).query, 'base64').toString(), 'page=2');
      assert.deepEqual(messagesOf(views[2]), [...onSecond, onFirst[0]], 'and the one whose outcome was shown');
      assert.match(views[2].entity.find((x: any) => x.name === onFirst[0]).description, /outcome/);

      assert.deepEqual((await search(`agent=Practitioner/${practitionerId}&type=110112`)).map((e) => e.id), views.map((e) => e.id), 'found by agent=');
      const aboutOne = await search(`entity-name=${onSecond[0]}&type=110112`);
      assert.deepEqual(aboutOne.filter((e) => e.agent[0].altId === viewerId).map((e) => e.id), [views[1].id, views[2].id], 'found by the dead letter\'s message id (entity-name=)');
      assert.ok((await search('entity-name=MESH dead-letter queue')).length >= 4, 'and every view of the queue by its name');

      const refused = await waitFor('the refused view audited', async () => {
        const found = await search(`altid=${userIds.get('dl.nurse.viewing')}&type=110112`);
        return found.length >= 1 && found;
      });
      assert.equal(refused.length, 1);
      assert.equal(refused[0].outcome, '8', 'refused for the viewer\'s role');
      assert.match(refused[0].outcomeDesc, /^dead-letter queue viewed, refused \(These pages are for administrators\.\)$/);
      assert.deepEqual(messagesOf(refused[0]), [], 'nothing shown, nothing named');

      // The privacy officer's audit page, asked what the administrator did, says it in words.
      const officer = await signIn('dl.officer', 'privacy-officer', 'LA918');
      assert.match(textOf((await get(`/privacy-officer/audit?user=${viewerId}`, officer)).html), /Dead-letter queue viewed: page 2 of 2, dead letters 26 to 30 of 30/);

      const journal = (await storedJournalTexts(s.server.driver)).join('\n');
      assert.ok(journal.includes('/admin/dead-letters'), 'the stored trail was read');
      assert.ok(!journal.includes('Secretname') && !journal.includes('not linked to an organisation'), 'neither a body nor a reason in the audit');
      const chain = await verifyAuditChain(s.server.driver);
      assert.equal(chain.intact, true, JSON.stringify(chain));
    });

    it('names the person whose NHS number a reason on the page showed, who finds the view on their own page; a refused view names nobody', async () => {
      const nhs = generateSyntheticNhsNumber();
      const created = await fetch(`${s.url}/fhir/Patient`, {
        method: 'POST', headers: { ...s.auth, 'content-type': 'application/fhir+json', accept: 'application/fhir+json' },
        body: JSON.stringify({ resourceType: 'Patient', meta: { tag: [SYNTHETIC_TAG] }, identifier: [{ system: NHS_NUMBER_SYSTEM, value: nhs }], name: [{ family: 'Shownby', given: ['Nell'] }] }),
      });
      assert.equal(created.status, 201);
      const patientId = (await created.json()).id as string;
      s.server.messaging.onInbound(['CB_TEST_NHS'], async (msg) => {
        throw new PermanentFailure(msg.body.toString('utf8'));
      });
      const spaced = `${nhs.slice(0, 3)} ${nhs.slice(3, 6)} ${nhs.slice(6)}`;
      const messageId = await deadLetter('RX9MESH', 'CB_TEST_NHS', `The Patient's NHS number ${spaced} is not the one the referral names.`);

      const viewer = await signIn('dl.viewer.nhs', 'admin');
      const page = await get('/admin/dead-letters', viewer);
      assert.equal(page.status, 200);
      assert.ok(page.html.includes(`id="message-${messageId}"`) && textOf(page.html).includes(spaced), 'the reason, with the NHS number, is on the page');
      const nurse = await signIn('dl.nurse.nhs', 'ward-nurse', 'RX9');
      assert.equal((await get('/admin/dead-letters', nurse)).status, 403);

      const patientsOf = (e: any) => e.entity.filter((x: any) => x.what?.reference?.startsWith('Patient/')).map((x: any) => x.what.reference);
      const views = await waitFor('the view filed under the person', async () => {
        const found = await search(`patient=Patient/${patientId}&type=110112`);
        return found.length >= 1 && found;
      });
      assert.equal(views.length, 1);
      assert.equal(views[0].agent[0].altId, userIds.get('dl.viewer.nhs'));
      assert.deepEqual(patientsOf(views[0]), [`Patient/${patientId}`]);
      const refused = await waitFor('the refused view audited', async () => {
        const found = await search(`altid=${userIds.get('dl.nurse.nhs')}&type=110112`);
        return found.length >= 1 && found;
      });
      assert.deepEqual(refused.map((e) => [e.outcome, patientsOf(e)]), [['8', []]], 'refused, naming nobody');

      // The person's own page: who has looked at my record.
      const self = await signIn('dl.self.nhs', 'person', undefined, `Patient/${patientId}`);
      const own = textOf((await get('/me', self)).html);
      assert.match(own, /Dead-letter queue viewed: page 1 of \d+/, 'the view is on their own page');

      const journal = (await storedJournalTexts(s.server.driver)).join('\n');
      assert.ok(!journal.includes(nhs) && !journal.includes(spaced) && !journal.includes('the referral names'), 'neither the NHS number nor the reason in the audit');
    });
  });
}
