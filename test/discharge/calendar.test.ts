// Deadline arithmetic over weekends, bank holidays and clock changes, checked against worked examples and,
// for many random starts, against a simple oracle that walks the calendar one day (or hour) at a time.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { addWorkingDays, addWorkingHours, calendarRunningOut, deadlineAfter, isBankHoliday, isWorkingDay, parseDeadlineRule } from '../../src/discharge/index.ts';
import { londonDay } from '../../src/discharge/calendar.ts';
import holidays from '../../src/discharge/bankHolidays.json' with { type: 'json' };

const HOUR = 3_600_000;
const utc = (s: string) => Date.parse(s);
const iso = (ms: number) => new Date(ms).toISOString();

// The oracle's own idea of a UK local date: it shifts by the BST offset from the EU rule (last Sunday of
// March and of October, 01:00 UTC), independently of the Intl time-zone data the code uses.
function lastSunday(year: number, month: number): number {
  const d = new Date(Date.UTC(year, month + 1, 0));
  return Date.UTC(year, month, d.getUTCDate() - d.getUTCDay(), 1);
}
function localDate(ms: number): string {
  const y = new Date(ms).getUTCFullYear();
  const bst = ms >= lastSunday(y, 2) && ms < lastSunday(y, 9);
  return new Date(ms + (bst ? HOUR : 0)).toISOString().slice(0, 10);
}
const HOLIDAY_DATES = new Set(holidays.events.map((e) => e.date));
function oracleWorking(date: string): boolean {
  const day = new Date(`${date}T00:00:00Z`).getUTCDay();
  return day !== 0 && day !== 6 && !HOLIDAY_DATES.has(date);
}
/** Walks UTC hours (UK offsets are whole hours, so each hour lies in one local date). */
function oracleHours(start: number, hours: number): number {
  let t = start;
  let counted = 0;
  while (counted < hours) {
    if (oracleWorking(localDate(t))) counted++;
    t += HOUR;
  }
  return t;
}
/** Walks days: the end of the Nth working day after the day of arrival. */
function oracleDays(start: number, days: number): number {
  let t = start;
  const startDate = localDate(start);
  let counted = 0;
  let date = startDate;
  while (counted < days) {
    t += HOUR;
    const d = localDate(t);
    if (d !== date) {
      date = d;
      if (oracleWorking(d)) counted++;
    }
  }
  // Walk to the first instant of the next local date.
  while (localDate(t) === date) t += HOUR;
  return t - (new Date(t).getUTCMinutes() * 60_000);
}

