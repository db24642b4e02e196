// Receives ADW messages and maps them to the discharge model: one episode (ServiceRequest + triage Task)
// per ReferralRequest.identifier; a notice under an id that is already another trust's, another person's or
// another council's episode is rejected, leaving that episode as it was (H-041). Each message is handled in
// one transaction that first claims its (sending mailbox, MessageHeader.id, event) key, so a message
// delivered twice is applied once, even by two nodes at once, as is one a trust sends again from another
// mailbox messaging links to it, while another sender's message that happens to carry the same
// MessageHeader.id is a message of its own (H-048).
// A withdrawal that comes before its notice creates the episode already withdrawn; the late notice then
// changes nothing. Anything unusable is rejected back to the sender (when the spec has a reject for it) and
// thrown as AdwRejected, which the wiring turns into messaging's PermanentFailure (dead-letter queue). A
// response to a notice this service never sent is thrown as AdwNotForThisService before any check; one to a
// notice it sent is rejected unless it comes from the council the notice was sent to (H-049).
// Given messaging's transaction, the message is handled in it (one commit for a batch of messages) and a
// rejection dead-letters it through that transaction, keeping the rejection queued to the sender.
import { escapeSearchValue, isValidNhsNumber, NHS_NUMBER_SYSTEM, type SqlExecutor } from '../../record/index.ts';
import { clock, inRecordTransaction, inSharedTransaction, type DischargeContext, type FhirResource, type RecordSession, type Referral } from '../recordSession.ts';
import {
  applyStepIn, cancelDeadlines, councilDeadline, createReferralIn, derivedId, fileCommunication, loadReferral, organisationByOds, settleOverdueIn, withdrawIn, type ConsentAnswer, type StepChange,
} from '../referrals.ts';
import { ALLOWED_FROM, AWAITING_RESPONSE, EXPECTED_DISCHARGE_URL, FINAL_STATES, extensionDate, triageStateOf, withExtensionDate } from '../model.ts';
import { deadlineAfter } from '../calendar.ts';
import type { AdwMessage } from './parse.ts';
import { readAdw, type ReadAdw } from './reader.ts';
import {
  ANSWERS, ENCOUNTER_ID_SYSTEM, EVENT, EVENT_NAMES, LOCAL_PATIENT_ID_SYSTEM, NOTICES, RESPONSES_TO, WITHDRAWALS, WITHDRAWAL_REASONS,
  WITHDRAWAL_REASON_SYSTEM, isEventCode, type EventCode,
} from './codes.ts';
import { buildAdwMessage } from './build.ts';
import { recordVerificationExtension } from './nhsNumberStatus.ts';
import { episodeByIdentifier, episodeWith, insertEpisode, queueOutbound, queueResponse, type AdwEpisode } from './outbound.ts';
import type { InboundMessage, InboundTransaction } from '../messagingPort.ts';

/** The message cannot be processed; its text is the reason (sent back, and kept with the dead letter). */
export class AdwRejected extends Error {}

/**
 * A response to a notice this service never sent: someone else's answer (a mailbox hosted here whose
 * organisation works through its own MESH client). Not checked, applied or answered here; the wiring turns
 * it into messaging's NotForThisService, which holds it for that client (or dead-letters it).
 */
export class AdwNotForThisService extends AdwRejected {}

export interface AdwInboundDeps {
  /** The workflow's context, acting as the system client carebridge-discharge. */
  ctx: DischargeContext;
  /** Which organisation owns a mailbox (messaging's directory), to catch a message sent as someone else. */
  organisationForMailbox?: (mailbox: string) => Promise<string | undefined>;
}

const ODS_PATTERN = /^[A-Z0-9]{3,10}$/;

/**
 * Handles one inbound ADW message (`read` already, when it was read before its transaction). Resolves
 * when it is applied (or was already); throws AdwRejected otherwise, except that in messaging's
 * `transaction` a rejection is committed and dead-lettered through it.
 */
export async function handleAdwMessage(given: AdwInboundDeps, msg: InboundMessage, transaction?: InboundTransaction, read: ReadAdw = readAdw(msg.body)): Promise<void> {
  const deps = mailboxesLookedUpOnce(given);
  if (read.unreadable !== undefined) throw new AdwRejected(`ADW message ${msg.messageId} from ${msg.from}: ${read.unreadable}`);
  const m = read.message;
  if (!isEventCode(m.eventCode)) {
    throw new AdwRejected(`MessageHeader.event ${m.eventCode} (MessageHeader.id ${m.headerId}) is not one of the ADW event codes; the spec has no response for it, so nothing was sent back.`);
  }
  // Before any check: another system's answer is not ours to judge (its patient may be one we would refuse).
  if (ANSWERS[m.eventCode] && m.response?.identifier && !(await sentNotice(transaction?.tx ?? deps.ctx.driver, m))) throw notOurNotice(m);
  let problems: string[] = [];
  let refused = '';
  const step = async (session: RecordSession) => {
    problems = await checkMessage(deps, session, msg, m);
    const { claim, claimedFrom } = await claimMessage(deps, session, m, msg, problems.length ? 'rejected' : 'processing');
    if (claim === 'duplicate') return 'duplicate';
    if (problems.length) {
      if (claim === 'new') await rejectNotice(session, deps.ctx, m, msg, problems.join(' '));
      return 'rejected';
    }
    if (claim === 'retry') {
      // One notice, one answer: the hospital holds a notice we rejected as rejected, so a replay must not
      // open work it does not know about and answer the same notice a second time, the other way.
      refused = await answeredWithReject(session, m, claimedFrom);
      if (refused) {
        await setStatus(session, m, msg, 'rejected', refused);
        return 'refused';
      }
    }
    if (ANSWERS[m.eventCode]) await applyResponse(session, deps.ctx, m, msg);
    else await applyNotice(session, deps.ctx, m, msg);
    return 'applied';
  };
  const outcome = transaction ? await inSharedTransaction(deps.ctx, 'adw-inbound', transaction, step) : await inRecordTransaction(deps.ctx, 'adw-inbound', step);
  if (outcome !== 'rejected' && outcome !== 'refused') return;
  const reason = outcome === 'refused' ? refused : `${EVENT_NAMES[m.eventCode as EventCode]} ${m.headerId} was rejected: ${problems.join(' ')}`;
  if (transaction) transaction.deadLetter(reason);
  else throw new AdwRejected(reason);
}

