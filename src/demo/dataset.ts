// A synthetic, deterministic UK shared-care dataset as one FHIR R4 transaction Bundle: a council and its
// adult social care team, care homes and their residents, an acute trust with wards, GP practices, staff,
// and for every resident their episode of care, care team, next of kin, problems, medicines, allergies,
// care plan, DNACPR decisions, risk flags and daily NEWS2 observations (a few residents deteriorate; some
// of those are in hospital).
//
// Everything is fictional and marked as such: every resource carries the HTEST tag, NHS numbers are from
// the 999 range, places are in the fictional county of Northshire with "NX" postcodes, and phone numbers
// are from Ofcom's drama ranges. See docs/clinical-safety/hazard-log.md (H-002).
//
// Same seed and options → byte-identical JSON: no clock, no Math.random, fixed reference date.
// Entries are PUTs to deterministic ids, so loading the bundle twice leaves one copy of each resource.
import { generateSyntheticNhsNumber, NHS_NUMBER_SYSTEM, SYNTHETIC_TAG } from '../record/index.ts';
import { news2TotalElements, scoreNews2, type Acvpu, type News2Input } from '../monitoring/index.ts';
import {
  ACVPU_CODES, ALLERGIES, CARE_HOME_NAMES, COMMUNICATION, CONDITIONS, DMD, GP_PRACTICES, HERITAGES,
  INTERESTS, MEDICINES, OBS, OCCUPATIONS, ODS_ORGANIZATION, ODS_SITE, POSTCODE_UNIT_LETTERS,
  ROUTINES, SNOMED, STAFF_FAMILY, STAFF_FEMALE_GIVEN, STAFF_MALE_GIVEN, STREETS, TOWNS, UCUM, WARDS,
  type ConditionDef, type ConditionKey, type MedicineDef,
} from './catalogue.ts';
import { Prng } from './prng.ts';
import { createHash } from 'node:crypto';
import {
  DISCHARGE_REFERRAL_SYSTEM, EXPECTED_DISCHARGE_URL, PATHWAY_SYSTEM, PATHWAYS, REFERRAL_CODE, TRIAGE_STATE_SYSTEM, TRIAGE_TASK_CODE, type Pathway,
} from '../discharge/index.ts';
import type { Coding, FhirResource, Reference, TransactionBundle } from './types.ts';

export interface DemoDatasetOptions {
  /** PRNG seed (an integer). Default 1. */
  seed?: number;
  /** Number of care homes, 1–50. Default 3. */
  careHomes?: number;
  /** Residents in each care home, 1–99. Default 8. */
  residentsPerHome?: number;
  /** Residents currently in hospital (in-progress inpatient Encounter), 0–all residents. Default 3. */
  inpatients?: number;
  /** Days of daily NEWS2 observations ending on the reference date, 0–90. Default 14. */
  observationDays?: number;
  /** "Now" for the dataset (ISO 8601 with a time zone). Default 2026-11-01T09:00:00Z. */
  referenceDate?: string;
}

export interface DemoDataset {
  bundle: TransactionBundle;
  /** Number of resources of each type in the bundle. */
  summary: Record<string, number>;
}

export const DEFAULT_DEMO_OPTIONS = {
  seed: 1,
  careHomes: 3,
  residentsPerHome: 8,
  inpatients: 3,
  observationDays: 14,
  referenceDate: '2026-11-01T09:00:00Z',
} as const satisfies Required<DemoDatasetOptions>;

export const NHS_NUMBER_VERIFICATION_URL = 'https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-NHSNumberVerificationStatus';
export const NHS_NUMBER_VERIFICATION_SYSTEM = 'https://fhir.hl7.org.uk/CodeSystem/UKCore-NHSNumberVerificationStatusEngland';

const TERMINOLOGY = 'http://terminology.hl7.org/CodeSystem';
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const YEAR = 365.25 * DAY;

// ---- small helpers -------------------------------------------------------------------------------

function ref(resource: FhirResource, display?: string): Reference {
  return display ? { reference: `${resource.resourceType}/${resource.id}`, display } : { reference: `${resource.resourceType}/${resource.id}` };
}

function cc(system: string, code: string, display: string, text?: string): { coding: Coding[]; text?: string } {
  return text ? { coding: [{ system, code, display }], text } : { coding: [{ system, code, display }] };
}

/** Whole seconds, UTC, no milliseconds. */
function dateTime(ms: number): string {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z');
}

