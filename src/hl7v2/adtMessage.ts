// Reads one ADT message (text of one MLLP frame) into what CareBridge acts on, or says precisely why it
// cannot: the reply code (AR: malformed or unsupported; AE: well-formed but its content is wrong), the HL7
// error code (table 0357), the field it is about, and a sentence for the sender's interface team.
import { Hl7Message, type Hl7Segment } from '@medplum/core';
import { isValidNhsNumber, NHS_NUMBER_VERIFICATION_STATUSES } from '../record/index.ts';
import { ENCODING_CHARACTERS, FIELD_SEPARATOR, SUBCOMPONENT_SEPARATOR, TRUNCATION_CHARACTER, hl7DateTime, unescapeHl7 } from './hl7Text.ts';

export const SUPPORTED_TRIGGERS = ['A01', 'A02', 'A03', 'A08', 'A11', 'A13'] as const;
export type AdtTrigger = (typeof SUPPORTED_TRIGGERS)[number];

/** What a reply says went wrong: MSA-1 code, ERR-3 (HL7 table 0357), ERR-2 location, ERR-7 text. */
export interface Hl7Problem {
  ack: 'AR' | 'AE';
  code: Hl7ErrorCode;
  /** Segment and field, e.g. "PV1-19". */
  location?: string;
  text: string;
}

export const HL7_ERROR_CODES = {
  100: 'Segment sequence error',
  101: 'Required field missing',
  102: 'Data type error',
  103: 'Table value not found',
  200: 'Unsupported message type',
  201: 'Unsupported event code',
  202: 'Unsupported processing id',
  203: 'Unsupported version id',
  204: 'Unknown key identifier',
  205: 'Duplicate key identifier',
  207: 'Application internal error',
} as const;
export type Hl7ErrorCode = keyof typeof HL7_ERROR_CODES;

export class Hl7Rejection extends Error {
  constructor(readonly problem: Hl7Problem) {
    super(problem.text);
  }
}

function reject(ack: 'AR' | 'AE', code: Hl7ErrorCode, location: string | undefined, text: string): never {
  throw new Hl7Rejection({ ack, code, location, text });
}

/** The header fields a reply echoes; as much of it as could be read, even from a message that is refused. */
export interface Hl7Header {
  sendingApplication: string;
  sendingFacility: string;
  receivingApplication: string;
  receivingFacility: string;
  controlId: string;
  /** MSH-9 as sent, e.g. ADT^A01^ADT_A01. */
  messageType: string;
  trigger: string;
  processingId: string;
  version: string;
}

export interface PidPerson {
  /** A valid NHS number from PID-3 (^^^NHS^NH), or else from PID-2, if the message carries one. */
  nhsNumber?: string;
  /** Where the NHS number was read, for the reasons a person is shown: PID-3, or PID-2 when only it carries one. */
  nhsNumberField?: 'PID-2' | 'PID-3';
  /** How far the NHS number has been traced (PID-32), as UK Core's verification status code, when the message says. */
  nhsNumberVerification?: string;
  /** Hospital numbers from PID-3 (type MR/PI), with the assigning authority as sent. */
  localIds: { value: string; authority: string }[];
  /** The whole surname, its own prefix included ("van Dijk"). */
  family?: string;
  given?: string;
  /** YYYY-MM-DD */
  birthDate?: string;
  gender?: 'male' | 'female' | 'other' | 'unknown';
  postcode?: string;
  address?: { lines: string[]; city?: string; district?: string; postcode?: string };
  /** The home telephone number from PID-13, as sent. */
  homePhone?: string;
}

/** A location from PV1-3 (PL): point of care (ward), room, bed, facility (site), description. */
export interface WardLocation {
  ward: string;
  room?: string;
  bed?: string;
  site?: string;
  description?: string;
}

/** Empty field: leave as it is; "" (HL7's explicit null): remove; otherwise the new value. */
export type Update<T> = T | null | undefined;

