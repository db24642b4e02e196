// Sending a page: the template, plus what every page needs (who is signed in, the CSRF token, the asset path).
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Views } from './views.ts';
import { visitOf } from './visit.ts';
import { navigationFor, ROLE_LABELS } from './roles.ts';

export interface FieldError {
  /** The id of the field the message is about; the error summary links to it. */
  field: string;
  text: string;
}

export type SendPage = (req: FastifyRequest, reply: FastifyReply, template: string, context?: Record<string, unknown>, status?: number) => FastifyReply;

export function pageSender(views: Views): SendPage {
  return (req, reply, template, context = {}, status = 200) => {
    const visit = visitOf(req);
    const actor = visit.actor;
    const html = views.render(template, {
      csrfToken: visit.csrfToken,
      user: actor ? { name: actor.name, role: ROLE_LABELS[actor.role], organisation: actor.organisation } : undefined,
      navigation: actor ? navigationFor(actor.role, req.url.split('?')[0]!) : [],
      ...context,
    });
    return reply.code(status).type('text/html; charset=utf-8').header('cache-control', 'no-store').send(html);
  };
}

/** Error summary items (href → the field) from field errors, and a lookup by field for the inputs. */
export function errorView(errors: FieldError[]): { errorList: { text: string; href: string }[]; errorFor: Record<string, { text: string }> } {
  return {
    errorList: errors.map((e) => ({ text: e.text, href: `#${e.field}` })),
    errorFor: Object.fromEntries(errors.map((e) => [e.field, { text: e.text }])),
  };
}
