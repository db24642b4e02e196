// The red bag on the FHIR API, as operations the record runs with the caller's own access:
//   POST Patient/{id}/$red-bag       the draft pack (document Bundle), not sent; body: optional Parameters
//   POST Patient/{id}/$red-bag-send  checks, then sends; 201 with the lifecycle Task (422 lists what is missing)
//   POST Task/{id}/$red-bag-step     the next step, If-Match required (412 when someone else got there first)
//   GET  Task/{id}/$red-bag-pack     the pack as it was sent
//   GET  Task/{id}/$red-bag-print    the PDF, as a Binary
import { FhirError, type FhirOperation, type FhirResponse, type OperationCall } from '../record/index.ts';
import { detailsFromParameters } from './details.ts';
import { advanceTransfer, isRedBagTask, packOf, prepareTransferPack, sendTransferPack, stepOf, type RedBagContext, type RedBagSettings, type StepInput } from './lifecycle.ts';
import { read } from './recordCalls.ts';
import { transferPackPdf } from './print.ts';
import { RED_BAG_STEPS } from './codes.ts';

function contextOf(call: OperationCall, settings: RedBagSettings, now: () => number): RedBagContext {
  return { call: call.fhir, caller: call.access.caller, base: call.base, now, settings };
}

function taskResponse(task: any, status: number, base: string): FhirResponse {
  const version = task.meta?.versionId;
  return { status, body: task, headers: { ETag: `W/"${version}"`, Location: `${base}/Task/${task.id}/_history/${version}` } };
}

function stepInput(body: unknown, ifMatch: string | undefined): StepInput {
  const params = body as { resourceType?: string; parameter?: any[] } | undefined;
  if (!params || params.resourceType !== 'Parameters' || !Array.isArray(params.parameter)) {
    throw new FhirError(400, [{ severity: 'error', code: 'invalid', diagnostics: 'Send a Parameters resource naming the step (received, in-hospital, discharge-summary-attached, returned, closed), with If-Match.' }]);
  }
  const value = (name: string) => {
    const p = params.parameter!.find((x) => x?.name === name);
    const v = p?.valueCode ?? p?.valueString ?? p?.valueDate ?? p?.valueReference?.reference;
    if (v !== undefined && typeof v !== 'string') throw new FhirError(400, [{ severity: 'error', code: 'invalid', diagnostics: `'${name}' must be text.`, expression: [name] }]);
    return v as string | undefined;
  };
  return { step: value('step') ?? '', ifMatch, ward: value('ward'), expectedDischarge: value('expected-discharge'), dischargeSummary: value('discharge-summary'), dischargeSummaryReference: value('discharge-summary-reference'), note: value('note') };
}

async function redBagTask(call: OperationCall): Promise<any> {
  const task = await read(call.fhir, `Task/${encodeURIComponent(call.id)}`);
  if (!isRedBagTask(task)) throw new FhirError(404, [{ severity: 'error', code: 'not-found', diagnostics: `Task/${call.id} is not a red bag.` }]);
  return task;
}

/** Progress lines for print: each note on the Task, oldest first. */
export function progressOf(task: any): { step: string; history: string[] } {
  const step = stepOf(task);
  return { step: step ? RED_BAG_STEPS[step].display : 'Unknown', history: (task.note ?? []).map((n: { time?: string; text?: string }) => `${n.time ?? ''} ${n.text ?? ''}`.trim()) };
}

export function redBagOperations(settings: RedBagSettings, now: () => number = Date.now): FhirOperation[] {
  return [
    {
      name: 'red-bag', resourceType: 'Patient', methods: ['POST'],
      async invoke(call) {
        const { bundle } = await prepareTransferPack(contextOf(call, settings, now), call.id, detailsFromParameters(call.body));
        return { status: 200, body: bundle };
      },
    },
    {
      name: 'red-bag-send', resourceType: 'Patient', methods: ['POST'],
      async invoke(call) {
        const { task } = await sendTransferPack(contextOf(call, settings, now), call.id, detailsFromParameters(call.body));
        return taskResponse(task, 201, call.base);
      },
    },
    {
      name: 'red-bag-step', resourceType: 'Task', methods: ['POST'],
      async invoke(call) {
        return taskResponse(await advanceTransfer(contextOf(call, settings, now), call.id, stepInput(call.body, call.ifMatch)), 200, call.base);
      },
    },
    {
      name: 'red-bag-pack', resourceType: 'Task', methods: ['GET'],
      async invoke(call) {
        return { status: 200, body: await packOf(contextOf(call, settings, now), await redBagTask(call)) };
      },
    },
    {
      name: 'red-bag-print', resourceType: 'Task', methods: ['GET'],
      async invoke(call) {
        const task = await redBagTask(call);
        const pdf = await transferPackPdf(await packOf(contextOf(call, settings, now), task), progressOf(task));
        return { status: 200, body: { resourceType: 'Binary', contentType: 'application/pdf', data: pdf.toString('base64') } };
      },
    },
  ];
}