/**
 * Claims the message's key in this transaction. 'new' the first time; 'retry' for a message rejected
 * before (replayed from the dead-letter queue: it is checked again, but not rejected to the sender twice);
 * 'duplicate' when it was already applied. `claimedFrom` is every mailbox this message was claimed from
 * (its own first), where a reject of it would have gone.
 *
 * The key is (sending mailbox, MessageHeader.id, event): each sender's system chooses its own ids, and two
 * trusts can send the same one (both counting from 1, or a copied template); keyed by the id alone, the
 * second trust's notice was taken for a copy of the first's and never processed (H-048). The sender is
 * the MESH mailbox it came from, not the source ODS code the message gives: MESH authenticated the mailbox
 * (the built-in mailbox's NHSMESH sign-in, an external MESH's mex-From), every message has one, and a
 * message cannot claim another's key by naming that sender's ODS code. A copy (MESH delivers at least
 * once; a trust's system resends) from the same mailbox finds its own key.
 *
 * A trust may resend from another of its mailboxes. When messaging links the sending mailbox to an
 * organisation, that organisation is the sender (checkMessage refuses a message whose source is another),
 * so an earlier claim of the same MessageHeader.id and event, from another mailbox linked to the same
 * organisation and naming it as the source, is this message's too: already applied, this one is a
 * duplicate; rejected, it is a replay (and a reject sent to that mailbox answered it).
 * The table's key stays per mailbox (every later lookup of the message uses its own mailbox): a copy that
 * is a replay claims its own key, and a duplicate claims nothing. Two copies from two of the trust's
 * mailboxes do not conflict on the key, so on PostgreSQL (two app nodes, or two inbox workers) the check
 * and the claim are made under a lock on (organisation, MessageHeader.id, event) held until the
 * transaction ends: the second waits for the first to commit, then finds its claim. SQLite's one writer
 * already runs them one at a time. A mailbox messaging does not link is a sender of its own, as before.
 */
async function claimMessage(deps: AdwInboundDeps, session: RecordSession, m: AdwMessage, msg: InboundMessage, status: string): Promise<{ claim: 'new' | 'retry' | 'duplicate'; claimedFrom: string[] }> {
  const earlier = await claimsByTheSameOrganisation(deps, session, m, msg);
  const claimedFrom = [msg.from, ...earlier.map((c) => c.sender_mailbox)];
  if (earlier.some((c) => c.status !== 'rejected')) return { claim: 'duplicate', claimedFrom };
  const inserted = await session.tx.run(
    `INSERT INTO discharge_adw_messages (direction, header_id, event_code, sender_mailbox, referral_identifier, responds_to, status, peer_ods, peer_mailbox, mesh_message_id, at_ms)
     VALUES ('in', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (direction, header_id, event_code, sender_mailbox) DO NOTHING`,
    [m.headerId, m.eventCode, msg.from, m.referral?.identifier ?? null, m.response?.identifier ?? null, status, m.sourceOds ?? null, msg.from, msg.messageId, msg.receivedAt],
  );
  if (inserted) return { claim: earlier.length ? 'retry' : 'new', claimedFrom };
  const key = [m.headerId, m.eventCode, msg.from];
  const row = await session.tx.get<{ status: string }>("SELECT status FROM discharge_adw_messages WHERE direction = 'in' AND header_id = ? AND event_code = ? AND sender_mailbox = ?", key);
  if (row?.status !== 'rejected') return { claim: 'duplicate', claimedFrom };
  await session.tx.run("UPDATE discharge_adw_messages SET status = ? WHERE direction = 'in' AND header_id = ? AND event_code = ? AND sender_mailbox = ?", [status, ...key]);
  return { claim: 'retry', claimedFrom };
}

/**
 * The claims of this MessageHeader.id and event from the sender's other mailboxes: messages that named the
 * same organisation as their source, from mailboxes messaging links to it, as it links this one (none
 * when this mailbox is not linked, or the message names another source, which checkMessage rejects). The
 * earlier message must have named it too: a mailbox since moved to another organisation did not send
 * that organisation's messages. On PostgreSQL, the lock on (organisation, MessageHeader.id, event) is
 * taken first and held until the transaction ends.
 */
async function claimsByTheSameOrganisation(deps: AdwInboundDeps, session: RecordSession, m: AdwMessage, msg: InboundMessage): Promise<{ sender_mailbox: string; status: string }[]> {
  const organisation = await linkedOrganisation(deps, msg.from);
  if (!organisation || organisation !== m.sourceOds) return [];
  if (deps.ctx.driver.dialect === 'postgres') {
    await session.tx.get('SELECT pg_advisory_xact_lock(hashtext(?))', [`discharge_adw_messages in ${JSON.stringify([organisation, m.headerId, m.eventCode])}`]);
  }
  const others = await session.tx.all<{ sender_mailbox: string; status: string }>(
    "SELECT sender_mailbox, status FROM discharge_adw_messages WHERE direction = 'in' AND header_id = ? AND event_code = ? AND peer_ods = ? AND sender_mailbox <> ?",
    [m.headerId, m.eventCode, organisation, msg.from],
  );
  const same: { sender_mailbox: string; status: string }[] = [];
  for (const other of others) if (await linkedOrganisation(deps, other.sender_mailbox) === organisation) same.push(other);
  return same;
}

/**
 * The checks and the claim each ask who owns the sending mailbox: one message's handling asks messaging's
 * directory once per mailbox (a link made meanwhile counts from the next message).
 */
function mailboxesLookedUpOnce(deps: AdwInboundDeps): AdwInboundDeps {
  const lookup = deps.organisationForMailbox;
  if (!lookup) return deps;
  const known = new Map<string, Promise<string | undefined>>();
  return {
    ...deps,
    organisationForMailbox: (mailbox) => {
      let owner = known.get(mailbox);
      if (!owner) known.set(mailbox, (owner = lookup(mailbox)));
      return owner;
    },
  };
}

/** The organisation messaging links a mailbox to, as an ODS code; undefined when it links none. */
async function linkedOrganisation(deps: AdwInboundDeps, mailbox: string): Promise<string | undefined> {
  return (await deps.organisationForMailbox?.(mailbox))?.toUpperCase();
}

/**
 * Why a replayed notice is not applied, when it was answered with a reject the first time (empty when it
 * was not: an admission notice, or a reject that could not be addressed, is applied on replay as before).
 * `claimedFrom` is where it was claimed from: its own mailbox, and the sender's other mailboxes its copies came from.
 */
