// The red bag between two deployments, over MESH. The rule for "served elsewhere": an organisation whose
// MESH mailbox (registered in messaging's directory) is neither processed by this deployment (hosted here,
// not polled by a client elsewhere) nor this deployment's own external MESH mailbox. A hospital with no
// mailbox at all is served here (the first slice: it sees the pack on the shared record).
// Out: a sent pack goes to such a hospital as a red-bag-sent message; a step taken here goes to the other
// side when that side is served elsewhere. In: a pack is stored as a DocumentReference with a lifecycle Task
// owned by the hospital, for the one Patient here with the pack's NHS number (never created, never guessed:
// no match or several is a dead letter); a step moves the local Task through the same rules as a person's
// step. Each message is applied once, by MessageHeader.id.
// Reports: each message sent is recorded by its MESH message id (redbag_sent); when MESH reports the latest
// copy of a pack as not delivered, the pack's Task reads "Not received by the hospital" with MESH's reason,
// so the home telephones the ward and sends it again (H-042). The report is acknowledged once that is written.
import { handleFhirRequest, NHS_NUMBER_SYSTEM, FhirError, migrate, type AccessControl, type AccessEvent, type SqlDriver } from '../record/index.ts';
import { listMailboxes, type DeliveryReport, type InboundMessage, type Messaging } from '../messaging/index.ts';
import { ACKNOWLEDGE_REMINDER_CODE, ODS_SYSTEM, PACK_SENT_EVENT, RED_BAG_IDENTIFIER, RED_BAG_STATUS, RED_BAG_STEPS, RED_BAG_TASK_CODE, STEP_EVENT, TRANSFER_PACK_TYPE, type TransferStep } from './codes.ts';
import { readRedBagMessage, redBagMessage, RedBagMessageRejected, type ReadMessage } from './messages.ts';
import { bodyOf, onePerPack, read, referenceTo, search, type RecordCall, type Resource } from './recordCalls.ts';
import { advanceTransfer, stepOf, TRANSITIONS, type RedBagSettings } from './lifecycle.ts';
import { personName } from './readings.ts';
import type { RedBagCourier } from './delivery.ts';
import { RED_BAG_MIGRATIONS } from './schema.ts';

export interface RedBagMeshOptions {
  driver: SqlDriver;
  messaging: Messaging;
  /** Messaging's PermanentFailure: a message that can never be applied goes to the dead-letter queue with its reason. */
  PermanentFailure: new (message: string) => Error;
  /** How inbound messages read and write the record (the red bag's system client). */
  access: AccessControl;
  base: string;
  workflowId: string;
  /** This deployment's mailbox on an external MESH (CAREBRIDGE_MESH_MAILBOX), if any. */
  ownMailbox?: string;
  settings: RedBagSettings;
  now?: () => number;
}

const HOUR = 3600_000;
/** A copy of a message left 'processing' this long was abandoned (a crash) and may be taken over. */
const CLAIM_LEASE_MS = 5 * 60_000;

