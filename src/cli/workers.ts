/**
 * `herald serve --workers N`: N worker processes serve one port (node:cluster; the primary
 * accepts connections and hands them to the workers in turn). Each worker is a full Herald node
 * with its own connections; they share channels and history through the Redis broker, which the
 * configuration requires for N > 1. One process may hold at most 20,000 open files on this class
 * of host, so workers are how one host holds hundreds of thousands of connections.
 *
 * The primary restarts a worker that dies (with a short backoff), except one that exits with
 * code 2 before listening (a configuration the next worker would fail on too: the primary then
 * stops the others and exits 2). On SIGTERM or SIGINT it
 * forwards SIGTERM to every worker (each drains gracefully: clients are told to reconnect) and
 * exits once they all have.
 */
import cluster, { type Worker } from 'node:cluster';
import type { Logger } from '../core/logger.js';
import { serveClusterMetrics, serveHostReports } from '../index.js';

/** Message a worker sends the primary once it listens. */
export interface WorkerListening {
  readonly type: 'herald:listening';
  readonly host: string;
  readonly port: number;
}

/** Delay before a crashed worker is replaced, ms (doubling while they keep crashing, at most 10 s). */
const RESPAWN_DELAY_MS = 250;
/** A worker that lived this long resets the backoff, ms. */
const STABLE_AFTER_MS = 10_000;

/** Whether this process is a worker forked by `runPrimary`. */
export function isWorker(): boolean {
  return cluster.isWorker;
}

/** Tell the primary that this worker listens (no-op outside a cluster). */
export function reportListening(host: string, port: number): void {
  const msg: WorkerListening = { type: 'herald:listening', host, port };
  process.send?.(msg);
}

/**
 * Run the primary: fork `count` workers (they run the same command line), call `onListening`
 * with the URL once all listen,
 * replace crashed ones, and drain them all on SIGTERM/SIGINT. `shutdownTimeoutMs` is the
 * workers' own graceful-shutdown bound (drain window included); the primary kills stragglers
 * a little after it.
 * Resolves with the exit code once every worker has stopped after a signal.
 */
export function runPrimary(
  count: number,
  logger: Logger,
  shutdownTimeoutMs: number,
  onListening: (url: string, host: string, port: number) => void,
): Promise<number> {
  return new Promise<number>((resolve) => {
    let stopping = false;
    let announced = false;
    let backoff = RESPAWN_DELAY_MS;
    let exitCode = 0;
    const listening = new Set<number>();
    const started = new Map<number, number>();

    const fork = (): void => {
      const w = cluster.fork();
      started.set(w.id, Date.now());
      w.on('message', (msg: WorkerListening) => {
        if (msg?.type !== 'herald:listening') return;
        listening.add(w.id);
        if (!announced && listening.size >= count) {
          announced = true;
          const host = msg.host.includes(':') ? `[${msg.host}]` : msg.host;
          onListening(`http://${host}:${msg.port}`, msg.host, msg.port);
        }
      });
    };

    cluster.on('exit', (w: Worker, code: number | null, signal: string | null) => {
      listening.delete(w.id);
      const lived = Date.now() - (started.get(w.id) ?? 0);
      started.delete(w.id);
      if (stopping) {
        if (Object.keys(cluster.workers ?? {}).length === 0) resolve(exitCode);
        return;
      }
      if (code === 2 && !announced) {
        logger.error({ worker: w.process.pid }, 'a worker could not start (see its message above); stopping');
        exitCode = 2;
        stop('worker-failed');
        return;
      }
      logger.error({ worker: w.process.pid, code, signal }, 'worker died; starting another');
      backoff = lived > STABLE_AFTER_MS ? RESPAWN_DELAY_MS : Math.min(backoff * 2, 10_000);
      setTimeout(() => {
        if (!stopping) fork();
      }, backoff).unref();
    });

    const stop = (signal: string): void => {
      if (stopping) return;
      stopping = true;
      const workers = Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined);
      logger.info({ signal, workers: workers.length }, 'shutting down workers');
      if (workers.length === 0) {
        resolve(exitCode);
        return;
      }
      for (const w of workers) w.process.kill('SIGTERM');
      // Workers bound their own drain by shutdownTimeoutMs; kill any that hang past it.
      setTimeout(() => {
        for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGKILL');
      }, shutdownTimeoutMs + 5_000).unref();
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));

    serveClusterMetrics();
    serveHostReports();
    for (let i = 0; i < count; i++) fork();
  });
}
