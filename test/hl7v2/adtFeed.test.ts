// The HL7 v2 ADT feed end to end, on both engines: a real CareBridge server with its MLLP listener, a real
// TCP client sending the synthetic PAS feed in test/fixtures/hl7v2, the Encounter read back through the
// FHIR API, and the queue resolved with the real `carebridge hl7 queue` command.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ENGINES, startTestServer, type TestServer } from '../support/server.ts';
import { stopOwnPostgres } from '../support/postgres.ts';
import { MllpTestClient, segmentOf, VT, END } from '../support/mllp.ts';
import { waitForAudit } from '../support/audit.ts';
import { ROOT, runCli } from '../cli/cli.ts';
import { hl7Intake, listMessages, resolveQueued, startHl7v2 } from '../../src/hl7v2/index.ts';
import { openRecordStore } from '../../src/record/index.ts';
import { createReferral } from '../../src/discharge/index.ts';

after(() => stopOwnPostgres());

const ODS = 'https://fhir.nhs.uk/Id/ods-organization-code';
const NHS = 'https://fhir.nhs.uk/Id/nhs-number';
const VISITS = 'https://carebridge.example/fhir/Id/hl7v2-visit-number/RX9';
const EXPECTED = 'https://carebridge.example/fhir/StructureDefinition/expected-discharge-date';
const HTEST = [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActReason', code: 'HTEST' }];

const fixture = (name: string) => readFileSync(join(ROOT, 'test/fixtures/hl7v2', `${name}.hl7`), 'utf8').trim().replace(/\n/g, '\r');
/** A fixture with some of its text replaced (a new control id, another visit…). */
const variant = (name: string, ...edits: [string | RegExp, string][]) => edits.reduce((text, [from, to]) => text.replace(from, to), fixture(name));
const ackCode = (reply: string) => segmentOf(reply, 'MSA')?.[1];
const ackControlId = (reply: string) => segmentOf(reply, 'MSA')?.[2];
const errCode = (reply: string) => segmentOf(reply, 'ERR')?.[3]?.split('^')[0];
const errText = (reply: string) => segmentOf(reply, 'ERR')?.[8] ?? '';

for (const engine of ENGINES) {
  describe(`HL7 v2 ADT feed over MLLP (${engine})`, () => {
    let t: TestServer;
    let pas: MllpTestClient;
    let port: number;
    const patients: Record<string, string> = {};

    const encounterFor = async (visit: string) => {
      const found = await t.fhir.get(`Encounter?identifier=${encodeURIComponent(`${VISITS}|${visit}`)}`);
      assert.equal(found.status, 200);
      assert.ok((found.body.entry ?? []).length <= 1, `one Encounter per visit ${visit}`);
      return found.body.entry?.[0]?.resource;
    };
    const send = async (message: string, expected: string) => {
      const reply = await pas.send(message);
      assert.equal(ackCode(reply), expected, `${expected} expected; got ${reply.replace(/\r/g, ' / ')}`);
      return reply;
    };

    before(async () => {
      t = await startTestServer(engine, { CAREBRIDGE_HL7_PORT: '0', CAREBRIDGE_HL7_MAX_MESSAGE_KB: '64', CAREBRIDGE_HL7_FACILITIES: 'Northshire General=RX9' });
      port = t.server.hl7!.port;
      const create = async (resource: Record<string, unknown>) => {
        const res = await t.fhir.post(String(resource.resourceType), { ...resource, meta: { security: HTEST } });
        assert.equal(res.status, 201, JSON.stringify(res.body));
        return res.body.id as string;
      };
      await create({ resourceType: 'Organization', identifier: [{ system: ODS, value: 'RX9' }], name: 'Northshire Hospitals NHS Foundation Trust' });
      await create({ resourceType: 'Location', identifier: [{ system: 'https://fhir.nhs.uk/Id/ods-site-code', value: 'RX901' }], name: 'Northshire General Hospital' });
      const person = (nhs: string | undefined, family: string, given: string, birthDate: string, gender: string, postalCode: string) => create({
        resourceType: 'Patient',
        ...(nhs ? { identifier: [{ system: NHS, value: nhs }] } : {}),
        name: [{ family, given: [given] }],
        birthDate,
        gender,
        address: [{ line: ['1 Test Street'], city: 'Northby', postalCode }],
      });
      patients.margaret = await person('9991000011', 'Thornbury', 'Margaret', '1938-04-12', 'female', 'NX3 5QP');
      patients.derek = await person('9991000038', 'Ashworth', 'Derek', '1945-09-23', 'male', 'NX4 2LT');
      patients.harold = await person('9991000046', 'Greaves', 'Harold', '1950-01-01', 'male', 'NX2 8RD');
      patients.edith = await person(undefined, 'Pemberton', 'Edith', '1933-06-30', 'female', 'NX5 1EE');
      pas = await MllpTestClient.connect(port);
    });
    after(async () => {
      await pas?.close();
      await t?.close();
    });

    it('listens on loopback, like the HTTP server, when HOST is not set', () => {
      assert.equal(t.server.hl7!.host, '127.0.0.1');
    });

    it('admit, transfer, update and discharge: the Encounter follows each message, and each gets an AA', async () => {
      const admit = await send(fixture('a01-admit'), 'AA');
      assert.equal(ackControlId(admit), 'RX9-000101');
      assert.equal(segmentOf(admit, 'MSH')?.[8], 'ACK^A01^ACK');
      let enc = await encounterFor('VN2026000101');
      assert.equal(enc.status, 'in-progress');
      assert.equal(enc.subject.reference, `Patient/${patients.margaret}`);
      assert.equal(enc.class.code, 'IMP');
      assert.equal(enc.period.start, '2026-03-10T14:30:00+00:00');
      assert.equal(enc.serviceProvider.display, 'Northshire Hospitals NHS Foundation Trust');
      assert.deepEqual(enc.extension.filter((e: any) => e.url === EXPECTED), [{ url: EXPECTED, valueDateTime: '2026-03-17' }]);
      assert.equal(enc.location.length, 1);
      assert.equal(enc.location[0].status, 'active');
      const ward7 = (await t.fhir.get(enc.location[0].location.reference)).body;
      assert.equal(ward7.name, 'Ward 7 Care of Older People');
      assert.equal(ward7.partOf.display, 'Northshire General Hospital', 'the ward is part of the site named in PV1-3.4');

      await send(fixture('a02-transfer'), 'AA');
      enc = await encounterFor('VN2026000101');
      assert.deepEqual(enc.location.map((l: any) => [l.location.display, l.status, l.period.start, l.period.end]), [
        ['Ward 7 Care of Older People, bay B2, bed 04', 'completed', '2026-03-10T14:30:00+00:00', '2026-03-11T09:15:00+00:00'],
        ['Ward 12 Acute Medical Unit, bay A, bed 11', 'active', '2026-03-11T09:15:00+00:00', undefined],
      ]);
      assert.equal(enc.extension[0].valueDateTime, '2026-03-18');

      await send(fixture('a08-update'), 'AA');
      enc = await encounterFor('VN2026000101');
      assert.equal(enc.extension[0].valueDateTime, '2026-03-16', 'A08 moved the expected discharge date');
      assert.equal(enc.location.length, 2, 'A08 on the same ward is not a transfer');

      await send(fixture('a03-discharge'), 'AA');
      enc = await encounterFor('VN2026000101');
      assert.equal(enc.status, 'finished');
      assert.equal(enc.period.end, '2026-03-16T10:30:00+00:00', 'PV1-45');
      assert.equal(enc.hospitalization.dischargeDisposition.coding[0].code, '54');
      assert.ok(enc.location.every((l: any) => l.status === 'completed'));
      assert.equal(enc.location[1].period.end, '2026-03-16T10:30:00+00:00');

      const history = await t.fhir.get(`Encounter/${enc.id}/_history`);
      assert.equal(history.body.entry.length, 4, 'one version per message');
    });

    it('A13 cancels the discharge; another A13 for a spell not discharged gets an AE naming why', async () => {
      await send(fixture('a13-cancel-discharge'), 'AA');
      const enc = await encounterFor('VN2026000101');
      assert.equal(enc.status, 'in-progress');
      assert.equal(enc.period.end, undefined);
      assert.equal(enc.hospitalization?.dischargeDisposition, undefined);
      assert.equal(enc.location.at(-1).status, 'active', 'back on the ward they left');
      const again = await send(variant('a13-cancel-discharge', ['RX9-000105', 'RX9-000106']), 'AE');
      assert.equal(errCode(again), '204');
      assert.match(errText(again), /not discharged/);
      assert.equal((await encounterFor('VN2026000101')).meta.versionId, enc.meta.versionId, 'nothing changed');
    });

    it('A11 cancels an admission; A11 or A13 for a visit CareBridge has never seen gets an AE', async () => {
      await send(fixture('a01-admit-second-spell'), 'AA');
      assert.equal((await encounterFor('VN2026000201')).subject.reference, `Patient/${patients.derek}`);
      await send(fixture('a11-cancel-admit'), 'AA');
      assert.equal((await encounterFor('VN2026000201')).status, 'cancelled');
      for (const [name, from, to] of [['a11-cancel-admit', 'RX9-000202', 'RX9-000900'], ['a13-cancel-discharge', 'RX9-000105', 'RX9-000901']]) {
        const reply = await send(variant(name, [from, to], [/VN2026000[12]01/, 'VN2026009999']), 'AE');
        assert.match(errText(reply), /VN2026009999 is not in CareBridge/);
      }
      assert.equal(await encounterFor('VN2026009999'), undefined, 'no Encounter made up for a cancellation');
    });

    it('a repeated control id gets the same ACK without being applied again; a different message reusing it is refused', async () => {
      const before = await encounterFor('VN2026000101');
      const first = await send(fixture('a08-update'), 'AA');
      const second = await send(fixture('a08-update'), 'AA');
      assert.equal(second, first, 'the very same reply');
      assert.equal((await encounterFor('VN2026000101')).meta.versionId, before.meta.versionId, 'not applied again');
      const reused = await send(variant('a08-update', ['||||||20260316', '||||||20260325']), 'AR');
      assert.equal(errCode(reused), '205');
      assert.equal((await encounterFor('VN2026000101')).extension[0].valueDateTime, '2026-03-16');
    });

    it('a transfer keyed late goes into the ward history in its time order; the ward the person is on stays current (H-044)', async () => {
      const visit = 'VN2026004401';
      const ward9 = 'WARD9^C^03^RX901^^^^^Ward 9 Respiratory';
      const ward12 = 'WARD12^A^11^RX901^^^^^Ward 12 Acute Medical Unit';
      const ward7 = 'WARD7^B2^04^RX901^^^^^Ward 7 Care of Older People';
      const message = (name: string, control: string, ...edits: [string | RegExp, string][]) =>
        variant(name, [/RX9-00010\d/, control], ['VN2026000101', visit], ...edits);
      const wards = async () => (await encounterFor(visit)).location.map((l: any) => [l.location.display, l.status, l.period.start, l.period.end]);
      // Admitted to Ward 7 on 10 March 14:30; to Ward 12 on 11 March 09:15; then a transfer to Ward 9 at
      // 20:00 on 10 March, keyed in the PAS only after the one to Ward 12.
      await send(message('a01-admit', 'RX9-044101'), 'AA');
      await send(message('a02-transfer', 'RX9-044102'), 'AA');
      await send(message('a02-transfer', 'RX9-044103', [ward12, ward9], [/20260311091700/g, '20260311101000'], ['|20260311091500', '|20260310200000']), 'AA');
      const expected = [
        ['Ward 7 Care of Older People, bay B2, bed 04', 'completed', '2026-03-10T14:30:00+00:00', '2026-03-10T20:00:00+00:00'],
        ['Ward 9 Respiratory, bay C, bed 03', 'completed', '2026-03-10T20:00:00+00:00', '2026-03-11T09:15:00+00:00'],
        ['Ward 12 Acute Medical Unit, bay A, bed 11', 'active', '2026-03-11T09:15:00+00:00', undefined],
      ];
      assert.deepEqual(await wards(), expected, 'Ward 9 in its place in the history; the person is still on Ward 12');

      // A delayed A08 from 10 March 18:00, when the person was on Ward 7, changes no ward.
      await send(message('a08-update', 'RX9-044104', [ward12, ward7], ['|20260313120000', '|20260310180000']), 'AA');
      assert.deepEqual(await wards(), expected, 'the delayed A08 did not put the person back on Ward 7');

      // A transfer from before the admission cannot be placed, nor a discharge before the current ward
      // began: each is refused (AE) with the reason, and nothing is written.
      const version = (await encounterFor(visit)).meta.versionId;
      const early = await send(message('a02-transfer', 'RX9-044105', [ward12, ward9], ['|20260311091500', '|20260310120000']), 'AE');
      assert.match(errText(early), /VN2026004401 began on 2026-03-10T14:30:00\+00:00; a ward from 2026-03-10T12:00:00\+00:00 \(EVN-6\), before the admission, cannot be placed/);
      const inverted = await send(message('a03-discharge', 'RX9-044106', [/\|20260316103000$/, '|20260311080000']), 'AE');
      assert.match(errText(inverted), /period that ends before it begins \(Ward 12 Acute Medical Unit, bay A, bed 11 from 2026-03-11T09:15:00\+00:00 to 2026-03-11T08:00:00\+00:00\)/);
      const enc = await encounterFor(visit);
      assert.equal(enc.meta.versionId, version, 'nothing written for either');
      assert.equal(enc.status, 'in-progress');

      // After the discharge, an A08 naming the ward they left is fine; one putting them on another ward after it is refused.
      await send(message('a03-discharge', 'RX9-044107'), 'AA');
      await send(message('a08-update', 'RX9-044108', ['|20260313120000', '|20260317120000']), 'AA');
      const afterDischarge = await send(message('a08-update', 'RX9-044109', [ward12, ward9], ['|20260313120000', '|20260317120000']), 'AE');
      assert.match(errText(afterDischarge), /discharged on 2026-03-16T10:30:00\+00:00; the person cannot have been on Ward 9 Respiratory, bay C, bed 03 from 2026-03-17T12:00:00\+00:00 \(EVN-6\), after the discharge/);
      assert.deepEqual((await wards()).map((w: any[]) => [w[0].split(',')[0], w[1]]), [['Ward 7 Care of Older People', 'completed'], ['Ward 9 Respiratory', 'completed'], ['Ward 12 Acute Medical Unit', 'completed']]);
      for (const l of (await encounterFor(visit)).location) assert.ok(Date.parse(l.period.start) <= Date.parse(l.period.end), `${l.location.display} ends after it begins`);
    });

    it('an update that reaches CareBridge after a newer one is acknowledged, adds its ward to the history, but does not put back its older expected discharge date or class (H-047)', async () => {
      const visit = 'VN2026004701';
      const ward9 = 'WARD9^C^03^RX901^^^^^Ward 9 Respiratory';
      const ward12 = 'WARD12^A^11^RX901^^^^^Ward 12 Acute Medical Unit';
      // An A08 recorded in the PAS at `at` (MSH-7, EVN-2 and EVN-6 alike).
      const update = (control: string, at: string, patientClass: string, ward: string, expected: string) => variant('a08-update',
        ['RX9-000103', control], ['VN2026000101', visit], [/20260313120[05]00/g, at], ['PV1|1|I|', `PV1|1|${patientClass}|`], [ward12, ward], ['||||||20260316', `||||||${expected}`]);
      await send(variant('a01-admit', ['RX9-000101', 'RX9-047101'], ['VN2026000101', visit], ['PV1|1|I|', 'PV1|1|E|']), 'AA');
      const council = await t.fhir.post('Organization', { resourceType: 'Organization', identifier: [{ system: ODS, value: 'V47NC' }], name: 'Northshire Council', meta: { security: HTEST } });
      assert.equal(council.status, 201);
      const { referral } = await createReferral(t.server.discharge.context, { patient: `Patient/${patients.margaret}`, encounter: `Encounter/${(await encounterFor(visit)).id}`, hospitalOds: 'RX9', councilOds: 'V47NC' });
      const referralExpects = async () => {
        await t.server.discharge.runWorkers();
        return (await t.fhir.get(`ServiceRequest/${referral.id}`)).body.extension?.find((e: any) => e.url === EXPECTED)?.valueDateTime;
      };

      // 13 March: at 10:00 the person moved to Ward 9, still an emergency patient, expected home on the 18th;
      // at 11:00 to Ward 12 as an inpatient, expected home on the 20th. The interface engine sends the 10:00
      // update only after the 11:00 one.
      await send(update('RX9-047103', '20260313110000', 'I', ward12, '20260320'), 'AA');
      assert.equal(await referralExpects(), '2026-03-20');
      await send(update('RX9-047102', '20260313100000', 'E', ward9, '20260318'), 'AA');
      assert.equal(await referralExpects(), '2026-03-20', 'the council still plans for the 20th');
      const enc = await encounterFor(visit);
      assert.equal(enc.extension.find((e: any) => e.url === EXPECTED).valueDateTime, '2026-03-20', 'the stay too');
      assert.equal(enc.class.code, 'IMP', 'still an inpatient');
      assert.deepEqual(enc.location.map((l: any) => [l.location.display, l.status, l.period.start, l.period.end]), [
        ['Ward 7 Care of Older People, bay B2, bed 04', 'completed', '2026-03-10T14:30:00+00:00', '2026-03-13T10:00:00+00:00'],
        ['Ward 9 Respiratory, bay C, bed 03', 'completed', '2026-03-13T10:00:00+00:00', '2026-03-13T11:00:00+00:00'],
        ['Ward 12 Acute Medical Unit, bay A, bed 11', 'active', '2026-03-13T11:00:00+00:00', undefined],
      ], 'its ward goes into the history in its place (H-044)');
    });

    it('a discharge, or the cancel of a discharge or an admission, that reaches CareBridge after a newer message does not undo it (H-047)', async () => {
      const visit = 'VN2026004702';
      const message = (name: string, control: string, ...edits: [string | RegExp, string][]) => variant(name, [/RX9-000\d+/, control], ['VN2026000101', visit], ...edits);
      // 16 March: discharged at 10:30 (keyed 10:45); the discharge cancelled at 11:08, its time was wrong; discharged
      // again, at 10:40 (keyed 11:20, so its event time is before the cancel's). The interface engine sends the
      // first discharge and the cancel only after the second discharge.
      await send(message('a01-admit', 'RX9-047201'), 'AA');
      await send(message('a03-discharge', 'RX9-047204', [/20260316104512/g, '20260316112000'], [/20260316103000/g, '20260316104000']), 'AA');
      await send(message('a03-discharge', 'RX9-047202'), 'AA');
      let enc = await encounterFor(visit);
      assert.equal(enc.period.end, '2026-03-16T10:40:00+00:00', 'the discharge time is the one keyed last');
      await send(message('a13-cancel-discharge', 'RX9-047203'), 'AA');
      enc = await encounterFor(visit);
      assert.equal(enc.status, 'finished', 'the cancel of the earlier discharge does not reopen the stay');
      assert.equal(enc.period.end, '2026-03-16T10:40:00+00:00');
      assert.equal(enc.hospitalization.dischargeDisposition.coding[0].code, '54');

      // 20 March: Derek admitted at 07:55, the admission cancelled at 09:25 (A11), admitted again at 09:55; the
      // cancel arrives last.
      const derek = (name: string, control: string, ...edits: [string | RegExp, string][]) => variant(name, [/RX9-000\d+/, control], ['VN2026000201', 'VN2026004703'], ...edits);
      await send(derek('a01-admit-second-spell', 'RX9-047301'), 'AA');
      await send(derek('a01-admit-second-spell', 'RX9-047303', [/20260320080000/g, '20260320100000'], ['Anita|20260320075500', 'Anita|20260320095500']), 'AA');
      await send(derek('a11-cancel-admit', 'RX9-047302'), 'AA');
      assert.equal((await encounterFor('VN2026004703')).status, 'in-progress', 'the person admitted again is still in hospital');
    });

    it('an admission refused (AR) because CareBridge lacked the organisation or the facility mapping is applied when sent again after the fix (H-045)', async () => {
      // The sending organisation RXQ is not in the record yet.
      const admit = variant('a01-admit', ['|NORTHPAS|RX9|', '|NORTHPAS|RXQ|'], ['RX9-000101', 'RXQ-045101'], ['VN2026000101', 'VN2026004501']);
      const stayAt = async (ods: string, visit: string) => (await t.fhir.get(`Encounter?identifier=${encodeURIComponent(`https://carebridge.example/fhir/Id/hl7v2-visit-number/${ods}|${visit}`)}`)).body.entry?.map((e: any) => e.resource) ?? [];
      const refused = await send(admit, 'AR');
      assert.match(errText(refused), /The sending organisation RXQ is not in CareBridge/);
      assert.equal(await send(admit, 'AR'), refused, 'sent again before the fix: the same AR');
      const org = await t.fhir.post('Organization', { resourceType: 'Organization', identifier: [{ system: ODS, value: 'RXQ' }], name: 'Riverside Hospitals NHS Trust', meta: { security: HTEST } });
      assert.equal(org.status, 201);
      const accepted = await send(admit, 'AA');
      assert.equal(ackControlId(accepted), 'RXQ-045101');
      const stays = await stayAt('RXQ', 'VN2026004501');
      assert.equal(stays.length, 1, 'the admission is in the record');
      assert.equal(stays[0].subject.reference, `Patient/${patients.margaret}`);
      assert.equal(stays[0].location[0].location.display, 'Ward 7 Care of Older People, bay B2, bed 04');
      // From then on a repeat is a genuine duplicate, and a different message under the control id is refused.
      assert.equal(await send(admit, 'AA'), accepted, 'the same AA, byte for byte');
      assert.equal((await stayAt('RXQ', 'VN2026004501'))[0].meta.versionId, stays[0].meta.versionId, 'not applied twice');
      assert.equal(errCode(await send(admit.replace('||||||20260317', '||||||20260320'), 'AR')), '205');
      const rejected = (await listMessages(t.server.driver, 'rejected')).filter((m) => /RXQ is not in CareBridge/.test(m.reason ?? ''));
      assert.equal(rejected.length, 1, 'the refusal is kept with its reason');

      // A facility name not mapped to an ODS code, then mapped (the server started again with the mapping).
      const fromRiverside = variant('a01-admit', ['|NORTHPAS|RX9|', '|NORTHPAS|Riverside General|'], ['RX9-000101', 'RXQ-045102'], ['VN2026000101', 'VN2026004502']);
      const unmapped = await send(fromRiverside, 'AR');
      assert.equal(errCode(unmapped), '204');
      assert.match(errText(unmapped), /not an ODS code/);
      const mapped = await startHl7v2({ driver: t.server.driver, host: '127.0.0.1', port: 0, maxMessageBytes: 65536, facilities: { 'Riverside General': 'RXQ' } });
      const afterRestart = await MllpTestClient.connect(mapped.port);
      try {
        assert.equal(ackCode(await afterRestart.send(fromRiverside)), 'AA');
        assert.equal((await stayAt('RXQ', 'VN2026004502')).length, 1, 'the admission is in the record');
      } finally {
        await afterRestart.close();
        await mapped.close();
      }
    });

    it('an unknown patient is held (AA with a warning), later messages for the visit wait behind it, and resolving applies them in order', async () => {
      const admit = await send(fixture('a01-unknown-patient'), 'AA');
      assert.equal(segmentOf(admit, 'ERR')?.[4], 'W');
      assert.match(errText(admit), /held for a person/);
      const transfer = await send(fixture('a02-unknown-patient-transfer'), 'AA');
      assert.match(errText(transfer), /held behind message \d+/);
      assert.equal(await encounterFor('VN2026000301'), undefined, 'nothing filed until a person decides');

      const listed = await runCli(['hl7', 'queue', 'list', '--db', t.database]);
      assert.equal(listed.code, 0, listed.stderr);
      const rows = listed.stdout.split('\n').filter((l) => l.includes('VN2026000301'));
      assert.equal(rows.length, 2, listed.stdout);
      assert.match(rows[0], /O'HALLORAN, Bridget; born 1941-01-05; F; NX1 4QS/);
      const seq = rows[0].split('\t')[0];

      const bad = await runCli(['hl7', 'queue', 'resolve', seq, '--patient', 'no-such-patient', '--db', t.database]);
      assert.notEqual(bad.code, 0);
      assert.match(bad.stderr, /^carebridge: Patient\/no-such-patient is not in the record\.\n$/);

      const resolved = await runCli(['hl7', 'queue', 'resolve', seq, '--new', '--by', 'Ward clerk', '--db', t.database]);
      assert.equal(resolved.code, 0, resolved.stderr);
      assert.match(resolved.stdout, /applied to Patient\/[\w-]+ \(Encounter\/[\w-]+\)\.\n  then Message \d+ applied/);
      const enc = await encounterFor('VN2026000301');
      assert.equal(enc.status, 'in-progress');
      assert.equal(enc.class.code, 'IMP', 'the transfer (held behind the admission) was applied after it');
      assert.deepEqual(enc.location.map((l: any) => [l.location.display, l.status]), [['Acute Medical Unit', 'completed'], ['Ward 7 Care of Older People', 'active']]);
      const patient = (await t.fhir.get(enc.subject.reference)).body;
      assert.deepEqual([patient.name[0].family, patient.birthDate, patient.gender, patient.address[0].postalCode], ["O'HALLORAN", '1941-01-05', 'female', 'NX1 4QS']);
      assert.equal((await runCli(['hl7', 'queue', 'list', '--db', t.database])).stdout.trim(), 'No queued HL7 v2 messages.');
    });

    it('a message with another NHS number for a stay holds it until a person dismisses it; the messages behind it are then applied in order', async () => {
      // Margaret's stay; then an update keyed with another (valid) NHS number, and her discharge, correct.
      const visit = (name: string, control: string, from: string) => variant(name, [from, control], ['VN2026000101', 'VN2026000801']);
      await send(visit('a01-admit', 'RX9-000801', 'RX9-000101'), 'AA');
      const held = await send(variant('a08-update', ['RX9-000103', 'RX9-777103'], ['VN2026000101', 'VN2026000801'], ['9991000011^^^NHS^NH', '9413946000^^^NHS^NH']), 'AA');
      assert.equal(segmentOf(held, 'ERR')?.[4], 'W');
      assert.match(errText(held), /belongs to Patient\/[\w-]+ \(NHS number 9991000011\) but the message carries NHS number 9413946000/);
      const discharge = await send(visit('a03-discharge', 'RX9-000804', 'RX9-000104'), 'AA');
      assert.match(errText(discharge), /held behind message \d+/);
      const seqOf = async (control: string) => (await listMessages(t.server.driver)).find((m) => m.controlId === control)!.seq;
      const [update, dischargeSeq] = [await seqOf('RX9-777103'), await seqOf('RX9-000804')];

      // The resolutions that name a patient are refused, each with a plain line saying what to do instead.
      const cli = (...args: string[]) => runCli(['hl7', 'queue', ...args, '--db', t.database]);
      const asNew = await cli('resolve', String(update), '--new');
      assert.notEqual(asNew.code, 0);
      assert.match(asNew.stderr, new RegExp(`^carebridge: visit VN2026000801 already belongs to Patient/${patients.margaret}; use --patient ${patients.margaret}\\b.*\\n$`));
      const asHers = await cli('resolve', String(update), '--patient', patients.margaret);
      assert.notEqual(asHers.code, 0);
      assert.match(asHers.stderr, /^carebridge: Patient\/[\w-]+ has NHS number 9991000011, but the message carries 9413946000\b[^\n]*\n$/);
      const jumping = await cli('resolve', String(dischargeSeq), '--patient', patients.margaret);
      assert.notEqual(jumping.code, 0, 'the discharge is not applied ahead of the update it came after');
      assert.match(jumping.stderr, new RegExp(`^carebridge: message ${update} for the same visit is waiting ahead of it: resolve or dismiss that one first\\.\\n$`));
      assert.equal((await encounterFor('VN2026000801')).status, 'in-progress');

      const noReason = await cli('dismiss', String(update));
      assert.notEqual(noReason.code, 0);
      assert.match(noReason.stderr, /^carebridge: .*--why.*\n$/);
      const dismissed = await cli('dismiss', String(update), '--why', 'NHS number mis-keyed on the PAS; the PAS will resend', '--by', 'Ward clerk');
      assert.equal(dismissed.code, 0, dismissed.stderr);
      assert.equal(dismissed.stdout, `Message ${update} dismissed: kept with the reason, not applied.\n  then Message ${dischargeSeq} applied to Patient/${patients.margaret} (Encounter/${(await encounterFor('VN2026000801')).id}).\n`);
      const enc = await encounterFor('VN2026000801');
      assert.equal(enc.status, 'finished', 'the discharge held behind it is applied');
      assert.equal(enc.extension[0].valueDateTime, '2026-03-17', 'the dismissed update is not');

      const kept = (await listMessages(t.server.driver, 'dismissed')).find((m) => m.seq === update);
      assert.match(kept?.reason ?? '', /^dismissed by Ward clerk: NHS number mis-keyed on the PAS; the PAS will resend \(it was held because the visit belongs to/);
      const listed = await cli('list', '--status', 'dismissed');
      assert.match(listed.stdout, new RegExp(`^${update}\\t.*RX9-777103`, 'm'));
      const resent = await send(variant('a08-update', ['RX9-000103', 'RX9-777103'], ['VN2026000101', 'VN2026000801'], ['9991000011^^^NHS^NH', '9413946000^^^NHS^NH']), 'AA');
      assert.equal(resent, held, 'a repeat gets the reply it was given, and is not applied');
      assert.equal((await encounterFor('VN2026000801')).meta.versionId, enc.meta.versionId);
      assert.equal((await cli('dismiss', String(update), '--why', 'again')).stderr, `carebridge: message ${update} is dismissed, not waiting for a person.\n`);
      assert.deepEqual((await listMessages(t.server.driver)).filter((m) => m.visit === 'VN2026000801'), []);

      // The IG lead finds the dismissal in Margaret's audit: who, which message, the decision and why.
      const audit = await t.fhir.get(`AuditEvent?patient=Patient/${patients.margaret}&subtype=hl7v2-dismissed&_count=100`);
      assert.equal(audit.status, 200);
      const events = (audit.body.entry ?? []).map((e: any) => e.resource).filter((e: any) => e.entity.some((x: any) => x.what?.identifier?.value === String(update)));
      assert.equal(events.length, 1, 'the dismissal is in the audit trail, under the patient');
      const [e] = events;
      assert.equal(e.type.code, '110110');
      assert.equal(e.agent[0].altId, 'carebridge-cli');
      assert.match(e.agent[0].who.display, /^carebridge hl7 queue dismiss \(OS user /);
      assert.match(e.outcomeDesc, new RegExp(`^HL7 v2 message dismissed, not applied, by Ward clerk: HL7 v2 message ${update} \\(ADT\\^A08 RX9-777103 from RX9, visit VN2026000801, NHS number 9413946000\\); NHS number mis-keyed on the PAS; the PAS will resend \\(it was held because`));
      assert.equal(e.entity.find((x: any) => x.what?.identifier).name, `HL7 v2 message ${update}`);
    });

    it('a person may apply a message with another NHS number to the stay on file, only for a number no one else has, and the Patient keeps theirs', async () => {
      const margaret = (await t.fhir.get(`Patient/${patients.margaret}`)).body;
      const message = (name: string, control: string, ...edits: [string, string][]) => variant(name, ...edits, [/\|RX9-000\d+\|/, `|${control}|`], ['VN2026000101', 'VN2026000901']);
      await send(message('a01-admit', 'RX9-009901'), 'AA');
      await send(message('a08-update', 'RX9-009902', ['9991000011^^^NHS^NH', '9991000038^^^NHS^NH']), 'AA'); // Derek's number
      await send(message('a08-update', 'RX9-009903', ['9991000011^^^NHS^NH', '9413946000^^^NHS^NH'], ['||||||20260316', '||||||20260319']), 'AA');
      await send(message('a03-discharge', 'RX9-009904'), 'AA');
      const queued = (await listMessages(t.server.driver)).filter((m) => m.visit === 'VN2026000901').map((m) => m.seq);
      assert.equal(queued.length, 3);
      const cli = (...args: string[]) => runCli(['hl7', 'queue', ...args, '--db', t.database]);

      const othersNumber = await cli('resolve', String(queued[0]), '--patient', patients.margaret, '--accept-different-nhs-number');
      assert.notEqual(othersNumber.code, 0);
      assert.equal(othersNumber.stderr, `carebridge: NHS number 9991000038 is Patient/${patients.derek}'s, so the message may be about them, not Patient/${patients.margaret}; dismiss it and ask for the PAS to be corrected.\n`);
      const dismissed = await cli('dismiss', String(queued[0]), '--why', "Derek Ashworth's number, keyed on Margaret's stay");
      assert.equal(dismissed.code, 0, dismissed.stderr);
      assert.match(dismissed.stdout, new RegExp(`\\n  then Message ${queued[1]} queued: the visit belongs to Patient/${patients.margaret} \\(NHS number 9991000011\\) but the message carries NHS number 9413946000 \\(PID-3\\)\\n$`), 'released, and held again for its own reason; the discharge stays behind it');

      const accepted = await cli('resolve', String(queued[1]), '--patient', patients.margaret, '--accept-different-nhs-number', '--by', 'Ward clerk');
      assert.equal(accepted.code, 0, accepted.stderr);
      assert.match(accepted.stdout, new RegExp(`^Message ${queued[1]} applied to Patient/${patients.margaret} .*\\n  then Message ${queued[2]} applied to Patient/${patients.margaret} `));
      const enc = await encounterFor('VN2026000901');
      assert.equal(enc.status, 'finished');
      assert.equal(enc.extension[0].valueDateTime, '2026-03-19', 'the update applied, then the discharge');
      const after = (await t.fhir.get(`Patient/${patients.margaret}`)).body;
      assert.deepEqual(after.identifier, margaret.identifier, 'her NHS number is not rewritten');
      assert.equal(after.meta.versionId, margaret.meta.versionId, 'nor anything else about her');
      const applied = (await listMessages(t.server.driver, 'applied')).find((m) => m.seq === queued[1]);
      assert.match(applied?.reason ?? '', /confirmed the stay is Patient\/[\w-]+'s \(NHS number 9991000011\) although the message carries NHS number 9413946000/);
      const resolvedBy = await t.server.driver.get<{ resolved_by: string }>('SELECT resolved_by FROM hl7v2_messages WHERE seq = ?', [queued[1]]);
      assert.equal(resolvedBy?.resolved_by, 'Ward clerk');

      // Both decisions are in Margaret's audit: the dismissal (also under Derek, whose number it carried) and the acceptance.
      const audit = async (patient: string) => (await t.fhir.get(`AuditEvent?patient=Patient/${patient}&type=110110&_sort=date&_count=100`)).body.entry?.map((x: any) => x.resource) ?? [];
      const about = (events: any[], seq: number) => events.filter((x: any) => x.entity.some((en: any) => en.what?.identifier?.value === String(seq)));
      const hers = await audit(patients.margaret);
      const [dismissal] = about(hers, queued[0]);
      assert.equal(dismissal?.subtype[0].code, 'hl7v2-dismissed');
      assert.match(dismissal.outcomeDesc, /Derek Ashworth's number, keyed on Margaret's stay/);
      assert.equal(about(await audit(patients.derek), queued[0]).length, 1, 'filed under the patient whose NHS number the message carried too');
      const [acceptance] = about(hers, queued[1]);
      assert.equal(acceptance?.subtype[0].code, 'hl7v2-different-nhs-number-accepted');
      assert.equal(acceptance.action, 'U');
      assert.match(acceptance.agent[0].who.display, /^carebridge hl7 queue resolve \(OS user /);
      assert.match(acceptance.outcomeDesc, new RegExp(`, by Ward clerk: HL7 v2 message ${queued[1]} \\(ADT\\^A08 RX9-009903 from RX9, visit VN2026000901, NHS number 9413946000\\) applied to Encounter/${enc.id}; .*although the message carries NHS number 9413946000`));
      assert.ok(acceptance.entity.some((en: any) => en.what?.reference === `Encounter/${enc.id}`));
    });

    it('two people making a new Patient for one NHS number at the same moment make one, and the second is told which', async () => {
      const nhs = '9991000070'; // synthetic (999 range), valid check digit, in no other test
      const admit = (control: string, visit: string) => variant('a01-admit', ['RX9-000101', control], ['VN2026000101', visit],
        [/PID\|[^\r]*/, `PID|1||${nhs}^^^NHS^NH||QUINN^Rosalind||19440202|F|||3 Test Road^^Northby^^NX6 1AA^GBR`]);
      for (const n of [1, 2]) assert.match(errText(await send(admit(`RX9-00770${n}`, `VN202600770${n}`), 'AA')), new RegExp(`no Patient has NHS number ${nhs}`));
      const queued = (await listMessages(t.server.driver)).filter((m) => m.visit?.startsWith('VN202600770'));
      assert.equal(queued.length, 2);

      // Two ward clerks at once: on PostgreSQL the two transactions run side by side.
      const intake = hl7Intake({ driver: t.server.driver, facilities: {} });
      const outcomes = await Promise.allSettled(queued.map((m) => resolveQueued(intake, t.server.driver, m.seq, { newPatient: true }, `clerk ${m.seq}`)));
      const found = await t.fhir.get(`Patient?identifier=${encodeURIComponent(`${NHS}|${nhs}`)}`);
      assert.equal(found.body.entry?.length, 1, 'one Patient for the NHS number');
      const id = found.body.entry[0].resource.id;
      assert.deepEqual(outcomes.map((o) => o.status).sort(), ['fulfilled', 'rejected']);
      const refused = outcomes.find((o) => o.status === 'rejected') as PromiseRejectedResult;
      assert.equal(refused.reason.message, `NHS number ${nhs} is already Patient/${id}; use --patient ${id}.`);
      const waiting = (await listMessages(t.server.driver)).filter((m) => m.visit?.startsWith('VN202600770'));
      assert.equal(waiting.length, 1, 'the refused one still waits for a person');
      const followed = await runCli(['hl7', 'queue', 'resolve', String(waiting[0].seq), '--patient', id, '--db', t.database]);
      assert.equal(followed.code, 0, followed.stderr);
      assert.match(followed.stdout, new RegExp(`applied to Patient/${id} `));
    });

    it('matches on demographics only when all five agree with one person; a partial match or an NHS number with another birth date is held', async () => {
      const pid = (ids: string, name: string, born: string, sex: string, postcode: string) => `PID|1||${ids}||${name}||${born}|${sex}|||1 Test Street^^Northby^^${postcode}^GBR`;
      const admit = (control: string, visit: string, pidSegment: string) => variant('a01-admit', ['RX9-000101', control], ['VN2026000101', visit], [/PID\|[^\r]*/, pidSegment]);
      await send(admit('RX9-000401', 'VN2026000401', pid('RX9M0040001^^^RX9^MR', 'PEMBERTON^Edith', '19330630', 'F', 'NX5 1EE')), 'AA');
      assert.equal((await encounterFor('VN2026000401')).subject.reference, `Patient/${patients.edith}`, 'strong demographic match');

      const weak = await send(admit('RX9-000402', 'VN2026000402', pid('RX9M0040001^^^RX9^MR', 'PEMBERTON^Edith', '19330630', 'F', 'NX9 9ZZ')), 'AA');
      assert.match(errText(weak), /match in part only/);
      const conflict = await send(admit('RX9-000403', 'VN2026000403', pid('9991000046^^^NHS^NH', 'GREAVES^Harold', '19510101', 'M', 'NX2 8RD')), 'AA');
      assert.match(errText(conflict), /born 1950-01-01, but the message says born 1951-01-01/);
      const unknown = await send(admit('RX9-000404', 'VN2026000404', pid('9991000054^^^NHS^NH', 'NEWTON^Alan', '19400101', 'M', 'NX2 8RD')), 'AA');
      assert.match(errText(unknown), /no Patient has NHS number 9991000054/);
      for (const visit of ['VN2026000402', 'VN2026000403', 'VN2026000404']) assert.equal(await encounterFor(visit), undefined, `${visit} not filed against anyone`);
      const queued = await listMessages(t.server.driver, 'queued');
      assert.deepEqual(queued.map((q) => q.visit).sort(), ['VN2026000402', 'VN2026000403', 'VN2026000404']);
    });

    // HL7 v2 ends every segment with a carriage return, the last one too, so that is how a PAS sends them
    // (some send CR LF, or nothing after the last). Read as an empty segment after the last, every such
    // message was refused (AR).
    it('a message whose every segment ends in a carriage return, the last too, or in CR LF, or the last in nothing, is applied', async () => {
      const raw = await MllpTestClient.connect(port);
      const endings = [['RX9-000601', 'VN2026000601', '\r', '\r'], ['RX9-000602', 'VN2026000602', '\r\n', '\r\n'], ['RX9-000603', 'VN2026000603', '\r', '']] as const;
      for (const [control, visit, between, last] of endings) {
        const message = variant('a01-admit-second-spell', ['RX9-000201', control], ['VN2026000201', visit]).split('\r').join(between) + last;
        raw.write(VT + message + END);
        const reply = await raw.nextReply();
        assert.equal(ackCode(reply), 'AA', `${JSON.stringify(between)}: AA expected; got ${reply.replace(/\r/g, ' / ')}`);
        assert.ok(reply.endsWith('\r'), 'the ACK ends its last segment with a carriage return too, as HL7 v2 writes it');
        const stay = await encounterFor(visit);
        assert.equal(stay?.subject?.reference, `Patient/${patients.derek}`, `${JSON.stringify(between)}: the stay is filed against the person`);
      }
      await raw.close();
    });

    it('malformed, unsupported and oversized messages get an AR with the reason (and bad content an AE); the listener keeps serving', async () => {
      const raw = await MllpTestClient.connect(port);
      // Each case has a control id of its own, so none is taken for a repeat of another.
      let n = 500;
      const good = () => fixture('a01-admit-second-spell').replace('RX9-000201', `RX9-000${n++}`);
      const cases: [string, string, string, RegExp][] = [
        ['no MSH', 'PID|1||9991000011^^^NHS^NH', '100', /does not begin with an MSH segment/],
        ['wrong encoding characters', good().replace('MSH|^~\\&|', 'MSH|^~#&|'), '102', /standard encoding characters/],
        ['other field separator', good().replace(/\|/g, '#'), '102', /standard encoding characters/],
        ['truncated after PID', good().split('\r').slice(0, 3).join('\r'), '100', /PV1 segment is missing/],
        ['cut mid-segment', ((m) => m.slice(0, m.indexOf('PID|') + 12))(good()), '100', /PV1 segment is missing|PID-3/],
        ['no control id', good().replace(/\|RX9-000\d+\|/, '||'), '101', /MSH-10/],
        ['unsupported message type', good().replace('ADT^A01^ADT_A01', 'ORU^R01^ORU_R01'), '200', /ORU/],
        ['unsupported event', good().replace('ADT^A01^ADT_A01', 'ADT^A04^ADT_A01'), '201', /A04/],
        ['no visit number', good().replace('VN2026000201', ''), '101', /PV1-19/],
        ['facility that is not an ODS code', good().replace('|NORTHPAS|RX9|', '|NORTHPAS|Some Hospital|'), '204', /not an ODS code/],
        ['organisation not in the record', good().replace('|NORTHPAS|RX9|', '|NORTHPAS|RXZ99|'), '204', /RXZ99 is not in CareBridge/],
        ['garbage segment', good().replace('\rPV1|', '\r\u0000\u0001garbage\rPV1|'), '100', /not an HL7 segment/],
      ];
      for (const [what, message, code, reason] of cases) {
        const reply = await raw.send(message);
        assert.equal(ackCode(reply), 'AR', `${what}: ${reply}`);
        assert.equal(errCode(reply), code, `${what}: ${reply}`);
        assert.match(errText(reply), reason, what);
        if (what === 'no visit number') {
          // The feed is v2.4, whose ERR has only ERR-1 (code and location): it carries the same.
          assert.equal(segmentOf(reply, 'MSH')?.[11], '2.4');
          assert.equal(segmentOf(reply, 'ERR')?.[1], 'PV1^1^19^101&Required field missing&HL70357');
        }
      }
      const contentErrors: [string, string, RegExp][] = [
        ['invalid NHS number', good().replace('9991000038', '9991000039'), /9991000039.*not valid/],
        ['impossible admission time', good().replace(/\|20260320075500$/, '|20261345075500'), /PV1-44/],
      ];
      for (const [what, message, reason] of contentErrors) {
        const reply = await raw.send(message);
        assert.equal(ackCode(reply), 'AE', `${what}: ${reply}`);
        assert.match(errText(reply), reason, what);
      }

      const huge = good() + '\rNTE|1||' + 'x'.repeat(100 * 1024);
      const tooBig = await raw.send(huge);
      assert.equal(ackCode(tooBig), 'AR');
      assert.equal(ackControlId(tooBig), /RX9-000\d+/.exec(huge)![0], 'the reply still names the message');
      assert.match(errText(tooBig), /more than the 65536/);

      // Noise between frames, and a frame abandoned for a new one, get no reply; the next message does.
      raw.write('noise between frames\r\n');
      raw.write(VT + 'MSH|^~\\&|NORTHPAS|RX9|half a mess');
      const after = await raw.send(good().replace('VN2026000201', 'VN2026001102'));
      assert.equal(ackCode(after), 'AA', after);
      assert.equal(ackControlId(after), `RX9-000${n - 1}`);

      // A connection that closes in the middle of a frame; then a frame whose FS and CR arrive apart.
      const quitter = await MllpTestClient.connect(port);
      quitter.write(VT + good().slice(0, 80));
      await quitter.close();
      const fresh = await MllpTestClient.connect(port);
      const split = good().replace('VN2026000201', 'VN2026001103');
      fresh.write(VT + split + '\x1c');
      await new Promise((r) => setTimeout(r, 50));
      fresh.write('\r');
      assert.equal(ackCode(await fresh.nextReply()), 'AA');
      await fresh.close();
      await raw.close();

      const refused = await listMessages(t.server.driver, 'rejected');
      assert.ok(refused.some((r) => r.reason?.includes('RXZ99 is not in CareBridge')), 'refused messages are kept with their reason');
      assert.ok(refused.some((r) => /more than the 65536/.test(r.reason ?? '')));
      const failed = await listMessages(t.server.driver, 'failed');
      assert.ok(failed.some((r) => /9991000039/.test(r.reason ?? '')));
    });

    it('a message that cannot be stored (the database gone) gets an AR, so the PAS sends it again', async () => {
      const gone = await openRecordStore(t.database);
      await gone.close();
      const logged: string[] = [];
      const reply = await hl7Intake({ driver: gone, facilities: {}, log: (text) => logged.push(text) }).receive({ bytes: Buffer.from(fixture('a01-admit')), oversized: false }, 'test');
      assert.equal(ackCode(reply), 'AR', reply);
      assert.equal(errCode(reply), '207');
      assert.match(errText(reply), /could not store or apply the message just now; send it again/);
      assert.equal(logged.length, 1, 'the operator is told why');
    });

    // UK feeds type every national health number NH (HL7 table 0203), telling them apart by the assigning
    // authority (CX.4): NHS (England and Wales), CHI (Scotland), HSNI (Northern Ireland). A CHI or H&C number
    // has the NHS number's format and check digit, so one read as an NHS number refused a cross-border
    // patient's message as carrying "two different NHS numbers", or held it under a number that is not theirs.
    it('a Scottish CHI or Northern Irish H&C number in PID-3, typed NH as UK feeds type it, is not taken for an NHS number', async () => {
      const chi = '2309451207'; // CHI-shaped (born 23/09/45); its check digit is valid, as an NHS number's would be
      const healthAndCare = '3200000007'; // in the H&C range, valid check digit
      const derek = (control: string, visit: string, ids: string) => variant('a01-admit-second-spell', ['RX9-000201', control], ['VN2026000201', visit],
        [/PID\|[^\r]*/, `PID|1||${ids}||ASHWORTH^Derek^^^Mr||19450923|M|||3 Mill Lane^^Southby^Northshire^NX4 2LT^GBR`]);
      const both = await send(derek('RX9-021101', 'VN2026002101', `9991000038^^^NHS^NH~${chi}^^^CHI^NH~${healthAndCare}^^^HSNI^NH~RX9M0067890^^^RX9^MR`), 'AA');
      assert.equal(segmentOf(both, 'ERR'), undefined, `applied, not held: ${errText(both)}`);
      assert.equal((await encounterFor('VN2026002101')).subject.reference, `Patient/${patients.derek}`, 'matched by his NHS number');

      const chiOnly = await send(derek('RX9-021102', 'VN2026002102', `${chi}^^^CHI^NH~RX9M0067890^^^RX9^MR`), 'AA');
      assert.match(errText(chiOnly), /held for a person .*no NHS number/, 'a message without an NHS number, matched as one');
      assert.doesNotMatch(errText(chiOnly), new RegExp(chi));
      assert.equal(await encounterFor('VN2026002102'), undefined, 'not filed until a person decides');
    });

    it('an NHS number sent as "" (HL7\'s explicit null) is no NHS number, not an invalid one', async () => {
      const update = variant('a01-admit-second-spell', ['RX9-000201', 'RX9-021103'], ['VN2026000201', 'VN2026002101'], ['ADT^A01^ADT_A01', 'ADT^A08^ADT_A01'], ['EVN|A01', 'EVN|A08'],
        ['9991000038^^^NHS^NH~', '""^^^NHS^NH~']);
      const reply = await send(update, 'AA');
      assert.equal(segmentOf(reply, 'ERR'), undefined, `applied by its visit number: ${errText(reply)}`);
      assert.equal((await encounterFor('VN2026002101')).subject.reference, `Patient/${patients.derek}`);
    });

    // An assigning authority (CX.4) is an HD: a namespace, then optionally "&" a universal id (OID) "&" its
    // type. A sender that filled the whole HD, without the NH type, had the NHS number read as a local
    // number, so the admission was held for a person instead of filed by NHS number.
    it('an NHS number whose assigning authority is sent as a whole HD (NHS&OID&ISO) is read as an NHS number', async () => {
      const admit = variant('a01-admit', ['RX9-000101', 'RX9-021201'], ['VN2026000101', 'VN2026002201'],
        ['9991000011^^^NHS^NH~RX9M0012345^^^RX9^MR', '9991000011^^^NHS&2.16.840.1.113883.2.1.4.1&ISO~RX9M0012345^^^RX9&2.16.840.1.113883.2.1.3.2.4.18.48&ISO^MR']);
      const reply = await send(admit, 'AA');
      assert.equal(segmentOf(reply, 'ERR'), undefined, `applied, not held: ${errText(reply)}`);
      assert.equal((await encounterFor('VN2026002201')).subject.reference, `Patient/${patients.margaret}`, 'matched by her NHS number');
    });

    // A ward's facility (PL.4) is an HD too: sent whole, the site was not recognised, so the ward was filed
    // under no site, as a second Location beside the one for the same ward sent with the site's code alone.
    it('a ward whose site (PV1-3.4) is sent as a whole HD (code&OID&ISO) is the same ward, on that site', async () => {
      const admit = variant('a01-admit', ['RX9-000101', 'RX9-021202'], ['VN2026000101', 'VN2026002202'], ['^RX901^', '^RX901&2.16.840.1.113883.2.1.3.2.4.18.48&ISO^']);
      await send(admit, 'AA');
      const ward7 = (await encounterFor('VN2026000101')).location[0].location.reference;
      assert.equal((await encounterFor('VN2026002202')).location[0].location.reference, ward7, 'the same Ward 7 as when the site is sent as a code alone');
      assert.equal((await t.fhir.get(ward7)).body.partOf.display, 'Northshire General Hospital');
    });

    // The record's search reads "," in a value as "or" (and "\\", "|", "$" as its own syntax). A visit number
    // holding a comma was looked up as two visits, so a message about someone else, without an NHS number,
    // was matched by visit number to the stay it found and filed against that person.
    it('a visit number or ward code holding a comma is taken as the text it is: nothing is filed against another person\'s stay or ward', async () => {
      const margaretsStay = await encounterFor('VN2026000101');
      const update = variant('a01-admit-second-spell', ['RX9-000201', 'RX9-021301'], ['ADT^A01^ADT_A01', 'ADT^A08^ADT_A01'], ['EVN|A01', 'EVN|A08'],
        ['VN2026000201', 'VN2026009997,VN2026000101'], [/PID\|[^\r]*/, 'PID|1||RX9M0031301^^^RX9^MR||FAIRCLOUGH^Nora||19470214|F|||9 Test Row^^Northby^^NX7 2PQ^GBR']);
      const reply = await send(update, 'AA');
      assert.match(errText(reply), /held for a person .*no Patient has these details/, 'a visit CareBridge has not seen, for a person it does not know');
      assert.equal((await encounterFor('VN2026000101')).meta.versionId, margaretsStay.meta.versionId, "Margaret's stay is not touched");

      const admit = variant('a01-admit-second-spell', ['RX9-000201', 'RX9-021302'], ['VN2026000201', 'VN2026002301'], ['WARD21^^^RX901^^^^^Ward 21 Respiratory Medicine', 'AAU,WARD7^^^RX901']);
      await send(admit, 'AA');
      const ward = (await encounterFor('VN2026002301')).location[0].location;
      assert.notEqual(ward.reference, margaretsStay.location[0].location.reference, 'not Ward 7');
      assert.equal(ward.display, 'AAU,WARD7');
    });

    // HL7 v2.7 added a fifth encoding character to MSH-2, the truncation character (^~\\&#), escaped in data
    // as \\P\\. A sender on v2.7 or later that declares it had every message refused (AR).
    it('a v2.7+ message that declares the truncation character in MSH-2 (^~\\&#) is applied, and \\P\\ in its text read as #', async () => {
      const admit = variant('a01-admit-second-spell', ['MSH|^~\\&|', 'MSH|^~\\&#|'], ['|2.4|', '|2.7|'], ['RX9-000201', 'RX9-021401'], ['VN2026000201', 'VN2026002401'],
        ['WARD21^^^RX901^^^^^Ward 21 Respiratory Medicine', 'WARD22^^^RX901^^^^^Stroke Unit \\P\\22']);
      const reply = await send(admit, 'AA');
      assert.equal(segmentOf(reply, 'MSH')?.[11], '2.7');
      const stay = await encounterFor('VN2026002401');
      assert.equal(stay.subject.reference, `Patient/${patients.derek}`);
      assert.equal(stay.location[0].location.display, 'Stroke Unit #22');
    });

    // Without EVN-6 (optional in HL7 v2), a message's event time is when it was keyed (EVN-2). A discharge
    // keyed after it happened, naming a ward CareBridge had not been sent a transfer to (a discharge lounge),
    // put the person on that ward from after their discharge: the discharge was refused (AE) and the stay
    // left open.
    it('a discharge keyed after it happened, without EVN-6, from a ward not sent as a transfer, is applied: the ward ends at the discharge', async () => {
      const visit = 'VN2026002501';
      await send(variant('a01-admit-second-spell', ['RX9-000201', 'RX9-022501'], ['VN2026000201', visit]), 'AA');
      const discharge = variant('a01-admit-second-spell', ['RX9-000201', 'RX9-022502'], ['VN2026000201', visit], ['ADT^A01^ADT_A01', 'ADT^A03^ADT_A03'],
        [/^EVN\|[^\r]*/m, 'EVN|A03|20260322110500'], [/20260320080000/, '20260322110500'],
        ['WARD21^^^RX901^^^^^Ward 21 Respiratory Medicine', 'DLOUNGE^^^RX901^^^^^Discharge Lounge'], [/\|20260320075500$/, '|20260320075500|20260322103000']);
      await send(discharge, 'AA');
      const stay = await encounterFor(visit);
      assert.equal(stay.status, 'finished');
      assert.equal(stay.period.end, '2026-03-22T10:30:00+00:00', 'PV1-45');
      assert.deepEqual(stay.location.map((l: any) => [l.location.display, l.status, l.period.start, l.period.end]), [
        ['Ward 21 Respiratory Medicine', 'completed', '2026-03-20T07:55:00+00:00', '2026-03-22T10:30:00+00:00'],
        ['Discharge Lounge', 'completed', '2026-03-22T10:30:00+00:00', '2026-03-22T10:30:00+00:00'],
      ]);
    });

    // A PAS or interface engine on Windows that says 8859/1 in MSH-18 sends Windows-1252, whose bytes
    // 0x80-0x9F are ’ “ ” – and the like (in ISO 8859-1, control codes no one sends as text). They were
    // read as control codes: a ward named "Ward 23 – Frailty Unit" was filed with an invisible character.
    it('text sent in Windows-1252 under MSH-18 8859/1 is read with its dashes and quotes', async () => {
      const admit = variant('a01-admit-second-spell', ['RX9-000201', 'RX9-022601'], ['VN2026000201', 'VN2026002601'], ['UNICODE UTF-8', '8859/1'],
        ['WARD21^^^RX901^^^^^Ward 21 Respiratory Medicine', 'WARD23^^^RX901^^^^^Ward 23 \x96 Frailty Unit']);
      const raw = await MllpTestClient.connect(port);
      raw.write(Buffer.concat([Buffer.from(VT), Buffer.from(`${admit}\r`, 'latin1'), Buffer.from(END)]));
      const reply = await raw.nextReply();
      await raw.close();
      assert.equal(ackCode(reply), 'AA', reply);
      assert.equal((await encounterFor('VN2026002601')).location[0].location.display, 'Ward 23 \u2013 Frailty Unit');
    });

    // HL7 table 0001 (administrative sex) has X, non-binary, beside M, F, O, U, A and N. A message giving it
    // was refused (AE), whatever it was about.
    it('a person whose sex is sent as X (non-binary, HL7 table 0001) is not refused', async () => {
      const admit = variant('a01-admit-second-spell', ['RX9-000201', 'RX9-022701'], ['VN2026000201', 'VN2026002701'], ['|19450923|M|', '|19450923|X|'], ['|2.4|', '|2.9|']);
      const reply = await send(admit, 'AA');
      assert.equal(segmentOf(reply, 'ERR'), undefined, `applied: ${errText(reply)}`);
      assert.equal((await encounterFor('VN2026002701')).subject.reference, `Patient/${patients.derek}`, 'by his NHS number');
    });

    // HL7 v2.2 and v2.3 feeds put the NHS number in PID-2 (patient ID, external), which later versions keep
    // for them. It was not read, so such a person was matched on demographics only, and held.
    it('an NHS number in PID-2, typed as one, is read as PID-3\'s would be; a bare PID-2 value is not an NHS number', async () => {
      const derek = (control: string, visit: string, external: string, ids = 'RX9M0067890^^^RX9^MR') => variant('a01-admit-second-spell', ['RX9-000201', control], ['VN2026000201', visit], ['|2.4|', '|2.3|'],
        [/PID\|[^\r]*/, `PID|1|${external}|${ids}||ASHWORTH^Derek^^^Mr||19450923|M|||3 Mill Lane^^Southby^Northshire^NX4 2LT^GBR`]);
      for (const [n, external] of [[1, '9991000038^^^NHS^NH'], [2, '9991000038^^^NHS'], [3, '999 100 0038^^^2.16.840.1.113883.2.1.4.1']] as const) {
        const reply = await send(derek(`RX9-022800${n}`, `VN20260228${n}`, external), 'AA');
        assert.equal(segmentOf(reply, 'ERR'), undefined, `${external}: applied, not held: ${errText(reply)}`);
        assert.equal((await encounterFor(`VN20260228${n}`)).subject.reference, `Patient/${patients.derek}`, `${external}: matched by his NHS number`);
      }
      const same = await send(derek('RX9-0228004', 'VN202602284', '9991000038^^^NHS^NH', '9991000038^^^NHS^NH~RX9M0067890^^^RX9^MR'), 'AA');
      assert.equal(segmentOf(same, 'ERR'), undefined, 'the same number in both is one number');

      const bare = await send(derek('RX9-0228005', 'VN202602285', '9991000038'), 'AA');
      assert.match(errText(bare), /held for a person .*no NHS number/, 'a bare PID-2 value is another system\'s number for him');
      const invalid = await send(derek('RX9-0228006', 'VN202602286', '9991000039^^^NHS^NH'), 'AE');
      assert.equal(segmentOf(invalid, 'ERR')?.[2], 'PID^^2', 'ERR-2 names PID-2');
      assert.match(errText(invalid), /PID-2 NHS number "9991000039" is not valid/);
      const disagreeing = await send(derek('RX9-0228007', 'VN202602287', '9991000011^^^NHS^NH', '9991000038^^^NHS^NH~RX9M0067890^^^RX9^MR'), 'AE');
      assert.match(errText(disagreeing), /PID-2 carries NHS number 9991000011 but PID-3 carries 9991000038/);
      for (const n of [5, 6, 7]) assert.equal(await encounterFor(`VN20260228${n}`), undefined);
    });

    // A held message's warning named PID-3 (ERR-2) whatever field its NHS number was read from, so the trust's
    // interface team, and the person resolving it, looked for the number where a v2.3 feed never sends it.
    it('a message held over an NHS number read from PID-2 names PID-2, in the warning and in the queue', async () => {
      const pid = (nhs: string, family: string, born: string) => `PID|1|${nhs}^^^NHS^NH|RX9M0067890^^^RX9^MR||${family}^Derek^^^Mr||${born}|M|||3 Mill Lane^^Southby^Northshire^NX4 2LT^GBR`;
      const v23 = (control: string, visit: string, pidSegment: string) => variant('a01-admit-second-spell', ['RX9-000201', control], ['VN2026000201', visit], ['|2.4|', '|2.3|'], [/PID\|[^\r]*/, pidSegment]);
      const reasonOf = async (visit: string) => (await listMessages(t.server.driver)).find((m) => m.visit === visit)?.reason;

      const unknown = await send(v23('RX9-023601', 'VN202602361', pid('9991000143', 'KENWORTHY', '19460101')), 'AA');
      assert.equal(segmentOf(unknown, 'ERR')?.[2], 'PID^^2', 'ERR-2 names PID-2');
      assert.match(errText(unknown), /no Patient has NHS number 9991000143 \(PID-2\)/);
      assert.match((await reasonOf('VN202602361')) ?? '', /NHS number 9991000143 \(PID-2\)/, 'the queue says where to look');
      const listed = await runCli(['hl7', 'queue', 'list', '--db', t.database]);
      assert.match(listed.stdout.split('\n').find((l) => l.includes('VN202602361')) ?? listed.stdout, /KENWORTHY, Derek; born 1946-01-01; M; NX4 2LT; NHS 9991000143 \(PID-2\)/, 'the person resolving it sees the number');

      const bornElse = await send(v23('RX9-023602', 'VN202602362', pid('9991000038', 'ASHWORTH', '19460923')), 'AA');
      assert.equal(segmentOf(bornElse, 'ERR')?.[2], 'PID^^2');
      assert.match(errText(bornElse), /NHS number 9991000038 \(PID-2\) is Patient\/[\w-]+, born 1945-09-23, but the message says born 1946-09-23/);

      await send(v23('RX9-023603', 'VN202602363', pid('9991000038', 'ASHWORTH', '19450923')), 'AA');
      const update = variant('a08-update', ['RX9-000103', 'RX9-023604'], ['VN2026000101', 'VN202602363'], ['|2.4|', '|2.3|'], [/PID\|[^\r]*/, pid('9413946000', 'ASHWORTH', '19450923')]);
      const another = await send(update, 'AA');
      assert.equal(segmentOf(another, 'ERR')?.[2], 'PID^^2');
      assert.match(errText(another), /the visit belongs to Patient\/[\w-]+ \(NHS number 9991000038\) but the message carries NHS number 9413946000 \(PID-2\)/);
      assert.match((await reasonOf('VN202602363')) ?? '', /carries NHS number 9413946000 \(PID-2\)/);
      const cli = await runCli(['hl7', 'queue', 'resolve', String((await listMessages(t.server.driver)).find((m) => m.visit === 'VN202602363')!.seq), '--patient', patients.derek, '--db', t.database]);
      assert.notEqual(cli.code, 0);
      assert.match(cli.stderr, /has NHS number 9991000038, but the message carries 9413946000 \(PID-2\)/, 'refused, naming PID-2');

      const fromPid3 = await send(variant('a01-admit', ['RX9-000101', 'RX9-023605'], ['VN2026000101', 'VN202602365'], ['9991000011^^^NHS^NH', '9991000151^^^NHS^NH']), 'AA');
      assert.equal(segmentOf(fromPid3, 'ERR')?.[2], 'PID^^3', 'a number read from PID-3 is still named PID-3');
      assert.match(errText(fromPid3), /no Patient has NHS number 9991000151 \(PID-3\)/);
    });

    // UK feeds say in PID-32 how far the NHS number was traced (NSTS01-08, or 01-08). It was not read, so a
    // person first recorded from the feed had no status, and CareBridge could not pass on that a number was
    // unverified, or verified.
    it('a new Patient made from a message keeps PID-32\'s NHS number status, as UK Core\'s extension; an unknown code or none gives none, and a Patient on file is not changed', async () => {
      const pid = (nhs: string, family: string, reliability: string) => `PID|1||${nhs}^^^NHS^NH||${family}^Ada||19400303|F|||2 Test Lane^^Northby^^NX6 2BB^GBR${'|'.repeat(21)}${reliability}`;
      const admit = (n: number, nhs: string, family: string, reliability: string) => variant('a01-admit', ['RX9-000101', `RX9-02290${n}`], ['VN2026000101', `VN20260229${n}`], [/PID\|[^\r]*/, pid(nhs, family, reliability)]);
      const cases = [[1, '9991000100', 'ONE', 'UD~NSTS01', '01'], [2, '9991000119', 'THREE', '03', '03'], [3, '9991000127', 'UNKNOWN', 'NSTS09', undefined], [4, '9991000135', 'NONE', '', undefined]] as const;
      const intake = hl7Intake({ driver: t.server.driver, facilities: {} });
      for (const [n, nhs, family, reliability, status] of cases) {
        assert.match(errText(await send(admit(n, nhs, family, reliability), 'AA')), new RegExp(`no Patient has NHS number ${nhs}`));
        const seq = (await listMessages(t.server.driver)).find((m) => m.visit === `VN20260229${n}`)!.seq;
        await resolveQueued(intake, t.server.driver, seq, { newPatient: true }, 'Ward clerk');
        const patient = (await t.fhir.get(`Patient?identifier=${encodeURIComponent(`${NHS}|${nhs}`)}`)).body.entry[0].resource;
        const identifier = patient.identifier.find((i: any) => i.system === NHS);
        const extension = identifier.extension?.find((e: any) => e.url === 'https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-NHSNumberVerificationStatus');
        assert.equal(extension?.valueCodeableConcept.coding[0].code, status, `PID-32 ${JSON.stringify(reliability)}`);
        if (status) assert.equal(extension.valueCodeableConcept.coding[0].system, 'https://fhir.hl7.org.uk/CodeSystem/UKCore-NHSNumberVerificationStatusEngland');
      }
      const margaret = (await t.fhir.get(`Patient/${patients.margaret}`)).body;
      await send(variant('a08-update', ['RX9-000103', 'RX9-022905'], [/(PID\|[^\r]*)/, `$1${'|'.repeat(19)}NSTS01`]), 'AA');
      assert.equal((await t.fhir.get(`Patient/${patients.margaret}`)).body.meta.versionId, margaret.meta.versionId, 'the feed does not raise the status of a Patient on file');
    });

    // PID-11 repeats, each address typed (XAD-7): home, mailing, business, temporary… The first was taken as
    // the home address whatever its type, so a person whose PAS listed a correspondence address first was
    // matched, or not, on its postcode, and a new Patient made with it as their home.
    it('the home address is the one PID-11 types H, or else one sent without a type; a mailing or temporary address is not', async () => {
      const edith = (control: string, visit: string, addresses: string) => variant('a01-admit', ['RX9-000101', control], ['VN2026000101', visit],
        [/PID\|[^\r]*/, `PID|1||RX9M0040001^^^RX9^MR||PEMBERTON^Edith||19330630|F|||${addresses}`]);
      const home = '1 Test Street^^Northby^^NX5 1EE^GBR';
      for (const [n, addresses] of [[1, `PO Box 12^^Northby^^NX9 9ZZ^GBR^M~${home}^H`], [2, `Northby Library^^Northby^^NX9 8YY^GBR^B~${home}`], [3, `${home}^H~5 Respite Lodge^^Northby^^NX9 7XX^GBR^C`]] as const) {
        const reply = await send(edith(`RX9-02300${n}`, `VN20260230${n}`, addresses), 'AA');
        assert.equal(segmentOf(reply, 'ERR'), undefined, `${addresses}: applied, not held: ${errText(reply)}`);
        assert.equal((await encounterFor(`VN20260230${n}`)).subject.reference, `Patient/${patients.edith}`);
      }
      const temporaryOnly = await send(edith('RX9-023004', 'VN202602304', '5 Respite Lodge^^Northby^^NX5 1EE^GBR^C'), 'AA');
      assert.match(errText(temporaryOnly), /too little to match on safely \(missing postcode\)/, 'a temporary address is not where she lives');

      const stranger = variant('a01-unknown-patient', ['RX9-000301', 'RX9-023005'], ['VN2026000301', 'VN202602305'],
        ['7 Quay Street^^Northby^Northshire^NX1 4QS^GBR', 'c/o Quay Solicitors^^Northby^^NX9 6WW^GBR^M~9 Quay Street^^Northby^Northshire^NX1 4QT^GBR^H']);
      assert.match(errText(await send(stranger, 'AA')), /held for a person/);
      const seq = (await listMessages(t.server.driver)).find((m) => m.visit === 'VN202602305')!.seq;
      const { resolved } = await resolveQueued(hl7Intake({ driver: t.server.driver, facilities: {} }), t.server.driver, seq, { newPatient: true }, 'Ward clerk');
      const patient = (await t.fhir.get(`Patient/${resolved.patientId}`)).body;
      assert.deepEqual(patient.address, [{ use: 'home', line: ['9 Quay Street'], city: 'Northby', district: 'Northshire', postalCode: 'NX1 4QT' }]);
    });

    // A family name (XPN.1, an FN) is a surname, then its prefix and a partner's surname after "&". It was read
    // whole, "&" and all, so the person was matched on no one's name, and a new Patient named with it.
    it('the family name is PID-5.1\'s surname, not its partner\'s; an escaped \\T\\ in it is the "&" it stands for', async () => {
      const edith = variant('a01-admit', ['RX9-000101', 'RX9-023101'], ['VN2026000101', 'VN202602311'],
        [/PID\|[^\r]*/, 'PID|1||RX9M0040001^^^RX9^MR||PEMBERTON&&&van&SMITH^Edith||19330630|F|||1 Test Street^^Northby^^NX5 1EE^GBR']);
      const reply = await send(edith, 'AA');
      assert.equal(segmentOf(reply, 'ERR'), undefined, `applied, not held: ${errText(reply)}`);
      assert.equal((await encounterFor('VN202602311')).subject.reference, `Patient/${patients.edith}`);

      const stranger = variant('a01-unknown-patient', ['RX9-000301', 'RX9-023102'], ['VN2026000301', 'VN202602312'], ["O'HALLORAN^Bridget", 'MARKS\\T\\SPENCER&de^Bridget']);
      await send(stranger, 'AA');
      const seq = (await listMessages(t.server.driver)).find((m) => m.visit === 'VN202602312')!.seq;
      const { resolved } = await resolveQueued(hl7Intake({ driver: t.server.driver, facilities: {} }), t.server.driver, seq, { newPatient: true }, 'Ward clerk');
      assert.equal((await t.fhir.get(`Patient/${resolved.patientId}`)).body.name[0].family, 'de MARKS&SPENCER', 'the surname after its prefix (FN.2)');
    });

    // FN.2 is the surname's own prefix: "Dijk&van" is the surname "van Dijk", which FHIR's HumanName.family holds
    // whole. Only FN.1 was read, so a person on file as "van Dijk" was held for a person instead of matched.
    it('a surname sent with its prefix apart (PID-5.1 "Dijk&van") is "van Dijk", and matches the person on file as that', async () => {
      const pieter = await t.fhir.post('Patient', {
        resourceType: 'Patient', meta: { security: HTEST }, name: [{ family: 'van Dijk', given: ['Pieter'] }], birthDate: '1939-07-14', gender: 'male',
        address: [{ line: ['4 Test Close'], city: 'Northby', postalCode: 'NX8 3DK' }],
      });
      assert.equal(pieter.status, 201);
      const admit = (control: string, visit: string, name: string) => variant('a01-admit', ['RX9-000101', control], ['VN2026000101', visit],
        [/PID\|[^\r]*/, `PID|1||RX9M0050001^^^RX9^MR||${name}||19390714|M|||4 Test Close^^Northby^^NX8 3DK^GBR`]);
      for (const [n, name] of [[1, 'DIJK&van^Pieter'], [2, 'VAN DIJK^Pieter'], [3, 'van Dijk&van^Pieter'], [4, 'Van-Dijk^Pieter']] as const) {
        const reply = await send(admit(`RX9-02350${n}`, `VN20260235${n}`, name), 'AA');
        assert.equal(segmentOf(reply, 'ERR'), undefined, `${name}: applied, not held: ${errText(reply)}`);
        assert.equal((await encounterFor(`VN20260235${n}`)).subject.reference, `Patient/${pieter.body.id}`, name);
      }
      const someoneElse = await send(admit('RX9-023505', 'VN202602355', 'DIJK^Pieter'), 'AA');
      assert.match(errText(someoneElse), /held for a person/, 'Dijk without the prefix is not the name on file');

      const stranger = variant('a01-unknown-patient', ['RX9-000301', 'RX9-023506'], ['VN2026000301', 'VN202602356'], ["O'HALLORAN^Bridget", 'HOUTEN&ten^Bridget']);
      await send(stranger, 'AA');
      assert.match((await listMessages(t.server.driver)).find((m) => m.visit === 'VN202602356')!.person, /^ten HOUTEN, Bridget; /, 'the queue shows the name matching used, not "HOUTEN&ten"');
      const seq = (await listMessages(t.server.driver)).find((m) => m.visit === 'VN202602356')!.seq;
      const { resolved } = await resolveQueued(hl7Intake({ driver: t.server.driver, facilities: {} }), t.server.driver, seq, { newPatient: true }, 'Ward clerk');
      assert.equal((await t.fhir.get(`Patient/${resolved.patientId}`)).body.name[0].family, 'ten HOUTEN', 'a new Patient has the whole surname');
    });

    // The record's search folds case and accents but not apostrophes, so a PAS that writes O'Brien as OBRIEN
    // found nobody on file as O'Brien, though the names compare equal: the message was held for a person.
    it('a surname sent without its apostrophe (OBRIEN) matches the person on file as O\'Brien, and two such people are not told apart', async () => {
      const siobhan = await t.fhir.post('Patient', {
        resourceType: 'Patient', meta: { security: HTEST }, name: [{ family: "O'Brien", given: ['Siobhan'] }], birthDate: '1937-03-17', gender: 'female',
        address: [{ line: ['9 Test Row'], city: 'Northby', postalCode: 'NX9 1OB' }],
      });
      assert.equal(siobhan.status, 201);
      const admit = (control: string, visit: string, name: string) => variant('a01-admit', ['RX9-000101', control], ['VN2026000101', visit],
        [/PID\|[^\r]*/, `PID|1||RX9M0060001^^^RX9^MR||${name}||19370317|F|||9 Test Row^^Northby^^NX9 1OB^GBR`]);
      const reply = await send(admit('RX9-023701', 'VN202602371', 'OBRIEN^Siobhan'), 'AA');
      assert.equal(segmentOf(reply, 'ERR'), undefined, `applied, not held: ${errText(reply)}`);
      assert.equal((await encounterFor('VN202602371')).subject.reference, `Patient/${siobhan.body.id}`);

      const twin = await t.fhir.post('Patient', {
        resourceType: 'Patient', meta: { security: HTEST }, name: [{ family: 'OBrien', given: ['Siobhan'] }], birthDate: '1937-03-17', gender: 'female',
        address: [{ line: ['9 Test Row'], city: 'Northby', postalCode: 'NX9 1OB' }],
      });
      assert.equal(twin.status, 201);
      const ambiguous = await send(admit('RX9-023702', 'VN202602372', 'OBRIEN^Siobhan'), 'AA');
      assert.match(errText(ambiguous), /2 Patients share these details/, 'two people with the same details: held, not guessed');
      assert.equal(await encounterFor('VN202602372'), undefined);
    });

    // PID-5 repeats, each name typed (XPN.7): legal, alias, maiden, nickname… The first was taken whatever its
    // type, so a person whose PAS listed an alias first was matched, or not, on the alias.
    it('the name is the one PID-5 types L, or else one sent without a type; an alias or maiden name is not', async () => {
      const edith = (control: string, visit: string, names: string) => variant('a01-admit', ['RX9-000101', control], ['VN2026000101', visit],
        [/PID\|[^\r]*/, `PID|1||RX9M0040001^^^RX9^MR||${names}||19330630|F|||1 Test Street^^Northby^^NX5 1EE^GBR`]);
      for (const [n, names] of [[1, 'WRIGHT^Peggy^^^^^A~PEMBERTON^Edith^^^^^L'], [2, 'HOLT^Edith^^^^^M~PEMBERTON^Edith']] as const) {
        const reply = await send(edith(`RX9-02340${n}`, `VN20260240${n}`, names), 'AA');
        assert.equal(segmentOf(reply, 'ERR'), undefined, `${names}: applied, not held: ${errText(reply)}`);
        assert.equal((await encounterFor(`VN20260240${n}`)).subject.reference, `Patient/${patients.edith}`);
      }
      const maidenOnly = await send(edith('RX9-023403', 'VN202602403', 'HOLT^Edith^^^^^M'), 'AA');
      assert.match(errText(maidenOnly), /held for a person|too little to match/, 'a maiden name is not the name she goes by');
    });

    // \.br\ is HL7's line break for formatted text; a PAS that wraps a long ward name sends it in PV1-3. The
    // ward was named with a line break in it, split on every list and label.
    it('a ward name sent with a formatted line break (\\.br\\) is one line', async () => {
      const admit = variant('a01-admit-second-spell', ['RX9-000201', 'RX9-023201'], ['VN2026000201', 'VN202602321'],
        ['WARD21^^^RX901^^^^^Ward 21 Respiratory Medicine', 'WARD30^^^RX901^^^^^Ward 30\\.br\\Frailty Assessment Unit']);
      await send(admit, 'AA');
      const ward = (await encounterFor('VN202602321')).location[0].location;
      assert.equal(ward.display, 'Ward 30 Frailty Assessment Unit');
      assert.equal((await t.fhir.get(ward.reference)).body.name, 'Ward 30 Frailty Assessment Unit');
    });

    // 01:00-01:59 on the last Sunday of October happens twice in the UK. A time in that hour sent without an
    // offset was read as GMT, the later of the two: a discharge could be recorded as up to an hour after it
    // happened (H-057).
    it('a discharge in the hour the clocks go back, sent without an offset, is read as summer time, the earlier instant (H-057)', async () => {
      const visit = 'VN202602331';
      const admit = variant('a01-admit-second-spell', ['RX9-000201', 'RX9-023301'], ['VN2026000201', visit], [/20260320080000/g, '20261025004500'], [/20260320075500/g, '20261025004000']);
      await send(admit, 'AA');
      const discharge = variant('a01-admit-second-spell', ['RX9-000201', 'RX9-023302'], ['VN2026000201', visit], ['ADT^A01^ADT_A01', 'ADT^A03^ADT_A03'],
        [/^EVN\|[^\r]*/m, 'EVN|A03|20261025013000|||DCO01^Patel^Anita|20261025012000'], [/20260320080000/, '20261025013000'], [/\|20260320075500$/, '|20261025004000|20261025012000']);
      await send(discharge, 'AA');
      const stay = await encounterFor(visit);
      assert.equal(stay.status, 'finished');
      assert.deepEqual(stay.period, { start: '2026-10-25T00:40:00+01:00', end: '2026-10-25T01:20:00+01:00' });
      assert.equal(stay.location[0].period.end, '2026-10-25T01:20:00+01:00');
    });

    // A08 (update patient information) changed only the stay, so a person's new address or name at the trust
    // never reached the shared record. It now updates the Patient, but only one matched by the message's NHS
    // number, with the same birth date, and only from a message the PAS recorded after the Patient last changed.
    describe('an A08 updates the Patient it is certainly about (H-058)', () => {
      /** An HL7 time `minutes` from now, with its offset, so the PAS recorded it after the Patient last changed. */
      const fromNow = (minutes: number) => `${new Date(Date.now() + minutes * 60_000).toISOString().replace(/[-:T]/g, '').slice(0, 14)}+0000`;
      const pid = (p: { nhs?: string; name: string; born?: string; address: string; phone?: string; reliability?: string }) =>
        `PID|1||${p.nhs ? `${p.nhs}^^^NHS^NH~` : ''}RX9M0058001^^^RX9^MR||${p.name}||${p.born ?? ''}|F|||${p.address}||${p.phone ?? ''}${'|'.repeat(19)}${p.reliability ?? ''}`;
      /** An A08 for `visit`, recorded by the PAS at `at` (MSH-7, EVN-2 and EVN-6 alike). */
      const update = (control: string, visit: string, at: string, pidSegment: string) =>
        variant('a08-update', ['RX9-000103', control], ['VN2026000101', visit], [/20260313120[05]00/g, at], [/PID\|[^\r]*/, pidSegment]);
      const reasonOf = async (control: string) => (await listMessages(t.server.driver, 'applied')).find((m) => m.controlId === control)?.reason ?? '';
      const newPatient = async (nhs: string | undefined, family: string) => {
        const res = await t.fhir.post('Patient', {
          resourceType: 'Patient', meta: { security: HTEST }, ...(nhs ? { identifier: [{ system: NHS, value: nhs }] } : {}),
          name: [{ family, given: ['Irene'] }], birthDate: '1936-05-05', gender: 'female', address: [{ line: ['8 Old Road'], city: 'Northby', postalCode: 'NX6 4AB' }],
        });
        assert.equal(res.status, 201, JSON.stringify(res.body));
        return res.body;
      };
      const irene = { nhs: '9991000178', name: 'WHITCOMBE^Irene', born: '19360505' };
      const newHome = '21 New Street^^Northby^Northshire^NX6 9ZZ^GBR^H';

      it('an A08 with a new home address and phone updates the Patient, audited, its old version in _history; the same A08 again makes no second version', async () => {
        const before = await newPatient(irene.nhs, 'Whitcombe');
        await send(variant('a01-admit', ['RX9-000101', 'RX9-025801'], ['VN2026000101', 'VN202602581'], [/PID\|[^\r]*/, pid({ ...irene, address: '8 Old Road^^Northby^^NX6 4AB^GBR' })]), 'AA');
        assert.equal((await t.fhir.get(`Patient/${before.id}`)).body.meta.versionId, before.meta.versionId, 'an admission does not change the Patient');

        const moved = await send(update('RX9-025802', 'VN202602581', fromNow(1), pid({ ...irene, address: newHome, phone: '01632 960777^PRN^PH' })), 'AA');
        assert.equal(segmentOf(moved, 'ERR'), undefined, errText(moved));
        const after = (await t.fhir.get(`Patient/${before.id}`)).body;
        assert.deepEqual(after.address, [{ line: ['21 New Street'], city: 'Northby', district: 'Northshire', postalCode: 'NX6 9ZZ' }]);
        assert.deepEqual(after.telecom, [{ system: 'phone', value: '01632 960777', use: 'home' }]);
        assert.deepEqual(after.name, before.name, 'the name sent in capitals is the same name: not rewritten');
        assert.deepEqual([after.identifier, after.birthDate, after.gender], [before.identifier, before.birthDate, before.gender]);
        assert.match(await reasonOf('RX9-025802'), /^patient matched by visit number \(Encounter\/[\w-]+\); the Patient's home address, home phone updated$/);
        const history = (await t.fhir.get(`Patient/${before.id}/_history`)).body.entry.map((e: any) => e.resource);
        assert.equal(history.length, 2, 'one new version');
        assert.deepEqual(history.find((v: any) => v.meta.versionId === before.meta.versionId)?.address, before.address, 'the old address is in the history');

        const again = await send(update('RX9-025803', 'VN202602581', fromNow(2), pid({ ...irene, address: newHome.replace('21 New Street', '21 NEW STREET'), phone: '01632960777' })), 'AA');
        assert.equal(segmentOf(again, 'ERR'), undefined, errText(again));
        assert.equal((await t.fhir.get(`Patient/${before.id}`)).body.meta.versionId, after.meta.versionId, 'the same details again make no new version');
        assert.equal((await t.fhir.get(`Patient/${before.id}/_history`)).body.entry.length, 2);
        assert.match(await reasonOf('RX9-025803'), /details already as sent/);

        await send(update('RX9-025804', 'VN202602581', fromNow(3), pid({ ...irene, name: 'HALE^Irene', address: newHome })), 'AA');
        assert.equal((await t.fhir.get(`Patient/${before.id}`)).body.name[0].family, 'HALE', 'a new surname');
        assert.equal((await encounterFor('VN202602581')).subject.display, 'Irene HALE', 'the stay shows it');

        // Writes of the Patient itself, not of her stay (whose entries name her too).
        const patientWrites = (events: any[]) => events.filter((e: any) => e.action === 'U' && e.agent[0].who.identifier?.value === 'carebridge-hl7v2'
          && e.entity.every((x: any) => !x.what || x.what.reference === `Patient/${before.id}`));
        const writes = patientWrites(await waitForAudit(t.fhir, `entity=Patient/${before.id}`, (events) => patientWrites(events).length >= 2));
        assert.equal(writes.length, 2, 'each update audited as the HL7 v2 feed\'s');
      });

      it('an A08 matched on demographics only, or whose NHS number PID-32 says is not verified, or without the birth date, or recorded before the Patient last changed, changes no Patient', async () => {
        const edith = (await t.fhir.get(`Patient/${patients.edith}`)).body;
        const byDemographics = await send(update('RX9-025901', 'VN202602591', fromNow(1), pid({ name: 'PEMBERTON^Edith', born: '19330630', address: '3 Test Street^^Northby^^NX5 1EE^GBR', phone: '01632 960888' })), 'AA');
        assert.equal(segmentOf(byDemographics, 'ERR'), undefined, `applied to her stay: ${errText(byDemographics)}`);
        assert.equal((await encounterFor('VN202602591')).subject.reference, `Patient/${patients.edith}`);
        assert.equal((await t.fhir.get(`Patient/${patients.edith}`)).body.meta.versionId, edith.meta.versionId, 'a demographic match never changes the Patient');
        assert.match(await reasonOf('RX9-025901'), /details left as they are: the message carries no NHS number/);

        const ruth = await newPatient('9991000186', 'Marlow');
        const ruthPid = { nhs: '9991000186', name: 'MARLOW^Irene', born: '19360505', address: newHome };
        const cases = [
          ['RX9-025902', fromNow(1), pid({ ...ruthPid, reliability: 'NSTS03' }), /PID-32 says the NHS number is not verified \(status 03\)/],
          ['RX9-025903', fromNow(1), pid({ ...ruthPid, born: undefined }), /does not give the Patient's birth date/],
          ['RX9-025904', '20260313120500', pid(ruthPid), /recorded the message \(2026-03-13T12:05:00\+00:00\) before the Patient last changed/],
        ] as const;
        for (const [control, at, pidSegment, why] of cases) {
          const reply = await send(update(control, 'VN202602592', at, pidSegment), 'AA');
          assert.equal(segmentOf(reply, 'ERR'), undefined, `${control} applied to the stay: ${errText(reply)}`);
          assert.match(await reasonOf(control), why);
        }
        assert.equal((await t.fhir.get(`Patient/${ruth.id}`)).body.meta.versionId, ruth.meta.versionId, 'none of them changed her');
        await send(update('RX9-025905', 'VN202602592', fromNow(1), pid({ ...ruthPid, reliability: 'NSTS01' })), 'AA');
        assert.equal((await t.fhir.get(`Patient/${ruth.id}`)).body.address[0].postalCode, 'NX6 9ZZ', 'a verified number (01) may');
      });
    });

    it('the feed writes as the HL7 v2 system client, so each change is in the audit trail', async () => {
      const enc = await encounterFor('VN2026000101');
      const deadline = Date.now() + 10_000;
      let events: any[] = [];
      while (Date.now() < deadline) {
        const res = await t.fhir.get(`AuditEvent?entity=Encounter/${enc.id}&_count=100`);
        // Writes naming this Encounter: the feed's own, and discharge reacting to the stay (it reads the Encounter).
        events = (res.body.entry ?? []).map((e: any) => e.resource).filter((e: any) => (e.action === 'U' || e.action === 'C') && JSON.stringify(e.agent).includes('carebridge-hl7v2'));
        if (events.length >= 5) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.ok(events.length >= 5, `audited writes: ${events.length}`);
      assert.ok(events.every((e) => e.agent[0].who.identifier.value === 'carebridge-hl7v2' && e.agent[0].requestor), 'each written by the HL7 v2 feed, as a system client');
    });
  });
}
