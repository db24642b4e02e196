// The hospital pages (ward nurses, discharge coordinators): the ward list, and a patient's shared record
// summary (the shared person pages, with break-glass for people outside the hospital).
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Role } from '../../access/index.ts';
import { recordFor, type RecordConnection } from '../recordClient.ts';
import type { SendPage } from '../page.ts';
import type { PortalBreakGlass } from '../portalAccess.ts';
import { personRecordRoutes, signedInAs } from '../person/recordPages.ts';
import { wardListView } from './wardList.ts';
import { openRedBags } from '../redBag/views.ts';

export const HOSPITAL_ROLES: ReadonlySet<Role> = new Set(['ward-nurse', 'discharge-coordinator']);
const REFUSAL = 'These pages are for hospital ward and discharge staff.';

export interface HospitalOptions {
  send: SendPage;
  connection: (req: FastifyRequest) => RecordConnection;
  breakGlass?: PortalBreakGlass;
}

export function hospitalRoutes(app: FastifyInstance, { send, connection, breakGlass }: HospitalOptions): void {
  app.get('/hospital', async (req, reply) => {
    const actor = signedInAs(req, reply, HOSPITAL_ROLES, REFUSAL);
    if (!actor) return reply;
    const record = recordFor(connection(req), actor, req.ip);
    const view = await wardListView(record, actor);
    // Red bags on their way in: sent by a care home and not yet on a ward (the ward acknowledges, then admits).
    const incoming = (await openRedBags(record, actor, Date.now())).filter((p) => p.step === 'sent' || p.step === 'received');
    return send(req, reply, 'pages/hospital/wards.njk', { pageTitle: 'Ward list', live: 'wards', incoming, ...view });
  });

  personRecordRoutes(app, {
    send, connection, breakGlass, roles: HOSPITAL_ROLES, refusal: REFUSAL,
    base: '/hospital/patients', back: { href: '/hospital', text: 'Ward list' }, noun: 'patient',
    // Discharge coordinators refer to the council from here (the discharge pages check the stay and the role again).
    actions: (actor, id) => actor.role === 'discharge-coordinator' ? [{ href: `/discharge/referrals/new?patient=${encodeURIComponent(id)}`, text: 'Refer for care and support after discharge' }] : [],
  });
}