async function answeredWithReject(session: RecordSession, m: AdwMessage, claimedFrom: string[]): Promise<string> {
  const reject = RESPONSES_TO[m.eventCode]?.reject;
  if (!reject) return '';
  // A reject goes back to the mailbox the notice came from: one sent to another sender's mailbox answered
  // that sender's notice of the same MessageHeader.id, not this one (H-048).
  const sent = await session.tx.get<{ header_id: string; at_ms: number | string }>(
    `SELECT header_id, at_ms FROM discharge_adw_messages WHERE direction = 'out' AND responds_to = ? AND event_code = ? AND peer_mailbox IN (${claimedFrom.map(() => '?').join(', ')}) ORDER BY at_ms LIMIT 1`,
    [m.headerId, reject, ...claimedFrom],
  );
  if (!sent) return '';
  const name = EVENT_NAMES[m.eventCode as EventCode];
  return `${name} ${m.headerId} was not applied on replay: it was answered with ${EVENT_NAMES[reject].toLowerCase()} ${sent.header_id} on ${new Date(Number(sent.at_ms)).toISOString().slice(0, 10)}, `
    + 'so the hospital holds it as rejected. Applying it now would open work the hospital does not know about and answer the same notice twice. '
    + 'Ask the hospital to send the notice again (a new message); that one is processed as usual.';
}

async function setStatus(session: RecordSession, m: AdwMessage, msg: InboundMessage, status: string, detail?: string): Promise<void> {
  await session.tx.run("UPDATE discharge_adw_messages SET status = ?, detail = ? WHERE direction = 'in' AND header_id = ? AND event_code = ? AND sender_mailbox = ?", [status, detail ?? null, m.headerId, m.eventCode, msg.from]);
}

/** Everything wrong with a message, as sentences (empty when it can be processed). */
async function checkMessage(deps: AdwInboundDeps, session: RecordSession, msg: InboundMessage, m: AdwMessage): Promise<string[]> {
  const problems: string[] = [];
  const event = m.eventCode as EventCode;
  for (const [what, ods] of [['source', m.sourceOds], ['destination', m.destinationOds]] as const) {
    if (!ods) problems.push(`MessageHeader.${what}.endpoint must be urn:nhs-uk:addressing:ods:<ODS code>.`);
    else if (!ODS_PATTERN.test(ods)) problems.push(`MessageHeader.${what}.endpoint: '${ods}' is not a valid ODS code.`);
  }
  if (m.sourceOds && m.destinationOds && ODS_PATTERN.test(m.sourceOds) && ODS_PATTERN.test(m.destinationOds)) {
    const known = { source: await organisationByOds(session, m.sourceOds), destination: await organisationByOds(session, m.destinationOds) };
    if (!known.destination) problems.push(`The destination ODS code ${m.destinationOds} is not an organisation this service knows.`);
    if (!known.source) problems.push(`The source ODS code ${m.sourceOds} is not an organisation this service knows.`);
    const stayTaken = known.source && !ANSWERS[event] ? await stayOfAnotherPerson(session, m, known.source) : '';
    if (stayTaken) problems.push(stayTaken);
    if (known.source && !ANSWERS[event] && event !== EVENT.admissionNotice) problems.push(...await episodeOfAnother(session, m));
    if (deps.organisationForMailbox) {
      const sender = await deps.organisationForMailbox(msg.from);
      if (sender && sender.toUpperCase() !== m.sourceOds) problems.push(`It came from mailbox ${msg.from}, which belongs to ${sender}, not to the source ${m.sourceOds}.`);
      const receiver = await deps.organisationForMailbox(msg.to);
      if (receiver && receiver.toUpperCase() !== m.destinationOds) problems.push(`It was sent to mailbox ${msg.to}, which belongs to ${receiver}, not to the destination ${m.destinationOds}.`);
    }
  }
  if (ANSWERS[event] && m.response?.identifier) problems.push(...await answerFromElsewhere(deps, session, msg, m));
  if (event !== EVENT.admissionNotice && !m.referral?.identifier) problems.push('ReferralRequest.identifier (the episode id) is missing.');
  if (ANSWERS[event] && !m.response?.identifier) problems.push('MessageHeader.response.identifier (the notice answered) is missing.');
  const p = m.patient;
  if (!p) problems.push('The message has no Patient.');
  else {
    if (!p.nhsNumber) problems.push('The Patient has no NHS number.');
    else if (!isValidNhsNumber(p.nhsNumber)) problems.push(`The Patient's NHS number ${p.nhsNumber} is not valid (wrong length or check digit).`);
    if (event === EVENT.assessmentNotice || event === EVENT.admissionNotice) {
      if (!p.family) problems.push('The Patient has no family name.');
      if (!p.birthDate) problems.push('The Patient has no birth date.');
      if (!p.address) problems.push('The Patient has no address.');
    }
    if (p.address) {
      if (p.address.lines.some((l) => !l.trim())) problems.push('The Patient\'s address has an empty line; leave out lines that have nothing in them.');
      if (!p.address.lines.slice(0, 2).some((l) => l.trim())) problems.push('The Patient\'s address needs address line 1 or line 2.');
    }
  }
  if (WITHDRAWALS.has(event)) {
    if (m.reason?.system !== WITHDRAWAL_REASON_SYSTEM || !WITHDRAWAL_REASONS[m.reason.code ?? '']) {
      problems.push(`A withdrawal needs a reason code 01–13 from ${WITHDRAWAL_REASON_SYSTEM}${m.reason?.code ? `, not '${m.reason.code}'` : ''}.`);
    }
  }
  return problems;
}

/** Tells the sender why their notice was rejected, when the spec has a reject response for it. */
async function rejectNotice(session: RecordSession, ctx: DischargeContext, m: AdwMessage, msg: InboundMessage, reason: string): Promise<void> {
  const events = RESPONSES_TO[m.eventCode];
  await setStatus(session, m, msg, 'rejected', reason);
  if (!events || !m.sourceOds || !ODS_PATTERN.test(m.sourceOds) || !m.destinationOds || !ODS_PATTERN.test(m.destinationOds)) return;
  const now = clock(ctx);
  const built = buildAdwMessage({
    event: events.reject, sourceOds: m.destinationOds, destinationOds: m.sourceOds, referralIdentifier: m.referral?.identifier ?? '', inResponseTo: m.headerId,
    reasonText: reason, patient: m.patient ?? { given: [], contacts: [] }, encounter: m.encounter, ...(m.author ? { referrer: m.author } : {}),
    hospital: { ods: m.sourceOds, name: m.hospital?.name }, council: { ods: m.destinationOds, name: m.council?.name }, now,
  });
  await queueOutbound(session, { event: events.reject, headerId: built.headerId, xml: built.xml, referralIdentifier: m.referral?.identifier ?? '', respondsTo: m.headerId, ourOds: m.destinationOds, peerOds: m.sourceOds, peerMailbox: msg.from, detail: reason }, now);
}

// ---- notices (we are the council) ----------------------------------------------------------------------

