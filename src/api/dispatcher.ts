/**
 * The dispatcher: answers "which node should this user connect to" with a primary node URL and
 * backups, chosen among live, non-draining nodes of the registry, either by rendezvous hashing
 * on the user (stable: a user keeps its node while that node lives, and only the users of a
 * lost node move) or by load (fewest connections first). Clients come back here on every
 * reconnect, so a dead or draining node strands no one.
 *
 * `GET /dispatch?user=<id>` → `200 {"user","primary","backups":[…],"nodes":N}`;
 * 503 HERALD_ERR_UNAVAILABLE when no node is live (or the registry is unreachable).
 */
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, Gauge, Registry } from 'prom-client';
import { HeraldError, toHeraldError } from '../core/errors.js';
import type { NetPolicy } from '../core/net-policy.js';
import type { NodeInfo, NodeRegistry } from '../core/nodes.js';
import { collectProcessMetrics } from './process-metrics.js';
import { answerPreflight, applyCors, clientCors } from '../transports/cors.js';
import { apiAuthorized, sendError } from '../transports/http.js';

/** How nodes are ordered for a user. */
export type DispatchStrategy = 'hash' | 'load';

/** Options of `new Dispatcher()`. */
export interface DispatcherOptions {
  readonly registry: NodeRegistry;
  readonly strategy: DispatchStrategy;
  /** Backup URLs returned after the primary (default 2). */
  readonly backups?: number;
  /** How long a registry read is reused, ms (default 500). */
  readonly cacheMs?: number;
  /** Network policy: browsers on `allowedOrigins` get CORS answers (default: no CORS, foreign origins refused). */
  readonly net?: NetPolicy;
}

/** A dispatch answer. */
export interface Assignment {
  readonly user: string;
  readonly primary: string;
  readonly backups: string[];
  /** Live, non-draining node URLs known. */
  readonly nodes: number;
}

/** One reachable URL (workers of one host share it) with its total load. */
interface Target {
  readonly url: string;
  connections: number;
}

/** Rendezvous score of (user, url): the highest score wins. */
function score(user: string, url: string): bigint {
  return createHash('sha1').update(user).update('\0').update(url).digest().readBigUInt64BE(0);
}

/** Chooses nodes for users from the registry. */
export class Dispatcher {
  readonly #options: DispatcherOptions;
  #cache: { at: number; targets: Promise<Target[]> } | undefined;

  constructor(options: DispatcherOptions) {
    this.#options = options;
  }

