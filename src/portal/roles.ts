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
  person: '/me',
  gp: '/gp',
  carer: '/carer',
};

/** The first page after sign-in (a role without pages of its own would start on the general home page). */
export function homePath(role: Role): string {
  return HOME_PATHS[role] ?? '/home';
}

export interface NavigationItem { href: string; text: string }

const CARE_HOME_NAV: NavigationItem[] = [{ href: '/care-home', text: 'Residents' }, { href: '/red-bag', text: 'Red bags' }];
const HOSPITAL_NAV: NavigationItem[] = [
  { href: '/hospital', text: 'Ward list' }, { href: '/red-bag', text: 'Red bags' },
  { href: '/discharge/board', text: 'Discharge board' }, { href: '/discharge/metrics', text: 'Discharge figures' },
];
const COUNCIL_NAV: NavigationItem[] = [
  { href: '/council', text: 'People referred' }, { href: '/discharge/referrals', text: 'Referral queue' },
  { href: '/discharge/metrics', text: 'Discharge figures' },
];

/** The header's links for a role: the few pages a person in it moves between all day. */
const NAVIGATION: Partial<Record<Role, NavigationItem[]>> = {
  'care-home-staff': CARE_HOME_NAV,
  'care-home-manager': CARE_HOME_NAV,
  'ward-nurse': HOSPITAL_NAV,
  'discharge-coordinator': HOSPITAL_NAV,
  'social-worker': COUNCIL_NAV,
  broker: COUNCIL_NAV,
  'privacy-officer': [{ href: '/privacy-officer', text: 'Break-glass alerts' }, { href: '/privacy-officer/audit', text: 'Audit search' }],
  person: [{ href: '/me', text: 'Who has looked at your record' }, { href: '/me/record', text: 'Your record' }],
  gp: [{ href: '/gp', text: 'Registered patients' }],
  carer: [{ href: '/carer', text: 'People you care for' }],
  admin: [{ href: '/admin/users', text: 'People' }, { href: '/admin/clients', text: 'System clients' }, { href: '/admin/organisations', text: 'Organisations' }, { href: '/admin/dead-letters', text: 'Dead letters' }],
};

/**
 * The role's header links. The link for the page at `path` is `current`; the one whose section holds it
 * (the longest matching prefix: a resident's page sits under Residents) is `active`.
 */
export function navigationFor(role: Role, path: string): (NavigationItem & { current: boolean; active: boolean })[] {
  const items = NAVIGATION[role] ?? [];
  const section = items.filter((i) => path.startsWith(`${i.href}/`)).sort((a, b) => b.href.length - a.href.length)[0];
  const exact = items.find((i) => i.href === path);
  return items.map((i) => ({ ...i, current: i === exact, active: !exact && i === section }));
}
