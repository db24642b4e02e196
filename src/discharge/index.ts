// Digital discharge (issue 4): the discharge-to-assess model and workflow over the record, ADW DSTU2
// messages in and out, response deadlines on a working-day calendar, and reactions to hospital stays
// changing. Other capabilities use discharge only through what this file exports.
import { migrate, UNRESTRICTED, type AccessControl, type SqlDriver } from '../record/index.ts';
import type { Actor } from '../access/index.ts';
import { DISCHARGE_MIGRATIONS } from './schema.ts';
import type { DeadlineRule } from './calendar.ts';
import type { DischargeContext } from './recordSession.ts';
import { fireDueTimers } from './deadlines.ts';
import { followEncounters, newEncounterFeed } from './encounterFeed.ts';
import { deliverPendingAdw, noteUndelivered, settleReportedUndelivered, type AdwWorkflowIds, type UndeliveredAdw } from './adw/delivery.ts';
import { AdwNotForThisService, AdwRejected, handleAdwMessage } from './adw/inbound.ts';
import { threadAdwReader, type ReadAdw } from './adw/reader.ts';
import { startPoller, type Poller } from './poller.ts';
import type { Messaging, PermanentFailureClass } from './messagingPort.ts';

export {
  DISCHARGE_REFERRAL_SYSTEM, EXPECTED_DISCHARGE_URL, MEDICALLY_READY_URL, PATHWAY_SYSTEM, PATHWAYS, TRIAGE_STATE_SYSTEM, TRIAGE_STATES,
  TRIAGE_TASK_CODE, ESCALATION_TASK_CODE, REFERRAL_CODE, OVERDUE_TAG, DISCHARGE_CODE_SYSTEM, CONSENT_QUESTIONNAIRE,
  TRIAGE_DISPLAY, REFERRAL_CONSENT_QUESTIONS, STEP_TAKERS, AWAITING_RESPONSE, consentAnswerOf, triageStateOf, pathwayOf, extensionDate, withExtensionDate, type Pathway, type TriageState,
} from './model.ts';
export {
  createReferral, triage, addNote, assignWorker, recordSupportArranged, confirmReady, disagreeWithDischarge, recordDischarge, withdrawReferral, setMedicallyReady, referralForEncounter, isOverdue, NotYourReferral,
  type NewReferral, type TriageDecision, type StepOptions, type ConsentAnswer,
} from './referrals.ts';
export type { DischargeContext, Referral, FhirResource } from './recordSession.ts';
export { addWorkingDays, addWorkingHours, isWorkingDay, isBankHoliday, deadlineAfter, londonDay, parseDeadlineRule, BANK_HOLIDAY_YEARS, calendarRunningOut, type DeadlineRule } from './calendar.ts';
export { setCouncilSettings, listCouncilSettings, fireDueTimers, type CouncilSettings } from './deadlines.ts';
export { handleAdwMessage, AdwRejected, AdwNotForThisService } from './adw/inbound.ts';
export { parseAdwMessage, type AdwMessage } from './adw/parse.ts';
export { EVENT as ADW_EVENT, WITHDRAWAL_REASONS as ADW_WITHDRAWAL_REASONS, DEFAULT_ADW_WORKFLOW_IDS } from './adw/codes.ts';
export { deliverPendingAdw, listFailedAdw, retryFailedAdw, type AdwWorkflowIds, type AdwDeliveryPass, type FailedAdwRow, type UndeliveredAdw } from './adw/delivery.ts';
export { dischargeNoticeWaiting, dischargeNoticesDue } from './adw/outbound.ts';
export { followEncounters, newEncounterFeed } from './encounterFeed.ts';
export { dischargeOperations } from './operations.ts';
export type { InboundMessage, Messaging, PermanentFailureClass } from './messagingPort.ts';

/** The system client the workflow acts as: its writes are audited under this id. */
export const DISCHARGE_CLIENT_ID = 'carebridge-discharge';

export async function migrateDischarge(driver: SqlDriver): Promise<void> {
  await migrate(driver, 'discharge', DISCHARGE_MIGRATIONS);
}

export interface DischargeOptions {
  /** The FHIR base URL (only for links in answers). */
  base: string;
  /** Deadline rules for councils that have none of their own. */
  deadlines: { assessment: DeadlineRule; discharge: DeadlineRule };
  /** How often the workers look for due timers, Encounter changes and messages to send. */
  pollMs: number;
  /** MESH workflow ids of ADW notices and responses. */
  workflowIds: AdwWorkflowIds;
  /** ODS code the workflow acts for in the audit (the deployment's own organisation), if any. */
  organisation?: string;
  /**
   * Messaging, once it is wired: ADW handlers are registered with it and messages sent through it.
   * NotForThisService (messaging's) is thrown for a response to a notice this service never sent; without
   * it such a response is a PermanentFailure.
   */
  messaging?: { api: Messaging; PermanentFailure: PermanentFailureClass; NotForThisService?: PermanentFailureClass };
  onError?: (err: unknown) => void;
}

