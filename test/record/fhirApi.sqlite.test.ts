import { fhirApiSuite } from './fhirApi.suite.ts';

fhirApiSuite('sqlite');
