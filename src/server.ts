// The app, assembled from one plugin per capability.
import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify';
import { fhirApi, openRecordStore, type SqlDriver } from './record/index.ts';
import type { ServerConfig } from './config.ts';
import { setUpAccess } from './access/index.ts';

function outcomeText(diagnostics: string): string {
  return JSON.stringify({ resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'invalid', diagnostics }] });
}

export interface CareBridgeServer {
  app: FastifyInstance;
  driver: SqlDriver;
  close(): Promise<void>;
}

/** `logLevel` (pino levels: error, warn, info…) turns on logging; tests leave it off. */
export async function buildServer(config: ServerConfig, options: { logLevel?: string } = {}): Promise<CareBridgeServer> {
  const driver = await openRecordStore(config.database);
  const access = config.insecureNoAuth ? undefined : await setUpAccess(driver, { adminClient: config.adminClient, tokenRequestsPerMinute: config.tokenRequestsPerMinute, baseUrl: config.baseUrl, audit: config.audit, database: config.database });
  const app = Fastify({
    logger: options.logLevel ? { level: options.logLevel } : false,
    bodyLimit: config.bodyLimitBytes,
    routerOptions: { maxParamLength: 500 },
    // Errors Fastify raises before a route runs still answer with an OperationOutcome.
    frameworkErrors: (err, _req, reply: FastifyReply) => {
      reply.code(400).header('content-type', 'application/fhir+json').send(outcomeText(`The request could not be read: ${err.message}`));
    },
    clientErrorHandler: (err, socket) => {
      const status = (err as { code?: string }).code === 'HPE_HEADER_OVERFLOW' ? 431 : 400;
      const body = outcomeText(status === 431 ? 'The request line and headers are too large; send long searches as POST [type]/_search.' : 'The request is not valid HTTP.');
      if (socket.writable) socket.end(`HTTP/1.1 ${status} ${status === 431 ? 'Request Header Fields Too Large' : 'Bad Request'}\r\nContent-Type: application/fhir+json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
      else socket.destroy(err);
    },
  });
  if (access) await app.register(access.routes);
  await app.register(fhirApi, { driver, baseUrl: config.baseUrl, authenticate: access?.authenticate, services: access?.services });
  return {
    app,
    driver,
    async close() {
      await app.close();
      await access?.close(); // buffered audit events
      await driver.close();
    },
  };
}