export async function connectRedBagToMesh(options: RedBagMeshOptions): Promise<RedBagCourier> {
  const { driver, messaging, workflowId } = options;
  await migrate(driver, 'redbag', RED_BAG_MIGRATIONS);
  const own = options.ownMailbox?.toUpperCase();
  const mailboxesOf = async (ods: string) => (await listMailboxes(driver)).filter((m) => m.ods === ods.toUpperCase());
  /** The mailbox of an organisation served elsewhere, or undefined when it is served here. */
  const remoteMailbox = async (ods: string): Promise<string | undefined> => {
    const boxes = await mailboxesOf(ods);
    if (!boxes.length || boxes.some((m) => (m.hosted && !m.polled) || m.mailboxId === own)) return undefined;
    return messaging.mailboxForOrganisation(ods);
  };
  /** The mailbox an organisation served here sends from. */
  const sendingMailbox = async (ods: string) => (await mailboxesOf(ods)).find((m) => (m.hosted && !m.polled) || m.mailboxId === own)?.mailboxId;

  /** Sends, and records the MESH message id, so a report that it was not delivered finds the pack (H-042). */
  const send = async (from: string, to: string, message: Resource, subject: string, localId: string, sent: { packIdentifier: string; taskId: string; step: 'sent' | TransferStep }) => {
    const { messageId } = await messaging.send({ from, to, workflowId, subject, localId, contentType: 'application/fhir+json', fileName: 'red-bag.json', body: Buffer.from(JSON.stringify(message)) });
    await driver.transaction(async (tx) => {
      await tx.run('INSERT INTO redbag_sent (mesh_message_id, pack_identifier, task_id, step, to_mailbox, sent_ms) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (mesh_message_id) DO NOTHING',
        [messageId, sent.packIdentifier, sent.taskId, sent.step, to, (options.now ?? Date.now)()]);
      // A pack sent again: a report about an earlier copy no longer says anything about this one.
      if (sent.step === 'sent') await tx.run("UPDATE redbag_sent SET superseded = 1 WHERE pack_identifier = ? AND step = 'sent' AND mesh_message_id <> ?", [sent.packIdentifier, messageId]);
    });
  };

  messaging.onInbound([workflowId], async (msg) => {
    try {
      await takeIn(options, msg);
    } catch (err) {
      if (err instanceof RedBagMessageRejected) throw new options.PermanentFailure(err.message);
      throw err;
    }
  });

  // MESH reports a pack sent from here as not delivered: the pack's Task says so, for the home to act on.
  messaging.onDeliveryReport([workflowId], (report) => settleUndelivered(options, report));

  return {
    async cannotDeliver(homeOds, hospitalOds) {
      if (!(await remoteMailbox(hospitalOds))) return undefined;
      if (await sendingMailbox(homeOds)) return undefined;
      return `its records are on another system (reached over MESH), and ${homeOds} has no MESH mailbox on this service to send from. Ask an administrator to add one.`;
    },

    async deliverPack(pack, target) {
      const to = await remoteMailbox(target.hospitalOds);
      if (!to) return;
      const from = await sendingMailbox(target.homeOds ?? '');
      if (!from) throw new Error(`${target.homeOds} has no MESH mailbox on this service.`);
      const message = redBagMessage(PACK_SENT_EVENT, { ods: target.homeOds!, name: target.task.requester?.display }, { ods: target.hospitalOds, name: target.task.owner?.display }, pack, [], (options.now ?? Date.now)());
      const packIdentifier: string = pack.identifier?.value ?? target.task.id;
      await send(from, to, message, `Red bag: ${target.task.for?.display ?? 'transfer pack'}`, packIdentifier, { packIdentifier, taskId: target.task.id, step: 'sent' });
    },

    async relayStep(call, task, step) {
      const hospitalStep = TRANSITIONS[step].side === 'hospital';
      const [taker, other] = hospitalStep ? [task.owner, task.requester] : [task.requester, task.owner];
      const otherOds: string | undefined = other?.identifier?.value;
      const to = otherOds ? await remoteMailbox(otherOds) : undefined;
      if (!to) return;
      const from = await sendingMailbox(taker?.identifier?.value ?? '');
      if (!from) throw new Error(`${taker?.display ?? 'This organisation'} has no MESH mailbox on this service.`);
      const summaryRef = (task.output ?? []).find((o: any) => o.type?.text === 'Discharge summary')?.valueReference?.reference;
      const extra = step === 'discharge-summary-attached' && summaryRef ? [await read(call, summaryRef)] : [];
      const message = redBagMessage(STEP_EVENT, { ods: taker.identifier.value, name: taker.display }, { ods: otherOds!, name: other.display }, task, extra, (options.now ?? Date.now)());
      const identifier = task.identifier?.find((i: any) => i.system === RED_BAG_IDENTIFIER)?.value ?? task.id;
      await send(from, to, message, `Red bag: ${RED_BAG_STEPS[step].display}`, `${identifier}-${step}`, { packIdentifier: identifier, taskId: task.id, step });
    },
  };
}

