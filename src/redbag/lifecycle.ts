// A red bag's life as FHIR: sending writes the pack (a DocumentReference holding the document Bundle),
// its lifecycle Task and two reminder Tasks in one transaction; each later step is a new version of the
// Task (status, businessStatus and a note saying who did what and when), written only against the
// version the person saw (If-Match), so two people acting at once cannot overwrite each other.
import { randomUUID } from 'node:crypto';
import { validate } from 'uuid';
import { FhirError, type RecordCaller } from '../record/index.ts';
import { ACKNOWLEDGE_REMINDER_CODE, MANAGER_VISIT_CODE, ODS_SYSTEM, RED_BAG_IDENTIFIER, RED_BAG_STATUS, RED_BAG_STEPS, RED_BAG_TASK_CODE, TRANSFER_PACK_TYPE, type RedBagStep, type TransferStep } from './codes.ts';
import { detailsFromParameters, type TransferDetails } from './details.ts';
import { gatherResident, type ResidentRecord } from './gather.ts';
import { blocking, checkTransfer, type SafetyFinding } from './checks.ts';
import { transferPackBundle } from './pack.ts';
import { bodyOf, odsOf, onePerPack, read, referenceTo, search, type RecordCall, type Resource } from './recordCalls.ts';
import { personName } from './readings.ts';
import { deliverTransferPack, type RedBagCourier } from './delivery.ts';

export interface RedBagSettings {
  /** A reminder falls due when the hospital has not acknowledged a pack within this many hours. */
  acknowledgeWithinHours: number;
  /** Carries packs and steps to hospitals (or homes) served by another system; absent: this deployment only. */
  courier?: RedBagCourier;
}

export const DEFAULT_RED_BAG_SETTINGS: RedBagSettings = { acknowledgeWithinHours: 4 };

export interface RedBagContext {
  call: RecordCall;
  caller?: RecordCaller;
  base: string;
  now: () => number;
  settings: RedBagSettings;
}

const HOUR = 3600_000;

function problem(status: number, code: 'required' | 'business-rule' | 'forbidden' | 'conflict' | 'invalid' | 'not-found' | 'exception', diagnostics: string[]): FhirError {
  return new FhirError(status, diagnostics.map((d) => ({ severity: 'error', code, diagnostics: d })));
}

/** The hospital with this ODS code, as an Organization on the record. */
async function hospitalByOds(call: RecordCall, ods: string | undefined): Promise<Resource | undefined> {
  if (!ods || !/^[A-Za-z0-9]{3,10}$/.test(ods)) return undefined;
  return (await search(call, 'Organization', [['identifier', `${ODS_SYSTEM}|${ods.toUpperCase()}`]])).matches[0];
}

export interface PreparedPack {
  bundle: Resource;
  findings: SafetyFinding[];
  record: ResidentRecord;
  destination?: Resource;
}

/** The pack as it would be sent now, with the safety checks; nothing is written. */
export async function prepareTransferPack(ctx: RedBagContext, patientId: string, details: TransferDetails, sending = false, identifier?: string): Promise<PreparedPack> {
  const now = ctx.now();
  const [record, destination] = await Promise.all([gatherResident(ctx.call, patientId, now, ctx.caller?.organisation), hospitalByOds(ctx.call, details.destination)]);
  const findings = checkTransfer(record, details, destination, now, sending);
  const bundle = transferPackBundle({ record, details, destination, findings, caller: ctx.caller, now, base: ctx.base, status: sending ? 'final' : 'preliminary', identifier });
  return { bundle, findings, record, destination };
}

function actorNote(caller: RecordCaller | undefined, at: string, text: string) {
  const who = caller ? `${caller.display}${caller.organisation ? ` (${caller.organisation})` : ''}` : 'Unknown';
  return { ...(caller?.reference ? { authorReference: { reference: caller.reference, display: caller.display } } : { authorString: who }), time: at, text: `${text}, by ${who}` };
}

