// The administrator's forms, checked on the server field by field (the NHS error summary links to each),
// before src/access checks the same again. What src/access still refuses comes back as an Error whose
// message is placed against the field it is about.
import { ORGANISATION_KINDS, ROLES, isRole, type Membership, type NewClient, type NewUser, type Organisation, type OrganisationKind, type Role } from '../../access/index.ts';
import type { FieldError } from '../page.ts';

/** Rows of organisation + role on the new-user form. */
export const MEMBERSHIP_ROWS = [1, 2, 3] as const;
const NO_ORGANISATION: readonly Role[] = ['carer', 'person'];
const ORGANISATION_OPTIONAL: readonly Role[] = ['admin'];
const USERNAME = /^[A-Za-z0-9][A-Za-z0-9._@-]{2,63}$/;
const FHIR_USER = /^(Practitioner|RelatedPerson|Patient)\/[A-Za-z0-9\-.]{1,64}$/;

export type FormValues = Record<string, string | undefined>;
export type Checked<T> = { ok: true; value: T } | { ok: false; errors: FieldError[] };

const text = (form: FormValues, field: string) => (typeof form[field] === 'string' ? form[field]!.trim() : '');

export function checkUserForm(form: FormValues): Checked<NewUser> {
  const errors: FieldError[] = [];
  const username = text(form, 'username');
  const name = text(form, 'name');
  const fhirUser = text(form, 'fhirUser');
  if (!username) errors.push({ field: 'username', text: 'Enter a username' });
  else if (!USERNAME.test(username)) errors.push({ field: 'username', text: 'The username must be 3 to 64 letters, digits or . _ @ -, starting with a letter or digit' });
  if (!name) errors.push({ field: 'name', text: 'Enter the person’s name, as colleagues know them' });
  else if (name.length > 200) errors.push({ field: 'name', text: 'The name must be 200 characters or fewer' });
  if (fhirUser && !FHIR_USER.test(fhirUser)) errors.push({ field: 'fhirUser', text: 'The record link must look like Practitioner/abc, RelatedPerson/abc or Patient/abc' });
  const memberships: Membership[] = [];
  for (const n of MEMBERSHIP_ROWS) {
    const organisation = text(form, `organisation${n}`);
    const role = text(form, `role${n}`);
    if (!organisation && !role) continue;
    if (!role) {
      errors.push({ field: `role${n}`, text: `Select the role held at ${organisation}` });
      continue;
    }
    if (!isRole(role)) {
      errors.push({ field: `role${n}`, text: `Select a role from the list (${ROLES.join(', ')})` });
      continue;
    }
    if (organisation && NO_ORGANISATION.includes(role)) errors.push({ field: `organisation${n}`, text: `A ${role} acts for themself: choose no organisation` });
    else if (!organisation && !NO_ORGANISATION.includes(role) && !ORGANISATION_OPTIONAL.includes(role)) errors.push({ field: `organisation${n}`, text: 'Select the organisation this role is held at' });
    else memberships.push({ organisation: organisation || undefined, role });
  }
  if (!memberships.length && !errors.some((e) => /^(role|organisation)\d$/.test(e.field))) errors.push({ field: 'role1', text: 'Select at least one role' });
  if (errors.length) return { ok: false, errors };
  return { ok: true, value: { username, name, memberships, ...(fhirUser ? { fhirUser } : {}), totp: form.totp === 'yes' } };
}

export function checkClientForm(form: FormValues): Checked<NewClient> {
  const errors: FieldError[] = [];
  const name = text(form, 'name');
  const scopes = text(form, 'scopes').replace(/\s+/g, ' ');
  const organization = text(form, 'organization');
  const redirectUris = text(form, 'redirectUris').split(/\s+/).filter(Boolean);
  if (!name) errors.push({ field: 'name', text: 'Enter a name for the client, such as the system it is' });
  else if (name.length > 200) errors.push({ field: 'name', text: 'The name must be 200 characters or fewer' });
  if (!scopes) errors.push({ field: 'scopes', text: 'Enter the SMART scopes the client may use, such as system/Patient.rs' });
  if (redirectUris.length > 10) errors.push({ field: 'redirectUris', text: 'Enter 10 redirect URIs or fewer' });
  if (errors.length) return { ok: false, errors };
  return { ok: true, value: { name, scopes, ...(organization ? { organization } : {}), ...(redirectUris.length ? { redirectUris } : {}) } };
}

export function checkOrganisationForm(form: FormValues): Checked<Organisation> {
  const errors: FieldError[] = [];
  const ods = text(form, 'ods').toUpperCase();
  const name = text(form, 'name');
  const kind = text(form, 'kind');
  if (!ods) errors.push({ field: 'ods', text: 'Enter the organisation’s ODS code' });
  else if (!/^[A-Z0-9]{3,10}$/.test(ods)) errors.push({ field: 'ods', text: 'The ODS code must be 3 to 10 letters and digits, like RX9 or VM101' });
  if (!name) errors.push({ field: 'name', text: 'Enter the organisation’s name' });
  else if (name.length > 200) errors.push({ field: 'name', text: 'The name must be 200 characters or fewer' });
  if (!(ORGANISATION_KINDS as readonly string[]).includes(kind)) errors.push({ field: 'kind', text: 'Select what kind of organisation it is' });
  if (errors.length) return { ok: false, errors };
  return { ok: true, value: { ods, name, kind: kind as OrganisationKind } };
}

/**
 * An Error from src/access, placed against the field its message is about (the first rule that matches),
 * else against `fallback`.
 */
export function placeError(err: unknown, rules: [RegExp, string][], fallback: string): FieldError {
  // src/access refuses input with a plain Error; anything else (a database failure) is not the user's to fix.
  if (!(err instanceof Error) || err.constructor !== Error || 'code' in err) throw err;
  const field = rules.find(([pattern]) => pattern.test(err.message))?.[1] ?? fallback;
  return { field, text: err.message.replace(/\.$/, '') };
}
