// Pages are nunjucks templates (autoescaped) over src/portal/templates and nhsuk-frontend's own macros.
import nunjucks from 'nunjucks';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const NHSUK_FRONTEND_DIST = join(dirname(createRequire(import.meta.url).resolve('nhsuk-frontend/package.json')), 'dist');
export const TEMPLATES = join(dirname(fileURLToPath(import.meta.url)), 'templates');

const LONDON_DATE = new Intl.DateTimeFormat('en-GB', { timeZone: 'Europe/London', day: 'numeric', month: 'long', year: 'numeric' });
const LONDON_TIME = new Intl.DateTimeFormat('en-GB', { timeZone: 'Europe/London', hour: '2-digit', minute: '2-digit', hour12: false });

/** "1 November 2026" for a FHIR date or dateTime; dates without a time are not shifted by time zone. */
export function formatDate(value: string | undefined): string {
  if (!value) return '';
  if (/^\d{4}-\d{2}-\d{2}$/.test(value)) return LONDON_DATE.format(new Date(`${value}T12:00:00Z`));
  const ms = Date.parse(value);
  return Number.isFinite(ms) ? LONDON_DATE.format(ms) : value;
}

/** "1 November 2026 at 09:15" (UK time) for a FHIR dateTime or instant. */
export function formatDateTime(value: string | undefined): string {
  if (!value) return '';
  if (!value.includes('T')) return formatDate(value);
  const ms = Date.parse(value);
  return Number.isFinite(ms) ? `${LONDON_DATE.format(ms)} at ${LONDON_TIME.format(ms)}` : value;
}

/** NHS numbers are shown in 3-3-4 groups, as the NHS number standard asks. */
export function formatNhsNumber(value: string | undefined): string {
  return value && /^\d{10}$/.test(value) ? `${value.slice(0, 3)} ${value.slice(3, 6)} ${value.slice(6)}` : (value ?? '');
}

export interface Views {
  render(template: string, context: Record<string, unknown>): string;
}

export function portalViews(globals: Record<string, unknown>): Views {
  const env = new nunjucks.Environment(new nunjucks.FileSystemLoader([TEMPLATES, NHSUK_FRONTEND_DIST]), {
    autoescape: true,
    throwOnUndefined: false,
    trimBlocks: true,
    lstripBlocks: true,
  });
  for (const [name, value] of Object.entries(globals)) env.addGlobal(name, value);
  env.addFilter('ukDate', formatDate);
  env.addFilter('ukDateTime', formatDateTime);
  env.addFilter('nhsNumber', formatNhsNumber);
  return { render: (template, context) => env.render(template, context) };
}
