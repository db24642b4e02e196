// The audit journal served through FHIR: GET AuditEvent/{id}, GET AuditEvent?… and POST
// AuditEvent/_search, answered with the record's searchset Bundles and OperationOutcomes. Each search
// drives from one compact index: audit_patient for patient= ("who has looked at my record" is one range
// of it, newest first), audit_entity for entity=, the journal's agent or date index otherwise.
import {
  badRequest, dateCondition, forbidden, notFound, parseSearchRequest, searchsetBundle,
  type AccessControl, type Filter, type FoundResource, type Param, type ResourceTypeService, type SqlExecutor,
} from '../../record/index.ts';
import { INDEXED_REF_LENGTH, HEAD, PartTexts, TEXT_FORMAT, servedText, type StoredEvent } from './journal.ts';
import { referenceTo, tokenValue, type TokenParam } from './searchValues.ts';
import { searchBatches, type BatchMatch } from './batchSearch.ts';
import { BATCH_COLUMNS, batchEntryOf, batchRequests, selfPatient, type StoredBatch } from './batchJournal.ts';



/**
 * An AccessControl may narrow the AuditEvents its holder sees to those about some patients (a person
 * sees the events about themself): set with onlyAuditEventsAbout. It survives `{ ...access }` copies.
 */
const AUDIT_PATIENTS = Symbol('AuditEvents visible only when about these patients');

export function onlyAuditEventsAbout(access: AccessControl, patientIds: readonly string[]): AccessControl {
  return { ...access, [AUDIT_PATIENTS]: [...patientIds] } as AccessControl;
}

/**
 * The patients whose events the caller may see; undefined = everyone's. A caller whose record access is
 * limited to some patients (AccessControl.patients: a person sees their own) sees only the events about the
 * patients it names outright: its relationship searches are the record's to resolve, so they widen
 * nothing here (less is shown, never more).
 */
function visiblePatients(access: AccessControl): readonly string[] | undefined {
  const narrowed = (access as { [AUDIT_PATIENTS]?: readonly string[] })[AUDIT_PATIENTS];
  if (!access.patients) return narrowed;
  const named = access.patients.patientIds;
  return narrowed ? named.filter((id) => narrowed.includes(id)) : named;
}

const COLUMN: Record<string, string> = { type: 'j.type', subtype: 'j.subtype', action: 'j.action', outcome: 'j.outcome', purpose: 'j.purpose', altid: 'j.agent' };
const SUPPORTED = ['patient', 'entity', 'entity-name', 'agent', 'altid', 'date', 'type', 'subtype', 'action', 'outcome', 'purpose'];

interface JournalRow extends StoredEvent { legacy_id: string | null }
const COLUMNS = 'j.seq, j.legacy_id, j.recorded_ms, j.content, j.part, j.hash, j.format';

function patientsIn(text: string): string[] {
  const entity = (JSON.parse(text).entity ?? []) as { what?: { reference?: string } }[];
  return entity.map((e) => e.what?.reference).filter((r): r is string => !!r?.startsWith('Patient/')).map((r) => r.slice(8));
}

const REDACTED = { system: 'http://terminology.hl7.org/CodeSystem/v3-ObservationValue', code: 'REDACTED', display: 'redacted' };

/**
 * An AuditEvent as a caller limited to some patients sees it (a person looking at who has looked at their
 * record). One search or bulk write can name many people: the others, and what the request touched or
 * asked (resources and query text that may be theirs), are taken out, and the event says it was redacted.
 */
function redactedFor(text: string, visible: readonly string[]): string {
  const event = JSON.parse(text);
  const entity = (event.entity ?? []) as { what?: { reference?: string } }[];
  const isPatient = (e: { what?: { reference?: string } }) => !!e.what?.reference?.startsWith('Patient/');
  const theirs = (e: { what?: { reference?: string } }) => visible.includes(e.what!.reference!.slice('Patient/'.length));
  if (entity.every((e) => !isPatient(e) || theirs(e))) return text;
  event.entity = entity.filter((e) => isPatient(e) && theirs(e));
  event.meta = { ...event.meta, security: [...(event.meta?.security ?? []), REDACTED] };
  return JSON.stringify(event);
}

const PARAM_TYPES: Record<string, string> = { patient: 'reference', entity: 'reference', 'entity-name': 'string', agent: 'reference', altid: 'token', date: 'date', type: 'token', subtype: 'token', action: 'token', outcome: 'token', purpose: 'token' };

