// The council pages (social workers, brokers): the people referred to the council, and a person's record
// summary (the shared person pages; a broker sees only the parts of it their role may read).
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Role } from '../../access/index.ts';
import { recordFor, type RecordConnection } from '../recordClient.ts';
import type { SendPage } from '../page.ts';
import type { PortalBreakGlass } from '../portalAccess.ts';
import { personRecordRoutes, signedInAs } from '../person/recordPages.ts';
import { referralsView } from './referrals.ts';

export const COUNCIL_ROLES: ReadonlySet<Role> = new Set(['social-worker', 'broker']);
const REFUSAL = 'These pages are for council social care staff.';

export interface CouncilOptions {
  send: SendPage;
  connection: (req: FastifyRequest) => RecordConnection;
  breakGlass?: PortalBreakGlass;
}

export function councilRoutes(app: FastifyInstance, { send, connection, breakGlass }: CouncilOptions): void {
  app.get('/council', async (req, reply) => {
    const actor = signedInAs(req, reply, COUNCIL_ROLES, REFUSAL);
    if (!actor) return reply;
    const view = await referralsView(recordFor(connection(req), actor, req.ip), actor);
    return send(req, reply, 'pages/council/referrals.njk', { pageTitle: 'People referred to the council', ...view });
  });

  personRecordRoutes(app, {
    send, connection, breakGlass, roles: COUNCIL_ROLES, refusal: REFUSAL,
    base: '/council/people', back: { href: '/council', text: 'People referred' }, noun: 'person',
  });
}
