/**
 * The Nchan front's subscriber registry: admits subscribers (core/client-sessions.ts), starts a
 * subscription for a checked plan and a sink, records it as a client session (hub connection,
 * connection metrics, connect / disconnect webhooks for streaming types), fires the route's subscribe / unsubscribe callbacks and
 * channel events, runs the keep-alive timers (one per route and subscriber type, not one per
 * subscriber), and ends every subscription at shutdown.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { AdmissionError, type AdmissionTicket } from '../../core/client-sessions.js';
import type { NchanSubscriberType } from '../../core/config-nchan.js';
import type { HeraldCore } from '../../core/core.js';
import type { Connection } from '../../core/hub.js';
import { admissionRequest } from '../../transports/http.js';
import type { Refusal } from './gate.js';
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
  /** Each live subscription and its client session. */
  readonly #live = new Map<NchanSubscription, NchanClient>();
  /** Keep-alive timers: one per route and type with a ping interval, over that route's sinks. */
  readonly #pingers = new Map<string, { timer: NodeJS.Timeout; sinks: Set<Sink> }>();

  constructor(core: HeraldCore, ids: ChannelRegistry, channels: NchanChannels) {
    this.#core = core;
    this.#ids = ids;
    this.#channels = channels;
    const live = this.#live;
    this.#ended = function (this: NchanSubscription) {
      const client = live.get(this);
      if (!client) return;
      live.delete(this);
      const { route, ids, channels: names } = client.plan;
      client.pinger?.delete(client.sink);
      core.clients.closed(client, client.ticket, undefined, names);
      if (client.unsubscribeHeaders) callback(route.unsubscribeUrl!, client.unsubscribeHeaders, core.config.nchan.hookTimeoutMs);
      if (route.channelEvents) for (const id of ids) void channels.event(`subscriber_dequeue ${id}`, id);
    };
  }

  /** Subscriptions currently open. */
  get count(): number {
    return this.#live.size;
  }

  /**
   * Admit a subscriber of `type` before its subscription starts (HTTP types; a WebSocket is
   * admitted once open, see websocket.ts): the ticket, or a refusal to send (503 past the
   * connection cap).
   */
  admit(req: IncomingMessage, type: NchanSubscriberType): AdmissionTicket | Refusal {
    try {
      return this.#core.clients.admit(admissionRequest(req, this.#core.net, 'nchan', `nchan-${type}`, !isStreaming(type)));
    } catch (err) {
      if (err instanceof AdmissionError) return { status: err.status, headers: { 'Content-Type': 'text/plain' }, body: err.message };
      throw err;
    }
  }

  /**
   * Start a subscription for a plan with a sink and an admitted ticket; wires callbacks, channel
   * events, the client session and cleanup. Streaming types (not long-poll / interval-poll) fire
   * the subscribe / unsubscribe callbacks and the connect / disconnect webhooks. `disconnect`
   * cuts the client's transport (kick).
   */
  async start(
    plan: SubscribePlan,
    sink: Sink,
    req: IncomingMessage,
    type: NchanSubscriberType,
    ticket: AdmissionTicket,
    disconnect: () => void,
  ): Promise<NchanSubscription> {
    const { route } = plan;
    const core = this.#core;
    const sub = new NchanSubscription(core, this.#ids, plan.channels, sink);
    const streaming = isStreaming(type);
    const hookChannel = plan.ids.join(route.splitDelimiter ?? ',');
    const cbHeaders = (): Record<string, string> => hookHeaders(req, hookChannel, { 'X-Subscriber-Type': type });
    const pingMs = type === 'eventsource' ? route.eventsourcePingIntervalMs : type === 'websocket' ? route.websocketPingIntervalMs : 0;
    const client = new NchanClient(
      flatUuid(),
      `nchan-${type}`,
      sub,
      plan,
      ticket,
      sink,
      pingMs > 0 && sink.ping ? this.#pinger(`${route.path} ${type}`, pingMs) : undefined,
      disconnect,
      streaming && route.unsubscribeUrl ? cbHeaders() : undefined,
    );
    this.#live.set(sub, client);
    core.clients.opened(client, ticket);
    core.clients.identified(client, ticket, plan.channels);
    if (streaming && route.subscribeUrl) callback(route.subscribeUrl, cbHeaders(), core.config.nchan.hookTimeoutMs);
    if (route.channelEvents) for (const id of plan.ids) void this.#channels.event(`subscriber_enqueue ${id}`, id);
    client.pinger?.add(sink);
    sub.onEnd = this.#ended;
    try {
      await sub.start(plan.from, route.subscriberTimeoutMs);
    } catch (err) {
      sub.close();
      throw err;
    }
    return sub;
  }

  /**
   * Shared end listener of every subscription (`this` is the subscription): frees what its start
   * took and fires the unsubscribe callback and channel events.
   */
  readonly #ended: (this: NchanSubscription) => void;

  /** End every subscription and stop the keep-alive timers (server shutdown). */
  close(): void {
    for (const p of this.#pingers.values()) clearInterval(p.timer);
    for (const s of [...this.#live.keys()]) s.close();
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

/**
 * One subscriber as a client session (a hub connection). It keeps what the end of its
 * subscription needs and nothing of the request it came with: an idle subscriber holds no
 * `IncomingMessage`, headers or closures over them.
 */
class NchanClient implements Connection {
  readonly id: string;
  readonly transport: string;
  readonly user = undefined;
  readonly sub: NchanSubscription;
  readonly plan: SubscribePlan;
  readonly ticket: AdmissionTicket;
  readonly sink: Sink;
  /** The keep-alive set the sink is in, if its route pings this type. */
  readonly pinger: Set<Sink> | undefined;
  /** Cuts the client's transport. */
  readonly #cut: () => void;
  /** Headers of the unsubscribe callback, taken from the request at start (streaming types on a route with one). */
  readonly unsubscribeHeaders: Record<string, string> | undefined;

  constructor(
    id: string,
    transport: string,
    sub: NchanSubscription,
    plan: SubscribePlan,
    ticket: AdmissionTicket,
    sink: Sink,
    pinger: Set<Sink> | undefined,
    cut: () => void,
    unsubscribeHeaders: Record<string, string> | undefined,
  ) {
    this.id = id;
    this.transport = transport;
    this.sub = sub;
    this.plan = plan;
    this.ticket = ticket;
    this.sink = sink;
    this.pinger = pinger;
    this.#cut = cut;
    this.unsubscribeHeaders = unsubscribeHeaders;
  }

  disconnect(): void {
    this.sub.close();
    this.#cut();
  }
}

/**
 * A random UUID as one flat string: `randomUUID` builds it by concatenation, a tree of ~14
 * string pieces (~450 bytes) that a long-lived id would otherwise keep.
 */
function flatUuid(): string {
  return Buffer.from(randomUUID(), 'latin1').toString('latin1');
}

/** Whether a subscriber type holds a stream (a session) rather than answering one request. */
function isStreaming(type: NchanSubscriberType): boolean {
  return type !== 'longpoll' && type !== 'intervalpoll';
}
