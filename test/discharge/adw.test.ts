// ADW messages on both engines: every official example parses and maps to the episode it describes;
// responses carry the spec's linkage; duplicates and out-of-order delivery; bad input is rejected back to
// the sender and dead-lettered, with nothing half-written. Messages are handed over as the MESH inbox
// would (an InboundMessage), until messaging lands.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ENGINES, fhirClient, type TestServer } from '../support/server.ts';
import {
  ADW_EVENT, AdwRejected, assignWorker, confirmReady, createReferral, disagreeWithDischarge, fireDueTimers, handleAdwMessage, isOverdue, parseAdwMessage, recordSupportArranged, setCouncilSettings,
  triage, triageStateOf, withdrawReferral, EXPECTED_DISCHARGE_URL, type DischargeContext,
} from '../../src/discharge/index.ts';
import { addOrganisation, addUser, findOrganisation } from '../../src/access/index.ts';
import { generateSyntheticNhsNumber } from '../../src/record/index.ts';
import { addPerson, personToken } from '../support/people.ts';
import { csrfTokenIn, TEST_PASSWORD } from '../portal/portalServer.ts';
import { signIn } from './pagesSeed.ts';
import { EXAMPLES, at, dischargeServer, episodeIds, inbound, outbound, renamed, searchOne, seedOrganisations, seedPatient, withHeaderId, COUNCIL_ODS, HOSPITAL_ODS } from './support.ts';

const EPISODE = '311fcae7-32a7-4a8e-a15c-eebae3a246b9';
const ASSESSMENT_HEADER = '5bfa2a2e-923b-440d-82d6-38e24b666be6';
const DISCHARGE_HEADER = '19db5f65-1bad-4ce1-be05-92ff79ab1c8f';
const UK_CORE_VERIFICATION = { url: 'https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-NHSNumberVerificationStatus', system: 'https://fhir.hl7.org.uk/CodeSystem/UKCore-NHSNumberVerificationStatusEngland' };

/**
 * The verification status on the NHS number of a message we sent, read from its XML as a validator of
 * CareConnect-Patient-1 would find it (our own parser is not the judge): the extension, first in the
 * identifier, with CareConnect's URL, system and the code's display.
 */
function sentStatus(xml: string): string | undefined {
  const found = /<identifier>\s*<extension url="https:\/\/fhir\.hl7\.org\.uk\/StructureDefinition\/Extension-CareConnect-NHSNumberVerificationStatus-1">\s*<valueCodeableConcept>\s*<coding>\s*<system value="https:\/\/fhir\.hl7\.org\.uk\/CareConnect-NHSNumberVerificationStatus-1"\s*\/>\s*<code value="(\d\d)"\s*\/>\s*<display value="([^"]+)"\s*\/>\s*<\/coding>\s*<\/valueCodeableConcept>\s*<\/extension>\s*<system value="https:\/\/fhir\.nhs\.uk\/Id\/nhs-number"\s*\/>/.exec(xml);
  if (found) assert.equal(found[2], { '01': 'Number present and verified', '02': 'Number present but not traced', '03': 'Trace required' }[found[1]]);
  return found?.[1];
}

