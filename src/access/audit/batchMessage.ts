// Answered requests as the audit trail keeps them until they are written, and as a batch travels to the
// audit writer thread: packed into bytes the moment each request is recorded. Objects kept for the up to
// 100 ms before a batch is written would survive the request thread's young-generation collections and be
// copied and promoted by them (measured: about half again the request thread's collection time per read);
// bytes outside the JavaScript heap cost those collections nothing, and a batch crosses to the writer as
// one buffer, moved rather than copied. Each distinct actor travels once per batch, as an object.
import type { AccessEvent } from '../../record/index.ts';
import type { Actor } from '../actor.ts';
import type { AuditedRequest } from './auditEvent.ts';

/** One batch: `count` requests packed in `bytes`, whose actors are indexes into `actors`. */
export interface BatchMessage { bytes: Uint8Array<ArrayBuffer>; actors: Actor[]; count: number }

const ABSENT = 0xffffffff;
const INITIAL_BYTES = 64 * 1024;

/**
 * What a request weighs against the batch and backlog limits: the things it touched (at least 1). A view of
 * the dead-letter queue names each dead letter it showed (up to 500 through the API) and each person whose
 * NHS number it showed, one index row each.
 */
export const eventCount = (r: AuditedRequest) => Math.max(1, r.events.length, (r.deadLetterView?.messageIds.length ?? 0) + (r.deadLetterView?.patientIds?.length ?? 0));

/**
 * Requests packed in order; the oldest are taken out as a batch (`message`) and forgotten once written
 * (`drop`), so a batch that could not be written stays where it was.
 */
export class PackedRequests {
  private bytes = Buffer.allocUnsafe(INITIAL_BYTES);
  private end = 0;
  /** Where each held request starts in `bytes`, and its weight; held requests are those from `first` on. */
  private starts: number[] = [];
  private weights: number[] = [];
  private first = 0;
  private actors: Actor[] = [];
  private actorIndex = new Map<Actor, number>();

  /** How many requests are held. */
  get length(): number {
    return this.starts.length - this.first;
  }

  /** The weight of the i-th held request (0 = oldest). */
  weight(i: number): number {
    return this.weights[this.first + i];
  }

  /** Packs one request; throws (holding nothing of it) only for a request that breaks its types. */
  push(request: AuditedRequest): void {
    const start = this.end;
    try {
      this.pack(request);
    } catch (err) {
      this.end = start;
      throw err;
    }
    this.starts.push(start);
    this.weights.push(eventCount(request));
  }

  private pack(request: AuditedRequest): void {
    let actor = -1;
    if (request.actor) {
      actor = this.actorIndex.get(request.actor) ?? -1;
      if (actor < 0) {
        actor = this.actors.push(request.actor) - 1;
        this.actorIndex.set(request.actor, actor);
      }
    }
    const o = request.outcome;
    this.reserve(16);
    this.end = this.bytes.writeDoubleLE(request.at, this.end);
    this.end = this.bytes.writeInt32LE(actor, this.end);
    this.end = this.bytes.writeInt32LE(o.status | 0, this.end);
    this.text(request.address);
    this.text(o.method);
    this.text(o.path);
    this.text(o.query);
    // Sign-ins and sign-outs are rare: their attempt travels as JSON.
    this.text(request.authentication ? JSON.stringify(request.authentication) : undefined);
    // So are administrators' changes.
    this.text(request.administration ? JSON.stringify(request.administration) : undefined);
    // And people's decisions about held HL7 v2 messages.
    this.text(request.heldMessage ? JSON.stringify(request.heldMessage) : undefined);
    // And views of the dead-letter queue.
    this.text(request.deadLetterView ? JSON.stringify(request.deadLetterView) : undefined);
    this.text(request.purpose);
    this.count(request.events.length);
    for (const e of request.events) {
      this.text(e.interaction);
      this.text(e.resourceType);
      this.text(e.id);
      this.text(e.query);
      this.count(e.patientIds.length);
      for (const p of e.patientIds) this.text(p);
    }
  }