function orgRef(org: Resource) {
  return { reference: referenceTo(org), display: org.name, identifier: { system: ODS_SYSTEM, value: odsOf(org) } };
}

function statusOf(step: RedBagStep) {
  return { status: RED_BAG_STEPS[step].status, businessStatus: { coding: [{ system: RED_BAG_STATUS, code: step, display: RED_BAG_STEPS[step].display }], text: RED_BAG_STEPS[step].display } };
}

/**
 * Sends the pack: refuses (422, every missing item listed) unless nothing mandatory is missing; otherwise
 * writes it, its Task and reminders in one transaction and hands it to delivery. Answers the Task.
 * `submission` (a UUID the caller made once per send, such as the form's) becomes the pack's identifier:
 * a repeat of the same send (a second click of "Send", a resent request) writes nothing more and answers
 * with the pack the first one made, so a hospital never gets two red bags for one transfer (H-030).
 */
export async function sendTransferPack(ctx: RedBagContext, patientId: string, details: TransferDetails, submission?: string): Promise<{ task: Resource; bundle: Resource; findings: SafetyFinding[] }> {
  const identifier = submission && validate(submission) ? submission : randomUUID();
  const { bundle, findings, record, destination } = await prepareTransferPack(ctx, patientId, details, true, identifier);
  const missing = blocking(findings);
  if (missing.length) throw problem(422, 'required', missing.map((f) => `The red bag cannot be sent: ${f.text}`));
  const home = record.careHome!;
  const hospital = destination!;
  if (ctx.caller?.organisation && ctx.caller.organisation.toUpperCase() !== odsOf(home)?.toUpperCase()) {
    throw problem(403, 'forbidden', [`Only ${home.name} (the person's care home) can send their red bag; you act for ${ctx.caller.organisation}.`]);
  }
  // A pack that could not reach the hospital must not look sent: refuse before anything is written.
  const unreachable = await ctx.settings.courier?.cannotDeliver(odsOf(home)!, odsOf(hospital)!);
  if (unreachable) throw problem(422, 'business-rule', [`The red bag cannot be sent to ${hospital.name}: ${unreachable}`]);
  const now = ctx.now();
  const at = new Date(now).toISOString();
  const name = personName(record.patient);
  const patient = { reference: `Patient/${record.patient.id}`, display: name };
  const meta = bundle.meta ? { meta: bundle.meta } : {};
  const docUrl = `urn:uuid:${randomUUID()}`;
  const taskUrl = `urn:uuid:${randomUUID()}`;
  const pack = {
    resourceType: 'DocumentReference', ...meta,
    masterIdentifier: { system: RED_BAG_IDENTIFIER, value: identifier },
    status: 'current', docStatus: 'final',
    type: { coding: [TRANSFER_PACK_TYPE], text: 'Care home to hospital transfer (red bag)' },
    subject: patient, date: at,
    author: [orgRef(home)],
    custodian: orgRef(home),
    description: `Red bag for ${name}: ${details.reason}`,
    content: [{ attachment: { contentType: 'application/fhir+json', data: Buffer.from(JSON.stringify(bundle)).toString('base64'), title: `Red bag transfer pack: ${name}`, creation: at } }],
  };
  const task = {
    resourceType: 'Task', ...meta,
    identifier: [{ system: RED_BAG_IDENTIFIER, value: identifier }],
    ...statusOf('sent'),
    intent: 'order', priority: 'urgent',
    code: { coding: [RED_BAG_TASK_CODE] },
    description: details.reason,
    focus: { reference: docUrl, display: 'Red bag transfer pack' },
    for: patient,
    authoredOn: at, lastModified: at,
    requester: orgRef(home), owner: orgRef(hospital),
    executionPeriod: { start: at },
    note: [actorNote(ctx.caller, at, `Sent to ${hospital.name}`)],
  };
  const reminder = (code: object, owner: Resource, description: string, period: { start?: string; end: string }) => ({
    resourceType: 'Task', ...meta, status: 'requested', intent: 'order', code: { coding: [code] }, description,
    partOf: [{ reference: taskUrl }], focus: { reference: taskUrl }, for: patient, authoredOn: at,
    requester: orgRef(home), owner: orgRef(owner), restriction: { period },
  });
  // Each entry is created only once per send: the repeat of a send matches what the first one made.
  const once = (value: string) => ({ ifNoneExist: onePerPack(value, patient.reference) });
  const entries = [
    { fullUrl: docUrl, resource: pack, request: { method: 'POST', url: 'DocumentReference', ...once(identifier) } },
    { fullUrl: taskUrl, resource: task, request: { method: 'POST', url: 'Task', ...once(identifier) } },
    { resource: { ...reminder(ACKNOWLEDGE_REMINDER_CODE, hospital, `Acknowledge the red bag for ${name}`, { end: new Date(now + ctx.settings.acknowledgeWithinHours * HOUR).toISOString() }), identifier: [{ system: RED_BAG_IDENTIFIER, value: `${identifier}/acknowledge` }] }, request: { method: 'POST', url: 'Task', ...once(`${identifier}/acknowledge`) } },
    { resource: { ...reminder(MANAGER_VISIT_CODE, home, `Care home manager to visit ${name} in hospital between 48 and 72 hours after transfer`, { start: new Date(now + 48 * HOUR).toISOString(), end: new Date(now + 72 * HOUR).toISOString() }), identifier: [{ system: RED_BAG_IDENTIFIER, value: `${identifier}/manager-visit` }] }, request: { method: 'POST', url: 'Task', ...once(`${identifier}/manager-visit`) } },
  ];
  const result = bodyOf(await ctx.call({ method: 'POST', path: '', query: [], body: { resourceType: 'Bundle', type: 'transaction', entry: entries } }));
  const saved: Resource = result.entry?.[1]?.resource ?? (await read(ctx.call, String(result.entry?.[1]?.response?.location ?? '').split('/_history')[0]));
  // A repeat of the same send delivers what the first one stored, again: a hospital files a pack once (by
  // its identifier), and a delivery the first request could not make is tried once more rather than hidden.
  const sent = String(result.entry?.[1]?.response?.status ?? '').startsWith('201') ? bundle : await packOf(ctx, saved);
  try {
    await deliverTransferPack(sent, { hospitalOds: odsOf(hospital)!, homeOds: odsOf(home), task: saved }, ctx.settings.courier);
  } catch (err) {
    throw problem(502, 'exception', [`The red bag is saved here (Task/${saved.id}) but could not be delivered to ${hospital.name}: ${(err as Error).message} Telephone the ward and send the printed pack with the resident.`]);
  }
  return { task: saved, bundle: sent, findings };
}

