/**
 * Prometheus metrics, fed by core's diagnostics events. One registry per server instance so
 * several servers can share a process (tests, clusters in one process).
 *
 * Names: Herald's own metrics start with `herald_`; counters end in `_total`, gauges never do.
 * Node.js process metrics keep prom-client's stock names (`process_*`, `nodejs_*`, including its
 * `nodejs_active_*_total` gauges) so stock Node.js dashboards work.
 *
 * Workers (`herald serve --workers N`) share one port, so a scrape reaches any one of them. In a
 * worker every series carries a `node` label (the worker's node id) and `/metrics` answers the
 * whole host: the worker asks the primary, which collects every worker's registry (prom-client's
 * AggregatorRegistry over the cluster IPC channel) and answers with all their series.
 */
import cluster from 'node:cluster';
import { randomUUID } from 'node:crypto';
import diagnostics from 'node:diagnostics_channel';
import { AggregatorRegistry, Counter, Gauge, Histogram, Registry, type RegistryContentType } from 'prom-client';
import type { HeraldCore } from '../core/core.js';
import type { CommandErrorEvent, ConnectionEvent, FanoutEvent, PublishEvent } from '../core/events.js';
import type { BackendHookEvent } from '../core/backend-hooks.js';
import { collectProcessMetrics } from './process-metrics.js';
import type { ReadyReport } from './readiness.js';
import type { EngineOpEvent } from './engine-metrics.js';
import type { WebhookOutcomeEvent } from '../core/webhooks.js';
import type { QueueStats } from '../fronts/stomp/queue.js';

/** In a worker: the registry whose construction made prom-client answer the primary. */
let workerAnswers: AggregatorRegistry<RegistryContentType> | undefined;

/** The metrics of one server. */
export class Metrics {
  readonly registry = new Registry();
  readonly #unsubscribe: Array<() => void> = [];
  readonly #node: string;

