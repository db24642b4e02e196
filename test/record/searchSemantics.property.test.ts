// Property-based tests of FHIR search semantics, over HTTP, against both storage engines.
//
// (a) Dates: values of mixed precision are stored as Patient.birthDate, Observation.effectiveDateTime and
//     Encounter.period, then searched with every prefix (eq ne gt lt ge le sa eb) at mixed precision. The
//     server's answer is compared with an oracle written from the FHIR R4 spec
//     (http://hl7.org/fhir/R4/search.html#date and #prefix): every value, stored or searched, is the implicit
//     range its precision denotes, and each prefix is a relation between the two ranges. The oracle works in
//     BigInt nanoseconds over half-open ranges, independently of src/record/search/dateRange.ts.
//     Interpretation: a value without a time zone (a date, or a search dateTime without an offset) is read as
//     UTC. The spec says the server's local zone SHOULD be assumed; this server documents neither, and it
//     (like the oracle) uses UTC.
// (b) Strings: names with accents and case variants. Default search is "starts with, after both have been
//     normalized by case and accent", :contains is the same for any substring, :exact is case- and
//     accent-sensitive. The oracle compares with ICU's collator at base strength (Intl.Collator), not with
//     the server's folding function.
//
// Each dataset is written in one transaction, tagged with its own meta.tag, and every search is restricted to
// that tag, so datasets never see each other and nothing needs deleting. One server per engine for the file.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ENGINES, startTestServer, type Engine, type TestServer } from '../support/server.ts';
import { stopOwnPostgres } from '../support/postgres.ts';

after(() => stopOwnPostgres());

const TAG_SYSTEM = 'urn:carebridge:test:search-semantics';
let runCounter = 0;
const newTag = (engine: Engine) => `${engine}-${process.pid}-${++runCounter}-${Math.random().toString(36).slice(2, 8)}`;

// fast-check settings: bounded runs, and a time cap so a failing (todo) property cannot shrink forever.
const RUNS = Number(process.env.SEARCH_PROPERTY_RUNS ?? 40);
const fcOptions = (numRuns = RUNS): fc.Parameters<unknown> => ({ numRuns, interruptAfterTimeLimit: 15_000, markInterruptAsFailure: false });

// ---------------------------------------------------------------------------------------------------------
// Tiny HTTP helpers
// ---------------------------------------------------------------------------------------------------------

interface Created { type: string; id: string }

/** Writes resources in one transaction and returns their ids, in order. */
async function createAll(s: TestServer, resources: Record<string, unknown>[]): Promise<Created[]> {
  const bundle = {
    resourceType: 'Bundle',
    type: 'transaction',
    entry: resources.map((resource) => ({ resource, request: { method: 'POST', url: resource.resourceType } })),
  };
  const reply = await s.fhir.post('', bundle);
  assert.equal(reply.status, 200, `transaction failed: ${JSON.stringify(reply.body).slice(0, 500)}`);
  return reply.body.entry.map((e: { response: { location: string } }) => {
    const [type, id] = e.response.location.split('/');
    return { type, id };
  });
}

/** Runs a search and returns the matching ids (checking total and that no page was cut off). */
async function searchIds(s: TestServer, type: string, params: [string, string][]): Promise<Set<string>> {
  const query = new URLSearchParams([...params, ['_count', '200']]).toString();
  const reply = await s.fhir.get(`${type}?${query}`);
  assert.equal(reply.status, 200, `GET ${type}?${query} answered ${reply.status}: ${JSON.stringify(reply.body).slice(0, 500)}`);
  const ids = new Set<string>((reply.body.entry ?? []).map((e: { resource: { id: string } }) => e.resource.id));
  assert.equal(reply.body.total, ids.size, `GET ${type}?${query}: total ${reply.body.total} but ${ids.size} entries`);
  return ids;
}

const tagged = (tag: string) => ({ meta: { tag: [{ system: TAG_SYSTEM, code: tag }] } });
const sorted = (xs: Iterable<string>) => [...xs].sort();

// ---------------------------------------------------------------------------------------------------------
// (a) Dates: the oracle
// ---------------------------------------------------------------------------------------------------------

type Precision = 'year' | 'month' | 'day' | 'minute' | 'second' | 'fraction';

interface FhirDate {
  precision: Precision;
  y: number;
  mo: number;
  d: number;
  h: number;
  mi: number;
  s: number;
  /** Fraction-of-second digits, without the dot. */
  frac: string;
  /** 'Z', '+hh:mm' or '-hh:mm'; undefined = no zone written (only for search values). */
  tz: string | undefined;
}

