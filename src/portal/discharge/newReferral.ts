// A hospital discharge coordinator refers a patient on their ward to a council for care and support after
// discharge: the council, the pathway, the expected discharge date, why and what the person needs, and the
// consultation and consent answers the ADW assessment notice carries (so a referral to an ADW council goes
// out complete). Read through the record with the person's access; created through the discharge workflow.
import { consentAnswerOf, createReferral, DISCHARGE_REFERRAL_SYSTEM, PATHWAYS, REFERRAL_CODE, REFERRAL_CONSENT_QUESTIONS, type ConsentAnswer, type DischargeContext, type Pathway } from '../../discharge/index.ts';
import type { UserActor } from '../../access/index.ts';
import type { RecordClient, Resource } from '../recordClient.ts';
import type { FieldError } from '../page.ts';
import { PageNotFound } from '../pageErrors.ts';
import { personName, nhsNumberOf } from '../person/text.ts';
import { by, dateFrom, MAX_TEXT, runStep } from './formStep.ts';
import { formSubmission } from '../formSubmission.ts';
import { organisationOf } from './referralRows.ts';

const ORGANIZATION_TYPE = 'http://terminology.hl7.org/CodeSystem/organization-type';
const ODS_SYSTEMS = ['https://fhir.nhs.uk/Id/ods-organization-code', 'https://fhir.nhs.uk/Id/ods-site-code'];

/** The ADW consent questions, with what the error summary says when one is not answered. */
const MISSING: Record<string, string> = {
  consulted: 'Select whether the patient has been consulted',
  consented: 'Select whether the patient has consented',
  safeguarding: 'Select whether there are safeguarding concerns',
};
export const CONSENT_QUESTIONS = REFERRAL_CONSENT_QUESTIONS.map((q) => ({ ...q, field: q.linkId, missing: MISSING[q.linkId]! }));

export interface NewReferralForm {
  _csrf?: string; council?: string; pathway?: string; reason?: string; needs?: string;
  'expected-day'?: string; 'expected-month'?: string; 'expected-year'?: string;
  consulted?: string; consented?: string; safeguarding?: string;
  /** Made when the form is first shown, and the referral's identifier: a second click of "Send" is the same referral. */
  submission?: string;
}

export interface ReferralStart {
  patient: { id: string; name: string; nhsNumber?: string };
  stay: Resource;
  ward?: { reference: string; display: string };
  councils: { value: string; text: string }[];
  hospitalOds: string;
  /** An open referral for this stay already: the page links to it instead of offering a second. */
  openReferral?: string;
  /** That referral's identifiers (one is the submission that sent it, when it came from this form). */
  openReferralIdentifiers?: string[];
}

/** Whether the stay's open referral is the one this form (this submission) sent: a repeated click. */
export function sentBy(start: ReferralStart, form: NewReferralForm): boolean {
  return !!form.submission && !!start.openReferralIdentifiers?.includes(form.submission);
}

const odsOf = (org: Resource) => org.identifier?.find((i: any) => ODS_SYSTEMS.includes(i.system))?.value as string | undefined;

/** What the form needs: the patient, their stay at the coordinator's hospital, and the councils to refer to. */
export async function referralStart(record: RecordClient, actor: UserActor, patientId: string): Promise<ReferralStart> {
  const hospital = await organisationOf(record, actor);
  const patient = await record.read('Patient', patientId);
  if (!patient) throw new PageNotFound('There is no patient with this identifier in the record.');
  const stays = (await record.search('Encounter', [['patient', `Patient/${patientId}`], ['status', 'in-progress'], ['service-provider', `Organization/${hospital.id}`]])).matches;
  const stay = stays[0];
  if (!stay) throw new PageNotFound(`${personName(patient)} has no current stay at ${hospital.name}; a discharge referral starts from a stay.`);
  const councilOrgs = (await record.search('Organization', [['type', `${ORGANIZATION_TYPE}|govt`], ['_count', '200']])).matches.filter((o) => !o.partOf && odsOf(o));
  const open = (await record.search('ServiceRequest', [['encounter', `Encounter/${stay.id}`], ['code', `${REFERRAL_CODE.system}|${REFERRAL_CODE.code}`], ['status', 'active,on-hold']])).matches[0];
  const location = stay.location?.[0]?.location;
  return {
    patient: { id: patientId, name: personName(patient), nhsNumber: nhsNumberOf(patient) },
    stay,
    ...(location?.reference ? { ward: { reference: location.reference, display: location.display ?? location.reference } } : {}),
    councils: councilOrgs.map((o) => ({ value: odsOf(o)!, text: o.name ?? odsOf(o)! })).sort((a, b) => a.text.localeCompare(b.text)),
    hospitalOds: actor.organisation!,
    ...(open ? {
      openReferral: open.id,
      openReferralIdentifiers: (open.identifier ?? []).filter((i: any) => i.system === DISCHARGE_REFERRAL_SYSTEM).map((i: any) => String(i.value)),
    } : {}),
  };
}