export interface AdtEvent {
  header: Hl7Header;
  trigger: AdtTrigger;
  /** EVN-6 (when it happened) or EVN-2 (when recorded) or MSH-7: when a transfer or change took effect. */
  eventTime: string;
  /**
   * EVN-2 (when the PAS recorded the event) or MSH-7 (or, lacking both, EVN-6): the order of the PAS's own
   * changes. The values a message carries (PV1-2, PV2-9…) are the PAS's as they stood then, whatever EVN-6
   * says (hazard H-047).
   */
  recordedTime: string;
  person: PidPerson;
  visit: {
    /** PV1-19 */
    visitNumber: string;
    /** PV1-2 */
    patientClass?: string;
    /** PV1-3 */
    location?: WardLocation;
    /** PV1-44 */
    admitTime?: string;
    /** PV1-45 */
    dischargeTime?: string;
    /** PV1-37 (discharged to location), the UK discharge destination code. */
    dischargeDestination?: { code: string; text?: string };
    /** PV2-9 */
    expectedDischarge: Update<string>;
  };
}

/** Reads as much of MSH as there is; never throws. */
export function readHeader(text: string): Partial<Hl7Header> {
  if (!text.startsWith('MSH') || text.length < 9) return {};
  const sep = text[3];
  const fields = text.split(/[\r\n]/, 1)[0].split(sep);
  const component = (f: string | undefined, i: number) => (f ?? '').split(text[4] ?? '^')[i] ?? '';
  // fields[0] is "MSH" and fields[1] the encoding characters, so MSH-n is fields[n - 1].
  return {
    sendingApplication: fields[2] ?? '',
    sendingFacility: fields[3] ?? '',
    receivingApplication: fields[4] ?? '',
    receivingFacility: fields[5] ?? '',
    messageType: fields[8] ?? '',
    trigger: component(fields[8], 1),
    controlId: fields[9] ?? '',
    processingId: component(fields[10], 0),
    version: component(fields[11], 0),
  };
}

export function parseAdt(text: string): AdtEvent {
  if (!text.startsWith('MSH')) reject('AR', 100, 'MSH', 'The message does not begin with an MSH segment.');
  if (!hasStandardEncoding(text)) {
    reject('AR', 102, 'MSH-2', `MSH-1 and MSH-2 must be the standard encoding characters |^~\\& (or, from v2.7, |^~\\&#) (sent: ${JSON.stringify(text.slice(3, 9))}).`);
  }
  // HL7 v2 ends every segment with a carriage return, the last one too (some senders use CR LF): what
  // follows the last terminator is not a segment.
  const message = Hl7Message.parse(text.replace(/[\r\n]+$/, ''));
  message.segments.forEach((s, i) => {
    if (!/^[A-Z][A-Z0-9]{2}$/.test(s.name)) reject('AR', 100, `segment ${i + 1}`, `Segment ${i + 1} (${JSON.stringify(s.name.slice(0, 10))}) is not an HL7 segment: segments are separated by carriage returns and begin with a three-letter name.`);
  });
  const msh = message.header;
  const header = readHeaderFrom(msh);
  if (!header.controlId) reject('AR', 101, 'MSH-10', 'MSH-10 (message control id) is empty; every message needs one so a repeat can be recognised.');
  if (header.controlId.length > 199) reject('AR', 102, 'MSH-10', 'MSH-10 (message control id) is longer than 199 characters.');
  if (!header.sendingFacility) reject('AR', 101, 'MSH-4', 'MSH-4 (sending facility) is empty; CareBridge needs it to know which organisation sent the message.');
  if (!/^2\.[3-9](\.\d)?$/.test(header.version)) reject('AR', 203, 'MSH-12', `MSH-12 version ${JSON.stringify(header.version)} is not supported; send HL7 v2.3 to v2.9.`);
  if (!['P', 'T', 'D'].includes(header.processingId)) reject('AR', 202, 'MSH-11', `MSH-11 processing id ${JSON.stringify(header.processingId)} is not P, T or D.`);
  const type = msh.getComponent(9, 1);
  if (type !== 'ADT') reject('AR', 200, 'MSH-9', `Message type ${JSON.stringify(type)} is not supported; this listener takes ADT messages (${SUPPORTED_TRIGGERS.join(', ')}).`);
  const trigger = header.trigger as AdtTrigger;
  if (!SUPPORTED_TRIGGERS.includes(trigger)) reject('AR', 201, 'MSH-9', `ADT event ${JSON.stringify(header.trigger)} is not supported; this listener takes ${SUPPORTED_TRIGGERS.join(', ')}.`);

  const pid = required(message, 'PID');
  const pv1 = required(message, 'PV1');
  const pv2 = message.getSegment('PV2');
  const evn = message.getSegment('EVN');

  const visitNumber = text1(pv1, 19);
  if (!visitNumber) reject('AR', 101, 'PV1-19', 'PV1-19 (visit number) is empty; CareBridge identifies the hospital spell by it.');
  const eventTime = optionalTime(evn, 6, 'EVN-6') ?? optionalTime(evn, 2, 'EVN-2') ?? optionalTime(msh, 7, 'MSH-7');
  if (!eventTime) reject('AR', 101, 'MSH-7', 'MSH-7 (date/time of message) is empty.');
  const recordedTime = optionalTime(evn, 2, 'EVN-2') ?? optionalTime(msh, 7, 'MSH-7') ?? eventTime;
  const dischargeTime = optionalTime(pv1, 45, 'PV1-45');
  if (trigger === 'A03' && !dischargeTime) reject('AR', 101, 'PV1-45', 'PV1-45 (discharge date/time) is empty; an A03 must say when the person was discharged.');
  const location = wardLocation(pv1);
  if (trigger === 'A02' && !location) reject('AR', 101, 'PV1-3', 'PV1-3 (assigned patient location) is empty; an A02 must say where the person was transferred to.');
  const destination = text1(pv1, 37);
  return {
    header,
    trigger,
    eventTime,
    recordedTime,
    person: readPerson(pid),
    visit: {
      visitNumber,
      patientClass: text1(pv1, 2) || undefined,
      location,
      admitTime: optionalTime(pv1, 44, 'PV1-44'),
      dischargeTime,
      dischargeDestination: destination && destination !== '""' ? { code: destination, text: plain(pv1.getComponent(37, 2)) || undefined } : undefined,
      expectedDischarge: pv2 ? updateTime(pv2, 9, 'PV2-9') : undefined,
    },
  };
}

