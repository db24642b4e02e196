// Digital discharge end to end (issue 4 item 9): ADW assessment notices sent to a council's mailbox on the
// built-in MESH, over HTTP with NHSMESH authentication, until each is stored, processed by the council's
// discharge workflow and stands as a council work item (a triage Task). The server runs as `carebridge
// serve` in its own process; this process plays the hospital's MESH client.
//
//   node --import tsx bench/discharge.ts [--engine sqlite|postgres] [--notices 2000] [--in-flight 16]
//                                        [--rate 100] [--seconds 10]
//
// Two phases on one fresh database: (1) saturation: --notices sent with --in-flight at a time; notices per
// second = notices / (last one done − first one sent). (2) latency: --rate notices a second for --seconds,
// open loop (sent on a clock, not after the previous answer), below saturation; p50/p99 of each notice's
// time from the start of its MESH upload to the moment the inbox marked it done (after the transaction that
// created the referral and its Task committed). Times come from the server's inbox table (same clock).
// Also printed: the rate of MESH receipt alone during saturation (uploads stored and answered 202), and the
// CPU per notice of the server process (and of its serving thread, which bounds throughput: 500/s needs it
// under 2 ms) and of this client, which share the machine.
import { parseArgs } from 'node:util';
import { readFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { Agent, request } from 'node:http';
import { availableParallelism, loadavg } from 'node:os';
import { meshAuthorisationHeader } from '../src/messaging/index.ts';
import { openRecordStore } from '../src/record/index.ts';
import { runCli } from '../test/cli/cli.ts';
import { stopOwnPostgres } from '../test/support/postgres.ts';
import { authHeader, cpuMeter, freshDatabase, log, mainThreadCpuMs, percentile, processCpuMs, processWrittenBytes, startServer, type Engine } from './support.ts';
import { count, ms, table } from './table.ts';

const { values: args } = parseArgs({ options: {
  engine: { type: 'string', default: 'sqlite' }, notices: { type: 'string', default: '2000' }, 'in-flight': { type: 'string', default: '16' },
  rate: { type: 'string', default: '100' }, seconds: { type: 'string', default: '10' },
} });
const engine = args.engine as Engine;
const SHARED_KEY = 'bench-mesh-shared-key';
const HOSPITAL = { mailbox: 'HOSPITAL01', password: 'hospital-mesh-password', ods: 'RFM8C2' };
const COUNCIL = { mailbox: 'COUNCIL01', password: 'council-mesh-password', ods: 'V396BB' };
const EXAMPLE = readFileSync(new URL('../test/fixtures/adw/ADW-Message-Assessment-Notice-Bundle-1-Example-1.xml', import.meta.url), 'utf8');
/** The example's ids that must be unique per notice: the episode, the stay, the MessageHeader and the rest. */
const EXAMPLE_IDS = ['311fcae7-32a7-4a8e-a15c-eebae3a246b9', '2562b8b6-c0db-424a-8c6b-0fa43b0d6c2f', '5bfa2a2e-923b-440d-82d6-38e24b666be6'];

function notice(): string {
  let xml = EXAMPLE;
  for (const id of EXAMPLE_IDS) xml = xml.split(id).join(randomUUID());
  return xml;
}

// node:http with kept-alive connections rather than fetch: the client shares the two cores with the server,
// and fetch took about twice the CPU per upload.
const agent = new Agent({ keepAlive: true });

async function send(url: string, body: string): Promise<{ messageId: string; sentAt: number; ackedAt: number }> {
  const sentAt = Date.now();
  const payload = Buffer.from(body);
  const { status, text } = await new Promise<{ status: number; text: string }>((resolve, reject) => {
    const req = request(`${url}/messageexchange/${HOSPITAL.mailbox}/outbox`, {
      method: 'POST', agent,
      headers: {
        authorization: meshAuthorisationHeader(HOSPITAL.mailbox, HOSPITAL.password, SHARED_KEY), 'mex-to': COUNCIL.mailbox, 'mex-workflowid': 'ADW_NOTICE',
        'mex-subject': 'Assessment notice', 'content-type': 'application/xml', 'content-length': payload.length,
      },
    }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (part: Buffer) => parts.push(part)).on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(parts).toString() })).on('error', reject);
    });
    req.on('error', reject).end(payload);
  });
  const answer = JSON.parse(text) as { message_id?: string };
  if (status !== 202 || !answer.message_id) throw new Error(`MESH refused a notice: ${status} ${text}`);
  return { messageId: answer.message_id, sentAt, ackedAt: Date.now() };
}

