// Reference data for the synthetic demo dataset: names, places and clinical codes.
//
// Places are fictional: "Northshire" and its towns do not exist, and postcodes use the "NX" area, which is
// not a real UK postcode area, so no generated address can match a real one. Telephone numbers come from
// the Ofcom ranges reserved for drama (01632 960xxx, 07700 900xxx).
//
// Clinical codes: SNOMED CT concepts and dm+d VMPs listed here were checked against public sources;
// medicines whose dm+d code could not be confirmed carry text only (as UK Core allows for an uncoded
// medicine) rather than a guessed code. See the demo section of docs/clinical-safety/hazard-log.md.

export const SNOMED = 'http://snomed.info/sct';
export const LOINC = 'http://loinc.org';
export const UCUM = 'http://unitsofmeasure.org';
export const DMD = 'https://dmd.nhs.uk';
export const ODS_ORGANIZATION = 'https://fhir.nhs.uk/Id/ods-organization-code';
export const ODS_SITE = 'https://fhir.nhs.uk/Id/ods-site-code';

/**
 * Residents' names, grouped so that given names, family names, middle names, the next of kin's names and
 * culturally specific "about me" details fit together. Weights give a rough mix for older people in an
 * English county.
 */
export interface Heritage {
  key: string;
  weight: number;
  femaleGiven: readonly string[];
  maleGiven: readonly string[];
  /** Family names; femaleFamily/maleFamily where the naming tradition differs by sex. */
  family: readonly string[];
  femaleFamily?: readonly string[];
  maleFamily?: readonly string[];
  femaleMiddle: readonly string[];
  maleMiddle: readonly string[];
  /** Given names for the next generation (children, nieces and nephews). */
  kinFemale: readonly string[];
  kinMale: readonly string[];
  interests: readonly string[];
  communication: readonly string[];
}

export const HERITAGES: readonly Heritage[] = [
  {
    key: 'white-british',
    weight: 80,
    femaleGiven: ['Margaret', 'Dorothy', 'Joan', 'Betty', 'Jean', 'Barbara', 'Patricia', 'Sheila', 'Brenda', 'Maureen', 'Eileen', 'Doreen', 'Irene', 'Kathleen', 'Mary', 'Audrey', 'Valerie', 'Pauline', 'Sylvia', 'Edna', 'Marjorie', 'Phyllis', 'Gwendoline', 'Winifred', 'Hilda', 'Beryl'],
    maleGiven: ['John', 'William', 'George', 'Kenneth', 'Peter', 'Derek', 'Ronald', 'Dennis', 'Arthur', 'Harold', 'Frank', 'Stanley', 'Brian', 'Raymond', 'Roy', 'Alan', 'Eric', 'Leonard', 'Albert', 'Donald', 'Cyril', 'Norman', 'Walter', 'Geoffrey'],
    family: ['Smith', 'Jones', 'Taylor', 'Brown', 'Williams', 'Wilson', 'Johnson', 'Davies', 'Robinson', 'Wright', 'Thompson', 'Evans', 'Walker', 'White', 'Roberts', 'Green', 'Hall', 'Wood', 'Jackson', 'Clarke', 'Hughes', 'Edwards', 'Turner', 'Hill', 'Cooper', 'Ward', 'Morris', 'Moore', 'Murphy', 'Kelly', 'Atkinson', 'Barker', 'Fletcher', 'Holmes'],
    femaleMiddle: ['Ann', 'Mary', 'Rose', 'May', 'Louise', 'Elizabeth'],
    maleMiddle: ['James', 'Edward', 'John', 'Thomas', 'Henry', 'Arthur'],
    kinFemale: ['Susan', 'Julie', 'Karen', 'Helen', 'Sarah', 'Claire', 'Joanne', 'Tracey'],
    kinMale: ['David', 'Paul', 'Mark', 'Andrew', 'Stephen', 'Michael', 'Gary', 'Neil'],
    interests: ['brass band music', 'cricket on the radio', 'hymns and Sunday services', 'dominoes', 'football (a lifelong Northby Town fan)'],
    communication: [],
  },
  {
    key: 'south-asian',
    weight: 12,
    femaleGiven: ['Gurmeet', 'Nasreen', 'Parveen', 'Kamala', 'Shamim', 'Surinder', 'Zubeda'],
    maleGiven: ['Gurdev', 'Mohammed', 'Harbans', 'Abdul', 'Mohinder', 'Ramesh', 'Bashir'],
    family: ['Patel', 'Khan', 'Ahmed', 'Hussain', 'Sharma', 'Mistry'],
    femaleFamily: ['Patel', 'Khan', 'Ahmed', 'Hussain', 'Sharma', 'Kaur', 'Begum'],
    maleFamily: ['Patel', 'Khan', 'Ahmed', 'Hussain', 'Sharma', 'Singh'],
    femaleMiddle: [],
    maleMiddle: [],
    kinFemale: ['Amrit', 'Farah', 'Nisha', 'Rubina', 'Priya'],
    kinMale: ['Rajinder', 'Imran', 'Sanjay', 'Tariq', 'Jaswinder'],
    interests: ['Bollywood songs', 'Punjabi folk music', 'prayers at the usual times', 'cricket on the television'],
    communication: ['speaks Punjabi and some English; family can help interpret', 'speaks Gujarati and English; prefers Gujarati when tired'],
  },
  {
    key: 'caribbean',
    weight: 8,
    femaleGiven: ['Hyacinth', 'Gloria', 'Myrtle', 'Enid', 'Cynthia'],
    maleGiven: ['Winston', 'Desmond', 'Clifton', 'Lloyd', 'Everton'],
    family: ['Campbell', 'Francis', 'Brown', 'Williams', 'Thompson', 'Clarke', 'Samuels'],
    femaleMiddle: ['Maud', 'Pearl'],
    maleMiddle: ['Augustus', 'Joseph'],
    kinFemale: ['Sharon', 'Marcia', 'Donna', 'Paulette'],
    kinMale: ['Delroy', 'Trevor', 'Marcus', 'Wayne'],
    interests: ['reggae and gospel music', 'church on Sundays', 'dominoes', 'West Indies cricket'],
    communication: [],
  },
];

