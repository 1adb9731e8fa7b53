/**
 * The `herald` command: a thin user of src/index.ts. Reads the config sources, reports every
 * problem at once (exit 2), starts the server, and shuts down gracefully on SIGTERM/SIGINT.
 */
import { createRequire } from 'node:module';
import { pino } from 'pino';
import { ConfigError, createServer, resolveConfig } from '../index.js';
import { argsLayer, envLayer, fileLayer, helpText } from './config-sources.js';
import { runDispatcher } from './dispatch.js';
import { isWorker, reportListening, runPrimary } from './workers.js';

const require = createRequire(import.meta.url);

/** Run the CLI; resolves with the process exit code (or never, while serving). */
export async function main(argv: readonly string[], env: NodeJS.ProcessEnv): Promise<number> {
  const problems: string[] = [];
  const args = argsLayer(argv, problems);
  if (args.help) {
    process.stdout.write(helpText() + '\n');
    return 0;
  }
  if (args.version) {
    process.stdout.write(`${(require('../../package.json') as { version: string }).version}\n`);
    return 0;
  }
  const command = args.positional[0] ?? 'serve';
  if (command !== 'serve' && command !== 'dispatch') problems.push(`unknown command "${command}" (see herald --help)`);
  const file = args.configFile ? fileLayer(args.configFile, problems) : {};
  const fromEnv = envLayer(env, problems);
  let config;
  try {
    config = resolveConfig(file, fromEnv, args.layer);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    problems.push(...err.problems);
  }
  if (problems.length || !config) {
    process.stderr.write(`herald: invalid configuration:\n  - ${problems.join('\n  - ')}\n`);
    return 2;
  }
  const logger = pino({ level: config.logLevel, base: { pid: process.pid } });
  // A promise nobody awaited must not take every connection of the node down with it: log it.
  process.on('unhandledRejection', (reason) => logger.error({ err: String((reason as Error)?.stack ?? reason) }, 'unhandled promise rejection'));
  if (config.dev) logger.warn({ devAllowUnsafe: config.devAllowUnsafe }, 'DEVELOPMENT MODE: bare user names are accepted as identities and loopback is trusted. Never use this in production.');
  if (command === 'dispatch') return runDispatcher(config, logger);
  if (config.workers > 1 && !isWorker()) return runPrimary(config.workers, logger, config.cluster.drainWindowMs + config.timing.shutdownTimeoutMs);
  let server;
  try {
    server = createServer({ config, logger });
  } catch (err) {
    // E.g. the TLS certificate or key cannot be read.
    process.stderr.write(`herald: cannot start: ${(err as Error).message}\n`);
    return 1;
  }
  let addr;
  try {
    addr = await server.listen();
  } catch (err) {
    // E.g. Redis unreachable or the port taken: one clear line, no stack.
    process.stderr.write(`herald: cannot start: ${(err as Error).message}\n`);
    await server.close().catch(() => undefined);
    return 1;
  }
  const what = isWorker() ? 'worker listening' : 'herald listening';
  logger.info({ host: addr.address, port: addr.port, node: server.core.nodeId }, `${what} on ${server.url()}`);
  reportListening(addr.address, addr.port);
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    // In a cluster, clients move to other nodes through the dispatcher, spread over the drain window.
    const drained = config.redis.url ? server.drain() : Promise.resolve();
    drained.then(() => server.close()).then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error({ err: String(err) }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  return new Promise<number>(() => undefined);
}
