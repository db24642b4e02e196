// The Fastify baseline: one empty route, nothing else. Started as its own process by baselines.ts.
import Fastify from 'fastify';

const port = Number(process.argv[process.argv.indexOf('--port') + 1]);
const app = Fastify({ logger: false });
app.get('/empty', async () => ({}));
const address = await app.listen({ host: '127.0.0.1', port });
console.log(`empty Fastify listening on ${address}`);
process.once('SIGTERM', () => void app.close().then(() => process.exit(0)));
