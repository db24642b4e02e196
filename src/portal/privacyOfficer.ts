// The privacy officer's home page: the open break-glass alerts, oldest first, each with a review form
// (appropriate, or inappropriate with a note), and the most recently reviewed ones.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { BREAK_GLASS_REASONS, type BreakGlassGrant, type UserActor } from '../access/index.ts';
import { FhirError } from '../record/index.ts';
import { errorView, type FieldError, type SendPage } from './page.ts';
import { visitOf } from './visit.ts';
import { ROLE_LABELS } from './roles.ts';
import { fieldErrorsOf } from './breakGlass.ts';
import { NotAllowedHere, PageNotFound } from './pageErrors.ts';
import type { PortalBreakGlass } from './portalAccess.ts';

const RECENTLY_REVIEWED = 20;

export interface PrivacyOfficerOptions {
  send: SendPage;
  breakGlass?: PortalBreakGlass;
}

interface ReviewForm {
  outcome?: string;
  note?: string;
}

function privacyOfficer(req: FastifyRequest, reply: FastifyReply): UserActor | undefined {
  const visit = visitOf(req);
  if (!visit.actor) {
    void reply.redirect(visit.sessionEnded ? '/sign-in?reason=expired' : '/sign-in', 303);
    return undefined;
  }
  if (visit.actor.role !== 'privacy-officer') throw new NotAllowedHere('This page is for privacy officers.');
  return visit.actor;
}

/** How an alert reads on the page. */
function alertView(g: BreakGlassGrant) {
  return {
    id: g.id,
    at: g.startedAt,
    who: g.userName,
    role: ROLE_LABELS[g.role] ?? g.role,
    organisation: g.organisation ?? '–',
    person: g.patientId,
    reasonCode: BREAK_GLASS_REASONS[g.reasonCode] ?? g.reasonCode,
    reason: g.reason,
    review: g.review,
  };
}

export function privacyOfficerRoutes(app: FastifyInstance, { send, breakGlass }: PrivacyOfficerOptions): void {
  const page = async (req: FastifyRequest, reply: FastifyReply, state: { reviewed?: boolean; failed?: { id: string; values: ReviewForm; errors: FieldError[] } } = {}) => {
    if (!breakGlass) throw new NotAllowedHere('Break-glass is not available on this server.');
    const [open, all] = await Promise.all([breakGlass.list({ open: true }), breakGlass.list({ limit: 200 })]);
    const reviewed = all.filter((g) => g.review).sort((a, b) => b.review!.at.localeCompare(a.review!.at)).slice(0, RECENTLY_REVIEWED);
    return send(req, reply, 'pages/privacy-officer.njk', {
      pageTitle: 'Break-glass alerts',
      open: open.map(alertView),
      reviewed: reviewed.map(alertView),
      justReviewed: state.reviewed,
      failedId: state.failed?.id,
      values: state.failed?.values ?? {},
      ...errorView(state.failed?.errors ?? []),
    }, state.failed ? 400 : 200);
  };

  app.get<{ Querystring: { reviewed?: string } }>('/privacy-officer', async (req, reply) => {
    if (!privacyOfficer(req, reply)) return reply;
    return page(req, reply, { reviewed: req.query.reviewed === 'yes' });
  });

  app.post<{ Params: { id: string }; Body: ReviewForm }>('/privacy-officer/alerts/:id/review', async (req, reply) => {
    const actor = privacyOfficer(req, reply);
    if (!actor) return reply;
    if (!breakGlass) throw new NotAllowedHere('Break-glass is not available on this server.');
    const id = req.params.id;
    const values = { outcome: req.body.outcome, note: (req.body.note ?? '').trim() };
    const fields = { outcome: `outcome-${id}`, note: `note-${id}` };
    const errors: FieldError[] = [];
    if (values.outcome !== 'appropriate' && values.outcome !== 'inappropriate') errors.push({ field: fields.outcome, text: 'Select whether the access was appropriate' });
    if (values.outcome === 'inappropriate' && values.note.length < 5) errors.push({ field: fields.note, text: 'Say what was inappropriate: the note is kept with the alert' });
    if (errors.length) return page(req, reply, { failed: { id, values, errors } });
    try {
      await breakGlass.review(actor, id, { outcome: values.outcome ?? "", note: values.note }, req.ip);
    } catch (err) {
      if (!(err instanceof FhirError)) throw err;
      if (err.status === 404) throw new PageNotFound('There is no break-glass alert with this identifier.');
      const fieldErrors = err.status === 409 ? [{ field: 'reviewed', text: err.issues[0]?.diagnostics ?? 'This alert was already reviewed.' }] : fieldErrorsOf(err, fields);
      if (!fieldErrors) throw err;
      return page(req, reply, { failed: { id, values, errors: fieldErrors } });
    }
    return reply.redirect('/privacy-officer?reviewed=yes', 303);
  });
}
