/**
 * The node registry: which Herald nodes are alive, where clients reach them and how loaded
 * they are. Nodes announce themselves on a heartbeat and entries expire by TTL, so a node that
 * dies without a clean shutdown drops out within one TTL. The dispatcher reads it to hand
 * clients a node.
 */
import type { Logger } from './logger.js';

/** One live node as announced. */
export interface NodeInfo {
  /** The node's id (HeraldCore.nodeId). */
  readonly id: string;
  /** Base URL clients use to reach the node, e.g. `http://10.0.0.5:8080`. */
  readonly url: string;
  /** Client connections the node holds. */
  readonly connections: number;
  /** True when the node is shutting down or drained by an admin: assign no new clients to it. */
  readonly draining: boolean;
  /** What the node reported about itself with this announcement (absent from nodes that predate it). */
  readonly stats?: NodeStats;
}

/** A node's report of itself: identity of the process, its load and its counters. */
export interface NodeStats {
  /** Host name of the machine the node runs on. */
  readonly host: string;
  /** Process id (workers of one host differ here). */
  readonly pid: number;
  /** Herald version the node runs. */
  readonly version: string;
  /** When the node started, ms since the epoch (the node's clock). */
  readonly startedAt: number;
  /** When this report was taken, ms since the epoch (the node's clock). */
  readonly reportedAt: number;
  /** Live channel subscriptions. */
  readonly subscriptions: number;
  /** Channels with at least one local subscriber. */
  readonly channels: number;
  /** Live connections per transport label. */
  readonly connectionsByTransport: Readonly<Record<string, number>>;
  /** Publications accepted since start. */
  readonly published: number;
  /** Publications handed to local subscribers since start (one per subscriber). */
  readonly delivered: number;
  /** Load of the process and host. */
  readonly load: NodeLoad;
}

/** Load of one node, sampled over a window of at least a second. */
export interface NodeLoad {
  /** CPU time the process used over the last window, as a fraction of one core (0.5 = half a core). */
  readonly cpu: number;
  /** 99th percentile of the event loop delay over the last window, ms. */
  readonly eventLoopDelayMs: number;
  /** The host's 1-minute load average (0 where the OS has none). */
  readonly loadAverage: number;
  /** Resident set size of the process, bytes. */
  readonly rss: number;
  /** V8 heap in use, bytes. */
  readonly heapUsed: number;
}

/** Live node registry (Redis in a cluster). */
export interface NodeRegistry {
  /** Connect. Called once before the other methods. */
  start(): Promise<void>;
  /** Add or refresh a node; the entry expires `ttlMs` after this call unless refreshed. */
  announce(info: NodeInfo, ttlMs: number): Promise<void>;
  /** Remove a node at once (clean shutdown). */
  withdraw(id: string): Promise<void>;
  /** Nodes whose entries have not expired, in no particular order. */
  list(): Promise<NodeInfo[]>;
  /** Release connections. */
  close(): Promise<void>;
}

/** Announces one node on a heartbeat until stopped. Failures are logged and retried on the next beat. */
export class NodeHeartbeat {
  readonly #registry: NodeRegistry;
  readonly #info: () => NodeInfo;
  readonly #intervalMs: number;
  readonly #logger: Logger;
  #timer: NodeJS.Timeout | undefined;
  #failing = false;

  constructor(registry: NodeRegistry, info: () => NodeInfo, intervalMs: number, logger: Logger) {
    this.#registry = registry;
    this.#info = info;
    this.#intervalMs = intervalMs;
    this.#logger = logger;
  }

  /** Announce now and then every interval. */
  async start(): Promise<void> {
    await this.#registry.start();
    await this.beat();
    this.#timer = setInterval(() => void this.beat(), this.#intervalMs);
    this.#timer.unref();
  }

  /** Announce the current state once (e.g. right after it changed to draining). */
  async beat(): Promise<void> {
    try {
      await this.#registry.announce(this.#info(), this.#intervalMs * 3);
      if (this.#failing) this.#logger.info('node heartbeat restored');
      this.#failing = false;
    } catch (err) {
      if (!this.#failing) this.#logger.warn({ err: (err as Error).message }, 'node heartbeat failed');
      this.#failing = true;
    }
  }

  /** Stop beating and withdraw the node. */
  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#registry.withdraw(this.#info().id).catch(() => undefined);
    await this.#registry.close();
  }
}
