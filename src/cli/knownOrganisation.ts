// Makes an ODS code a known organisation, for `carebridge mesh mailbox add`: a mailbox is always some
// organisation's, and ADW (and the red bag) refuse messages whose organisations the record does not hold, so
// an integrator's first mailbox on a fresh database must not leave its organisation unknown. Known means
// both an Organization in the record with the ODS identifier (what workflows look up) and an organisation
// in access (what people's memberships name). Whatever already exists is kept as it is.
import { addOrganisation, findOrganisation, migrateAccess } from '../access/index.ts';
import { handleFhirRequest, UNRESTRICTED, type SqlDriver } from '../record/index.ts';

const ODS_ORGANIZATION = 'https://fhir.nhs.uk/Id/ods-organization-code';

export interface KnownOrganisation {
  ods: string;
  name: string;
  /** Whether this call added it to the record, to access, or both (nothing added: it was known). */
  added: { record: boolean; access: boolean };
}

function bodyOf(res: { body?: unknown }): any {
  return typeof res.body === 'string' ? JSON.parse(res.body) : res.body;
}

/** `ods` must already be normalised (upper case, checked). */
export async function makeOrganisationKnown(driver: SqlDriver, ods: string): Promise<KnownOrganisation> {
  await migrateAccess(driver);
  // The operator on the database directly is not subject to API access rules (as import and demo are).
  const ctx = { base: 'http://localhost/fhir', driver, access: UNRESTRICTED };
  const found = bodyOf(await handleFhirRequest(ctx, { method: 'GET', path: 'Organization', query: [['identifier', ods], ['_count', '1']] }));
  const inRecord = found?.entry?.[0]?.resource as { name?: string } | undefined;
  const inAccess = await findOrganisation(driver, ods);
  const name = inRecord?.name ?? inAccess?.name ?? `Organisation ${ods} (added with its MESH mailbox)`;
  let addedToRecord = false;
  if (!inRecord) {
    // Conditional create: two operators adding mailboxes of one organisation at once still make one.
    const created = await handleFhirRequest(ctx, {
      method: 'POST', path: 'Organization', query: [], ifNoneExist: `identifier=${ods}`, prefer: 'return=minimal',
      body: { resourceType: 'Organization', active: true, identifier: [{ system: ODS_ORGANIZATION, value: ods }], name },
    });
    addedToRecord = created.status === 201;
  }
  let addedToAccess = false;
  if (!inAccess) {
    try {
      await addOrganisation(driver, { ods, name, kind: 'other' });
      addedToAccess = true;
    } catch (err) {
      if (!(await findOrganisation(driver, ods))) throw err; // not someone else adding it at the same moment
    }
  }
  return { ods, name, added: { record: addedToRecord, access: addedToAccess } };
}
