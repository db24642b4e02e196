import { fhirApiSuite } from './fhirApi.suite.ts';

fhirApiSuite('postgres');