async function applyNotice(session: RecordSession, ctx: DischargeContext, m: AdwMessage, msg: InboundMessage): Promise<void> {
  const event = m.eventCode as EventCode;
  const patient = await upsertPatient(session, m);
  const hospital = (await organisationByOds(session, m.sourceOds!))!;
  const council = (await organisationByOds(session, m.destinationOds!))!;
  const encounter = await upsertEncounter(session, m, patient, hospital, sentTime(m, msg));
  if (event === EVENT.admissionNotice) {
    await session.put({
      resourceType: 'Communication', id: session.newId(), status: 'completed',
      category: [{ text: 'Admission notification' }],
      subject: { reference: `Patient/${patient.id}` }, encounter: { reference: `Encounter/${encounter.id}` },
      sent: m.timestamp ?? new Date(msg.receivedAt).toISOString(), received: new Date(msg.receivedAt).toISOString(),
      sender: { reference: `Organization/${hospital.id}`, display: hospital.name }, recipient: [{ reference: `Organization/${council.id}`, display: council.name }],
      payload: [{ contentString: `${patient.name?.[0]?.given?.join(' ') ?? ''} ${patient.name?.[0]?.family ?? ''} was admitted to ${hospital.name ?? m.sourceOds}${m.encounter?.start ? ` on ${m.encounter.start}` : ''}.`.trim() }],
    });
    await setStatus(session, m, msg, 'processed');
    return;
  }
  const identifier = m.referral!.identifier!;
  // One episode per id (H-041): checkMessage refused a notice whose id is already another trust's, another
  // person's or another council's episode.
  let episode = await episodeByIdentifier(session.tx, identifier);
  let opened: Referral | undefined;
  if (!episode) ({ episode, opened } = await openEpisode(session, ctx, m, msg, patient, encounter));
  else {
    // Kept so no path can apply one trust's or person's notice to another's episode, or send its answers elsewhere.
    if (episode.role !== 'council' || episode.peer_ods !== m.sourceOds || episode.our_ods !== m.destinationOds || episode.patient_id !== patient.id) {
      throw new AdwRejected(`Episode ${identifier} is another trust's, another person's or another council's; ${EVENT_NAMES[event]} ${m.headerId} from ${m.sourceOds} was not applied.`);
    }
    // The same trust, writing from another of its mailboxes: answers go where it now writes from.
    if (episode.peer_mailbox !== msg.from) await session.tx.run('UPDATE discharge_adw_episodes SET peer_mailbox = ? WHERE referral_identifier = ?', [msg.from, identifier]);
  }
  episode = { ...episode, peer_mailbox: msg.from };

  if (WITHDRAWALS.has(event)) return applyWithdrawal(session, ctx, m, msg, episode);
  if (episode.withdrawn) {
    // The withdrawal came first: the notice arrived late and asks for nothing any more.
    await setStatus(session, m, msg, 'superseded', 'The episode was already withdrawn.');
    return;
  }
  if (event === EVENT.dischargeNotice && withdrawnAhead(episode, m, msg)) return recordWithdrawnDischargeNotice(session, m, msg, episode);
  // A referral opened just now is as it was written: no need to read it back.
  const current = opened ?? await loadReferral(session, episode.service_request_id);
  const state = triageStateOf(current.task) ?? 'received';
  if (state === 'rejected' && RESPONSES_TO[event]) return answerAfterRejection(session, ctx, m, msg, episode, current);
  if (FINAL_STATES.has(state)) {
    await setStatus(session, m, msg, 'superseded', `The referral is already ${state}.`);
    return;
  }
  await setStatus(session, m, msg, 'awaiting-response');
  if (event === EVENT.dischargeNotice) await applyDischargeNotice(session, ctx, m, msg, episode, current.referral, current.task);
  else if (event === EVENT.assessmentNotice && !opened) await applyNewerAssessmentNotice(session, ctx, m, msg, episode, current);
}

/**
 * A further assessment notice for an episode already open: it replaces the one before (only the latest is
 * answered, so none waits for ever), and what it changes (reason, needs, expected discharge date) is
 * copied onto the referral with a note both sides see. When the council has already accepted the
 * assessment, the new notice is answered with an accept saying so.
 */
async function applyNewerAssessmentNotice(session: RecordSession, ctx: DischargeContext, m: AdwMessage, msg: InboundMessage, episode: AdwEpisode, current: Referral): Promise<void> {
  await session.tx.run(
    "UPDATE discharge_adw_messages SET status = 'superseded', detail = ? WHERE direction = 'in' AND referral_identifier = ? AND peer_ods = ? AND event_code = ? AND status = 'awaiting-response' AND header_id <> ?",
    [`Replaced by assessment notice ${m.headerId}.`, episode.referral_identifier, episode.peer_ods, EVENT.assessmentNotice, m.headerId],
  );
  let referral = current.referral;
  const changes: string[] = [];
  const reason = m.referral?.reason;
  if (reason && reason !== referral.reasonCode?.[0]?.text) {
    changes.push(`reason for referral now "${reason}" (was "${referral.reasonCode?.[0]?.text ?? 'not given'}")`);
    referral = { ...referral, reasonCode: [{ text: reason }] };
  }
  const needs = m.referral?.description;
  const before = (referral.note ?? []).map((n: any) => n.text).join('\n');
  if (needs && needs !== before) {
    changes.push(`needs now "${needs}"`);
    referral = { ...referral, note: [{ text: needs }] };
  }
  const expected = m.encounter?.end;
  if (expected && expected !== extensionDate(referral, EXPECTED_DISCHARGE_URL)) {
    changes.push(`expected discharge date now ${expected} (was ${extensionDate(referral, EXPECTED_DISCHARGE_URL) ?? 'not given'})`);
    referral = withExtensionDate(referral, EXPECTED_DISCHARGE_URL, expected);
  }
  if (changes.length) referral = await session.put(referral, current.referral.meta?.versionId);
  await fileCommunication(session, { referral, task: current.task }, {
    category: 'Assessment notice updated',
    text: `The hospital sent a new assessment notice for this referral: ${changes.length ? changes.join('; ') : 'nothing the referral records changed'}.`,
  }, undefined, sentTime(m, msg));
  const state = triageStateOf(current.task) ?? 'received';
  if (!AWAITING_RESPONSE.has(state)) {
    const on = current.task.executionPeriod?.start ? String(current.task.executionPeriod.start).slice(0, 10) : 'an earlier date';
    await queueResponse(session, ctx, episode, referral, { header_id: m.headerId, event_code: m.eventCode, sender_mailbox: msg.from, peer_mailbox: msg.from }, true,
      `The council accepted this assessment on ${on}; the changes in this notice are recorded on the referral.`);
  }
}