  /** The oldest n held requests as one batch, in bytes of their own (so they can be moved to a thread). */
  message(n: number): BatchMessage {
    const from = this.starts[this.first];
    const to = this.first + n < this.starts.length ? this.starts[this.first + n] : this.end;
    const bytes = new Uint8Array(to - from);
    bytes.set(this.bytes.subarray(from, to));
    return { bytes, actors: this.actors.slice(), count: n };
  }

  /** Forgets the oldest n held requests. */
  drop(n: number): void {
    this.first += n;
    if (this.first >= this.starts.length) {
      // Empty (the usual case after a flush): start again, forgetting the actors too.
      if (this.bytes.length > 16 * INITIAL_BYTES) this.bytes = Buffer.allocUnsafe(INITIAL_BYTES);
      this.end = 0;
      this.starts = [];
      this.weights = [];
      this.first = 0;
      this.actors = [];
      this.actorIndex = new Map();
    } else if (this.first > this.starts.length / 2) {
      const from = this.starts[this.first];
      this.bytes.copyWithin(0, from, this.end);
      this.end -= from;
      this.starts = this.starts.slice(this.first).map((s) => s - from);
      this.weights = this.weights.slice(this.first);
      this.first = 0;
    }
  }

  private reserve(n: number): void {
    if (this.end + n <= this.bytes.length) return;
    const grown = Buffer.allocUnsafe(Math.max(this.bytes.length * 2, this.end + n));
    this.bytes.copy(grown, 0, 0, this.end);
    this.bytes = grown;
  }

  private count(n: number): void {
    this.reserve(4);
    this.end = this.bytes.writeUInt32LE(n, this.end);
  }

  /** A length and UTF-8 bytes; ABSENT for undefined. ASCII (nearly everything) is copied without a native call. */
  private text(s: string | undefined): void {
    if (s === undefined) return this.count(ABSENT);
    this.reserve(4 + s.length * 3);
    const at = this.end + 4;
    let i = 0;
    for (; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (c >= 0x80) break;
      this.bytes[at + i] = c;
    }
    const length = i === s.length ? i : this.bytes.write(s, at, 'utf8');
    this.bytes.writeUInt32LE(length, this.end);
    this.end = at + length;
  }
}

/**
 * The requests of a batch, as recorded. `ends`, when given, gets where each request's bytes end (its
 * bytes are from the previous end, or 0, to there): the writer digests each request's bytes (batchJournal.ts).
 */
export function decodeBatch({ bytes, actors, count }: BatchMessage, ends?: number[]): AuditedRequest[] {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = 0;
  const u32 = () => ((at += 4), b.readUInt32LE(at - 4));
  const text = () => {
    const n = u32();
    if (n === ABSENT) return undefined;
    at += n;
    return b.toString('utf8', at - n, at);
  };
  const out: AuditedRequest[] = [];
  for (let k = 0; k < count; k++) {
    const when = b.readDoubleLE(at);
    const actor = b.readInt32LE(at + 8);
    const status = b.readInt32LE(at + 12);
    at += 16;
    const address = text();
    const outcome = { status, method: text()!, path: text()!, query: text()! };
    const authentication = text();
    const administration = text();
    const heldMessage = text();
    const deadLetterView = text();
    const purpose = text() as AuditedRequest['purpose'];
    const events: AccessEvent[] = [];
    for (let e = u32(); e > 0; e--) {
      const interaction = text() as AccessEvent['interaction'];
      const resourceType = text();
      const id = text();
      const query = text();
      const patientIds: string[] = [];
      for (let p = u32(); p > 0; p--) patientIds.push(text()!);
      events.push({ interaction, resourceType, id, query, patientIds });
    }
    ends?.push(at);
    out.push({ at: when, actor: actor >= 0 ? actors[actor] : undefined, address, events, outcome, ...(authentication ? { authentication: JSON.parse(authentication) } : {}), ...(administration ? { administration: JSON.parse(administration) } : {}), ...(heldMessage ? { heldMessage: JSON.parse(heldMessage) } : {}), ...(deadLetterView ? { deadLetterView: JSON.parse(deadLetterView) } : {}), ...(purpose ? { purpose } : {}) });
  }
  return out;
}
