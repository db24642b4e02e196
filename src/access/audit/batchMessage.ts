// A batch of answered requests as the audit writer thread receives it: one flat array of strings and
// numbers plus each distinct actor once, which costs the request-serving thread far less to copy across
// than an object per request.
import type { AccessEvent } from '../../record/index.ts';
import type { Actor } from '../actor.ts';
import type { AuditedRequest } from './auditEvent.ts';

type Cell = string | number | null;
export interface BatchMessage { actors: Actor[]; cells: Cell[]; count: number }

export function encodeBatch(requests: AuditedRequest[]): BatchMessage {
  const actors: Actor[] = [];
  const actorIndex = new Map<Actor, number>();
  const cells: Cell[] = [];
  for (const r of requests) {
    let a = -1;
    if (r.actor) {
      a = actorIndex.get(r.actor) ?? -1;
      if (a < 0) {
        a = actors.push(r.actor) - 1;
        actorIndex.set(r.actor, a);
      }
    }
    const o = r.outcome;
    cells.push(r.at, a, r.address ?? null, o.status, o.method, o.path, o.query, r.events.length);
    for (const e of r.events) {
      cells.push(e.interaction, e.resourceType ?? null, e.id ?? null, e.query ?? null, e.patientIds.length);
      for (const p of e.patientIds) cells.push(p);
    }
  }
  return { actors, cells, count: requests.length };
}

export function decodeBatch({ actors, cells, count }: BatchMessage): AuditedRequest[] {
  const out: AuditedRequest[] = [];
  let i = 0;
  const next = () => cells[i++];
  for (let n = 0; n < count; n++) {
    const at = next() as number;
    const a = next() as number;
    const address = next() as string | null;
    const outcome = { status: next() as number, method: next() as string, path: next() as string, query: next() as string };
    const events: AccessEvent[] = [];
    for (let k = next() as number; k > 0; k--) {
      const interaction = next() as AccessEvent['interaction'];
      const resourceType = next() as string | null;
      const id = next() as string | null;
      const query = next() as string | null;
      const n = next() as number;
      const patientIds = cells.slice(i, i + n) as string[];
      i += n;
      events.push({ interaction, resourceType: resourceType ?? undefined, id: id ?? undefined, query: query ?? undefined, patientIds });
    }
    out.push({ at, actor: a >= 0 ? actors[a] : undefined, address: address ?? undefined, events, outcome });
  }
  return out;
}