async function openEpisode(session: RecordSession, ctx: DischargeContext, m: AdwMessage, msg: InboundMessage, patient: FhirResource, encounter: FhirResource): Promise<{ episode: AdwEpisode; opened: Referral }> {
  const created = await createReferralIn(session, ctx, {
    patient: `Patient/${patient.id}`,
    encounter: `Encounter/${encounter.id}`,
    hospitalOds: m.sourceOds!,
    councilOds: m.destinationOds!,
    ...(currentWard(encounter) ? { ward: currentWard(encounter) } : {}),
    referrer: { name: m.author?.name, phone: m.author?.phone, email: m.author?.email },
    reason: m.referral?.reason,
    needs: m.referral?.description ? [m.referral.description] : undefined,
    expectedDischarge: m.encounter?.end,
    consent: m.eventCode === EVENT.assessmentNotice ? consentAnswers(m) : undefined,
    identifier: m.referral!.identifier!,
    receivedAt: msg.receivedAt,
  }, 'received', patient);
  const episode: AdwEpisode = {
    referral_identifier: m.referral!.identifier!, role: 'council', service_request_id: created.referral.id, task_id: created.task.id,
    patient_id: patient.id, our_ods: m.destinationOds!, peer_ods: m.sourceOds!, peer_mailbox: msg.from, withdrawn: 0,
  };
  await insertEpisode(session.tx, episode, clock(ctx));
  return { episode, opened: created };
}

/** The ward the stay says the person is on now (its last active location): the earlier ones are history. */
function currentWard(encounter: FhirResource): string | undefined {
  const active = ((encounter.location ?? []) as StayLocation[]).filter((l) => l.status === 'active');
  return active[active.length - 1]?.location?.reference;
}

function consentAnswers(m: AdwMessage): ConsentAnswer[] {
  return m.answers.map((a, i) => ({
    linkId: `adw-${i + 1}`,
    text: a.text,
    ...(a.coding?.code ? { code: a.coding.code, system: a.coding.system, display: a.coding.display } : { value: a.value ?? '' }),
  }));
}

async function applyDischargeNotice(session: RecordSession, ctx: DischargeContext, m: AdwMessage, msg: InboundMessage, episode: AdwEpisode, referral: FhirResource, task: FhirResource): Promise<void> {
  const proposed = m.encounter?.end;
  const rule = await councilDeadline(session, episode.our_ods, 'discharge', ctx.deadlines?.discharge);
  const due = deadlineAfter(msg.receivedAt, rule);
  await session.put(withExtensionDate(referral, EXPECTED_DISCHARGE_URL, proposed), referral.meta?.versionId);
  if (m.answers.length) {
    await session.put({
      resourceType: 'QuestionnaireResponse', id: derivedId('discharge-consent', referral.id), status: 'completed',
      basedOn: [{ reference: `ServiceRequest/${referral.id}` }], subject: referral.subject, ...(referral.encounter ? { encounter: referral.encounter } : {}),
      authored: new Date(msg.receivedAt).toISOString(),
      item: consentAnswers(m).map((a) => ({ linkId: a.linkId, text: a.text, answer: [a.code ? { valueCoding: { system: a.system, code: a.code, display: a.display } } : { valueString: a.value }] })),
    });
  }
  await session.put({
    resourceType: 'Communication', id: session.newId(), status: 'completed', category: [{ text: 'Discharge notice' }],
    basedOn: [{ reference: `ServiceRequest/${referral.id}` }], partOf: [{ reference: `Task/${task.id}` }], subject: referral.subject,
    sent: m.timestamp ?? new Date(msg.receivedAt).toISOString(),
    payload: [{ contentString: `Discharge notice: proposed discharge date ${proposed ?? 'not given'}; the council's answer is due by ${new Date(due).toISOString()}.` }],
  });
  // A new discharge notice replaces the one before (a new proposed date): only the latest is answered.
  await session.tx.run("UPDATE discharge_adw_messages SET status = 'superseded' WHERE direction = 'in' AND referral_identifier = ? AND peer_ods = ? AND event_code = ? AND status = 'awaiting-response' AND header_id <> ?", [episode.referral_identifier, episode.peer_ods, EVENT.dischargeNotice, m.headerId]);
  await cancelDeadlines(session, referral.id, 'discharge-notice');
  await session.tx.run(
    'INSERT INTO discharge_timers (id, kind, referral_id, task_id, message_key, due_ms, status, created_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
    [session.newId(), 'discharge-notice', referral.id, task.id, m.headerId, due, 'pending', clock(ctx)],
  );
}

/**
 * A notice that needs an answer, on a referral the council has rejected: the hospital still waits for one.
 * It is answered with its reject response (for a discharge notice, a disagreement) saying when and why the
 * referral was rejected, and a note on the referral shows it to both sides. No date, no deadline.
 */
async function answerAfterRejection(session: RecordSession, ctx: DischargeContext, m: AdwMessage, msg: InboundMessage, episode: AdwEpisode, current: Referral): Promise<void> {
  const event = m.eventCode as EventCode;
  const why = current.task.statusReason?.text;
  const on = current.task.lastModified ? String(current.task.lastModified).slice(0, 10) : 'an earlier date';
  const reason = `The referral was rejected on ${on}${why ? `: ${why}` : '.'}`;
  await setStatus(session, m, msg, 'awaiting-response');
  await queueResponse(session, ctx, episode, current.referral, { header_id: m.headerId, event_code: event, sender_mailbox: msg.from, peer_mailbox: msg.from }, false, reason);
  const answer = EVENT_NAMES[RESPONSES_TO[event].reject].toLowerCase();
  const proposed = event === EVENT.dischargeNotice ? ` (proposed discharge date ${m.encounter?.end ?? 'not given'})` : '';
  await fileCommunication(session, current, {
    category: EVENT_NAMES[event],
    text: `${EVENT_NAMES[event]}${proposed} received after the referral was rejected; answered with a ${answer}: ${reason}`,
  }, undefined, sentTime(m, msg));
}

/** A message's MessageHeader.timestamp as sent, or (without one) when it was received, for the notes it files. */
function sentTime(m: AdwMessage, msg: InboundMessage): string {
  return m.timestamp ?? new Date(msg.receivedAt).toISOString();
}

/** When a message was sent: its MessageHeader.timestamp, or (without one) when it was received. */
function sentAt(m: AdwMessage, msg: InboundMessage): number {
  const stamped = m.timestamp ? Date.parse(m.timestamp) : NaN;
  return Number.isNaN(stamped) ? msg.receivedAt : stamped;
}

/**
 * Whether the hospital withdrew this discharge notice before it got here: a 'withdraw discharge notice
 * only' sent after it was received first (MESH does not keep order), so it found nothing to withdraw then.
 */