/** A batch entry as served: the row text it would have had, with its batch's hash in the chain extension. */
function batchEntryText(m: BatchMatch): string {
  const row: StoredEvent = { seq: m.seq, recorded_ms: m.ms, content: `${HEAD}${m.seq}${m.entry.tail}`, part: m.entry.part.key, hash: m.hash, format: TEXT_FORMAT };
  return servedText(row, m.entry.part.text);
}

/** The batch entry with this seq, if one holds it. */
async function batchEntry(db: SqlExecutor, seq: number): Promise<BatchMatch | undefined> {
  const row = await db.get<StoredBatch>(`SELECT ${BATCH_COLUMNS} FROM audit_batch b WHERE b.first_seq <= ? ORDER BY b.first_seq DESC LIMIT 1`, [seq]);
  if (!row || Number(row.last_seq) < seq) return undefined;
  // Only the one entry is built: a batch holds up to 1,000.
  const request = batchRequests(row)[seq - Number(row.first_seq)];
  if (!request) return undefined;
  const entry = batchEntryOf(row, request);
  return { seq, ms: entry.recordedMs, entry, hash: row.hash };
}

/** One result, from either format, in the order the search sorts by. */
type Found = { ms: number; seq: number; row?: JournalRow; match?: BatchMatch };

export function auditEventService(db: SqlExecutor): ResourceTypeService {
  const parts = new PartTexts(db);
  const served = async (found: Found[], visible: readonly string[] | undefined) => {
    const texts = await parts.load(found.map((f) => f.row?.part ?? null));
    return found.map((f) => {
      const text = f.row ? servedText(f.row, f.row.part ? texts.get(f.row.part) : undefined) : batchEntryText(f.match!);
      return visible ? redactedFor(text, visible) : text;
    });
  };
  return {
    searchParams: [
      ...SUPPORTED.map((name) => ({ name, type: PARAM_TYPES[name] })),
      { name: '_sort', type: 'string', documentation: 'date or -date (newest first, the default)' },
    ].map((p) => (p.name === 'purpose' ? { ...p, documentation: 'agent.purposeOfUse (v3-ActReason: TREAT, CAREMGT, PATRQT, FAMRQT, HOPERAT, HSYSADMIN, BTG)' } : p)),
    async read({ id, access }) {
      const visible = visiblePatients(access);
      const numeric = /^\d{1,15}$/.test(id);
      const row = numeric
        ? await db.get<JournalRow>(`SELECT ${COLUMNS} FROM audit_journal j WHERE j.seq = ? AND j.legacy_id IS NULL`, [Number(id)])
        : await db.get<JournalRow>(`SELECT ${COLUMNS} FROM audit_journal j WHERE j.legacy_id = ?`, [id]);
      if (row && visible) {
        const about = visible.length
          ? await db.get(`SELECT 1 AS x FROM audit_patient WHERE patient_id IN (${visible.map(() => '?').join(', ')}) AND recorded_ms = ? AND seq = ?`, [...visible, row.recorded_ms, row.seq])
          : undefined;
        if (!about) throw notFound(`AuditEvent/${id} is not known.`);
      }
      const match = !row && numeric ? await batchEntry(db, Number(id)) : undefined;
      if (match && visible && !match.entry.patients.some((p) => visible.includes(p)) && !visible.includes(selfPatient(match.entry) ?? '\u0000')) throw notFound(`AuditEvent/${id} is not known.`);
      if (!row && !match) throw notFound(`AuditEvent/${id} is not known.`);
      const [body] = await served([{ ms: 0, seq: 0, row, match }], visible);
      return { body, patientIds: patientsIn(body) };
    },

    async search({ base, access, query, strict }) {
      const purposes = query.filter(([k]) => k.split(':')[0] === 'purpose');
      const req = parseSearchRequest('AuditEvent', query.filter(([k]) => k.split(':')[0] !== 'purpose'), strict ? 'strict' : 'lenient');
      if (req.include.length || req.revinclude.length) throw badRequest('AuditEvents are searched on their own: _include and _revinclude are not supported on AuditEvent.', req.include.length ? '_include' : '_revinclude');
      if (req.sort.length > 1 || req.sort.some((s) => s.param.code !== 'date')) throw badRequest('AuditEvents sort by date only: _sort=-date (newest first, the default) or _sort=date.', '_sort');
      const filters: Filter[] = [...req.filters];
      for (const [name, value] of purposes) {
        if (name !== 'purpose') throw badRequest(`Modifier '${name.slice('purpose'.length)}' is not supported for 'purpose'.`, name);
        filters.push({ resourceType: 'AuditEvent', param: { code: 'purpose', type: 'token' }, values: value.split(',') });
        req.used.push([name, value]);
      }
      const visible = visiblePatients(access);
      const plan = planSearch(filters, visible);
      const descending = req.sort[0]?.descending ?? true;
      const dir = descending ? 'DESC' : 'ASC';
      const from = `${plan.from} WHERE ${plan.where.join(' AND ') || '1 = 1'}`;
      const legacyCount = async () => Number((await db.get<{ n: number }>(`SELECT COUNT(*) AS n FROM ${from}`, plan.params))?.n ?? 0);
      const asked = query.some(([k, v]) => k === '_total' && v === 'accurate') || req.summary === 'count';
      const need = req.summary === 'count' ? 0 : req.offset + req.count + 1;
      const batches = plan.filters
        ? await searchBatches(db, { filters: plan.filters, visible, descending, need, count: req.total === 'none' ? 'none' : asked ? 'all' : 'bounded' })
        : { matches: [], total: 0 };
      const totalWith = async (legacyRows: number | undefined) => {
        if (batches.total === undefined) return undefined;
        return batches.total + (legacyRows ?? (await legacyCount()));
      };
      if (req.summary === 'count') {
        return { body: searchsetBundle(base, 'AuditEvent', req, { matches: [], included: [], total: await totalWith(undefined), hasMore: false }), patientIds: plan.patients };
      }
      const rows = req.count === 0 ? [] : await db.all<JournalRow>(
        `SELECT ${COLUMNS} FROM ${from} ORDER BY ${plan.alias}.recorded_ms ${dir}, ${plan.alias}.seq ${dir} LIMIT ?`,
        [...plan.params, need],
      );
      const found: Found[] = [
        ...rows.map((row) => ({ ms: Number(row.recorded_ms), seq: Number(row.seq), row })),
        ...batches.matches.map((match) => ({ ms: match.ms, seq: match.seq, match })),
      ].sort((a, b) => (descending ? b.ms - a.ms || b.seq - a.seq : a.ms - b.ms || a.seq - b.seq));
      const page = found.slice(req.offset, req.offset + req.count);
      const hasMore = found.length > req.offset + req.count;
      const total = req.total === 'none' ? undefined : await totalWith(req.count > 0 && rows.length < need ? rows.length : undefined);
      const texts = await served(page, visible);
      const matches: FoundResource[] = page.map((f, i) => ({ rid: f.seq, type: 'AuditEvent', id: f.row?.legacy_id ?? String(f.seq), content: texts[i], patient_id: null }));
      return { body: searchsetBundle(base, 'AuditEvent', req, { matches, included: [], total, hasMore }), patientIds: plan.patients };
    },
  };
}

