// Reacts to hospital stays changing (contract 2 of issue 4): reads the record's change feed for Encounter
// writes, and for a stay with a discharge referral copies the expected discharge date onto the referral
// (and, when we are the hospital of an ADW episode, sends a discharge notice), moves it with the person to
// another ward, tells both sides when the admission was cancelled, and records the discharge when the stay
// finishes. Every reaction is idempotent (it compares the referral with the stay), so
// reading a change twice is harmless.
//
// The cursor (discharge_feed_cursor) only moves past a missing seq once the row after it is older than
// GAP_GRACE_MS: on PostgreSQL a seq can become visible after higher ones (it is assigned at insert, seen at
// commit). Rows beyond a gap are handled at once and remembered, so they are not handled again.
import { readChanges, type RecordChange } from '../record/index.ts';
import { clock, inRecordTransaction, type DischargeContext, type RecordSession } from './recordSession.ts';
import { EXPECTED_DISCHARGE_URL, FINAL_STATES, extensionDate, triageStateOf } from './model.ts';
import { derivedId, noteAdmissionCancelledIn, recordDischargeIn, referralForEncounterIn, reopenAfterCancelledDischargeIn, setExpectedDischargeIn, setWardIn } from './referrals.ts';
import { episodeByReferral, queueNotice } from './adw/outbound.ts';
import { EVENT } from './adw/codes.ts';

const CURSOR = 'encounters';
export const GAP_GRACE_MS = 120_000;

export interface EncounterFeed { seen: Set<number> }

export function newEncounterFeed(): EncounterFeed {
  return { seen: new Set() };
}

/** Handles the next batch of changes; returns how many it read, or 0 when the cursor could not move (caught up, or waiting at a gap). */
export async function followEncounters(ctx: DischargeContext, feed: EncounterFeed, batch = 500): Promise<number> {
  const row = await ctx.driver.get<{ seq: number | string }>('SELECT seq FROM discharge_feed_cursor WHERE name = ?', [CURSOR]);
  const cursor = row ? Number(row.seq) : 0;
  const changes = await readChanges(ctx.driver, cursor, batch);
  let safe = cursor;
  let contiguous = true;
  for (const change of changes) {
    if (contiguous && (change.seq === safe + 1 || Date.now() - change.atMs > GAP_GRACE_MS)) safe = change.seq;
    else contiguous = false;
    if (change.type !== 'Encounter' || change.action === 'delete' || feed.seen.has(change.seq)) continue;
    await reactToEncounter(ctx, change);
    feed.seen.add(change.seq);
  }
  if (safe !== cursor) {
    const updated = await ctx.driver.run('UPDATE discharge_feed_cursor SET seq = ? WHERE name = ? AND seq = ?', [safe, CURSOR, cursor]);
    if (!updated && !row) await ctx.driver.run('INSERT INTO discharge_feed_cursor (name, seq) VALUES (?, ?) ON CONFLICT (name) DO NOTHING', [CURSOR, safe]);
  }
  for (const seq of feed.seen) if (seq <= safe) feed.seen.delete(seq);
  return safe === cursor ? 0 : changes.length;
}

/**
 * Whether this change took `held` away from the stay: true of the version before it, false of the change's
 * own version. The change's versions, not the stay as it is now: a later update (an A08) must not hide
 * what this change did, and a stay that never had `held` (a discharge recorded by hand while it is still
 * open, say) changed nothing.
 */
async function tookAway(session: RecordSession, change: RecordChange, held: (encounter: Record<string, any>) => boolean): Promise<boolean> {
  if (change.versionId <= 1) return false;
  const was = await session.readVersion('Encounter', change.id, String(change.versionId - 1));
  if (!was || !held(was)) return false;
  const now = await session.readVersion('Encounter', change.id, String(change.versionId));
  return Boolean(now) && !held(now!);
}

/** The ward the stay says the person is on now: its last active Location. */
function currentWard(encounter: Record<string, any>): { reference: string; display?: string } | undefined {
  const active = ((encounter.location ?? []) as { status?: string; location?: { reference?: string; display?: string } }[])
    .filter((l) => l.status === 'active' && l.location?.reference?.startsWith('Location/'));
  const ward = active[active.length - 1]?.location;
  return ward ? { reference: ward.reference!, ...(ward.display ? { display: ward.display } : {}) } : undefined;
}

const finished = (encounter: Record<string, any>) => encounter.status === 'finished';
const expectedDate = (encounter: Record<string, any>) => Boolean(extensionDate(encounter, EXPECTED_DISCHARGE_URL));

async function reactToEncounter(ctx: DischargeContext, change: RecordChange): Promise<void> {
  await inRecordTransaction(ctx, 'encounter-change', async (session) => {
    const encounter = await session.read('Encounter', change.id);
    if (!encounter) return;
    const referral = await referralForEncounterIn(session, encounter.id);
    if (!referral) return;
    const task = await session.read('Task', derivedId('triage', referral.id));
    const state = task ? triageStateOf(task) : undefined;
    // Set back from finished (an HL7 A13): the discharge was cancelled.
    if (state === 'discharged' && await tookAway(session, change, finished)) {
      await reopenAfterCancelledDischargeIn(session, ctx, referral.id);
      return;
    }
    if (!state || FINAL_STATES.has(state)) return;
    if (encounter.status === 'cancelled' || encounter.status === 'entered-in-error') {
      await noteAdmissionCancelledIn(session, ctx, referral.id);
      return;
    }
    // Transferred (an HL7 A02): the board and the figures by ward follow the person.
    const ward = currentWard(encounter);
    const onWard = ward && encounter.status === 'in-progress' ? await setWardIn(session, referral, ward) : referral;
    const expected = extensionDate(encounter, EXPECTED_DISCHARGE_URL) ?? (await tookAway(session, change, expectedDate) ? null : undefined);
    // null: this change took the stay's expected date away (HL7 PV2-9 sent as ""), so the referral's goes too.
    const dated = expected === undefined ? undefined : await setExpectedDischargeIn(session, onWard, expected ?? undefined);
    if (dated) {
      const episode = await episodeByReferral(session.tx, referral.id);
      // A discharge notice names the expected date: a date taken away is not one to send.
      if (expected && episode?.role === 'hospital' && !episode.withdrawn) await queueNotice(session, ctx, episode, dated, EVENT.dischargeNotice);
    }
    if (encounter.status === 'finished') {
      await recordDischargeIn(session, ctx, referral.id, encounter.period?.end ?? new Date(clock(ctx)).toISOString());
    }
  });
}
