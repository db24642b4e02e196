// What the ADW side sends, and when. Messages are queued in discharge_adw_messages in the same transaction
// as the workflow step that causes them (so a step and its message happen together or not at all), then
// handed to MESH by the delivery worker (delivery.ts).
//
// As the council (we received the notices): accepting a referral answers the pending assessment notice;
// confirming readiness (again, if the notice came after it) agrees to a pending discharge notice, and
// disagreeing with it sends a disagreement; rejecting answers every notice still waiting (an assessment
// reject, a discharge disagreement). As the hospital (the council works elsewhere and is
// marked `adw` in discharge_councils): a new referral sends an assessment notice, a withdrawal a
// withdrawal notice.
import type { SqlExecutor } from '../../record/index.ts';
import type { Referral, RecordSession, DischargeContext, FhirResource } from '../recordSession.ts';
import { clock } from '../recordSession.ts';
import type { Reference } from '../referrals.ts';
import { EVENT, RESPONSES_TO, WITHDRAWAL_REASONS, type EventCode } from './codes.ts';
import { buildAdwMessage, type AdwOutgoing } from './build.ts';
import { recordedVerification } from './nhsNumberStatus.ts';
import type { AdwAnswer, AdwPatient, AdwPerson } from './parse.ts';
import { DISCHARGE_REFERRAL_SYSTEM, EXPECTED_DISCHARGE_URL, ODS_ORGANIZATION, ODS_SITE, extensionDate, type TriageState } from '../model.ts';
import { NHS_NUMBER_SYSTEM } from '../../record/index.ts';

export interface AdwEpisode {
  referral_identifier: string;
  role: 'council' | 'hospital';
  service_request_id: string;
  task_id: string;
  patient_id: string;
  our_ods: string;
  peer_ods: string;
  peer_mailbox: string | null;
  withdrawn: number;
  /** When the latest 'withdraw discharge notice only' was sent (MessageHeader.timestamp): discharge notices sent before it are withdrawn. */
  discharge_withdrawn_at?: string | null;
}

export async function episodeByReferral(tx: SqlExecutor, serviceRequestId: string): Promise<AdwEpisode | undefined> {
  return tx.get<AdwEpisode>('SELECT * FROM discharge_adw_episodes WHERE service_request_id = ?', [serviceRequestId]);
}

/**
 * The episode with this id. There is one per ReferralRequest.identifier (the table's key): the id is a UUID
 * every message about the episode carries, so a notice under an id that is already another trust's,
 * another person's or another council's episode is an error and is rejected, never a second episode
 * (hazard H-041). Callers check that the episode found is the one the message is about.
 */
export async function episodeByIdentifier(tx: SqlExecutor, identifier: string): Promise<AdwEpisode | undefined> {
  return tx.get<AdwEpisode>('SELECT * FROM discharge_adw_episodes WHERE referral_identifier = ?', [identifier]);
}

/** The episode with this id only when it is ours in `role` with `peerOds` (none when the id is someone else's, H-041). */
export async function episodeWith(tx: SqlExecutor, key: { role: AdwEpisode['role']; peerOds: string; identifier: string }): Promise<AdwEpisode | undefined> {
  const episode = await episodeByIdentifier(tx, key.identifier);
  return episode?.role === key.role && episode.peer_ods === key.peerOds ? episode : undefined;
}

export interface QueuedMessage {
  event: EventCode;
  headerId: string;
  xml: string;
  referralIdentifier: string;
  respondsTo?: string;
  ourOds: string;
  peerOds: string;
  peerMailbox?: string | null;
  detail?: string;
}

export async function queueOutbound(session: RecordSession, m: QueuedMessage, now: number): Promise<void> {
  session.queuedOutbound();
  await session.tx.run(
    'INSERT INTO discharge_adw_messages (direction, header_id, event_code, referral_identifier, responds_to, status, detail, our_ods, peer_ods, peer_mailbox, body, at_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
    ['out', m.headerId, m.event, m.referralIdentifier, m.respondsTo ?? null, 'pending', m.detail ?? null, m.ourOds, m.peerOds, m.peerMailbox ?? null, m.xml, now],
  );
}