interface Plan {
  from: string;
  /** The table whose (recorded_ms, seq) order serves the sort. */
  alias: string;
  where: string[];
  params: Param[];
  /** The patients the search asks about, for the audit of the search itself. */
  patients: string[];
  /** The filters as checked and narrowed to what the caller may see; undefined when nothing can match. */
  filters?: Filter[];
}

const NEVER = '1 = 0';
const marks = (n: number) => Array(n).fill('?').join(', ');

/**
 * Chooses the index to drive from (a single patient, else a single entity, else the journal's own
 * indexes) and turns every other filter into a condition on the journal row or an index lookup.
 */
function planSearch(filters: Filter[], visible: readonly string[] | undefined): Plan {
  for (const f of filters) {
    if (f.chain) throw badRequest(`Chained parameters are not supported on AuditEvent ('${f.param.code}').`, f.param.code);
    if (!SUPPORTED.includes(f.param.code)) throw badRequest(`AuditEvent cannot be searched by '${f.param.code}' here; the parameters are ${SUPPORTED.join(', ')}.`, f.param.code);
    if (f.modifier && !(f.param.code === 'entity-name' && f.modifier === 'exact')) throw badRequest(`Modifier ':${f.modifier}' is not supported on AuditEvent's '${f.param.code}'.`, f.param.code);
  }
  const plan: Plan = { from: 'audit_journal j', alias: 'j', where: [], params: [], patients: [] };
  if (visible) {
    const narrowed = narrowedTo(filters, visible);
    if (!narrowed) return { ...plan, where: [NEVER] };
    filters = narrowed;
  }
  plan.filters = filters;
  const patientIds = (f: Filter) => f.values.map((v) => referenceTo(v, f.param.code)).filter((r) => r.type === 'Patient').map((r) => r.id);
  const driver = filters.find((f) => (f.param.code === 'patient' || f.param.code === 'entity') && f.values.length === 1);
  for (const f of filters) {
    if (f.param.code === 'patient') plan.patients.push(...patientIds(f));
    if (f.param.code === 'entity') plan.patients.push(...patientIds(f));
  }
  if (driver) {
    const ref = referenceTo(driver.values[0], driver.param.code);
    if (ref.type === 'Patient') {
      plan.from = 'audit_patient d JOIN audit_journal j ON j.seq = d.seq';
      plan.where.push(driver.param.code === 'entity' ? 'd.patient_id = ? AND d.as_agent = 0' : 'd.patient_id = ?');
      plan.params.push(ref.id);
    } else if (driver.param.code === 'entity') {
      plan.from = 'audit_entity d JOIN audit_journal j ON j.seq = d.seq';
      plan.where.push('d.ref = ? AND d.named = 0');
      plan.params.push(`${ref.type}/${ref.id}`.slice(0, INDEXED_REF_LENGTH));
    } else plan.where.push(NEVER); // patient=Practitioner/…
    plan.alias = 'd';
  }
  for (const f of filters) {
    if (f === driver) continue;
    const c = condition(f, plan.alias);
    plan.where.push(c.text);
    plan.params.push(...c.params);
  }
  if (visible) {
    plan.where.push(visible.length ? `j.seq IN (SELECT seq FROM audit_patient WHERE patient_id IN (${marks(visible.length)}))` : NEVER);
    plan.params.push(...visible);
  }
  return plan;
}

