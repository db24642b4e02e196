// Public API of the monitoring module: NEWS2 scoring, risk bands, recommended response and trend.
export {
  ACVPU_LEVELS,
  NEWS2_INPUT_LIMITS,
  news2Band,
  news2Response,
  news2Trend,
  scoreAirOrOxygen,
  scoreConsciousness,
  scoreNews2,
  scorePulse,
  scoreRespirationRate,
  scoreSpo2Scale1,
  scoreSpo2Scale2,
  scoreSystolicBP,
  scoreTemperature,
} from './news2.ts';
export type {
  Acvpu,
  News2Band,
  News2Input,
  News2ParameterScores,
  News2Response,
  News2Result,
  News2Trend,
  News2TrendPoint,
} from './news2.ts';
export { NEWS2_CODES, ACVPU_CODES, news2TotalElements } from './news2Fhir.ts';
