import type { Command } from 'commander';
import { isLoopback, loadServerConfig } from '../config.ts';
import { DatabaseUnavailable } from '../record/index.ts';
import { databaseSetting } from './store.ts';

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
      // Loaded here, not with the command line: only serve needs the server and the portal, the heaviest of the code to load.
      const [{ buildServer }, { seedDemoIfEmpty }, { calendarRunningOut }] = await Promise.all([import('../server.ts'), import('./demoSeed.ts'), import('../discharge/index.ts')]);
      if (config.insecureNoAuth) console.warn('WARNING: --insecure-no-auth: anyone who can reach this port can read and change the record.');
      const calendar = calendarRunningOut(Date.now());
      if (calendar) console.warn(calendar);
      const server = await buildServer(config, { logLevel: process.env.CAREBRIDGE_LOG_LEVEL ?? 'error' }).catch((err) => {
        throw err instanceof DatabaseUnavailable ? new Error(err.givenBy(databaseSetting(flags.db))) : err;
      });
      const address = await server.app.listen({ host: config.host, port: config.port });
      // From the moment requests are answered: a stop writes out what they buffered (the audit trail's last
      // entries) before exiting, even while the demo below is still being loaded.
      let stopping: Promise<void> | undefined;
      const stop = () => (stopping ??= server.close().then(() => process.exit(0)));
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      // Demo logins only for a server bound to this machine: never hand out credentials on a network.
      if (flags.demo !== false && !config.insecureNoAuth && isLoopback(config.host)) {
        const lines = await seedDemoIfEmpty(server.driver, address).catch((err) => {
          if (stopping) return [] as string[]; // stopped while loading: the database closed under it
          throw err;
        });
        if (stopping) return;
        for (const line of lines) console.log(line);
      }
      const where = config.database.startsWith('sqlite:') ? config.database : config.database.replace(/\/\/[^@/]*@/, '//***@');
      if (server.hl7) console.log(`HL7 v2 (MLLP) listening on ${server.hl7.host}:${server.hl7.port}`);
      console.log(`CareBridge listening on ${address} (portal at ${address}/${config.insecureNoAuth ? ' not served without authentication' : ''}, FHIR API at ${address}/fhir${config.messaging.sharedKey ? `, MESH mailbox at ${address}/messageexchange` : ''}, database ${where})`);
    });
}
