// Public API of the demo module: a deterministic synthetic UK shared-care dataset as one FHIR R4
// transaction Bundle.
export { buildDemoDataset, DEFAULT_DEMO_OPTIONS, NHS_NUMBER_VERIFICATION_SYSTEM, NHS_NUMBER_VERIFICATION_URL } from './dataset.ts';
export type { DemoDataset, DemoDatasetOptions } from './dataset.ts';
export type { FhirResource, TransactionBundle, TransactionEntry } from './types.ts';
export { Prng } from './prng.ts';