export const STAFF_FEMALE_GIVEN = ['Sarah', 'Emma', 'Priya', 'Aisha', 'Grace', 'Chloe', 'Hannah', 'Zainab', 'Joanne', 'Claire', 'Funmi', 'Agnieszka'] as const;
export const STAFF_MALE_GIVEN = ['James', 'Daniel', 'Olumide', 'Tomasz', 'Matthew', 'Imran', 'Stephen', 'Rhys', 'Kwame', 'Liam'] as const;
export const STAFF_FAMILY = ['Okafor', 'Nowak', 'Begum', 'Hussain', 'Mensah', 'Price', 'Lloyd', 'Shaw', 'Bennett', 'Chapman', 'Rahman', 'Doyle', 'Fraser', 'Osei'] as const;

export const TOWNS = ['Northby', 'Kestlebury', 'Sallowmere', 'Thornwick', 'Hadleigh Cross', 'Upper Brackford'] as const;
export const STREETS = ['Church Lane', 'Station Road', 'Mill Street', 'Orchard Way', 'Victoria Road', 'The Green', 'Beacon Hill', 'Park Avenue', 'Ferry Road', 'Queen Street'] as const;
/** Letters allowed in the final two characters of a UK postcode (no C, I, K, M, O, V). */
export const POSTCODE_UNIT_LETTERS = 'ABDEFGHJLNPQRSTUWXYZ';

export const CARE_HOME_NAMES = [
  'Willow Lodge', 'Meadowbank House', 'Ashcroft Court', 'The Laurels', 'Beechwood Grange', 'Holly Tree House',
  'Rosemary Gardens', 'Fernlea', 'Oakfield Manor', 'Springvale House',
] as const;

export const WARDS = [
  { code: '07', name: 'Ward 7 – Care of Older People' },
  { code: '12', name: 'Ward 12 – Acute Medical Unit' },
  { code: '21', name: 'Ward 21 – Respiratory Medicine' },
] as const;

export const GP_PRACTICES = [
  { ods: 'Y01234', name: 'Riverside Medical Practice' },
  { ods: 'Y05678', name: 'Northgate Surgery' },
] as const;

// ---- conditions -------------------------------------------------------------------------------

export type ConditionKey =
  | 'dementia' | 'alzheimers' | 't2dm' | 'hypertension' | 'af' | 'copd' | 'heartFailure' | 'ckd'
  | 'osteoarthritis' | 'parkinsons' | 'stroke' | 'osteoporosis' | 'hypothyroidism' | 'depression';

export interface ConditionDef {
  key: ConditionKey;
  code: string;
  display: string;
  /** Relative prevalence among care-home residents (rough, for a realistic mix). */
  weight: number;
  /** Onset this many years before the reference date (range). */
  onsetYearsAgo: [number, number];
}

