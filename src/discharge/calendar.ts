// Working time in England and Wales, for response deadlines: working days are Monday to Friday in UK local
// time (Europe/London, so BST is honoured) that are not bank holidays. The holidays come from a data file
// (bankHolidays.json, with its source), never from code; a date outside the file's years is refused rather
// than guessed, so a deadline is never silently computed without its holidays.
import holidayFile from './bankHolidays.json' with { type: 'json' };

export type DeadlineUnit = 'working-days' | 'working-hours';
export interface DeadlineRule { amount: number; unit: DeadlineUnit }

const HOUR = 3_600_000;
const HOLIDAYS: ReadonlySet<string> = new Set(holidayFile.events.map((e) => e.date));
const [FIRST_YEAR, LAST_YEAR] = holidayFile.years;

const londonParts = new Intl.DateTimeFormat('en-GB', {
  timeZone: 'Europe/London', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', hourCycle: 'h23',
});

/** The UK local date ("2026-05-04") and hour of an instant. */
export function londonDate(ms: number): { date: string; hour: number; minute: number } {
  const p = Object.fromEntries(londonParts.formatToParts(new Date(ms)).map((x) => [x.type, x.value]));
  return { date: `${p.year}-${p.month}-${p.day}`, hour: Number(p.hour), minute: Number(p.minute) };
}

/** Midnights already found: every deadline walks the same few days, and Intl formatting is the slow part. */
const midnights = new Map<string, number>();

/** The instant UK local midnight starts `date` (UK offsets are whole hours: 0 or +1). */
export function londonMidnight(date: string): number {
  const known = midnights.get(date);
  if (known !== undefined) return known;
  const [y, m, d] = date.split('-').map(Number);
  for (const offset of [0, 1]) {
    const t = Date.UTC(y, m - 1, d) - offset * HOUR;
    const local = londonDate(t);
    if (local.date === date && local.hour === 0 && local.minute === 0) {
      if (midnights.size > 10_000) midnights.clear(); // never grows without bound
      midnights.set(date, t);
      return t;
    }
  }
  throw new Error(`No UK local midnight found for ${date}.`);
}

/**
 * The UK local date of an instant, from the midnights already found rather than Intl: UK local time is UTC
 * or an hour ahead, so the date is the UTC date an hour later once that date's midnight has passed, and
 * the instant's own UTC date before it.
 */
export function londonDay(ms: number): string {
  const hourLater = new Date(ms + HOUR).toISOString().slice(0, 10);
  return londonMidnight(hourLater) <= ms ? hourLater : new Date(ms).toISOString().slice(0, 10);
}

export function nextDate(date: string): string {
  const [y, m, d] = date.split('-').map(Number);
  return new Date(Date.UTC(y, m - 1, d + 1)).toISOString().slice(0, 10);
}

function checkCovered(date: string): void {
  const year = Number(date.slice(0, 4));
  if (year < FIRST_YEAR || year > LAST_YEAR) {
    throw new Error(`The bank-holiday calendar covers ${FIRST_YEAR}–${LAST_YEAR}; ${date} is outside it. Add that year to src/discharge/bankHolidays.json.`);
  }
}

export function isBankHoliday(date: string): boolean {
  checkCovered(date);
  return HOLIDAYS.has(date);
}

/** Monday to Friday, not a bank holiday in England and Wales. `date` is a UK local date (YYYY-MM-DD). */
export function isWorkingDay(date: string): boolean {
  const [y, m, d] = date.split('-').map(Number);
  const weekday = new Date(Date.UTC(y, m - 1, d)).getUTCDay();
  return weekday !== 0 && weekday !== 6 && !isBankHoliday(date);
}

/**
 * Working hours are the clock hours that fall on working days (a notice received on Friday at 15:00 with
 * 48 working hours is due on Tuesday at 15:00, or Wednesday after a bank-holiday Monday).
 */
export function addWorkingHours(startMs: number, hours: number): number {
  let remaining = Math.round(hours * HOUR);
  let t = startMs;
  let date = londonDay(t);
  for (;;) {
    const dayEnd = londonMidnight(nextDate(date));
    if (isWorkingDay(date)) {
      const chunk = Math.min(remaining, dayEnd - t);
      t += chunk;
      remaining -= chunk;
      if (remaining === 0) return t;
    }
    t = dayEnd;
    date = nextDate(date);
  }
}

/**
 * N working days: by the end (UK local midnight) of the Nth working day after the day it arrived; the day
 * of arrival never counts, whatever the hour.
 */
export function addWorkingDays(startMs: number, days: number): number {
  let date = londonDay(startMs);
  let counted = 0;
  while (counted < days) {
    date = nextDate(date);
    if (isWorkingDay(date)) counted++;
  }
  return days === 0 ? startMs : londonMidnight(nextDate(date));
}

export function deadlineAfter(startMs: number, rule: DeadlineRule): number {
  return rule.unit === 'working-days' ? addWorkingDays(startMs, rule.amount) : addWorkingHours(startMs, rule.amount);
}

/** "48 working-hours", "2 working-days" → a rule; throws a sentence a person can act on. */
export function parseDeadlineRule(text: string): DeadlineRule {
  const match = /^\s*(\d{1,3})\s*(working-days|working-hours)\s*$/.exec(text);
  if (!match || Number(match[1]) < 1) throw new Error(`A deadline is a whole number from 1 to 999 and a unit, e.g. "48 working-hours" or "2 working-days", not '${text}'.`);
  return { amount: Number(match[1]), unit: match[2] as DeadlineUnit };
}

export function formatDeadlineRule(rule: DeadlineRule): string {
  return `${rule.amount} ${rule.unit}`;
}

export const BANK_HOLIDAY_YEARS = { first: FIRST_YEAR, last: LAST_YEAR };

/**
 * What to tell an operator when the bank-holiday file ends within a year of `nowMs`: past its last year every
 * deadline is refused (ADW notices are dead-lettered, referrals cannot be made), so the file needs its next
 * years before then. Undefined while it reaches far enough.
 */
export function calendarRunningOut(nowMs: number): string | undefined {
  const lastDay = Date.UTC(LAST_YEAR, 11, 31);
  if (lastDay - nowMs > 365 * 24 * HOUR) return undefined;
  const when = lastDay < nowMs ? 'has ended' : `ends on 31 December ${LAST_YEAR}`;
  return `WARNING: the bank-holiday calendar (src/discharge/bankHolidays.json) ${when}; add the next years from https://www.gov.uk/bank-holidays.json, or discharge deadlines past ${LAST_YEAR} will be refused.`;
}
