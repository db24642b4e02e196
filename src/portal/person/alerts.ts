// A person's alerts as the pages show them (tags): active Flags, and active DNACPR decisions (Consent).
import type { RecordClient, Resource } from '../recordClient.ts';
import { conceptText } from './text.ts';

export interface Alert {
  text: string;
  /** nhsuk-frontend tag colour. */
  colour: 'red' | 'orange' | 'yellow' | 'blue';
}

/** The record takes up to 100 values in one OR list. */
const OR_LIMIT = 100;

/**
 * Active Flags and DNACPR decisions, per patient id, fetched in as few searches as the OR limit allows.
 * A role that may not read Consent (a broker) gets the Flags only; `mayRead` says which.
 */
export async function alertsFor(record: RecordClient, patientIds: string[], mayRead: (type: string) => boolean = () => true): Promise<Map<string, Alert[]>> {
  const byPatient = new Map<string, Alert[]>();
  const add = (ref: string | undefined, alert: Alert) => {
    const id = ref?.replace(/^Patient\//, '');
    if (!id) return;
    byPatient.set(id, [...(byPatient.get(id) ?? []), alert]);
  };
  const none = { matches: [] as Resource[] };
  for (let i = 0; i < patientIds.length; i += OR_LIMIT) {
    const ids = patientIds.slice(i, i + OR_LIMIT).join(',');
    const [dnacpr, flags] = await Promise.all([
      mayRead('Consent') ? record.search('Consent', [['patient', ids], ['status', 'active'], ['category', 'http://terminology.hl7.org/CodeSystem/consentcategorycodes|dnr'], ['_count', '1000']]) : none,
      mayRead('Flag') ? record.search('Flag', [['patient', ids], ['status', 'active'], ['_count', '1000']]) : none,
    ]);
    for (const c of dnacpr.matches) add(c.patient?.reference, { text: 'DNACPR', colour: 'red' });
    for (const f of flags.matches) add(f.subject?.reference, flagAlert(f));
  }
  return byPatient;
}

export function flagAlert(flag: Resource): Alert {
  const safety = (flag.category ?? []).some((c: any) => c.coding?.some((k: any) => k.code === 'safety'));
  return { text: conceptText(flag.code), colour: safety ? 'orange' : 'yellow' };
}