/** The record as the red bag's system client, each call audited. */
function systemCall(options: RedBagMeshOptions): RecordCall {
  return async (request) => {
    const events: AccessEvent[] = [];
    let status = 200;
    try {
      return await handleFhirRequest({ base: options.base, driver: options.driver, access: options.access, onAccess: (e) => events.push(e) }, request);
    } catch (err) {
      status = err instanceof FhirError ? err.status : 500;
      throw err;
    } finally {
      options.access.accessed?.(events, { status, method: request.method, path: `$red-bag-mesh ${request.path}`, query: '' });
    }
  };
}

/** Applies one inbound message once; a message that can never be applied throws RedBagMessageRejected. */
async function takeIn(options: RedBagMeshOptions, msg: InboundMessage): Promise<void> {
  const m = readRedBagMessage(msg.body);
  const sender = await options.messaging.organisationForMailbox(msg.from);
  if (!sender) throw new RedBagMessageRejected(`Red bag message ${m.headerId} came from mailbox ${msg.from}, which this service does not know; add it (with its organisation) before replaying.`);
  if (sender.toUpperCase() !== m.sourceOds) throw new RedBagMessageRejected(`Red bag message ${m.headerId} came from mailbox ${msg.from}, which belongs to ${sender}, not to its source ${m.sourceOds}.`);
  const receiver = await options.messaging.organisationForMailbox(msg.to);
  if (receiver && receiver.toUpperCase() !== m.destinationOds) throw new RedBagMessageRejected(`Red bag message ${m.headerId} was sent to mailbox ${msg.to}, which belongs to ${receiver}, not to its destination ${m.destinationOds}.`);

  const { driver } = options;
  const now = (options.now ?? Date.now)();
  const claimed = await driver.transaction((tx) => tx.run(
    "INSERT INTO redbag_messages (header_id, event_code, pack_identifier, status, claimed_ms, mesh_message_id, from_mailbox, at_ms) VALUES (?, ?, ?, 'processing', ?, ?, ?, ?) ON CONFLICT (header_id) DO NOTHING",
    [m.headerId, m.event, m.packIdentifier, now, msg.messageId, msg.from, msg.receivedAt],
  ));
  if (!claimed) {
    // Another copy: done already, being applied now (try again later), or abandoned by a crash (take it over).
    const takenOver = await driver.transaction((tx) => tx.run("UPDATE redbag_messages SET claimed_ms = ? WHERE header_id = ? AND status = 'processing' AND claimed_ms < ?", [now, m.headerId, now - CLAIM_LEASE_MS]));
    if (!takenOver) {
      const row = await driver.transaction((tx) => tx.get<{ status: string }>('SELECT status FROM redbag_messages WHERE header_id = ?', [m.headerId]));
      if (row?.status === 'done') return; // the same message again (a resend, or MESH delivering twice)
      throw new Error(`Red bag message ${m.headerId} is being applied by another copy; this one is retried.`);
    }
  }
  try {
    if (m.event === PACK_SENT_EVENT.code) await takeInPack(options, m);
    else await takeInStep(options, m);
  } catch (err) {
    // Not applied: forget the claim so a retry or a replay from the dead-letter queue tries again.
    await driver.transaction((tx) => tx.run("DELETE FROM redbag_messages WHERE header_id = ? AND status = 'processing'", [m.headerId]));
    throw err;
  }
  await driver.transaction((tx) => tx.run("UPDATE redbag_messages SET status = 'done' WHERE header_id = ?", [m.headerId]));
}

async function organisationByOds(call: RecordCall, ods: string): Promise<Resource | undefined> {
  return (await search(call, 'Organization', [['identifier', `${ODS_SYSTEM}|${ods}`]])).matches[0];
}

async function redBagTaskOf(call: RecordCall, packIdentifier: string): Promise<Resource | undefined> {
  const found = await search(call, 'Task', [['identifier', `${RED_BAG_IDENTIFIER}|${packIdentifier}`], ['code', `${RED_BAG_TASK_CODE.system}|${RED_BAG_TASK_CODE.code}`]]);
  return found.matches[0];
}