/** An inbound notice as an answer needs it: its key (sender_mailbox is part of it, H-048) and where to answer it. */
type PendingNotice = { header_id: string; event_code: string; sender_mailbox: string; peer_mailbox: string | null };

/**
 * The pending (unanswered) inbound notices of an episode of these kinds, newest first: those from the
 * episode's trust only (another trust's notice under its id was rejected and is never the episode's, H-041).
 */
async function pendingNotices(tx: SqlExecutor, episode: AdwEpisode, events: string[]): Promise<PendingNotice[]> {
  const marks = events.map(() => '?').join(', ');
  return tx.all(
    `SELECT header_id, event_code, sender_mailbox, peer_mailbox FROM discharge_adw_messages WHERE direction = 'in' AND referral_identifier = ? AND peer_ods = ? AND status = 'awaiting-response' AND event_code IN (${marks}) ORDER BY at_ms DESC`,
    [episode.referral_identifier, episode.peer_ods, ...events],
  );
}

/** The newest pending inbound notice of an episode of these kinds. */
async function pendingNotice(tx: SqlExecutor, episode: AdwEpisode, events: string[]): Promise<PendingNotice | undefined> {
  return (await pendingNotices(tx, episode, events))[0];
}

async function markAnswered(tx: SqlExecutor, notice: PendingNotice, status: string): Promise<void> {
  await tx.run("UPDATE discharge_adw_messages SET status = ? WHERE direction = 'in' AND header_id = ? AND event_code = ? AND sender_mailbox = ?", [status, notice.header_id, notice.event_code, notice.sender_mailbox]);
}

/** The people and places of an episode, read from the record, to write into a message. */
export async function partiesFromRecord(session: RecordSession, referral: FhirResource): Promise<Pick<AdwOutgoing, 'patient' | 'encounter' | 'hospital' | 'council'> & { answers: AdwAnswer[]; referrer?: AdwPerson }> {
  const patient = await session.read('Patient', String(referral.subject?.reference ?? '').split('/')[1] ?? '');
  const encounterId = String(referral.encounter?.reference ?? '').split('/')[1];
  const encounter = encounterId ? await session.read('Encounter', encounterId) : undefined;
  const requester = (referral.contained ?? []).find((c: any) => c.id === 'requester');
  const hospital = requester?.organization?.reference ? await session.read('Organization', requester.organization.reference.split('/')[1]) : undefined;
  const council = referral.performer?.[0]?.reference ? await session.read('Organization', referral.performer[0].reference.split('/')[1]) : undefined;
  const odsOf = (org: FhirResource | undefined) => org?.identifier?.find((i: any) => i.system === ODS_SITE || i.system === ODS_ORGANIZATION)?.value as string | undefined;
  const name = patient?.name?.[0] ?? {};
  const address = patient?.address?.[0];
  const adwPatient: AdwPatient = {
    nhsNumber: patient?.identifier?.find((i: any) => i.system === NHS_NUMBER_SYSTEM)?.value,
    nhsNumberVerification: recordedVerification(patient),
    family: name.family,
    given: name.given ?? [],
    gender: patient?.gender,
    birthDate: patient?.birthDate,
    ...(address ? { address: { lines: address.line ?? [], city: address.city, district: address.district, postalCode: address.postalCode } } : {}),
    phone: telecomValue(patient?.telecom, 'phone'),
    email: telecomValue(patient?.telecom, 'email'),
    contacts: contactsOf(patient),
  };
  const ward = requester?.location?.[0]?.reference ? await session.read('Location', requester.location[0].reference.split('/')[1]) : undefined;
  const consentRef = referral.supportingInfo?.find((s: any) => String(s.reference).startsWith('QuestionnaireResponse/'))?.reference;
  const consent = consentRef ? await session.read('QuestionnaireResponse', consentRef.split('/')[1]) : undefined;
  // Who at the hospital made the referral and how to reach them: the council's first call about it.
  const referrer = reachable(requester?.practitioner?.display, requester?.telecom);
  return {
    patient: adwPatient,
    encounter: {
      identifier: encounter?.identifier?.[0]?.value ?? encounter?.id,
      status: encounter?.status === 'finished' ? 'finished' : 'in-progress',
      start: encounter?.period?.start,
      end: extensionDate(referral, EXPECTED_DISCHARGE_URL) ?? (encounter ? extensionDate(encounter, EXPECTED_DISCHARGE_URL) : undefined),
      ward: ward?.name,
    },
    hospital: { ods: odsOf(hospital) ?? '', name: hospital?.name },
    council: { ods: odsOf(council) ?? '', name: council?.name },
    answers: (consent?.item ?? []).map((i: any) => ({ text: i.text ?? i.linkId, ...(i.answer?.[0]?.valueCoding ? { coding: i.answer[0].valueCoding } : { value: i.answer?.[0]?.valueString }) })),
    ...(referrer ? { referrer } : {}),
  };
}