export const CONDITIONS: readonly ConditionDef[] = [
  { key: 'dementia', code: '52448006', display: 'Dementia', weight: 40, onsetYearsAgo: [1, 8] },
  { key: 'alzheimers', code: '26929004', display: "Alzheimer's disease", weight: 22, onsetYearsAgo: [1, 8] },
  { key: 'hypertension', code: '38341003', display: 'Hypertensive disorder, systemic arterial', weight: 35, onsetYearsAgo: [5, 30] },
  { key: 'osteoarthritis', code: '396275006', display: 'Osteoarthritis', weight: 25, onsetYearsAgo: [5, 25] },
  { key: 't2dm', code: '44054006', display: 'Type 2 diabetes mellitus', weight: 20, onsetYearsAgo: [3, 25] },
  { key: 'af', code: '49436004', display: 'Atrial fibrillation', weight: 15, onsetYearsAgo: [1, 15] },
  { key: 'ckd', code: '709044004', display: 'Chronic kidney disease', weight: 15, onsetYearsAgo: [1, 12] },
  { key: 'stroke', code: '230690007', display: 'Cerebrovascular accident', weight: 15, onsetYearsAgo: [1, 12] },
  { key: 'osteoporosis', code: '64859006', display: 'Osteoporosis', weight: 15, onsetYearsAgo: [2, 20] },
  { key: 'heartFailure', code: '84114007', display: 'Heart failure', weight: 12, onsetYearsAgo: [1, 10] },
  { key: 'depression', code: '35489007', display: 'Depressive disorder', weight: 12, onsetYearsAgo: [1, 30] },
  { key: 'copd', code: '13645005', display: 'Chronic obstructive lung disease', weight: 10, onsetYearsAgo: [3, 20] },
  { key: 'hypothyroidism', code: '40930008', display: 'Hypothyroidism', weight: 10, onsetYearsAgo: [5, 30] },
  { key: 'parkinsons', code: '49049000', display: "Parkinson's disease", weight: 6, onsetYearsAgo: [2, 15] },
];

// ---- medicines --------------------------------------------------------------------------------

export interface MedicineDef {
  key: string;
  /** dm+d VMP name (the medicine as prescribed). */
  name: string;
  /** dm+d VMP code, only where confirmed. */
  dmd?: string;
  dosage: string;
  /** The condition it treats, if any (for reasonReference). */
  for?: ConditionKey;
}

export const MEDICINES = {
  paracetamol: { key: 'paracetamol', name: 'Paracetamol 500mg tablets', dmd: '322236009', dosage: 'Two tablets up to four times a day when required for pain. Leave at least 4 hours between doses; no more than 8 tablets in 24 hours.' },
  amlodipine: { key: 'amlodipine', name: 'Amlodipine 5mg tablets', dmd: '319283006', dosage: 'One tablet once a day in the morning.', for: 'hypertension' },
  ramipril: { key: 'ramipril', name: 'Ramipril 2.5mg capsules', dmd: '318901006', dosage: 'One capsule once a day.', for: 'hypertension' },
  metformin: { key: 'metformin', name: 'Metformin 500mg tablets', dmd: '325278007', dosage: 'One tablet twice a day with breakfast and evening meal.', for: 't2dm' },
  furosemide: { key: 'furosemide', name: 'Furosemide 40mg tablets', dmd: '317972000', dosage: 'One tablet each morning.', for: 'heartFailure' },
  apixaban5: { key: 'apixaban-5mg', name: 'Apixaban 5mg tablets', dmd: '703908001', dosage: 'One tablet twice a day.', for: 'af' },
  apixaban2_5: { key: 'apixaban-2.5mg', name: 'Apixaban 2.5mg tablets', dmd: '703907006', dosage: 'One tablet twice a day.', for: 'af' },
  donepezil: { key: 'donepezil', name: 'Donepezil 5mg tablets', dosage: 'One tablet at night.', for: 'alzheimers' },
  levothyroxine: { key: 'levothyroxine', name: 'Levothyroxine sodium 50microgram tablets', dosage: 'One tablet each morning, 30 minutes before breakfast.', for: 'hypothyroidism' },
  salbutamol: { key: 'salbutamol', name: 'Salbutamol 100micrograms/dose inhaler CFC free', dosage: 'Two puffs up to four times a day when required for breathlessness, using a spacer.', for: 'copd' },
  bisoprolol: { key: 'bisoprolol', name: 'Bisoprolol 2.5mg tablets', dosage: 'One tablet once a day.', for: 'heartFailure' },
  coCareldopa: { key: 'co-careldopa', name: 'Co-careldopa 25mg/100mg tablets', dosage: 'One tablet three times a day at 08:00, 13:00 and 18:00. Time critical: give on time.', for: 'parkinsons' },
  alendronicAcid: { key: 'alendronic-acid', name: 'Alendronic acid 70mg tablets', dosage: 'One tablet once a week on Monday, swallowed whole with a full glass of water while sitting upright, 30 minutes before breakfast.', for: 'osteoporosis' },
  atorvastatin: { key: 'atorvastatin', name: 'Atorvastatin 20mg tablets', dosage: 'One tablet at night.', for: 'stroke' },
  clopidogrel: { key: 'clopidogrel', name: 'Clopidogrel 75mg tablets', dosage: 'One tablet once a day.', for: 'stroke' },
  sertraline: { key: 'sertraline', name: 'Sertraline 50mg tablets', dosage: 'One tablet each morning.', for: 'depression' },
  senna: { key: 'senna', name: 'Senna 7.5mg tablets', dosage: 'Two tablets at night when required for constipation.' },
} as const satisfies Record<string, MedicineDef>;

