// The organisation a signed-in person works for (care home, hospital trust, council), found in the record
// by its ODS code.
import type { UserActor } from '../../access/index.ts';
import type { RecordClient, Resource } from '../recordClient.ts';
import { NotInRecord } from '../pageErrors.ts';
import { ODS_ORGANIZATION } from '../careHome/codes.ts';

export async function organisationOf(record: RecordClient, actor: UserActor): Promise<Resource> {
  if (!actor.organisation) throw new NotInRecord('You are not signed in for an organisation. Sign out and choose the organisation you work for.');
  const { matches } = await record.search('Organization', [['identifier', `${ODS_ORGANIZATION}|${actor.organisation}`]]);
  if (!matches[0]) throw new NotInRecord(`Your organisation (ODS code ${actor.organisation}) is not in the shared record yet. Ask your administrator to add it.`);
  return matches[0];
}