const telecomValue = (telecom: any[] | undefined, system: string): string | undefined => telecom?.find((t: any) => t.system === system)?.value;
const nameText = (name: any): string | undefined => name?.text ?? ([...(name?.prefix ?? []), ...(name?.given ?? []), name?.family].filter(Boolean).join(' ') || undefined);

/**
 * The person's contacts (next of kin, family, carers) as the notice carries them: the council often has to
 * reach them to plan support, and a notice without them leaves it to ask the ward.
 */
function contactsOf(patient: FhirResource | undefined): AdwPatient['contacts'] {
  return ((patient?.contact ?? []) as any[]).map((c) => ({
    relationship: ((c.relationship ?? []) as any[]).map((r) => r.text ?? r.coding?.[0]?.display ?? r.coding?.[0]?.code).filter(Boolean),
    name: nameText(c.name),
    phone: telecomValue(c.telecom, 'phone'),
    email: telecomValue(c.telecom, 'email'),
  })).filter((c) => c.name || c.phone || c.email);
}

/** A person as a message names them: their name and how to reach them; undefined when nothing is known. */
function reachable(name: string | undefined, telecom: any[] | undefined): AdwPerson | undefined {
  const phone = telecomValue(telecom, 'phone');
  const email = telecomValue(telecom, 'email');
  return name || phone || email ? { ...(name ? { name } : {}), ...(phone ? { phone } : {}), ...(email ? { email } : {}) } : undefined;
}

function identifierOf(referral: FhirResource): string {
  return referral.identifier?.find((i: any) => i.system === DISCHARGE_REFERRAL_SYSTEM)?.value ?? referral.id;
}

/**
 * Queues a response to an inbound notice (accept or reject), addressed back to where the notice came from;
 * `author` is the council's person who answered (none when the workflow answers by itself).
 */
export async function queueResponse(session: RecordSession, ctx: DischargeContext, episode: AdwEpisode, referral: FhirResource, notice: PendingNotice, accept: boolean, reasonText: string | undefined, author?: AdwPerson): Promise<void> {
  const events = RESPONSES_TO[notice.event_code];
  if (!events) return;
  const parties = await partiesFromRecord(session, referral);
  const event = accept ? events.accept : events.reject;
  const now = clock(ctx);
  const built = buildAdwMessage({
    event, sourceOds: episode.our_ods, destinationOds: episode.peer_ods, referralIdentifier: episode.referral_identifier, inResponseTo: notice.header_id,
    reasonText: reasonText ?? (accept ? 'Accepted.' : 'Rejected.'), ...parties, ...(author ? { author } : {}), hospital: { ...parties.hospital, ods: episode.peer_ods }, council: { ...parties.council, ods: episode.our_ods }, now,
  });
  await queueOutbound(session, { event, headerId: built.headerId, xml: built.xml, referralIdentifier: episode.referral_identifier, respondsTo: notice.header_id, ourOds: episode.our_ods, peerOds: episode.peer_ods, peerMailbox: notice.peer_mailbox ?? episode.peer_mailbox, detail: reasonText }, now);
  await markAnswered(session.tx, notice, accept ? 'accepted' : 'rejected');
}