/** MSH-1 and MSH-2 are HL7's recommended characters, with or without v2.7's truncation character. */
function hasStandardEncoding(text: string): boolean {
  if (text[3] !== FIELD_SEPARATOR) return false;
  const declared = text.slice(4, text.indexOf(FIELD_SEPARATOR, 4));
  return declared === ENCODING_CHARACTERS || declared === ENCODING_CHARACTERS + TRUNCATION_CHARACTER;
}

function readHeaderFrom(msh: Hl7Segment): Hl7Header {
  const field = (i: number) => msh.getField(i)?.toString() ?? '';
  return {
    sendingApplication: field(3),
    sendingFacility: field(4),
    receivingApplication: field(5),
    receivingFacility: field(6),
    messageType: field(9),
    trigger: msh.getComponent(9, 2),
    controlId: field(10),
    processingId: msh.getComponent(11, 1),
    version: msh.getComponent(12, 1),
  };
}

function required(message: Hl7Message, name: string): Hl7Segment {
  const segment = message.getSegment(name);
  if (!segment) reject('AR', 100, name, `The ${name} segment is missing (the message may have been cut short).`);
  return segment;
}

/** First component of a field, as text. */
function text1(segment: Hl7Segment, field: number): string {
  return plain(segment.getComponent(field, 1));
}

/**
 * A component as the one line of text it stands for. Every value read here (names, wards, addresses) is a
 * single line, where a line break a sender formatted in (\.br\, meant for formatted text) would split a
 * ward's name on every list and label that shows it: it reads as the space between the two parts.
 */
function plain(raw: string): string {
  return unescapeHl7(raw).replace(/\s*\n\s*/g, ' ').trim();
}

