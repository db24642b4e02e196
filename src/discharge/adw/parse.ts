// Reads an ADW message (a FHIR DSTU2 message Bundle in XML) into a plain, typed shape. Only what the
// discharge model uses is read; entries are linked by reference as FHIR's Bundle rules say. Anything
// that makes the message unusable is an AdwError naming the element, so the sender can be told.
import { SaxesParser } from 'saxes';
import { ODS_ENDPOINT_PREFIX, ADMISSION_TYPE_SYSTEM, ENCOUNTER_ID_SYSTEM, LOCAL_PATIENT_ID_SYSTEM, CARECONNECT_VERIFICATION_URL, VERIFICATION_STATUSES } from './codes.ts';
import { NHS_NUMBER_SYSTEM, NHS_NUMBER_VERIFICATION_EXTENSION } from '../../record/index.ts';

/** A message that cannot be processed, with a sentence for the sender and the dead-letter queue. */
export class AdwError extends Error {}

export interface AdwCoding { system?: string; code?: string; display?: string }
export interface AdwPerson { name?: string; role?: string; phone?: string; email?: string; organisationOds?: string }
export interface AdwOrganisation { ods?: string; name?: string }
export interface AdwAddress { lines: string[]; city?: string; district?: string; postalCode?: string }
export interface AdwPatient {
  nhsNumber?: string;
  /** How far the sender traced the NHS number (VERIFICATION_STATUSES' codes), when it said so. */
  nhsNumberVerification?: string;
  localId?: string;
  family?: string;
  given: string[];
  gender?: string;
  birthDate?: string;
  address?: AdwAddress;
  phone?: string;
  email?: string;
  contacts: { relationship: string[]; name?: string; phone?: string; email?: string }[];
}
export interface AdwEncounter { identifier?: string; status?: string; start?: string; end?: string; admissionType?: AdwCoding; ward?: string }
export interface AdwAnswer { text: string; coding?: AdwCoding; value?: string }

export interface AdwMessage {
  bundleId?: string;
  headerId: string;
  eventCode: string;
  timestamp?: string;
  sourceOds?: string;
  destinationOds?: string;
  response?: { identifier?: string; code?: string };
  reason?: AdwCoding & { text?: string };
  referral?: { identifier?: string; status?: string; reason?: string; description?: string };
  patient?: AdwPatient;
  encounter?: AdwEncounter;
  hospital?: AdwOrganisation;
  council?: AdwOrganisation;
  author?: AdwPerson;
  responsible?: AdwPerson;
  /** Who at the hospital made the referral (ReferralRequest.requester), in notices and responses alike. */
  referrer?: AdwPerson;
  answers: AdwAnswer[];
}

/**
 * An element: its unqualified attributes, and its FHIR child elements by local name in document order. One
 * shape for every element, with names as Map keys: an object per element with the document's names as its
 * properties took V8 through hundreds of object shapes, and reading a notice cost four times saxes's parse.
 */
class XmlNode {
  attributes: Map<string, string> | undefined = undefined;
  children: Map<string, XmlNode[]> | undefined = undefined;
}

const FHIR_NAMESPACE = 'http://hl7.org/fhir';
/** The deepest nesting read: the official discharge notice, a document Bundle within a message Bundle, nests 12 deep. */
const MAX_DEPTH = 200;

/**
 * The message as a tree of elements: each FHIR element's unqualified attributes as strings, its child
 * elements as arrays under their local names, text ignored (FHIR XML carries every value in a `value`
 * attribute; narrative is never read). Elements are known by namespace, not by how they are written: a
 * sender may write `<fhir:Bundle xmlns:fhir="http://hl7.org/fhir">`, and an element in another namespace
 * (the XHTML narrative, a vendor's own) is no FHIR element, whatever its name, so neither it nor anything
 * inside it is read. One pass of a conformant, non-validating parser (saxes) that refuses what is not
 * well-formed: about five times faster than checking and then parsing, on the hot path of every notice.
 */
