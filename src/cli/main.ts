/**
 * The `herald` command: a thin user of src/index.ts. Reads the config sources, reports every
 * problem at once (exit 2), starts the server, and shuts down gracefully on SIGTERM/SIGINT.
 *
 * Exit codes: 0 after a clean shutdown (or help, version, token); 2 for what will not fix
 * itself by restarting: an invalid configuration, a port in use or not allowed, a data directory
 * that cannot be written, an IM store that cannot open (unreachable PostgreSQL, unusable SQLite
 * file); 1 for other start failures (e.g. Redis unreachable) and crashes.
 */
import { createRequire } from 'node:module';
import { pino } from 'pino';
import { ConfigError, createServer, type HeraldConfig, resolveConfig } from '../index.js';
import { argsLayer, envLayer, fileLayer } from './config-sources.js';
import { runDispatcher } from './dispatch.js';
import { COMMANDS, type Command, helpText, TOKEN_FLAGS } from './help.js';
import { prettyDestination } from './log-pretty.js';
import { checkDataDir, errorChain } from './start-checks.js';
import { startupSummary, summaryLines } from './summary.js';
import { didYouMean } from './suggest.js';
import { runToken } from './token.js';
import { isWorker, reportListening, runPrimary } from './workers.js';

const require = createRequire(import.meta.url);
/** The installed package's version. */
const VERSION = (require('../../package.json') as { version: string }).version;
/** Longest wait for the IM store to open at start, ms (an unreachable host never refuses). */
const STORE_OPEN_TIMEOUT_MS = 15_000;
/** Listen errors no restart can fix. */
const FATAL_LISTEN_CODES: Record<string, string> = {
  EADDRINUSE: 'is already in use (another Herald or another program listens there)',
  EACCES: 'is not allowed for this user (ports below 1024 need privileges)',
  EADDRNOTAVAIL: 'is not an address of this host',
};

/** Whether logs are for people: pretty format asked, or auto in development on a terminal. */
function prettyLogs(config: HeraldConfig): boolean {
  return config.logFormat === 'pretty' || (config.logFormat === 'auto' && config.dev && process.stdout.isTTY === true);
}

/** Reject after `ms` with `message` unless `p` settles first. */
function within<T>(p: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/** Run the CLI; resolves with the process exit code (or never, while serving). */
export async function main(argv: readonly string[], env: NodeJS.ProcessEnv): Promise<number> {
  const problems: string[] = [];
  const first = argv[0];
  const named = first !== undefined && !first.startsWith('-');
  const command = (named ? first : 'serve') as Command;
  if (named && !COMMANDS.includes(command)) {
    process.stderr.write(`herald: unknown command "${first}"${didYouMean(first, COMMANDS)}; commands: ${COMMANDS.join(', ')} (see herald --help)\n`);
    return 2;
  }
  const args = argsLayer(named ? argv.slice(1) : argv, problems, command === 'token' ? TOKEN_FLAGS : []);
  if (args.help) {
    process.stdout.write(helpText(named ? command : undefined) + '\n');
    return 0;
  }
  if (args.version) {
    process.stdout.write(`${VERSION}\n`);
    return 0;
  }
  const file = args.configFile ? fileLayer(args.configFile, problems) : {};
  const warnings: string[] = [];
  const fromEnv = envLayer(env, problems, warnings);
  for (const w of warnings) process.stderr.write(`herald: warning: ${w}\n`);
  let config: HeraldConfig | undefined;
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
  if (command === 'token') return runToken(config, args.flags);
  const pretty = prettyLogs(config);
  const logger = pretty ? pino({ level: config.logLevel }, prettyDestination()) : pino({ level: config.logLevel, base: { pid: process.pid } });
  // A promise nobody awaited must not take every connection of the node down with it: log it.
  process.on('unhandledRejection', (reason) => logger.error({ err: String((reason as Error)?.stack ?? reason) }, 'unhandled promise rejection'));
  if (config.dev)
    logger.warn(
      { devAllowUnsafe: config.devAllowUnsafe },
      'DEVELOPMENT MODE: bare user names are accepted as identities and loopback is trusted. Never use this in production.',
    );
  if (command === 'dispatch') return runDispatcher(config, logger);
  const cfg = config;
  const announce = (url: string, what: string, where: { host: string; port: number; node?: string }): void => {
    const summary = startupSummary(cfg, url, VERSION);
    logger.info({ ...where, ...summary }, `${what} on ${url}`);
    if (pretty) process.stdout.write(summaryLines(summary));
  };
  if (config.workers > 1 && !isWorker()) {
    return runPrimary(config.workers, logger, config.cluster.drainWindowMs + config.timing.shutdownTimeoutMs, (url, host, port) =>
      announce(url, `herald listening with ${cfg.workers} workers`, { host, port }),
    );
  }
  const dataDirProblem = checkDataDir(config);
  if (dataDirProblem) {
    process.stderr.write(`herald: cannot start: ${dataDirProblem}\n`);
    return 2;
  }
  let server;
  try {
    server = createServer({ config, logger });
  } catch (err) {
    // E.g. the TLS certificate or key cannot be read.
    process.stderr.write(`herald: cannot start: ${errorChain(err)}\n`);
    return 1;
  }
  try {
    await within(server.im.ready(), STORE_OPEN_TIMEOUT_MS, `no answer within ${STORE_OPEN_TIMEOUT_MS / 1000} s`);
  } catch (err) {
    const where = config.database.url
      ? `PostgreSQL (database.url, schema ${config.database.schema})`
      : `SQLite under ${config.im.storePath || config.dataDir} (dataDir / im.storePath)`;
    process.stderr.write(`herald: cannot open the IM store in ${where}: ${errorChain(err)}\n`);
    await server.close().catch(() => undefined);
    return 2;
  }
  let addr;
  try {
    addr = await server.listen();
  } catch (err) {
    // E.g. Redis unreachable or the port taken: one clear line, no stack.
    const code = (err as NodeJS.ErrnoException).code ?? '';
    const fatal = FATAL_LISTEN_CODES[code];
    process.stderr.write(fatal ? `herald: cannot listen: ${config.host}:${config.port} ${fatal}\n` : `herald: cannot start: ${(err as Error).message}\n`);
    await server.close().catch(() => undefined);
    return fatal ? 2 : 1;
  }
  if (isWorker()) logger.info({ host: addr.address, port: addr.port, node: server.core.nodeId }, `worker listening on ${server.url()}`);
  else announce(server.url(), 'herald listening', { host: addr.address, port: addr.port, node: server.core.nodeId });
  reportListening(addr.address, addr.port);
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    // In a cluster, clients move to other nodes through the dispatcher, spread over the drain window.
    const drained = config.redis.url ? server.drain() : Promise.resolve();
    drained
      .then(() => server.close())
      .then(
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