export function stepOf(task: Resource): RedBagStep | undefined {
  const code = task.businessStatus?.coding?.find((c: { system?: string }) => c.system === RED_BAG_STATUS)?.code;
  return code && Object.hasOwn(RED_BAG_STEPS, code) ? (code as RedBagStep) : undefined;
}

export function isRedBagTask(task: Resource): boolean {
  return (task.code?.coding ?? []).some((c: { system?: string; code?: string }) => c.system === RED_BAG_TASK_CODE.system && c.code === RED_BAG_TASK_CODE.code);
}

/**
 * Which side takes each step, and from which steps. A hospital that acknowledges a pack MESH reported as not
 * delivered (a copy reached it after all) is believed: it has the pack. Sending again is not a step here:
 * see sendAgain.
 */
export const TRANSITIONS: Record<TransferStep, { side: 'hospital' | 'care-home'; from: RedBagStep[] }> = {
  received: { side: 'hospital', from: ['sent', 'not-delivered'] },
  'in-hospital': { side: 'hospital', from: ['received', 'in-hospital'] },
  'discharge-summary-attached': { side: 'hospital', from: ['received', 'in-hospital', 'discharge-summary-attached'] },
  returned: { side: 'care-home', from: ['received', 'in-hospital', 'discharge-summary-attached'] },
  closed: { side: 'care-home', from: ['returned'] },
};

