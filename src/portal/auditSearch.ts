// The privacy officer's audit search: who looked at or changed a person's record, or what one user did, in
// a period; newest first. It asks the audit trail through the record (AuditEvent search) with the officer's
// own access, so the search itself is audited too.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { UserActor } from '../access/index.ts';
import { FhirError } from '../record/index.ts';
import { errorView, type FieldError, type SendPage } from './page.ts';
import { recordFor, type RecordConnection, type Resource } from './recordClient.ts';
import { ROLE_LABELS } from './roles.ts';
import { visitOf } from './visit.ts';
import { NotAllowedHere } from './pageErrors.ts';

const PAGE_SIZE = 50;
const ID = /^[A-Za-z0-9\-.]{1,64}$/;
const DAY = /^\d{4}-\d{2}-\d{2}$/;

export interface AuditSearchOptions {
  send: SendPage;
  connection(req: FastifyRequest): RecordConnection;
}

interface AuditForm { person?: string; user?: string; from?: string; to?: string }

function privacyOfficer(req: FastifyRequest, reply: FastifyReply): UserActor | undefined {
  const actor = visitOf(req).actor;
  if (!actor) {
    void reply.redirect('/sign-in', 303);
    return undefined;
  }
  if (actor.role !== 'privacy-officer') throw new NotAllowedHere('The audit search is for privacy officers.');
  return actor;
}