function elementTree(xml: string): XmlNode {
  const root = new XmlNode();
  const open: XmlNode[] = [root];
  const parser = new SaxesParser({ xmlns: true });
  let failure: { message: string; line: number; column: number } | undefined;
  parser.on('error', (err) => {
    // Where it broke, now: closing the parser resets its position.
    failure ??= { message: err.message.replace(/^(?:[^:]*:)?\d+:\d+: /, ''), line: parser.line, column: parser.column };
  });
  parser.on('opentagstart', () => {
    // Resolving an element's namespace walks the elements it is in, so unbounded nesting would cost the square
    // of the message's size (100,000 nested elements took minutes); no FHIR message nests anywhere near this.
    if (open.length > MAX_DEPTH) throw new AdwError(`The message nests elements more than ${MAX_DEPTH} deep (line ${parser.line}); no ADW message does, so it was not read.`);
  });
  parser.on('opentag', (tag) => {
    const node = new XmlNode();
    for (const name in tag.attributes) {
      const attribute = tag.attributes[name];
      // FHIR's attributes (value, url, id) are unqualified. FHIR primitives have no leading or trailing
      // whitespace, but engines pad them (value=" 9449305552 ", a line break inside the quotes); read as
      // sent, a padded episode id would be another episode's.
      if (attribute.uri === '') (node.attributes ??= new Map()).set(attribute.local, attribute.value.trim());
    }
    if (tag.uri === FHIR_NAMESPACE) {
      const parent = open[open.length - 1];
      const siblings = (parent.children ??= new Map()).get(tag.local);
      if (siblings) siblings.push(node);
      else parent.children.set(tag.local, [node]);
    }
    if (!tag.isSelfClosing) open.push(node);
  });
  parser.on('closetag', (tag) => {
    if (!tag.isSelfClosing) open.pop();
  });
  parser.write(xml).close();
  if (failure) throw new AdwError(notWellFormed(xml, failure));
  return root;
}

/** The XML's own entities; any other needs a DTD, which ADW messages never have. */
const XML_ENTITIES = new Set(['amp', 'lt', 'gt', 'quot', 'apos']);

/**
 * Why the message is not well-formed, for the sender. An HTML entity in the narrative (&nbsp;, &eacute;) is
 * the usual cause from systems that build the XHTML as HTML, so it is named plainly, with what to write.
 */
function notWellFormed(xml: string, failure: { message: string; line: number; column: number }): string {
  const where = `(line ${failure.line}, column ${failure.column})`;
  if (/undefined entity/i.test(failure.message)) {
    const line = xml.split(/\r\n?|\n/)[failure.line - 1] ?? '';
    const entity = [...line.slice(0, failure.column + 1).matchAll(/&([A-Za-z_][\w.-]*);/g)].map((e) => e[1]).filter((name) => !XML_ENTITIES.has(name)).pop();
    if (entity) {
      return `The message is not well-formed XML: it uses the entity &${entity}; ${where}, which XML without a DTD does not define (only &amp; &lt; &gt; &quot; &apos; are). `
        + `HTML's named entities cannot be used in FHIR XML, narrative included; write the character itself or a character reference${entity === 'nbsp' ? ' (&#160; for a non-breaking space)' : ''}.`;
    }
  }
  return `The message is not well-formed XML: ${failure.message} ${where}.`;
}

/**
 * The largest ADW message read. The official discharge notice is 123 KB, but it carries the discharge
 * summary as a PDF, and a long stay's summary with scans runs to megabytes: 20 MB is what MESH took in one
 * request before chunking (its older limit), and is read in well under a second on the reader thread.
 */
export const MAX_ADW_BYTES = 20 * 1024 * 1024;

/** The encodings an XML declaration may name that are read, by their WHATWG labels (as TextDecoder knows them). */
const DECLARED_ENCODINGS: Record<string, string> = {
  'utf-8': 'utf-8', utf8: 'utf-8', 'us-ascii': 'utf-8', ascii: 'utf-8',
  'iso-8859-1': 'windows-1252', latin1: 'windows-1252', 'iso_8859-1': 'windows-1252', 'windows-1252': 'windows-1252', cp1252: 'windows-1252',
  'iso-8859-15': 'iso-8859-15',
  // A declaration readable byte by byte is not UTF-16, whatever it says: .NET writes encoding="utf-16" into
  // any XML built as a string, and the interface engine then sends that string as UTF-8.
  'utf-16': 'utf-8', 'utf-16le': 'utf-8', 'utf-16be': 'utf-8',
};