/** Queues a notice from us (the hospital) to a council reached by ADW. */
export async function queueNotice(session: RecordSession, ctx: DischargeContext, episode: AdwEpisode, referral: FhirResource, event: EventCode, extra: { withdrawalReason?: string; reasonText?: string } = {}): Promise<string> {
  const { referrer, ...parties } = await partiesFromRecord(session, referral);
  const now = clock(ctx);
  const built = buildAdwMessage({
    event, sourceOds: episode.our_ods, destinationOds: episode.peer_ods, referralIdentifier: episode.referral_identifier,
    referralReason: referral.reasonCode?.[0]?.text, description: referral.note?.map((n: any) => n.text).join('\n') || undefined,
    ...(referrer ? { referrer, author: referrer } : {}), ...parties, hospital: { ...parties.hospital, ods: episode.our_ods }, council: { ...parties.council, ods: episode.peer_ods }, ...extra, now,
  });
  await queueOutbound(session, { event, headerId: built.headerId, xml: built.xml, referralIdentifier: episode.referral_identifier, ourOds: episode.our_ods, peerOds: episode.peer_ods, peerMailbox: episode.peer_mailbox, detail: extra.reasonText }, now);
  return built.headerId;
}

/**
 * A withdrawal's reason as ADW sends it: "08 Patient has died: at 04:10" (how the portal and a received
 * withdrawal word it), "07", "07 deteriorated" or free text → the code (13, other, when none is given) and
 * the words beyond the code's own label, if any.
 */
export function withdrawalReasonOf(text: string | undefined): { code: string; text?: string } {
  const m = /^\s*(\d{2})\b\s*(.*)$/s.exec(text ?? '');
  if (!m || !WITHDRAWAL_REASONS[m[1]]) return { code: '13', ...(text?.trim() ? { text: text.trim() } : {}) };
  const label = WITHDRAWAL_REASONS[m[1]];
  const rest = m[2].startsWith(label) ? m[2].slice(label.length).replace(/^\s*:\s*/, '') : m[2];
  return { code: m[1], ...(rest.trim() ? { text: rest.trim() } : {}) };
}

/** The inbound notices each council step answers (adwAfterStep sends the answers). */
const NOTICES_ANSWERED_BY: Readonly<Record<string, readonly string[]>> = {
  accept: [EVENT.assessmentNotice],
  reject: [EVENT.assessmentNotice, EVENT.dischargeNotice],
  confirmReady: [EVENT.dischargeNotice],
  disagreeWithDischarge: [EVENT.dischargeNotice],
};

/**
 * Whether the council will still owe the hospital its answer to a discharge notice once this step is
 * taken: a notice of the referral's episode waits, and the step is not one that answers it.
 */
export async function dischargeNoticeOwedAfter(tx: SqlExecutor, referralId: string, action: string): Promise<boolean> {
  return !NOTICES_ANSWERED_BY[action]?.includes(EVENT.dischargeNotice) && dischargeNoticeWaiting(tx, referralId);
}

/** Whether a discharge notice on this referral (we are the council) waits for the council's answer. */
export async function dischargeNoticeWaiting(tx: SqlExecutor, referralId: string): Promise<boolean> {
  const waiting = await tx.get(
    "SELECT 1 AS owed FROM discharge_adw_messages m JOIN discharge_adw_episodes e ON e.referral_identifier = m.referral_identifier AND e.peer_ods = m.peer_ods WHERE e.service_request_id = ? AND e.role = 'council' AND m.direction = 'in' AND m.event_code = ? AND m.status = 'awaiting-response'",
    [referralId, EVENT.dischargeNotice],
  );
  return Boolean(waiting);
}

