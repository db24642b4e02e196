// What the person sending a red bag adds to what the record already holds: the reason (and SBARD
// handover), the belongings in the bag, the hospital, the baseline when well, and their attestation.
// Read from a FHIR Parameters resource (the API) or a form (the portal), checked the same way.
import { BASELINE_DOMAINS, BELONGINGS, type BaselineDomain } from './codes.ts';
import { FhirError } from '../record/index.ts';

export interface TransferDetails {
  /** Situation: why the resident is going to hospital (free text). */
  reason?: string;
  /** The rest of the SBARD handover, when the sender adds to what the record says. */
  background?: string;
  assessment?: string;
  recommendation?: string;
  decision?: string;
  /** ODS code of the receiving hospital. */
  destination?: string;
  belongings: string[];
  baseline: Partial<Record<BaselineDomain, string>>;
  /** The sender attests that the pack is accurate and complete to the best of their knowledge. */
  attested: boolean;
}

const MAX_TEXT = 4000;
const TEXT_FIELDS = ['reason', 'background', 'assessment', 'recommendation', 'decision', 'destination'] as const;

function invalid(diagnostics: string, expression?: string): FhirError {
  return new FhirError(400, [{ severity: 'error', code: 'invalid', diagnostics, ...(expression ? { expression: [expression] } : {}) }]);
}

function text(value: unknown, name: string): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') throw invalid(`'${name}' must be text.`, name);
  const trimmed = value.trim();
  if (trimmed.length > MAX_TEXT) throw invalid(`'${name}' is longer than ${MAX_TEXT} characters; keep the handover short and put detail in the record.`, name);
  return trimmed || undefined;
}

/**
 * From a Parameters resource: reason, background, assessment, recommendation, decision, destination
 * (valueString), belonging (repeating valueString), baseline-<domain> (valueString), attest (valueBoolean).
 * An absent body means no details yet (a draft from the record alone).
 */
export function detailsFromParameters(body: unknown): TransferDetails {
  const details: TransferDetails = { belongings: [], baseline: {}, attested: false };
  if (body === undefined || body === null || body === '') return details;
  const parameters = body as { resourceType?: string; parameter?: unknown };
  if (typeof body !== 'object' || parameters.resourceType !== 'Parameters') throw invalid('Send the transfer details as a FHIR Parameters resource (reason, destination, belonging, baseline-mobility…, attest), or no body for a draft from the record alone.');
  if (parameters.parameter !== undefined && !Array.isArray(parameters.parameter)) throw invalid('Parameters.parameter must be a list.', 'Parameters.parameter');
  for (const p of (parameters.parameter ?? []) as { name?: unknown; valueString?: unknown; valueBoolean?: unknown }[]) {
    const name = typeof p?.name === 'string' ? p.name : '';
    if ((TEXT_FIELDS as readonly string[]).includes(name)) details[name as (typeof TEXT_FIELDS)[number]] = text(p.valueString, name);
    else if (name === 'belonging') {
      const item = text(p.valueString, name);
      if (item) details.belongings.push(item);
    } else if (name.startsWith('baseline-') && Object.hasOwn(BASELINE_DOMAINS, name.slice(9))) details.baseline[name.slice(9) as BaselineDomain] = text(p.valueString, name);
    else if (name === 'attest') {
      if (typeof p.valueBoolean !== 'boolean') throw invalid("'attest' takes valueBoolean.", 'attest');
      details.attested = p.valueBoolean;
    } else throw invalid(`Unknown parameter '${name}': use reason, background, assessment, recommendation, decision, destination, belonging, ${Object.keys(BASELINE_DOMAINS).map((d) => `baseline-${d}`).join(', ')} or attest.`, name || 'Parameters.parameter');
  }
  if (details.belongings.length > 50) throw invalid('List at most 50 belongings.', 'belonging');
  return details;
}

/** The same details as Parameters (the portal sends them this way; tests build them with it). */
export function detailsToParameters(details: Partial<TransferDetails>): Record<string, unknown> {
  const parameter: Record<string, unknown>[] = [];
  for (const name of TEXT_FIELDS) if (details[name]) parameter.push({ name, valueString: details[name] });
  for (const item of details.belongings ?? []) parameter.push({ name: 'belonging', valueString: item });
  for (const [domain, value] of Object.entries(details.baseline ?? {})) if (value) parameter.push({ name: `baseline-${domain}`, valueString: value });
  if (details.attested !== undefined) parameter.push({ name: 'attest', valueBoolean: details.attested });
  return { resourceType: 'Parameters', parameter };
}

export const BELONGING_CHOICES: readonly string[] = BELONGINGS;
