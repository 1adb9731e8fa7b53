/**
 * The server side of bench/im.ts: a Herald node in dev mode on port 0 with the IM store at the
 * given path. Prints `READY <url>`. Not for production use.
 */
import { createServer } from '../src/index.js';

const [storePath, storeSync = 'full'] = process.argv.slice(2);
if (!storePath) throw new Error('usage: im-server.ts <sqlite file> [full|normal]');
const server = createServer({
  config: {
    host: '127.0.0.1',
    port: 0,
    dev: true,
    logLevel: 'silent',
    limits: { maxConnections: 200_000, commandsPerSecond: 100_000 },
    im: { storePath, storeSync, sendsPerSecond: 100_000, redeliveryTimeoutMs: 30_000 },
  },
  processMetrics: false,
});
await server.listen();
process.stdout.write(`READY ${server.url()}\n`);
process.on('SIGTERM', () => void server.close().then(() => process.exit(0)));