/** The search the form asks for, or what is wrong with it. */
function searchOf(form: AuditForm): { params: [string, string][]; errors: FieldError[] } {
  const errors: FieldError[] = [];
  const params: [string, string][] = [['_sort', '-date'], ['_count', String(PAGE_SIZE)]];
  const person = (form.person ?? '').trim().replace(/^Patient\//, '');
  const user = (form.user ?? '').trim();
  if (person && !ID.test(person)) errors.push({ field: 'person', text: 'Enter the person’s record id as shown on their record (letters, digits, - and .)' });
  else if (person) params.push(['patient', `Patient/${person}`]);
  if (user && !ID.test(user)) errors.push({ field: 'user', text: 'Enter the user’s id (letters, digits, - and .)' });
  else if (user) params.push(['altid', user]);
  for (const [field, prefix, label] of [['from', 'ge', 'From'], ['to', 'le', 'To']] as const) {
    const value = (form[field] ?? '').trim();
    if (value && (!DAY.test(value) || Number.isNaN(Date.parse(value)))) errors.push({ field, text: `${label} must be a date such as 2026-11-26` });
    else if (value) params.push(['date', `${prefix}${value}`]);
  }
  if (!person && !user && !errors.length) errors.push({ field: 'person', text: 'Enter a person’s record id or a user’s id' });
  return { params, errors };
}

const ACTIONS: Record<string, string> = {
  read: 'Read', vread: 'Read a past version', 'search-type': 'Searched', 'search-system': 'Searched', create: 'Created', update: 'Changed',
  patch: 'Changed', delete: 'Deleted', 'history-instance': 'Read the history', 'history-type': 'Read the history', 'history-system': 'Read the history',
  operation: 'Ran', transaction: 'Sent a transaction', batch: 'Sent a batch', capabilities: 'Read the capabilities',
};

/** What the event records, in words: the interaction and the kind of record. */
function whatOf(e: Resource, purpose: string | undefined): string {
  // The declaration itself carries its reason as its query; what was read under the grant is purpose BTG too.
  const declaration = queryOf(e)?.startsWith('break-glass=');
  if (purpose === 'BTG' && declaration) return 'Declared break-glass';
  const what = describe(e);
  return purpose === 'BTG' ? `${what} (under break-glass)` : what;
}

/** The query an event's entity carries (base64 in AuditEvent.entity.query), if any. */
function queryOf(e: Resource): string | undefined {
  const q = (e.entity ?? []).find((x: any) => x.query)?.query;
  return q ? Buffer.from(q, 'base64').toString('utf8') : undefined;
}

function describe(e: Resource): string {
  // An administrator's change (a Security Alert), and a view of the dead-letter queue (a Query, the only
  // one), say what they changed or showed in their own words.
  if ((e.type?.code === '110113' || e.type?.code === '110112') && e.outcomeDesc) return e.outcomeDesc.charAt(0).toUpperCase() + e.outcomeDesc.slice(1);
  // An export names the file it made (a person's own view has it taken out when it concerned others too).
  if (e.type?.code === '110106') return `Exported ${queryOf(e) ?? 'records'}`;
  const codes = (e.subtype ?? []).map((s: any) => s.code as string);
  const action = codes.map((c: string) => ACTIONS[c]).find(Boolean) ?? e.type?.display ?? 'Accessed';
  const operation = (e.subtype ?? []).find((s: any) => s.display?.startsWith('$'))?.display;
  const types = [...new Set((e.entity ?? []).map((x: any) => x.type?.code).filter((t: string | undefined) => t && /^[A-Z]/.test(t)))];
  return [action, operation, types.join(', ')].filter(Boolean).join(' ');
}

/** One row of the results: the facts a privacy officer reads an AuditEvent for. */
export function auditRowOf(e: Resource) {
  const agent = e.agent?.[0] ?? {};
  const role = agent.role?.[0]?.coding?.[0]?.code as keyof typeof ROLE_LABELS | undefined;
  const organisation = agent.extension?.find((x: any) => x.valueIdentifier)?.valueIdentifier?.value;
  const people = (e.entity ?? []).map((x: any) => x.what?.reference).filter((r: string | undefined) => r?.startsWith('Patient/'));
  const purpose = agent.purposeOfUse?.[0]?.coding?.[0]?.code as string | undefined;
  return {
    at: e.recorded,
    who: agent.who?.display ?? agent.altId ?? 'unknown',
    userId: agent.altId,
    role: (role && ROLE_LABELS[role]) ?? agent.role?.[0]?.text ?? '–',
    organisation: organisation ?? '–',
    purpose: purpose ?? '–',
    what: whatOf(e, purpose),
    people: people.map((r: string) => r.slice('Patient/'.length)).join(', ') || '–',
    outcome: e.outcome === '0' ? 'Success' : `Failed (${e.outcomeDesc ?? e.outcome})`,
  };
}

export function auditSearchRoutes(app: FastifyInstance, { send, connection }: AuditSearchOptions): void {
  app.get<{ Querystring: AuditForm }>('/privacy-officer/audit', async (req, reply) => {
    const actor = privacyOfficer(req, reply);
    if (!actor) return reply;
    const values = { person: req.query.person ?? '', user: req.query.user ?? '', from: req.query.from ?? '', to: req.query.to ?? '' };
    const asked = Object.values(values).some((v) => v !== '');
    const view = { pageTitle: 'Audit search', values, asked, rows: [] as ReturnType<typeof auditRowOf>[], more: false };
    if (!asked) return send(req, reply, 'pages/privacy-officer-audit.njk', { ...view, ...errorView([]) });
    const { params, errors } = searchOf(values);
    if (errors.length) return send(req, reply, 'pages/privacy-officer-audit.njk', { ...view, ...errorView(errors) }, 400);
    try {
      const found = await recordFor(connection(req), actor, req.ip).search('AuditEvent', params);
      return send(req, reply, 'pages/privacy-officer-audit.njk', { ...view, rows: found.matches.map(auditRowOf), more: found.more, ...errorView([]) });
    } catch (err) {
      if (!(err instanceof FhirError) || err.status >= 500) throw err;
      return send(req, reply, 'pages/privacy-officer-audit.njk', { ...view, ...errorView([{ field: 'person', text: err.issues[0]?.diagnostics ?? 'The audit could not be searched' }]) }, 400);
    }
  });
}
