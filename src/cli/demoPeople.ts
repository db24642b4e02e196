// Demo people for `carebridge serve` on an empty database: the demo dataset's organisations, and one
// account per role linked to the demo Practitioner / RelatedPerson / Patient it stands for, each with a
// random password printed once. Only ever run for a server bound to loopback (see serve.ts).
import { addOrganisation, addUser, generatePassword, listOrganisations, listUsers, type OrganisationKind, type Role } from '../access/index.ts';
import { handleFhirRequest, SYNTHETIC_TAG, UNRESTRICTED, type SqlDriver } from '../record/index.ts';

const ODS_SYSTEM = 'https://fhir.nhs.uk/Id/ods-organization-code';

interface DemoPerson { username: string; role: Role; organisation?: string; fhirUser?: string; name: string }

export const DEMO_PEOPLE: DemoPerson[] = [
  { username: 'demo-care-worker', role: 'care-home-staff', organisation: 'VM101', fhirUser: 'Practitioner/demo-prac-vm101-senior-carer', name: 'Demo care worker' },
  { username: 'demo-care-manager', role: 'care-home-manager', organisation: 'VM101', fhirUser: 'Practitioner/demo-prac-vm101-manager', name: 'Demo care-home manager' },
  { username: 'demo-ward-nurse', role: 'ward-nurse', organisation: 'RX9', fhirUser: 'Practitioner/demo-prac-rx901-ward-07-nurse', name: 'Demo ward nurse' },
  { username: 'demo-discharge', role: 'discharge-coordinator', organisation: 'RX9', fhirUser: 'Practitioner/demo-prac-rx9-discharge-coordinator', name: 'Demo discharge coordinator' },
  { username: 'demo-social-worker', role: 'social-worker', organisation: 'LA918', fhirUser: 'Practitioner/demo-prac-la918-social-worker-1', name: 'Demo social worker' },
  { username: 'demo-broker', role: 'broker', organisation: 'LA918', name: 'Demo care broker' },
  { username: 'demo-gp', role: 'gp', organisation: 'Y01234', fhirUser: 'Practitioner/demo-prac-y01234-gp', name: 'Demo GP' },
  { username: 'demo-family-carer', role: 'carer', fhirUser: 'RelatedPerson/demo-rp-vm101-01-nok', name: 'Demo family carer' },
  { username: 'demo-resident', role: 'person', fhirUser: 'Patient/demo-pat-vm101-01', name: 'Demo resident' },
  { username: 'demo-privacy-officer', role: 'privacy-officer', organisation: 'LA918', name: 'Demo privacy officer' },
  { username: 'demo-admin', role: 'admin', name: 'Demo administrator' },
];

/** Whether a resource carries the synthetic-data tag: demo accounts are only ever made over demo data. */
function isSynthetic(resource: Record<string, any> | undefined): boolean {
  return Boolean(resource?.meta?.tag?.some((t: { system?: string; code?: string }) => t.system === SYNTHETIC_TAG.system && t.code === SYNTHETIC_TAG.code));
}

function kindOf(typeText: string | undefined): OrganisationKind {
  const text = (typeText ?? '').toLowerCase();
  if (text.includes('care home')) return 'care-home';
  if (text.includes('gp practice')) return 'gp-practice';
  if (text.includes('trust') || text.includes('hospital')) return 'hospital';
  if (text.includes('local authority') || text.includes('council')) return 'council';
  return 'other';
}

async function read(driver: SqlDriver, reference: string): Promise<Record<string, any> | undefined> {
  try {
    const res = await handleFhirRequest({ base: 'http://localhost/fhir', driver, access: UNRESTRICTED }, { method: 'GET', path: reference, query: [] });
    return typeof res.body === 'string' ? JSON.parse(res.body) : (res.body as Record<string, any>);
  } catch {
    return undefined; // not in the record (another dataset was loaded): the account goes without the link
  }
}

/** The record's Organizations that carry an ODS code, registered as organisations people act for. */
async function seedOrganisations(driver: SqlDriver): Promise<void> {
  const res = await handleFhirRequest({ base: 'http://localhost/fhir', driver, access: UNRESTRICTED }, { method: 'GET', path: 'Organization', query: [['_count', '1000']] });
  const bundle = typeof res.body === 'string' ? JSON.parse(res.body) : (res.body as Record<string, any>);
  const known = new Set((await listOrganisations(driver)).map((o) => o.ods));
  for (const { resource } of bundle.entry ?? []) {
    const ods = (resource.identifier ?? []).find((i: { system?: string }) => i.system === ODS_SYSTEM)?.value;
    if (!ods || known.has(ods) || !isSynthetic(resource)) continue;
    await addOrganisation(driver, { ods, name: resource.name ?? ods, kind: kindOf(resource.type?.[0]?.text) });
    known.add(ods);
  }
}

function nameOf(resource: Record<string, any> | undefined): string | undefined {
  const n = resource?.name?.[0];
  return n ? [...(n.prefix ?? []), ...(n.given ?? []), n.family].filter(Boolean).join(' ') : undefined;
}

/**
 * Whether the record is the demo dataset and nothing else, so demo credentials reach no real person: the
 * demo council is there, tagged synthetic, and no Patient lacks the tag. (A Patient whose JSON does not even
 * mention HTEST cannot carry the tag; the check stops at the first, however large the record.)
 */
export async function holdsOnlyDemoData(driver: SqlDriver): Promise<boolean> {
  if (!isSynthetic(await read(driver, 'Organization/demo-org-la918'))) return false;
  const real = await driver.get("SELECT 1 AS one FROM resources WHERE type = 'Patient' AND deleted = 0 AND content NOT LIKE '%HTEST%' LIMIT 1");
  return !real;
}

/** On a database with no users: demo organisations and people; the lines to print (their logins, once). */
export async function seedDemoPeople(driver: SqlDriver): Promise<string[]> {
  if ((await listUsers(driver)).length) return [];
  // A database holding real records never gets demo accounts, whatever the address.
  if (!(await holdsOnlyDemoData(driver))) return [];
  await seedOrganisations(driver);
  const organisations = new Set((await listOrganisations(driver)).map((o) => o.ods));
  const logins: string[] = [];
  for (const person of DEMO_PEOPLE) {
    if (person.organisation && !organisations.has(person.organisation)) continue;
    const found = person.fhirUser ? await read(driver, person.fhirUser) : undefined;
    const linked = isSynthetic(found) ? found : undefined;
    // A person or carer without their record link could see nothing: leave them out rather than mislead.
    if ((person.role === 'person' || person.role === 'carer') && !linked) continue;
    const password = generatePassword();
    const name = `${nameOf(linked) ?? person.name} (DEMO)`;
    await addUser(driver, {
      username: person.username, name, password,
      memberships: [{ organisation: person.organisation, role: person.role }],
      ...(linked ? { fhirUser: person.fhirUser } : {}),
    });
    const membership = person.organisation ? `${person.role}@${person.organisation}` : person.role;
    logins.push(`  ${person.username.padEnd(21)} ${password}  ${membership.padEnd(28)} ${name}`);
  }
  if (!logins.length) return [];
  return ['DEMO PEOPLE (shown once; demo data only; this machine only): username, password, role@organisation, name', ...logins];
}
