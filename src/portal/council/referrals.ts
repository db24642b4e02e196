// The council's home list: the people with an open referral to the user's council (ServiceRequest,
// performer = the council, status active), newest first. A stand-in until the discharge work brings the
// real referral queue; it reads only what that queue will also show.
import type { UserActor } from '../../access/index.ts';
import type { RecordClient } from '../recordClient.ts';
import { organisationOf } from '../person/organisation.ts';
import { conceptText, nhsNumberOf, personName } from '../person/text.ts';

const PAGE = 200;

export interface ReferralRow {
  patientId: string;
  name: string;
  nhsNumber?: string;
  referral: string;
  from?: string;
  received?: string;
}

export interface ReferralsView {
  council: { id: string; name: string };
  referrals: ReferralRow[];
  more: boolean;
}

export async function referralsView(record: RecordClient, actor: UserActor): Promise<ReferralsView> {
  const council = await organisationOf(record, actor);
  const found = await record.search('ServiceRequest', [
    ['performer', `Organization/${council.id}`],
    ['status', 'active'],
    ['_include', 'ServiceRequest:subject'],
    ['_sort', '-authored'],
    ['_count', String(PAGE)],
  ]);
  const patients = new Map(found.included.filter((r) => r.resourceType === 'Patient').map((p) => [p.id, p]));
  const referrals = found.matches.flatMap((s): ReferralRow[] => {
    const patientId = String(s.subject?.reference ?? '').replace(/^Patient\//, '');
    const patient = patients.get(patientId);
    if (!patient) return [];
    return [{ patientId, name: personName(patient), nhsNumber: nhsNumberOf(patient), referral: conceptText(s.code) || 'Referral', from: s.requester?.display, received: s.authoredOn }];
  });
  return { council: { id: council.id, name: council.name ?? actor.organisation ?? '' }, referrals, more: found.more };
}
