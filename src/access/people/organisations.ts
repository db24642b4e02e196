// The organisations people act for, by ODS code: care homes, hospital trusts, councils, GP practices.
import type { SqlExecutor } from '../../record/index.ts';

export const ORGANISATION_KINDS = ['care-home', 'hospital', 'council', 'gp-practice', 'other'] as const;
export type OrganisationKind = (typeof ORGANISATION_KINDS)[number];

export interface Organisation { ods: string; name: string; kind: OrganisationKind }

// The same shape the record accepts for an ODS identifier on an Organization.
const ODS_CODE = /^[A-Z0-9]{3,10}$/;

/** The ODS code in upper case; throws a message naming the bad value. */
export function normaliseOds(value: string): string {
  const ods = value.trim().toUpperCase();
  if (!ODS_CODE.test(ods)) throw new Error(`'${value}' is not an ODS code: 3 to 10 letters and digits, e.g. RX9 or VM101.`);
  return ods;
}

export function isOrganisationKind(value: string): value is OrganisationKind {
  return (ORGANISATION_KINDS as readonly string[]).includes(value);
}

export async function addOrganisation(db: SqlExecutor, org: { ods: string; name: string; kind: OrganisationKind | string }): Promise<Organisation> {
  const ods = normaliseOds(org.ods);
  const name = org.name?.trim();
  if (!name) throw new Error(`Organisation ${ods} needs a name.`);
  if (!isOrganisationKind(org.kind)) throw new Error(`'${org.kind}' is not a kind of organisation: use one of ${ORGANISATION_KINDS.join(', ')}.`);
  const inserted = await db.run('INSERT INTO access_organisations (ods, name, kind, created_ms) VALUES (?, ?, ?, ?) ON CONFLICT (ods) DO NOTHING', [ods, name, org.kind, Date.now()]);
  if (!inserted) throw new Error(`An organisation ${ods} already exists.`);
  return { ods, name, kind: org.kind };
}

export async function listOrganisations(db: SqlExecutor): Promise<Organisation[]> {
  return db.all<Organisation>('SELECT ods, name, kind FROM access_organisations ORDER BY ods');
}

export async function findOrganisation(db: SqlExecutor, ods: string): Promise<Organisation | undefined> {
  return db.get<Organisation>('SELECT ods, name, kind FROM access_organisations WHERE ods = ?', [ods]);
}
