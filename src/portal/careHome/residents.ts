// The care home's residents list: active episodes of care at the home, their patients, and each one's
// active alerts (Flags, and DNACPR decisions) as tags. Searchable by name or NHS number.
import { isValidNhsNumber, NHS_NUMBER_SYSTEM } from '../../record/index.ts';
import type { UserActor } from '../../access/index.ts';
import type { RecordClient, Resource } from '../recordClient.ts';
import type { FieldError } from '../page.ts';
import { careHomeOf, conceptText, nhsNumberOf, personName } from './careHome.ts';

export interface Alert {
  text: string;
  /** nhsuk-frontend tag colour. */
  colour: 'red' | 'orange' | 'yellow' | 'blue';
}

export interface ResidentRow {
  id: string;
  name: string;
  sortName: string;
  nhsNumber?: string;
  birthDate?: string;
  alerts: Alert[];
}

export interface ResidentsView {
  careHome: { id: string; name: string };
  query: string;
  residents: ResidentRow[];
  /** More residents than one page holds (the list says so rather than silently cut it). */
  more: boolean;
  errors: FieldError[];
}

const PAGE = 200;
/** The record takes up to 100 values in one OR list. */
const OR_LIMIT = 100;

/** What the search box asks for, or why it cannot be searched for. */
export function residentSearch(raw: string | undefined): { params: [string, string][]; error?: string } {
  const query = (raw ?? '').trim();
  if (!query) return { params: [] };
  if (query.length > 100) return { params: [], error: 'Search for a name or NHS number of 100 characters or fewer' };
  const digits = query.replace(/[\s-]/g, '');
  if (/^\d+$/.test(digits)) {
    if (digits.length !== 10) return { params: [], error: 'An NHS number has 10 digits' };
    if (!isValidNhsNumber(digits)) return { params: [], error: 'Check the NHS number: it is not a valid NHS number' };
    return { params: [['patient.identifier', `${NHS_NUMBER_SYSTEM}|${digits}`]] };
  }
  return { params: [['patient.name', query]] };
}

export async function residentsView(record: RecordClient, actor: UserActor, rawQuery?: string): Promise<ResidentsView> {
  const careHome = await careHomeOf(record, actor);
  const query = (rawQuery ?? '').trim();
  const search = residentSearch(query);
  const view: ResidentsView = { careHome: { id: careHome.id, name: careHome.name ?? actor.organisation ?? '' }, query, residents: [], more: false, errors: [] };
  if (search.error) {
    view.errors.push({ field: 'q', text: search.error });
    return view;
  }
  const episodes = await record.search('EpisodeOfCare', [
    ['organization', `Organization/${careHome.id}`],
    ['status', 'active'],
    ...search.params,
    ['_include', 'EpisodeOfCare:patient'],
    ['_count', String(PAGE)],
  ]);
  const patients = episodes.included.filter((r) => r.resourceType === 'Patient');
  const alerts = await alertsFor(record, patients.map((p) => p.id));
  view.more = episodes.more;
  view.residents = patients
    .map((p) => ({
      id: p.id,
      name: personName(p),
      sortName: `${p.name?.[0]?.family ?? ''} ${(p.name?.[0]?.given ?? []).join(' ')}`.toLowerCase(),
      nhsNumber: nhsNumberOf(p),
      birthDate: p.birthDate,
      alerts: alerts.get(p.id) ?? [],
    }))
    .sort((a, b) => a.sortName.localeCompare(b.sortName, 'en-GB'));
  return view;
}

/** Active Flags and DNACPR decisions, per patient id, fetched in as few searches as the OR limit allows. */
export async function alertsFor(record: RecordClient, patientIds: string[]): Promise<Map<string, Alert[]>> {
  const byPatient = new Map<string, Alert[]>();
  const add = (ref: string | undefined, alert: Alert) => {
    const id = ref?.replace(/^Patient\//, '');
    if (!id) return;
    byPatient.set(id, [...(byPatient.get(id) ?? []), alert]);
  };
  for (let i = 0; i < patientIds.length; i += OR_LIMIT) {
    const ids = patientIds.slice(i, i + OR_LIMIT).join(',');
    const [dnacpr, flags] = await Promise.all([
      record.search('Consent', [['patient', ids], ['status', 'active'], ['category', 'http://terminology.hl7.org/CodeSystem/consentcategorycodes|dnr'], ['_count', '1000']]),
      record.search('Flag', [['patient', ids], ['status', 'active'], ['_count', '1000']]),
    ]);
    for (const c of dnacpr.matches) add(c.patient?.reference, { text: 'DNACPR', colour: 'red' });
    for (const f of flags.matches) add(f.subject?.reference, flagAlert(f));
  }
  return byPatient;
}

export function flagAlert(flag: Resource): Alert {
  const safety = (flag.category ?? []).some((c: any) => c.coding?.some((k: any) => k.code === 'safety'));
  return { text: conceptText(flag.code), colour: safety ? 'orange' : 'yellow' };
}