/**
 * A caller who sees only the events about some people (a person: themself) is shown those events with
 * everyone else, and what the request touched, taken out (redactedFor). Filters on what was taken out
 * would still pick events by it, and so tell the caller who else, or what else, a request involved: a
 * patient they do not see matches nothing, and the entity filters on other resources are refused.
 */
function narrowedTo(filters: Filter[], visible: readonly string[]): Filter[] | undefined {
  const narrowed: Filter[] = [];
  for (const f of filters) {
    const code = f.param.code;
    if (code === 'entity-name') throw forbidden("AuditEvents about a person can be searched by patient, agent, date and the event's codes; entity-name is for privacy officers.");
    if (code !== 'patient' && code !== 'entity') {
      narrowed.push(f);
      continue;
    }
    const values = f.values.filter((v) => {
      const ref = referenceTo(v, code);
      if (ref.type === 'Patient') return visible.includes(ref.id);
      if (code === 'entity') throw forbidden("AuditEvents about a person can be searched by patient, agent, date and the event's codes; entity= is for privacy officers, except entity=Patient/<id>.");
      return false; // patient=<another type>/… matches nothing anyway
    });
    if (!values.length) return undefined; // every value names someone unseen: nothing matches
    narrowed.push({ ...f, values });
  }
  return narrowed;
}

function condition(f: Filter, alias: string): { text: string; params: Param[] } {
  const code = f.param.code;
  const ors: { text: string; params: Param[] }[] = f.values.map((value) => {
    switch (code) {
      case 'date':
        return dateCondition(value, `${alias}.recorded_ms`, `${alias}.recorded_ms`, code);
      case 'patient':
      case 'entity': {
        const ref = referenceTo(value, code);
        if (ref.type === 'Patient') {
          return { text: `j.seq IN (SELECT seq FROM audit_patient WHERE patient_id = ?${code === 'entity' ? ' AND as_agent = 0' : ''})`, params: [ref.id] };
        }
        if (code === 'patient') return { text: NEVER, params: [] };
        return { text: 'j.seq IN (SELECT seq FROM audit_entity WHERE ref = ? AND named = 0)', params: [`${ref.type}/${ref.id}`.slice(0, INDEXED_REF_LENGTH)] };
      }
      case 'entity-name': {
        const name = value.slice(0, INDEXED_REF_LENGTH);
        if (f.modifier === 'exact') return { text: 'j.seq IN (SELECT seq FROM audit_entity WHERE ref = ? AND named = 1)', params: [name] };
        return { text: 'j.seq IN (SELECT seq FROM audit_entity WHERE ref >= ? AND ref < ? AND named = 1)', params: [name, `${name}\u{10ffff}`] };
      }
      case 'agent': {
        const ref = referenceTo(value, code);
        return { text: 'j.agent_ref = ?', params: [`${ref.type}/${ref.id}`] };
      }
      default:
        return tokenCondition(code, value);
    }
  });
  return { text: `(${ors.map((o) => o.text).join(' OR ')})`, params: ors.flatMap((o) => o.params) };
}

function tokenCondition(code: string, value: string): { text: string; params: Param[] } {
  const column = COLUMN[code];
  const token = tokenValue(code as TokenParam, value);
  if (token === 'never') return { text: NEVER, params: [] };
  return token === 'any' ? { text: `${column} IS NOT NULL`, params: [] } : { text: `${column} = ?`, params: [token.code] };
}
