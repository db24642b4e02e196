// HL7 v2 values CareBridge reads itself: date/times (wall-clock UK time without an offset), escape
// sequences, and the listener's configuration.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { escapeHl7, hl7DateTime, unescapeHl7 } from '../../src/hl7v2/hl7Text.ts';
import { loadHl7Config } from '../../src/config.ts';

describe('HL7 v2 date/times', () => {
  it('reads a time without an offset as UK wall-clock time, in winter and in summer', () => {
    assert.equal(hl7DateTime('20260310143000'), '2026-03-10T14:30:00+00:00');
    assert.equal(hl7DateTime('20260701100000'), '2026-07-01T10:00:00+01:00');
    assert.equal(hl7DateTime('202607011000'), '2026-07-01T10:00:00+01:00');
    // The hour after the clocks go forward (29 March 2026, 01:00 GMT) is summer time.
    assert.equal(hl7DateTime('20260329023000'), '2026-03-29T02:30:00+01:00');
    assert.equal(hl7DateTime('20261025120000'), '2026-10-25T12:00:00+00:00');
  });

  // Hazard H-057: a wall-clock time the UK clock change makes ambiguous, or skips, is read as summer time.
  it('reads a time in the hour the clocks go back, which happens twice, as summer time: the earlier instant', () => {
    assert.equal(hl7DateTime('20261025005959'), '2026-10-25T00:59:59+01:00');
    assert.equal(hl7DateTime('20261025010000'), '2026-10-25T01:00:00+01:00');
    assert.equal(hl7DateTime('20261025013000'), '2026-10-25T01:30:00+01:00');
    assert.equal(hl7DateTime('202610250159'), '2026-10-25T01:59:00+01:00');
    assert.equal(hl7DateTime('20261025020000'), '2026-10-25T02:00:00+00:00', 'from 02:00 there is only GMT');
    assert.equal(hl7DateTime('20251026013000'), '2025-10-26T01:30:00+01:00', 'every year, on the last Sunday of October');
    assert.equal(hl7DateTime('20261025013000+0000'), '2026-10-25T01:30:00+00:00', 'an offset sent settles it');
  });

  it('reads a time in the hour the clocks go forward, which never happens, as summer time too: 01:30 is 00:30 GMT', () => {
    assert.equal(hl7DateTime('20260329005959'), '2026-03-29T00:59:59+00:00');
    assert.equal(hl7DateTime('20260329010000'), '2026-03-29T01:00:00+01:00');
    assert.equal(hl7DateTime('20260329013000'), '2026-03-29T01:30:00+01:00');
    assert.equal(Date.parse(hl7DateTime('20260329013000')!), Date.parse('2026-03-29T00:30:00Z'));
  });

  it('keeps an offset that is sent, and a date alone stays a date', () => {
    assert.equal(hl7DateTime('20260701100000+0100'), '2026-07-01T10:00:00+01:00');
    assert.equal(hl7DateTime('20260701100000-0000'), '2026-07-01T10:00:00+00:00');
    assert.equal(hl7DateTime('20260701100000.1234+0000'), '2026-07-01T10:00:00+00:00');
    assert.equal(hl7DateTime('20260317'), '2026-03-17');
    assert.equal(hl7DateTime('202603'), '2026-03');
  });

  it('refuses what is not a real date or time', () => {
    for (const bad of ['20261345', '20260230', '20260310250000', '20260310146000', '2026-03-10', 'soon', '', '20260310143000+2500']) {
      assert.equal(hl7DateTime(bad), undefined, bad);
    }
  });
});

describe('HL7 v2 escape sequences', () => {
  it('reads escaped delimiters and hex back into text', () => {
    assert.equal(unescapeHl7('O\\S\\Brien \\F\\ \\T\\ \\R\\ \\E\\'), 'O^Brien | & ~ \\');
    assert.equal(unescapeHl7('caf\\XE9\\'), 'café');
    assert.equal(unescapeHl7('caf\\XC3A9\\'), 'café', 'the bytes of é in UTF-8, as a UTF-8 feed escapes it');
    assert.equal(unescapeHl7('O\\X92\\Brien'), 'O\u2019Brien', 'a Windows-1252 apostrophe');
    assert.equal(unescapeHl7('\\H\\bold\\N\\'), 'bold');
    assert.equal(unescapeHl7('Ward 30\\.br\\Frailty Unit'), 'Ward 30\nFrailty Unit');
    assert.equal(unescapeHl7('a\\.sp2\\b\\.ce\\c\\.in+4\\d\\.ti-2\\e\\.sk3\\f\\.fi\\\\.nf\\'), 'a\nb\ncde f', 'formatting commands are layout, not text');
    assert.equal(unescapeHl7('C:\\E\\.br\\x'), 'C:\\.br\\x', 'an escaped backslash before .br is text');
  });

  it('escapes reply text so it cannot break the reply apart', () => {
    const text = 'a|b^c&d~e\\f\rg';
    const escaped = escapeHl7(text);
    assert.doesNotMatch(escaped, /[|^&~\r]/);
    assert.equal(unescapeHl7(escaped), 'a|b^c&d~e\\f g');
  });
});

describe('HL7 v2 listener configuration', () => {
  it('is off unless CAREBRIDGE_HL7_PORT is set', () => {
    assert.equal(loadHl7Config({}), undefined);
    assert.deepEqual(loadHl7Config({ CAREBRIDGE_HL7_PORT: '2575', CAREBRIDGE_HL7_FACILITIES: 'Northshire General=rx9, NORTHPAS=RX9' }), {
      port: 2575,
      facilities: { 'Northshire General': 'RX9', NORTHPAS: 'RX9' },
      maxMessageBytes: 1024 * 1024,
    });
  });

  it('says plainly what is wrong with a setting', () => {
    assert.throws(() => loadHl7Config({ CAREBRIDGE_HL7_PORT: '70000' }), /CAREBRIDGE_HL7_PORT must be a whole number from 0 to 65535, not '70000'/);
    assert.throws(() => loadHl7Config({ CAREBRIDGE_HL7_PORT: '2575', CAREBRIDGE_HL7_FACILITIES: 'CITYGEN' }), /FACILITY=ODS pairs .* not 'CITYGEN'/);
    assert.throws(() => loadHl7Config({ CAREBRIDGE_HL7_PORT: '2575', CAREBRIDGE_HL7_MAX_MESSAGE_KB: '0' }), /CAREBRIDGE_HL7_MAX_MESSAGE_KB must be/);
  });
});