function withdrawnAhead(episode: AdwEpisode, m: AdwMessage, msg: InboundMessage): boolean {
  const withdrawnAt = episode.discharge_withdrawn_at ? Date.parse(episode.discharge_withdrawn_at) : NaN;
  return !Number.isNaN(withdrawnAt) && sentAt(m, msg) <= withdrawnAt;
}

/** A discharge notice its withdrawal overtook: kept, and shown to staff, as withdrawn; no date, no deadline, nothing owed. */
async function recordWithdrawnDischargeNotice(session: RecordSession, m: AdwMessage, msg: InboundMessage, episode: AdwEpisode): Promise<void> {
  const why = `The hospital withdrew this discharge notice (withdrawal sent ${episode.discharge_withdrawn_at}) before it arrived.`;
  await setStatus(session, m, msg, 'withdrawn', why);
  await fileCommunication(session, await loadReferral(session, episode.service_request_id), {
    category: 'Discharge notice',
    text: `Discharge notice (proposed discharge date ${m.encounter?.end ?? 'not given'}) arrived after the hospital had withdrawn it; it needs no answer and the expected discharge date is unchanged.`,
  }, undefined, sentTime(m, msg));
}

async function applyWithdrawal(session: RecordSession, ctx: DischargeContext, m: AdwMessage, msg: InboundMessage, episode: AdwEpisode): Promise<void> {
  const reason = `${m.reason!.code} ${WITHDRAWAL_REASONS[m.reason!.code!]}${m.reason?.text ? `: ${m.reason.text}` : ''}`;
  const current = await loadReferral(session, episode.service_request_id);
  const state = triageStateOf(current.task) ?? 'received';
  const onlyDischarge = m.eventCode === EVENT.withdrawDischarge;
  let referral = current.referral;
  if (onlyDischarge) {
    // The assessment goes on; only the proposed discharge (and the answer owed to it) is withdrawn,
    // including a discharge notice sent before this withdrawal that has not arrived yet.
    const at = new Date(sentAt(m, msg)).toISOString();
    if (!episode.discharge_withdrawn_at || Date.parse(episode.discharge_withdrawn_at) < Date.parse(at)) {
      await session.tx.run('UPDATE discharge_adw_episodes SET discharge_withdrawn_at = ? WHERE referral_identifier = ?', [at, episode.referral_identifier]);
    }
    await session.tx.run("UPDATE discharge_adw_messages SET status = 'superseded' WHERE direction = 'in' AND referral_identifier = ? AND peer_ods = ? AND event_code = ? AND status = 'awaiting-response'", [episode.referral_identifier, episode.peer_ods, EVENT.dischargeNotice]);
    await cancelDeadlines(session, referral.id, 'discharge-notice');
    referral = await session.put(withExtensionDate(referral, EXPECTED_DISCHARGE_URL, undefined), referral.meta?.versionId);
    await settleOverdueIn(session, ctx, referral.id);
  } else {
    await session.tx.run("UPDATE discharge_adw_messages SET status = 'superseded' WHERE direction = 'in' AND referral_identifier = ? AND peer_ods = ? AND header_id <> ? AND status = 'awaiting-response'", [episode.referral_identifier, episode.peer_ods, m.headerId]);
    await session.tx.run('UPDATE discharge_adw_episodes SET withdrawn = 1 WHERE referral_identifier = ?', [episode.referral_identifier]);
    await cancelDeadlines(session, referral.id);
    if (ALLOWED_FROM.withdraw.includes(state)) referral = (await withdrawIn(session, ctx, referral.id, reason)).referral;
  }
  await setStatus(session, m, msg, 'awaiting-response');
  await queueResponse(session, ctx, episode, referral, { header_id: m.headerId, event_code: m.eventCode, sender_mailbox: msg.from, peer_mailbox: episode.peer_mailbox }, true, `Withdrawal received (${reason}).`);
}

// ---- responses (we are the hospital) -------------------------------------------------------------------

/** The notice a response answers, when this service sent it: by response.identifier and the notice kinds the event answers. */
async function sentNotice(db: SqlExecutor, m: AdwMessage): Promise<{ event_code: string; referral_identifier: string; peer_ods: string } | undefined> {
  const notices = ANSWERS[m.eventCode].notices;
  return db.get(
    `SELECT event_code, referral_identifier, peer_ods FROM discharge_adw_messages WHERE direction = 'out' AND header_id = ? AND event_code IN (${notices.map(() => '?').join(', ')})`,
    [m.response!.identifier!, ...notices],
  );
}

/**
 * Why a response cannot be applied to the notice it answers (none when it can): only the council the
 * notice was sent to may answer it (H-049). The notice is found by the MessageHeader.id it answers, which
 * travelled in the notice, so anyone who has seen the notice (or guesses the id) could otherwise accept or
 * reject that council's referral. The response's source ODS code must be the notice's council and, with
 * messaging, its MESH mailbox must be one messaging knows as that council's: a mailbox of another
 * organisation is refused by the mailbox check in checkMessage, and one it does not know is refused here
 * (once linked to the council, the dead letter can be replayed). ADW has no reject of a response, so the
 * sender is told nothing; the dead letter says why.
 */
async function answerFromElsewhere(deps: AdwInboundDeps, session: RecordSession, msg: InboundMessage, m: AdwMessage): Promise<string[]> {
  const notice = await sentNotice(session.tx, m);
  if (!notice) return [];
  const sentTo = `${EVENT_NAMES[notice.event_code as EventCode].toLowerCase()} ${m.response!.identifier}, which was sent to ${notice.peer_ods}`;
  const problems: string[] = [];
  if (m.sourceOds && m.sourceOds !== notice.peer_ods) problems.push(`It answers ${sentTo}, not to ${m.sourceOds}; only the council a notice was sent to can answer it.`);
  if (deps.organisationForMailbox && !(await deps.organisationForMailbox(msg.from))) {
    problems.push(`It answers ${sentTo}, but came from mailbox ${msg.from}, which is not known as ${notice.peer_ods}'s; if it is, link it (carebridge mesh mailbox add ${msg.from} --ods ${notice.peer_ods}) and replay this message.`);
  }
  return problems;
}

function notOurNotice(m: AdwMessage): AdwNotForThisService {
  return new AdwNotForThisService(`${EVENT_NAMES[m.eventCode as EventCode]} ${m.headerId} answers notice ${m.response!.identifier}, which this service never sent.`);
}