export interface StepInput {
  step: string;
  /** The ETag of the version the person saw (W/"3"); required. */
  ifMatch?: string;
  ward?: string;
  /** YYYY-MM-DD. */
  expectedDischarge?: string;
  /** The discharge summary as text (stored as a DocumentReference), or a reference to one on the record. */
  dischargeSummary?: string;
  dischargeSummaryReference?: string;
  /** The discharge summary as it arrived from another system (its DocumentReference attachment). */
  dischargeSummaryAttachment?: { contentType?: string; data?: string; title?: string };
  note?: string;
}

/** The red bag's Task as it is now, provided it is the version the person saw (If-Match). */
async function taskAsSeen(ctx: RedBagContext, taskId: string, ifMatch: string | undefined): Promise<Resource> {
  if (!ifMatch) throw new FhirError(428, [{ severity: 'error', code: 'required', diagnostics: 'Send If-Match with the version of the red bag you are looking at (its ETag, e.g. W/"2"), so a change made meanwhile by someone else is not overwritten.' }]);
  const task = await read(ctx.call, `Task/${encodeURIComponent(taskId)}`);
  if (!isRedBagTask(task)) throw problem(404, 'not-found', [`Task/${taskId} is not a red bag.`]);
  // A person acting on an older version must see what changed before anything else is said.
  const seen = /^(?:W\/)?"?(\d{1,9})"?$/.exec(ifMatch.trim())?.[1];
  if (seen !== String(task.meta?.versionId)) throw problem(412, 'conflict', [`This red bag has changed since you looked (it is at version ${task.meta?.versionId}, you saw ${ifMatch}): read it again, then decide.`]);
  return task;
}

/**
 * Moves a red bag on one step, as the caller; answers the Task's new version. The step 'sent' sends again a
 * pack MESH reported the hospital never received (see sendAgain).
 */
