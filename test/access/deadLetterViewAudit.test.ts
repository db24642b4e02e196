// The people a view of the MESH dead-letter queue showed, as its AuditEvent names them: the valid NHS
// numbers in the text shown (ten digits, or 3 3 4 with spaces; a good check digit), and the view's patients
// as the trail packs, stores and indexes them (P|<id>, as every AuditEvent about a person), never the text.
// No database here: the lookup of Patients by NHS number, and each viewing path, are tested over HTTP and
// the command line (test/messaging/deadLetterAudit.test.ts, test/portal/deadLetters.test.ts, test/cli/mesh.test.ts).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { generateSyntheticNhsNumber } from '../../src/record/index.ts';
import { deadLetterViewRequest, nhsNumbersIn, type DeadLetterView } from '../../src/access/deadLetterViewAudit.ts';
import { entryValuesFor, journalEntryFor, SharedParts } from '../../src/access/audit/auditEvent.ts';
import { PackedRequests, decodeBatch, eventCount } from '../../src/access/audit/batchMessage.ts';
import { entryKeys } from '../../src/access/audit/batchJournal.ts';

let seed = 7;
const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
const numbers = new Set<string>();
while (numbers.size < 2) numbers.add(generateSyntheticNhsNumber(random));
const [one, two] = [...numbers];
const spaced = (n: string) => `${n.slice(0, 3)} ${n.slice(3, 6)} ${n.slice(6)}`;
const hyphened = (n: string) => `${n.slice(0, 3)}-${n.slice(3, 6)}-${n.slice(6)}`;
const wrongCheckDigit = (n: string) => n.slice(0, 9) + ((Number(n[9]) + 1) % 10);

const admin = { kind: 'user', userId: 'u-admin', name: 'Ada Admin', role: 'admin', purpose: 'HSYSADMIN', scope: 'user/*.cruds' } as const;
const view = (extra: Partial<DeadLetterView> = {}): DeadLetterView => ({ path: '/admin/dead-letters', query: 'page=1', shown: 'page 1 of 1, dead letters 1 to 2 of 2', messageIds: ['M1', 'M2'], ok: true, ...extra });

describe('NHS numbers in the text a dead-letter view showed', () => {
  it('finds valid ones, unspaced or 3 3 4 with spaces or hyphens, each once, as ten digits', () => {
    assert.deepEqual(nhsNumbersIn([`The Patient's NHS number ${spaced(one)} is not the one the referral names.`, `no Patient here has NHS number ${two}`, `${one} again`]), [one, two]);
    assert.deepEqual(nhsNumbersIn([`(NHS:${two})`, `nhs=${spaced(two)};`]), [two], 'beside punctuation and letters');
    assert.deepEqual(nhsNumbersIn([`NHS number ${hyphened(two)} not found`]), [two], 'written with hyphens, as some systems do');
  });

  it('finds nothing in a wrong check digit, a longer run of digits, mixed separators or other groupings', () => {
    assert.deepEqual(nhsNumbersIn([`The Patient's NHS number ${wrongCheckDigit(one)} is not valid (wrong length or check digit).`]), []);
    assert.deepEqual(nhsNumbersIn([`1${one}`, `${one}2`, `${one.slice(0, 5)} ${one.slice(5)}`, `${one.slice(0, 3)} ${one.slice(3, 6)}-${one.slice(6)}`, `20260529155357${one}`]), []);
    assert.deepEqual(nhsNumbersIn(['', 'No handler is registered for workflow id NOBODY.']), []);
  });
});

describe('the people a dead-letter view names', () => {
  it('are its patients, as every AuditEvent names them, filed under each (P|<id>), after the trail packs the view', () => {
    const request = deadLetterViewRequest(Date.parse('2026-05-01T10:00:00Z'), '10.0.0.1', view({ patientIds: ['pat-1', 'pat-2', 'pat-1'] }), admin);
    const packed = new PackedRequests();
    packed.push(request);
    const [decoded] = decodeBatch(packed.message(1));
    assert.deepEqual(decoded.deadLetterView?.patientIds, ['pat-1', 'pat-2'], 'each once, through the packed bytes');
    assert.equal(eventCount(decoded), 4, 'two dead letters and two people: one index row each');
    const values = entryValuesFor(decoded, 'node-1');
    assert.deepEqual(values.patients, ['pat-1', 'pat-2']);
    const keys = entryKeys(values);
    assert.ok(keys.has('P|pat-1') && keys.has('P|pat-2'), 'filed under each person');
    const event = JSON.parse(`{"resourceType":"AuditEvent","id":"1${journalEntryFor(decoded, new SharedParts('node-1')).tail}`);
    assert.deepEqual(event.entity.slice(0, 2).map((e: any) => [e.what.reference, e.type.code, e.role.code, e.role.display]), [
      ['Patient/pat-1', '1', '1', 'Patient'],
      ['Patient/pat-2', '1', '1', 'Patient'],
    ]);
    assert.deepEqual(event.entity.slice(2).map((e: any) => e.name), ['MESH dead-letter queue', 'M1', 'M2'], 'then the queue and the dead letters, as before');
  });

  it('are nobody for a refused view, and the view keeps nothing it was not meant to', () => {
    const refused = deadLetterViewRequest(0, undefined, view({ ok: false, messageIds: [], reason: 'These pages are for administrators.', patientIds: ['pat-1'] }), admin);
    assert.deepEqual(entryValuesFor(refused, 'node-1').patients, [], 'a refused view showed nothing');
    const withText = { ...view({ patientIds: ['pat-1'] }), shownText: [`NHS number ${one}`] } as DeadLetterView;
    const packed = new PackedRequests();
    packed.push(deadLetterViewRequest(0, undefined, withText, admin));
    const bytes = Buffer.from(packed.message(1).bytes).toString('utf8');
    assert.ok(bytes.includes('pat-1') && !bytes.includes(one), 'only the view\'s own fields are stored, never the text shown');
  });
});