function optionalTime(segment: Hl7Segment | undefined, field: number, name: string): string | undefined {
  const raw = segment ? segment.getComponent(field, 1).trim() : '';
  if (!raw || raw === '""') return undefined;
  const value = hl7DateTime(raw);
  if (!value) reject('AE', 102, name, `${name} ${JSON.stringify(raw)} is not a date/time (YYYYMMDD[HHMM[SS]][+/-ZZZZ]).`);
  return value;
}

function updateTime(segment: Hl7Segment, field: number, name: string): Update<string> {
  const raw = segment.getComponent(field, 1).trim();
  if (raw === '""') return null;
  return optionalTime(segment, field, name);
}

function wardLocation(pv1: Hl7Segment): WardLocation | undefined {
  const ward = text1(pv1, 3);
  if (!ward || ward === '""') return undefined;
  const part = (i: number) => plain(pv1.getComponent(3, i)) || undefined;
  // The facility (PL.4) is an HD: the site's code is its namespace, before any "&OID&ISO".
  const site = plain(pv1.getComponent(3, 4).split(SUBCOMPONENT_SEPARATOR)[0]) || undefined;
  return { ward, room: part(2), bed: part(3), site, description: part(9) };
}

/** HL7 table 0001 (administrative sex), X (non-binary) included as HL7 added it, as FHIR's administrative gender. */
const GENDERS: Record<string, PidPerson['gender']> = { M: 'male', F: 'female', O: 'other', U: 'unknown', A: 'other', N: 'unknown', X: 'other' };

/** The NHS number's OID, which some senders give as the assigning authority (CX.4) instead of "NHS". */
const NHS_NUMBER_OID = '2.16.840.1.113883.2.1.4.1';
/**
 * Assigning authorities of the other UK national numbers, which UK feeds also type NH (national health
 * number): Scotland's CHI number and Northern Ireland's Health and Care number. They share the NHS number's
 * format and check digit but are not NHS numbers, so one must never be taken for a person's NHS number.
 */
const OTHER_NATIONAL_AUTHORITIES: ReadonlySet<string> = new Set(['CHI', 'HSNI']);

/** What one PID-3 repetition (CX) is: an NHS number, another UK national number, or a local (hospital) number. */
function identifierKind(authority: string, type: string): 'nhs' | 'other-national' | 'local' {
  const [namespace = '', universalId = ''] = authority.split('&').map((part) => part.trim().toUpperCase());
  if (namespace === 'NHS' || namespace === NHS_NUMBER_OID || universalId === NHS_NUMBER_OID) return 'nhs';
  if (OTHER_NATIONAL_AUTHORITIES.has(namespace)) return 'other-national';
  return type === 'NH' ? 'nhs' : 'local';
}

function readPerson(pid: Hl7Segment): PidPerson {
  const person: PidPerson = { localIds: [] };
  readIdentifierList(pid, person);
  readExternalNhsNumber(pid, person);
  const verification = person.nhsNumber ? nhsNumberVerification(pid) : undefined;
  if (verification) person.nhsNumberVerification = verification;
  const { family, given } = legalName(pid);
  if (family) person.family = family;
  if (given && given !== '""') person.given = given;
  const born = pid.getComponent(7, 1).trim();
  if (born && born !== '""') {
    const date = hl7DateTime(born.slice(0, 8));
    if (!date || date.length !== 10) reject('AE', 102, 'PID-7', `PID-7 date of birth ${JSON.stringify(born)} is not a date (YYYYMMDD).`);
    person.birthDate = date;
  }
  const sex = pid.getComponent(8, 1).trim().toUpperCase();
  if (sex && sex !== '""') person.gender = GENDERS[sex] ?? reject('AE', 103, 'PID-8', `PID-8 sex ${JSON.stringify(sex)} is not one of ${Object.keys(GENDERS).join(', ')} (HL7 table 0001).`);
  const address = homeAddress(pid);
  if (address) {
    person.address = address;
    if (address.postcode) person.postcode = address.postcode;
  }
  const phone = homePhone(pid);
  if (phone) person.homePhone = phone;
  return person;
}

