// The app, assembled from one plugin per capability.
import Fastify, { type FastifyInstance } from 'fastify';
import { fhirApi, openRecordStore, type SqlDriver } from './record/index.ts';
import type { ServerConfig } from './config.ts';

export interface CareBridgeServer {
  app: FastifyInstance;
  driver: SqlDriver;
  close(): Promise<void>;
}

/** `logLevel` (pino levels: error, warn, info…) turns on logging; tests leave it off. */
export async function buildServer(config: ServerConfig, options: { logLevel?: string } = {}): Promise<CareBridgeServer> {
  const driver = await openRecordStore(config.database);
  const app = Fastify({ logger: options.logLevel ? { level: options.logLevel } : false, bodyLimit: config.bodyLimitBytes, routerOptions: { maxParamLength: 500 } });
  await app.register(fhirApi, { driver, baseUrl: config.baseUrl });
  return {
    app,
    driver,
    async close() {
      await app.close();
      await driver.close();
    },
  };
}