interface Done { status: string; finished_ms: number | string | null }

async function main(): Promise<void> {
  const { database, cleanup } = await freshDatabase(engine);
  for (const [box, flags] of [[COUNCIL, []], [HOSPITAL, ['--polled']]] as const) {
    const added = await runCli(['mesh', 'mailbox', 'add', box.mailbox, '--ods', box.ods, '--password', box.password, ...flags, '--db', database], { CAREBRIDGE_MESH_SHARED_KEY: SHARED_KEY });
    if (added.code !== 0) throw new Error(added.stderr);
  }
  process.env.CAREBRIDGE_MESH_SHARED_KEY = SHARED_KEY;
  const server = await startServer(database);
  const store = await openRecordStore(database);
  try {
    const auth = await authHeader(server.url);
    for (const org of [
      { resourceType: 'Organization', id: 'hebburn-hospital', identifier: [{ system: 'https://fhir.nhs.uk/Id/ods-site-code', value: HOSPITAL.ods }], name: 'Hebburn Hospital' },
      { resourceType: 'Organization', id: 'hebburn-council', identifier: [{ system: 'https://fhir.nhs.uk/Id/ods-organization-code', value: COUNCIL.ods }], name: 'Hebburn Council' },
    ]) {
      const r = await fetch(`${server.url}/fhir/Organization/${org.id}`, { method: 'PUT', headers: { authorization: auth, 'content-type': 'application/fhir+json' }, body: JSON.stringify(org) });
      if (r.status >= 300) throw new Error(await r.text());
    }
    const finished = async (ids: string[]): Promise<Map<string, Done>> => {
      const rows = await store.all<Done & { message_id: string }>(`SELECT message_id, status, finished_ms FROM messaging_inbox WHERE message_id IN (${ids.map(() => '?').join(', ')})`, ids);
      return new Map(rows.map((r) => [r.message_id, r]));
    };
    const waitAllDone = async (ids: string[]): Promise<Map<string, Done>> => {
      for (;;) {
        const done = new Map<string, Done>();
        for (let i = 0; i < ids.length; i += 500) for (const [k, v] of await finished(ids.slice(i, i + 500))) done.set(k, v);
        const open = ids.filter((id) => !['done', 'dead'].includes(done.get(id)?.status ?? ''));
        if (!open.length) {
          const dead = ids.filter((id) => done.get(id)?.status === 'dead');
          if (dead.length) throw new Error(`${dead.length} notices were dead-lettered`);
          return done;
        }
        await new Promise((r) => setTimeout(r, 200));
      }
    };

    // Warm-up: the first notices pay for compiling and caches.
    const warm = await Promise.all(Array.from({ length: 20 }, () => send(server.url, notice())));
    await waitAllDone(warm.map((w) => w.messageId));

    // (1) Saturation.
    const total = Number(args.notices);
    const inFlight = Number(args['in-flight']);
    const bodies = Array.from({ length: total }, notice);
    const sent: { messageId: string; sentAt: number; ackedAt: number }[] = [];
    log(`saturation: ${total} notices, ${inFlight} in flight (${engine})`);
    const cpu = cpuMeter();
    const serverCpu0 = processCpuMs(server.pid);
    const servingCpu0 = mainThreadCpuMs(server.pid);
    const serverWritten0 = processWrittenBytes(server.pid);
    const clientCpu0 = processCpuMs(process.pid);
    let next = 0;
    await Promise.all(Array.from({ length: inFlight }, async () => {
      while (next < bodies.length) sent.push(await send(server.url, bodies[next++]));
    }));
    const done = await waitAllDone(sent.map((s) => s.messageId));
    const busy = cpu();
    const serverCpuPerNotice = (processCpuMs(server.pid) - serverCpu0) / total;
    // The serving thread bounds throughput; the rest is the ADW reader, the audit writer, the checkpointer and V8's helpers.
    const servingCpuPerNotice = (mainThreadCpuMs(server.pid) - servingCpu0) / total;
    const serverKbPerNotice = (processWrittenBytes(server.pid) - serverWritten0) / total / 1024;
    // The hospital's side (uploads over HTTP, waiting for the inbox) runs on the same two cores.
    const clientCpuPerNotice = (processCpuMs(process.pid) - clientCpu0) / total;
    const first = Math.min(...sent.map((s) => s.sentAt));
    const last = Math.max(...[...done.values()].map((d) => Number(d.finished_ms)));
    const perSecond = total / ((last - first) / 1000);
    // MESH receipt alone (stored durably and answered 202), while the processing of earlier notices competes.
    const receiptsPerSecond = total / ((Math.max(...sent.map((s) => s.ackedAt)) - first) / 1000);
    const satLatency = sent.map((s) => Number(done.get(s.messageId)!.finished_ms) - s.sentAt);

    // (2) Latency at a steady rate.
    const rate = Number(args.rate);
    const seconds = Number(args.seconds);
    log(`latency: ${rate} notices/s for ${seconds} s`);
    const paced: ReturnType<typeof send>[] = [];
    const start = Date.now();
    for (let i = 0; i < rate * seconds; i++) {
      const due = start + (i * 1000) / rate;
      const wait = due - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      paced.push(send(server.url, notice()));
    }
    const pacedSent = await Promise.all(paced);
    const pacedDone = await waitAllDone(pacedSent.map((s) => s.messageId));
    const latency = pacedSent.map((s) => Number(pacedDone.get(s.messageId)!.finished_ms) - s.sentAt);
    const lag = Date.now() - start - seconds * 1000;

    const tasks = await store.get<{ n: number }>("SELECT COUNT(*) AS n FROM discharge_adw_episodes WHERE role = 'council'");
    const expected = 20 + total + rate * seconds;
    if (Number(tasks?.n) !== expected) throw new Error(`expected ${expected} council work items, found ${tasks?.n}`);

    console.log(`\nDischarge notices end to end (${engine}; ${availableParallelism()} cores; load average ${loadavg().map((l) => l.toFixed(1)).join(' ')}; `
      + `during saturation this benchmark used ${(busy.ours * 100).toFixed(0)}% of the machine, others ${(busy.others * 100).toFixed(0)}%; `
      + `the server process used ${serverCpuPerNotice.toFixed(1)} ms of CPU per notice (its serving thread ${servingCpuPerNotice.toFixed(1)} ms), this client ${clientCpuPerNotice.toFixed(1)} ms; `
      + `the server wrote ${serverKbPerNotice.toFixed(0)} KB to storage per notice)\n`);
    console.log(table(['phase', 'notices', 'notices/s', 'p50', 'p99', 'max'], [
      [`saturation, ${inFlight} in flight`, count(total), perSecond.toFixed(0), ms(percentile(satLatency, 50)), ms(percentile(satLatency, 99)), ms(Math.max(...satLatency))],
      [`steady ${rate}/s for ${seconds} s`, count(rate * seconds), `${rate}`, ms(percentile(latency, 50)), ms(percentile(latency, 99)), ms(Math.max(...latency))],
    ]));
    console.log(`\nMESH receipt alone during saturation (stored and acknowledged with 202, processing running alongside): ${receiptsPerSecond.toFixed(0)} notices/s.`);
    console.log(`\nEvery notice is a council work item (${count(expected)} triage Tasks with their referrals); the last steady notice was done ${lag} ms after the sending window closed.`);
  } finally {
    await store.close();
    await server.stop();
    // BENCH_KEEP_DB=1 keeps the SQLite file for counting what a notice wrote (rows and pages per table).
    if (process.env.BENCH_KEEP_DB === '1' && engine === 'sqlite') log(`kept ${database}`);
    else cleanup();
    await stopOwnPostgres();
  }
}

await main();
