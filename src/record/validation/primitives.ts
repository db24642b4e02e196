// The FHIR R4 primitive types as the validator checks them: the JSON kind each is written as, and its format.
//
// Formats are the official regexes of the R4 specification, read from profiles-types.json (each primitive's
// `value` element carries them in the http://hl7.org/fhir/StructureDefinition/regex extension). They are written
// in XML Schema's regex dialect, which differs from JavaScript's in two ways that matter here:
// - they are implicitly anchored (the whole value must match), and
// - `\s` means only space, tab, CR and LF (and `\S` everything else), where JavaScript's also covers
//   no-break spaces and other Unicode spaces.
// translateXsdRegex() turns them into equivalent JavaScript regexes. Two types are checked by code instead:
// - string and markdown ("[ \r\n\t\S]+": any character at all in XSD terms; XML itself cannot carry control
//   characters, JSON can): we require some non-whitespace content and no control characters other than tab,
//   CR and LF (the spec's "SHOULD not contain Unicode character points below 32"), as the record always has;
// - base64Binary ("(\s*([0-9a-zA-Z\+/=]){4}\s*)+"): the same language, checked by a loop, because a
//   backtracking regex over a megabyte attachment is slow and can overflow the regex stack.
// The regexes accept any day 01-31 in any month; date, dateTime and instant are also checked against the
// calendar (no 2021-02-29 or 2020-04-31).
// JSON writes boolean as true/false and decimal, integer, positiveInt and unsignedInt as numbers; their XML
// regexes do not apply. Integers are 32-bit (R4: -2,147,483,648..2,147,483,647).
import { officialDefinitions } from '../definitions.ts';
import { describe } from './issues.ts';

export type JsonKind = 'string' | 'number' | 'boolean';

export interface PrimitiveType {
  /** FHIR type name: date, code, positiveInt, … */
  name: string;
  json: JsonKind;
  /** For a value of the right JSON kind: undefined when valid, else why not ("'x' is not a valid date (…)"). */
  problem(value: string | number | boolean): string | undefined;
}

const REGEX_EXTENSION = 'http://hl7.org/fhir/StructureDefinition/regex';
const MAX_STRING = 1024 * 1024; // string.value maxLength in R4

const FORMAT_HINTS: Record<string, string> = {
  date: 'YYYY, YYYY-MM or YYYY-MM-DD',
  dateTime: 'YYYY, YYYY-MM, YYYY-MM-DD or YYYY-MM-DDThh:mm:ss with a time zone (Z or +hh:mm)',
  instant: 'YYYY-MM-DDThh:mm:ss with a time zone (Z or +hh:mm)',
  time: 'hh:mm:ss',
  id: "1 to 64 letters, digits, '-' or '.'",
  code: 'no leading, trailing or repeated whitespace',
  uri: 'no whitespace',
  url: 'no whitespace',
  canonical: 'no whitespace',
  oid: 'urn:oid:1.2.3…',
  uuid: 'urn:uuid: followed by a lower-case UUID',
  base64Binary: 'base64',
};

const INT_MIN = -2147483648;
const INT_MAX = 2147483647;
const CONTROL = /[\u0000-\u0008\u000B\u000C\u000E-\u001F]/;
const NON_WHITESPACE = /\S/;

let loaded: Map<string, PrimitiveType> | undefined;

/** The primitive types by name (boolean, string, date, …, xhtml). */
export function primitiveTypes(): Map<string, PrimitiveType> {
  loaded ??= load();
  return loaded;
}

interface RawElement {
  path: string;
  type?: { code: string; extension?: { url: string; valueString?: string }[] }[];
}
interface RawStructureDefinition {
  resourceType: string;
  name: string;
  kind?: string;
  snapshot?: { element: RawElement[] };
}

function load(): Map<string, PrimitiveType> {
  const bundle = officialDefinitions('fhir/r4/profiles-types.json') as { entry: { resource: RawStructureDefinition }[] };
  const out = new Map<string, PrimitiveType>();
  for (const { resource: sd } of bundle.entry) {
    if (sd.resourceType !== 'StructureDefinition' || sd.kind !== 'primitive-type') continue;
    const value = sd.snapshot?.element.find((e) => e.path === `${sd.name}.value`);
    const official = value?.type?.[0]?.extension?.find((x) => x.url === REGEX_EXTENSION)?.valueString;
    out.set(sd.name, primitive(sd.name, official));
  }
  return out;
}

