/**
 * Prometheus metrics, fed by core's diagnostics events. One registry per server instance so
 * several servers can share a process (tests, clusters in one process).
 */
import diagnostics from 'node:diagnostics_channel';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { HeraldCore } from '../core/core.js';
import type { ConnectionEvent, FanoutEvent, PublishEvent } from '../core/events.js';
import type { BackendHookEvent } from '../core/backend-hooks.js';
import type { WebhookOutcomeEvent } from '../core/webhooks.js';
import type { QueueStats } from '../fronts/stomp/queue.js';

/** The metrics of one server. */
export class Metrics {
  readonly registry = new Registry();
  readonly #unsubscribe: Array<() => void> = [];
  readonly #node: string;

  constructor(core: HeraldCore, options: { defaultMetrics?: boolean } = {}) {
    const r = this.registry;
    this.#node = core.nodeId;
    if (options.defaultMetrics) collectDefaultMetrics({ register: r, prefix: 'herald_process_' });
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
    new Gauge({ name: 'herald_subscriptions', help: 'Local channel subscriptions', registers: [r], collect() { this.set(core.hub.subscriptionCount); } });
    new Gauge({ name: 'herald_channels', help: 'Channels with local subscribers', registers: [r], collect() { this.set(core.hub.channelCount); } });
    const published = new Counter({ name: 'herald_messages_published_total', help: 'Publications accepted', labelNames: ['source'], registers: [r] });
    const delivered = new Counter({ name: 'herald_messages_delivered_total', help: 'Publications handed to local subscribers', registers: [r] });
    const latency = new Histogram({
      name: 'herald_delivery_latency_seconds',
      help: 'Time from publication to local fan-out',
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [r],
    });
    const connects = new Counter({ name: 'herald_connections_opened_total', help: 'Connections opened', labelNames: ['transport'], registers: [r] });
    const slow = new Counter({ name: 'herald_slow_consumers_dropped_total', help: 'Connections dropped for exceeding the outbound buffer', labelNames: ['transport'], registers: [r] });

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
    const hookFail = new Counter({ name: 'herald_backend_hook_failures_total', help: 'Backend hooks that failed or timed out', labelNames: ['hook', 'reason'], registers: [r] });
    const webhooks = new Counter({ name: 'herald_webhook_events_total', help: 'Webhook events by outcome (delivered, failed = attempt failed and will retry, dropped = queue full)', labelNames: ['outcome'], registers: [r] });
    new Gauge({ name: 'herald_webhook_queue_length', help: 'Webhook events waiting for delivery', registers: [r], collect() { this.set(core.backend.webhookBacklog); } });
    new Gauge({ name: 'herald_webhook_queue_bytes', help: 'Bytes of webhook events waiting for delivery', registers: [r], collect() { this.set(core.backend.webhookBacklogBytes); } });
    this.#on('herald:backend-hook', (m: BackendHookEvent) => {
      hookTime.observe({ hook: m.hook, outcome: m.outcome }, m.ms / 1000);
      if (m.outcome === 'error' || m.outcome === 'timeout') hookFail.inc({ hook: m.hook, reason: m.outcome });
    });
    this.#on('herald:webhook', (m: WebhookOutcomeEvent) => webhooks.inc({ outcome: m.outcome }, m.events));
    this.#on('herald:slow-consumer', (m: ConnectionEvent) => slow.inc({ transport: m.transport }));
  }

  /** Export the depth and bytes of the STOMP work queues. */
  stompQueues(read: () => QueueStats): void {
    const r = this.registry;
    new Gauge({ name: 'herald_stomp_queues', help: 'STOMP work queues held by this node', registers: [r], collect() { this.set(read().queues); } });
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
    new Gauge({ name: 'herald_stomp_queue_bytes', help: 'Bytes held by STOMP work queues (limit stomp.maxQueuedBytes)', registers: [r], collect() { this.set(read().bytes); } });
  }

  /** Prometheus text exposition. */
  text(): Promise<string> {
    return this.registry.metrics();
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
