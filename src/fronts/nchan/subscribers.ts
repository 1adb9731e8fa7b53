/**
 * The Nchan front's subscriber registry: starts a subscription for a checked plan and a sink,
 * registers it as a hub connection, fires the route's subscribe / unsubscribe callbacks and
 * channel events, runs the keep-alive timers (one per route and subscriber type, not one per
 * subscriber), and ends every subscription at shutdown.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { NchanSubscriberType } from '../../core/config-nchan.js';
import type { HeraldCore } from '../../core/core.js';
import type { Connection } from '../../core/hub.js';
import type { ChannelRegistry } from './channel-state.js';
import type { SubscribePlan } from './gate.js';
import { callback, hookHeaders } from './hooks.js';
import type { NchanChannels } from './publisher.js';
import { NchanSubscription, type Sink } from './subscription.js';

/** The live subscriptions of one front. */
export class NchanSubscribers {
  readonly #core: HeraldCore;
  readonly #ids: ChannelRegistry;
  readonly #channels: NchanChannels;
  readonly #live = new Set<NchanSubscription>();
  /** Keep-alive timers: one per route and type with a ping interval, over that route's sinks. */
  readonly #pingers = new Map<string, { timer: NodeJS.Timeout; sinks: Set<Sink> }>();

  constructor(core: HeraldCore, ids: ChannelRegistry, channels: NchanChannels) {
    this.#core = core;
    this.#ids = ids;
    this.#channels = channels;
  }

  /** Subscriptions currently open. */
  get count(): number {
    return this.#live.size;
  }

  /**
   * Start a subscription for a plan with a sink; wires callbacks, channel events, the hub
   * connection and cleanup. Streaming types (not long-poll / interval-poll) fire the
   * subscribe / unsubscribe callbacks. `disconnect` cuts the client's transport (kick).
   */
  async start(plan: SubscribePlan, sink: Sink, req: IncomingMessage, type: NchanSubscriberType, disconnect: () => void): Promise<NchanSubscription> {
    const { route } = plan;
    const core = this.#core;
    const sub = new NchanSubscription(core, this.#ids, plan.channels, sink);
    const streaming = type !== 'longpoll' && type !== 'intervalpoll';
    const conn: Connection = { id: randomUUID(), transport: `nchan-${type}`, user: undefined, disconnect: () => { sub.close(); disconnect(); } };
    this.#live.add(sub);
    core.hub.addConnection(conn);
    const cbHeaders = (): Record<string, string> => hookHeaders(req, plan.ids.join(route.splitDelimiter ?? ','), { 'X-Subscriber-Type': type });
    if (streaming && route.subscribeUrl) callback(route.subscribeUrl, cbHeaders(), core.config.nchan.hookTimeoutMs);
    if (route.channelEvents) for (const id of plan.ids) void this.#channels.event(`subscriber_enqueue ${id}`, id);
    const pingMs = type === 'eventsource' ? route.eventsourcePingIntervalMs : type === 'websocket' ? route.websocketPingIntervalMs : 0;
    const pinger = pingMs > 0 && sink.ping ? this.#pinger(`${route.path} ${type}`, pingMs) : undefined;
    pinger?.add(sink);
    sub.onEnd = () => {
      pinger?.delete(sink);
      this.#live.delete(sub);
      core.hub.removeConnection(conn);
      if (streaming && route.unsubscribeUrl) callback(route.unsubscribeUrl, cbHeaders(), core.config.nchan.hookTimeoutMs);
      if (route.channelEvents) for (const id of plan.ids) void this.#channels.event(`subscriber_dequeue ${id}`, id);
    };
    await sub.start(plan.from, route.subscriberTimeoutMs);
    return sub;
  }

  /** End every subscription and stop the keep-alive timers (server shutdown). */
  close(): void {
    for (const p of this.#pingers.values()) clearInterval(p.timer);
    for (const s of [...this.#live]) s.close();
  }

  #pinger(key: string, ms: number): Set<Sink> {
    let p = this.#pingers.get(key);
    if (!p) {
      const sinks = new Set<Sink>();
      const timer = setInterval(() => {
        for (const s of sinks) s.ping?.();
      }, ms);
      timer.unref();
      p = { timer, sinks };
      this.#pingers.set(key, p);
    }
    return p.sinks;
  }
}
