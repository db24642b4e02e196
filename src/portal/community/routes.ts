// GP practice and carer pages: the people they look after (a practice's registered patients; the people
// who named the carer), and each one's record summary through the shared person pages (a carer sees only
// what their role may read).
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Role } from '../../access/index.ts';
import { recordFor, type RecordConnection } from '../recordClient.ts';
import type { SendPage } from '../page.ts';
import type { PortalBreakGlass } from '../portalAccess.ts';
import { personRecordRoutes, signedInAs } from '../person/recordPages.ts';
import { peopleCaredFor, registeredPatients } from './people.ts';

const GP: ReadonlySet<Role> = new Set(['gp']);
const CARER: ReadonlySet<Role> = new Set(['carer']);

export interface CommunityOptions {
  send: SendPage;
  connection: (req: FastifyRequest) => RecordConnection;
  breakGlass?: PortalBreakGlass;
}

export function communityRoutes(app: FastifyInstance, { send, connection, breakGlass }: CommunityOptions): void {
  app.get('/gp', async (req, reply) => {
    const actor = signedInAs(req, reply, GP, 'These pages are for GP practices.');
    if (!actor) return reply;
    const view = await registeredPatients(recordFor(connection(req), actor, req.ip), actor);
    return send(req, reply, 'pages/community/people.njk', { pageTitle: 'Registered patients', heading: 'Registered patients', caption: view.practice, base: '/gp/patients', ...view });
  });
  personRecordRoutes(app, {
    send, connection, breakGlass, roles: GP, refusal: 'These pages are for GP practices.',
    base: '/gp/patients', back: { href: '/gp', text: 'Registered patients' }, noun: 'patient',
  });

  app.get('/carer', async (req, reply) => {
    const actor = signedInAs(req, reply, CARER, 'These pages are for carers.');
    if (!actor) return reply;
    const view = await peopleCaredFor(recordFor(connection(req), actor, req.ip), actor);
    return send(req, reply, 'pages/community/people.njk', { pageTitle: 'People you care for', heading: 'People you care for', base: '/carer/people', more: false, ...view });
  });
  // A carer's access comes only from the person's own consent: no break-glass.
  personRecordRoutes(app, {
    send, connection, roles: CARER, refusal: 'These pages are for carers.',
    base: '/carer/people', back: { href: '/carer', text: 'People you care for' }, noun: 'person',
  });
}