/** PID-3: the NHS number (at most one) and the hospital's own numbers; other UK national numbers are neither. */
function readIdentifierList(pid: Hl7Segment, person: PidPerson): void {
  const ids = pid.getField(3);
  let identified = false;
  for (let r = 0; r < (ids?.components.length ?? 0); r++) {
    const value = plain(ids!.getComponent(1, undefined, r));
    // An assigning authority is an HD (namespace&universal id&type); the namespace is what names it.
    const authority = ids!.getComponent(4, undefined, r).trim();
    const kind = identifierKind(authority, ids!.getComponent(5, undefined, r).trim().toUpperCase());
    // "" is HL7's explicit null: the sender has no such number for the person, not a number "".
    if (!value || value === '""') continue;
    identified = true;
    if (kind === 'nhs') {
      const digits = validNhsNumber(value, 'PID-3');
      if (person.nhsNumber && person.nhsNumber !== digits) reject('AE', 102, 'PID-3', 'PID-3 carries two different NHS numbers.');
      person.nhsNumber = digits;
      person.nhsNumberField = 'PID-3';
    } else if (kind === 'local') {
      person.localIds.push({ value, authority: plain(authority.split(SUBCOMPONENT_SEPARATOR)[0]) });
    }
  }
  if (!identified) reject('AR', 101, 'PID-3', 'PID-3 (patient identifier list) is empty.');
}

/**
 * PID-2 (patient ID, external), where v2.2 and v2.3 feeds put the NHS number, and which later versions keep
 * for them. Only a value typed as an NHS number (assigning authority NHS or its OID, or type NH) is one: a
 * bare value there is another system's number for the person, neither an NHS number nor the trust's own
 * hospital number, so it is not kept at all. Checked like PID-3's, and never allowed to disagree with it.
 */
function readExternalNhsNumber(pid: Hl7Segment, person: PidPerson): void {
  const value = plain(pid.getComponent(2, 1));
  if (!value || value === '""') return;
  if (identifierKind(pid.getComponent(2, 4).trim(), pid.getComponent(2, 5).trim().toUpperCase()) !== 'nhs') return;
  const digits = validNhsNumber(value, 'PID-2');
  if (person.nhsNumber && person.nhsNumber !== digits) {
    reject('AE', 102, 'PID-2', `PID-2 carries NHS number ${digits} but PID-3 carries ${person.nhsNumber}; CareBridge will not choose between them.`);
  }
  person.nhsNumberField ??= 'PID-2';
  person.nhsNumber = digits;
}

function validNhsNumber(value: string, field: 'PID-2' | 'PID-3'): string {
  const digits = value.replace(/\s/g, '');
  if (!isValidNhsNumber(digits)) reject('AE', 102, field, `${field} NHS number ${JSON.stringify(value)} is not valid (10 digits with a modulus 11 check digit); CareBridge will not match a person on it.`);
  return digits;
}

/**
 * How far the NHS number has been traced, from PID-32 (identity reliability, HL7 table 0445). UK feeds send
 * the NHS Number Status Indicator there: NSTS01 to NSTS08 as the ITK ADT specification writes them, or the
 * bare 01 to 08 of older feeds, the same codes as UK Core's verification status. The table's other codes
 * (AL alias, UD unknown birth date…) say nothing about the number. A code outside the list, or two
 * different statuses, is no status: a status is only ever kept as it was said (H-051).
 */
function nhsNumberVerification(pid: Hl7Segment): string | undefined {
  const field = pid.getField(32);
  const said = new Set<string>();
  for (let r = 0; r < (field?.components.length ?? 0); r++) {
    const code = field!.getComponent(1, undefined, r).trim().toUpperCase().replace(/^NSTS/, '');
    if (Object.hasOwn(NHS_NUMBER_VERIFICATION_STATUSES, code)) said.add(code);
  }
  return said.size === 1 ? [...said][0] : undefined;
}

/**
 * The person's name from PID-5: the first repetition typed L (legal, XPN.7, HL7 table 0200), or, when none
 * is, the first sent without a type or typed U (unspecified) or D (display), which is how senders that type
 * nothing send the current name. An alias, a maiden or birth name, a nickname or a partner's name is not the
 * name the person goes by: matching on it (H-011) could find someone else, or no one, and a new Patient
 * would carry it. With only such names there is none, as with no name sent.
 * XPN.1 is an FN: the surname, then its prefix, and a partner's surname and prefix (see familyName).
 */
