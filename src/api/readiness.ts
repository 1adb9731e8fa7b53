/**
 * `GET /ready`: whether this node can serve, engine by engine. `/health` answers "the process
 * runs"; `/ready` answers "its IM store, broker and Redis answer now", for load balancers,
 * orchestrators and the people reading the startup screen.
 *
 * Each check is a real round trip bounded by READY_CHECK_TIMEOUT_MS: a read of the IM store
 * (opening it if needed), the broker's ping (Redis: both its connections up and a PING), and a
 * PING on Redis over the check's own connection (the one presence and sessions depend on too).
 * Results are shared for READY_CACHE_MS, so a flood of probes costs one round of checks.
 * 200 when every check passes, 503 otherwise or while the node shuts down. Error messages
 * (which name hosts) are shown only to callers authorized for the server API.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { HeraldCore } from '../core/core.js';
import type { ImService } from '../core/im/service.js';
import type { ImStore } from '../core/im/store.js';
import { LazyRedis } from '../engines/redis-connection.js';
import { sendJson } from '../transports/http.js';

/** Longest a single readiness check may take, ms. */
export const READY_CHECK_TIMEOUT_MS = 2_000;
/** How long one round of checks answers every probe, ms. */
export const READY_CACHE_MS = 1_000;
/** User id the IM store check reads (never a valid user id, so never a row). */
const PROBE_USER = '$herald-ready';

/** One check's outcome. */
export interface CheckResult {
  readonly status: 'ok' | 'error';
  readonly engine: string;
  readonly ms: number;
  readonly message?: string;
}

/** The `/ready` body. */
export interface ReadyReport {
  readonly status: 'ready' | 'unavailable' | 'shutting-down';
  readonly node: string;
  readonly checks: Readonly<Record<string, CheckResult>>;
}

/** Options of `new Readiness()`. */
export interface ReadinessOptions {
  readonly core: HeraldCore;
  readonly im: ImService;
  /** The IM store the service uses (read by the check once the service opened it). */
  readonly store: ImStore;
  /** Whether the request may see error details (the server API's rule). */
  readonly authorized: (req: IncomingMessage) => boolean;
  /** Whether the node is shutting down. */
  readonly closing: () => boolean;
}

interface Check {
  readonly name: string;
  readonly engine: string;
  readonly run: () => Promise<unknown>;
}

/** Reject after `ms` unless `p` settles first. */
function within<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

/** The readiness endpoint of one node. */
export class Readiness {
  readonly #opts: ReadinessOptions;
  readonly #checks: Check[];
  readonly #redis: LazyRedis | undefined;
  #last: { at: number; report: Promise<ReadyReport> } | undefined;

  constructor(options: ReadinessOptions) {
    this.#opts = options;
    const { core, im, store } = options;
    const { database, redis } = core.config;
    this.#redis = redis.url ? new LazyRedis(redis.url, { connectionName: `herald-ready-${core.nodeId}`, label: 'Readiness check' }) : undefined;
    this.#checks = [
      { name: 'imStore', engine: database.url ? 'postgres' : 'sqlite', run: () => im.ready().then(() => store.users([PROBE_USER])) },
      { name: 'broker', engine: redis.url ? 'redis' : 'memory', run: async () => core.broker.ping?.() },
    ];
    const r = this.#redis;
    if (r) this.#checks.push({ name: 'redis', engine: 'redis', run: () => r.run((c) => c.ping()) });
  }

  /** Run the checks (or share a round younger than READY_CACHE_MS). */
  report(): Promise<ReadyReport> {
    if (this.#last && Date.now() - this.#last.at < READY_CACHE_MS) return this.#last.report;
    const report = this.#run();
    this.#last = { at: Date.now(), report };
    return report;
  }

  /** Handle `GET /ready`; false for other paths. */
  async handle(req: IncomingMessage, res: ServerResponse, url: URL): Promise<boolean> {
    if (url.pathname !== '/ready' || (req.method !== 'GET' && req.method !== 'HEAD')) return false;
    const report = await this.report();
    const detailed = this.#opts.authorized(req);
    const checks = Object.fromEntries(Object.entries(report.checks).map(([k, c]) => [k, detailed ? c : { status: c.status, engine: c.engine, ms: c.ms }]));
    res.setHeader('cache-control', 'no-store');
    sendJson(res, report.status === 'ready' ? 200 : 503, { ...report, checks });
    return true;
  }

  /** Close the check's own Redis connection. */
  async close(): Promise<void> {
    await this.#redis?.close();
  }

  async #run(): Promise<ReadyReport> {
    const entries = await Promise.all(
      this.#checks.map(async (c): Promise<[string, CheckResult]> => {
        const start = performance.now();
        try {
          await within(c.run(), READY_CHECK_TIMEOUT_MS);
          return [c.name, { status: 'ok', engine: c.engine, ms: Math.round(performance.now() - start) }];
        } catch (err) {
          const cause = (err as { cause?: unknown }).cause;
          const message = cause instanceof Error ? `${(err as Error).message}: ${cause.message}` : (err as Error).message;
          return [c.name, { status: 'error', engine: c.engine, ms: Math.round(performance.now() - start), message }];
        }
      }),
    );
    const checks = Object.fromEntries(entries);
    const failed = entries.some(([, c]) => c.status !== 'ok');
    const status = this.#opts.closing() ? 'shutting-down' : failed ? 'unavailable' : 'ready';
    return { status, node: this.#opts.core.nodeId, checks };
  }
}