/** The form checked: what to create, or the errors in the order the fields appear. */
export function checkNewReferral(form: NewReferralForm, start: ReferralStart): { errors: FieldError[]; pathway?: Pathway; expected?: string; consent?: ConsentAnswer[] } {
  const errors: FieldError[] = [];
  if (!start.councils.some((c) => c.value === form.council)) errors.push({ field: 'council', text: 'Select the council to refer to' });
  const pathway = form.pathway !== undefined && form.pathway in PATHWAYS ? Number(form.pathway) as Pathway : undefined;
  if (pathway === undefined) errors.push({ field: 'pathway', text: 'Select the discharge pathway' });
  const expected = expectedDate(form, errors);
  const reason = (form.reason ?? '').trim();
  if (!reason) errors.push({ field: 'reason', text: 'Enter why the patient needs care and support after discharge' });
  else if (reason.length > MAX_TEXT) errors.push({ field: 'reason', text: `The reason must be ${MAX_TEXT} characters or fewer` });
  if ((form.needs ?? '').trim().length > MAX_TEXT) errors.push({ field: 'needs', text: `Needs must be ${MAX_TEXT} characters or fewer` });
  const consent: ConsentAnswer[] = [];
  for (const q of CONSENT_QUESTIONS) {
    const answer = form[q.linkId];
    if (answer !== 'Y' && answer !== 'N') errors.push({ field: q.linkId, text: q.missing });
    else consent.push(consentAnswerOf(q, answer));
  }
  return { errors, pathway, expected, consent };
}

/** The expected discharge date is optional, and may be in the future; when given it must be a real date. */
function expectedDate(form: NewReferralForm, errors: FieldError[]): string | undefined {
  const fields = { day: form['expected-day'], month: form['expected-month'], year: form['expected-year'] };
  if (Object.values(fields).every((v) => !(v ?? '').trim())) return undefined;
  const { date, error } = dateFrom(fields, 'the expected discharge date');
  if (error) errors.push({ field: 'expected-day', text: error });
  return date;
}

/** Creates the referral as the signed-in coordinator; its id, or the errors to show. */
export async function submitNewReferral(ctx: DischargeContext, actor: UserActor, start: ReferralStart, form: NewReferralForm): Promise<{ id?: string; errors: FieldError[] }> {
  const checked = checkNewReferral(form, start);
  if (checked.errors.length) return { errors: checked.errors };
  let id: string | undefined;
  const result = await runStep(async () => {
    const created = await createReferral(ctx, {
      identifier: formSubmission(form.submission),
      patient: `Patient/${start.patient.id}`, encounter: `Encounter/${start.stay.id}`,
      hospitalOds: start.hospitalOds, councilOds: form.council!,
      ...(start.ward ? { ward: start.ward.reference } : {}),
      referrer: { ...(actor.fhirUser?.startsWith('Practitioner/') ? { practitioner: actor.fhirUser } : {}), name: by(actor).display },
      pathway: checked.pathway!, reason: form.reason!.trim(),
      ...((form.needs ?? '').trim() ? { needs: [form.needs!.trim()] } : {}),
      ...(checked.expected ? { expectedDischarge: checked.expected } : {}),
      consent: checked.consent!,
    });
    id = created.referral.id;
  }, 'council');
  return result.ok ? { id, errors: [] } : { errors: result.errors };
}
