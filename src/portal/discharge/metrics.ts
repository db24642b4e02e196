// Discharge figures from the referrals a person may see: open referrals by pathway and status, time to
// respond, and delayed days (medically ready → discharged, withdrawn or rejected) by hospital, ward and
// council; a bar chart drawn as SVG on the server (no script), and every referral as CSV.
import { TRIAGE_STATES, TRIAGE_DISPLAY } from '../../discharge/index.ts';
import type { ReferralRow } from './referralRows.ts';

export interface CountTable { columns: string[]; rows: { label: string; counts: number[]; total: number }[]; totals: number[] }
export interface Spread { group: string; count: number; median?: number; p90?: number; mean?: number; max?: number }
export interface Bar { label: string; value: number; width: number; y: number }

export interface DischargeMetrics {
  openByPathwayAndStatus: CountTable;
  respond: Spread[];
  delayed: { by: string; groups: Spread[] }[];
  chart: { bars: Bar[]; height: number; max: number };
}

/**
 * The median: the middle value, or for an even count the mean of the two middle values (1 and 3 → 2).
 * Taking the lower middle value understated the typical wait whenever the count was even.
 */
export function median(sorted: number[]): number | undefined {
  const n = sorted.length;
  if (!n) return undefined;
  const mid = Math.floor(n / 2);
  return n % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/**
 * The q-th percentile by nearest rank (the ceil(q·n)-th smallest): an actual value, of which at least q of
 * all values are no larger. The page says "90% within", which is this, not an estimate between two values.
 */
export function nearestRank(sorted: number[], q: number): number | undefined {
  if (!sorted.length) return undefined;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

function spread(group: string, values: number[]): Spread {
  const sorted = [...values].sort((a, b) => a - b);
  const sum = sorted.reduce((a, b) => a + b, 0);
  return { group, count: sorted.length, median: median(sorted), p90: nearestRank(sorted, 0.9), mean: sorted.length ? sum / sorted.length : undefined, max: sorted.at(-1) };
}

function groupSpreads(rows: ReferralRow[], key: (r: ReferralRow) => string, value: (r: ReferralRow) => number | undefined): Spread[] {
  const groups = new Map<string, number[]>();
  for (const r of rows) {
    const v = value(r);
    if (v === undefined) continue;
    const k = key(r) || 'Not recorded';
    groups.set(k, [...(groups.get(k) ?? []), v]);
  }
  return [...groups].sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => spread(k, v));
}

const CHART_BAR = 28;
const CHART_WIDTH = 360;

export function dischargeMetrics(rows: ReferralRow[]): DischargeMetrics {
  const open = rows.filter((r) => r.open);
  const states = TRIAGE_STATES.filter((s) => open.some((r) => r.state === s));
  const pathways = [...new Set(open.map((r) => r.pathwayLabel))].sort();
  const tableRows = pathways.map((label) => {
    const counts = states.map((s) => open.filter((r) => r.pathwayLabel === label && r.state === s).length);
    return { label, counts, total: counts.reduce((a, b) => a + b, 0) };
  });
  const byState = states.map((s) => ({ label: TRIAGE_DISPLAY[s], value: open.filter((r) => r.state === s).length }));
  const max = Math.max(1, ...byState.map((b) => b.value));
  // Every closed referral's delay: to discharge, or to the withdrawal or rejection (the person waited,
  // medically ready, until then; leaving them out hid those waits). Open referrals are still counting.
  const closed = rows.filter((r) => !r.open);
  return {
    openByPathwayAndStatus: { columns: states.map((s) => TRIAGE_DISPLAY[s]), rows: tableRows, totals: states.map((s) => open.filter((r) => r.state === s).length) },
    respond: groupSpreads(rows, (r) => r.council, (r) => r.hoursToRespond),
    delayed: [
      { by: 'Hospital', groups: groupSpreads(closed, (r) => r.hospital, (r) => r.daysDelayed) },
      { by: 'Ward', groups: groupSpreads(closed, (r) => `${r.hospital}: ${r.ward}`, (r) => r.daysDelayed) },
      { by: 'Council', groups: groupSpreads(closed, (r) => r.council, (r) => r.daysDelayed) },
    ],
    chart: { bars: byState.map((b, i) => ({ ...b, width: Math.round((b.value / max) * CHART_WIDTH), y: i * CHART_BAR })), height: byState.length * CHART_BAR, max },
  };
}

/** A CSV cell: quoted, and text a spreadsheet would run as a formula made inert. */
function cell(value: string | number | undefined): string {
  if (value === undefined) return '';
  let text = typeof value === 'number' ? (Number.isInteger(value) ? String(value) : value.toFixed(1)) : value;
  if (/^[=+\-@\t\r]/.test(text)) text = `'${text}`;
  return `"${text.replace(/"/g, '""')}"`;
}

/**
 * 'Response due' is the deadline the referral was given when it arrived; 'Awaiting' is what the council owes
 * the hospital now (its response to the referral, its answer to a discharge notice, earliest first) and
 * 'Next due' when the first of those is due; 'Overdue' is whether anything owed is past its due time.
 */
export const CSV_COLUMNS = [
  'Referral', 'Hospital', 'Ward', 'Council', 'Pathway', 'Status', 'Received', 'Response due', 'Awaiting', 'Next due', 'Overdue', 'First response', 'Hours to respond',
  'Expected discharge', 'Medically ready', 'Discharged', 'Days delayed',
];

/**
 * UTF-8's byte-order mark. Excel reads a CSV without one as Windows-1252, garbling every name with a letter
 * outside ASCII ("Côte (Llŷn)" became "CÃ´te (LlÅ·n)"); with it, Excel and LibreOffice read UTF-8.
 */
const UTF8_BOM = '\uFEFF';

/** One line per referral (no names or NHS numbers: figures travel further than records), after the BOM. */
export function referralsCsv(rows: ReferralRow[]): string {
  const lines = rows.map((r) => [
    r.id, r.hospital, r.ward, r.council, r.pathway === undefined ? undefined : String(r.pathway), r.stateLabel, r.received, r.deadline,
    r.owed.map((o) => o.what).join('; ') || undefined, r.nextDue, r.overdue ? 'yes' : 'no',
    r.respondedAt, r.hoursToRespond, r.expectedDischarge, r.medicallyReady, r.discharged, r.daysDelayed,
  ].map(cell).join(','));
  return UTF8_BOM + [CSV_COLUMNS.map(cell).join(','), ...lines].join('\r\n') + '\r\n';
}

