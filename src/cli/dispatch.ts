/**
 * `herald dispatch`: the dispatcher role of the same binary. Serves `GET /dispatch?user=…` on
 * the configured host and port, reading live nodes from the Redis node registry (redis.url is
 * required), and stops on SIGTERM/SIGINT.
 */
import type { Logger } from 'pino';
import { createDispatchServer, Dispatcher, type HeraldConfig, listenDispatch, NetPolicy, RedisNodeRegistry } from '../index.js';

/** Run the dispatcher; resolves with the exit code after a signal. */
export async function runDispatcher(config: HeraldConfig, logger: Logger): Promise<number> {
  if (!config.redis.url) {
    process.stderr.write('herald: invalid configuration:\n  - redis.url: the dispatcher reads live nodes from Redis; set --redis or HERALD_REDIS_URL\n');
    return 2;
  }
  const registry = new RedisNodeRegistry({ url: config.redis.url, prefix: config.redis.prefix });
  try {
    await registry.start();
  } catch (err) {
    process.stderr.write(`herald: cannot start: ${(err as Error).message}\n`);
    return 1;
  }
  const net = new NetPolicy(config);
  const dispatcher = new Dispatcher({ registry, strategy: config.dispatch.strategy, backups: config.dispatch.backups, net });
  const server = createDispatchServer(dispatcher, { apiKey: config.apiKey, net });
  const addr = await listenDispatch(server, config.port, config.host);
  logger.info(
    { host: addr.address, port: addr.port, strategy: config.dispatch.strategy },
    `herald dispatcher listening on http://${addr.address}:${addr.port}`,
  );
  return new Promise<number>((resolve) => {
    const stop = (signal: string): void => {
      logger.info({ signal }, 'dispatcher shutting down');
      server.close();
      server.closeAllConnections();
      void registry.close().then(() => resolve(0));
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
}