const pad = (n: number, width = 2) => String(n).padStart(width, '0');

function formatDate(v: FhirDate): string {
  let out = pad(v.y, 4);
  if (v.precision === 'year') return out;
  out += `-${pad(v.mo)}`;
  if (v.precision === 'month') return out;
  out += `-${pad(v.d)}`;
  if (v.precision === 'day') return out;
  out += `T${pad(v.h)}:${pad(v.mi)}`;
  if (v.precision !== 'minute') out += `:${pad(v.s)}`;
  if (v.precision === 'fraction') out += `.${v.frac}`;
  return out + (v.tz ?? '');
}

/** A half-open range [lo, hi) of nanoseconds since 1970-01-01T00:00:00Z. */
interface Range { lo: bigint; hi: bigint }

const NS_PER_MS = 1_000_000n;
const NS_PER_S = 1_000_000_000n;
const INFINITY = 10n ** 30n; // beyond any date we generate: stands for an open end of a Period

function offsetNs(tz: string | undefined): bigint {
  if (!tz || tz === 'Z') return 0n; // no zone: read as UTC (see the header comment)
  const sign = tz[0] === '-' ? -1n : 1n;
  const minutes = BigInt(Number(tz.slice(1, 3)) * 60 + Number(tz.slice(4, 6)));
  return sign * minutes * 60n * NS_PER_S;
}

/** The range a FHIR date/dateTime denotes: "the implicit range of the value's precision". */
function rangeOf(v: FhirDate): Range {
  // Date.UTC normalises overflow (month 13 → January of the next year, day 32 → the 1st of the next month).
  const at = (mo: number, d: number, h = 0, mi = 0, s = 0) => BigInt(Date.UTC(v.y, mo - 1, d, h, mi, s)) * NS_PER_MS;
  switch (v.precision) {
    case 'year':
      return { lo: BigInt(Date.UTC(v.y, 0, 1)) * NS_PER_MS, hi: BigInt(Date.UTC(v.y + 1, 0, 1)) * NS_PER_MS };
    case 'month':
      return { lo: at(v.mo, 1), hi: at(v.mo + 1, 1) };
    case 'day':
      return { lo: at(v.mo, v.d), hi: at(v.mo, v.d + 1) };
    case 'minute': {
      const lo = at(v.mo, v.d, v.h, v.mi) - offsetNs(v.tz);
      return { lo, hi: lo + 60n * NS_PER_S };
    }
    case 'second': {
      const lo = at(v.mo, v.d, v.h, v.mi, v.s) - offsetNs(v.tz);
      return { lo, hi: lo + NS_PER_S };
    }
    case 'fraction': {
      const unit = 10n ** BigInt(9 - v.frac.length);
      const lo = at(v.mo, v.d, v.h, v.mi, v.s) - offsetNs(v.tz) + BigInt(v.frac) * unit;
      return { lo, hi: lo + unit };
    }
  }
}

const PREFIXES = ['eq', 'ne', 'gt', 'lt', 'ge', 'le', 'sa', 'eb'] as const;
type Prefix = (typeof PREFIXES)[number];

/** FHIR R4 search.html#prefix, with q the search value's range and t the target (stored) value's range. */
function dateMatches(prefix: Prefix, q: Range, t: Range): boolean {
  // "the range of the search value fully contains the range of the target value"
  const contains = q.lo <= t.lo && t.hi <= q.hi;
  // "the range above the search value intersects (i.e. overlaps) with the range of the target value"
  const aboveIntersects = t.hi > q.hi;
  // "the range below the search value intersects (i.e. overlaps) with the range of the target value"
  const belowIntersects = t.lo < q.lo;
  switch (prefix) {
    case 'eq': return contains;
    case 'ne': return !contains; // "does not fully contain"
    case 'gt': return aboveIntersects;
    case 'lt': return belowIntersects;
    case 'ge': return aboveIntersects || contains;
    case 'le': return belowIntersects || contains;
    // "does not overlap with the range of the target value, and the range above the search value contains the range of the target value"
    case 'sa': return t.lo >= q.hi;
    // "does not overlap ..., and the range below the search value contains the range of the target value"
    case 'eb': return t.hi <= q.lo;
  }
}

// ---------------------------------------------------------------------------------------------------------
// (a) Dates: generators. A deliberately small domain (three years around a boundary, month/day/hour values at
// the edges, offsets up to ±14h) so that ranges of different precision overlap, nest and touch often.
// ---------------------------------------------------------------------------------------------------------

