// Audit writes are batched (every 100 ms), so tests poll for the AuditEvents they expect.
import assert from 'node:assert/strict';
import type { FhirClient } from './server.ts';

/** Polls an AuditEvent search (as the admin) until it finds what `done` wants; bounded. Audit writes are batched. */
export async function waitForAudit(fhir: FhirClient, query: string, done: (events: any[]) => boolean = (e) => e.length > 0): Promise<any[]> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const res = await fhir.get(`AuditEvent?${query}&_count=1000`);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const events = (res.body.entry ?? []).map((e: any) => e.resource);
    if (done(events)) return events;
    if (Date.now() > deadline) assert.fail(`no AuditEvent matching ${query} (found ${events.length})`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

