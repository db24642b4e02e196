// HL7 v2 text values: escape sequences and date/times. The parser (@medplum/core's Hl7Message) splits
// segments, fields and components but leaves escape sequences and DTM values as sent; these do the rest.

/** The encoding characters CareBridge accepts (MSH-1 and MSH-2): the ones HL7 recommends and NHS feeds use. */
export const FIELD_SEPARATOR = '|';
export const ENCODING_CHARACTERS = '^~\\&';
/** The last of the encoding characters: it separates a component's subcomponents (an FN's surname and prefix, an HD's parts). */
export const SUBCOMPONENT_SEPARATOR = '&';
/** The truncation character HL7 v2.7 added to MSH-2 (^~\&#), which a v2.7+ sender may declare. */
export const TRUNCATION_CHARACTER = '#';

/** Turns \F\ \S\ \T\ \R\ \E\ \P\ and \Xhh..\ back into text; formatting escapes (\H\, \N\, \.br\…) become nothing, a space or a line break. */
export function unescapeHl7(value: string): string {
  if (!value.includes('\\')) return value;
  return value.replace(/\\([^\\]*)\\/g, (whole, code: string) => {
    switch (code) {
      case 'F': return '|';
      case 'S': return '^';
      case 'T': return '&';
      case 'R': return '~';
      case 'E': return '\\';
      case 'P': return TRUNCATION_CHARACTER;
      case 'H': case 'N': return '';
    }
    const formatting = formattingCommand(code);
    if (formatting !== undefined) return formatting;
    // \Xhh..\ gives bytes: a UTF-8 feed escapes é as \XC3A9\, an older one as \XE9\.
    if (/^X([0-9A-Fa-f]{2})+$/.test(code)) return textOfBytes(Buffer.from(code.slice(1), 'hex'));
    return whole;
  });
}

/**
 * HL7's formatting commands (for FT, formatted text), as plain text: the ones that end a line (.br, .sp n,
 * .ce) a line break, a skip (.sk n) a space, and the ones that only set layout (.fi, .nf, .in n, .ti n)
 * nothing. Undefined when `code` is not one (the escape is then left as sent).
 */
function formattingCommand(code: string): string | undefined {
  if (/^\.(br|ce|sp ?\d*)$/.test(code)) return '\n';
  if (/^\.sk ?\d*$/.test(code)) return ' ';
  if (/^\.(fi|nf|(in|ti) ?[+-]?\d+)$/.test(code)) return '';
  return undefined;
}

/**
 * Windows-1252's characters for the bytes 0x80-0x9F (the five it leaves undefined kept as they are). ISO
 * 8859-1 gives these bytes to C1 control codes, which no PAS sends as text; PAS and interface engines on
 * Windows that say 8859/1 in MSH-18 send Windows-1252, and there they are ’ “ ” – — € and the like.
 */
const WINDOWS_1252_HIGH = '\u20AC\u0081\u201A\u0192\u201E\u2026\u2020\u2021\u02C6\u2030\u0160\u2039\u0152\u008D\u017D\u008F'
  + '\u0090\u2018\u2019\u201C\u201D\u2022\u2013\u2014\u02DC\u2122\u0161\u203A\u0153\u009D\u017E\u0178';

/** Bytes as text: UTF-8 when they are UTF-8; otherwise the single-byte character set older feeds use (Windows-1252, a superset of ISO 8859-1). */
export function textOfBytes(bytes: Uint8Array): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return Buffer.from(bytes).toString('latin1').replace(/[\u0080-\u009f]/g, (c) => WINDOWS_1252_HIGH[c.charCodeAt(0) - 0x80]);
  }
}

/** Text safe to put in one component of a reply (our ACK's MSA-3 and ERR fields). */
export function escapeHl7(text: string): string {
  return text
    .replace(/\\/g, '\\E\\')
    .replace(/\|/g, '\\F\\')
    .replace(/\^/g, '\\S\\')
    .replace(/&/g, '\\T\\')
    .replace(/~/g, '\\R\\')
    .replace(/[\r\n]+/g, ' ');
}

/**
 * Local times in a feed without an offset are the hospital's wall-clock time. Trusts in England and Wales
 * run their PAS on UK time, so a value sent as 20260701 1000 in summer is 09:00 UTC, not 10:00.
 */
const FEED_TIME_ZONE = 'Europe/London';