const daysIn = (y: number, mo: number) => new Date(Date.UTC(y, mo, 0)).getUTCDate();
const OFFSETS = ['Z', '+00:00', '+01:00', '-05:00', '+05:30', '+14:00', '-12:00'];

interface DateDomain { fractions: string[]; seconds: number[]; offsets: string[]; narrow: boolean }
const WIDE: DateDomain = { fractions: ['0', '5', '25', '999', '001', '500'], seconds: [0, 30, 59], offsets: OFFSETS, narrow: false };

function dateArb(precisions: Precision[], zone: 'required' | 'optional', domain: DateDomain = WIDE): fc.Arbitrary<FhirDate> {
  // A narrow domain pins everything above the second, so that values meet at sub-second precision.
  const pick = <T,>(wide: T[], narrow: T) => fc.constantFrom(...(domain.narrow ? [narrow] : wide));
  return fc
    .record({
      precision: fc.constantFrom(...precisions),
      y: pick([1999, 2000, 2001], 2000),
      mo: pick([1, 2, 6, 12], 6),
      d: pick([1, 2, 15, 28, 29, 30, 31], 15),
      h: pick([0, 1, 12, 22, 23], 10),
      mi: pick([0, 30, 59], 30),
      s: fc.constantFrom(...domain.seconds),
      frac: fc.constantFrom(...domain.fractions),
      tz: zone === 'required' ? fc.constantFrom(...domain.offsets) : fc.option(fc.constantFrom(...domain.offsets), { nil: undefined }),
    })
    .map((v) => ({ ...v, d: Math.min(v.d, daysIn(v.y, v.mo)) }));
}

// What each element may hold: birthDate is a `date`; dateTime needs seconds and a zone once it has a time.
const birthDateArb = dateArb(['year', 'month', 'day'], 'required');
const dateTimeArb = dateArb(['year', 'month', 'day', 'second', 'fraction'], 'required');
// Search values may be any precision, including minutes, with or without a zone.
const searchDateArb = dateArb(['year', 'month', 'day', 'minute', 'second', 'fraction'], 'optional');

interface PeriodValue { start?: FhirDate; end?: FhirDate }

const periodArb = (dateTime: fc.Arbitrary<FhirDate>): fc.Arbitrary<PeriodValue> => fc
  .tuple(dateTime, dateTime, fc.constantFrom('both', 'both', 'start', 'end'))
  .map(([a, b, shape]) => {
    const [start, end] = rangeOf(a).lo <= rangeOf(b).lo ? [a, b] : [b, a];
    return shape === 'both' ? { start, end } : shape === 'start' ? { start } : { end };
  });

const periodRange = (p: PeriodValue): Range => ({
  lo: p.start ? rangeOf(p.start).lo : -INFINITY, // "a missing start or end means the period is open at that side"
  hi: p.end ? rangeOf(p.end).hi : INFINITY,
});

interface DateSearchValue { prefix: Prefix; value: FhirDate; writePrefix: boolean }

/** Search values: fresh ones, or (more often) a stored value seen at another precision and/or in another zone. */
function searchValueArb(fresh: fc.Arbitrary<FhirDate>, stored: FhirDate[]): fc.Arbitrary<DateSearchValue> {
  const near = fc
    .tuple(fc.constantFrom(...stored), fresh)
    .map(([v, other]): FhirDate => ({ ...v, precision: other.precision, tz: other.precision === 'fraction' || other.precision === 'second' ? v.tz : other.tz }));
  return fc.record({
    prefix: fc.constantFrom(...PREFIXES),
    value: stored.length ? fc.oneof({ weight: 1, arbitrary: fresh }, { weight: 2, arbitrary: near }) : fresh,
    writePrefix: fc.boolean(), // "eq" may be left out
  });
}

/** A date search: AND of clauses (repeated parameters), each an OR of values (comma-separated). */
type DateQuery = DateSearchValue[][];
const dateQueryArb = (value: fc.Arbitrary<DateSearchValue>, maxClauses = 2, maxValues = 2): fc.Arbitrary<DateQuery> =>
  fc.array(fc.array(value, { minLength: 1, maxLength: maxValues }), { minLength: 1, maxLength: maxClauses });

const writeValue = (v: DateSearchValue) => (v.prefix === 'eq' && !v.writePrefix ? '' : v.prefix) + formatDate(v.value);

function queryMatches(query: DateQuery, target: Range | undefined): boolean {
  if (!target) return false; // a resource without the element matches no date search
  return query.every((clause) => clause.some((v) => dateMatches(v.prefix, rangeOf(v.value), target)));
}