export async function advanceTransfer(ctx: RedBagContext, taskId: string, input: StepInput): Promise<Resource> {
  if (input.step === 'sent') return sendAgain(ctx, taskId, input.ifMatch);
  if (!Object.hasOwn(TRANSITIONS, input.step)) throw problem(400, 'invalid', [`'${input.step}' is not a red bag step: use ${Object.keys(TRANSITIONS).join(', ')} (or sent, to send again a pack the hospital did not receive).`]);
  const step = input.step as keyof typeof TRANSITIONS;
  const task = await taskAsSeen(ctx, taskId, input.ifMatch);
  const current = stepOf(task);
  const rule = TRANSITIONS[step];
  if (!current || !rule.from.includes(current)) throw problem(409, 'business-rule', [`This red bag is "${current ? RED_BAG_STEPS[current].display : 'unknown'}"; "${RED_BAG_STEPS[step].display}" can only follow ${rule.from.map((s) => `"${RED_BAG_STEPS[s].display}"`).join(' or ')}.`]);
  const sideOrg = rule.side === 'hospital' ? task.owner : task.requester;
  const sideOds: string | undefined = sideOrg?.identifier?.value;
  if (ctx.caller?.organisation && ctx.caller.organisation.toUpperCase() !== sideOds?.toUpperCase()) {
    throw problem(403, 'forbidden', [`"${RED_BAG_STEPS[step].display}" is for ${sideOrg?.display ?? 'the other organisation'} to record; you act for ${ctx.caller.organisation}.`]);
  }
  const now = ctx.now();
  const at = new Date(now).toISOString();
  const next: Resource = { ...task, ...statusOf(step), lastModified: at };
  const entries: unknown[] = [];
  let what: string = RED_BAG_STEPS[step].display;
  if (step === 'in-hospital') {
    if (!input.ward && !input.expectedDischarge) throw problem(400, 'required', ['Say which ward the person is on, or when they are expected to be discharged, or both.']);
    if (input.expectedDischarge && !/^\d{4}-\d{2}-\d{2}$/.test(input.expectedDischarge)) throw problem(400, 'invalid', [`The expected discharge date must be a date such as 2026-11-05, not '${input.expectedDischarge}'.`]);
    const keep = (next.input ?? []).filter((i: any) => !(input.ward && i.type?.text === 'Ward') && !(input.expectedDischarge && i.type?.text === 'Expected discharge'));
    next.input = [...keep, ...(input.ward ? [{ type: { text: 'Ward' }, valueString: input.ward }] : []), ...(input.expectedDischarge ? [{ type: { text: 'Expected discharge' }, valueDate: input.expectedDischarge }] : [])];
    what = `In hospital${input.ward ? `, ward ${input.ward}` : ''}${input.expectedDischarge ? `, expected discharge ${input.expectedDischarge}` : ''}`;
  }
  if (step === 'discharge-summary-attached') {
    let summaryRef: string;
    if (input.dischargeSummaryReference) {
      if (!/^DocumentReference\/[A-Za-z0-9\-.]{1,64}$/.test(input.dischargeSummaryReference)) throw problem(400, 'invalid', ['The discharge summary reference must be DocumentReference/[id].']);
      await read(ctx.call, input.dischargeSummaryReference); // must exist, in the caller's view
      summaryRef = input.dischargeSummaryReference;
    } else if (input.dischargeSummary?.trim() || input.dischargeSummaryAttachment?.data) {
      const attachment = input.dischargeSummaryAttachment?.data
        ? { contentType: input.dischargeSummaryAttachment.contentType ?? 'application/octet-stream', data: input.dischargeSummaryAttachment.data, title: input.dischargeSummaryAttachment.title ?? 'Discharge summary', creation: at }
        : { contentType: 'text/plain; charset=utf-8', data: Buffer.from(input.dischargeSummary!.trim()).toString('base64'), title: 'Discharge summary', creation: at };
      summaryRef = `urn:uuid:${randomUUID()}`;
      entries.push({ fullUrl: summaryRef, request: { method: 'POST', url: 'DocumentReference' }, resource: {
        resourceType: 'DocumentReference', ...(task.meta?.tag ? { meta: { tag: task.meta.tag } } : {}), status: 'current', docStatus: 'final',
        type: { coding: [{ system: 'http://loinc.org', code: '18842-5', display: 'Discharge summary' }] }, subject: task.for, date: at,
        author: [{ reference: task.owner.reference, display: task.owner.display }], custodian: { reference: task.owner.reference, display: task.owner.display },
        description: 'Discharge summary (returned in the red bag)',
        content: [{ attachment }],
      } });
    } else throw problem(400, 'required', ['Attach the discharge summary: its text, or a reference to a DocumentReference on the record.']);
    next.output = [...(next.output ?? []).filter((o: any) => o.type?.text !== 'Discharge summary'), { type: { text: 'Discharge summary' }, valueReference: { reference: summaryRef } }];
  }
  if (step === 'closed') next.executionPeriod = { ...next.executionPeriod, end: at };
  next.note = [...(next.note ?? []), actorNote(ctx.caller, at, input.note?.trim() ? `${what}: ${input.note.trim().slice(0, 1000)}` : what)];
  delete next.meta?.versionId;
  delete next.meta?.lastUpdated;
  entries.push({ resource: next, request: { method: 'PUT', url: `Task/${task.id}`, ifMatch: input.ifMatch } });
  if (step === 'received') {
    const reminders = await search(ctx.call, 'Task', [['part-of', `Task/${task.id}`], ['code', `${ACKNOWLEDGE_REMINDER_CODE.system}|${ACKNOWLEDGE_REMINDER_CODE.code}`], ['status', 'requested']]);
    for (const r of reminders.matches) entries.push({ resource: { ...r, status: 'completed', lastModified: at, meta: r.meta?.tag ? { tag: r.meta.tag } : undefined }, request: { method: 'PUT', url: `Task/${r.id}` } });
  }
  await ctx.call({ method: 'POST', path: '', query: [], body: { resourceType: 'Bundle', type: 'transaction', entry: entries } });
  const saved = await read(ctx.call, `Task/${task.id}`);
  try {
    await ctx.settings.courier?.relayStep(ctx.call, saved, step);
  } catch (err) {
    const other = rule.side === 'hospital' ? task.requester : task.owner;
    throw problem(502, 'exception', [`"${RED_BAG_STEPS[step].display}" is recorded here (Task/${task.id}) but could not be sent to ${other?.display ?? 'the other organisation'}: ${(err as Error).message} Tell them by telephone.`]);
  }
  return saved;
}

