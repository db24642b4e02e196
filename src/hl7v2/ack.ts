// The acknowledgement (original mode) CareBridge sends for every message: MSA with the code and the
// message's control id, and an ERR segment naming the field and reason whenever there is something to say.
import { randomUUID } from 'node:crypto';
import { Hl7Message, Hl7Segment } from '@medplum/core';
import { HL7_ERROR_CODES, type Hl7Header, type Hl7Problem } from './adtMessage.ts';
import { escapeHl7, hl7Now } from './hl7Text.ts';

export type AckCode = 'AA' | 'AE' | 'AR';

export interface AckNote {
  /** E: the reason for an AE/AR; W: a warning carried on an AA (e.g. held for a person to match). */
  severity: 'E' | 'W';
  problem: Omit<Hl7Problem, 'ack'>;
}

export function buildAck(header: Partial<Hl7Header>, code: AckCode, note?: AckNote): string {
  const text = note?.problem.text;
  const segments = [
    new Hl7Segment([
      'MSH',
      '^~\\&',
      'CAREBRIDGE',
      escapeHl7(header.receivingFacility || 'CAREBRIDGE'),
      escapeHl7(header.sendingApplication ?? ''),
      escapeHl7(header.sendingFacility ?? ''),
      hl7Now(),
      '',
      header.trigger && /^[A-Z0-9]{3}$/.test(header.trigger) ? `ACK^${header.trigger}^ACK` : 'ACK',
      randomUUID().replace(/-/g, '').slice(0, 20),
      header.processingId && /^[PTD]$/.test(header.processingId) ? header.processingId : 'P',
      header.version && /^2\.\d(\.\d)?$/.test(header.version) ? header.version : '2.4',
    ]),
    new Hl7Segment(['MSA', code, escapeHl7(header.controlId ?? ''), text ? escapeHl7(text) : code === 'AA' ? 'Message applied' : '']),
  ];
  if (note) {
    const { problem } = note;
    segments.push(new Hl7Segment([
      'ERR',
      errorCodeAndLocation(problem),
      problem.location ? escapeHl7(problem.location).replace(/-/g, '^^') : '',
      `${problem.code}^${HL7_ERROR_CODES[problem.code]}^HL70357`,
      note.severity,
      '',
      '',
      '',
      escapeHl7(problem.text),
    ]));
  }
  // Every segment ends with a carriage return in HL7 v2, the last one too; a strict PAS reads no less.
  return `${new Hl7Message(segments).toString()}\r`;
}

/**
 * ERR-1 (error code and location, ELD), the only ERR field before v2.5: "PV1^1^45^101&Required field
 * missing&HL70357". Sent alongside v2.5's ERR-2/3/4/8 (which keep ERR-1 for backward compatibility), since
 * the reply carries the sender's own version and a v2.3 or v2.4 PAS reads nothing else.
 */
function errorCodeAndLocation(problem: Omit<Hl7Problem, 'ack'>): string {
  const [segment = '', field = ''] = (problem.location ?? '').split('-');
  const code = `${problem.code}&${HL7_ERROR_CODES[problem.code]}&HL70357`;
  return [escapeHl7(segment), segment ? '1' : '', escapeHl7(field), code].join('^');
}