interface DateDataset {
  birthDates: (FhirDate | undefined)[];
  effective: FhirDate[];
  periods: PeriodValue[];
  queries: DateQuery[];
}

function dateDatasetArb(storedDateTime: fc.Arbitrary<FhirDate>, periods: fc.Arbitrary<PeriodValue>, searchDate: fc.Arbitrary<FhirDate>, maxClauses = 2, maxValues = 2): fc.Arbitrary<DateDataset> {
  return fc
    .record({
      birthDates: fc.array(fc.option(birthDateArb, { nil: undefined, freq: 6 }), { minLength: 2, maxLength: 4 }),
      effective: fc.array(storedDateTime, { minLength: 2, maxLength: 4 }),
      periods: fc.array(periods, { minLength: 2, maxLength: 3 }),
    })
    .chain((stored) => {
      const values = [...stored.birthDates.filter((b) => b !== undefined), ...stored.effective, ...stored.periods.flatMap((p) => [p.start, p.end].filter((v) => v !== undefined))];
      return fc.record({
        birthDates: fc.constant(stored.birthDates),
        effective: fc.constant(stored.effective),
        periods: fc.constant(stored.periods),
        queries: fc.array(dateQueryArb(searchValueArb(searchDate, values), maxClauses, maxValues), { minLength: 2, maxLength: 4 }),
      });
    });
}

interface Target { type: string; param: string; id: string; label: string; range: Range | undefined }