/**
 * Whether the discharge notice a timer watches (its MessageHeader.id) still waits for the council's answer
 * on this referral. Found through the referral's episode: another trust's notice may carry the same
 * MessageHeader.id (H-048), and its answer is not this referral's.
 */
export async function dischargeNoticeStillOwed(tx: SqlExecutor, referralId: string, headerId: string | null): Promise<boolean> {
  const waiting = await tx.get(
    "SELECT 1 AS owed FROM discharge_adw_messages m JOIN discharge_adw_episodes e ON e.referral_identifier = m.referral_identifier AND e.peer_ods = m.peer_ods WHERE e.service_request_id = ? AND m.direction = 'in' AND m.header_id = ? AND m.event_code = ? AND m.status = 'awaiting-response'",
    [referralId, headerId, EVENT.dischargeNotice],
  );
  return Boolean(waiting);
}

/** Referrals asked about per query: well inside both engines' limits on bound parameters. */
const DUE_BATCH = 500;

/**
 * When the council's answer to a waiting discharge notice is due, for each of these referrals that has one
 * (we are the council): the due time of the notice's deadline, pending or already fired, while the notice
 * still awaits the answer. The portal's lists read it for a whole page at once (one query per 500
 * referrals), so a referral the council accepted long ago shows the answer it owes now (hazard H-043).
 */
export async function dischargeNoticesDue(db: SqlExecutor, referralIds: readonly string[]): Promise<Map<string, number>> {
  const due = new Map<string, number>();
  for (let i = 0; i < referralIds.length; i += DUE_BATCH) {
    const some = referralIds.slice(i, i + DUE_BATCH);
    // The notice of the timer's own episode: another trust's notice may carry the same MessageHeader.id (H-048).
    const rows = await db.all<{ referral_id: string; due_ms: number | string }>(
      `SELECT t.referral_id AS referral_id, MIN(t.due_ms) AS due_ms FROM discharge_timers t
       JOIN discharge_adw_episodes e ON e.service_request_id = t.referral_id
       JOIN discharge_adw_messages m ON m.direction = 'in' AND m.header_id = t.message_key AND m.event_code = ? AND m.status = 'awaiting-response'
         AND m.referral_identifier = e.referral_identifier AND m.peer_ods = e.peer_ods
       WHERE t.kind = 'discharge-notice' AND t.status IN ('pending', 'fired') AND t.referral_id IN (${some.map(() => '?').join(', ')})
       GROUP BY t.referral_id`,
      [EVENT.dischargeNotice, ...some],
    );
    for (const r of rows) due.set(r.referral_id, Number(r.due_ms));
  }
  return due;
}

