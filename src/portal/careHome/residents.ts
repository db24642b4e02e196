// The care home's residents list: active episodes of care at the home, their patients, and each one's
// active alerts (Flags, and DNACPR decisions) as tags. Searchable by name or NHS number.
import { isValidNhsNumber, NHS_NUMBER_SYSTEM } from '../../record/index.ts';
import type { UserActor } from '../../access/index.ts';
import type { RecordClient } from '../recordClient.ts';
import type { FieldError } from '../page.ts';
import { nhsNumberOf, personName } from '../person/text.ts';
import { alertsFor, type Alert } from '../person/alerts.ts';
import { organisationOf } from '../person/organisation.ts';

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
  const careHome = await organisationOf(record, actor);
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

/** The ids of the home's current residents (for the live residents list: who is on the page). */
export async function residentIds(record: RecordClient, actor: UserActor): Promise<Set<string>> {
  const careHome = await organisationOf(record, actor);
  const { matches } = await record.search('EpisodeOfCare', [['organization', `Organization/${careHome.id}`], ['status', 'active'], ['_elements', 'patient'], ['_count', String(PAGE)]]);
  return new Set(matches.map((e) => String(e.patient?.reference ?? '').replace(/^Patient\//, '')).filter(Boolean));
}
