// What an opt-in Consent must say for the access rules to honour it as written. A carer's delegation is
// read from the record by search (relationships.ts), and search sees only what the record indexes: the
// Consent's status, category, the actors and period of its top-level provision, never whether that
// provision permits or denies, nor any nested provision. An active opt-in the searches would misread is
// refused when it is written, rather than read wrongly for as long as it stays in force (hazard H-039).
import { FhirError } from '../record/index.ts';

const ACT_CODE = 'http://terminology.hl7.org/CodeSystem/v3-ActCode';

interface Coding { system?: unknown; code?: unknown }

/** Whether the Consent is an opt-in, as the delegation search matches it (category = v3-ActCode|OPTIN). */
function isOptIn(consent: Readonly<Record<string, unknown>>): boolean {
  const categories = Array.isArray(consent.category) ? consent.category : [];
  return categories.some((c: { coding?: Coding[] }) => (c?.coding ?? []).some((coding) => coding.system === ACT_CODE && coding.code === 'OPTIN'));
}

function refused(diagnostics: string, expression: string): FhirError {
  return new FhirError(422, [{ severity: 'error', code: 'business-rule', diagnostics, expression: [expression] }]);
}

/**
 * Throws 422 for an active opt-in Consent whose top-level provision is not a plain permit: a `deny` (or no
 * type) naming a carer would let them in, since the search cannot tell it from a permit; a nested provision
 * (an exception, such as "but not my mental health notes") cannot be enforced, since access is to the
 * whole record. Anything else, and any Consent not in force (a withdrawal: status inactive), passes.
 */
export function checkOptInConsent(resource: Readonly<Record<string, unknown>>): void {
  if (resource.resourceType !== 'Consent' || resource.status !== 'active' || !isOptIn(resource)) return;
  const provision = resource.provision as { type?: unknown; provision?: unknown } | undefined;
  if (provision?.type !== 'permit') {
    throw refused(
      `An active opt-in Consent (category OPTIN) shares the person's record with the people its provision names, so provision.type must be 'permit' (it is ${provision?.type === undefined ? 'missing' : `'${String(provision.type)}'`}). To stop sharing with someone, set this Consent's status to 'inactive' or remove them from provision.actor.`,
      'Consent.provision.type',
    );
  }
  if (provision.provision !== undefined) {
    throw refused(
      "CareBridge cannot enforce exceptions within an opt-in Consent: a carer it names sees the person's whole record. Remove the nested provision (Consent.provision.provision): share the whole record with the people named, or do not share with them.",
      'Consent.provision.provision',
    );
  }
}
