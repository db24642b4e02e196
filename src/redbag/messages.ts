// Red bag messages between deployments: FHIR Bundles of type message whose MessageHeader names the event
// (PACK_SENT_EVENT or STEP_EVENT), the sending and receiving organisations by ODS code, and its focus:
//   red-bag-sent  focus = the pack's document Bundle, as sent;
//   red-bag-step  focus = the sender's lifecycle Task after the step (identifier = the pack's identifier,
//                 businessStatus = the step, input = ward and expected discharge, last note = who did it),
//                 plus the discharge summary DocumentReference when that is the step.
import { randomUUID } from 'node:crypto';
import { ODS_ENDPOINT, ODS_SYSTEM, PACK_SENT_EVENT, RED_BAG_EVENT, RED_BAG_IDENTIFIER, STEP_EVENT } from './codes.ts';
import type { Resource } from './recordCalls.ts';

export interface Party { ods: string; name?: string }

export function redBagMessage(event: typeof PACK_SENT_EVENT | typeof STEP_EVENT, from: Party, to: Party, focus: Resource, extra: Resource[] = [], now = Date.now()): Resource {
  const id = randomUUID();
  const focusUrl = `urn:uuid:${randomUUID()}`;
  const header = {
    resourceType: 'MessageHeader', id,
    eventCoding: { ...event },
    source: { endpoint: `${ODS_ENDPOINT}${from.ods}`, ...(from.name ? { name: from.name } : {}) },
    sender: { identifier: { system: ODS_SYSTEM, value: from.ods }, ...(from.name ? { display: from.name } : {}) },
    destination: [{ endpoint: `${ODS_ENDPOINT}${to.ods}`, ...(to.name ? { name: to.name } : {}), receiver: { identifier: { system: ODS_SYSTEM, value: to.ods } } }],
    focus: [{ reference: focusUrl }],
  };
  return {
    resourceType: 'Bundle', id: randomUUID(), type: 'message', timestamp: new Date(now).toISOString(),
    entry: [
      { fullUrl: `urn:uuid:${id}`, resource: header },
      { fullUrl: focusUrl, resource: focus },
      ...extra.map((r) => ({ fullUrl: `urn:uuid:${randomUUID()}`, resource: r })),
    ],
  } as Resource;
}

export interface ReadMessage {
  headerId: string;
  event: 'red-bag-sent' | 'red-bag-step';
  sourceOds: string;
  destinationOds: string;
  sourceName?: string;
  focus: Resource;
  /** The other resources carried (a discharge summary). */
  others: Resource[];
  packIdentifier: string;
}

/** Thrown for a message that can never be applied; its text is the reason kept with the dead letter. */
export class RedBagMessageRejected extends Error {}

function odsOfEndpoint(endpoint: unknown): string | undefined {
  return typeof endpoint === 'string' && endpoint.startsWith(ODS_ENDPOINT) ? endpoint.slice(ODS_ENDPOINT.length).toUpperCase() : undefined;
}

/** Reads and checks a red bag message's shape; every problem is a sentence in RedBagMessageRejected. */
export function readRedBagMessage(body: Buffer): ReadMessage {
  let bundle: any;
  try {
    bundle = JSON.parse(body.toString('utf8'));
  } catch {
    throw new RedBagMessageRejected('The red bag message is not JSON (a FHIR Bundle of type message was expected).');
  }
  if (bundle?.resourceType !== 'Bundle' || bundle.type !== 'message' || !Array.isArray(bundle.entry)) throw new RedBagMessageRejected('The red bag message is not a FHIR Bundle of type message.');
  const header = bundle.entry[0]?.resource;
  if (header?.resourceType !== 'MessageHeader' || typeof header.id !== 'string' || !header.id) throw new RedBagMessageRejected('The first entry of a red bag message must be a MessageHeader with an id.');
  const code = header.eventCoding?.system === RED_BAG_EVENT ? header.eventCoding.code : undefined;
  if (code !== PACK_SENT_EVENT.code && code !== STEP_EVENT.code) throw new RedBagMessageRejected(`MessageHeader ${header.id}: the event must be ${RED_BAG_EVENT}|${PACK_SENT_EVENT.code} or |${STEP_EVENT.code}, not ${header.eventCoding?.system ?? '?'}|${header.eventCoding?.code ?? '?'}.`);
  const sourceOds = odsOfEndpoint(header.source?.endpoint);
  const destinationOds = odsOfEndpoint(header.destination?.[0]?.endpoint);
  if (!sourceOds || !destinationOds) throw new RedBagMessageRejected(`MessageHeader ${header.id}: source and destination endpoints must be ${ODS_ENDPOINT}<ODS code>.`);
  const focusUrl = header.focus?.[0]?.reference;
  const focus = bundle.entry.find((e: any) => e?.fullUrl === focusUrl)?.resource;
  const wanted = code === PACK_SENT_EVENT.code ? 'Bundle' : 'Task';
  if (!focus || focus.resourceType !== wanted) throw new RedBagMessageRejected(`MessageHeader ${header.id}: its focus must be the ${wanted === 'Bundle' ? "pack's document Bundle" : "red bag's Task"}, carried in the message.`);
  const identifiers: any[] = wanted === 'Bundle' ? [focus.identifier] : focus.identifier ?? [];
  const packIdentifier = identifiers.find((i) => i?.system === RED_BAG_IDENTIFIER)?.value;
  if (typeof packIdentifier !== 'string' || !/^[A-Za-z0-9\-.]{1,64}$/.test(packIdentifier)) throw new RedBagMessageRejected(`MessageHeader ${header.id}: the ${wanted} carries no red bag identifier (${RED_BAG_IDENTIFIER}).`);
  if (wanted === 'Bundle' && (focus.type !== 'document' || focus.entry?.[0]?.resource?.resourceType !== 'Composition')) throw new RedBagMessageRejected(`MessageHeader ${header.id}: the pack must be a document Bundle starting with its Composition.`);
  const others = bundle.entry.slice(1).map((e: any) => e?.resource).filter((r: any) => r && r !== focus);
  return { headerId: header.id, event: code, sourceOds, destinationOds, sourceName: header.source?.name, focus, others, packIdentifier };
}