function legalName(pid: Hl7Segment): { family?: string; given?: string } {
  const field = pid.getField(5);
  let current: number | undefined;
  for (let r = 0; r < (field?.components.length ?? 0); r++) {
    const type = field!.getComponent(7, undefined, r).trim().toUpperCase();
    if (type === 'L') {
      current = r;
      break;
    }
    if (current === undefined && (!type || type === '""' || type === 'U' || type === 'D')) current = r;
  }
  if (current === undefined) return {};
  return { family: familyName(field!.getComponent(1, undefined, current)), given: plain(field!.getComponent(2, undefined, current)) };
}

/**
 * The whole surname from an FN (XPN.1), as FHIR's HumanName.family holds it: the surname (FN.1) after its
 * own prefix (FN.2), "Dijk&van" being "van Dijk", unless FN.1 already begins with it. Read as FN.1 alone,
 * a person on file as "van Dijk" was matched on no one's name and held (H-011), and a new Patient made
 * without the prefix. The partner's surname and prefix (FN.4, FN.5) are not the person's own surname.
 * Split before unescaping, so an escaped \T\ in a name stays the "&" it stands for.
 */
function familyName(fn: string): string | undefined {
  const [surname, prefix] = fn.split(SUBCOMPONENT_SEPARATOR).map((part) => plain(part ?? ''));
  if (!surname || surname === '""') return undefined;
  if (!prefix || prefix === '""' || surname.toLowerCase().startsWith(prefix.toLowerCase())) return surname;
  // A prefix ending in an apostrophe or hyphen ("d'", "O'") runs into the surname it belongs to.
  return /['’-]$/.test(prefix) ? `${prefix}${surname}` : `${prefix} ${surname}`;
}

/**
 * The home address from PID-11: the first repetition typed H (XAD-7, HL7 table 0190), or, when none is, the
 * first sent without a type, which is how senders that type nothing send the home address. A mailing,
 * business, birth, temporary or other typed address is not where the person lives: matching on its postcode
 * (H-011), or making a new Patient's home of it, would be wrong, so with only such addresses there is none.
 * Of several typed H the first is taken, as HL7 puts the primary one first.
 */
function homeAddress(pid: Hl7Segment): PidPerson['address'] {
  const field = pid.getField(11);
  const home: NonNullable<PidPerson['address']>[] = [];
  const untyped: NonNullable<PidPerson['address']>[] = [];
  for (let r = 0; r < (field?.components.length ?? 0); r++) {
    const part = (i: number) => plain(field!.getComponent(i, undefined, r));
    const postcode = part(5).toUpperCase().replace(/\s+/g, ' ');
    const lines = [part(1), part(2)].filter((l) => l && l !== '""');
    if (!lines.length && !postcode) continue;
    const address = { lines, city: part(3) || undefined, district: part(4) || undefined, postcode: postcode || undefined };
    const type = part(7).toUpperCase();
    if (type === 'H') home.push(address);
    else if (!type || type === '""') untyped.push(address);
  }
  return home[0] ?? untyped[0];
}

/**
 * The home telephone number from PID-13 (phone number, home): the first repetition that is a telephone
 * (XTN-3 PH, or none) at the home (XTN-2 PRN, primary residence, or none). A mobile, fax, pager or email
 * address sent there is not the home phone. The number is XTN-1 as the PAS formats it, else XTN-12
 * (unformatted), else the area code and local number (XTN-6, XTN-7).
 */
function homePhone(pid: Hl7Segment): string | undefined {
  const field = pid.getField(13);
  for (let r = 0; r < (field?.components.length ?? 0); r++) {
    const part = (i: number) => plain(field!.getComponent(i, undefined, r));
    const use = part(2).toUpperCase();
    const equipment = part(3).toUpperCase();
    if ((use && use !== 'PRN') || (equipment && equipment !== 'PH')) continue;
    const number = part(1) || part(12) || [part(6), part(7)].filter(Boolean).join(' ');
    if (number && number !== '""') return number;
  }
  return undefined;
}
