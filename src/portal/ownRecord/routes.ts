// The pages for a person signed in to their own record: who has looked at it (the audit trail, newest
// first, through the record's AuditEvent search with the person's own access, which lets them see only
// their own record's entries) and their record summary (the shared person pages, mounted for them).
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Role, UserActor } from '../../access/index.ts';
import { recordFor, type RecordConnection } from '../recordClient.ts';
import type { SendPage } from '../page.ts';
import { NotInRecord } from '../pageErrors.ts';
import { personRecordRoutes, signedInAs } from '../person/recordPages.ts';
import { auditRowOf } from '../auditSearch.ts';

const PERSON: ReadonlySet<Role> = new Set(['person']);
const REFUSAL = 'These pages are for people looking at their own record.';
const SHOWN = 100;

export interface OwnRecordOptions {
  send: SendPage;
  connection: (req: FastifyRequest) => RecordConnection;
}

/** The person's own Patient id, from their account's link to the record. */
function ownPatientId(actor: UserActor): string {
  const id = actor.fhirUser?.startsWith('Patient/') ? actor.fhirUser.slice('Patient/'.length) : undefined;
  if (!id) throw new NotInRecord('Your account is not linked to a record yet. Ask the service that gave you your account to link it.');
  return id;
}

export function ownRecordRoutes(app: FastifyInstance, { send, connection }: OwnRecordOptions): void {
  app.get('/me', async (req, reply) => {
    const actor = signedInAs(req, reply, PERSON, REFUSAL);
    if (!actor) return reply;
    const patientId = ownPatientId(actor);
    const found = await recordFor(connection(req), actor, req.ip).search('AuditEvent', [['patient', `Patient/${patientId}`], ['_sort', '-date'], ['_count', String(SHOWN)]]);
    const rows = found.matches.map(auditRowOf).map((r) => ({ ...r, you: r.userId === actor.userId }));
    return send(req, reply, 'pages/me.njk', { pageTitle: 'Who has looked at your record', rows, more: found.more, recordPath: `/me/record/${encodeURIComponent(patientId)}` });
  });

  app.get('/me/record', async (req, reply) => {
    const actor = signedInAs(req, reply, PERSON, REFUSAL);
    if (!actor) return reply;
    return reply.redirect(`/me/record/${encodeURIComponent(ownPatientId(actor))}`, 303);
  });

  personRecordRoutes(app, { send, connection, roles: PERSON, refusal: REFUSAL, base: '/me/record', back: { href: '/me', text: 'Who has looked at your record' }, noun: 'record' });
}