/** The one Patient here with the pack's NHS number (and, when both say, the same birth date). */
async function matchPatient(call: RecordCall, m: ReadMessage): Promise<Resource> {
  const composition = m.focus.entry[0].resource;
  const sent: Resource | undefined = m.focus.entry.map((e: any) => e?.resource).find((r: any) => r?.resourceType === 'Patient' && `Patient/${r.id}` === composition.subject?.reference);
  const nhs: string | undefined = sent?.identifier?.find((i: any) => i.system === NHS_NUMBER_SYSTEM)?.value;
  if (!nhs) throw new RedBagMessageRejected(`Red bag ${m.packIdentifier} from ${m.sourceOds}: the pack's Patient has no NHS number, so it cannot be matched safely; nothing was filed.`);
  const found = (await search(call, 'Patient', [['identifier', `${NHS_NUMBER_SYSTEM}|${nhs}`]])).matches;
  if (found.length === 0) throw new RedBagMessageRejected(`Red bag ${m.packIdentifier} from ${m.sourceOds}: no Patient here has NHS number ${nhs}. Register the person (or correct their NHS number), then replay this message from the dead-letter queue.`);
  if (found.length > 1) throw new RedBagMessageRejected(`Red bag ${m.packIdentifier} from ${m.sourceOds}: ${found.length} Patients here have NHS number ${nhs}; merge or correct them, then replay this message.`);
  const patient = found[0];
  if (sent?.birthDate && patient.birthDate && sent.birthDate !== patient.birthDate) {
    throw new RedBagMessageRejected(`Red bag ${m.packIdentifier} from ${m.sourceOds}: the Patient here with NHS number ${nhs} was born on ${patient.birthDate}, the pack says ${sent.birthDate}; nothing was filed until someone checks who this is.`);
  }
  return patient;
}

function orgReference(org: Resource | undefined, ods: string, name?: string) {
  return { ...(org ? { reference: referenceTo(org) } : {}), display: (org?.name as string | undefined) ?? name ?? ods, identifier: { system: ODS_SYSTEM, value: ods } };
}

