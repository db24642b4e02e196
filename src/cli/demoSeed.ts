// What `carebridge serve` does on an empty database so that a newcomer has something to look at:
// load the synthetic demo dataset, create a demo system client and demo people (organisations and one
// account per role), printing their logins once.
import { addClient, listClients, migrateAccess } from '../access/index.ts';
import { holdsOnlyDemoData, seedDemoPeople } from './demoPeople.ts';
import { handleFhirRequest, UNRESTRICTED, type SqlDriver } from '../record/index.ts';

export const DEMO_CLIENT_ID = 'demo-integration';

export async function seedDemoIfEmpty(driver: SqlDriver, origin: string): Promise<string[]> {
  const lines: string[] = [];
  const anyPatient = await driver.get("SELECT 1 AS one FROM resources WHERE type = 'Patient' LIMIT 1");
  const loaded = !anyPatient;
  if (loaded) {
    const { buildDemoDataset } = await import('../demo/index.ts');
    const { bundle, summary } = buildDemoDataset();
    await handleFhirRequest({ base: `${origin}/fhir`, driver, access: UNRESTRICTED }, { method: 'POST', path: '', query: [], body: bundle, prefer: 'return=minimal' });
    lines.push(`Loaded the synthetic demo dataset (${Object.values(summary).reduce((a, b) => a + b, 0)} resources, all tagged HTEST).`);
  }
  await migrateAccess(driver);
  // system/*.cruds reaches every record: only ever over demo data, never a database of real people's.
  if (!(await listClients(driver)).length && (loaded || (await holdsOnlyDemoData(driver)))) {
    const { secret } = await addClient(driver, { clientId: DEMO_CLIENT_ID, name: 'Demo integration (demo only)', scopes: 'system/*.cruds' });
    lines.push(
      'DEMO LOGIN (shown once; demo data only; this machine only):',
      `  system client  client_id=${DEMO_CLIENT_ID}  client_secret=${secret}`,
      `  get a token:   curl -s -u ${DEMO_CLIENT_ID}:${secret} -d grant_type=client_credentials ${origin}/oauth2/token`,
    );
  }
  lines.push(...(await seedDemoPeople(driver)));
  return lines;
}
