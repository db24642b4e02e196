// How each role is named on screen, and where a person in that role starts.
import type { Role } from '../access/index.ts';

export const ROLE_LABELS: Record<Role, string> = {
  'care-home-staff': 'Care home staff',
  'care-home-manager': 'Care home manager',
  'ward-nurse': 'Ward nurse',
  'discharge-coordinator': 'Discharge coordinator',
  'social-worker': 'Social worker',
  broker: 'Care broker',
  gp: 'GP',
  carer: 'Carer',
  person: 'My own record',
  'privacy-officer': 'Privacy officer',
  admin: 'Administrator',
};

const HOME_PATHS: Partial<Record<Role, string>> = {
  'care-home-staff': '/care-home',
  'care-home-manager': '/care-home',
  'ward-nurse': '/hospital',
  'discharge-coordinator': '/hospital',
  'social-worker': '/council',
  broker: '/council',
  'privacy-officer': '/privacy-officer',
  admin: '/admin',
};

/** The first page after sign-in. Roles whose pages are not built yet (GP, carer, the person) start on the general home page. */
export function homePath(role: Role): string {
  return HOME_PATHS[role] ?? '/home';
}
