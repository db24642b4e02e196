import type { Command } from 'commander';
import { isIP, type AddressInfo } from 'node:net';
import { isLoopback, listenSettings, loadServerConfig, serverLogLevel } from '../config.ts';
import { DatabaseUnavailable } from '../record/index.ts';
import { databaseSetting } from './store.ts';
import { cannotListen } from './listenErrors.ts';

export function serveCommand(program: Command): void {
  program
    .command('serve')
    .description('Serve the portal and the FHIR API until stopped.')
    .option('--host <host>', 'address to listen on (env HOST; default 127.0.0.1)')
    .option('--port <port>', 'port to listen on (env PORT; default 8080)')
    .option('--db <database>', 'sqlite:PATH or postgres://… (env CAREBRIDGE_DB; default sqlite:./data/carebridge.db)')
    .option('--base-url <url>', 'public base URL of the FHIR API (env CAREBRIDGE_BASE_URL)')
    .option('--insecure-no-auth', 'serve the API with no authentication at all (never in production; prints a warning)')
    .option('--no-demo', 'do not load demo data and a demo login into an empty database')
    .action(async (flags) => {
      const config = loadServerConfig(flags);
      const logLevel = serverLogLevel();
      // Loaded here, not with the command line: only serve needs the server and the portal, the heaviest of the code to load.
      const [{ buildServer }, { seedDemoIfEmpty }, { calendarRunningOut }] = await Promise.all([import('../server.ts'), import('./demoSeed.ts'), import('../discharge/index.ts')]);
      if (config.insecureNoAuth) console.warn('WARNING: --insecure-no-auth: anyone who can reach this port can read and change the record.');
      const calendar = calendarRunningOut(Date.now());
      if (calendar) console.warn(calendar);
      const settings = listenSettings(flags);
      const listening = (what: string, port: number, portSetting: string) => ({ what, host: config.host, port, hostSetting: settings.host, portSetting });
      const server = await buildServer(config, { logLevel }).catch((err) => {
        if (err instanceof DatabaseUnavailable) throw new Error(err.givenBy(databaseSetting(flags.db)));
        // The HL7 v2 listener is the one that starts with the server; HTTP listens below.
        throw (config.hl7 && cannotListen(err, listening('HL7 v2 (MLLP)', config.hl7.port, 'CAREBRIDGE_HL7_PORT'))) || err;
      });
      await server.app.listen({ host: config.host, port: config.port }).catch(async (err) => {
        await server.close();
        throw cannotListen(err, listening('HTTP', config.port, settings.port)) ?? err;
      });
      const { url, allInterfaces } = listeningOn(config.host, (server.app.server.address() as AddressInfo).port);
      // From the moment requests are answered: a stop writes out what they buffered (the audit trail's last
      // entries) before exiting, even while the demo below is still being loaded.
      let stopping: Promise<void> | undefined;
      const stop = () => (stopping ??= server.close().then(() => process.exit(0)));
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      // Demo logins only for a server bound to this machine: never hand out credentials on a network.
      if (flags.demo !== false && !config.insecureNoAuth && isLoopback(config.host)) {
        const lines = await seedDemoIfEmpty(server.driver, url).catch((err) => {
          if (stopping) return [] as string[]; // stopped while loading: the database closed under it
          throw err;
        });
        if (stopping) return;
        for (const line of lines) console.log(line);
      }
      const where = config.database.startsWith('sqlite:') ? config.database : config.database.replace(/\/\/[^@/]*@/, '//***@');
      if (server.hl7) console.log(`HL7 v2 (MLLP) listening on ${server.hl7.host}:${server.hl7.port}`);
      const on = allInterfaces ? `${allInterfaces} (all interfaces; ` : `${url} (`;
      console.log(`CareBridge listening on ${on}portal at ${url}/${config.insecureNoAuth ? ' not served without authentication' : ''}, FHIR API at ${url}/fhir${config.messaging.sharedKey ? `, MESH mailbox at ${url}/messageexchange` : ''}, database ${where})`);
    });
}

/** Hosts that listen on every interface, and the loopback address that reaches them from this machine. */
const WILDCARD_LOOPBACK = new Map([['0.0.0.0', '127.0.0.1'], ['::', '::1']]);

/**
 * What the start-up line says: the host the server was told to listen on, with the port it got. Fastify's
 * own answer is its first address, which for 0.0.0.0 is 127.0.0.1 and reads as if only this machine could
 * connect, and for a host name is that name's first address. A wildcard is said as such (`allInterfaces`,
 * e.g. 0.0.0.0:8080), with a loopback URL that works from this machine.
 */
function listeningOn(host: string, port: number): { url: string; allInterfaces?: string } {
  const hostPort = (h: string) => `${isIP(h) === 6 ? `[${h}]` : h}:${port}`;
  const loopback = WILDCARD_LOOPBACK.get(host);
  return loopback ? { url: `http://${hostPort(loopback)}`, allInterfaces: hostPort(host) } : { url: `http://${hostPort(host)}` };
}