  /** Primary and backups for `user`. Throws HERALD_ERR_UNAVAILABLE when no node is live. */
  async assign(user: string): Promise<Assignment> {
    const targets = await this.#targets();
    if (targets.length === 0) throw new HeraldError('HERALD_ERR_UNAVAILABLE', 'No live node to assign');
    const scored = targets.map((t) => ({ t, s: score(user, t.url) }));
    scored.sort((a, b) => {
      if (this.#options.strategy === 'load' && a.t.connections !== b.t.connections) return a.t.connections - b.t.connections;
      return a.s === b.s ? 0 : a.s > b.s ? -1 : 1;
    });
    const urls = scored.map((x) => x.t.url);
    return { user, primary: urls[0]!, backups: urls.slice(1, 1 + (this.#options.backups ?? 2)), nodes: urls.length };
  }

  /** Handle `GET /dispatch`; returns false for other paths. */
  async handle(req: IncomingMessage, res: ServerResponse, url: URL): Promise<boolean> {
    if (url.pathname !== '/dispatch') return false;
    const origin = req.headers.origin;
    const cors = this.#options.net ? clientCors(req, this.#options.net) : { allowed: origin === undefined, headers: {} };
    applyCors(res, cors);
    if (!cors.allowed) throw new HeraldError('HERALD_ERR_FORBIDDEN', 'Origin not allowed (see allowedOrigins)');
    if (req.method === 'OPTIONS') {
      answerPreflight(res, cors, 'GET');
      return true;
    }
    if (req.method !== 'GET') throw new HeraldError('HERALD_ERR_METHOD_NOT_ALLOWED');
    const user = url.searchParams.get('user') ?? '';
    if (user === '' || user.length > 256) throw new HeraldError('HERALD_ERR_BAD_REQUEST', 'user must be 1-256 characters');
    const body = JSON.stringify(await this.assign(user));
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(body);
    return true;
  }

  /** How many node URLs can be assigned now (from the cached registry read). */
  async liveTargets(): Promise<number> {
    return (await this.#targets()).length;
  }

  async #targets(): Promise<Target[]> {
    const now = Date.now();
    if (!this.#cache || now - this.#cache.at > (this.#options.cacheMs ?? 500)) {
      const targets = this.#options.registry.list().then(groupByUrl);
      this.#cache = { at: now, targets };
      targets.catch(() => {
        if (this.#cache?.targets === targets) this.#cache = undefined;
      });
    }
    return this.#cache.targets;
  }
}

function groupByUrl(nodes: NodeInfo[]): Target[] {
  const byUrl = new Map<string, Target>();
  for (const n of nodes) {
    if (n.draining) continue;
    const t = byUrl.get(n.url);
    if (t) t.connections += n.connections;
    else byUrl.set(n.url, { url: n.url, connections: n.connections });
  }
  return [...byUrl.values()];
}

/** Options of `createDispatchServer`. */
export interface DispatchServerOptions {
  /** Key `/metrics` asks for (`Authorization: apikey <key>` or `X-API-Key`); without one, trusted loopback only. */
  readonly apiKey?: string;
  /** Network policy deciding loopback trust for `/metrics` when no key is set (default: none trusted). */
  readonly net?: NetPolicy;
  /** Collect Node process metrics (default true). */
  readonly processMetrics?: boolean;
}

/** Prometheus metrics of a dispatcher. */
function dispatchMetrics(dispatcher: Dispatcher, processMetrics: boolean): { registry: Registry; answered: Counter; stop: () => void } {
  const registry = new Registry();
  const stop = processMetrics ? collectProcessMetrics(registry) : () => {};
  const answered = new Counter({
    name: 'herald_dispatch_requests_total',
    help: 'GET /dispatch answers by outcome (ok, or the error code)',
    labelNames: ['outcome'],
    registers: [registry],
  });
  new Gauge({
    name: 'herald_dispatch_live_targets',
    help: 'Node URLs the dispatcher can assign (not draining, workers of one host counted once)',
    registers: [registry],
    async collect() {
      this.set(await dispatcher.liveTargets().catch(() => 0));
    },
  });
  return { registry, answered, stop };
}

/** A standalone dispatcher HTTP server (`herald dispatch`): `/dispatch`, `/health` and `/metrics`. */
export function createDispatchServer(dispatcher: Dispatcher, options: DispatchServerOptions = {}): Server {
  const { registry, answered, stop } = dispatchMetrics(dispatcher, options.processMetrics ?? true);
  const key = options.apiKey;
  const server = createServer((req, res) => {
    void (async () => {
      try {
        const url = new URL(req.url ?? '/', 'http://localhost');
        if (url.pathname === '/health') {
          res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok","role":"dispatcher"}');
          return;
        }
        if (url.pathname === '/metrics') {
          if (!(key !== undefined || options.net ? apiAuthorized(req, key, options.net!) : false))
            throw new HeraldError('HERALD_ERR_UNAUTHORIZED', 'API key required');
          const text = await registry.metrics();
          res.writeHead(200, { 'content-type': registry.contentType }).end(text);
          return;
        }
        try {
          if (!(await dispatcher.handle(req, res, url))) throw new HeraldError('HERALD_ERR_NOT_FOUND', 'No such endpoint');
          if (url.pathname === '/dispatch') answered.inc({ outcome: 'ok' });
        } catch (err) {
          if (url.pathname === '/dispatch') answered.inc({ outcome: toHeraldError(err).code });
          throw err;
        }
      } catch (err) {
        sendError(res, err);
      }
    })();
  });
  server.once('close', stop);
  return server;
}

/** Listen helper returning the bound address. */
export function listenDispatch(server: Server, port: number, host: string): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port, host }, () => {
      server.off('error', reject);
      resolve(server.address() as AddressInfo);
    });
  });
}
