// The pages that update themselves, and how each one knows who is on it: read through the record with
// the signed-in person's access, so a live page never hears about anyone its user may not see.
import type { Role, UserActor } from '../../access/index.ts';
import type { RecordClient } from '../recordClient.ts';
import { CARE_HOME_ROLES } from '../careHome/routes.ts';
import { HOSPITAL_ROLES } from '../hospital/routes.ts';
import { residentIds } from '../careHome/residents.ts';
import { inpatientIds } from '../hospital/wardList.ts';

export interface LiveBoard {
  roles: ReadonlySet<Role>;
  /** The ids of the people the page lists. */
  people(record: RecordClient, actor: UserActor): Promise<Set<string>>;
  /** A change to one of these types, about someone on the page, refreshes it. */
  types: ReadonlySet<string>;
  /** A change of this type can add someone to the page or take them off it: who is on it is read again. */
  membership: string;
}

export const LIVE_BOARDS: Record<string, LiveBoard> = {
  residents: { roles: CARE_HOME_ROLES, people: residentIds, types: new Set(['Observation', 'Encounter', 'Flag', 'EpisodeOfCare', 'Consent']), membership: 'EpisodeOfCare' },
  wards: { roles: HOSPITAL_ROLES, people: inpatientIds, types: new Set(['Observation', 'Encounter', 'Flag', 'Consent']), membership: 'Encounter' },
};