/**
 * The message's text, decoded as XML says a reader must: by its byte order mark, else by the encoding its
 * XML declaration names, else as UTF-8. Trusts' interface engines write UTF-16 with a BOM, or Latin-1 with
 * a declaration saying so; read as UTF-8 regardless, the first was refused and the second garbled every
 * accented name. Bytes that are not valid in the encoding make the message not well-formed.
 */
export function decodeAdwMessage(bytes: Uint8Array): string {
  if (bytes.byteLength > MAX_ADW_BYTES) throw new AdwError(`The message is larger than ${MAX_ADW_BYTES / 1024 / 1024} MB.`);
  const encoding = encodingOf(bytes);
  try {
    return new TextDecoder(encoding, { fatal: true }).decode(bytes);
  } catch {
    throw new AdwError(`The message is not well-formed XML: its bytes are not valid ${encoding.toUpperCase()}${encoding === 'utf-8' ? ' (an XML message in another encoding must name it in its XML declaration, e.g. <?xml version="1.0" encoding="ISO-8859-1"?>)' : ''}.`);
  }
}

function encodingOf(bytes: Uint8Array): string {
  const [a, b, c] = bytes;
  if (a === 0xef && b === 0xbb && c === 0xbf) return 'utf-8';
  if (a === 0xff && b === 0xfe) return 'utf-16le';
  if (a === 0xfe && b === 0xff) return 'utf-16be';
  // UTF-16 without a BOM, recognised by its first character '<' as XML's appendix F does.
  if (a === 0x3c && b === 0x00) return 'utf-16le';
  if (a === 0x00 && b === 0x3c) return 'utf-16be';
  const declaration = /^<\?xml\s[^>]*?encoding\s*=\s*["']([A-Za-z0-9._-]+)["']/.exec(Buffer.from(bytes.buffer, bytes.byteOffset, Math.min(bytes.byteLength, 200)).toString('latin1'));
  if (!declaration) return 'utf-8';
  const known = DECLARED_ENCODINGS[declaration[1].toLowerCase()];
  if (!known) throw new AdwError(`The message declares encoding ${declaration[1]}, which is not read here; send it as UTF-8.`);
  return known;
}

const NONE: readonly XmlNode[] = [];

function kids(node: XmlNode | undefined, name: string): readonly XmlNode[] {
  return node?.children?.get(name) ?? NONE;
}

function one(node: XmlNode | undefined, ...path: string[]): XmlNode | undefined {
  let at = node;
  for (const name of path) at = kids(at, name)[0];
  return at;
}

function val(node: XmlNode | undefined, ...path: string[]): string | undefined {
  return one(node, ...path)?.attributes?.get('value');
}

function attribute(node: XmlNode | undefined, name: string): string | undefined {
  return node?.attributes?.get(name);
}

function coding(node: XmlNode | undefined): AdwCoding | undefined {
  const c = one(node, 'coding');
  return c ? { system: val(c, 'system'), code: val(c, 'code'), display: val(c, 'display') } : undefined;
}

function telecom(node: XmlNode, system: string): string | undefined {
  return val(kids(node, 'telecom').find((t) => val(t, 'system') === system), 'value');
}

/** A HumanName as one line: its parts, else its text (a name a system holds only whole is sent as text). */
function humanName(node: XmlNode | undefined): string | undefined {
  if (!node) return undefined;
  const parts = [...kids(node, 'prefix'), ...kids(node, 'given'), ...kids(node, 'family')].map((n) => attribute(n, 'value')).filter(Boolean);
  return parts.length ? parts.join(' ') : val(node, 'text');
}

function odsFromEndpoint(endpoint: string | undefined): string | undefined {
  if (!endpoint) return undefined;
  return endpoint.startsWith(ODS_ENDPOINT_PREFIX) ? odsCode(endpoint.slice(ODS_ENDPOINT_PREFIX.length)) : undefined;
}

/** ODS codes are upper case; senders' systems write some in lower case (rfm8c2 is RFM8C2). */
function odsCode(code: string | undefined): string | undefined {
  return code?.toUpperCase();
}

interface BundleResource { type: string; node: XmlNode; fullUrl?: string; id?: string; contained: Map<string, BundleResource> }

/** The resource an element holds (its one child element, named for its type), if any. */
function heldResource(holder: XmlNode | undefined): { type: string; node: XmlNode } | undefined {
  const first = holder?.children?.entries().next();
  return first && !first.done ? { type: first.value[0], node: first.value[1][0] } : undefined;
}

/** A RESTful reference's parts: [base (may be empty), type, id], any /_history/ version dropped. */
const RESTFUL_REFERENCE = /^(?:(.*)\/)?([A-Z][A-Za-z]+)\/([A-Za-z0-9.-]{1,64})(?:\/_history\/[A-Za-z0-9.-]{1,64})?$/;

/**
 * The Bundle's resources, and how a reference finds one, as FHIR's Bundle rules say: by fullUrl (the ADW
 * examples' urn:uuid); a relative reference (Patient/123) against the referring entry's RESTful base, or to
 * the one entry of that type and id; `#id` to a resource contained in the referring one (or beside it in its
 * container). Senders' systems write all three; read only by urn:uuid, their ward, hospital, council and
 * author were lost, and a person was taken from the first Patient entry, whichever person that was.
 */
function bundleResources(bundle: XmlNode) {
  const byFullUrl = new Map<string, BundleResource>();
  const byTypeAndId = new Map<string, BundleResource[]>();
  const owners = new Map<XmlNode, { resource: BundleResource; host: BundleResource }>();
  for (const entry of kids(bundle, 'entry')) {
    const held = heldResource(one(entry, 'resource'));
    if (!held) continue;
    const id = val(held.node, 'id');
    const resource: BundleResource = { ...held, fullUrl: val(entry, 'fullUrl'), id, contained: new Map() };
    for (const holder of kids(held.node, 'contained')) {
      const inner = heldResource(holder);
      if (!inner) continue;
      const containedResource = { ...inner, id: val(inner.node, 'id'), contained: new Map() };
      if (containedResource.id && !resource.contained.has(containedResource.id)) resource.contained.set(containedResource.id, containedResource);
      owners.set(inner.node, { resource: containedResource, host: resource });
    }
    owners.set(held.node, { resource, host: resource });
    byFullUrl.set(resource.fullUrl ?? `urn:uuid:${id ?? byFullUrl.size}`, resource);
    if (id) {
      const key = `${held.type}/${id}`;
      const same = byTypeAndId.get(key);
      if (same) same.push(resource);
      else byTypeAndId.set(key, [resource]);
    }
  }
  const entries = [...byFullUrl.values()];
  const ofType = (type: string) => entries.filter((e) => e.type === type).map((e) => e.node);
  const find = (from: XmlNode | undefined, reference: string): BundleResource | undefined => {
    const owner = from ? owners.get(from) : undefined;
    if (reference.startsWith('#')) return owner?.host.contained.get(reference.slice(1));
    const exact = byFullUrl.get(reference);
    if (exact) return exact;
    const restful = RESTFUL_REFERENCE.exec(reference);
    if (!restful) return undefined;
    const [, base, type, id] = restful;
    const versionless = `${base ? `${base}/` : ''}${type}/${id}`;
    if (base) return byFullUrl.get(versionless);
    const referrerBase = RESTFUL_REFERENCE.exec(owner?.host.fullUrl ?? '')?.[1];
    const atBase = referrerBase && /^https?:/.test(referrerBase) ? byFullUrl.get(`${referrerBase}/${versionless}`) : undefined;
    if (atBase) return atBase;
    const candidates = byTypeAndId.get(versionless) ?? [];
    return candidates.length === 1 ? candidates[0] : undefined;
  };
  return {
    ofType,
    /** The Bundle's one entry of a type: with two (two people, say), nothing unreferenced is guessed at. */
    onlyOne: (type: string): XmlNode | undefined => {
      const all = ofType(type);
      return all.length === 1 ? all[0] : undefined;
    },
    /** The resource `referring` (an element of resource `from`) refers to, when it is in the Bundle and of `type`. */
    resolve: (from: XmlNode | undefined, referring: XmlNode | undefined, type: string): XmlNode | undefined => {
      const reference = val(referring, 'reference');
      const found = reference ? find(from, reference) : undefined;
      return found?.type === type ? found.node : undefined;
    },
  };
}

/** Parses the XML text of an ADW message; throws AdwError for anything unreadable. */
export function parseAdwMessage(xml: string): AdwMessage {
  if (Buffer.byteLength(xml) > MAX_ADW_BYTES) throw new AdwError(`The message is larger than ${MAX_ADW_BYTES / 1024 / 1024} MB.`);
  // ADW messages never declare a DTD; refusing one shuts out entity-expansion attacks.
  if (/<!DOCTYPE/i.test(xml)) throw new AdwError('The message declares a DOCTYPE, which ADW messages never do; it was not read.');
  const doc = elementTree(xml);
  const bundle = one(doc, 'Bundle');
  if (!bundle) throw new AdwError('The message is not a FHIR Bundle (its root element must be <Bundle xmlns="http://hl7.org/fhir">).');
  if (val(bundle, 'type') !== 'message') throw new AdwError(`Bundle.type must be 'message', not '${val(bundle, 'type') ?? '(missing)'}'.`);
  const { ofType, onlyOne, resolve } = bundleResources(bundle);
  const header = ofType('MessageHeader')[0];
  if (!header) throw new AdwError('The Bundle has no MessageHeader entry.');
  const headerId = val(header, 'id');
  if (!headerId) throw new AdwError('MessageHeader.id is missing.');
  const eventCode = val(header, 'event', 'code');
  if (!eventCode) throw new AdwError('MessageHeader.event.code is missing.');

  const referralNode = kids(header, 'data').map((d) => resolve(header, d, 'ReferralRequest')).find(Boolean) ?? onlyOne('ReferralRequest');
  const encounterNode = resolve(referralNode, one(referralNode, 'encounter'), 'Encounter') ?? kids(header, 'data').map((d) => resolve(header, d, 'Encounter')).find(Boolean) ?? onlyOne('Encounter');
  const patientNode = resolve(referralNode, one(referralNode, 'patient'), 'Patient') ?? resolve(encounterNode, one(encounterNode, 'patient'), 'Patient') ?? onlyOne('Patient');
  // A site without its own ODS code is read as its nearest ancestor's (partOf). The chain is the sender's to
  // write: one that comes back to an Organization already seen gives no code (as a site without a parent
  // does) rather than being followed for ever, and it is walked, not recursed, so no length of chain
  // overflows the stack.
  const parentOf = (node: XmlNode) => resolve(node, one(node, 'partOf'), 'Organization');
  const odsOf = (node: XmlNode) => odsCode(val(kids(node, 'identifier')[0], 'value'));
  const organisation = (site: XmlNode | undefined): AdwOrganisation | undefined => {
    if (!site) return undefined;
    const seen = new Set([site]);
    let at = site;
    let ods = odsOf(site);
    for (let parent = parentOf(at); !ods && parent && !seen.has(parent); parent = parentOf(at)) {
      seen.add(parent);
      at = parent;
      ods = odsOf(at);
    }
    const firstParent = at === site ? undefined : parentOf(site);
    return { ods, name: val(site, 'name') ?? (firstParent && val(firstParent, 'name')) };
  };
  const person = (node: XmlNode | undefined): AdwPerson | undefined => {
    if (!node) return undefined;
    const role = one(node, 'practitionerRole');
    const org = organisation(resolve(node, one(role, 'managingOrganization'), 'Organization'));
    return {
      name: humanName(one(node, 'name')) ?? val(node, 'name'),
      role: val(role, 'role', 'text') ?? coding(one(role, 'role'))?.display,
      phone: telecom(node, 'phone'),
      email: telecom(node, 'email'),
      organisationOds: org?.ods,
    };
  };

  const reasonNode = one(header, 'reason');
  const response = one(header, 'response');
  const wardNode = resolve(encounterNode, one(encounterNode, 'location', 'location'), 'Location');
  const qr = ofType('QuestionnaireResponse')[0];
  const answers: AdwAnswer[] = kids(one(qr, 'group'), 'question').map((q) => {
    const a = one(q, 'answer');
    const c = one(a, 'valueCoding');
    return { text: val(q, 'text') ?? '', ...(c ? { coding: { system: val(c, 'system'), code: val(c, 'code'), display: val(c, 'display') } } : {}), ...(val(a, 'valueString') ? { value: val(a, 'valueString') } : {}) };
  });

  return {
    bundleId: val(bundle, 'id'),
    headerId,
    eventCode,
    timestamp: val(header, 'timestamp'),
    sourceOds: odsFromEndpoint(val(header, 'source', 'endpoint')),
    destinationOds: odsFromEndpoint(val(header, 'destination', 'endpoint')),
    ...(response ? { response: { identifier: val(response, 'identifier'), code: val(response, 'code') } } : {}),
    ...(reasonNode ? { reason: { ...coding(reasonNode), text: val(reasonNode, 'text') } } : {}),
    ...(referralNode ? {
      referral: {
        identifier: val(referralNode, 'identifier', 'value'),
        status: val(referralNode, 'status'),
        reason: val(referralNode, 'reason', 'text') ?? coding(one(referralNode, 'reason'))?.display,
        description: val(referralNode, 'description'),
      },
    } : {}),
    ...(patientNode ? { patient: readPatient(patientNode) } : {}),
    ...(encounterNode ? {
      encounter: {
        identifier: val(kids(encounterNode, 'identifier').find((i) => val(i, 'system') === ENCOUNTER_ID_SYSTEM), 'value') ?? val(encounterNode, 'identifier', 'value'),
        status: val(encounterNode, 'status'),
        start: val(encounterNode, 'period', 'start'),
        end: val(encounterNode, 'period', 'end'),
        admissionType: (() => { const c = coding(one(encounterNode, 'priority')); return c?.system === ADMISSION_TYPE_SYSTEM ? c : undefined; })(),
        ward: val(wardNode, 'name'),
      },
    } : {}),
    hospital: organisation(resolve(encounterNode, one(encounterNode, 'serviceProvider'), 'Organization')),
    council: organisation(resolve(referralNode, one(referralNode, 'recipient'), 'Organization') ?? resolve(header, one(header, 'receiver'), 'Organization')),
    author: person(resolve(header, one(header, 'author'), 'Practitioner')),
    responsible: person(resolve(header, one(header, 'responsible'), 'Practitioner')),
    referrer: person(resolve(referralNode, one(referralNode, 'requester'), 'Practitioner')),
    answers,
  };
}

/** The NHS number's verification status code, in CareConnect's extension or UK Core's; a code outside the list is not one. */
function verificationStatus(identifier: XmlNode | undefined): string | undefined {
  const extension = kids(identifier, 'extension').find((e) => [CARECONNECT_VERIFICATION_URL, NHS_NUMBER_VERIFICATION_EXTENSION].includes(attribute(e, 'url') ?? ''));
  const code = val(extension, 'valueCodeableConcept', 'coding', 'code');
  return code !== undefined && Object.hasOwn(VERIFICATION_STATUSES, code) ? code : undefined;
}

/**
 * The NHS number as its ten digits: written as it is printed (943 476 5919, 3-3-4) it is the same number.
 * Anything else is kept as sent, for the check digit test to judge.
 */
function nhsNumber(value: string | undefined): string | undefined {
  const printed = value && /^(\d{3})[ \u00a0](\d{3})[ \u00a0](\d{4})$/.exec(value);
  return printed ? printed.slice(1).join('') : value;
}

function readPatient(node: XmlNode): AdwPatient {
  const identifiers = kids(node, 'identifier');
  const byType = (system: string) => val(identifiers.find((i) => val(i, 'system') === system), 'value');
  const name = kids(node, 'name')[0];
  const address = kids(node, 'address')[0];
  const verification = verificationStatus(identifiers.find((i) => val(i, 'system') === NHS_NUMBER_SYSTEM));
  return {
    nhsNumber: nhsNumber(byType(NHS_NUMBER_SYSTEM)),
    ...(verification ? { nhsNumberVerification: verification } : {}),
    localId: byType(LOCAL_PATIENT_ID_SYSTEM),
    family: val(name, 'family'),
    given: kids(name, 'given').map((g) => attribute(g, 'value') ?? '').filter(Boolean),
    gender: val(node, 'gender'),
    birthDate: val(node, 'birthDate'),
    ...(address ? {
      address: {
        // Empty lines are kept (as ''), so the "no empty address lines" rule can see them.
        lines: kids(address, 'line').map((l) => attribute(l, 'value') ?? ''),
        city: val(address, 'city'),
        district: val(address, 'district'),
        postalCode: val(address, 'postalCode'),
      },
    } : {}),
    phone: telecom(node, 'phone'),
    email: telecom(node, 'email'),
    contacts: kids(node, 'contact').map((c) => ({
      relationship: kids(c, 'relationship').map((r) => coding(r)?.display ?? val(r, 'text') ?? '').filter(Boolean),
      name: humanName(one(c, 'name')),
      phone: telecom(c, 'phone'),
      email: telecom(c, 'email'),
    })),
  };
}
