/**
 * `GET /api/nodes` (docs/api.md): every node of the cluster with its connections,
 * subscriptions, uptime, version and load, and the totals. Three sources, freshest last:
 * the node registry (every node of a Redis cluster, as of its last heartbeat), the other
 * workers of this host (asked now, through the primary) and this node itself.
 */
import type { NodeInfo, NodeLoad, NodeRegistry } from '../core/nodes.js';
import type { ServerApi } from './api.js';
import { hostReports, type NodeReporter } from './node-report.js';

/** Where a listed node's figures come from. */
export type NodeSource = 'self' | 'worker' | 'registry';

/** One node as `GET /api/nodes` lists it. */
export interface NodeEntry {
  readonly id: string;
  readonly url: string;
  /** The node that answered. */
  readonly self: boolean;
  readonly source: NodeSource;
  readonly draining: boolean;
  readonly connections: number;
  /** Age of the figures, ms: 0 for this node and the host's workers, time since the heartbeat for the registry's. */
  readonly ageMs: number;
  readonly host?: string;
  readonly pid?: number;
  readonly version?: string;
  readonly startedAt?: number;
  readonly uptimeMs?: number;
  readonly subscriptions?: number;
  readonly channels?: number;
  readonly connectionsByTransport?: Readonly<Record<string, number>>;
  readonly published?: number;
  readonly delivered?: number;
  readonly load?: NodeLoad;
}

/** Sums over the listed nodes. Channels are not summed: one channel with subscribers on two nodes counts on both. */
export interface NodeTotals {
  readonly nodes: number;
  readonly draining: number;
  readonly connections: number;
  readonly subscriptions: number;
  readonly published: number;
  readonly delivered: number;
  readonly connectionsByTransport: Record<string, number>;
  /** Resident memory of all the listed processes, bytes. */
  readonly rss: number;
}

/** The answer of `GET /api/nodes`. */
export interface NodesAnswer {
  /** The answering node's id. */
  readonly node: string;
  /** `ok` when the registry was read, `unavailable` when the read failed, `none` without Redis. */
  readonly registry: 'ok' | 'unavailable' | 'none';
  /** Under `--workers`: workers of this host that answered and that did not (absent when the primary did not answer). */
  readonly workers?: { readonly answered: number; readonly unanswered: number };
  readonly totals: NodeTotals;
  /** Ordered by URL, then id. */
  readonly nodes: NodeEntry[];
}

/** Builds the cluster's node list. */
export class NodesView {
  readonly #reporter: NodeReporter;
  readonly #registry: NodeRegistry | undefined;

  constructor(reporter: NodeReporter, registry: NodeRegistry | undefined) {
    this.#reporter = reporter;
    this.#registry = registry;
  }

  /** Register `GET /api/nodes`. */
  register(api: ServerApi): void {
    api.route('GET', /^nodes$/, () => this.answer());
  }

  /** Every node known now: the registry's, overridden by fresher reports of this host's workers and of this node. */
  async answer(): Promise<NodesAnswer> {
    const now = Date.now();
    const self = this.#reporter.report();
    const [listed, host] = await Promise.all([
      this.#registry
        ? this.#registry.list().then(
            (l) => l,
            () => undefined,
          )
        : Promise.resolve([]),
      hostReports()?.then(
        (h) => h,
        () => undefined,
      ),
    ]);
    const byId = new Map<string, NodeEntry>();
    for (const n of listed ?? []) byId.set(n.id, entry(n, 'registry', now));
    for (const n of host?.reports ?? []) byId.set(n.id, entry(n, 'worker', now));
    byId.set(self.id, entry(self, 'self', now));
    const nodes = [...byId.values()].sort((a, b) => (a.url === b.url ? (a.id < b.id ? -1 : 1) : a.url < b.url ? -1 : 1));
    return {
      node: self.id,
      registry: !this.#registry ? 'none' : listed ? 'ok' : 'unavailable',
      ...(host && { workers: { answered: host.reports.length, unanswered: host.unanswered } }),
      totals: totals(nodes),
      nodes,
    };
  }
}

function entry(n: NodeInfo, source: NodeSource, now: number): NodeEntry {
  const s = n.stats;
  const base = { id: n.id, url: n.url, self: source === 'self', source, draining: n.draining, connections: n.connections };
  if (!s) return { ...base, ageMs: 0 };
  // Registry figures are as old as the heartbeat; clocks of other hosts may run a little ahead.
  const ageMs = source === 'registry' ? Math.max(0, now - s.reportedAt) : 0;
  return {
    ...base,
    ageMs,
    host: s.host,
    pid: s.pid,
    version: s.version,
    startedAt: s.startedAt,
    uptimeMs: Math.max(0, s.reportedAt - s.startedAt) + ageMs,
    subscriptions: s.subscriptions,
    channels: s.channels,
    connectionsByTransport: s.connectionsByTransport,
    published: s.published,
    delivered: s.delivered,
    load: s.load,
  };
}

function totals(nodes: NodeEntry[]): NodeTotals {
  const byTransport: Record<string, number> = {};
  let draining = 0;
  let connections = 0;
  let subscriptions = 0;
  let published = 0;
  let delivered = 0;
  let rss = 0;
  for (const n of nodes) {
    if (n.draining) draining++;
    connections += n.connections;
    subscriptions += n.subscriptions ?? 0;
    published += n.published ?? 0;
    delivered += n.delivered ?? 0;
    rss += n.load?.rss ?? 0;
    for (const [t, c] of Object.entries(n.connectionsByTransport ?? {})) byTransport[t] = (byTransport[t] ?? 0) + c;
  }
  return { nodes: nodes.length, draining, connections, subscriptions, published, delivered, connectionsByTransport: byTransport, rss };
}