/** Called by every workflow step, inside its transaction: sends what the step means in ADW, if anything. */
export async function adwAfterStep(session: RecordSession, ctx: DischargeContext, step: { action: string; detail?: string; before: TriageState; after: Referral; by?: Reference }): Promise<void> {
  const { referral } = step.after;
  if (step.action === 'create') {
    const council = referral.performer?.[0]?.reference ? await session.read('Organization', referral.performer[0].reference.split('/')[1]) : undefined;
    const councilOds = council?.identifier?.find((i: any) => i.system === ODS_ORGANIZATION || i.system === ODS_SITE)?.value;
    const adw = councilOds ? await session.tx.get<{ adw: number }>('SELECT adw FROM discharge_councils WHERE ods = ?', [councilOds]) : undefined;
    if (!adw || !Number(adw.adw)) return;
    const parties = await partiesFromRecord(session, referral);
    const episode: AdwEpisode = {
      referral_identifier: identifierOf(referral), role: 'hospital', service_request_id: referral.id, task_id: step.after.task.id,
      patient_id: String(referral.subject.reference).split('/')[1], our_ods: parties.hospital.ods, peer_ods: councilOds, peer_mailbox: null, withdrawn: 0,
    };
    await insertEpisode(session.tx, episode, clock(ctx));
    await queueNotice(session, ctx, episode, referral, EVENT.assessmentNotice);
    return;
  }
  const episode = await episodeByReferral(session.tx, referral.id);
  if (!episode) return;
  if (episode.role === 'hospital') {
    if (step.action === 'withdraw') {
      await session.tx.run('UPDATE discharge_adw_episodes SET withdrawn = 1 WHERE referral_identifier = ?', [episode.referral_identifier]);
      const reason = withdrawalReasonOf(step.detail);
      await queueNotice(session, ctx, episode, referral, EVENT.withdrawAll, { withdrawalReason: reason.code, reasonText: reason.text });
    }
    return;
  }
  // We are the council: answer what the hospital is waiting for, in the name of whoever took the step.
  if (!NOTICES_ANSWERED_BY[step.action]) return;
  const author = await answererOf(session, ctx, step.by);
  if (step.action === 'accept') {
    const notice = await pendingNotice(session.tx, episode, [EVENT.assessmentNotice]);
    if (notice) await queueResponse(session, ctx, episode, referral, notice, true, step.detail, author);
  } else if (step.action === 'reject') {
    // A rejected referral is closed: every notice still waiting gets its own answer, or the hospital is
    // left waiting on the ones not answered (an assessment notice behind a later discharge notice).
    for (const notice of await pendingNotices(session.tx, episode, [EVENT.assessmentNotice, EVENT.dischargeNotice])) {
      await queueResponse(session, ctx, episode, referral, notice, false, step.detail, author);
    }
  } else if (step.action === 'confirmReady') {
    const notice = await pendingNotice(session.tx, episode, [EVENT.dischargeNotice]);
    if (notice) await queueResponse(session, ctx, episode, referral, notice, true, step.detail ?? 'Support is in place; the council agrees to the proposed discharge date.', author);
  } else if (step.action === 'disagreeWithDischarge') {
    await disagreeWithDischargeIn(session, ctx, referral, step.detail ?? 'The council cannot agree to the proposed discharge date.', author);
  }
}

/**
 * The council's person who took a step, as a response's MessageHeader.author names them (the hospital's
 * ward calls them about it): their name and, when they are a Practitioner in the record, how to reach
 * them. None for a system client (the workflow, an integrator's system) or when no one is known: the
 * response then names no author, as before.
 */
async function answererOf(session: RecordSession, ctx: DischargeContext, by: Reference | undefined): Promise<AdwPerson | undefined> {
  if (!by || ctx.access.caller?.role === 'system') return undefined;
  const [type, id] = String(by.reference ?? '').split('/');
  // Only what the person may read: a step is never refused for want of their own telecom.
  const practitioner = type === 'Practitioner' && id && ctx.access.mayRead('Practitioner') ? await session.read('Practitioner', id) : undefined;
  return reachable(by.display ?? nameText(practitioner?.name?.[0]), practitioner?.telecom);
}

/** Answers a pending discharge notice with a disagreement (the council cannot yet agree to the date). */
export async function disagreeWithDischargeIn(session: RecordSession, ctx: DischargeContext, referral: FhirResource, reason: string, author?: AdwPerson): Promise<boolean> {
  const episode = await episodeByReferral(session.tx, referral.id);
  if (!episode || episode.role !== 'council') return false;
  const notice = await pendingNotice(session.tx, episode, [EVENT.dischargeNotice]);
  if (!notice) return false;
  await queueResponse(session, ctx, episode, referral, notice, false, reason, author);
  return true;
}

export async function insertEpisode(tx: SqlExecutor, e: AdwEpisode, now: number): Promise<void> {
  await tx.run(
    'INSERT INTO discharge_adw_episodes (referral_identifier, role, service_request_id, task_id, patient_id, our_ods, peer_ods, peer_mailbox, withdrawn, created_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
    [e.referral_identifier, e.role, e.service_request_id, e.task_id, e.patient_id, e.our_ods, e.peer_ods, e.peer_mailbox, e.withdrawn, now],
  );
}