describe('working-day calendar', () => {
  it('warns the operator a year before the bank-holiday file runs out, and after', () => {
    const last = holidays.years[1];
    assert.equal(calendarRunningOut(Date.UTC(last - 1, 0, 1)), undefined);
    assert.match(calendarRunningOut(Date.UTC(last, 2, 1)) ?? '', new RegExp(`ends on 31 December ${last}; add the next years`));
    assert.match(calendarRunningOut(Date.UTC(last + 1, 0, 5)) ?? '', /has ended/);
  });

  it('knows the published England and Wales bank holidays', () => {
    for (const d of ['2025-04-18', '2025-04-21', '2025-05-05', '2025-05-26', '2025-08-25', '2025-12-25', '2025-12-26', '2026-08-31', '2026-12-28', '2027-12-27', '2027-12-28']) {
      assert.equal(isBankHoliday(d), true, d);
      assert.equal(isWorkingDay(d), false, d);
    }
    assert.equal(isWorkingDay('2026-12-24'), true);
    assert.equal(isWorkingDay('2026-12-26'), false, 'a Saturday');
    assert.equal(holidays.events.length, 7 * 8, 'eight holidays a year, 2024–2030');
    assert.match(holidays.source, /gov\.uk/i);
  });

  it('counts working hours over a weekend and a bank-holiday Monday', () => {
    // Friday 15:00 BST + 48 working hours → Tuesday 15:00 BST; with the early May bank holiday → Wednesday.
    assert.equal(iso(addWorkingHours(utc('2026-04-24T14:00:00Z'), 48)), '2026-04-28T14:00:00.000Z');
    assert.equal(iso(addWorkingHours(utc('2026-05-01T14:00:00Z'), 48)), '2026-05-06T14:00:00.000Z');
    // Christmas 2026: Thursday 24th 12:00 GMT + 24 working hours → Tuesday 29th 12:00 (25th, 28th are holidays).
    assert.equal(iso(addWorkingHours(utc('2026-12-24T12:00:00Z'), 24)), '2026-12-29T12:00:00.000Z');
    // Arriving on a Saturday: the clock starts at midnight on Monday (BST), 23:00 UTC on Sunday.
    assert.equal(iso(addWorkingHours(utc('2026-06-06T10:00:00Z'), 8)), '2026-06-08T07:00:00.000Z');
  });

  it('counts working days from the day after arrival, to the end of the last day', () => {
    // Arrives Friday 1 May 2026 (any hour); 2 working days: Tue 5th, Wed 6th (Mon 4th is a bank holiday) → end of Wed 6th (BST).
    assert.equal(iso(addWorkingDays(utc('2026-05-01T08:30:00Z'), 2)), '2026-05-06T23:00:00.000Z');
    // Christmas Eve is a working day: 1 working day from the 23rd ends at midnight starting Christmas Day.
    assert.equal(iso(addWorkingDays(utc('2026-12-23T16:00:00Z'), 1)), '2026-12-25T00:00:00.000Z');
  });

  it('honours the clocks changing', () => {
    // Clocks go forward on Sunday 29 March 2026: Friday 27th 12:00 GMT + 24 working hours = 12 on Friday + 12 from Monday's midnight (BST) = Monday 12:00 BST, 11:00 UTC.
    assert.equal(iso(addWorkingHours(utc('2026-03-27T12:00:00Z'), 24)), '2026-03-30T11:00:00.000Z');
  });

  it('finds the UK local date of any instant, across midnights and clock changes, as the oracle does', () => {
    // Every 5 minutes of the three hours around each clock change and each UTC midnight next to it.
    for (let year = 2024; year <= 2030; year++) {
      for (const change of [lastSunday(year, 2), lastSunday(year, 9)]) {
        for (const around of [change, change - 1 * HOUR, change + 23 * HOUR, change - 25 * HOUR]) {
          for (let ms = around - 90 * 60_000; ms <= around + 90 * 60_000; ms += 5 * 60_000) assert.equal(londonDay(ms), localDate(ms), iso(ms));
        }
      }
    }
    const instant = fc.integer({ min: utc('2024-01-01T00:00:00Z'), max: utc('2030-12-31T00:00:00Z') });
    fc.assert(fc.property(instant, (ms) => londonDay(ms) === localDate(ms)), { numRuns: 2000 });
  });

  it('agrees with a day-by-day oracle for working hours (property)', () => {
    const start = fc.integer({ min: utc('2024-01-01T00:00:00Z') / HOUR, max: utc('2030-10-01T00:00:00Z') / HOUR }).map((h) => h * HOUR);
    fc.assert(fc.property(start, fc.integer({ min: 1, max: 200 }), (s, h) => addWorkingHours(s, h) === oracleHours(s, h)), { numRuns: 300 });
  });

  it('agrees with a day-by-day oracle for working days (property)', () => {
    const start = fc.integer({ min: utc('2024-01-01T00:00:00Z') / 60_000, max: utc('2030-10-01T00:00:00Z') / 60_000 }).map((m) => m * 60_000);
    fc.assert(fc.property(start, fc.integer({ min: 1, max: 30 }), (s, d) => addWorkingDays(s, d) === oracleDays(s, d)), { numRuns: 300 });
  });

  it('refuses dates the calendar does not cover, and rules it cannot read', () => {
    assert.throws(() => addWorkingDays(utc('2030-12-20T10:00:00Z'), 10), /covers 2024–2030/);
    assert.throws(() => parseDeadlineRule('48 hours'), /working-hours/);
    assert.throws(() => parseDeadlineRule('0 working-days'), /whole number from 1/);
    assert.deepEqual(parseDeadlineRule('72 working-hours'), { amount: 72, unit: 'working-hours' });
    assert.equal(deadlineAfter(utc('2026-05-01T14:00:00Z'), { amount: 48, unit: 'working-hours' }), addWorkingHours(utc('2026-05-01T14:00:00Z'), 48));
  });
});
