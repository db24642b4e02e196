// GET /metadata: a CapabilityStatement generated from the same definitions the server runs on, so it
// lists exactly what is supported.
import { definitions } from './definitions.ts';
import type { ResourceTypeServices } from './typeService.ts';
import type { FhirOperations } from './operations.ts';

/** Where the operations other capabilities add are defined (a canonical name; not served as a resource). */
const OPERATION_CANONICAL = 'https://carebridge.example/fhir/OperationDefinition';

const INTERACTIONS = ['read', 'vread', 'update', 'patch', 'delete', 'history-instance', 'history-type', 'create', 'search-type'];
let cached: { base: string; services?: ResourceTypeServices; operations?: FhirOperations; json: string } | undefined;

export function capabilityStatement(base: string, services?: ResourceTypeServices, operations?: FhirOperations): string {
  if (cached?.base === base && cached.services === services && cached.operations === operations) return cached.json;
  const defs = definitions();
  const resource = [...defs.resourceTypes].sort().map((type) => {
    const service = services && Object.hasOwn(services, type) ? services[type] : undefined;
    if (service) {
      return { type, interaction: [{ code: 'read' }, { code: 'search-type' }], versioning: 'no-version', readHistory: false, updateCreate: false, searchParam: service.searchParams };
    }
    const params = [...defs.searchParams(type).values()];
    const references = params.filter((p) => p.type === 'reference');
    return {
      type,
      interaction: INTERACTIONS.map((code) => ({ code })),
      versioning: 'versioned',
      readHistory: true,
      updateCreate: true,
      conditionalCreate: true,
      conditionalUpdate: true,
      conditionalDelete: 'single',
      searchInclude: ['*', ...references.map((p) => `${type}:${p.code}`)],
      searchRevInclude: ['*'],
      searchParam: params
        .map((p) => ({ name: p.code, type: p.type }))
        .concat(params.some((p) => p.code === '_lastUpdated') ? [] : [{ name: '_lastUpdated', type: 'date' }]),
      ...operationsOf(type, operations),
    };
  });
  const statement = {
    resourceType: 'CapabilityStatement',
    status: 'active',
    date: '2026-11-26',
    publisher: 'CareBridge',
    kind: 'instance',
    software: { name: 'CareBridge', version: '0.1.0' },
    implementation: { description: 'CareBridge shared care record', url: base },
    fhirVersion: '4.0.1',
    format: ['application/fhir+json', 'json'],
    patchFormat: ['application/json-patch+json'],
    rest: [
      {
        mode: 'server',
        documentation: 'Search modifiers: string :exact :contains; token :not :text; uri :below :above; all :missing. Result parameters: _sort, _count, _offset, _total, _summary=count, _elements, _include, _revinclude (with :iterate). Prefer: return=minimal|representation|OperationOutcome; handling=strict|lenient.',
        resource,
        interaction: [{ code: 'transaction' }, { code: 'batch' }, { code: 'history-system' }],
        searchParam: [
          { name: '_count', type: 'number' },
          { name: '_offset', type: 'number' },
          { name: '_sort', type: 'string' },
          { name: '_total', type: 'token' },
          { name: '_summary', type: 'token' },
          { name: '_elements', type: 'string' },
        ],
      },
    ],
  };
  cached = { base, services, operations, json: JSON.stringify(statement) };
  return cached.json;
}

/** The instance operations served on a type: $everything on Patient, and those other capabilities add. */
function operationsOf(type: string, operations: FhirOperations | undefined): { operation?: { name: string; definition: string }[] } {
  const found = [
    ...(type === 'Patient' ? [{ name: 'everything', definition: 'http://hl7.org/fhir/OperationDefinition/Patient-everything' }] : []),
    ...(operations ?? []).filter((o) => o.resourceType === type).map((o) => ({ name: o.name, definition: `${OPERATION_CANONICAL}/${type}-${o.name}` })),
  ];
  return found.length ? { operation: found } : {};
}