const DTM = /^(\d{4})(?:(\d{2})(?:(\d{2})(?:(\d{2})(?:(\d{2})(?:(\d{2})(?:\.(\d{1,4}))?)?)?)?)?)?([+-]\d{4})?$/;

/**
 * An HL7 DTM/TS value (YYYY[MM[DD[HH[MM[SS[.S…]]]]]][+/-ZZZZ]) as a FHIR dateTime: a date alone stays a
 * date; a time gets seconds and an explicit offset. Undefined when the text is not a real date and time
 * (month 13, 30 February, hour 24…), so the caller can name the field.
 */
export function hl7DateTime(value: string): string | undefined {
  const m = DTM.exec(value.trim());
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s, , zone] = m;
  const year = Number(y);
  const month = mo ? Number(mo) : 1;
  const day = d ? Number(d) : 1;
  if (month < 1 || month > 12 || day < 1 || day > daysIn(year, month)) return undefined;
  if (!d) return mo ? `${y}-${mo}` : y;
  if (!h) return `${y}-${mo}-${d}`;
  const hour = Number(h);
  const minute = mi ? Number(mi) : 0;
  const second = s ? Number(s) : 0;
  if (hour > 23 || minute > 59 || second > 59) return undefined;
  const wall = `${y}-${mo}-${d}T${h}:${pad(minute)}:${pad(second)}`;
  if (zone) {
    const [zh, zm] = [zone.slice(1, 3), zone.slice(3, 5)];
    if (Number(zh) > 14 || Number(zm) > 59) return undefined;
    const sign = zh === '00' && zm === '00' ? '+' : zone[0];
    return `${wall}${sign}${zh}:${zm}`;
  }
  const offset = offsetOfWallClock(Date.UTC(year, month - 1, day, hour, minute, second));
  const sign = offset < 0 ? '-' : '+';
  const abs = Math.abs(offset);
  return `${wall}${sign}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`;
}

const HOUR_MS = 3_600_000;

/**
 * The UK offset (minutes) to read a wall-clock time with, given as if it were UTC. Twice a year one hour of
 * wall-clock time is not one instant (hazard H-057): on the last Sunday of October 01:00-01:59 happens
 * twice, first in summer time (BST, +01:00) then in GMT; on the last Sunday of March it never happens, the
 * clocks going from 01:00 GMT straight to 02:00 BST. In both, the time is read as summer time, +01:00: the
 * earlier of the instants it can stand for (in March, 01:30 becomes 00:30 GMT). A time read early can make
 * an admission, transfer or discharge look up to an hour earlier than it was, and a deadline counted from it
 * fall due early; never later. Read late, a discharge could look as if it happened after it did, and a
 * deadline be missed by the hour. Either reading may put two events keyed in the repeated hour in the wrong
 * order; only an offset in the message (DTM allows +0100) settles it.
 */
function offsetOfWallClock(wallAsUtc: number): number {
  // The offsets in force half a day either side are the same except around a clock change.
  const before = offsetAt(wallAsUtc - 12 * HOUR_MS);
  const after = offsetAt(wallAsUtc + 12 * HOUR_MS);
  if (before === after) return before;
  const fits = [before, after].filter((offset) => offsetAt(wallAsUtc - offset * 60_000) === offset);
  // Both fit (the repeated hour) or neither (the skipped one): the larger offset gives the earlier instant.
  return fits.length === 1 ? fits[0] : Math.max(before, after);
}

const OFFSET_NAMES = new Intl.DateTimeFormat('en-GB', { timeZone: FEED_TIME_ZONE, timeZoneName: 'longOffset' });

function offsetAt(epochMs: number): number {
  const name = OFFSET_NAMES
    .formatToParts(new Date(epochMs))
    .find((p) => p.type === 'timeZoneName')?.value ?? 'GMT';
  const m = /GMT([+-])(\d{2}):(\d{2})/.exec(name);
  return m ? (m[1] === '-' ? -1 : 1) * (Number(m[2]) * 60 + Number(m[3])) : 0;
}

function daysIn(year: number, month: number): number {
  return new Date(Date.UTC(year, month, 0)).getUTCDate();
}

function pad(n: number): string {
  return n.toString().padStart(2, '0');
}

/** Now as an HL7 DTM in UTC with its offset, for our replies' MSH-7. */
export function hl7Now(now = new Date()): string {
  return now.toISOString().replace(/[-:T]/g, '').replace(/\.\d+Z$/, '') + '+0000';
}