export interface Discharge {
  /** The workflow's context as the system client (the portal passes a person's AccessControl instead). */
  context: DischargeContext;
  /** A context acting with another AccessControl (a signed-in person's). */
  contextFor(access: AccessControl): DischargeContext;
  /** Runs every worker once now (tests). */
  runWorkers(): Promise<void>;
  close(): Promise<void>;
}

/**
 * Migrates discharge's tables, starts its workers and, with messaging, registers the ADW handler.
 * `controlFor` is access.controlFor; without it (--insecure-no-auth) the workflow is unrestricted.
 */
export async function setUpDischarge(driver: SqlDriver, controlFor: ((actor: Actor) => Promise<AccessControl>) | undefined, options: DischargeOptions): Promise<Discharge> {
  await migrateDischarge(driver);
  const access = controlFor
    ? await controlFor({ kind: 'system', clientId: DISCHARGE_CLIENT_ID, name: 'CareBridge discharge workflow', ...(options.organisation ? { organisation: options.organisation } : {}), purpose: 'TREAT', scope: 'system/*.cruds' })
    : UNRESTRICTED;
  let wakeDelivery = (): void => undefined;
  const context: DischargeContext = { driver, base: options.base, access, deadlines: options.deadlines, committed: () => wakeDelivery() };
  const onError = options.onError ?? ((err: unknown) => console.error(`discharge: ${(err as Error).message}`));
  const feed = newEncounterFeed();
  const pollers: Poller[] = [
    startPoller(options.pollMs, () => fireDueTimers(context), onError),
    // Catch up in full batches (a large existing record), then wait for the next interval.
    startPoller(options.pollMs, async () => { for (let i = 0; i < 100 && (await followEncounters(context, feed)) === 500; i++); }, onError),
  ];
  const messaging = options.messaging;
  const reader = messaging ? threadAdwReader() : undefined;
  if (messaging) {
    const deps = { ctx: context, organisationForMailbox: (m: string) => messaging.api.organisationForMailbox(m) };
    // In messaging's transaction: a busy inbox is handled in batches, one commit for many notices.
    messaging.api.onInboundInTransaction<ReadAdw>([options.workflowIds.notice, options.workflowIds.response], async (msg, transaction, read) => {
      try {
        await handleAdwMessage(deps, msg, transaction, read);
      } catch (err) {
        if (err instanceof AdwNotForThisService) throw new (messaging.NotForThisService ?? messaging.PermanentFailure)(err.message);
        if (err instanceof AdwRejected) throw new messaging.PermanentFailure(err.message);
        throw err;
      }
    }, (msg) => reader!.read(msg.body)); // each batch is read on another thread first, while this one serves and commits
    // MESH reports a notice or answer sent from here as not delivered: failed, logged and noted on the referral, as one given up on.
    messaging.api.onDeliveryReport([options.workflowIds.notice, options.workflowIds.response], async (report) => {
      const { known, failure } = await settleReportedUndelivered(driver, report.report);
      if (failure) await reportUndelivered(context, failure);
      return known;
    });
    // Queued answers and notices go out as soon as the step that queued them commits, not at the next interval.
    // Again while a pass claimed anything: a message that failed waits (backoff) or is given up, so the next
    // pass reaches the newer ones behind it, and a pass that claimed nothing means nothing is due.
    const delivery = startPoller(options.pollMs, async () => {
      for (;;) {
        const pass = await deliverPendingAdw(driver, messaging.api, options.workflowIds);
        for (const failure of pass.failed) await reportUndelivered(context, failure);
        if (!pass.claimed) break;
      }
    }, onError);
    wakeDelivery = () => delivery.wake();
    pollers.push(delivery);
  }
  return {
    context,
    contextFor: (control) => ({ ...context, access: control }),
    async runWorkers() {
      for (const p of pollers) await p.runNow();
    },
    async close() {
      await Promise.all(pollers.map((p) => p.stop()));
      await reader?.close();
    },
  };
}

/** A message given up on: a log line for operators, and a note on the referral for the people working it. */
async function reportUndelivered(context: DischargeContext, failure: UndeliveredAdw): Promise<void> {
  console.error(`discharge: ADW ${failure.eventName} ${failure.headerId} to ${failure.peerOds ?? '?'} (episode ${failure.referralIdentifier ?? 'none'}) was not sent and is marked failed (carebridge discharge adw failed lists them): ${failure.reason}`);
  try {
    await noteUndelivered(context, failure);
  } catch (err) {
    // The row is marked failed and listed either way; one note that could not be filed must not stop the rest.
    console.error(`discharge: could not note the unsent ADW ${failure.headerId} on its referral: ${(err as Error).message}`);
  }
}
