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