  constructor(core: HeraldCore, options: { defaultMetrics?: boolean; readiness?: () => Promise<ReadyReport> } = {}) {
    const r = this.registry;
    this.#node = core.nodeId;
    if (cluster.isWorker) {
      r.setDefaultLabels({ node: core.nodeId });
      AggregatorRegistry.setRegistries([r]);
      // Constructing one installs prom-client's answer to the primary's collection requests.
      workerAnswers ??= new AggregatorRegistry();
    }
    if (options.defaultMetrics) this.#unsubscribe.push(collectProcessMetrics(r));
    new Gauge({
      name: 'herald_connections',
      help: 'Live client connections by transport',
      labelNames: ['transport'],
      registers: [r],
      collect() {
        this.reset();
        for (const [t, n] of Object.entries(core.hub.connectionsByTransport())) this.set({ transport: t }, n);
      },
    });
    new Gauge({
      name: 'herald_subscriptions',
      help: 'Local channel subscriptions',
      registers: [r],
      collect() {
        this.set(core.hub.subscriptionCount);
      },
    });
    new Gauge({
      name: 'herald_channels',
      help: 'Channels with local subscribers',
      registers: [r],
      collect() {
        this.set(core.hub.channelCount);
      },
    });
    const published = new Counter({ name: 'herald_messages_published_total', help: 'Publications accepted', labelNames: ['source'], registers: [r] });
    const delivered = new Counter({ name: 'herald_messages_delivered_total', help: 'Publications handed to local subscribers', registers: [r] });
    const latency = new Histogram({
      name: 'herald_delivery_latency_seconds',
      help: 'Time from publication to local fan-out',
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [r],
    });
    const connects = new Counter({ name: 'herald_connections_opened_total', help: 'Connections opened', labelNames: ['transport'], registers: [r] });
    const slow = new Counter({
      name: 'herald_slow_consumers_dropped_total',
      help: 'Connections dropped for exceeding the outbound buffer',
      labelNames: ['transport'],
      registers: [r],
    });

    // Diagnostics channels are process-wide: count only this node's events.
    this.#on('herald:publish', (m: PublishEvent) => published.inc({ source: m.source }));
    this.#on('herald:fanout', (m: FanoutEvent) => {
      delivered.inc(m.delivered);
      if (m.delivered > 0) latency.observe(m.latencyMs / 1000);
    });
    this.#on('herald:connect', (m: ConnectionEvent) => connects.inc({ transport: m.transport }));
    const hookTime = new Histogram({
      name: 'herald_backend_hook_duration_seconds',
      help: 'Backend hook latency by hook and outcome (allow, deny, error, timeout)',
      labelNames: ['hook', 'outcome'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [r],
    });
    const hookFail = new Counter({
      name: 'herald_backend_hook_failures_total',
      help: 'Backend hooks that failed or timed out',
      labelNames: ['hook', 'reason'],
      registers: [r],
    });
    const webhooks = new Counter({
      name: 'herald_webhook_events_total',
      help: 'Webhook events by outcome (delivered, failed = attempt failed and will retry, dropped = queue full)',
      labelNames: ['outcome'],
      registers: [r],
    });
    new Gauge({
      name: 'herald_webhook_queue_length',
      help: 'Webhook events waiting for delivery',
      registers: [r],
      collect() {
        this.set(core.backend.webhookBacklog);
      },
    });
    new Gauge({
      name: 'herald_webhook_queue_bytes',
      help: 'Bytes of webhook events waiting for delivery',
      registers: [r],
      collect() {
        this.set(core.backend.webhookBacklogBytes);
      },
    });
    this.#on('herald:backend-hook', (m: BackendHookEvent) => {
      hookTime.observe({ hook: m.hook, outcome: m.outcome }, m.ms / 1000);
      if (m.outcome === 'error' || m.outcome === 'timeout') hookFail.inc({ hook: m.hook, reason: m.outcome });
    });
    this.#on('herald:webhook', (m: WebhookOutcomeEvent) => webhooks.inc({ outcome: m.outcome }, m.events));
    this.#on('herald:slow-consumer', (m: ConnectionEvent) => slow.inc({ transport: m.transport }));

    const commandErrors = new Counter({
      name: 'herald_command_errors_total',
      help: 'Client commands answered with an error, by command, error code and transport',
      labelNames: ['command', 'code', 'transport'],
      registers: [r],
    });
    this.#on('herald:command-error', (m: CommandErrorEvent) => commandErrors.inc({ command: m.command, code: m.code, transport: m.transport }));

    const storeOps = new Counter({
      name: 'herald_im_store_operations_total',
      help: 'IM store operations by operation and outcome (ok, error)',
      labelNames: ['op', 'outcome'],
      registers: [r],
    });
    const storeTime = new Histogram({
      name: 'herald_im_store_operation_duration_seconds',
      help: 'IM store operation latency by operation (group commit and fsync included for writes)',
      labelNames: ['op'],
      buckets: [0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers: [r],
    });
    const imStored = new Counter({
      name: 'herald_im_messages_stored_total',
      help: 'IM messages committed to the store (1:1, group and system)',
      registers: [r],
    });
    this.#on('herald:im-store', (m: EngineOpEvent) => {
      storeOps.inc({ op: m.op, outcome: m.ok ? 'ok' : 'error' });
      storeTime.observe({ op: m.op }, m.ms / 1000);
      if (m.op === 'append' && m.ok) imStored.inc();
    });

    const brokerOps = new Counter({
      name: 'herald_broker_operations_total',
      help: 'Redis broker operations (publish, subscribe, history, control, …) by operation and outcome (ok, error)',
      labelNames: ['op', 'outcome'],
      registers: [r],
    });
    const brokerTime = new Histogram({
      name: 'herald_broker_operation_duration_seconds',
      help: 'Redis broker operation latency by operation (round trips to Redis)',
      labelNames: ['op'],
      buckets: [0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers: [r],
    });
    this.#on('herald:broker', (m: EngineOpEvent) => {
      brokerOps.inc({ op: m.op, outcome: m.ok ? 'ok' : 'error' });
      brokerTime.observe({ op: m.op }, m.ms / 1000);
    });

    const readiness = options.readiness;
    if (readiness) {
      new Gauge({
        name: 'herald_engine_up',
        help: 'Whether the engine answered the readiness check (1) or not (0): imStore, broker, redis',
        labelNames: ['check', 'engine'],
        registers: [r],
        async collect() {
          this.reset();
          for (const [check, c] of Object.entries((await readiness()).checks)) this.set({ check, engine: c.engine }, c.status === 'ok' ? 1 : 0);
        },
      });
    }
  }

  /** Export the depth and bytes of the STOMP work queues. */
  stompQueues(read: () => QueueStats): void {
    const r = this.registry;
    new Gauge({
      name: 'herald_stomp_queues',
      help: 'STOMP work queues held by this node',
      registers: [r],
      collect() {
        this.set(read().queues);
      },
    });
    new Gauge({
      name: 'herald_stomp_queue_messages',
      help: 'Messages held by STOMP work queues (waiting for a consumer, or delivered and unacknowledged)',
      labelNames: ['state'],
      registers: [r],
      collect() {
        const s = read();
        this.set({ state: 'waiting' }, s.waiting);
        this.set({ state: 'unacked' }, s.unacked);
      },
    });
    new Gauge({
      name: 'herald_stomp_queue_bytes',
      help: 'Bytes held by STOMP work queues (limit stomp.maxQueuedBytes)',
      registers: [r],
      collect() {
        this.set(read().bytes);
      },
    });
  }

  /** Prometheus text exposition: this node's, or in a worker every worker's of the host. */
  text(): Promise<string> {
    return cluster.isWorker && process.send ? clusterText() : this.registry.metrics();
  }

  /** Stop listening to diagnostics events. */
  close(): void {
    for (const off of this.#unsubscribe) off();
  }

  #on<T extends { node: string }>(name: string, fn: (m: T) => void): void {
    const handler = (m: unknown): void => {
      if ((m as T).node === this.#node) fn(m as T);
    };
    diagnostics.subscribe(name, handler);
    this.#unsubscribe.push(() => diagnostics.unsubscribe(name, handler));
  }
}