describe('ADW parsing of the official examples', () => {
  it('reads all ten message types', () => {
    const events = Object.fromEntries(Object.entries(EXAMPLES).map(([name, xml]) => [name, parseAdwMessage(xml).eventCode]));
    assert.deepEqual(events, {
      'Admission-Notice': ADW_EVENT.admissionNotice,
      'Assessment-Notice': ADW_EVENT.assessmentNotice,
      'Assessment-Notice-Accept-Response': ADW_EVENT.assessmentAccept,
      'Assessment-Notice-Reject-Response': ADW_EVENT.assessmentReject,
      'Discharge-Notice': ADW_EVENT.dischargeNotice,
      'Discharge-Notice-Accept-Response': ADW_EVENT.dischargeAgreement,
      'Discharge-Notice-Reject-Response': ADW_EVENT.dischargeDisagreement,
      'Withdrawal-Notice': ADW_EVENT.withdrawAll,
      'Withdrawal-Notice-Accept-Response': ADW_EVENT.withdrawalAccept,
      'Withdrawal-Notice-Reject-Response': ADW_EVENT.withdrawalReject,
    });
    for (const [name, xml] of Object.entries(EXAMPLES)) {
      const m = parseAdwMessage(xml);
      assert.equal(m.patient?.nhsNumber, '9413946000', name);
      if (name !== 'Admission-Notice') assert.equal(m.referral?.identifier, EPISODE, name);
      if (name.endsWith('Response')) assert.ok(m.response?.identifier && m.sourceOds === 'V396BB' && m.destinationOds === 'RFM8C2', name);
      else assert.ok(m.sourceOds === 'RFM8C2' && m.destinationOds === 'V396BB', name);
    }
    const assessment = parseAdwMessage(EXAMPLES['Assessment-Notice']);
    assert.equal(assessment.referral?.reason, 'Patient admitted as inpatient with chest pain.');
    assert.deepEqual(assessment.patient?.address?.lines, ['The Old Lodge', '1 Little Street', 'Chapeltown']);
    assert.equal(assessment.encounter?.end, '2017-05-12');
    assert.equal(assessment.encounter?.ward, 'Collier Ward');
    assert.equal(assessment.author?.name, 'Leticia Gulliver');
    assert.equal(assessment.answers.length, 8);
    assert.equal(parseAdwMessage(EXAMPLES['Withdrawal-Notice']).reason?.code, '07');
    assert.equal(parseAdwMessage(EXAMPLES['Discharge-Notice-Reject-Response']).response?.identifier, DISCHARGE_HEADER);
  });

  it('reads hostile shapes as plain names or refuses them with a sentence, never a crash', () => {
    // An element called __proto__ is only a name, and sets nothing on any other message's objects.
    const polluted = EXAMPLES['Assessment-Notice'].replace('<type value="message"/>', '<type value="message"/><__proto__><polluted value="yes"/></__proto__>');
    assert.equal(parseAdwMessage(polluted).eventCode, parseAdwMessage(EXAMPLES['Assessment-Notice']).eventCode);
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
    // An attribute and a child element of one name: the element is read, the attribute ignored.
    const twice = EXAMPLES['Assessment-Notice'].replace('<Bundle xmlns="http://hl7.org/fhir">', '<Bundle xmlns="http://hl7.org/fhir" entry="x">');
    assert.equal(parseAdwMessage(twice).answers.length, 8);
    // A site whose partOf comes back to itself (directly, or through another Organization) has no ODS code
    // to inherit: read as such, never followed for ever.
    const hospital = '<reference value="urn:uuid:1ebc76fd-9612-4c72-81dd-de294a0e7287"/>';
    const ownCode = '<identifier>\n\t\t\t\t\t<system value="https://fhir.nhs.uk/Id/ods-site-code"/>\n\t\t\t\t\t<value value="RFM8C2"/>\n\t\t\t\t</identifier>';
    assert.ok(EXAMPLES['Assessment-Notice'].includes(ownCode));
    const selfParent = EXAMPLES['Assessment-Notice'].replace(ownCode, `<partOf>${hospital}</partOf>`);
    assert.deepEqual(parseAdwMessage(selfParent).hospital, { ods: undefined, name: 'Hebburn Hospital' });
    const loop = selfParent
      .replace(`<partOf>${hospital}</partOf>`, '<partOf><reference value="urn:uuid:loop-parent"/></partOf>')
      .replace('</Bundle>', '<entry><fullUrl value="urn:uuid:loop-parent"/><resource><Organization><partOf>' + hospital + '</partOf><name value="Parent"/></Organization></resource></entry></Bundle>');
    assert.deepEqual(parseAdwMessage(loop).hospital, { ods: undefined, name: 'Hebburn Hospital' });
    // A chain of sites thousands long (within the size limit) is walked to the code at its end, not recursed
    // until the stack overflows: that was a RangeError out of the reader thread, not a reject to the sender.
    const sites = 20000;
    const chain = Array.from({ length: sites }, (_, i) => `<entry><fullUrl value="urn:uuid:site-${i}"/><resource><Organization><partOf><reference value="urn:uuid:site-${i + 1}"/></partOf></Organization></resource></entry>`).join('');
    const long = selfParent.replace(`<partOf>${hospital}</partOf>`, '<partOf><reference value="urn:uuid:site-0"/></partOf>')
      .replace('</Bundle>', `${chain}<entry><fullUrl value="urn:uuid:site-${sites}"/><resource><Organization><identifier><value value="RFM"/></identifier></Organization></resource></entry></Bundle>`);
    assert.deepEqual(parseAdwMessage(long).hospital, { ods: 'RFM', name: 'Hebburn Hospital' });
    // Tens of thousands of entries of one type and id, or of contained resources each partOf the next: read in
    // time linear in the message, so the reject or the processing comes back promptly.
    const started = performance.now();
    const sameId = EXAMPLES['Assessment-Notice'].replace('</Bundle>', `${'<entry><resource><Basic><id value="x"/></Basic></resource></entry>'.repeat(50000)}</Bundle>`);
    assert.equal(parseAdwMessage(sameId).answers.length, 8);
    const nested = Array.from({ length: 20000 }, (_, i) => `<contained><Organization><id value="c${i}"/><partOf><reference value="#c${i + 1}"/></partOf></Organization></contained>`).join('');
    const containedChain = EXAMPLES['Assessment-Notice'].replace('<status value="requested"/>', `${nested}<status value="requested"/>`)
      .replace(/(<recipient>\s*)<reference value="urn:uuid:dab4b872-e000-42ec-bd4e-0d804fc3b92e"\/>/, '$1<reference value="#c0"/>');
    assert.equal(parseAdwMessage(containedChain).council?.ods, undefined);
    // Elements nested thousands deep (each resolving its namespace through all it is in) are refused at once.
    const deep = EXAMPLES['Assessment-Notice'].replace('</Bundle>', `${'<a>'.repeat(20000)}${'</a>'.repeat(20000)}</Bundle>`);
    assert.throws(() => parseAdwMessage(deep), /The message nests elements more than 200 deep \(line \d+\); no ADW message does/);
    assert.ok(performance.now() - started < 10_000, `read in ${Math.round(performance.now() - started)} ms`);
    // Unclosed, mismatched, two roots, a duplicate attribute: each named with where it went wrong.
    for (const bad of ['<Bundle><type value="message"></Bundle>', '<Bundle/><Bundle/>', '<Bundle a="1" a="2"/>', '<Bundle><entry>']) {
      assert.throws(() => parseAdwMessage(bad), (e: Error) => /^The message is not well-formed XML: .+ \(line \d+, column \d+\)\.$/.test(e.message), bad);
    }
  });

  it('knows FHIR elements by namespace, however the sender writes it, and reads nothing in another namespace', () => {
    const example = EXAMPLES['Assessment-Notice'];
    const expected = parseAdwMessage(example);
    // Every FHIR element under a prefix, as some interface engines write it.
    const prefixed = example.replace(/<(\/?)([A-Za-z])/g, '<$1fhir:$2').replace('<fhir:Bundle xmlns="http://hl7.org/fhir">', '<fhir:Bundle xmlns:fhir="http://hl7.org/fhir">');
    assert.deepEqual(parseAdwMessage(prefixed), expected);
    // The default namespace declared again on each resource, and comments and processing instructions between elements.
    const redeclared = example.replace(/<resource>/g, '<resource xmlns="http://hl7.org/fhir"><!-- generated --><?engine step="2"?>').replace(/\n/g, '\r\n');
    assert.deepEqual(parseAdwMessage(redeclared), expected);
    // Narrative in XHTML, whatever its markup (even an element called identifier), and a vendor's element of a
    // FHIR name in its own namespace, before the real one: neither is the episode id.
    const foreign = example.replace('<status value="requested"/>', '<text><status value="generated"/><div xmlns="http://www.w3.org/1999/xhtml"><p>Referral for <b>Barry</b></p><identifier><value value="narrative-id"/></identifier></div></text>'
      + '<identifier xmlns="urn:vendor:pas"><value value="vendor-id"/></identifier><status value="requested"/>');
    assert.equal(parseAdwMessage(foreign).referral?.identifier, EPISODE);
    assert.deepEqual(parseAdwMessage(foreign), expected);
    // Not in FHIR's namespace at all: not a FHIR Bundle.
    assert.throws(() => parseAdwMessage(example.replace('<Bundle xmlns="http://hl7.org/fhir">', '<Bundle>')), /not a FHIR Bundle/);
  });

  it('follows references as FHIR\'s Bundle rules do (urn:uuid, relative to the entry\'s base, to the entry of that type and id, #contained), whatever the entries\' order, and ignores what it does not use', () => {
    const example = EXAMPLES['Assessment-Notice'];
    const expected = parseAdwMessage(example);
    const types = new Map([...example.matchAll(/<fullUrl value="urn:uuid:([^"]+)"\/>\s*<resource>\s*<(\w+)>/g)].map((m) => [m[1], m[2]]));
    let restful = example;
    let relative = example;
    for (const [id, type] of types) {
      restful = restful.split(`<fullUrl value="urn:uuid:${id}"/>`).join(`<fullUrl value="https://pas.trust.example/fhir/${type}/${id}"/>`).split(`<reference value="urn:uuid:${id}"/>`).join(`<reference value="${type}/${id}"/>`);
      relative = relative.split(`<fullUrl value="urn:uuid:${id}"/>`).join('').split(`<reference value="urn:uuid:${id}"/>`).join(`<reference value="${type}/${id}/_history/1"/>`);
    }
    assert.deepEqual(parseAdwMessage(restful), expected);
    // Entries in reverse (the MessageHeader still first), another person's Patient entry the message does not
    // refer to ahead of this one, unknown extensions, and id attributes on elements.
    const [head, ...entries] = relative.slice(relative.indexOf('<entry>'), relative.lastIndexOf('</entry>') + '</entry>'.length).split(/(?=<entry>)/);
    const stranger = `<entry><resource><Patient><id value="stranger"/><identifier><system value="https://fhir.nhs.uk/Id/nhs-number"/><value value="${generateSyntheticNhsNumber()}"/></identifier></Patient></resource></entry>`;
    const reordered = relative.slice(0, relative.indexOf('<entry>')) + head + stranger + entries.reverse().join('') + relative.slice(relative.lastIndexOf('</entry>') + '</entry>'.length);
    const decorated = reordered.replace('<status value="requested"/>', '<status value="requested"/><extension url="https://trust.example/ward-bed"><valueString value="B12"/></extension><modifierExtension url="https://trust.example/flag"><valueBoolean value="false"/></modifierExtension>')
      .replace(/<identifier>/g, '<identifier id="ident">').replace(/<name>/g, '<name id="n1">');
    assert.deepEqual(parseAdwMessage(decorated), expected);
    // The ward as a resource contained in the stay, referred to as #ward.
    const ward = /<entry>\s*<fullUrl value="urn:uuid:ce114cdd-cfeb-4533-b3c4-3c0dd450b25c"\/>[\s\S]*?<\/entry>/;
    assert.match(example, ward);
    const contained = example.replace(ward, '').replace('<reference value="urn:uuid:ce114cdd-cfeb-4533-b3c4-3c0dd450b25c"/>', '<reference value="#ward"/>')
      .replace('<id value="fd60ffd5-3e41-4b68-aa62-37f5407d8c03"/>', '<id value="fd60ffd5-3e41-4b68-aa62-37f5407d8c03"/><contained><Location><id value="ward"/><name value="Collier Ward"/></Location></contained>');
    assert.equal(parseAdwMessage(contained).encounter?.ward, 'Collier Ward');
    assert.deepEqual(parseAdwMessage(contained), expected);
  });

  it('takes no person the message does not point to: with the referral\'s Patient missing, one of two other Patients is not guessed at', () => {
    const patient = /<reference value="urn:uuid:bc3027a7-924c-44b5-8f1b-bfd5266c6905"\/>/g;
    const unresolved = EXAMPLES['Assessment-Notice'].replace(patient, '<reference value="urn:uuid:not-in-this-bundle"/>');
    assert.equal(parseAdwMessage(unresolved).patient?.nhsNumber, '9413946000', 'the Bundle\'s only Patient');
    const stranger = `<entry><fullUrl value="urn:uuid:stranger"/><resource><Patient><id value="stranger"/><identifier><system value="https://fhir.nhs.uk/Id/nhs-number"/><value value="${generateSyntheticNhsNumber()}"/></identifier></Patient></resource></entry>`;
    const twoPeople = unresolved.replace(/(<type value="message"\/>\s*<entry>[\s\S]*?<\/entry>)/, `$1${stranger}`);
    assert.equal(parseAdwMessage(twoPeople).patient, undefined);
  });

  // The official discharge notice carries its discharge summary as a PDF (Binary.content). A summary of a
  // long stay, with scans, is several megabytes; a 5 MB limit refused such a notice after MESH had taken it.
  it('reads a discharge notice carrying a summary of several megabytes, and names the limit of what it reads', () => {
    const example = EXAMPLES['Discharge-Notice'];
    const pdf = /(<contentType value="application\/pdf"\/>\s*<content value=")[^"]*"/;
    assert.match(example, pdf);
    const withSummary = (megabytes: number) => example.replace(pdf, `$1${'JVBERi0xLjUNCiW1'.repeat((megabytes * 1024 * 1024) / 16)}"`);
    const expected = parseAdwMessage(example);
    const large = withSummary(12);
    assert.deepEqual(parseAdwMessage(large), expected);
    assert.throws(() => parseAdwMessage(withSummary(21)), /The message is larger than 20 MB\./);
  });

  it('says plainly that an HTML entity makes a message not well-formed, and where', () => {
    const nbsp = EXAMPLES['Assessment-Notice'].replace('<status value="requested"/>', '<text><status value="generated"/><div xmlns="http://www.w3.org/1999/xhtml"><p>Fish&amp;chips&nbsp;daily</p></div></text><status value="requested"/>');
    const line = nbsp.split('\n').findIndex((l) => l.includes('&nbsp;')) + 1;
    assert.throws(() => parseAdwMessage(nbsp), (e: Error) => {
      assert.match(e.message, new RegExp(`^The message is not well-formed XML: it uses the entity &nbsp; \\(line ${line}, column \\d+\\), which XML without a DTD does not define`));
      assert.match(e.message, /&#160;/);
      return true;
    });
  });
});

for (const engine of ENGINES) {
  describe(`ADW messages (${engine})`, () => {
    let t: TestServer;
    let ctx: DischargeContext;
    const deps = () => ({ ctx });
    before(async () => {
      t = await dischargeServer(engine);
      await seedOrganisations(t);
      ctx = at(t.server.discharge.context, '2026-05-01T10:00:00Z');
    });
    after(() => t.close());

    const episodeOf = async (identifier: string) => {
      const referral = await searchOne(t, `ServiceRequest?identifier=${identifier}`);
      const task = referral ? await searchOne(t, `Task?focus=ServiceRequest/${referral.id}&code=triage-referral`) : undefined;
      return { referral, task };
    };
    const sentFor = async (identifier: string) => (await outbound(t)).filter((r) => r.referral_identifier === identifier);

    /** The parties of a message we sent, as the hospital's ADW system reads them. */
    const partiesOf = (xml: string) => {
      const m = parseAdwMessage(xml);
      const person = (p: typeof m.author) => p && { name: p.name, phone: p.phone, email: p.email, organisation: p.organisationOds };
      return { requester: person(m.referrer), recipient: m.council?.ods, author: person(m.author) };
    };
    /** What an answer's MessageHeader.receiver is: the resource type it refers to, and whether that is the referral's requester. */
    const receiverOf = (text: string) => {
      const xml = text.replace(/>\s+</g, '><').replace(/\s*\/>/g, '/>');
      const target = /<receiver><reference value="([^"]+)"/.exec(xml)?.[1];
      const requester = /<ReferralRequest>.*?<requester><reference value="([^"]+)"/.exec(xml)?.[1];
      const type = target && new RegExp(`<fullUrl value="${target}"/><resource><([A-Za-z]+)`).exec(xml)?.[1];
      return { type, isRequester: target !== undefined && target === requester };
    };
    /** The official notice's referrer, as the council's record keeps them and every answer names them. */
    const REFERRER = { name: 'Leticia Gulliver', phone: '01911223344', email: 'leticia.gulliver@nhs.net', organisation: HOSPITAL_ODS };

    it('an admission notice records the person and the stay, and asks for nothing back', async () => {
      const ids = episodeIds();
      await handleAdwMessage(deps(), inbound(renamed(EXAMPLES['Admission-Notice'], ids)));
      const patient = await searchOne(t, 'Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|9413946000');
      assert.equal(patient.name[0].family, 'Jones');
      assert.deepEqual(patient.address[0].line, ['The Old Lodge', '1 Little Street', 'Chapeltown']);
      const stay = await searchOne(t, `Encounter?identifier=${ids['2562b8b6-c0db-424a-8c6b-0fa43b0d6c2f']}`);
      assert.equal(stay.period.start, '2017-04-24');
      assert.equal(stay.extension.find((e: any) => e.url === EXPECTED_DISCHARGE_URL).valueDateTime, '2017-05-12');
      assert.equal(stay.priority.coding[0].code, 'E');
      assert.equal(stay.location[0].location.display, 'Collier Ward');
      const note = await searchOne(t, `Communication?encounter=Encounter/${stay.id}`);
      assert.match(note.payload[0].contentString, /admitted to Hebburn Hospital/);
      assert.equal((await outbound(t)).length, 0);
    });

    it('assessment notice → episode; accept → an accept response linked to the notice; discharge notice → agreement; withdrawal → accepted', async () => {
      const ids = episodeIds();
      const episode = ids[EPISODE];
      await handleAdwMessage(deps(), inbound(renamed(EXAMPLES['Assessment-Notice'], ids)));
      let { referral, task } = await episodeOf(episode);
      assert.equal(referral.identifier[0].value, episode);
      assert.equal(referral.reasonCode[0].text, 'Patient admitted as inpatient with chest pain.');
      assert.match(referral.note[0].text, /history of minor strokes/);
      assert.equal(referral.contained[0].practitioner.display, 'Leticia Gulliver');
      assert.equal(referral.performer[0].reference, 'Organization/hebburn-council');
      assert.equal(triageStateOf(task), 'received');
      const consent = await searchOne(t, `QuestionnaireResponse?based-on=ServiceRequest/${referral.id}`);
      assert.equal(consent.item.length, 8);
      assert.equal(consent.item[3].answer[0].valueCoding.code, 'Y');

      await triage(ctx, referral.id, { action: 'accept', note: 'We will assess at home.' });
      let sent = await sentFor(episode);
      assert.equal(sent.length, 1);
      const accept = parseAdwMessage(sent[0].body);
      assert.equal(accept.eventCode, ADW_EVENT.assessmentAccept);
      assert.equal(accept.response?.identifier, ids[ASSESSMENT_HEADER], 'response.identifier = the notice\'s MessageHeader.id');
      assert.equal(accept.response?.code, 'ok');
      assert.equal(accept.referral?.identifier, episode);
      assert.equal(accept.referral?.status, 'accepted');
      assert.equal(accept.sourceOds, COUNCIL_ODS);
      assert.equal(accept.destinationOds, HOSPITAL_ODS);
      assert.equal(accept.reason?.code, 'OFT');
      assert.equal(accept.reason?.text, 'We will assess at home.');
      assert.equal(sent[0].peer_mailbox, 'HOSPITAL01', 'answers go back to the sender\'s mailbox');

      await handleAdwMessage(deps(), inbound(renamed(EXAMPLES['Discharge-Notice'], ids)));
      ({ referral } = await episodeOf(episode));
      assert.equal(referral.extension.find((e: any) => e.url === EXPECTED_DISCHARGE_URL).valueDateTime, '2017-05-06');
      await confirmReady(ctx, referral.id);
      sent = await sentFor(episode);
      const agreement = parseAdwMessage(sent.find((r) => r.event_code === ADW_EVENT.dischargeAgreement)!.body);
      assert.equal(agreement.response?.identifier, ids[DISCHARGE_HEADER]);

      const withdrawal = renamed(EXAMPLES['Withdrawal-Notice'], { ...ids, [ASSESSMENT_HEADER]: crypto.randomUUID() });
      await handleAdwMessage(deps(), inbound(withdrawal));
      ({ referral, task } = await episodeOf(episode));
      assert.equal(triageStateOf(task), 'withdrawn');
      assert.equal(referral.status, 'revoked');
      assert.match(task.statusReason.text, /^07 Patient's condition has deteriorated/);
      sent = await sentFor(episode);
      assert.equal(sent.length, 3);
      const withdrawalAccept = parseAdwMessage(sent.find((r) => r.event_code === ADW_EVENT.withdrawalAccept)!.body);
      assert.equal(withdrawalAccept.eventCode, ADW_EVENT.withdrawalAccept);
      assert.equal(withdrawalAccept.response?.identifier, parseAdwMessage(withdrawal).headerId);
    });

    it('every message sent carries the NHS number\'s verification status CareConnect-Patient-1 requires: as the sender said it, kept in the record; a number no one vouched for goes as untraced, never as verified (H-051)', async () => {
      // The status the official notice gives (01, verified) is kept on the person and comes back in the answer.
      const verifiedIds = episodeIds();
      const nhs = generateSyntheticNhsNumber();
      await handleAdwMessage(deps(), inbound(renamed(EXAMPLES['Assessment-Notice'], verifiedIds).replace('value="9413946000"', `value="${nhs}"`)));
      const person = await searchOne(t, `Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|${nhs}`);
      const kept = person.identifier.find((i: any) => i.system === 'https://fhir.nhs.uk/Id/nhs-number').extension;
      assert.deepEqual(kept.map((e: any) => [e.url, e.valueCodeableConcept.coding[0].system, e.valueCodeableConcept.coding[0].code]), [[UK_CORE_VERIFICATION.url, UK_CORE_VERIFICATION.system, '01']]);
      await triage(ctx, (await episodeOf(verifiedIds[EPISODE])).referral.id, { action: 'accept', note: 'We will assess at home.' });
      assert.equal(sentStatus((await sentFor(verifiedIds[EPISODE]))[0].body), '01');

      // A notice that says nothing of it: the person is recorded without a status, and answered as untraced.
      const silentIds = episodeIds();
      const unsaid = generateSyntheticNhsNumber();
      const silent = renamed(EXAMPLES['Assessment-Notice'], silentIds).replace('value="9413946000"', `value="${unsaid}"`).replace(/<extension url="[^"]*NHSNumberVerificationStatus-1">[\s\S]*?<\/extension>/, '');
      assert.equal(parseAdwMessage(silent).patient?.nhsNumberVerification, undefined);
      await handleAdwMessage(deps(), inbound(silent));
      const unvouched = await searchOne(t, `Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|${unsaid}`);
      assert.equal(unvouched.identifier.find((i: any) => i.system === 'https://fhir.nhs.uk/Id/nhs-number').extension, undefined);
      await triage(ctx, (await episodeOf(silentIds[EPISODE])).referral.id, { action: 'reject', reason: 'Not ours.' });
      assert.equal(sentStatus((await sentFor(silentIds[EPISODE]))[0].body), '02');

      // A status outside the list is no status; a reject straight back echoes the notice's own.
      const oddIds = episodeIds();
      const odd = renamed(EXAMPLES['Assessment-Notice'], oddIds).replace('<code value="01"/>', '<code value="99"/>').replace('ods:V396BB', 'ods:ZZ9999');
      assert.equal(parseAdwMessage(odd).patient?.nhsNumberVerification, undefined);
      await handleAdwMessage(deps(), inbound(odd)).catch(() => undefined);
      assert.equal(sentStatus((await sentFor(oddIds[EPISODE]))[0].body), '02');
      const traced = renamed(EXAMPLES['Assessment-Notice'], episodeIds()).replace('<code value="01"/>', '<code value="03"/>').replace('ods:V396BB', 'ods:ZZ9999');
      await handleAdwMessage(deps(), inbound(traced)).catch(() => undefined);
      assert.equal(sentStatus((await sentFor(parseAdwMessage(traced).referral!.identifier!))[0].body), '03');
    });

    it('a stay number or ward name holding a comma is the text it is: no other stay is updated, no other ward is used', async () => {
      const STAY = '2562b8b6-c0db-424a-8c6b-0fa43b0d6c2f';
      const first = episodeIds();
      await handleAdwMessage(deps(), inbound(renamed(EXAMPLES['Assessment-Notice'], first)));
      const stay = await searchOne(t, `Encounter?identifier=${first[STAY]}`);
      assert.equal(stay.location.at(-1).location.display, 'Collier Ward');

      // Unescaped, "<stay>,X" found the first stay and "Collier Ward,Annex" found Collier Ward.
      const second = { ...episodeIds(), [STAY]: `${first[STAY]},X` };
      await handleAdwMessage(deps(), inbound(renamed(EXAMPLES['Assessment-Notice'], second).replace('<name value="Collier Ward"/>', '<name value="Collier Ward,Annex"/>')));
      const stays = await t.fhir.get(`Encounter?identifier=${encodeURIComponent(`${first[STAY]}\\,X`)}`);
      assert.equal(stays.body.entry?.length, 1, 'a stay of its own');
      const other = stays.body.entry[0].resource;
      assert.notEqual(other.id, stay.id);
      assert.equal(other.location.at(-1).location.display, 'Collier Ward,Annex');
      const unchanged = (await t.fhir.get(`Encounter/${stay.id}`)).body;
      assert.equal(unchanged.meta.versionId, stay.meta.versionId, 'the first stay was not touched');
      assert.notEqual(other.location.at(-1).location.reference, stay.location.at(-1).location.reference, 'a ward of its own');
    });

    it('values as senders\' engines write them: padded with whitespace, ODS codes in lower case, the NHS number printed 3-3-4; one episode and one person, as sent without', async () => {
      const ids = episodeIds();
      const nhs = generateSyntheticNhsNumber();
      const plain = renamed(EXAMPLES['Assessment-Notice'], ids).replace('value="9413946000"', `value="${nhs}"`);
      const written = plain
        .replace(`value="${nhs}"`, `value=" ${nhs.slice(0, 3)} ${nhs.slice(3, 6)} ${nhs.slice(6)} "`)
        .replace(`<value value="${ids[EPISODE]}"/>`, `<value value="\n\t${ids[EPISODE]}\n"/>`)
        .replace(`ods:${HOSPITAL_ODS}"`, `ods:${HOSPITAL_ODS.toLowerCase()} "`)
        .replace(`ods:${COUNCIL_ODS}"`, `ods:${COUNCIL_ODS.toLowerCase()}"`)
        .replace('<code value="975701000000106"/>', '<code value=" 975701000000106 "/>');
      assert.deepEqual(parseAdwMessage(written), parseAdwMessage(plain));
      await handleAdwMessage(deps(), inbound(written));
      const { referral } = await episodeOf(ids[EPISODE]);
      assert.equal(referral.identifier[0].value, ids[EPISODE]);
      const people = await t.fhir.get(`Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|${nhs}`);
      assert.equal(people.body.entry?.length, 1);
      assert.equal(referral.subject.reference, `Patient/${people.body.entry[0].resource.id}`);
      // The same notice written plainly is a copy of it, not a second episode.
      const discharge = renamed(EXAMPLES['Discharge-Notice'], ids).replace(/9413946000/g, nhs);
      await handleAdwMessage(deps(), inbound(discharge));
      const all = await t.fhir.get(`ServiceRequest?identifier=${ids[EPISODE]}`);
      assert.equal(all.body.entry.length, 1);
    });

    it('a notice delivered twice is applied once', async () => {
      const ids = episodeIds();
      const message = renamed(EXAMPLES['Assessment-Notice'], ids);
      await handleAdwMessage(deps(), inbound(message));
      await handleAdwMessage(deps(), inbound(message)); // same MessageHeader.id, new MESH id
      await Promise.all([handleAdwMessage(deps(), inbound(message)), handleAdwMessage(deps(), inbound(message))]);
      const all = await t.fhir.get(`ServiceRequest?identifier=${ids[EPISODE]}`);
      assert.equal(all.body.entry.length, 1);
      const tasks = await t.fhir.get(`Task?focus=ServiceRequest/${all.body.entry[0].resource.id}`);
      assert.equal(tasks.body.entry.length, 1);
      assert.equal(tasks.body.entry[0].resource.meta.versionId, '1', 'the Task was written once');
    });

    it('a trust that resends a notice from another of its linked mailboxes sends a copy: applied and answered once, even two at once; a copy of a rejected notice is a replay; another trust\'s same MessageHeader.id is still its own; a mailbox not linked is its own sender (H-048)', async () => {
      // As messaging links them (carebridge mesh mailbox add <id> --ods <ODS>): the hospital writes from two mailboxes.
      const linked: Record<string, string> = { HOSPITAL01: HOSPITAL_ODS, HOSPITAL02: HOSPITAL_ODS, OTHERTRUST06: 'RXX06', COUNCIL01: COUNCIL_ODS };
      const linkedDeps = () => ({ ctx, organisationForMailbox: async (mailbox: string) => linked[mailbox] });
      const updateNotes = async (referralId: string) => (await t.fhir.get(`Communication?based-on=ServiceRequest/${referralId}&category:text=${encodeURIComponent('Assessment notice updated')}`)).body.entry?.length ?? 0;
      const claims = (headerId: string) => t.server.driver.all<{ sender_mailbox: string; status: string }>("SELECT sender_mailbox, status FROM discharge_adw_messages WHERE direction = 'in' AND header_id = ? ORDER BY sender_mailbox", [headerId]);

      // Sent from one mailbox and accepted; then the same message (same MessageHeader.id) from the other.
      let ids = episodeIds();
      const notice = renamed(EXAMPLES['Assessment-Notice'], ids);
      await handleAdwMessage(linkedDeps(), inbound(notice));
      await triage(ctx, (await episodeOf(ids[EPISODE])).referral.id, { action: 'accept' });
      const accepted = await episodeOf(ids[EPISODE]);
      await handleAdwMessage(linkedDeps(), inbound(notice, { from: 'HOSPITAL02' }));
      const afterCopy = await episodeOf(ids[EPISODE]);
      assert.equal(afterCopy.referral.meta.versionId, accepted.referral.meta.versionId, 'the copy changes the referral not at all');
      assert.equal(afterCopy.task.meta.versionId, accepted.task.meta.versionId, 'nor its triage Task');
      assert.equal(await updateNotes(accepted.referral.id), 0, 'no note of a new assessment notice');
      assert.deepEqual((await sentFor(ids[EPISODE])).map((r) => r.event_code), [ADW_EVENT.assessmentAccept], 'answered once');
      assert.deepEqual(await claims(ids[ASSESSMENT_HEADER]), [{ sender_mailbox: 'HOSPITAL01', status: 'accepted' }], 'one claim, the first');

      // Another trust whose system uses the same MessageHeader.id, from its own linked mailbox: its own message.
      await t.fhir.put('Organization/trust-rxx06', { resourceType: 'Organization', id: 'trust-rxx06', identifier: [{ system: 'https://fhir.nhs.uk/Id/ods-organization-code', value: 'RXX06' }], name: 'Sixth Trust' });
      const otherTrust: Record<string, string> = { ...episodeIds(), [ASSESSMENT_HEADER]: ids[ASSESSMENT_HEADER] };
      await handleAdwMessage(linkedDeps(), inbound(renamed(EXAMPLES['Assessment-Notice'], otherTrust).replace(/RFM8C2/g, 'RXX06').replace(/9413946000/g, '9449306079'), { from: 'OTHERTRUST06' }));
      assert.equal(triageStateOf((await episodeOf(otherTrust[EPISODE])).task), 'received', 'the other trust\'s notice opened its referral');

      // Two copies at once, one from each mailbox (on PostgreSQL, as two app nodes would): one is applied.
      ids = episodeIds();
      const twice = renamed(EXAMPLES['Assessment-Notice'], ids);
      await Promise.all([handleAdwMessage(linkedDeps(), inbound(twice)), handleAdwMessage(linkedDeps(), inbound(twice, { from: 'HOSPITAL02' }))]);
      const once = await t.fhir.get(`ServiceRequest?identifier=${ids[EPISODE]}`);
      assert.equal(once.body.entry.length, 1, 'one referral');
      const { task } = await episodeOf(ids[EPISODE]);
      assert.equal(task.meta.versionId, '1', 'its Task written once');
      assert.equal(await updateNotes(once.body.entry[0].resource.id), 0, 'no note of a new assessment notice');
      assert.equal((await claims(ids[ASSESSMENT_HEADER])).length, 1, 'one claim');
      // And a discharge notice for that referral, its stay already known, sent at once from both mailboxes.
      const discharge = renamed(EXAMPLES['Discharge-Notice'], ids);
      await Promise.all([handleAdwMessage(linkedDeps(), inbound(discharge)), handleAdwMessage(linkedDeps(), inbound(discharge, { from: 'HOSPITAL02' }))]);
      const referralId = once.body.entry[0].resource.id;
      const dischargeNotes = await t.fhir.get(`Communication?based-on=ServiceRequest/${referralId}&category:text=${encodeURIComponent('Discharge notice')}`);
      assert.equal(dischargeNotes.body.entry?.length, 1, 'one discharge notice filed');
      const timers = await t.server.driver.all("SELECT status FROM discharge_timers WHERE referral_id = ? AND kind = 'discharge-notice'", [referralId]);
      assert.deepEqual(timers.map((r: any) => r.status), ['pending'], 'one deadline, set once');
      assert.equal((await claims(ids[DISCHARGE_HEADER])).length, 1, 'one claim');

      // Rejected from one mailbox (a council this service did not know yet, reached through a mailbox not
      // linked); once it is known, the copy from the other mailbox is a replay: not applied, not rejected again.
      ids = episodeIds();
      const toNewCouncil = renamed(EXAMPLES['Assessment-Notice'], ids).replace(/ods:V396BB/g, 'ods:LA781');
      await assert.rejects(handleAdwMessage(linkedDeps(), inbound(toNewCouncil, { to: 'COUNCIL81' })), (e: Error) => e instanceof AdwRejected && /LA781/.test(e.message));
      await t.fhir.put('Organization/council-781', { resourceType: 'Organization', id: 'council-781', identifier: [{ system: 'https://fhir.nhs.uk/Id/ods-organization-code', value: 'LA781' }], name: 'Council 781' });
      await assert.rejects(handleAdwMessage(linkedDeps(), inbound(toNewCouncil, { from: 'HOSPITAL02', to: 'COUNCIL81' })),
        (e: Error) => e instanceof AdwRejected && /was not applied on replay: it was answered with assessment notice reject/.test(e.message));
      assert.equal((await t.fhir.get(`ServiceRequest?identifier=${ids[EPISODE]}`)).body.entry?.length ?? 0, 0, 'no referral the hospital believes rejected');
      assert.deepEqual((await sentFor(ids[EPISODE])).map((r) => r.event_code), [ADW_EVENT.assessmentReject], 'the one reject, and no accept can follow');

      // From a mailbox messaging does not link to the trust, nothing says it is the same sender: processed again.
      await handleAdwMessage(linkedDeps(), inbound(notice, { from: 'HOSPITAL03' }));
      assert.equal(await updateNotes(accepted.referral.id), 1, 'taken for a newer notice of the episode');
    });

    it('a stay number is the sending trust\'s: another trust\'s same number is another stay; at the same trust, another person\'s is rejected; notices keep the ward history', async () => {
      await t.fhir.put('Organization/trust-rxx01', { resourceType: 'Organization', id: 'trust-rxx01', identifier: [{ system: 'https://fhir.nhs.uk/Id/ods-organization-code', value: 'RXX01' }], name: 'Another Trust' });
      // Each notice its own episode and message ids, all with the hospital's local stay number SPELL-1001.
      const onSpell1001 = (): Record<string, string> => ({ ...episodeIds(), '2562b8b6-c0db-424a-8c6b-0fa43b0d6c2f': 'SPELL-1001' });
      const first = onSpell1001();
      await handleAdwMessage(deps(), inbound(renamed(EXAMPLES['Assessment-Notice'], first)));
      // Another trust, another person, the same local stay number, another ward.
      const second = onSpell1001();
      const otherTrust = renamed(EXAMPLES['Assessment-Notice'], second).replace(/RFM8C2/g, 'RXX01').replace(/9413946000/g, '9449306060').replace(/Collier Ward/g, 'Ward 9');
      await handleAdwMessage(deps(), inbound(otherTrust, { from: 'OTHERTRUST01' }));

      const one = (await episodeOf(first[EPISODE])).referral;
      const two = (await episodeOf(second[EPISODE])).referral;
      assert.notEqual(two.encounter.reference, one.encounter.reference, 'each person\'s referral is on their own stay');
      const stayOne = (await t.fhir.get(one.encounter.reference)).body;
      const stayTwo = (await t.fhir.get(two.encounter.reference)).body;
      assert.deepEqual(stayOne.location.map((l: any) => l.location.display), ['Collier Ward'], 'the first person\'s ward is untouched');
      assert.equal(stayOne.serviceProvider.reference, 'Organization/hebburn-hospital');
      assert.equal(stayTwo.serviceProvider.reference, 'Organization/trust-rxx01');
      assert.deepEqual(stayTwo.location.map((l: any) => l.location.display), ['Ward 9']);
      assert.equal(stayTwo.subject.reference, two.subject.reference);

      // The first trust sends a notice about someone else under the first person's stay number: refused back to it.
      const clash = onSpell1001();
      const wrongPerson = renamed(EXAMPLES['Assessment-Notice'], clash).replace(/9413946000/g, '9449306613').replace(/Collier Ward/g, 'Ward 7');
      await assert.rejects(handleAdwMessage(deps(), inbound(wrongPerson)), (e: Error) => e instanceof AdwRejected && /SPELL-1001 is already a stay at RFM8C2 of a different person/.test(e.message));
      const [reject] = await sentFor(clash[EPISODE]);
      assert.equal(parseAdwMessage(reject.body).eventCode, ADW_EVENT.assessmentReject);
      assert.match(parseAdwMessage(reject.body).reason?.text ?? '', /cannot belong to two people/);
      assert.equal((await episodeOf(clash[EPISODE])).referral, undefined, 'no referral for the second person');
      assert.deepEqual((await t.fhir.get(one.encounter.reference)).body.location.map((l: any) => l.location.display), ['Collier Ward'], 'nor is the stay moved');

      // The right person's newer notice from another ward: the ward they were on is kept as history.
      await handleAdwMessage(deps(), inbound(withHeaderId(renamed(EXAMPLES['Assessment-Notice'], first), first[ASSESSMENT_HEADER], crypto.randomUUID()).replace(/Collier Ward/g, 'Ward 2')));
      const moved = (await t.fhir.get(one.encounter.reference)).body;
      assert.deepEqual(moved.location.map((l: any) => `${l.location.display} ${l.status}`), ['Collier Ward completed', 'Ward 2 active']);
    });

    it('one episode per episode id (H-041): another trust\'s, another person\'s or another council\'s notice under it is rejected to its sender; the first referral, its state and its mailbox are untouched', async () => {
      await t.fhir.put('Organization/trust-rxx02', { resourceType: 'Organization', id: 'trust-rxx02', identifier: [{ system: 'https://fhir.nhs.uk/Id/ods-organization-code', value: 'RXX02' }], name: 'Second Trust' });
      await t.fhir.put('Organization/council-779', { resourceType: 'Organization', id: 'council-779', identifier: [{ system: 'https://fhir.nhs.uk/Id/ods-organization-code', value: 'LA779' }], name: 'Fourth Council' });
      const first = episodeIds();
      const id = first[EPISODE];
      await handleAdwMessage(deps(), inbound(renamed(EXAMPLES['Assessment-Notice'], first)));
      const one = await searchOne(t, `ServiceRequest?identifier=${id}`);
      // Each message its own message and stay ids, all with the same episode id.
      const sameEpisode = (): Record<string, string> => ({ ...episodeIds(), [EPISODE]: id });
      const fromSecondTrust = (xml: string, nhsNumber: string) => inbound(xml.replace(/RFM8C2/g, 'RXX02').replace(/9413946000/g, nhsNumber), { from: 'SECONDTRUST01' });

      // Another trust uses the same episode id: for another person, for the same person, and to withdraw it.
      const otherTrust = sameEpisode();
      await assert.rejects(handleAdwMessage(deps(), fromSecondTrust(renamed(EXAMPLES['Assessment-Notice'], otherTrust).replace('Patient admitted as inpatient with chest pain.', 'Fall at home.'), '9449306060')),
        (e: Error) => e instanceof AdwRejected && new RegExp(`episode ${id} is already another trust's \\(not RXX02's\\)`).test(e.message) && !/9413946000|different person/.test(e.message));
      const otherTrustDischarge = sameEpisode();
      await assert.rejects(handleAdwMessage(deps(), fromSecondTrust(renamed(EXAMPLES['Discharge-Notice'], otherTrustDischarge), '9449306060')),
        (e: Error) => e instanceof AdwRejected && /already another trust's/.test(e.message));
      const otherTrustWithdrawal = sameEpisode();
      await assert.rejects(handleAdwMessage(deps(), fromSecondTrust(renamed(EXAMPLES['Withdrawal-Notice'], otherTrustWithdrawal), '9413946000')),
        (e: Error) => e instanceof AdwRejected && /already another trust's/.test(e.message), 'the same person from another trust is still another trust\'s episode');
      assert.equal((await t.fhir.get(`ServiceRequest?identifier=${id}`)).body.entry?.length, 1, 'still one episode for the id');

      // The first trust reuses the id for someone else, or sends it to another council: each rejected back to it.
      const wrongPerson = sameEpisode();
      await assert.rejects(handleAdwMessage(deps(), inbound(renamed(EXAMPLES['Assessment-Notice'], wrongPerson).replace(/9413946000/g, '9449306613'))),
        (e: Error) => e instanceof AdwRejected && new RegExp(`episode ${id} from RFM8C2 is already about a different person \\(not NHS number 9449306613\\)`).test(e.message));
      const withdrawOther = sameEpisode();
      await assert.rejects(handleAdwMessage(deps(), inbound(renamed(EXAMPLES['Withdrawal-Notice'], withdrawOther).replace(/9413946000/g, '9449306613'))),
        (e: Error) => e instanceof AdwRejected && /already about a different person/.test(e.message));
      const otherCouncil = sameEpisode();
      await assert.rejects(handleAdwMessage(deps(), inbound(renamed(EXAMPLES['Discharge-Notice'], otherCouncil).replace(/ods:V396BB/g, 'ods:LA779'))),
        (e: Error) => e instanceof AdwRejected && new RegExp(`episode ${id} from RFM8C2 is with V396BB, not LA779`).test(e.message));

      // Each answered with its reject, at the mailbox of the trust that sent it, to that trust, about the person it named.
      const refused = [otherTrust, otherTrustDischarge, otherTrustWithdrawal, wrongPerson, withdrawOther, otherCouncil];
      const rejects = (await sentFor(id)).filter((r) => refused.some((ids) => r.responds_to === ids[ASSESSMENT_HEADER] || r.responds_to === ids[DISCHARGE_HEADER]));
      assert.deepEqual(rejects.map((r) => { const m = parseAdwMessage(r.body); return [m.eventCode, r.peer_mailbox, m.destinationOds, m.patient?.nhsNumber]; }).sort(), [
        [ADW_EVENT.assessmentReject, 'SECONDTRUST01', 'RXX02', '9449306060'],
        [ADW_EVENT.dischargeDisagreement, 'SECONDTRUST01', 'RXX02', '9449306060'],
        [ADW_EVENT.withdrawalReject, 'SECONDTRUST01', 'RXX02', '9413946000'],
        [ADW_EVENT.assessmentReject, 'HOSPITAL01', HOSPITAL_ODS, '9449306613'],
        [ADW_EVENT.withdrawalReject, 'HOSPITAL01', HOSPITAL_ODS, '9449306613'],
        [ADW_EVENT.dischargeDisagreement, 'HOSPITAL01', HOSPITAL_ODS, '9413946000'],
      ].sort());
      const rejectTo = (ids: Record<string, string>) => parseAdwMessage(rejects.find((r) => r.responds_to === ids[ASSESSMENT_HEADER])!.body).reason?.text ?? '';
      assert.match(rejectTo(otherTrust), /an episode id belongs to one trust's referral/);
      assert.doesNotMatch(rejectTo(otherTrust), /9413946000|Jones|Hebburn|V396BB/, 'the second trust learns nothing of the first trust\'s episode');
      assert.match(rejectTo(wrongPerson), /an episode id cannot belong to two people/);
      for (const [ids, why] of [[otherTrust, /already another trust's/], [otherTrustWithdrawal, /already another trust's/], [wrongPerson, /already about a different person/]] as const) {
        const held = await t.server.driver.get<{ status: string; detail: string; peer_mailbox: string }>("SELECT status, detail, peer_mailbox FROM discharge_adw_messages WHERE direction = 'in' AND header_id = ?", [ids[ASSESSMENT_HEADER]]);
        assert.equal(held?.status, 'rejected', 'kept as a rejected message');
        assert.match(held?.detail ?? '', why, 'with its reason');
      }

      const after = (await t.fhir.get(`ServiceRequest/${one.id}`)).body;
      assert.equal(after.meta.versionId, one.meta.versionId, 'the first person\'s referral is untouched');
      assert.equal(after.reasonCode[0].text, 'Patient admitted as inpatient with chest pain.');
      assert.equal(triageStateOf(await searchOne(t, `Task?focus=ServiceRequest/${one.id}&code=triage-referral`)), 'received', 'nor withdrawn');
      const episodes = await t.server.driver.all<{ peer_ods: string; peer_mailbox: string; service_request_id: string; withdrawn: number | string }>(
        'SELECT peer_ods, peer_mailbox, service_request_id, withdrawn FROM discharge_adw_episodes WHERE referral_identifier = ?', [id]);
      assert.deepEqual(episodes.map((e) => ({ ...e, withdrawn: Number(e.withdrawn) })), [{ peer_ods: HOSPITAL_ODS, peer_mailbox: 'HOSPITAL01', service_request_id: one.id, withdrawn: 0 }], 'one episode, its answers still going to the first trust');

      // The council's accept answers the first trust's notice, at its mailbox, about its own person.
      await triage(ctx, one.id, { action: 'accept', note: 'First trust' });
      const accepts = (await sentFor(id)).filter((r) => r.event_code === ADW_EVENT.assessmentAccept).map((r) => ({ row: r, m: parseAdwMessage(r.body) }));
      assert.deepEqual(accepts.map(({ row, m }) => [m.response?.identifier, row.peer_mailbox, m.destinationOds, m.patient?.nhsNumber, m.reason?.text]), [
        [first[ASSESSMENT_HEADER], 'HOSPITAL01', HOSPITAL_ODS, '9413946000', 'First trust'],
      ]);

      // The same trust writing from another of its mailboxes: applied, and its answers now go there.
      const later = sameEpisode();
      await handleAdwMessage(deps(), inbound(renamed(EXAMPLES['Discharge-Notice'], later), { from: 'HOSPITAL02' }));
      await confirmReady(ctx, one.id);
      const agreements = (await sentFor(id)).filter((r) => r.event_code === ADW_EVENT.dischargeAgreement);
      assert.deepEqual(agreements.map((r) => { const m = parseAdwMessage(r.body); return [m.response?.identifier, r.peer_mailbox, m.destinationOds, m.patient?.nhsNumber]; }), [
        [later[DISCHARGE_HEADER], 'HOSPITAL02', HOSPITAL_ODS, '9413946000'],
      ]);
    });

    it('a withdrawal that arrives before its notice: withdrawn at once, the late notice opens no work', async () => {
      const ids = episodeIds();
      await handleAdwMessage(deps(), inbound(renamed(EXAMPLES['Withdrawal-Notice'], { ...ids, [ASSESSMENT_HEADER]: crypto.randomUUID() })));
      await handleAdwMessage(deps(), inbound(renamed(EXAMPLES['Assessment-Notice'], ids)));
      const { referral, task } = await episodeOf(ids[EPISODE]);
      assert.equal(triageStateOf(task), 'withdrawn');
      assert.equal(referral.status, 'revoked');
      const sent = await sentFor(ids[EPISODE]);
      assert.deepEqual(sent.map((s) => s.event_code), [ADW_EVENT.withdrawalAccept], 'only the withdrawal is answered');
      const pending = await t.server.driver.get<{ n: number }>("SELECT COUNT(*) AS n FROM discharge_timers WHERE referral_id = ? AND status = 'pending'", [referral.id]);
      assert.equal(Number(pending!.n), 0, 'no deadline runs for a withdrawn episode');
    });

    it('a "withdraw discharge notice only" that overtakes its discharge notice still withdraws it: no date, no deadline, nothing owed; a notice sent after the withdrawal is live', async () => {
      const ids = episodeIds();
      await handleAdwMessage(deps(), inbound(renamed(EXAMPLES['Assessment-Notice'], ids)));
      // The example withdrawal is sent 2017-05-08, after the example discharge notice (2017-05-04), but arrives first.
      const withdrawal = renamed(EXAMPLES['Withdrawal-Notice'], { ...ids, [ASSESSMENT_HEADER]: crypto.randomUUID() }).replace(ADW_EVENT.withdrawAll, ADW_EVENT.withdrawDischarge);
      await handleAdwMessage(deps(), inbound(withdrawal));
      await handleAdwMessage(deps(), inbound(renamed(EXAMPLES['Discharge-Notice'], ids), { receivedAt: Date.parse('2026-05-01T11:00:00Z') }));
      let { referral, task } = await episodeOf(ids[EPISODE]);
      assert.equal(triageStateOf(task), 'received', 'the assessment goes on');
      const expected = (r: any) => r.extension?.find((e: any) => e.url === EXPECTED_DISCHARGE_URL)?.valueDateTime;
      assert.equal(expected(referral), undefined, 'the withdrawn date is not set');
      const notice = await t.server.driver.get<{ status: string; detail: string }>("SELECT status, detail FROM discharge_adw_messages WHERE direction = 'in' AND header_id = ?", [ids[DISCHARGE_HEADER]]);
      assert.equal(notice?.status, 'withdrawn');
      assert.match(notice?.detail ?? '', /withdrew this discharge notice/);
      const timers = await t.server.driver.all<{ kind: string }>("SELECT kind FROM discharge_timers WHERE referral_id = ? AND status = 'pending'", [referral.id]);
      assert.deepEqual(timers.map((r) => r.kind), ['response-deadline'], 'no discharge-notice deadline');
      const filed = await t.fhir.get(`Communication?based-on=ServiceRequest/${referral.id}&category:text=${encodeURIComponent('Discharge notice')}`);
      assert.match(filed.body.entry[0].resource.payload[0].contentString, /arrived after the hospital had withdrawn it/);
      assert.deepEqual((await sentFor(ids[EPISODE])).map((r) => r.event_code), [ADW_EVENT.withdrawalAccept], 'only the withdrawal is answered');

      // A new discharge notice, sent after the withdrawal, is a new proposal: answered as usual.
      const fresh = withHeaderId(renamed(EXAMPLES['Discharge-Notice'], ids), ids[DISCHARGE_HEADER], crypto.randomUUID()).replace('2017-05-04T15:11:42+00:00', '2017-05-10T09:00:00+00:00');
      await handleAdwMessage(deps(), inbound(fresh));
      ({ referral, task } = await episodeOf(ids[EPISODE]));
      assert.equal(expected(referral), '2017-05-06');
      const live = await t.server.driver.get<{ status: string }>("SELECT status FROM discharge_adw_messages WHERE direction = 'in' AND header_id = ?", [parseAdwMessage(fresh).headerId]);
      assert.equal(live?.status, 'awaiting-response');
    });

    it('a newer assessment notice for the same episode replaces the older one and updates the referral, with a note both sides see', async () => {
      const ids = episodeIds();
      await handleAdwMessage(deps(), inbound(renamed(EXAMPLES['Assessment-Notice'], ids)));
      const second = withHeaderId(renamed(EXAMPLES['Assessment-Notice'], ids), ids[ASSESSMENT_HEADER], crypto.randomUUID())
        .replace('Patient admitted as inpatient with chest pain.', 'Fall at home; needs help with stairs.').replace('2017-05-12', '2017-05-15');
      await handleAdwMessage(deps(), inbound(second, { receivedAt: Date.parse('2026-05-01T11:00:00Z') }));
      let { referral } = await episodeOf(ids[EPISODE]);
      assert.equal(referral.reasonCode[0].text, 'Fall at home; needs help with stairs.');
      assert.equal(referral.extension.find((e: any) => e.url === EXPECTED_DISCHARGE_URL).valueDateTime, '2017-05-15');
      const statuses = Object.fromEntries((await t.server.driver.all<{ header_id: string; status: string }>("SELECT header_id, status FROM discharge_adw_messages WHERE direction = 'in' AND referral_identifier = ?", [ids[EPISODE]])).map((r) => [r.header_id, r.status]));
      assert.deepEqual(statuses, { [ids[ASSESSMENT_HEADER]]: 'superseded', [parseAdwMessage(second).headerId]: 'awaiting-response' }, 'nothing waits for ever');
      const note = await t.fhir.get(`Communication?based-on=ServiceRequest/${referral.id}&category:text=${encodeURIComponent('Assessment notice updated')}`);
      assert.match(note.body.entry[0].resource.payload[0].contentString, /reason for referral now "Fall at home; needs help with stairs\." \(was "Patient admitted as inpatient with chest pain\."\).*expected discharge date now 2017-05-15/);
      await triage(ctx, referral.id, { action: 'accept' });
      const sent = await sentFor(ids[EPISODE]);
      assert.deepEqual(sent.map((r) => r.responds_to), [parseAdwMessage(second).headerId], 'the newer notice is the one answered');

      // Once accepted, a further notice is answered at once (the assessment stands) and its changes recorded.
      const third = withHeaderId(renamed(EXAMPLES['Assessment-Notice'], ids), ids[ASSESSMENT_HEADER], crypto.randomUUID()).replace('2017-05-12', '2017-05-20');
      await handleAdwMessage(deps(), inbound(third));
      ({ referral } = await episodeOf(ids[EPISODE]));
      assert.equal(referral.extension.find((e: any) => e.url === EXPECTED_DISCHARGE_URL).valueDateTime, '2017-05-20');
      const answer = (await sentFor(ids[EPISODE])).find((r) => r.responds_to === parseAdwMessage(third).headerId);
      assert.equal(answer?.event_code, ADW_EVENT.assessmentAccept);
      assert.match(parseAdwMessage(answer!.body).reason?.text ?? '', /already|accepted this assessment on 2026-05-01/);
    });

    it('rejecting while an assessment notice and a discharge notice both wait answers each, with its own response', async () => {
      const ids = episodeIds();
      await handleAdwMessage(deps(), inbound(renamed(EXAMPLES['Assessment-Notice'], ids)));
      await handleAdwMessage(deps(), inbound(renamed(EXAMPLES['Discharge-Notice'], ids), { receivedAt: Date.parse('2026-05-01T11:00:00Z') }));
      const { referral } = await episodeOf(ids[EPISODE]);
      await triage(ctx, referral.id, { action: 'reject', reason: 'The person lives in another council area' });
      const answers = Object.fromEntries((await sentFor(ids[EPISODE])).map((r) => [r.event_code, parseAdwMessage(r.body)]));
      assert.deepEqual(Object.keys(answers).sort(), [ADW_EVENT.assessmentReject, ADW_EVENT.dischargeDisagreement].sort(), 'the hospital hears about both notices');
      assert.equal(answers[ADW_EVENT.assessmentReject].response?.identifier, ids[ASSESSMENT_HEADER]);
      assert.equal(answers[ADW_EVENT.dischargeDisagreement].response?.identifier, ids[DISCHARGE_HEADER]);
      for (const answer of Object.values(answers)) assert.equal(answer.reason?.text, 'The person lives in another council area');
      const waiting = await t.server.driver.all("SELECT event_code FROM discharge_adw_messages WHERE direction = 'in' AND referral_identifier = ? AND status = 'awaiting-response'", [ids[EPISODE]]);
      assert.deepEqual(waiting, [], 'no notice is left waiting on a closed referral');
    });

    it('a discharge notice that comes after the referral was rejected is answered with a disagreement saying so, and shown on the referral', async () => {
      const ids = episodeIds();
      await handleAdwMessage(deps(), inbound(renamed(EXAMPLES['Assessment-Notice'], ids)));
      const { referral } = await episodeOf(ids[EPISODE]);
      await triage(ctx, referral.id, { action: 'reject', reason: 'The person lives in another council area' });
      await handleAdwMessage({ ctx: at(ctx, '2026-05-02T09:00:00Z') }, inbound(renamed(EXAMPLES['Discharge-Notice'], ids), { receivedAt: Date.parse('2026-05-02T09:00:00Z') }));
      const disagreement = (await sentFor(ids[EPISODE])).find((r) => r.event_code === ADW_EVENT.dischargeDisagreement);
      assert.ok(disagreement, 'the hospital gets an answer to its discharge notice');
      const parsed = parseAdwMessage(disagreement.body);
      assert.equal(parsed.response?.identifier, ids[DISCHARGE_HEADER]);
      assert.equal(parsed.reason?.text, 'The referral was rejected on 2026-05-01: The person lives in another council area');
      assert.equal(disagreement.peer_mailbox, 'HOSPITAL01');
      const notice = await t.server.driver.get<{ status: string }>("SELECT status FROM discharge_adw_messages WHERE direction = 'in' AND header_id = ?", [ids[DISCHARGE_HEADER]]);
      assert.equal(notice?.status, 'rejected', 'answered, not left waiting');
      const { referral: after, task } = await episodeOf(ids[EPISODE]);
      assert.equal(triageStateOf(task), 'rejected');
      assert.equal(after.extension?.find((e: any) => e.url === EXPECTED_DISCHARGE_URL)?.valueDateTime, '2017-05-12', 'the proposed date (2017-05-06) is not taken onto a rejected referral');
      const pending = await t.server.driver.get<{ n: number }>("SELECT COUNT(*) AS n FROM discharge_timers WHERE referral_id = ? AND status = 'pending'", [referral.id]);
      assert.equal(Number(pending!.n), 0, 'no deadline on a rejected referral');
      const filed = await t.fhir.get(`Communication?based-on=ServiceRequest/${referral.id}&category:text=${encodeURIComponent('Discharge notice')}`);
      assert.match(filed.body.entry[0].resource.payload[0].contentString, /received after the referral was rejected; answered with a discharge notice disagreement/);
    });

    it('a discharge notice\'s deadline outlasts the council\'s other steps, and once it lapses the referral shows overdue until the notice is answered or withdrawn', async () => {
      const late = at(ctx, '2026-06-01T10:00:00Z');
      const escalationOf = async (referralId: string) => (await t.fhir.get(`Task/escalation-${referralId}`)).body;
      const acceptedWithNotice = async () => {
        const ids = episodeIds();
        await handleAdwMessage(deps(), inbound(renamed(EXAMPLES['Assessment-Notice'], ids)));
        const { referral } = await episodeOf(ids[EPISODE]);
        await triage(ctx, referral.id, { action: 'accept' });
        await handleAdwMessage(deps(), inbound(renamed(EXAMPLES['Discharge-Notice'], ids)));
        return { ids, referral };
      };

      const { ids, referral } = await acceptedWithNotice();
      await assignWorker(ctx, referral.id, { reference: 'Practitioner/sw-1', display: 'Lee Jones' });
      await fireDueTimers(late);
      let { task } = await episodeOf(ids[EPISODE]);
      assert.equal(triageStateOf(task), 'assigned');
      assert.equal(isOverdue(task, Date.parse('2026-06-01T10:00:00Z')), true, 'the board and the queue show it overdue');
      assert.equal((await escalationOf(referral.id)).status, 'requested');
      assert.match((await escalationOf(referral.id)).description, /the answer to the discharge notice/);
      await recordSupportArranged(late, referral.id, 'Reablement from Monday');
      ({ task } = await episodeOf(ids[EPISODE]));
      assert.equal(isOverdue(task, Date.parse('2026-06-01T10:00:00Z')), true, 'arranging support does not answer the hospital');
      assert.equal((await escalationOf(referral.id)).status, 'requested');
      await confirmReady(late, referral.id);
      ({ task } = await episodeOf(ids[EPISODE]));
      assert.equal(isOverdue(task, Date.parse('2026-06-01T10:00:00Z')), false);
      assert.equal((await escalationOf(referral.id)).status, 'completed');
      assert.ok((await sentFor(ids[EPISODE])).some((r) => r.event_code === ADW_EVENT.dischargeAgreement));

      // The hospital withdraws a lapsed discharge notice: nothing is owed any more, so nothing is overdue.
      const second = await acceptedWithNotice();
      await fireDueTimers(late);
      const withdrawal = renamed(EXAMPLES['Withdrawal-Notice'], { ...second.ids, [ASSESSMENT_HEADER]: crypto.randomUUID() }).replace(ADW_EVENT.withdrawAll, ADW_EVENT.withdrawDischarge);
      await handleAdwMessage({ ctx: late }, inbound(withdrawal));
      ({ task } = await episodeOf(second.ids[EPISODE]));
      assert.equal(triageStateOf(task), 'accepted');
      assert.equal(isOverdue(task, Date.parse('2026-06-01T10:00:00Z')), false);
      assert.equal((await escalationOf(second.referral.id)).status, 'completed');
    });

    it('a discharge the hospital cancels gives back the deadline of a discharge notice the council has not answered, lapsed or not', async () => {
      const ids = episodeIds();
      await handleAdwMessage(deps(), inbound(renamed(EXAMPLES['Assessment-Notice'], ids)));
      const { referral } = await episodeOf(ids[EPISODE]);
      await triage(ctx, referral.id, { action: 'accept' });
      await handleAdwMessage(deps(), inbound(renamed(EXAMPLES['Discharge-Notice'], ids)));
      const escalation = async () => (await t.fhir.get(`Task/escalation-${referral.id}`)).body;

      // The stay is finished and then set back (an A13 reaching the council's record): discharged, then reopened.
      const stayId = referral.encounter.reference.split('/')[1];
      const stay = (await t.fhir.get(`Encounter/${stayId}`)).body;
      await t.fhir.put(`Encounter/${stayId}`, { ...stay, status: 'finished', period: { ...stay.period, end: '2017-05-06T10:00:00Z' } });
      await t.server.discharge.runWorkers();
      assert.equal(triageStateOf((await episodeOf(ids[EPISODE])).task), 'discharged');
      assert.equal((await escalation()).status, 'completed', 'the discharge closed the escalation the lapsed notice had raised');
      const finished = (await t.fhir.get(`Encounter/${stayId}`)).body;
      await t.fhir.put(`Encounter/${stayId}`, { ...finished, status: 'in-progress' });
      await t.server.discharge.runWorkers();
      assert.equal(triageStateOf((await episodeOf(ids[EPISODE])).task), 'accepted');

      // The notice still waits for the council's answer, and its deadline (2026-05-05) has long passed.
      await fireDueTimers(at(ctx, '2026-06-01T10:00:00Z'));
      const { task } = await episodeOf(ids[EPISODE]);
      assert.equal(isOverdue(task, Date.parse('2026-06-01T10:00:00Z')), true);
      assert.equal((await escalation()).status, 'requested', 'escalated again');
      assert.match((await escalation()).description, /the answer to the discharge notice was due by 2026-05-05/);
    });

    it('a council that confirmed the person ready before the discharge notice came still answers it: agreeing by confirming again, or disagreeing with a reason', async () => {
      const ready = episodeIds();
      await handleAdwMessage(deps(), inbound(renamed(EXAMPLES['Assessment-Notice'], ready)));
      const { referral } = await episodeOf(ready[EPISODE]);
      await triage(ctx, referral.id, { action: 'accept' });
      await confirmReady(ctx, referral.id);
      await assert.rejects(confirmReady(ctx, referral.id), (e: Error) => /ready for discharge; it cannot be confirmed ready now/.test(e.message), 'nothing to answer yet');
      await handleAdwMessage(deps(), inbound(renamed(EXAMPLES['Discharge-Notice'], ready)));
      const confirmed = await confirmReady(ctx, referral.id, { note: 'Reablement starts the day she leaves.' });
      assert.equal(triageStateOf(confirmed.task), 'ready');
      const agreement = (await sentFor(ready[EPISODE])).find((r) => r.event_code === ADW_EVENT.dischargeAgreement);
      assert.ok(agreement, 'the hospital gets its discharge agreement');
      assert.equal(parseAdwMessage(agreement.body).response?.identifier, ready[DISCHARGE_HEADER]);
      await fireDueTimers(at(ctx, '2026-06-01T10:00:00Z'));
      assert.equal((await t.fhir.get(`Task/escalation-${referral.id}`)).status, 404, 'answered: no escalation later');

      const notYet = episodeIds();
      await handleAdwMessage(deps(), inbound(renamed(EXAMPLES['Assessment-Notice'], notYet)));
      const second = (await episodeOf(notYet[EPISODE])).referral;
      await triage(ctx, second.id, { action: 'accept' });
      await assert.rejects(disagreeWithDischarge(ctx, second.id, 'Too soon'), (e: Error) => /No discharge notice/.test(e.message));
      await handleAdwMessage(deps(), inbound(renamed(EXAMPLES['Discharge-Notice'], notYet)));
      const disagreed = await disagreeWithDischarge(ctx, second.id, 'The care package cannot start before 12 May.');
      assert.equal(triageStateOf(disagreed.task), 'accepted', 'the council goes on arranging support');
      const disagreement = (await sentFor(notYet[EPISODE])).find((r) => r.event_code === ADW_EVENT.dischargeDisagreement);
      assert.ok(disagreement, 'the hospital gets its discharge disagreement');
      const parsed = parseAdwMessage(disagreement.body);
      assert.equal(parsed.response?.identifier, notYet[DISCHARGE_HEADER]);
      assert.equal(parsed.reason?.text, 'The care package cannot start before 12 May.');
      await assert.rejects(disagreeWithDischarge(ctx, second.id, 'Again'), (e: Error) => /No discharge notice/.test(e.message), 'answered once');
    });

    it('in the portal, the council disagrees with a discharge notice from the referral page: the reason is required, and the hospital is answered', async () => {
      const ids = episodeIds();
      await handleAdwMessage(deps(), inbound(renamed(EXAMPLES['Assessment-Notice'], ids)));
      const { referral } = await episodeOf(ids[EPISODE]);
      await triage(ctx, referral.id, { action: 'accept' });
      await addOrganisation(t.server.driver, { ods: COUNCIL_ODS, name: 'Hebburn Council', kind: 'council' });
      await addUser(t.server.driver, { username: `sw-${engine}`, name: 'Sandy Worker', password: TEST_PASSWORD, memberships: [{ organisation: COUNCIL_ODS, role: 'social-worker' }] });
      const cookie = await signIn(t, `sw-${engine}`);
      const path = `/discharge/referrals/${referral.id}`;
      const page = async () => (await fetch(`${t.url}${path}`, { headers: { cookie } })).text();
      assert.doesNotMatch(await page(), /Disagree with the proposed discharge/, 'nothing to disagree with before the notice');
      await handleAdwMessage(deps(), inbound(renamed(EXAMPLES['Discharge-Notice'], ids)));
      const html = await page();
      assert.match(html, /Disagree with the proposed discharge/);
      const form = { _csrf: csrfTokenIn(html), version: /name="version" value="([^"]*)"/.exec(html)![1] };
      const post = (body: Record<string, string>) => fetch(`${t.url}${path}/disagree`, { method: 'POST', redirect: 'manual', headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(body).toString() });
      const empty = await post({ ...form, 'disagree-reason': ' ' });
      assert.equal(empty.status, 400);
      assert.match(await empty.text(), /Enter why the council cannot agree to the proposed discharge/);
      assert.equal((await sentFor(ids[EPISODE])).some((r) => r.event_code === ADW_EVENT.dischargeDisagreement), false, 'nothing sent');
      const sent = await post({ ...form, 'disagree-reason': 'The care package cannot start before 12 May.' });
      assert.equal(sent.status, 303);
      const disagreement = (await sentFor(ids[EPISODE])).find((r) => r.event_code === ADW_EVENT.dischargeDisagreement);
      assert.ok(disagreement, 'the hospital gets its discharge disagreement');
      assert.equal(parseAdwMessage(disagreement.body).reason?.text, 'The care package cannot start before 12 May.');
      assert.doesNotMatch(await page(), /Disagree with the proposed discharge/, 'answered once');
    });

    describe('bad input', () => {
      const rejects = async (xml: string, pattern: RegExp) => {
        await assert.rejects(handleAdwMessage(deps(), inbound(xml)), (e: Error) => e instanceof AdwRejected && pattern.test(e.message));
      };
      const rejectedWith = async (ids: Record<string, string>, pattern: RegExp) => {
        const sent = await sentFor(ids[EPISODE]);
        assert.equal(sent.length, 1, 'one reject response');
        const reject = parseAdwMessage(sent[0].body);
        assert.equal(reject.eventCode, ADW_EVENT.assessmentReject);
        assert.equal(reject.response?.identifier, ids[ASSESSMENT_HEADER]);
        assert.match(reject.reason?.text ?? '', pattern);
        assert.equal((await t.fhir.get(`ServiceRequest?identifier=${ids[EPISODE]}`)).body.entry?.length ?? 0, 0, 'nothing half-written');
      };

      it('malformed XML and an unknown event are dead-lettered', async () => {
        await rejects('<Bundle xmlns="http://hl7.org/fhir"><type value="message"/><entry>', /not well-formed XML/);
        await rejects('<!DOCTYPE x [<!ENTITY a "aaaa">]><Bundle/>', /DOCTYPE/);
        await rejects(EXAMPLES['Assessment-Notice'].replace('975701000000106', '123456789'), /not one of the ADW event codes/);
      });

      it('an unknown ODS code, an invalid NHS number, a missing address line: a reject response with the reason', async () => {
        let ids = episodeIds();
        await rejects(renamed(EXAMPLES['Assessment-Notice'], ids).replace('ods:V396BB', 'ods:ZZ9999'), /ZZ9999 is not an organisation this service knows/);
        // The destination is unknown, so the reject still comes from the code the notice was sent to.
        const sent = await sentFor(ids[EPISODE]);
        assert.equal(parseAdwMessage(sent[0].body).sourceOds, 'ZZ9999');
        // And names the referral's parties as the notice did: its referrer requested it, the council it was sent to received it.
        assert.deepEqual(partiesOf(sent[0].body), { requester: REFERRER, recipient: 'ZZ9999', author: undefined });
        assert.deepEqual(receiverOf(sent[0].body), { type: 'Practitioner', isRequester: true }, 'a rejection too goes to the referrer');

        ids = episodeIds();
        await rejects(renamed(EXAMPLES['Assessment-Notice'], ids).replace('value="9413946000"', 'value="9413946001"'), /NHS number 9413946001 is not valid/);
        await rejectedWith(ids, /NHS number/);

        ids = episodeIds();
        const noLines = renamed(EXAMPLES['Assessment-Notice'], ids).replace('<line value="The Old Lodge"/>', '').replace('<line value="1 Little Street"/>', '').replace('<line value="Chapeltown"/>', '');
        await rejects(noLines, /address line 1 or line 2/);
        await rejectedWith(ids, /address line 1 or line 2/);

        ids = episodeIds();
        await rejects(renamed(EXAMPLES['Assessment-Notice'], ids).replace('<line value="1 Little Street"/>', '<line value=""/>'), /empty line/);
      });

      it('a withdrawal without a valid reason is rejected; a response to an unknown notice is dead-lettered', async () => {
        const ids = episodeIds();
        await rejects(renamed(EXAMPLES['Withdrawal-Notice'], ids).replace('<code value="07" />', '<code value="14" />'), /reason code 01–13/);
        const sent = await sentFor(ids[EPISODE]);
        assert.equal(parseAdwMessage(sent[0].body).eventCode, ADW_EVENT.withdrawalReject);
        await rejects(renamed(EXAMPLES['Assessment-Notice-Accept-Response'], episodeIds()), /never sent/);
      });

      it('a rejected notice replayed after the cause is fixed: one answer per notice, so a notice the hospital was told is rejected stays rejected; one never answered is processed', async () => {
        const ids = episodeIds();
        const xml = renamed(EXAMPLES['Assessment-Notice'], ids).replace(/ods:V396BB/g, 'ods:LA777');
        await rejects(xml, /LA777/);
        await t.fhir.put('Organization/council-777', { resourceType: 'Organization', id: 'council-777', identifier: [{ system: 'https://fhir.nhs.uk/Id/ods-organization-code', value: 'LA777' }], name: 'Another Council' });
        await rejects(xml.replace('</Bundle>', '<!-- -->\n</Bundle>').replace('9413946000', '9413946001'), /NHS number/); // a different problem, same key: not rejected again
        // The hospital got an assessment reject for it: the replay is refused (dead-lettered again, saying why), and opens nothing.
        await rejects(xml, /was not applied on replay: it was answered with assessment notice reject .* so the hospital holds it as rejected.*send the notice again/);
        assert.equal((await t.fhir.get(`ServiceRequest?identifier=${ids[EPISODE]}`)).body.entry?.length ?? 0, 0, 'no referral the hospital believes rejected');
        const sent = await sentFor(ids[EPISODE]);
        assert.deepEqual(sent.map((r) => r.event_code), [ADW_EVENT.assessmentReject], 'the one reject sent the first time, and no accept can follow');
        const row = await t.server.driver.get<{ status: string; detail: string }>("SELECT status, detail FROM discharge_adw_messages WHERE direction = 'in' AND header_id = ?", [ids[ASSESSMENT_HEADER]]);
        assert.equal(row?.status, 'rejected');
        assert.match(row?.detail ?? '', /not applied on replay/);
        // The hospital sends it again, as a new message: processed as usual.
        const resent = withHeaderId(xml, ids[ASSESSMENT_HEADER], crypto.randomUUID());
        await handleAdwMessage(deps(), inbound(resent));
        const { referral, task } = await episodeOf(ids[EPISODE]);
        assert.equal(triageStateOf(task), 'received');
        await triage(ctx, referral.id, { action: 'accept' });
        assert.deepEqual((await sentFor(ids[EPISODE])).map((r) => `${r.responds_to} ${r.event_code}`).sort(), [`${ids[ASSESSMENT_HEADER]} ${ADW_EVENT.assessmentReject}`, `${parseAdwMessage(resent).headerId} ${ADW_EVENT.assessmentAccept}`].sort(), 'each notice answered once');

        // A notice that got no answer (an admission notice: the spec has none) is processed on replay.
        const admission = episodeIds();
        const admissionXml = renamed(EXAMPLES['Admission-Notice'], admission).replace(/ods:V396BB/g, 'ods:LA778');
        await rejects(admissionXml, /LA778/);
        await t.fhir.put('Organization/council-778', { resourceType: 'Organization', id: 'council-778', identifier: [{ system: 'https://fhir.nhs.uk/Id/ods-organization-code', value: 'LA778' }], name: 'A Third Council' });
        await handleAdwMessage(deps(), inbound(admissionXml));
        const stay = await searchOne(t, `Encounter?identifier=${admission['2562b8b6-c0db-424a-8c6b-0fa43b0d6c2f']}`);
        assert.ok(await searchOne(t, `Communication?encounter=Encounter/${stay.id}`), 'the admission is recorded');
      });
    });

    it('as the hospital: another trust\'s notice under the episode id of a referral this service sent is rejected, and that episode is untouched (H-041)', async () => {
      await setCouncilSettings(t.server.driver, { ods: COUNCIL_ODS, assessmentDeadline: '48 working-hours', dischargeDeadline: '24 working-hours', adw: true });
      try {
        await t.fhir.put('Organization/trust-rxx03', { resourceType: 'Organization', id: 'trust-rxx03', identifier: [{ system: 'https://fhir.nhs.uk/Id/ods-organization-code', value: 'RXX03' }], name: 'Third Trust' });
        const patient = await seedPatient(t, 'barry-h41', '9449305552');
        const { referral } = await createReferral(ctx, { patient: `Patient/${patient}`, hospitalOds: HOSPITAL_ODS, councilOds: COUNCIL_ODS, reason: 'Needs support at home' });
        const identifier = referral.identifier[0].value;
        const before = await t.server.driver.get('SELECT * FROM discharge_adw_episodes WHERE referral_identifier = ?', [identifier]);
        const ids: Record<string, string> = { ...episodeIds(), [EPISODE]: identifier };
        const notice = renamed(EXAMPLES['Withdrawal-Notice'], ids).replace(/RFM8C2/g, 'RXX03');
        await assert.rejects(handleAdwMessage(deps(), inbound(notice, { from: 'THIRDTRUST01' })), (e: Error) => e instanceof AdwRejected && /is one this service sent as the hospital/.test(e.message));
        const [reject] = (await sentFor(identifier)).filter((r) => r.responds_to === ids[ASSESSMENT_HEADER]);
        assert.deepEqual([parseAdwMessage(reject.body).eventCode, reject.peer_mailbox], [ADW_EVENT.withdrawalReject, 'THIRDTRUST01']);
        assert.deepEqual(await t.server.driver.get('SELECT * FROM discharge_adw_episodes WHERE referral_identifier = ?', [identifier]), before, 'the episode is as it was');
        assert.equal((await t.fhir.get(`ServiceRequest/${referral.id}`)).body.meta.versionId, referral.meta?.versionId, 'and so is its referral');
      } finally {
        await setCouncilSettings(t.server.driver, { ods: COUNCIL_ODS, assessmentDeadline: '48 working-hours', dischargeDeadline: '24 working-hours', adw: false });
      }
    });

    it('as the hospital: an answer from a mailbox not known as the council\'s, though it names that council, is rejected and changes nothing (H-049)', async () => {
      await setCouncilSettings(t.server.driver, { ods: COUNCIL_ODS, assessmentDeadline: '48 working-hours', dischargeDeadline: '24 working-hours', adw: true });
      try {
        const directory: Record<string, string> = { COUNCIL01: COUNCIL_ODS, HOSPITAL01: HOSPITAL_ODS };
        const withMailboxes = { ctx, organisationForMailbox: async (mailbox: string) => directory[mailbox] };
        const patient = await seedPatient(t, 'barry-h49', '9449305552');
        const { referral } = await createReferral(ctx, { patient: `Patient/${patient}`, hospitalOds: HOSPITAL_ODS, councilOds: COUNCIL_ODS, reason: 'Needs support at home' });
        const identifier = referral.identifier[0].value;
        const [notice] = await sentFor(identifier);
        const accept = (): string => renamed(EXAMPLES['Assessment-Notice-Accept-Response'], { ...episodeIds(), [EPISODE]: identifier, [ASSESSMENT_HEADER]: notice.header_id });
        const before = await episodeOf(identifier);
        await assert.rejects(handleAdwMessage(withMailboxes, inbound(accept(), { from: 'STRANGER01', to: 'HOSPITAL01' })),
          (e: Error) => e instanceof AdwRejected && new RegExp(`came from mailbox STRANGER01, which is not known as ${COUNCIL_ODS}'s`).test(e.message));
        const after = await episodeOf(identifier);
        assert.equal(triageStateOf(after.task), 'received');
        assert.equal(after.task.meta.versionId, before.task.meta.versionId, 'the referral is unchanged');
        await handleAdwMessage(withMailboxes, inbound(accept(), { from: 'COUNCIL01', to: 'HOSPITAL01' }));
        assert.equal(triageStateOf((await episodeOf(identifier)).task), 'accepted', 'the council\'s own mailbox is answered as usual');
      } finally {
        await setCouncilSettings(t.server.driver, { ods: COUNCIL_ODS, assessmentDeadline: '48 working-hours', dischargeDeadline: '24 working-hours', adw: false });
      }
    });

    it('as the hospital: the assessment notice says who referred and how to reach them, and carries the person\'s contacts', async () => {
      await setCouncilSettings(t.server.driver, { ods: COUNCIL_ODS, assessmentDeadline: '48 working-hours', dischargeDeadline: '24 working-hours', adw: true });
      try {
        const patient = await seedPatient(t, 'barry-contacts', '9449305552');
        const stored = (await t.fhir.get(`Patient/${patient}`)).body;
        const daughter = { relationship: [{ text: 'Daughter' }], name: { given: ['Sally'], family: 'Jones' }, telecom: [{ system: 'phone', value: '07700 900123' }, { system: 'email', value: 'sally.jones@example.org' }] };
        const neighbour = { relationship: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0131', code: 'C', display: 'Emergency Contact' }] }], name: { text: 'Mr Patel (neighbour)' }, telecom: [{ system: 'phone', value: '0113 496 0000' }] };
        assert.equal((await t.fhir.put(`Patient/${patient}`, { ...stored, contact: [daughter, neighbour] })).status, 200);
        const { referral } = await createReferral(ctx, {
          patient: `Patient/${patient}`, hospitalOds: HOSPITAL_ODS, councilOds: COUNCIL_ODS, reason: 'Needs support at home',
          referrer: { name: 'Leticia Gulliver', phone: '0191 122 3344', email: 'leticia.gulliver@nhs.example' },
        });
        const [notice] = await sentFor(referral.identifier[0].value);
        const parsed = parseAdwMessage(notice.body);
        assert.deepEqual(parsed.author && { name: parsed.author.name, phone: parsed.author.phone, email: parsed.author.email }, { name: 'Leticia Gulliver', phone: '0191 122 3344', email: 'leticia.gulliver@nhs.example' });
        const leticia = { name: 'Leticia Gulliver', phone: '0191 122 3344', email: 'leticia.gulliver@nhs.example', organisation: HOSPITAL_ODS };
        assert.deepEqual(partiesOf(notice.body), { requester: leticia, recipient: COUNCIL_ODS, author: leticia }, 'the referrer wrote it and requested the referral, as in the example');
        assert.equal(notice.body.match(/<Practitioner>/g)?.length, 1, 'one Practitioner, referred to twice');
        assert.deepEqual(parsed.patient?.contacts, [
          { relationship: ['Daughter'], name: 'Sally Jones', phone: '07700 900123', email: 'sally.jones@example.org' },
          { relationship: ['Emergency Contact'], name: 'Mr Patel (neighbour)', phone: '0113 496 0000', email: undefined },
        ]);
      } finally {
        await setCouncilSettings(t.server.driver, { ods: COUNCIL_ODS, assessmentDeadline: '48 working-hours', dischargeDeadline: '24 working-hours', adw: false });
      }
    });

    it('as the hospital: a referral to an ADW council sends an assessment notice, and the council\'s responses update it', async () => {
      await setCouncilSettings(t.server.driver, { ods: COUNCIL_ODS, assessmentDeadline: '48 working-hours', dischargeDeadline: '24 working-hours', adw: true });
      try {
        const patient = await seedPatient(t, 'barry-h', '9449305552');
        const cases: [string, string, string][] = [
          ['Assessment-Notice-Accept-Response', 'accepted', ASSESSMENT_HEADER],
          ['Assessment-Notice-Reject-Response', 'rejected', ASSESSMENT_HEADER],
        ];
        for (const [example, state, noticeHeader] of cases) {
          const { referral } = await createReferral(ctx, { patient: `Patient/${patient}`, hospitalOds: HOSPITAL_ODS, councilOds: COUNCIL_ODS, reason: 'Needs support at home', ward: 'Location/collier-ward' });
          const identifier = referral.identifier[0].value;
          const [notice] = await sentFor(identifier);
          const parsed = parseAdwMessage(notice.body);
          assert.equal(parsed.eventCode, ADW_EVENT.assessmentNotice);
          assert.equal(parsed.referral?.identifier, identifier);
          assert.equal(parsed.patient?.nhsNumber, '9449305552');
          assert.equal(parsed.sourceOds, HOSPITAL_ODS);
          assert.equal(parsed.destinationOds, COUNCIL_ODS);
          assert.equal(parsed.encounter?.ward, 'Collier Ward');
          const response = renamed(EXAMPLES[example], { ...episodeIds(), [EPISODE]: identifier, [noticeHeader]: notice.header_id });
          await handleAdwMessage(deps(), inbound(response, { from: 'COUNCIL01', to: 'HOSPITAL01' }));
          const { task } = await episodeOf(identifier);
          assert.equal(triageStateOf(task), state, example);
          if (state === 'rejected') assert.match(task.statusReason.text, /further chest pain/);
          // The note the hospital's people see says who at the council answered (the example's author).
          const answer = await searchOne(t, `Communication?based-on=ServiceRequest/${referral.id}&category:text=${encodeURIComponent(state === 'accepted' ? 'Assessment notice accept' : 'Assessment notice reject')}`);
          assert.equal(answer?.sender?.display, 'Lee Jones', `${example}: the note names who answered`);
        }
        // Withdrawing sends a withdrawal notice with the reason code; both withdrawal responses are filed.
        for (const example of ['Withdrawal-Notice-Accept-Response', 'Withdrawal-Notice-Reject-Response']) {
          const { referral } = await createReferral(ctx, { patient: `Patient/${patient}`, hospitalOds: HOSPITAL_ODS, councilOds: COUNCIL_ODS });
          const identifier = referral.identifier[0].value;
          await withdrawReferral(ctx, referral.id, '11 The family have arranged care');
          const withdrawal = (await sentFor(identifier)).find((r) => r.event_code === ADW_EVENT.withdrawAll)!;
          assert.equal(parseAdwMessage(withdrawal.body).reason?.code, '11');
          await handleAdwMessage(deps(), inbound(renamed(EXAMPLES[example], { ...episodeIds(), [EPISODE]: identifier, [ASSESSMENT_HEADER]: withdrawal.header_id })));
          // Among the referral's notes: the delivery worker may file its own (the notice could not be sent) at any moment.
          const notes = await t.fhir.get(`Communication?based-on=ServiceRequest/${referral.id}`);
          const texts: string[] = (notes.body.entry ?? []).map((e: any) => e.resource.payload[0].contentString);
          assert.ok(texts.some((text) => /^Withdrawal (accept|reject)/.test(text)), `the withdrawal's answer was filed: ${texts.join(' | ')}`);
        }
        // Discharge notice answers: an agreement confirms readiness; a disagreement is filed with its reason.
        for (const [example, state] of [['Discharge-Notice-Accept-Response', 'ready'], ['Discharge-Notice-Reject-Response', 'accepted']]) {
          const encounter = `dn-${example.length}-${Date.now()}`;
          await t.fhir.put(`Encounter/${encounter}`, { resourceType: 'Encounter', id: encounter, status: 'in-progress', class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'IMP' }, subject: { reference: `Patient/${patient}` } });
          const { referral } = await createReferral(ctx, { patient: `Patient/${patient}`, encounter: `Encounter/${encounter}`, hospitalOds: HOSPITAL_ODS, councilOds: COUNCIL_ODS });
          const identifier = referral.identifier[0].value;
          const [notice] = await sentFor(identifier);
          await handleAdwMessage(deps(), inbound(renamed(EXAMPLES['Assessment-Notice-Accept-Response'], { ...episodeIds(), [EPISODE]: identifier, [ASSESSMENT_HEADER]: notice.header_id })));
          const stay = (await t.fhir.get(`Encounter/${encounter}`)).body;
          await t.fhir.put(`Encounter/${encounter}`, { ...stay, extension: [{ url: EXPECTED_DISCHARGE_URL, valueDateTime: '2026-05-09' }] });
          await t.server.discharge.runWorkers();
          const dischargeNotice = (await sentFor(identifier)).find((r) => r.event_code === ADW_EVENT.dischargeNotice)!;
          assert.equal(parseAdwMessage(dischargeNotice.body).encounter?.end, '2026-05-09', 'the proposed discharge date travels in Encounter.period.end');
          await handleAdwMessage(deps(), inbound(renamed(EXAMPLES[example], { ...episodeIds(), [EPISODE]: identifier, [DISCHARGE_HEADER]: dischargeNotice.header_id })));
          const { task } = await episodeOf(identifier);
          assert.equal(triageStateOf(task), state, example);
        }
      } finally {
        await setCouncilSettings(t.server.driver, { ods: COUNCIL_ODS, assessmentDeadline: '48 working-hours', dischargeDeadline: '24 working-hours', adw: false });
      }
    });


    it('the council\'s answers keep the referral\'s parties (the hospital\'s referrer requested it, the council received it) and name the social worker who answered, over the API and in the portal', async () => {
      await t.fhir.put('Practitioner/lee-jones', { resourceType: 'Practitioner', id: 'lee-jones', name: [{ text: 'Lee Jones' }], telecom: [{ system: 'phone', value: '0191 223 888' }, { system: 'email', value: 'lee.jones@council.example' }] });
      if (!(await findOrganisation(t.server.driver, COUNCIL_ODS))) await addOrganisation(t.server.driver, { ods: COUNCIL_ODS, name: 'Hebburn Council', kind: 'council' });
      await addPerson(t, { username: `lee-api-${engine}`, name: 'Lee Jones', role: 'social-worker', org: COUNCIL_ODS, fhirUser: 'Practitioner/lee-jones' });
      await addUser(t.server.driver, { username: `lee-${engine}`, name: 'Lee Jones', password: TEST_PASSWORD, fhirUser: 'Practitioner/lee-jones', memberships: [{ organisation: COUNCIL_ODS, role: 'social-worker' }] });
      const worker = { name: 'Lee Jones', phone: '0191 223 888', email: 'lee.jones@council.example', organisation: COUNCIL_ODS };

      // Accepted, then agreed to a discharge, over the FHIR API ($discharge-step) with the worker's own token.
      const api = fhirClient(t.base, { authorization: `Bearer ${await personToken(t, `lee-api-${engine}`)}` });
      const takeStep = async (identifier: string, step: string) => {
        const { task } = await episodeOf(identifier);
        const r = await api.post(`Task/${task.id}/$discharge-step`, { resourceType: 'Parameters', parameter: [{ name: 'step', valueCode: step }] }, { 'if-match': `W/"${task.meta.versionId}"` });
        assert.equal(r.status, 200, JSON.stringify(r.body));
      };
      const accepted = episodeIds();
      await handleAdwMessage(deps(), inbound(renamed(EXAMPLES['Assessment-Notice'], accepted)));
      await takeStep(accepted[EPISODE], 'accept');
      await handleAdwMessage(deps(), inbound(renamed(EXAMPLES['Discharge-Notice'], accepted)));
      await takeStep(accepted[EPISODE], 'ready');
      const answers = await sentFor(accepted[EPISODE]);
      assert.deepEqual(answers.map((r) => r.event_code), [ADW_EVENT.assessmentAccept, ADW_EVENT.dischargeAgreement]);
      for (const answer of answers) {
        assert.deepEqual(partiesOf(answer.body), { requester: REFERRER, recipient: COUNCIL_ODS, author: worker }, answer.event_code);
        assert.deepEqual(receiverOf(answer.body), { type: 'Practitioner', isRequester: true }, 'addressed to the referrer, as the examples\' answers are');
      }
      assert.equal(parseAdwMessage(answers[0].body).response?.identifier, accepted[ASSESSMENT_HEADER], 'still answering the notice');

      // Rejected in the portal by the same worker.
      const rejected = episodeIds();
      await handleAdwMessage(deps(), inbound(renamed(EXAMPLES['Assessment-Notice'], rejected)));
      const { referral } = await episodeOf(rejected[EPISODE]);
      const cookie = await signIn(t, `lee-${engine}`);
      const path = `/discharge/referrals/${referral.id}`;
      const html = await (await fetch(`${t.url}${path}`, { headers: { cookie } })).text();
      const posted = await fetch(`${t.url}${path}/triage`, {
        method: 'POST', redirect: 'manual', headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ _csrf: csrfTokenIn(html), version: /name="version" value="([^"]*)"/.exec(html)![1], decision: 'reject', details: 'The person lives in another council area' }).toString(),
      });
      assert.equal(posted.status, 303);
      const [reject] = await sentFor(rejected[EPISODE]);
      assert.equal(reject.event_code, ADW_EVENT.assessmentReject);
      assert.deepEqual(partiesOf(reject.body), { requester: REFERRER, recipient: COUNCIL_ODS, author: worker });
      assert.deepEqual(receiverOf(reject.body), { type: 'Practitioner', isRequester: true });
      assert.equal(parseAdwMessage(reject.body).reason?.text, 'The person lives in another council area');
    });

    it('an answer no person gave (the workflow, an integrator\'s system) names no author, and still the referral\'s own parties', async () => {
      const byWorkflow = episodeIds();
      await handleAdwMessage(deps(), inbound(renamed(EXAMPLES['Assessment-Notice'], byWorkflow)));
      await triage(ctx, (await episodeOf(byWorkflow[EPISODE])).referral.id, { action: 'accept' });
      const bySystem = episodeIds();
      await handleAdwMessage(deps(), inbound(renamed(EXAMPLES['Assessment-Notice'], bySystem)));
      const { task } = await episodeOf(bySystem[EPISODE]);
      const r = await t.fhir.post(`Task/${task.id}/$discharge-step`, { resourceType: 'Parameters', parameter: [{ name: 'step', valueCode: 'reject' }, { name: 'text', valueString: 'Not ours.' }] }, { 'if-match': `W/"${task.meta.versionId}"` });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      for (const ids of [byWorkflow, bySystem]) {
        const [answer] = await sentFor(ids[EPISODE]);
        assert.deepEqual(partiesOf(answer.body), { requester: REFERRER, recipient: COUNCIL_ODS, author: undefined }, answer.event_code);
        assert.deepEqual(receiverOf(answer.body), { type: 'Practitioner', isRequester: true });
        assert.doesNotMatch(answer.body, /<author>/);
      }
    });
  });
}