function primitive(name: string, official: string | undefined): PrimitiveType {
  switch (name) {
    case 'boolean':
      return { name, json: 'boolean', problem: () => undefined };
    case 'decimal':
      return { name, json: 'number', problem: (v) => (Number.isFinite(v) ? undefined : `${String(v)} is not a valid decimal`) };
    case 'integer':
    case 'unsignedInt':
    case 'positiveInt': {
      const min = name === 'integer' ? INT_MIN : name === 'unsignedInt' ? 0 : 1;
      const range = `${min.toLocaleString('en')} to ${INT_MAX.toLocaleString('en')}`;
      return {
        name,
        json: 'number',
        problem: (v) => {
          const n = v as number;
          if (!Number.isInteger(n)) return `${n} is not a valid ${name} (a whole number is required)`;
          if (n < min || n > INT_MAX) return `${n} is out of range for ${name} (${range})`;
          return undefined;
        },
      };
    }
    case 'string':
    case 'markdown':
    case 'xhtml':
      return { name, json: 'string', problem: (v) => textProblem(v as string, name) };
    case 'base64Binary':
      return { name, json: 'string', problem: (v) => (isBase64(v as string) ? undefined : invalid(v as string, name)) };
    default: {
      if (!official) return { name, json: 'string', problem: (v) => textProblem(v as string, name) };
      const regex = translateXsdRegex(official);
      if (name === 'date' || name === 'dateTime' || name === 'instant') {
        return {
          name,
          json: 'string',
          problem: (v) => (!regex.test(v as string) ? invalid(v as string, name) : dayProblem(v as string, name)),
        };
      }
      return { name, json: 'string', problem: (v) => (regex.test(v as string) ? undefined : invalid(v as string, name)) };
    }
  }
}

/**
 * The official regexes allow any day from 01 to 31 in any month; the value must still be a real calendar date
 * (2021-02-29 and 2020-04-31 are not). Called on values the regex accepted: YYYY-MM-DD… when long enough.
 */
function dayProblem(value: string, type: string): string | undefined {
  if (value.length < 10) return undefined;
  const year = Number(value.slice(0, 4));
  const month = Number(value.slice(5, 7));
  const day = Number(value.slice(8, 10));
  if (day <= 28) return undefined;
  const days = month === 2 ? (year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0) ? 29 : 28) : month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31;
  return day <= days ? undefined : `${describe(value)} is not a valid ${type} (${value.slice(0, 7)} has ${days} days)`;
}

function textProblem(value: string, type: string): string | undefined {
  if (value.length > MAX_STRING) return `the value is ${value.length} characters long; a FHIR ${type} may be at most 1 MB`;
  if (!NON_WHITESPACE.test(value)) return `${describe(value)} has no content other than whitespace; omit the element instead`;
  if (CONTROL.test(value)) return `${describe(value)} contains control characters (only tab, CR and LF are allowed)`;
  return undefined;
}

function invalid(value: string, type: string): string {
  const hint = FORMAT_HINTS[type];
  return `${describe(value)} is not a valid ${type}${hint ? ` (expected ${hint})` : ''}`;
}

const isXsdSpace = (c: number) => c === 32 || c === 9 || c === 10 || c === 13;

/** The official base64Binary regex, (\s*([0-9a-zA-Z\+/=]){4}\s*)+, as a loop: groups of 4, whitespace only between groups. */
export function isBase64(value: string): boolean {
  let inGroup = 0;
  let groups = 0;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (isXsdSpace(c)) {
      if (inGroup !== 0) return false;
      continue;
    }
    const ok = (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || (c >= 48 && c <= 57) || c === 43 || c === 47 || c === 61;
    if (!ok) return false;
    if (++inGroup === 4) {
      inGroup = 0;
      groups++;
    }
  }
  return inGroup === 0 && groups > 0;
}

/**
 * An XML Schema regex (as in the FHIR definitions) as an anchored JavaScript regex: XSD's `\s` is [ \t\n\r] and
 * `\S` its complement. Handles what the R4 regexes use; throws on anything it cannot translate faithfully.
 */
export function translateXsdRegex(xsd: string): RegExp {
  const SPACE = ' \\t\\n\\r';
  let out = '';
  let inClass = false;
  let negated = false;
  let classBody = '';
  for (let i = 0; i < xsd.length; i++) {
    const ch = xsd[i];
    if (ch === '\\') {
      const next = xsd[++i];
      if (next === undefined) throw new Error(`Unterminated escape in ${xsd}`);
      if (inClass) {
        if (next === 's') classBody += SPACE;
        else if (next === 'S') throw new Error(`\\S inside a character class is not supported: ${xsd}`);
        else classBody += `\\${next}`;
      } else if (next === 's') out += `[${SPACE}]`;
      else if (next === 'S') out += `[^${SPACE}]`;
      else out += `\\${next}`;
      continue;
    }
    if (inClass) {
      if (ch === ']') {
        out += `[${negated ? '^' : ''}${classBody}]`;
        inClass = false;
      } else classBody += ch;
      continue;
    }
    if (ch === '[') {
      inClass = true;
      negated = xsd[i + 1] === '^';
      if (negated) i++;
      classBody = '';
      continue;
    }
    out += ch;
  }
  if (inClass) throw new Error(`Unterminated character class in ${xsd}`);
  return new RegExp(`^(?:${out})$`);
}