async function applyResponse(session: RecordSession, ctx: DischargeContext, m: AdwMessage, msg: InboundMessage): Promise<void> {
  const answer = ANSWERS[m.eventCode];
  const notice = await sentNotice(session.tx, m);
  if (!notice) throw notOurNotice(m);
  // checkMessage refused it already; kept so no path applies another council's answer to this one's referral (H-049).
  if (m.sourceOds !== notice.peer_ods) throw new AdwRejected(`${EVENT_NAMES[m.eventCode as EventCode]} ${m.headerId} from ${m.sourceOds} answers a notice sent to ${notice.peer_ods}; it was not applied.`);
  // The episode we hold as the hospital with the council the notice went to (H-041).
  const episode = await episodeWith(session.tx, { role: 'hospital', peerOds: notice.peer_ods, identifier: notice.referral_identifier });
  if (!episode) throw new AdwRejected(`Notice ${m.response!.identifier} belongs to episode ${notice.referral_identifier}, which this service does not hold.`);
  await session.tx.run("UPDATE discharge_adw_messages SET status = ? WHERE direction = 'out' AND header_id = ? AND event_code = ?", [answer.accepts ? 'accepted' : 'rejected', m.response!.identifier!, notice.event_code]);
  await setStatus(session, m, msg, 'processed');
  const current = await loadReferral(session, episode.service_request_id);
  const state = triageStateOf(current.task) ?? 'received';
  const reason = m.reason?.text ?? (answer.accepts ? 'Accepted' : 'Rejected');
  const note = { text: `${EVENT_NAMES[m.eventCode as EventCode]}: ${reason}`, category: EVENT_NAMES[m.eventCode as EventCode] };
  // The note is the council's person's, when the response names who answered: the ward knows whom to call.
  const answeredBy = m.author?.name ? { display: m.author.name } : undefined;
  const step = (action: string, change: StepChange) => applyStepIn(session, ctx, episode.service_request_id, action, answeredBy ? { by: answeredBy } : {}, change);
  if (m.eventCode === EVENT.assessmentAccept && ALLOWED_FROM.accept.includes(state)) await step('accept', { state: 'accepted', note, detail: reason });
  else if (m.eventCode === EVENT.assessmentReject && ALLOWED_FROM.reject.includes(state)) {
    await step('reject', { state: 'rejected', note, detail: reason, task: (t) => ({ ...t, statusReason: { text: reason } }) });
  } else if (m.eventCode === EVENT.dischargeAgreement && ALLOWED_FROM.confirmReady.includes(state)) await step('confirmReady', { state: 'ready', note, detail: reason });
  else {
    await session.put({
      resourceType: 'Communication', id: session.newId(), status: 'completed', category: [{ text: note.category }],
      basedOn: [{ reference: `ServiceRequest/${current.referral.id}` }], partOf: [{ reference: `Task/${current.task.id}` }], subject: current.referral.subject,
      sent: m.timestamp ?? new Date(clock(ctx)).toISOString(), ...(answeredBy ? { sender: answeredBy } : {}), payload: [{ contentString: note.text }],
    });
  }
}

// ---- people and stays --------------------------------------------------------------------------------

// Find-or-create under the criteria's lock (searchBeforeCreate): two notices at once must not make one
// person two records, nor one stay or ward two (hazard H-016).
async function upsertPatient(session: RecordSession, m: AdwMessage): Promise<FhirResource> {
  const p = m.patient!;
  const found = await session.searchBeforeCreate('Patient', [['identifier', `${NHS_NUMBER_SYSTEM}|${p.nhsNumber}`]]);
  if (found[0]) return found[0];
  return session.put({
    resourceType: 'Patient',
    id: session.newId(),
    identifier: [
      { ...(p.nhsNumberVerification ? { extension: [recordVerificationExtension(p.nhsNumberVerification)] } : {}), system: NHS_NUMBER_SYSTEM, value: p.nhsNumber },
      ...(p.localId ? [{ system: LOCAL_PATIENT_ID_SYSTEM, value: p.localId }] : []),
    ],
    name: [{ use: 'usual', ...(p.family ? { family: p.family } : {}), ...(p.given.length ? { given: p.given } : {}) }],
    ...(p.phone || p.email ? { telecom: [...(p.phone ? [{ system: 'phone', value: p.phone }] : []), ...(p.email ? [{ system: 'email', value: p.email }] : [])] } : {}),
    ...(p.gender ? { gender: p.gender } : {}),
    ...(p.birthDate ? { birthDate: p.birthDate } : {}),
    ...(p.address ? { address: [{ line: p.address.lines.filter((l) => l.trim()), ...(p.address.city ? { city: p.address.city } : {}), ...(p.address.district ? { district: p.address.district } : {}), ...(p.address.postalCode ? { postalCode: p.address.postalCode } : {}) }] } : {}),
    ...(p.contacts.length ? {
      contact: p.contacts.map((c) => ({
        ...(c.relationship.length ? { relationship: c.relationship.map((text) => ({ text })) } : {}),
        ...(c.name ? { name: { text: c.name } } : {}),
        ...(c.phone || c.email ? { telecom: [...(c.phone ? [{ system: 'phone', value: c.phone }] : []), ...(c.email ? [{ system: 'email', value: c.email }] : [])] } : {}),
      })),
    } : {}),
  });
}

/**
 * A stay is the hospital's: its number (Encounter.identifier) is unique only within the trust that gave it,
 * so a stay is found by number and serviceProvider together. Another trust's stay with the same number is a
 * different stay (hazard H-013). Under the criteria's lock when nothing is found (H-016): the caller's
 * transaction then holds it, and a second notice for the same number waits for this one to commit.
 */
async function stayAt(session: RecordSession, identifier: string, hospital: FhirResource): Promise<FhirResource | undefined> {
  const seen = staysSeen(session);
  const key = stayKey(identifier, hospital);
  if (!seen.has(key)) seen.set(key, (await session.searchBeforeCreate('Encounter', [['identifier', `${ENCOUNTER_ID_SYSTEM}|${escapeSearchValue(identifier)}`], ['service-provider', `Organization/${hospital.id}`]]))[0]);
  return seen.get(key);
}

/**
 * The stays looked up in a step, by number and hospital: the checks and the update ask for the same one, and
 * within the step only upsertEncounter writes it (and says what it wrote).
 */
const stays = new WeakMap<RecordSession, Map<string, FhirResource | undefined>>();

function staysSeen(session: RecordSession): Map<string, FhirResource | undefined> {
  let seen = stays.get(session);
  if (!seen) stays.set(session, (seen = new Map()));
  return seen;
}

const stayKey = (identifier: string, hospital: FhirResource) => `${hospital.id}|${identifier}`;

/**
 * Why a notice cannot be applied to its stay: the hospital's stay of that number is another person's (empty
 * when it is not). Applying it would move that person's ward and point this person's referral at their stay.
 * The person is compared by the Patient the notice's NHS number finds: none yet means someone else's stay.
 */