// ---- allergies --------------------------------------------------------------------------------

export interface AllergyDef {
  code: string;
  display: string;
  type: 'allergy' | 'intolerance';
  criticality: 'low' | 'high' | 'unable-to-assess';
  reaction: { code: string; display: string; severity: 'mild' | 'moderate' | 'severe' };
}

export const ALLERGIES: readonly AllergyDef[] = [
  { code: '91936005', display: 'Allergy to penicillin', type: 'allergy', criticality: 'high', reaction: { code: '271807003', display: 'Eruption of skin', severity: 'moderate' } },
  { code: '372687004', display: 'Amoxicillin', type: 'allergy', criticality: 'high', reaction: { code: '126485001', display: 'Urticaria', severity: 'moderate' } },
  { code: '387458008', display: 'Aspirin', type: 'allergy', criticality: 'low', reaction: { code: '56018004', display: 'Wheezing', severity: 'mild' } },
  { code: '111088007', display: 'Latex', type: 'allergy', criticality: 'low', reaction: { code: '40275004', display: 'Contact dermatitis', severity: 'mild' } },
  { code: '387494007', display: 'Codeine', type: 'intolerance', criticality: 'low', reaction: { code: '422587007', display: 'Nausea', severity: 'mild' } },
  { code: '387207008', display: 'Ibuprofen', type: 'allergy', criticality: 'low', reaction: { code: '56018004', display: 'Wheezing', severity: 'moderate' } },
];

// ---- observations -------------------------------------------------------------------------------

// NEWS2 vital signs and ACVPU: the codes src/monitoring defines for everyone.
export { ACVPU_CODES, NEWS2_CODES as OBS } from '../monitoring/index.ts';

// ---- "about me" -------------------------------------------------------------------------------

export const OCCUPATIONS = [
  'a primary school teacher', 'a coal miner', 'a nurse at the old cottage hospital', 'a bus driver', 'a seamstress',
  'a postman', 'a shopkeeper on the high street', 'a farmer', 'an engineer at the railway works', 'a secretary at the council',
  'a dinner lady', 'a joiner', 'a district nurse', 'a mill worker', 'a bookkeeper',
] as const;

export const INTERESTS = [
  'the crossword', 'gardening programmes', 'knitting', 'old films', 'watching the birds from the window',
  'baking', 'jigsaw puzzles', 'photographs of the grandchildren', 'a walk round the garden',
] as const;

export const ROUTINES = [
  'prefers a shower in the evening rather than the morning',
  'likes to get up late and have breakfast in their room',
  'likes a cup of tea with two sugars first thing',
  'prefers a female carer for personal care',
  'likes the bedroom door left ajar at night with a light on',
  'likes to sit by the window in the lounge after lunch',
  'prefers small meals and a snack before bed',
] as const;

export const COMMUNICATION = [
  'wears a hearing aid in the left ear; speak clearly on that side',
  'wears glasses for reading and watching television',
  'may become anxious in the late afternoon; reassurance and a walk help',
  'finds large groups noisy; prefers one-to-one conversation',
  'uses a walking frame; keep it within reach',
] as const;
