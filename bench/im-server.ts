/**
 * The server side of bench/im.ts: a Herald node in dev mode on port 0 with the IM store at the
 * given path. Prints `READY <url>`. Not for production use.
 *
 *   im-server.ts <sqlite file> [full|normal] [--redis <url> --redis.prefix <p>]
 *                [--database <postgres url> --database.schema <s>]
 *
 * With `--redis` the node joins the cluster on that Redis (several im-server processes with the
 * same prefix form one cluster); with `--database` the IM store is PostgreSQL (the SQLite file
 * is then unused).
 */
import { createServer } from '../src/index.js';

const [storePath, storeSync = 'full', ...rest] = process.argv.slice(2);
if (!storePath) throw new Error('usage: im-server.ts <sqlite file> [full|normal] [--redis <url> --redis.prefix <p>] [--database <url> --database.schema <s>]');
const flags = new Map<string, string>();
for (let i = 0; i < rest.length; i += 2) flags.set(rest[i]!.replace(/^--/, ''), rest[i + 1] ?? '');
const redisUrl = flags.get('redis');
const databaseUrl = flags.get('database');
const server = createServer({
  config: {
    host: '127.0.0.1',
    port: 0,
    dev: true,
    logLevel: 'silent',
    limits: { maxConnections: 200_000, commandsPerSecond: 100_000 },
    im: { storePath, storeSync, sendsPerSecond: 100_000, redeliveryTimeoutMs: 30_000 },
    ...(redisUrl ? { redis: { url: redisUrl, prefix: flags.get('redis.prefix') ?? 'herald:' } } : {}),
    ...(databaseUrl ? { database: { url: databaseUrl, ...(flags.has('database.schema') ? { schema: flags.get('database.schema') } : {}) } } : {}),
  },
  processMetrics: false,
});
await server.listen();
process.stdout.write(`READY ${server.url()}\n`);
process.on('SIGTERM', () => void server.close().then(() => process.exit(0)));