async function takeInPack(options: RedBagMeshOptions, m: ReadMessage): Promise<void> {
  const call = systemCall(options);
  if (await redBagTaskOf(call, m.packIdentifier)) return; // filed before (a crash between filing and marking the message done)
  const hospital = await organisationByOds(call, m.destinationOds);
  if (!hospital) throw new RedBagMessageRejected(`Red bag ${m.packIdentifier}: its destination ${m.destinationOds} is not an organisation on this service.`);
  const patient = await matchPatient(call, m);
  const home = await organisationByOds(call, m.sourceOds);
  const now = (options.now ?? Date.now)();
  const at = new Date(now).toISOString();
  const name = personName(patient);
  const subject = { reference: `Patient/${patient.id}`, display: name };
  const meta = m.focus.meta?.tag ? { meta: { tag: m.focus.meta.tag } } : {};
  const requester = orgReference(home, m.sourceOds, m.sourceName);
  const owner = orgReference(hospital, m.destinationOds);
  const docUrl = `urn:uuid:${m.packIdentifier}-doc`;
  const taskUrl = `urn:uuid:${m.packIdentifier}-task`;
  // Conditional creates on the pack's identifier: two copies of one pack filed at the same moment (a resend,
  // two inbox workers or app nodes) make one red bag here, as the check above does for copies one after another.
  const once = (value: string) => onePerPack(value, subject.reference);
  const entries = [
    { fullUrl: docUrl, request: { method: 'POST', url: 'DocumentReference', ifNoneExist: once(m.packIdentifier) }, resource: {
      resourceType: 'DocumentReference', ...meta,
      masterIdentifier: { system: RED_BAG_IDENTIFIER, value: m.packIdentifier },
      status: 'current', docStatus: 'final',
      type: { coding: [TRANSFER_PACK_TYPE], text: 'Care home to hospital transfer (red bag)' },
      subject, date: m.focus.timestamp ?? at, author: [requester], custodian: requester,
      description: `Red bag for ${name}, from ${requester.display} over MESH`,
      content: [{ attachment: { contentType: 'application/fhir+json', data: Buffer.from(JSON.stringify(m.focus)).toString('base64'), title: `Red bag transfer pack: ${name}`, creation: m.focus.timestamp ?? at } }],
    } },
    { fullUrl: taskUrl, request: { method: 'POST', url: 'Task', ifNoneExist: once(m.packIdentifier) }, resource: {
      resourceType: 'Task', ...meta,
      identifier: [{ system: RED_BAG_IDENTIFIER, value: m.packIdentifier }],
      status: RED_BAG_STEPS.sent.status, businessStatus: { coding: [{ system: RED_BAG_STATUS, code: 'sent', display: RED_BAG_STEPS.sent.display }], text: RED_BAG_STEPS.sent.display },
      intent: 'order', priority: 'urgent', code: { coding: [RED_BAG_TASK_CODE] },
      description: `Red bag from ${requester.display}`,
      focus: { reference: docUrl, display: 'Red bag transfer pack' }, for: subject,
      authoredOn: m.focus.timestamp ?? at, lastModified: at, requester, owner, executionPeriod: { start: m.focus.timestamp ?? at },
      note: [{ authorString: `${requester.display} over MESH`, time: at, text: `Sent to ${owner.display} by ${requester.display}; arrived over MESH (message ${m.headerId})` }],
    } },
    { request: { method: 'POST', url: 'Task', ifNoneExist: once(`${m.packIdentifier}/acknowledge`) }, resource: {
      resourceType: 'Task', ...meta, identifier: [{ system: RED_BAG_IDENTIFIER, value: `${m.packIdentifier}/acknowledge` }],
      status: 'requested', intent: 'order', code: { coding: [ACKNOWLEDGE_REMINDER_CODE] }, description: `Acknowledge the red bag for ${name}`,
      partOf: [{ reference: taskUrl }], focus: { reference: taskUrl }, for: subject, authoredOn: at, requester, owner,
      restriction: { period: { end: new Date(now + options.settings.acknowledgeWithinHours * HOUR).toISOString() } },
    } },
  ];
  bodyOf(await call({ method: 'POST', path: '', query: [], body: { resourceType: 'Bundle', type: 'transaction', entry: entries } }));
}

async function takeInStep(options: RedBagMeshOptions, m: ReadMessage): Promise<void> {
  const call = systemCall(options);
  const task = await redBagTaskOf(call, m.packIdentifier);
  if (!task) throw new RedBagMessageRejected(`Red bag step from ${m.sourceOds}: there is no red bag ${m.packIdentifier} on this service.`);
  const step = stepOf(m.focus);
  if (!step || step === 'sent' || step === 'not-delivered') throw new RedBagMessageRejected(`Red bag ${m.packIdentifier}: the Task in the message names no step this service knows.`);
  const rule = TRANSITIONS[step];
  const entitled = rule.side === 'hospital' ? task.owner : task.requester;
  if (entitled?.identifier?.value?.toUpperCase() !== m.sourceOds) {
    throw new RedBagMessageRejected(`Red bag ${m.packIdentifier}: "${RED_BAG_STEPS[step].display}" is for ${entitled?.display ?? 'the other organisation'} to record, but the message came from ${m.sourceOds}.`);
  }
  if (stepOf(task) === step && !rule.from.includes(step)) return; // already applied
  const input = (text: string) => (m.focus.input ?? []).find((i: any) => i.type?.text === text);
  const summary = m.others.find((r) => r.resourceType === 'DocumentReference')?.content?.[0]?.attachment;
  const lastNote: string | undefined = m.focus.note?.at(-1)?.text;
  try {
    await advanceTransfer({ call, caller: { display: `${m.sourceName ?? m.sourceOds} over MESH`, role: 'system' }, base: options.base, now: options.now ?? Date.now, settings: { acknowledgeWithinHours: options.settings.acknowledgeWithinHours } }, task.id, {
      step, ifMatch: `W/"${task.meta?.versionId}"`,
      ward: step === 'in-hospital' ? input('Ward')?.valueString : undefined,
      expectedDischarge: step === 'in-hospital' ? input('Expected discharge')?.valueDate : undefined,
      dischargeSummaryAttachment: step === 'discharge-summary-attached' ? summary : undefined,
      note: lastNote ? `recorded at ${m.sourceName ?? m.sourceOds} as "${lastNote}"` : undefined,
    });
  } catch (err) {
    if (err instanceof FhirError && err.status !== 412 && err.status < 500) {
      throw new RedBagMessageRejected(`Red bag ${m.packIdentifier}: "${RED_BAG_STEPS[step].display}" from ${m.sourceOds} could not be applied: ${err.issues.map((i) => i.diagnostics).join(' ')}`);
    }
    throw err; // a change made meanwhile here (412), or a fault: retried
  }
}