/** Message a worker sends the primary to get the host's metrics. */
export interface MetricsRequest {
  readonly type: 'herald:metrics-request';
  readonly id: string;
}

/** The primary's answer: the aggregated text, or why it has none. */
export interface MetricsResponse {
  readonly type: 'herald:metrics-response';
  readonly id: string;
  readonly text?: string;
  readonly error?: string;
}

/** Longest wait for the primary's aggregated metrics, ms (prom-client's own per-worker timeout is 5 s). */
const CLUSTER_METRICS_TIMEOUT_MS = 6_000;

/** Ask the primary for every worker's metrics. */
function clusterText(): Promise<string> {
  const id = randomUUID();
  return new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      process.off('message', onMessage);
      reject(new Error('the primary did not answer with the cluster metrics'));
    }, CLUSTER_METRICS_TIMEOUT_MS);
    const onMessage = (msg: MetricsResponse): void => {
      if (msg?.type !== 'herald:metrics-response' || msg.id !== id) return;
      clearTimeout(timer);
      process.off('message', onMessage);
      if (msg.text !== undefined) resolve(msg.text);
      else reject(new Error(msg.error ?? 'no metrics'));
    };
    process.on('message', onMessage);
    process.send!({ type: 'herald:metrics-request', id } satisfies MetricsRequest);
  });
}

/**
 * In the primary: answer workers' metrics requests with every worker's series. Call once,
 * before forking.
 */
export function serveClusterMetrics(): void {
  const aggregator = new AggregatorRegistry();
  cluster.on('message', (worker, msg: MetricsRequest) => {
    if (msg?.type !== 'herald:metrics-request') return;
    aggregator.clusterMetrics().then(
      (text) => worker.send({ type: 'herald:metrics-response', id: msg.id, text } satisfies MetricsResponse),
      (err: unknown) => worker.send({ type: 'herald:metrics-response', id: msg.id, error: (err as Error).message } satisfies MetricsResponse),
    );
  });
}