/**
 * Sends again a pack MESH reported as not delivered to a hospital on another system (H-042): only its care
 * home may, only from "Not received by the hospital", and only against the version the person saw. The
 * stored pack goes first (the hospital files a pack once, by its identifier, so a copy it did get is not
 * filed twice); the Task reads "Sent to hospital" again only once it has gone, so a pack that still cannot
 * be handed to MESH keeps saying it was not received (502, telling staff to telephone the ward).
 */
async function sendAgain(ctx: RedBagContext, taskId: string, ifMatch: string | undefined): Promise<Resource> {
  const task = await taskAsSeen(ctx, taskId, ifMatch);
  const current = stepOf(task);
  if (current !== 'not-delivered') throw problem(409, 'business-rule', [`This red bag is "${current ? RED_BAG_STEPS[current].display : 'unknown'}"; it can be sent again only when the hospital did not receive it.`]);
  const homeOds: string | undefined = task.requester?.identifier?.value;
  const hospitalOds: string | undefined = task.owner?.identifier?.value;
  if (ctx.caller?.organisation && ctx.caller.organisation.toUpperCase() !== homeOds?.toUpperCase()) {
    throw problem(403, 'forbidden', [`Only ${task.requester?.display ?? 'the care home that sent it'} can send this red bag again; you act for ${ctx.caller.organisation}.`]);
  }
  const pack = await packOf(ctx, task);
  try {
    await deliverTransferPack(pack, { hospitalOds: hospitalOds ?? '', homeOds, task }, ctx.settings.courier);
  } catch (err) {
    throw problem(502, 'exception', [`The red bag could not be sent again to ${task.owner?.display ?? 'the hospital'}: ${(err as Error).message} Telephone the ward and send the printed pack with the resident.`]);
  }
  const at = new Date(ctx.now()).toISOString();
  const next: Resource = { ...task, meta: { ...task.meta }, ...statusOf('sent'), lastModified: at, note: [...(task.note ?? []), actorNote(ctx.caller, at, `Sent again to ${task.owner?.display ?? 'the hospital'}`)] };
  delete next.statusReason;
  delete next.meta?.versionId;
  delete next.meta?.lastUpdated;
  await ctx.call({ method: 'POST', path: '', query: [], body: { resourceType: 'Bundle', type: 'transaction', entry: [{ resource: next, request: { method: 'PUT', url: `Task/${task.id}`, ifMatch } }] } });
  return read(ctx.call, `Task/${task.id}`);
}

/** The document Bundle a red bag's Task points at (the pack as it was sent). */
export async function packOf(ctx: RedBagContext, task: Resource): Promise<Resource> {
  const doc = await read(ctx.call, task.focus.reference);
  const data = doc.content?.[0]?.attachment?.data;
  if (!data) throw problem(404, 'not-found', [`${task.focus.reference} holds no transfer pack.`]);
  return JSON.parse(Buffer.from(data, 'base64').toString('utf8'));
}

export { detailsFromParameters };