interface SentRow { mesh_message_id: string; pack_identifier: string; task_id: string; step: string; to_mailbox: string; superseded: number; undelivered: string | null }

/**
 * A MESH report that a red bag message sent from here was not delivered (H-042). Answers false when no
 * message sent from here has its MESH id (messaging keeps the report as a dead letter). For the latest copy
 * of a pack whose Task still reads "Sent to hospital", the Task reads "Not received by the hospital" with
 * MESH's reason (Task.statusReason and a note), written before this answers, so the report is acknowledged
 * only once that is stored; a write that fails (a change made meanwhile) throws and the report is retried. A
 * report about an earlier copy of a pack sent again, one the hospital has since acknowledged, or a second
 * copy of the same report changes nothing. A report about a step sent to the other side is a dead letter
 * saying which step did not arrive, for someone to telephone them.
 */
async function settleUndelivered(options: RedBagMeshOptions, report: DeliveryReport): Promise<boolean> {
  const { driver } = options;
  const linked = report.report.linkedMessageId;
  const row = await driver.get<SentRow>('SELECT mesh_message_id, pack_identifier, task_id, step, to_mailbox, superseded, undelivered FROM redbag_sent WHERE mesh_message_id = ?', [linked]);
  if (!row) return false;
  const status = [report.report.statusCode, report.report.statusDescription].filter(Boolean).join(': ');
  const why = `MESH reported that it was not delivered${status ? ` (${status})` : ''}`;
  if (row.step !== 'sent') {
    const display = Object.hasOwn(RED_BAG_STEPS, row.step) ? RED_BAG_STEPS[row.step as TransferStep].display : row.step;
    throw new options.PermanentFailure(`Red bag ${row.pack_identifier} (Task/${row.task_id}): the step "${display}" sent to mailbox ${row.to_mailbox} in MESH message ${linked} did not arrive: ${why}. Nobody there has been told by message: telephone them.`);
  }
  if (!Number(row.superseded)) {
    const call = systemCall(options);
    const task = await read(call, `Task/${encodeURIComponent(row.task_id)}`);
    if (stepOf(task) === 'sent') {
      const at = new Date((options.now ?? Date.now)()).toISOString();
      const hospital: string = task.owner?.display ?? row.to_mailbox;
      const next: Resource = {
        ...task,
        meta: { ...task.meta },
        businessStatus: { coding: [{ system: RED_BAG_STATUS, code: 'not-delivered', display: RED_BAG_STEPS['not-delivered'].display }], text: RED_BAG_STEPS['not-delivered'].display },
        status: RED_BAG_STEPS['not-delivered'].status,
        statusReason: { text: why },
        lastModified: at,
        note: [...(task.note ?? []), { authorString: 'MESH (the NHS messaging service)', time: at, text: `Not received by ${hospital}: ${why}. Telephone the ward, and send the red bag again` }],
      };
      delete next.meta?.versionId;
      delete next.meta?.lastUpdated;
      bodyOf(await call({ method: 'POST', path: '', query: [], body: { resourceType: 'Bundle', type: 'transaction', entry: [{ resource: next, request: { method: 'PUT', url: `Task/${task.id}`, ifMatch: `W/"${task.meta?.versionId}"` } }] } }));
    }
  }
  await driver.transaction((tx) => tx.run('UPDATE redbag_sent SET undelivered = ? WHERE mesh_message_id = ?', [why, linked]));
  return true;
}