async function stayOfAnotherPerson(session: RecordSession, m: AdwMessage, hospital: FhirResource): Promise<string> {
  const stayNumber = m.encounter?.identifier;
  const nhsNumber = m.patient?.nhsNumber;
  if (!stayNumber || !nhsNumber || !isValidNhsNumber(nhsNumber)) return '';
  const stay = await stayAt(session, stayNumber, hospital);
  if (!stay) return '';
  const person = (await session.search('Patient', [['identifier', `${NHS_NUMBER_SYSTEM}|${nhsNumber}`]]))[0];
  if (person && stay.subject?.reference === `Patient/${person.id}`) return '';
  // Not the other person's details: only that the number is taken.
  return `Encounter.identifier ${stayNumber} is already a stay at ${m.sourceOds} of a different person (not NHS number ${nhsNumber}); a stay number cannot belong to two people. Check the stay number and the NHS number, and send the notice again.`;
}

/**
 * Why a notice cannot be applied to the episode of its id (none when it can, or when the id is new). There is
 * one episode per ReferralRequest.identifier, a UUID every message about it carries (hazard H-041): a notice
 * under an id that is already another trust's episode (its source ODS code, which the sending mailbox's
 * organisation must match, is not the episode's hospital), another person's (the Patient its NHS number
 * finds is not the episode's; none yet means someone else's) or another council's is an error. Applying it
 * would change or withdraw that referral and send the council's answers about it, with that person's
 * details, to whoever sent this one. The reasons name neither the other trust nor the other person; another
 * trust is told only that the id is taken.
 */
async function episodeOfAnother(session: RecordSession, m: AdwMessage): Promise<string[]> {
  const identifier = m.referral?.identifier;
  if (!identifier || !m.sourceOds || !m.destinationOds) return [];
  const episode = await episodeByIdentifier(session.tx, identifier);
  if (!episode) return [];
  const again = 'Check the episode id (each episode has its own UUID), and send the notice again.';
  if (episode.role !== 'council') return [`ReferralRequest.identifier: episode ${identifier} is one this service sent as the hospital; a notice cannot open or change it. ${again}`];
  // Another trust is told only that the id is taken, nothing of that episode's person or council.
  if (episode.peer_ods !== m.sourceOds) return [`ReferralRequest.identifier: episode ${identifier} is already another trust's (not ${m.sourceOds}'s); an episode id belongs to one trust's referral. ${again}`];
  const problems: string[] = [];
  if (episode.our_ods !== m.destinationOds) {
    problems.push(`ReferralRequest.identifier: episode ${identifier} from ${m.sourceOds} is with ${episode.our_ods}, not ${m.destinationOds}; an episode id belongs to one referral to one council. Check the episode id and the destination, and send the notice again.`);
  }
  const nhsNumber = m.patient?.nhsNumber;
  if (nhsNumber && isValidNhsNumber(nhsNumber)) {
    const person = (await session.search('Patient', [['identifier', `${NHS_NUMBER_SYSTEM}|${nhsNumber}`]]))[0];
    // Not the other person's details: only that the id is taken.
    if (person?.id !== episode.patient_id) {
      problems.push(`ReferralRequest.identifier: episode ${identifier} from ${m.sourceOds} is already about a different person (not NHS number ${nhsNumber}); an episode id cannot belong to two people. Check the episode id and the NHS number, and send the notice again.`);
    }
  }
  return problems;
}

async function upsertEncounter(session: RecordSession, m: AdwMessage, patient: FhirResource, hospital: FhirResource, at: string): Promise<FhirResource> {
  const e = m.encounter ?? {};
  const found = e.identifier ? await stayAt(session, e.identifier, hospital) : undefined;
  // checkMessage refused this already; kept so no path can write one person's notice onto another's stay.
  if (found && found.subject?.reference !== `Patient/${patient.id}`) throw new AdwRejected(`Encounter.identifier ${e.identifier} at ${m.sourceOds} is another person's stay.`);
  let ward: FhirResource | undefined;
  if (e.ward) {
    // The ward's name as sent, taken literally: "Collier Ward,Annex" is not "Collier Ward" or "Annex".
    ward = (await session.searchBeforeCreate('Location', [['name:exact', escapeSearchValue(e.ward)], ['organization', `Organization/${hospital.id}`]]))[0];
    ward ??= await session.put({ resourceType: 'Location', id: session.newId(), status: 'active', name: e.ward, managingOrganization: { reference: `Organization/${hospital.id}`, display: hospital.name } });
  }
  const base: FhirResource = found ?? {
    resourceType: 'Encounter',
    id: session.newId(),
    ...(e.identifier ? { identifier: [{ system: ENCOUNTER_ID_SYSTEM, value: e.identifier }] } : {}),
    class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'IMP', display: 'inpatient encounter' },
    subject: { reference: `Patient/${patient.id}` },
    serviceProvider: { reference: `Organization/${hospital.id}`, display: hospital.name },
    status: 'in-progress',
  };
  const status = e.status === 'finished' || e.status === 'in-progress' || e.status === 'planned' ? e.status : base.status;
  let next: FhirResource = {
    ...base,
    status,
    ...(e.admissionType?.code ? { priority: { coding: [e.admissionType] } } : {}),
    ...(e.start ? { period: { ...(base.period ?? {}), start: e.start } } : {}),
    ...(ward ? { location: onWard(base.location ?? [], { reference: `Location/${ward.id}`, display: ward.name }, at) } : {}),
  };
  // ADW's Encounter.period.end is the proposed discharge date, not the actual one.
  if (e.end) next = withExtensionDate(next, EXPECTED_DISCHARGE_URL, e.end);
  if (found && JSON.stringify({ ...found, meta: undefined }) === JSON.stringify({ ...next, meta: undefined })) return found;
  const written = await session.put(next, found?.meta?.versionId);
  if (e.identifier) staysSeen(session).set(stayKey(e.identifier, hospital), written);
  return written;
}

type StayLocation = { location?: { reference?: string; display?: string }; status?: string; period?: { start?: string; end?: string } };

/**
 * The stay's wards with the person now on `ward`. The wards before it are kept (the HL7 feed's transfers,
 * earlier notices): a notice names only where the person is now, so it completes the ward they were on
 * (at `at`, when the notice was sent) and adds the new one; on the same ward it changes nothing.
 */
function onWard(locations: StayLocation[], ward: { reference: string; display?: string }, at: string): StayLocation[] {
  const active = locations.filter((l) => l.status === 'active');
  if (active[active.length - 1]?.location?.reference === ward.reference) return locations;
  const moved = locations.map((l) => (l.status === 'active' ? { ...l, status: 'completed', period: { ...l.period, end: at } } : l));
  return [...moved, { location: ward, status: 'active', ...(locations.length ? { period: { start: at } } : {}) }];
}

export { NOTICES };
