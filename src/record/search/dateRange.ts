// FHIR dates carry their precision: "2020" means the whole year. Both indexed values and search values
// become an inclusive range of epoch milliseconds [lo, hi], so comparisons honour precision.

export interface DateRange { lo: number; hi: number }

export const MIN_DATE = -62135596800000; // 0001-01-01
export const MAX_DATE = 253402300799999; // 9999-12-31T23:59:59.999

const DATE = /^(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?)?)?)?$/;

/** Parses a FHIR date, dateTime or instant into the range it denotes, or undefined if it is not one. */
export function parseDateRange(value: string): DateRange | undefined {
  const m = DATE.exec(value);
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s, frac, tz] = m;
  const year = Number(y);
  const month = mo ? Number(mo) : undefined;
  const day = d ? Number(d) : undefined;
  if (year < 1) return undefined;
  if (month !== undefined && (month < 1 || month > 12)) return undefined;
  if (day !== undefined && (day < 1 || day > daysInMonth(year, month!))) return undefined;
  let offsetMs = 0;
  if (tz && tz !== 'Z') {
    const hours = Number(tz.slice(1, 3));
    const minutes = Number(tz.slice(4, 6));
    if (hours > 14 || minutes > 59 || (hours === 14 && minutes > 0)) return undefined;
    offsetMs = (tz[0] === '-' ? -1 : 1) * (hours * 60 + minutes) * 60000;
  }
  const utc = (yy: number, mm: number, dd: number, hh = 0, mn = 0, ss = 0, ms = 0) => {
    const t = new Date(0);
    t.setUTCFullYear(yy, mm, dd);
    t.setUTCHours(hh, mn, ss, ms);
    return t.getTime();
  };
  if (month === undefined) return { lo: utc(year, 0, 1), hi: utc(year + 1, 0, 1) - 1 };
  if (day === undefined) return { lo: utc(year, month - 1, 1), hi: utc(year, month, 1) - 1 };
  if (h === undefined) return { lo: utc(year, month - 1, day), hi: utc(year, month - 1, day + 1) - 1 };
  const hour = Number(h);
  const minute = Number(mi);
  if (hour > 23 || minute > 59) return undefined;
  if (s === undefined) {
    const lo = utc(year, month - 1, day, hour, minute) - offsetMs;
    return { lo, hi: lo + 60000 - 1 };
  }
  const second = Number(s);
  if (second > 60) return undefined;
  if (frac === undefined) {
    const lo = utc(year, month - 1, day, hour, minute, second) - offsetMs;
    return { lo, hi: lo + 1000 - 1 };
  }
  const digits = frac.slice(1);
  const ms = Number(digits.slice(0, 3).padEnd(3, '0'));
  const lo = utc(year, month - 1, day, hour, minute, second, ms) - offsetMs;
  return { lo, hi: digits.length >= 3 ? lo : lo + 10 ** (3 - digits.length) - 1 };
}

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

function daysInMonth(year: number, month: number): number {
  const leap = (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
  return month === 2 && leap ? 29 : DAYS_IN_MONTH[month - 1];
}
