// The app, assembled from one plugin per capability.
import Fastify, { type FastifyInstance } from 'fastify';
import { fhirApi, openRecordStore, type SqlDriver } from './record/index.ts';
import type { ServerConfig } from './config.ts';

export interface CareBridgeServer {
  app: FastifyInstance;
  driver: SqlDriver;
  close(): Promise<void>;
}

export async function buildServer(config: ServerConfig, options: { logger?: boolean } = {}): Promise<CareBridgeServer> {
  const driver = await openRecordStore(config.database);
  const app = Fastify({ logger: options.logger ?? false, bodyLimit: config.bodyLimitBytes, routerOptions: { maxParamLength: 500 } });
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