async function checkDateDataset(s: TestServer, ds: DateDataset): Promise<void> {
  const tag = newTag(s.engine);
  const resources: Record<string, unknown>[] = [
    ...ds.birthDates.map((b) => ({ resourceType: 'Patient', ...tagged(tag), ...(b ? { birthDate: formatDate(b) } : {}) })),
    ...ds.effective.map((e) => ({ resourceType: 'Observation', ...tagged(tag), status: 'final', code: { text: 'property test' }, effectiveDateTime: formatDate(e) })),
    ...ds.periods.map((p) => ({
      resourceType: 'Encounter',
      ...tagged(tag),
      status: 'finished',
      class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'AMB' },
      period: { ...(p.start ? { start: formatDate(p.start) } : {}), ...(p.end ? { end: formatDate(p.end) } : {}) },
    })),
  ];
  const ids = await createAll(s, resources);
  const targets: Target[] = [
    ...ds.birthDates.map((b, i) => ({ type: 'Patient', param: 'birthdate', id: ids[i].id, label: b ? formatDate(b) : '(no birthDate)', range: b && rangeOf(b) })),
    ...ds.effective.map((e, i) => ({ type: 'Observation', param: 'date', id: ids[ds.birthDates.length + i].id, label: formatDate(e), range: rangeOf(e) })),
    ...ds.periods.map((p, i) => ({
      type: 'Encounter',
      param: 'date',
      id: ids[ds.birthDates.length + ds.effective.length + i].id,
      label: `${p.start ? formatDate(p.start) : '…'} to ${p.end ? formatDate(p.end) : '…'}`,
      range: periodRange(p),
    })),
  ];
  for (const query of ds.queries) {
    for (const type of ['Patient', 'Observation', 'Encounter']) {
      const mine = targets.filter((t) => t.type === type);
      const param = mine[0].param;
      const params: [string, string][] = [['_tag', `${TAG_SYSTEM}|${tag}`], ...query.map((clause): [string, string] => [param, clause.map(writeValue).join(',')])];
      const actual = await searchIds(s, type, params);
      const expected = new Set(mine.filter((t) => queryMatches(query, t.range)).map((t) => t.id));
      if (sorted(actual).join() !== sorted(expected).join()) {
        const describeTarget = (t: Target) => `${t.label} → expected ${expected.has(t.id) ? 'match' : 'no match'}, server ${actual.has(t.id) ? 'matched' : 'did not match'}`;
        assert.fail(`${s.engine}: ${type}?${params.slice(1).map(([k, v]) => `${k}=${v}`).join('&')}\n  ${mine.map(describeTarget).join('\n  ')}`);
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// (b) Strings: the oracle
// ---------------------------------------------------------------------------------------------------------

/** ICU collation at base strength: "a" = "A" = "á" = "Á" (and, as ICU has it, "ø" = "o", "ß" = "ss"). */
const baseCollator = new Intl.Collator('und', { sensitivity: 'base' });
const sameIgnoringCaseAndAccents = (a: string, b: string) => baseCollator.compare(a, b) === 0;

function startsWithInsensitive(target: string, query: string): boolean {
  for (let k = 0; k <= target.length; k++) if (sameIgnoringCaseAndAccents(target.slice(0, k), query)) return true;
  return false;
}

function containsInsensitive(target: string, query: string): boolean {
  for (let i = 0; i <= target.length; i++) {
    for (let j = i; j <= target.length; j++) if (sameIgnoringCaseAndAccents(target.slice(i, j), query)) return true;
  }
  return false;
}

type StringModifier = '' | ':exact' | ':contains';

/**
 * ICU compares æ, œ and ß as the expansions ae, oe and ss, but the character-by-character prefix loop
 * below could never split an expansion ("œuvre" starts with "o"). Expanding first keeps the oracle's
 * prefix and substring semantics at the level of letters a person types.
 */
const EXPANSIONS: Record<string, string> = { æ: 'ae', Æ: 'AE', œ: 'oe', Œ: 'OE', ß: 'ss' };
const expand = (s: string) => s.replace(/[æÆœŒß]/g, (c) => EXPANSIONS[c]);

function stringMatches(modifier: StringModifier, target: string, query: string): boolean {
  if (modifier === ':exact') return target === query; // "the search parameter matches the whole string, including casing and accents"
  if (modifier === ':contains') return containsInsensitive(expand(target), expand(query));
  return startsWithInsensitive(expand(target), expand(query));
}

// ---------------------------------------------------------------------------------------------------------
// (b) Strings: generators
// ---------------------------------------------------------------------------------------------------------

/** Accents that Unicode decomposes into a base letter plus combining marks. */
const DECOMPOSABLE_NAMES = ['Zoë', 'ZOE', 'zoe', 'Zoé', 'García', 'GARCIA', 'Garcia', 'Renée', 'RENEE', 'Noël', 'Müller', 'MULLER', 'Ångström', 'Çelik', 'Núñez', 'Dvořák', 'Brontë', "O'Brien", 'Anne-Marie', 'Mary Jane', 'Élodie', 'José', 'JOSÉ'];
const DECOMPOSABLE_PIECES = ['a', 'á', 'à', 'â', 'ä', 'å', 'A', 'Á', 'Ä', 'e', 'é', 'è', 'ê', 'ë', 'E', 'É', 'Ë', 'i', 'í', 'ï', 'I', 'Í', 'o', 'ó', 'ô', 'ö', 'O', 'Ö', 'u', 'ü', 'ú', 'U', 'Ü', 'n', 'ñ', 'N', 'Ñ', 'c', 'ç', 'C', 'Ç', 'z', 'ž', 'Z', 'r', 'ř', 's', 'š', 'S', 'g', 'G', 'ar', 'zo', 'el', ' ', '-', "'"];
/** Letters with no canonical decomposition, which ICU nonetheless treats as a base letter at primary strength. */
const ATOMIC_NAMES = ['Øster', 'ØSTER', 'øster', 'Søren', 'Łukasz', 'Straße', 'STRASSE', 'Ærø', 'Œuvre', 'Đorđe', 'Mæhle'];
const ATOMIC_PIECES = ['ø', 'Ø', 'ł', 'Ł', 'đ', 'Đ', 'ß', 'æ', 'Æ', 'œ', 'o', 'O', 'l', 'L', 'd', 'ss', 'ae', 'oe', 'st', 'er', 'an'];

const nameArb = (names: string[], pieces: string[]) =>
  fc
    .oneof(fc.constantFrom(...names), fc.array(fc.constantFrom(...pieces), { minLength: 1, maxLength: 5 }).map((p) => p.join('')))
    .map((n) => n.trim().normalize('NFC'))
    .filter((n) => n.length > 0);

const stripMarks = (s: string) => s.normalize('NFD').replace(/\p{M}/gu, '');
const ATOMIC_ASCII: Record<string, string> = { ø: 'o', Ø: 'O', ł: 'l', Ł: 'L', đ: 'd', Đ: 'D', ß: 'ss', æ: 'ae', Æ: 'AE', œ: 'oe', Œ: 'OE' };
const ACCENT_ON: Record<string, string> = { a: 'á', e: 'é', i: 'í', o: 'ö', u: 'ü', n: 'ñ', c: 'ç', A: 'Å', E: 'Ë', O: 'Ö' };

/** Ways a person might type a name they have seen: other case, without accents, with other accents, decomposed. */
const VARIANTS: Record<string, (s: string) => string> = {
  same: (s) => s,
  upper: (s) => s.toUpperCase(),
  lower: (s) => s.toLowerCase(),
  unaccented: (s) => stripMarks(s).replace(/[øØłŁđĐßæÆœŒ]/g, (c) => ATOMIC_ASCII[c]),
  reaccented: (s) => stripMarks(s).replace(/[aeioncAEO]/, (c) => ACCENT_ON[c]),
  decomposed: (s) => s.normalize('NFD'),
};

interface StringQuery { param: 'family' | 'given' | 'name'; modifier: StringModifier; value: string }
interface PersonName { family: string; given: string[] }

function stringQueryArb(people: PersonName[], names: fc.Arbitrary<string>): fc.Arbitrary<StringQuery> {
  const stored = people.flatMap((p) => [p.family, ...p.given]);
  const derived = fc
    .tuple(fc.constantFrom(...stored), fc.nat(), fc.nat(), fc.constantFrom('whole', 'prefix', 'prefix', 'infix'), fc.constantFrom(...Object.keys(VARIANTS)))
    .map(([name, a, b, part, variant]) => {
      const start = part === 'infix' ? a % name.length : 0;
      const end = part === 'whole' ? name.length : start + 1 + (b % (name.length - start));
      return VARIANTS[variant](name.slice(start, end));
    });
  return fc
    .record({
      param: fc.constantFrom('family' as const, 'given' as const, 'name' as const),
      modifier: fc.constantFrom<StringModifier>('', ':exact', ':contains'),
      value: fc.oneof({ weight: 4, arbitrary: derived }, { weight: 1, arbitrary: names }),
    })
    .filter((q) => q.value.length > 0)
    // :exact compares code points; canonically-equivalent-but-decomposed input is a different string there, and the
    // spec does not say whether :exact normalises, so keep :exact to the composed (NFC) form people normally send.
    .map((q) => (q.modifier === ':exact' ? { ...q, value: q.value.normalize('NFC') } : q));
}

interface StringDataset { people: PersonName[]; queries: StringQuery[] }

function stringDatasetArb(names: string[], pieces: string[]): fc.Arbitrary<StringDataset> {
  const name = nameArb(names, pieces);
  return fc
    .array(fc.record({ family: name, given: fc.array(name, { minLength: 1, maxLength: 2 }) }), { minLength: 2, maxLength: 5 })
    .chain((people) => fc.record({ people: fc.constant(people), queries: fc.array(stringQueryArb(people, name), { minLength: 3, maxLength: 6 }) }));
}

async function checkStringDataset(s: TestServer, ds: StringDataset): Promise<void> {
  const tag = newTag(s.engine);
  const ids = await createAll(s, ds.people.map((p) => ({ resourceType: 'Patient', ...tagged(tag), name: [{ family: p.family, given: p.given }] })));
  for (const q of ds.queries) {
    const partsOf = (p: PersonName) => (q.param === 'family' ? [p.family] : q.param === 'given' ? p.given : [p.family, ...p.given]);
    const expected = new Set(ds.people.flatMap((p, i) => (partsOf(p).some((part) => stringMatches(q.modifier, part, q.value)) ? [ids[i].id] : [])));
    const params: [string, string][] = [['_tag', `${TAG_SYSTEM}|${tag}`], [q.param + q.modifier, q.value]];
    const actual = await searchIds(s, 'Patient', params);
    if (sorted(actual).join() !== sorted(expected).join()) {
      const lines = ds.people.map((p, i) => `${JSON.stringify(partsOf(p))} → expected ${expected.has(ids[i].id) ? 'match' : 'no match'}, server ${actual.has(ids[i].id) ? 'matched' : 'did not match'}`);
      assert.fail(`${s.engine}: Patient?${q.param}${q.modifier}=${JSON.stringify(q.value)}\n  ${lines.join('\n  ')}`);
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// The tests
// ---------------------------------------------------------------------------------------------------------

describe('search semantics oracle (self-checks)', () => {
  it('date ranges follow the precision of the value', () => {
    const d = (precision: Precision, over: Partial<FhirDate> = {}): FhirDate => ({ precision, y: 2000, mo: 6, d: 15, h: 10, mi: 30, s: 5, frac: '5', tz: 'Z', ...over });
    const ms = (iso: string) => BigInt(Date.parse(iso)) * NS_PER_MS;
    assert.deepEqual(rangeOf(d('year')), { lo: ms('2000-01-01T00:00:00Z'), hi: ms('2001-01-01T00:00:00Z') });
    assert.deepEqual(rangeOf(d('month', { mo: 12 })), { lo: ms('2000-12-01T00:00:00Z'), hi: ms('2001-01-01T00:00:00Z') });
    assert.deepEqual(rangeOf(d('day', { mo: 2, d: 29 })), { lo: ms('2000-02-29T00:00:00Z'), hi: ms('2000-03-01T00:00:00Z') });
    assert.deepEqual(rangeOf(d('minute', { tz: '+05:30' })), { lo: ms('2000-06-15T05:00:00Z'), hi: ms('2000-06-15T05:01:00Z') });
    assert.deepEqual(rangeOf(d('second', { tz: '-12:00' })), { lo: ms('2000-06-15T22:30:05Z'), hi: ms('2000-06-15T22:30:06Z') });
    assert.deepEqual(rangeOf(d('fraction')), { lo: ms('2000-06-15T10:30:05.500Z'), hi: ms('2000-06-15T10:30:05.600Z') });
    assert.equal(formatDate(d('fraction', { tz: '+14:00' })), '2000-06-15T10:30:05.5+14:00');
  });

  it('prefixes relate the two ranges as search.html#prefix says', () => {
    const r = (lo: number, hi: number): Range => ({ lo: BigInt(lo), hi: BigInt(hi) });
    const q = r(10, 20);
    const table: [Range, Prefix[]][] = [
      [r(12, 15), ['eq', 'ge', 'le']], // inside
      [r(10, 20), ['eq', 'ge', 'le']], // the same range
      [r(5, 8), ['ne', 'lt', 'le', 'eb']], // wholly before
      [r(5, 10), ['ne', 'lt', 'le', 'eb']], // ends where the search range starts
      [r(20, 30), ['ne', 'gt', 'ge', 'sa']], // starts where it ends
      [r(5, 15), ['ne', 'lt', 'le']], // overlaps the start
      [r(15, 25), ['ne', 'gt', 'ge']], // overlaps the end
      [r(5, 25), ['ne', 'gt', 'lt', 'ge', 'le']], // encloses it
    ];
    for (const [t, expected] of table) {
      assert.deepEqual(PREFIXES.filter((p) => dateMatches(p, q, t)), expected, `target [${t.lo}, ${t.hi})`);
    }
  });

  it('string matching ignores case and accents except for :exact', () => {
    assert.ok(stringMatches('', 'Zoë', 'ZOE'));
    assert.ok(stringMatches('', 'García', 'garc'));
    assert.ok(!stringMatches('', 'García', 'arc'));
    assert.ok(stringMatches(':contains', 'García', 'ARCI'));
    assert.ok(stringMatches(':exact', 'García', 'García'));
    assert.ok(!stringMatches(':exact', 'García', 'Garcia'));
    assert.ok(!stringMatches(':exact', 'García', 'garcía'));
    assert.ok(stringMatches('', 'Øster', 'oster'));
  });
});

for (const engine of ENGINES) {
  describe(`search semantics over HTTP (${engine})`, () => {
    let s: TestServer;
    before(async () => {
      s = await startTestServer(engine);
    });
    after(async () => {
      await s?.close();
    });

    it('date search with every prefix at mixed precision matches the FHIR range rules', async () => {
      await fc.assert(fc.asyncProperty(dateDatasetArb(dateTimeArb, periodArb(dateTimeArb), searchDateArb), (ds) => checkDateDataset(s, ds)), fcOptions());
    });

    it('date search: examples at the edges (zones across midnight and new year, leap day, open periods)', async () => {
      const at = (v: string) => v;
      const tag = newTag(engine);
      const [newYear, leap, openEnd] = await createAll(s, [
        { resourceType: 'Observation', ...tagged(tag), status: 'final', code: { text: 'x' }, effectiveDateTime: at('2001-01-01T00:30:00+01:00') }, // 2000-12-31T23:30Z
        { resourceType: 'Patient', ...tagged(tag), birthDate: '2000-02-29' },
        { resourceType: 'Encounter', ...tagged(tag), status: 'in-progress', class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'AMB' }, period: { start: '2000-06-15T10:00:00Z' } },
      ]);
      const find = async (type: string, param: string, value: string) => sorted(await searchIds(s, type, [['_tag', `${TAG_SYSTEM}|${tag}`], [param, value]]));
      assert.deepEqual(await find('Observation', 'date', '2000'), [newYear.id]);
      assert.deepEqual(await find('Observation', 'date', '2001'), []);
      assert.deepEqual(await find('Observation', 'date', 'eb2001'), [newYear.id]);
      assert.deepEqual(await find('Observation', 'date', '2001-01-01T00:30+01:00'), [newYear.id]);
      assert.deepEqual(await find('Patient', 'birthdate', '2000-02'), [leap.id]);
      assert.deepEqual(await find('Patient', 'birthdate', 'sa2000-02-28'), [leap.id]);
      assert.deepEqual(await find('Patient', 'birthdate', 'eb2000-03-01'), [leap.id]);
      assert.deepEqual(await find('Encounter', 'date', 'gt2999'), [openEnd.id]);
      assert.deepEqual(await find('Encounter', 'date', 'sa2000-06-14'), [openEnd.id]);
      assert.deepEqual(await find('Encounter', 'date', 'ne2000'), [openEnd.id]);
      assert.deepEqual(await find('Encounter', 'date', 'eq2000'), []);
    });

    it('date search with sub-millisecond fractions (more than 3 digits) honours their precision', { todo: 'dateRange.ts parseDateRange truncates fractions to milliseconds, so .1234 and .1235 become the same range' }, async () => {
      const domain: DateDomain = { fractions: ['1', '12', '123', '1234', '1235', '12345', '123456', '123457'], seconds: [5], offsets: ['Z'], narrow: true };
      const fine = (zone: 'required' | 'optional') => dateArb(['second', 'fraction'], zone, domain);
      await fc.assert(fc.asyncProperty(dateDatasetArb(fine('required'), periodArb(fine('required')), fine('optional'), 1, 1), (ds) => checkDateDataset(s, ds)), fcOptions(25));
    });

    it('string search (default, :exact, :contains) ignores case and decomposable accents as the spec says', async () => {
      await fc.assert(fc.asyncProperty(stringDatasetArb(DECOMPOSABLE_NAMES, DECOMPOSABLE_PIECES), (ds) => checkStringDataset(s, ds)), fcOptions());
    });

    it('string search: examples (Zoë, ZOE, García, O\'Brien)', async () => {
      const tag = newTag(engine);
      const [zoe, garcia, obrien] = await createAll(s, [
        { resourceType: 'Patient', ...tagged(tag), name: [{ family: 'Zoë', given: ['Ann'] }] },
        { resourceType: 'Patient', ...tagged(tag), name: [{ family: 'García', given: ['José'] }] },
        { resourceType: 'Patient', ...tagged(tag), name: [{ family: "O'Brien", given: ['Seán'] }] },
      ]);
      const find = async (param: string, value: string) => sorted(await searchIds(s, 'Patient', [['_tag', `${TAG_SYSTEM}|${tag}`], [param, value]]));
      assert.deepEqual(await find('family', 'ZOE'), [zoe.id]);
      assert.deepEqual(await find('family', 'zoe\u0308'), [zoe.id]); // decomposed ë
      assert.deepEqual(await find('family:exact', 'Zoë'), [zoe.id]);
      assert.deepEqual(await find('family:exact', 'Zoe'), []);
      assert.deepEqual(await find('family:exact', 'zoë'), []);
      assert.deepEqual(await find('family', 'garcia'), [garcia.id]);
      assert.deepEqual(await find('family', 'arcia'), []);
      assert.deepEqual(await find('family:contains', 'ARCÍ'), [garcia.id]);
      assert.deepEqual(await find('name', 'jose'), [garcia.id]);
      assert.deepEqual(await find('family', "o'b"), [obrien.id]);
      assert.deepEqual(await find('given:contains', 'EA'), [obrien.id]);
    });

    it('string search folds letters without a canonical decomposition (Øster, Łukasz, Straße)', async () => {
      await fc.assert(fc.asyncProperty(stringDatasetArb(ATOMIC_NAMES, ATOMIC_PIECES), (ds) => checkStringDataset(s, ds)), fcOptions(25));
    });

    it('string prefix search matches when the next character lies outside the BMP (Ab𠮷)', async () => {
      const tag = newTag(engine);
      const [p] = await createAll(s, [{ resourceType: 'Patient', ...tagged(tag), name: [{ family: 'Ab𠮷', given: ['𠮷田'] }] }]);
      assert.deepEqual(sorted(await searchIds(s, 'Patient', [['_tag', `${TAG_SYSTEM}|${tag}`], ['family', 'ab']])), [p.id]);
    });

    it('string :contains finds text beyond the 512th character of a long name', { todo: 'normalise.ts foldString truncates indexed values (and queries) to 512 characters' }, async () => {
      const tag = newTag(engine);
      const [p] = await createAll(s, [{ resourceType: 'Patient', ...tagged(tag), name: [{ family: 'a'.repeat(600) + 'Zoë' }] }]);
      assert.deepEqual(sorted(await searchIds(s, 'Patient', [['_tag', `${TAG_SYSTEM}|${tag}`], ['family:contains', 'zoe']])), [p.id]);
    });
  });
}