function date(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

/** A UUID-shaped id derived from a label: the same every run, as the dataset must be. */
function demoUuid(label: string): string {
  const h = createHash('sha256').update(label).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-8${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

function pad(n: number, width: number): string {
  return String(n).padStart(width, '0');
}

function clamp(v: number, min: number, max: number): number {
  return Math.min(max, Math.max(min, v));
}

function checkOption(name: string, value: number, min: number, max: number): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new Error(`buildDemoDataset: ${name} must be a whole number from ${min} to ${max}, got ${String(value)}`);
  }
  return value;
}

interface HumanName {
  use: 'official';
  family: string;
  given: string[];
  prefix?: string[];
}

function nameText(n: HumanName): string {
  return [...(n.prefix ?? []), ...n.given, n.family].join(' ');
}

function postcode(prng: Prng, district: number): string {
  const letter = () => POSTCODE_UNIT_LETTERS[prng.int(0, POSTCODE_UNIT_LETTERS.length - 1)];
  return `NX${district} ${prng.int(1, 9)}${letter()}${letter()}`;
}

function landline(prng: Prng): string {
  return `01632 960${pad(prng.int(0, 999), 3)}`;
}

function mobile(prng: Prng): string {
  return `07700 900${pad(prng.int(0, 999), 3)}`;
}

// ---- the builder -----------------------------------------------------------------------------------

interface Staff {
  practitioner: FhirResource;
  name: string;
}

interface Home {
  index: number;
  ods: string;
  name: string;
  nursing: boolean;
  org: FhirResource;
  location: FhirResource;
  address: Record<string, unknown>;
  manager: Staff;
  seniorCarer: Staff;
  practice: number;
}

interface Baseline {
  respirationRate: number;
  spo2: number;
  systolicBP: number;
  diastolicBP: number;
  pulse: number;
  temperature: number;
}

type Trend =
  | { kind: 'stable' }
  | { kind: 'mild'; rampStart: number; rampDays: number }
  | { kind: 'admitted'; admitDay: number; rampDays: number };

export function buildDemoDataset(options: DemoDatasetOptions = {}): DemoDataset {
  const seed = options.seed ?? DEFAULT_DEMO_OPTIONS.seed;
  if (!Number.isSafeInteger(seed)) throw new Error(`buildDemoDataset: seed must be an integer, got ${String(seed)}`);
  const careHomes = checkOption('careHomes', options.careHomes ?? DEFAULT_DEMO_OPTIONS.careHomes, 1, 50);
  const perHome = checkOption('residentsPerHome', options.residentsPerHome ?? DEFAULT_DEMO_OPTIONS.residentsPerHome, 1, 99);
  const inpatientCount = checkOption('inpatients', options.inpatients ?? DEFAULT_DEMO_OPTIONS.inpatients, 0, careHomes * perHome);
  const days = checkOption('observationDays', options.observationDays ?? DEFAULT_DEMO_OPTIONS.observationDays, 0, 90);
  const referenceDate = options.referenceDate ?? DEFAULT_DEMO_OPTIONS.referenceDate;
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/.test(referenceDate) || !Number.isFinite(Date.parse(referenceDate))) {
    throw new Error(`buildDemoDataset: referenceDate must be an ISO 8601 date-time with a time zone, got ${referenceDate}`);
  }
  const now = Math.floor(Date.parse(referenceDate) / MINUTE) * MINUTE;

  const resources: FhirResource[] = [];
  const add = <T extends Record<string, unknown>>(resourceType: string, id: string, body: T): FhirResource => {
    const resource: FhirResource = { resourceType, id, meta: { tag: [{ ...SYNTHETIC_TAG }] }, ...body };
    resources.push(resource);
    return resource;
  };
  const stream = (...labels: (string | number)[]) => new Prng(seed, ...labels);

  // Staff: a Practitioner plus a PractitionerRole saying where and as what they work.
  const addStaff = (key: string, role: { text: string; coding?: Coding }, org: FhirResource, location: FhirResource | undefined, doctor = false): Staff => {
    const p = stream('staff', key);
    const female = p.chance(0.65);
    const given = female ? p.pick(STAFF_FEMALE_GIVEN) : p.pick(STAFF_MALE_GIVEN);
    const name: HumanName = { use: 'official', family: p.pick(STAFF_FAMILY), given: [given], prefix: [doctor ? 'Dr' : female ? 'Ms' : 'Mr'] };
    const practitioner = add('Practitioner', `demo-prac-${key}`, {
      active: true,
      name: [name],
      telecom: [{ system: 'phone', value: landline(p), use: 'work' }],
      gender: female ? 'female' : 'male',
    });
    add('PractitionerRole', `demo-role-${key}`, {
      active: true,
      practitioner: ref(practitioner, nameText(name)),
      organization: ref(org, org.name as string),
      code: [role.coding ? { coding: [role.coding], text: role.text } : { text: role.text }],
      ...(location ? { location: [ref(location, location.name as string)] } : {}),
    });
    return { practitioner, name: nameText(name) };
  };

  // ---- organisations and places ----------------------------------------------------------------
  const place = stream('places');
  const council = add('Organization', 'demo-org-la918', {
    identifier: [{ system: ODS_ORGANIZATION, value: 'LA918' }],
    active: true,
    type: [{ ...cc(`${TERMINOLOGY}/organization-type`, 'govt', 'Government'), text: 'Local authority (adult social care)' }],
    name: 'Northshire County Council',
    telecom: [{ system: 'phone', value: landline(place), use: 'work' }],
    address: [{ use: 'work', line: ['County Hall', 'Market Street'], city: 'Northby', district: 'Northshire', postalCode: 'NX1 1AA', country: 'GB' }],
  });
  const ascTeam = add('Organization', 'demo-org-la918-asc', {
    active: true,
    type: [{ ...cc(`${TERMINOLOGY}/organization-type`, 'govt', 'Government'), text: 'Adult social care team' }],
    name: 'Northshire Adult Social Care – Hospital and Community Team',
    telecom: [{ system: 'phone', value: landline(place), use: 'work' }],
    partOf: ref(council, 'Northshire County Council'),
  });

  const trust = add('Organization', 'demo-org-rx9', {
    identifier: [{ system: ODS_ORGANIZATION, value: 'RX9' }],
    active: true,
    type: [{ ...cc(`${TERMINOLOGY}/organization-type`, 'prov', 'Healthcare Provider'), text: 'NHS acute trust' }],
    name: 'Northshire Hospitals NHS Foundation Trust',
    telecom: [{ system: 'phone', value: landline(place), use: 'work' }],
    address: [{ use: 'work', line: ['Northshire General Hospital', 'Infirmary Road'], city: 'Northby', district: 'Northshire', postalCode: 'NX2 4HD', country: 'GB' }],
  });
  const site = add('Location', 'demo-loc-rx901', {
    identifier: [{ system: ODS_SITE, value: 'RX901' }],
    status: 'active',
    name: 'Northshire General Hospital',
    mode: 'instance',
    type: [cc('http://terminology.hl7.org/CodeSystem/v3-RoleCode', 'HOSP', 'Hospital')],
    address: { use: 'work', line: ['Infirmary Road'], city: 'Northby', district: 'Northshire', postalCode: 'NX2 4HD', country: 'GB' },
    physicalType: cc(`${TERMINOLOGY}/location-physical-type`, 'si', 'Site'),
    managingOrganization: ref(trust, trust.name as string),
  });
  const wards = WARDS.map((w) =>
    add('Location', `demo-loc-rx901-ward-${w.code}`, {
      status: 'active',
      name: w.name,
      mode: 'instance',
      physicalType: cc(`${TERMINOLOGY}/location-physical-type`, 'wa', 'Ward'),
      managingOrganization: ref(trust, trust.name as string),
      partOf: ref(site, site.name as string),
    }),
  );

  const practices = GP_PRACTICES.map((g, i) => {
    const town = TOWNS[i % TOWNS.length];
    return add('Organization', `demo-org-${g.ods.toLowerCase()}`, {
      identifier: [{ system: ODS_ORGANIZATION, value: g.ods }],
      active: true,
      type: [{ ...cc(`${TERMINOLOGY}/organization-type`, 'prov', 'Healthcare Provider'), text: 'GP practice' }],
      name: g.name,
      telecom: [{ system: 'phone', value: landline(place), use: 'work' }],
      address: [{ use: 'work', line: [`${place.int(1, 120)} ${place.pick(STREETS)}`], city: town, district: 'Northshire', postalCode: postcode(place, i + 3), country: 'GB' }],
    });
  });

  const homes: Home[] = [];
  for (let h = 1; h <= careHomes; h++) {
    const p = stream('home', h);
    const ods = `VM${100 + h}`;
    const baseName = CARE_HOME_NAMES[(h - 1) % CARE_HOME_NAMES.length];
    const nursing = p.chance(0.5);
    const name = `${baseName}${h > CARE_HOME_NAMES.length ? ` ${Math.ceil(h / CARE_HOME_NAMES.length)}` : ''} ${nursing ? 'Nursing Home' : 'Care Home'}`;
    const town = TOWNS[(h + 1) % TOWNS.length];
    const address = { use: 'work', line: [name, `${p.int(1, 200)} ${p.pick(STREETS)}`], city: town, district: 'Northshire', postalCode: postcode(p, (h % 9) + 1), country: 'GB' };
    const org = add('Organization', `demo-org-${ods.toLowerCase()}`, {
      identifier: [{ system: ODS_ORGANIZATION, value: ods }],
      active: true,
      type: [{ ...cc(`${TERMINOLOGY}/organization-type`, 'prov', 'Healthcare Provider'), text: nursing ? 'Care home with nursing' : 'Care home (residential)' }],
      name,
      telecom: [{ system: 'phone', value: landline(p), use: 'work' }],
      address: [address],
    });
    const location = add('Location', `demo-loc-${ods.toLowerCase()}`, {
      status: 'active',
      name,
      mode: 'instance',
      type: [cc('http://terminology.hl7.org/CodeSystem/v3-RoleCode', 'NCCF', 'Nursing or custodial care facility')],
      telecom: [{ system: 'phone', value: (org.telecom as { value: string }[])[0].value, use: 'work' }],
      address,
      physicalType: cc(`${TERMINOLOGY}/location-physical-type`, 'bu', 'Building'),
      managingOrganization: ref(org, name),
    });
    const key = ods.toLowerCase();
    const manager = addStaff(`${key}-manager`, { text: 'Care home manager' }, org, location);
    const seniorCarer = addStaff(`${key}-senior-carer`, nursing
      ? { text: 'Registered nurse (care home)', coding: { system: `${TERMINOLOGY}/practitioner-role`, code: 'nurse', display: 'Nurse' } }
      : { text: 'Senior care assistant' }, org, location);
    homes.push({ index: h, ods, name, nursing, org, location, address: { ...address, use: 'home' }, manager, seniorCarer, practice: (h - 1) % practices.length });
  }

  // ---- staff ---------------------------------------------------------------------------------------
  const nurseRole = { system: `${TERMINOLOGY}/practitioner-role`, code: 'nurse', display: 'Nurse' };
  const wardNurses = wards.map((w, i) => addStaff(`rx901-ward-${WARDS[i].code}-nurse`, { text: 'Ward nurse', coding: nurseRole }, trust, w));
  const dischargeCoordinator = addStaff('rx9-discharge-coordinator', { text: 'Discharge coordinator' }, trust, site);
  const socialWorkers = [1, 2].map((n) => addStaff(`la918-social-worker-${n}`, { text: 'Social worker' }, ascTeam, undefined));
  const gps = GP_PRACTICES.map((g, i) =>
    addStaff(`${g.ods.toLowerCase()}-gp`, { text: 'General practitioner', coding: { system: `${TERMINOLOGY}/practitioner-role`, code: 'doctor', display: 'Doctor' } }, practices[i], undefined, true),
  );

  // ---- who deteriorates --------------------------------------------------------------------------
  const residentCount = careHomes * perHome;
  const selection = stream('selection');
  // Spread those chosen across the homes: take residents from each home in turn, in shuffled order.
  const byHome: number[][] = Array.from({ length: careHomes }, () => []);
  for (const i of selection.shuffle(Array.from({ length: residentCount }, (_, i) => i))) byHome[Math.floor(i / perHome)].push(i);
  const roundRobin: number[] = [];
  for (let k = 0; roundRobin.length < residentCount; k++) {
    for (const list of byHome) if (k < list.length) roundRobin.push(list[k]);
  }
  const inpatientSet = new Set(roundRobin.slice(0, inpatientCount));
  const mildSet = new Set(roundRobin.slice(inpatientCount, inpatientCount + Math.min(2, Math.max(0, residentCount - inpatientCount))));

  // ---- residents ----------------------------------------------------------------------------------
  const nhsPrng = stream('nhs-numbers');
  const seenNhs = new Set<string>();
  const width = Math.max(2, String(perHome).length);
  const obsTime = (day: number, p: Prng) => now - (days - 1 - day) * DAY - p.int(10, 70) * MINUTE;

  for (let h = 0; h < careHomes; h++) {
    const home = homes[h];
    const practice = practices[home.practice];
    const gp = gps[home.practice];
    for (let r = 1; r <= perHome; r++) {
      const residentIndex = h * perHome + (r - 1);
      const key = `${home.ods.toLowerCase()}-${pad(r, width)}`;
      const p = stream('resident', home.index, r);

      // Identity
      let nhs: string;
      do nhs = generateSyntheticNhsNumber(nhsPrng.next);
      while (seenNhs.has(nhs));
      seenNhs.add(nhs);
      const heritage = p.weightedSample(HERITAGES.map((item) => ({ item, weight: item.weight })), 1)[0];
      const female = p.chance(0.7);
      const family = p.pick((female ? heritage.femaleFamily : heritage.maleFamily) ?? heritage.family);
      const given: string[] = [p.pick(female ? heritage.femaleGiven : heritage.maleGiven)];
      const middles = female ? heritage.femaleMiddle : heritage.maleMiddle;
      if (middles.length > 0 && p.chance(0.4)) given.push(p.pick(middles));
      const prefix = female ? p.pick(['Mrs', 'Mrs', 'Miss', 'Ms']) : 'Mr';
      const name: HumanName = { use: 'official', family, given, prefix: [prefix] };
      const age = p.int(70, 99);
      const birth = now - age * YEAR - p.int(1, 360) * DAY;
      const patient = add('Patient', `demo-pat-${key}`, {
        identifier: [{
          extension: [{
            url: NHS_NUMBER_VERIFICATION_URL,
            valueCodeableConcept: cc(NHS_NUMBER_VERIFICATION_SYSTEM, '01', 'Number present and verified'),
          }],
          system: NHS_NUMBER_SYSTEM,
          value: nhs,
        }],
        active: true,
        name: [name],
        gender: female ? 'female' : 'male',
        birthDate: date(birth),
        address: [home.address],
        generalPractitioner: [ref(practice, practice.name as string)],
        managingOrganization: ref(home.org, home.name),
      });
      const patientRef = ref(patient, nameText(name));
      const socialWorker = socialWorkers[residentIndex % socialWorkers.length];
      const residentSince = now - p.int(60, 6 * 365) * DAY;

      // Next of kin
      const kin = p.pick([
        { code: 'DAU', display: 'daughter', female: true, sameName: false },
        { code: 'SON', display: 'son', female: false, sameName: true },
        { code: female ? 'HUSB' : 'WIFE', display: female ? 'husband' : 'wife', female: !female, sameName: true },
        { code: 'NIECE', display: 'niece', female: true, sameName: false },
        { code: 'NEPHEW', display: 'nephew', female: false, sameName: false },
      ] as const);
      const kinFamilies = (kin.female ? heritage.femaleFamily : heritage.maleFamily) ?? heritage.family;
      const kinName: HumanName = {
        use: 'official',
        family: kin.sameName && kinFamilies.includes(family) ? family : p.pick(kinFamilies),
        given: [p.pick(kin.female ? heritage.kinFemale : heritage.kinMale)],
      };
      const relatedPerson = add('RelatedPerson', `demo-rp-${key}-nok`, {
        active: true,
        patient: patientRef,
        relationship: [
          cc(`${TERMINOLOGY}/v2-0131`, 'N', 'Next-of-Kin'),
          cc('http://terminology.hl7.org/CodeSystem/v3-RoleCode', kin.code, kin.display),
        ],
        name: [kinName],
        telecom: [{ system: 'phone', value: mobile(p), use: 'mobile', rank: 1 }],
        gender: kin.female ? 'female' : 'male',
        address: [{ use: 'home', line: [`${p.int(1, 150)} ${p.pick(STREETS)}`], city: p.pick(TOWNS), district: 'Northshire', postalCode: postcode(p, p.int(1, 9)), country: 'GB' }],
      });

      // The first resident shares their record with their next of kin; the second has opted out of sharing
      // beyond direct care. (No PRNG draws here: the rest of the dataset stays as it was.)
      if (residentIndex === 0) {
        add('Consent', `demo-consent-${key}-share-nok`, {
          status: 'active',
          scope: cc(`${TERMINOLOGY}/consentscope`, 'patient-privacy', 'Privacy Consent'),
          category: [{ ...cc('http://terminology.hl7.org/CodeSystem/v3-ActCode', 'OPTIN', 'opt-in'), text: 'Sharing my record with my next of kin' }],
          patient: patientRef,
          dateTime: dateTime(residentSince + 7 * DAY),
          performer: [patientRef],
          policyRule: { text: 'Person-controlled sharing with a named carer' },
          provision: { type: 'permit', actor: [{ role: cc('http://terminology.hl7.org/CodeSystem/v3-RoleClass', 'AGNT', 'agent'), reference: ref(relatedPerson, nameText(kinName)) }] },
        });
      } else if (residentIndex === 1) {
        add('Consent', `demo-consent-${key}-dissent`, {
          status: 'active',
          scope: cc(`${TERMINOLOGY}/consentscope`, 'patient-privacy', 'Privacy Consent'),
          category: [{ ...cc('http://terminology.hl7.org/CodeSystem/v3-ActCode', 'OPTOUT', 'opt-out'), text: 'I do not want my record shared beyond the people caring for me' }],
          patient: patientRef,
          dateTime: dateTime(residentSince + 14 * DAY),
          performer: [patientRef],
          policyRule: { text: 'Dissent from sharing outside direct care' },
          provision: { type: 'deny' },
        });
      }

      // Care team and episode of care
      const careTeam = add('CareTeam', `demo-ct-${key}`, {
        status: 'active',
        name: `Care team for ${nameText(name)}`,
        subject: patientRef,
        period: { start: date(residentSince) },
        participant: [
          { role: [{ text: 'Care home manager' }], member: ref(home.manager.practitioner, home.manager.name), onBehalfOf: ref(home.org, home.name) },
          { role: [{ text: 'General practitioner' }], member: ref(gp.practitioner, gp.name), onBehalfOf: ref(practice, practice.name as string) },
          { role: [{ text: 'Social worker' }], member: ref(socialWorker.practitioner, socialWorker.name), onBehalfOf: ref(ascTeam, ascTeam.name as string) },
          { role: [{ text: 'Next of kin' }], member: ref(relatedPerson, nameText(kinName)) },
        ],
        managingOrganization: [ref(home.org, home.name)],
      });
      add('EpisodeOfCare', `demo-eoc-${key}`, {
        status: 'active',
        type: [{ text: home.nursing ? 'Care home placement with nursing' : 'Residential care home placement' }],
        patient: patientRef,
        managingOrganization: ref(home.org, home.name),
        period: { start: date(residentSince) },
        careManager: ref(socialWorker.practitioner, socialWorker.name),
        team: [ref(careTeam)],
      });

      // Problems
      const conditionCount = p.int(2, 5);
      const chosen: ConditionDef[] = [];
      for (const c of p.weightedSample(CONDITIONS.map((item) => ({ item, weight: item.weight })), CONDITIONS.length)) {
        if (chosen.length >= conditionCount) break;
        const has = (k: ConditionKey) => chosen.some((x) => x.key === k);
        if ((c.key === 'dementia' && has('alzheimers')) || (c.key === 'alzheimers' && has('dementia'))) continue;
        chosen.push(c);
      }
      const conditions = new Map<ConditionKey, FhirResource>();
      for (const c of chosen) {
        const onset = now - p.int(c.onsetYearsAgo[0] * 365, c.onsetYearsAgo[1] * 365) * DAY;
        conditions.set(c.key, add('Condition', `demo-cond-${key}-${c.key.toLowerCase()}`, {
          clinicalStatus: cc(`${TERMINOLOGY}/condition-clinical`, 'active', 'Active'),
          verificationStatus: cc(`${TERMINOLOGY}/condition-ver-status`, 'confirmed', 'Confirmed'),
          category: [cc(`${TERMINOLOGY}/condition-category`, 'problem-list-item', 'Problem List Item')],
          code: cc(SNOMED, c.code, c.display, c.display),
          subject: patientRef,
          onsetDateTime: date(Math.max(onset, birth + 50 * YEAR)),
          recordedDate: date(Math.max(onset, birth + 50 * YEAR)),
          recorder: ref(gp.practitioner, gp.name),
        }));
      }
      const has = (k: ConditionKey) => conditions.has(k);
      const copd = has('copd');
      const scale2 = copd && p.chance(0.5);

      // Medicines: what the problems call for, then common extras, 2–6 in all.
      const meds: MedicineDef[] = [];
      const want = (m: MedicineDef) => {
        if (meds.length < 6 && !meds.some((x) => x.key === m.key)) meds.push(m);
      };
      if (has('af')) want(age >= 80 && has('ckd') ? MEDICINES.apixaban2_5 : MEDICINES.apixaban5);
      if (has('heartFailure')) { want(MEDICINES.furosemide); want(MEDICINES.bisoprolol); }
      if (has('hypertension')) want(p.chance(0.5) ? MEDICINES.amlodipine : MEDICINES.ramipril);
      if (has('t2dm')) want(MEDICINES.metformin);
      if (has('alzheimers')) want(MEDICINES.donepezil);
      if (has('hypothyroidism')) want(MEDICINES.levothyroxine);
      if (has('parkinsons')) want(MEDICINES.coCareldopa);
      if (has('copd')) want(MEDICINES.salbutamol);
      if (has('stroke')) { want(has('af') ? MEDICINES.atorvastatin : MEDICINES.clopidogrel); want(MEDICINES.atorvastatin); }
      if (has('osteoporosis')) want(MEDICINES.alendronicAcid);
      if (has('depression')) want(MEDICINES.sertraline);
      if (has('osteoarthritis')) want(MEDICINES.paracetamol);
      const extras = [MEDICINES.paracetamol, MEDICINES.senna];
      while (meds.length < 2) want(extras.find((m) => !meds.includes(m)) ?? MEDICINES.senna);
      if (meds.length < 6 && p.chance(0.4)) want(p.pick(extras));
      for (const m of meds) {
        const reason = m.for ? conditions.get(m.for) : undefined;
        add('MedicationRequest', `demo-medrx-${key}-${m.key.toLowerCase()}`, {
          status: 'active',
          intent: 'order',
          category: [cc(`${TERMINOLOGY}/medicationrequest-category`, 'community', 'Community')],
          medicationCodeableConcept: m.dmd ? { coding: [{ system: DMD, code: m.dmd, display: m.name }], text: m.name } : { text: m.name },
          subject: patientRef,
          authoredOn: date(now - p.int(14, 400) * DAY),
          requester: ref(gp.practitioner, gp.name),
          ...(reason ? { reasonReference: [ref(reason, (reason.code as { text: string }).text)] } : {}),
          courseOfTherapyType: cc(`${TERMINOLOGY}/medicationrequest-course-of-therapy`, 'continuous', 'Continuous long term therapy'),
          dosageInstruction: [{ text: m.dosage }],
        });
      }

      // Allergies (0–2)
      const allergyCount = p.weightedSample([{ item: 0, weight: 60 }, { item: 1, weight: 30 }, { item: 2, weight: 10 }], 1)[0];
      for (const a of p.weightedSample(ALLERGIES.map((item) => ({ item, weight: 1 })), allergyCount)) {
        add('AllergyIntolerance', `demo-allergy-${key}-${a.code}`, {
          clinicalStatus: cc(`${TERMINOLOGY}/allergyintolerance-clinical`, 'active', 'Active'),
          verificationStatus: cc(`${TERMINOLOGY}/allergyintolerance-verification`, 'confirmed', 'Confirmed'),
          type: a.type,
          category: ['medication'],
          criticality: a.criticality,
          code: cc(SNOMED, a.code, a.display, a.display),
          patient: patientRef,
          recordedDate: date(now - p.int(365, 20 * 365) * DAY),
          recorder: ref(gp.practitioner, gp.name),
          reaction: [{ manifestation: [cc(SNOMED, a.reaction.code, a.reaction.display)], severity: a.reaction.severity }],
        });
      }

      // Care plan ("about me")
      const calledBy = given[0];
      const interests = p.shuffle([...INTERESTS, ...heritage.interests, ...heritage.interests]).filter((x, i, all) => all.indexOf(x) === i);
      const aboutMe = [
        `I like to be called ${calledBy}.`,
        `I worked as ${p.pick(OCCUPATIONS)} and I enjoy ${interests[0]}.`,
        `What matters to me: my ${kin.display} ${kinName.given[0]} visiting, and ${interests[1]}.`,
        `My routine: ${p.pick(ROUTINES)}.`,
        `How to communicate with me: ${p.pick([...COMMUNICATION, ...heritage.communication, ...heritage.communication])}.`,
      ].join(' ');
      add('CarePlan', `demo-careplan-${key}`, {
        status: 'active',
        intent: 'plan',
        category: [{ text: 'Person-centred care and support plan' }],
        title: `About me and my care: ${nameText(name)}`,
        description: aboutMe,
        subject: patientRef,
        period: { start: date(residentSince) },
        author: ref(home.manager.practitioner, home.manager.name),
        careTeam: [ref(careTeam)],
        addresses: [...conditions.values()].map((c) => ref(c, (c.code as { text: string }).text)),
        activity: [
          { detail: { status: 'in-progress', description: 'Daily NEWS2 observations each morning; escalate using the RCP NEWS2 response and the home\'s escalation pathway (GP, NHS 111, 999).' } },
          { detail: { status: 'in-progress', description: 'Offer drinks at least every two hours and record fluid intake.' } },
          { detail: { status: 'in-progress', description: 'Support with personal care in the way described in "about me".' } },
          ...(has('alzheimers') || has('dementia') ? [{ detail: { status: 'in-progress', description: 'Dementia support: keep routines familiar; watch for new or worsening confusion, which can be a sign of infection (record as C on ACVPU).' } }] : []),
        ],
      });

      // DNACPR (recorded on a ReSPECT form) for some
      if (p.chance(0.45)) {
        add('Consent', `demo-consent-${key}-dnacpr`, {
          status: 'active',
          scope: cc(`${TERMINOLOGY}/consentscope`, 'adr', 'Advanced Care Directive'),
          category: [{ ...cc(`${TERMINOLOGY}/consentcategorycodes`, 'dnr', 'Do Not Resuscitate'), text: 'DNACPR decision (ReSPECT form)' }],
          patient: patientRef,
          dateTime: dateTime(now - p.int(30, 900) * DAY),
          performer: [ref(gp.practitioner, gp.name)],
          organization: [ref(practice, practice.name as string)],
          policyRule: { text: 'ReSPECT: Recommended Summary Plan for Emergency Care and Treatment. Do not attempt cardiopulmonary resuscitation.' },
          provision: { type: 'deny', code: [cc(SNOMED, '89666000', 'Cardiopulmonary resuscitation')] },
        });
      }

      // Risk flags
      const flag = (kind: string, code: { coding?: Coding[]; text?: string }, category: 'safety' | 'clinical') =>
        add('Flag', `demo-flag-${key}-${kind}`, {
          status: 'active',
          category: [cc(`${TERMINOLOGY}/flag-category`, category, category === 'safety' ? 'Safety' : 'Clinical')],
          code,
          subject: patientRef,
          period: { start: date(residentSince + p.int(1, 60) * DAY) },
          author: ref(home.org, home.name),
        });
      if (p.chance(0.4) || has('parkinsons') || has('stroke')) flag('falls-risk', cc(SNOMED, '129839007', 'At risk for falls', 'At risk of falls'), 'safety');
      if (p.chance(0.25)) flag('pressure-ulcer-risk', { text: `At risk of pressure ulcer (Waterlow score ${p.int(10, 19)})` }, 'clinical');
      if (scale2) flag('spo2-scale-2', { text: 'Target oxygen saturation 88–92% (hypercapnic respiratory failure): score SpO2 on NEWS2 scale 2' }, 'clinical');

      // Vital signs
      const baseline: Baseline = {
        respirationRate: copd ? p.int(18, 20) : p.int(13, 18),
        spo2: scale2 ? p.int(88, 91) : copd ? p.int(94, 95) : p.int(95, 98),
        systolicBP: has('hypertension') ? p.int(130, 158) : p.int(112, 145),
        diastolicBP: p.int(62, 84),
        pulse: has('af') ? p.int(72, 90) : p.int(58, 84),
        temperature: 36.2 + p.int(0, 7) / 10,
      };
      let trend: Trend = { kind: 'stable' };
      let encounter: FhirResource | undefined;
      let ward = 0;
      if (inpatientSet.has(residentIndex)) {
        const admitDay = Math.max(0, days - 1 - p.int(1, 2));
        trend = { kind: 'admitted', admitDay, rampDays: p.int(2, 4) };
        ward = copd ? 2 : p.int(0, 1);
        const morning = days > 0 ? obsTime(admitDay, stream('obs-time', key, admitDay)) : now - DAY;
        const admitted = Math.min(morning + p.int(3, 9) * HOUR + p.int(0, 59) * MINUTE, now - HOUR);
        // Referral details come from a stream of their own, so the rest of the dataset is unchanged by them.
        const rp = stream('referral', key);
        const expected = date(admitted + rp.int(4, 9) * DAY);
        encounter = add('Encounter', `demo-enc-${key}`, {
          extension: [{ url: EXPECTED_DISCHARGE_URL, valueDateTime: expected }],
          status: 'in-progress',
          class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'IMP', display: 'inpatient encounter' },
          type: [{ text: 'Emergency admission' }],
          subject: patientRef,
          participant: [
            { type: [{ text: 'Named nurse' }], individual: ref(wardNurses[ward].practitioner, wardNurses[ward].name) },
            { type: [{ text: 'Discharge coordinator' }], individual: ref(dischargeCoordinator.practitioner, dischargeCoordinator.name) },
          ],
          period: { start: dateTime(admitted) },
          reasonCode: [{ text: p.pick(copd ? ['Infective exacerbation of COPD'] : ['Suspected lower respiratory tract infection', 'Suspected urinary tract infection with new confusion', 'Sepsis, source unclear']) }],
          hospitalization: { origin: ref(home.location, home.name), admitSource: { text: 'Care home (usual place of residence)' } },
          location: [{ location: ref(wards[ward], wards[ward].name as string), status: 'active', period: { start: dateTime(admitted) } }],
          serviceProvider: ref(trust, trust.name as string),
        });
        // The ward tells the council's team early that the person will need support on discharge: a
        // discharge-to-assess referral (src/discharge/model.ts) with the council's triage Task.
        const referralId = `demo-referral-${key}`;
        const authored = Math.min(admitted + 6 * HOUR, now - HOUR);
        const pathway = rp.pick([1, 1, 1, 2, 3] as Pathway[]);
        const accepted = rp.chance(0.5);
        add('ServiceRequest', referralId, {
          extension: [{ url: EXPECTED_DISCHARGE_URL, valueDateTime: expected }],
          contained: [{ resourceType: 'PractitionerRole', id: 'requester', practitioner: ref(dischargeCoordinator.practitioner, dischargeCoordinator.name), organization: ref(trust, trust.name as string), location: [ref(wards[ward], wards[ward].name as string)] }],
          identifier: [{ system: DISCHARGE_REFERRAL_SYSTEM, value: demoUuid(`${seed}:${referralId}`) }],
          status: 'active',
          intent: 'order',
          category: [cc(SNOMED, '3457005', 'Patient referral'), cc(PATHWAY_SYSTEM, String(pathway), PATHWAYS[pathway])],
          code: { coding: [REFERRAL_CODE], text: REFERRAL_CODE.display },
          subject: patientRef,
          encounter: ref(encounter!),
          authoredOn: dateTime(authored),
          requester: { reference: '#requester', display: trust.name as string },
          performer: [ref(council, 'Northshire County Council')],
          reasonCode: [{ text: 'Assessment for care and support on discharge' }],
        });
        const state = accepted ? 'accepted' : 'received';
        add('Task', `triage-${referralId}`, {
          status: accepted ? 'accepted' : 'requested',
          businessStatus: { coding: [{ system: TRIAGE_STATE_SYSTEM, code: state, display: state === 'accepted' ? 'Accepted' : 'Received' }], text: state === 'accepted' ? 'Accepted' : 'Received' },
          intent: 'order',
          priority: 'routine',
          code: { coding: [TRIAGE_TASK_CODE], text: TRIAGE_TASK_CODE.display },
          focus: { reference: `ServiceRequest/${referralId}` },
          basedOn: [{ reference: `ServiceRequest/${referralId}` }],
          for: patientRef,
          encounter: ref(encounter),
          authoredOn: dateTime(authored),
          lastModified: dateTime(authored),
          requester: ref(trust, trust.name as string),
          owner: accepted ? ref(socialWorkers[0].practitioner, socialWorkers[0].name) : ref(council, 'Northshire County Council'),
          restriction: { period: { end: dateTime(authored + 2 * DAY) } },
        });
      } else if (mildSet.has(residentIndex)) {
        const rampDays = Math.min(days, p.int(3, 5));
        trend = { kind: 'mild', rampStart: days - rampDays, rampDays };
      }

      for (let d = 0; d < days; d++) {
        const op = stream('obs', key, d);
        const when = dateTime(obsTime(d, stream('obs-time', key, d)));
        const inHospital = trend.kind === 'admitted' && d > trend.admitDay;
        let severity = 0;
        if (trend.kind === 'admitted') {
          if (d <= trend.admitDay) severity = clamp((d - (trend.admitDay - trend.rampDays)) / trend.rampDays, 0, 1);
          else severity = Math.max(0.3, 1 - 0.25 * (d - trend.admitDay));
        } else if (trend.kind === 'mild' && d >= trend.rampStart) {
          severity = 0.55 * ((d - trend.rampStart + 1) / trend.rampDays);
        }
        const oxygen = inHospital;
        let spo2 = baseline.spo2 - 7 * severity + op.normal();
        if (oxygen) spo2 = scale2 ? 88 + op.int(0, 5) : spo2 + 5;
        const vitals: News2Input = {
          respirationRate: Math.round(clamp(baseline.respirationRate + 9 * severity + op.normal(), 8, 40)),
          spo2: Math.round(clamp(spo2, 75, 100)),
          spo2Scale2: scale2,
          supplementalOxygen: oxygen,
          systolicBP: Math.round(clamp(baseline.systolicBP - 30 * severity + 7 * op.normal(), 70, 220)),
          pulse: Math.round(clamp(baseline.pulse + 32 * severity + (has('af') ? 7 : 4) * op.normal(), 40, 160)),
          consciousness: (severity >= 0.75 ? 'C' : 'A') as Acvpu,
          temperature: Math.round(clamp(baseline.temperature + 1.9 * severity + 0.15 * op.normal(), 34.5, 40.5) * 10) / 10,
        };
        const diastolic = Math.round(clamp(baseline.diastolicBP - 14 * severity + 4 * op.normal(), 40, vitals.systolicBP - 20));
        const performer = inHospital ? wardNurses[ward] : home.seniorCarer;
        const common = (category: 'vital-signs' | 'survey') => ({
          status: 'final',
          category: [cc(`${TERMINOLOGY}/observation-category`, category, category === 'vital-signs' ? 'Vital Signs' : 'Survey')],
        });
        const context = {
          subject: patientRef,
          ...(inHospital && encounter ? { encounter: ref(encounter) } : {}),
          effectiveDateTime: when,
          performer: [ref(performer.practitioner, performer.name)],
        };
        const id = (kind: string) => `demo-obs-${key}-d${pad(d + 1, 2)}-${kind}`;
        const quantity = (value: number, unit: string, code: string) => ({ value, unit, system: UCUM, code });
        const rr = add('Observation', id('rr'), {
          ...common('vital-signs'), code: { coding: [OBS.respirationRate], text: 'Respiration rate' }, ...context,
          valueQuantity: quantity(vitals.respirationRate, 'breaths/minute', '/min'),
        });
        const sat = add('Observation', id('spo2'), {
          ...common('vital-signs'), code: { coding: [OBS.spo2, OBS.spo2Generic], text: 'SpO2' }, ...context,
          valueQuantity: quantity(vitals.spo2, '%', '%'),
          ...(oxygen ? { component: [{ code: { coding: [OBS.oxygenFlow], text: 'Oxygen flow rate' }, valueQuantity: quantity(scale2 ? 1 : 2, 'L/min', 'L/min') }] } : {}),
        });
        const temp = add('Observation', id('temp'), {
          ...common('vital-signs'), code: { coding: [OBS.temperature], text: 'Temperature' }, ...context,
          valueQuantity: quantity(vitals.temperature, '°C', 'Cel'),
        });
        const bp = add('Observation', id('bp'), {
          ...common('vital-signs'), code: { coding: [OBS.bloodPressure], text: 'Blood pressure' }, ...context,
          component: [
            { code: { coding: [OBS.systolic], text: 'Systolic blood pressure' }, valueQuantity: quantity(vitals.systolicBP, 'mmHg', 'mm[Hg]') },
            { code: { coding: [OBS.diastolic], text: 'Diastolic blood pressure' }, valueQuantity: quantity(diastolic, 'mmHg', 'mm[Hg]') },
          ],
        });
        const hr = add('Observation', id('hr'), {
          ...common('vital-signs'), code: { coding: [OBS.heartRate], text: 'Pulse' }, ...context,
          valueQuantity: quantity(vitals.pulse, 'beats/minute', '/min'),
        });
        const level = ACVPU_CODES[vitals.consciousness];
        const acvpu = add('Observation', id('acvpu'), {
          ...common('survey'), code: { coding: [OBS.acvpu], text: 'Consciousness (ACVPU)' }, ...context,
          valueCodeableConcept: cc(SNOMED, level.code, level.display, vitals.consciousness),
        });
        const score = scoreNews2(vitals);
        add('Observation', id('news2'), {
          ...common('survey'), code: { coding: [OBS.news2], text: 'NEWS2 total score' }, ...context,
          ...news2TotalElements(score),
          derivedFrom: [rr, sat, temp, bp, hr, acvpu].map((o) => ref(o)),
        });
      }
    }
  }

  // ---- bundle ------------------------------------------------------------------------------------
  const counts: Record<string, number> = {};
  for (const r of resources) counts[r.resourceType] = (counts[r.resourceType] ?? 0) + 1;
  const summary: Record<string, number> = {};
  for (const type of Object.keys(counts).sort()) summary[type] = counts[type];

  const bundle: TransactionBundle = {
    resourceType: 'Bundle',
    id: `demo-dataset-seed-${seed}`,
    meta: { tag: [{ ...SYNTHETIC_TAG }] },
    type: 'transaction',
    timestamp: dateTime(now),
    entry: resources.map((resource) => ({ resource, request: { method: 'PUT', url: `${resource.resourceType}/${resource.id}` } })),
  };
  return { bundle, summary };
}
