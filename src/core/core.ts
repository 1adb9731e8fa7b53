/**
 * HeraldCore: the node's channel service. It owns the hub, resolves channel policy, stores and
 * fans out publications through the broker, serves history and recovery, and keeps the list of
 * connections for shutdown and stats. Fronts (native, Nchan, STOMP) and the API are its users.
 */
import { randomUUID } from 'node:crypto';
import type { StreamPosition } from '../protocol/position.js';
import { Authenticator, type Identity } from './auth.js';
import { Backend } from './backend.js';
import type { Broker, ChannelEvent, ChannelSummary, HistoryResult, PublishOptions } from './broker.js';
import { ClientSessions } from './client-sessions.js';
import { assertChannel, namespaceOf, PolicyResolver } from './channels.js';
import { applyControl, retainUntil } from './control.js';
import type { ControlAction } from './control-message.js';
import type { ChannelPolicy, HeraldConfig } from './config.js';
import { HeraldError } from './errors.js';
import { fanoutEvents, publishEvents } from './events.js';
import { SharedHistoryReads } from './history-reads.js';
import { Hub, type Subscriber } from './hub.js';
import { type Logger, SILENT_LOGGER } from './logger.js';
import { NetPolicy } from './net-policy.js';
import type { SessionRegistry } from './sessions.js';
import { Outgoing, type Publication, type PublicationInput } from './publication.js';

/** Where a new subscription starts. */
export interface SubscribeFrom {
  /** Resume after this position. */
  readonly since?: StreamPosition;
  /** Start with the last N publications. */
  readonly last?: number;
}

/** What a subscriber receives when a subscription starts. */
export interface SubscribeResult {
  /** Publications to deliver first (history), oldest first. */
  readonly publications: Publication[];
  /** Position the subscription continues from. */
  readonly position: StreamPosition;
  /**
   * Only meaningful with `since`: true when every publication after `since` is included, false
   * when some were lost (epoch changed, or older than the history keeps). Clients must re-sync
   * from their source of truth when false.
   */
  readonly recovered: boolean;
}

/** Channel info for the API. */
export interface ChannelInfo {
  readonly channel: string;
  readonly position: StreamPosition;
  /** Publications kept in history. */
  readonly buffered: number;
  /** Subscribers on this node. */
  readonly subscribers: number;
}

/** Options of `new HeraldCore()`. */
export interface CoreOptions {
  readonly config: HeraldConfig;
  readonly broker: Broker;
  /** Where this node records its users' sessions (memory in one process, Redis in a cluster). */
  readonly sessions: SessionRegistry;
  readonly logger?: Logger;
  /** Node id (random by default). */
  readonly nodeId?: string;
}

/** The channel service of one node. */
export class HeraldCore {
  readonly config: HeraldConfig;
  readonly broker: Broker;
  readonly sessions: SessionRegistry;
  readonly hub: Hub;
  readonly auth: Authenticator;
  /** Backend hooks, webhooks and token revocation (hooks stay off until the server attaches a transport). */
  readonly backend: Backend;
  readonly policies: PolicyResolver;
  /** Admission, login, session bookkeeping and read checks for every front. */
  readonly clients: ClientSessions;
  readonly logger: Logger;
  /** Network trust: client addresses, loopback trust, Host and Origin checks. */
  readonly net: NetPolicy;
  readonly nodeId: string;
  readonly startedAt = Date.now();
  /** History reads that start subscriptions, merged per channel and turn. */
  readonly #reads: SharedHistoryReads;
  #published = 0;
  #delivered = 0;
  readonly #reserved = new Map<string, { policy: ChannelPolicy; guard: (identity: Identity | undefined, channel: string) => boolean }>();

  constructor(options: CoreOptions) {
    this.config = options.config;
    this.broker = options.broker;
    this.logger = options.logger ?? SILENT_LOGGER;
    this.net = new NetPolicy(options.config);
    this.nodeId = options.nodeId ?? randomUUID();
    this.sessions = options.sessions;
    this.hub = new Hub(this.broker);
    this.#reads = new SharedHistoryReads(this.broker);
    // A long-poll request is one of many of a client, each with its own id: not a session.
    this.hub.watchSessions({
      opened: (conn) => {
        if (conn.transport !== 'long-poll') this.sessions.add(conn.user!, this.nodeId, conn.id);
      },
      closed: (conn) => {
        if (conn.transport !== 'long-poll') this.sessions.remove(conn.user!, this.nodeId, conn.id);
      },
    });
    this.auth = new Authenticator(this.config);
    this.backend = new Backend({ config: this.config, nodeId: this.nodeId, logger: this.logger, auth: this.auth });
    this.policies = new PolicyResolver(this.config);
    this.clients = new ClientSessions({ config: this.config, nodeId: this.nodeId, hub: this.hub, backend: this.backend, channels: this, net: this.net });
  }

  /** Connect the broker. */
  async start(): Promise<void> {
    await this.broker.start({
      onPublication: (pub) => this.#fanout(pub),
      onChannelDeleted: (channel) => this.hub.channelDeleted(channel),
      onEvent: (event) => this.hub.broadcastEvent(event),
      // This node applied its own actions when it sent them (see control()).
      onControl: (msg) => {
        if (msg.from !== this.nodeId) applyControl(this.hub, this.backend, msg);
      },
    });
  }

  /**
   * Apply an admin action on every node: here at once, then through the broker everywhere else
   * (revocations are retained for nodes that start later, see control.ts). Resolves with the
   * connections closed on this node and the number of nodes the broker reached (this one
   * included). Rejects HERALD_ERR_UNAVAILABLE when the broker could not send it: the action then
   * took effect on this node only.
   */
  async control(action: ControlAction): Promise<{ disconnected: number; nodes: number }> {
    const disconnected = applyControl(this.hub, this.backend, action);
    const nodes = await this.broker.control({ ...action, from: this.nodeId }, retainUntil(action));
    return { disconnected, nodes };
  }

  /** Close the session registry and the broker. Connections must have been closed by their transports first. */
  async close(): Promise<void> {
    this.clients.close();
    await this.sessions.close();
    await this.broker.close();
  }

  /** Policy of a channel. */
  policy(channel: string): ChannelPolicy {
    if (this.#reserved.size) {
      const r = this.#reserved.get(namespaceOf(channel) ?? '');
      if (r) return r.policy;
    }
    return this.policies.forChannel(channel);
  }

  /**
   * Reserve a namespace for a service (e.g. the IM's `inbox`): its channels get `policy`
   * (overriding configured namespaces) and clients may read one only when `guard` allows it.
   */
  reserveNamespace(namespace: string, policy: ChannelPolicy, guard: (identity: Identity | undefined, channel: string) => boolean): void {
    this.#reserved.set(namespace, { policy: Object.freeze({ ...policy }), guard });
  }

  /** Whether a client with `identity` may read `channel` as far as reserved namespaces go. */
  reservedAllows(identity: Identity | undefined, channel: string): boolean {
    if (this.#reserved.size === 0) return true;
    const r = this.#reserved.get(namespaceOf(channel) ?? '');
    return !r || r.guard(identity, channel);
  }

  /** Throw HERALD_ERR_INVALID_CHANNEL unless the name is valid under the configured limits. */
  validateChannel(channel: unknown): asserts channel is string {
    assertChannel(channel, this.config.limits.maxChannelNameLength);
  }

  /**
   * Publish to a channel: store it in history per the channel's policy and fan it out to every
   * subscriber on every node. Resolves with the publication once stored. Permission checks are
   * the caller's (fronts and API differ).
   */
  async publish(channel: string, input: PublicationInput, source = 'api', options?: PublishOptions): Promise<Publication> {
    this.validateChannel(channel);
    if (input.payload.length > this.config.limits.maxMessageBytes) {
      throw new HeraldError('HERALD_ERR_PAYLOAD_TOO_LARGE', `Publication larger than ${this.config.limits.maxMessageBytes} bytes`);
    }
    // `options` lets a front apply its own history limits (Nchan: per-route buffer length and timeout).
    const pub = await this.broker.publish(channel, input, options ?? this.policy(channel));
    this.#published++;
    if (publishEvents.hasSubscribers) publishEvents.publish({ node: this.nodeId, channel, bytes: input.payload.length, source });
    return pub;
  }

  /**
   * Subscribe a local subscriber and compute where it starts. The subscriber must buffer live
   * deliveries for this channel until this resolves (see SubscriptionState) and then deliver
   * the returned publications followed by the buffered ones past `position`.
   */
  async subscribe(sub: Subscriber, channel: string, from: SubscribeFrom = {}): Promise<SubscribeResult> {
    this.validateChannel(channel);
    const added = await this.hub.add(channel, sub);
    if (!added) throw new HeraldError('HERALD_ERR_ALREADY_SUBSCRIBED');
    try {
      return await this.recover(channel, from);
    } catch (err) {
      this.hub.remove(channel, sub);
      throw err;
    }
  }

  /**
   * Compute history for a position without subscribing (long-poll and the first step of
   * subscribe). `recovered` is false when `since` is from another epoch or older than history.
   * Reads from a position, or of the position alone, asked for in the same event-loop turn are
   * one broker read (history-reads.ts): a crowd resuming one channel costs one read, not one each.
   */
  async recover(channel: string, from: SubscribeFrom): Promise<SubscribeResult> {
    const limit = this.config.limits.maxHistoryRead;
    if (from.since) {
      const since = from.since;
      const res = await this.#reads.since(channel, since, limit);
      if (res.position.epoch !== since.epoch || since.offset > res.position.offset) {
        return { publications: res.publications, position: res.position, recovered: false };
      }
      // Complete only when nothing was evicted or expired after `since` and the read was not cut by the limit.
      const recovered = since.offset + 1 >= res.oldest && res.publications.length === res.position.offset - since.offset;
      return { publications: res.publications, position: res.position, recovered };
    }
    if (from.last && from.last > 0) {
      const res = await this.broker.history(channel, { limit: Math.min(from.last, limit), reverse: true });
      const publications = res.publications.reverse();
      return { publications, position: res.position, recovered: true };
    }
    const res = await this.#reads.position(channel);
    return { publications: [], position: res.position, recovered: true };
  }

  /** Remove a local subscription. Returns false if it did not exist. */
  unsubscribe(sub: Subscriber, channel: string): boolean {
    return this.hub.remove(channel, sub);
  }

  /** Read a channel's history. */
  history(channel: string, query: { since?: StreamPosition; limit?: number; reverse?: boolean }): Promise<HistoryResult> {
    this.validateChannel(channel);
    const limit = Math.min(query.limit ?? this.config.limits.maxHistoryRead, this.config.limits.maxHistoryRead);
    return this.broker.history(channel, { since: query.since, limit, reverse: query.reverse });
  }

  /** Channel info (history size, position, local subscribers). */
  async channelInfo(channel: string): Promise<ChannelInfo> {
    this.validateChannel(channel);
    const [summary] = await this.broker.channels(channel, 1);
    if (summary && summary.channel === channel) {
      return { channel, position: summary.position, buffered: summary.buffered, subscribers: this.hub.subscriberCount(channel) };
    }
    const res = await this.broker.history(channel, { limit: 0 });
    return { channel, position: res.position, buffered: 0, subscribers: this.hub.subscriberCount(channel) };
  }

  /** Channels known to the broker by prefix. */
  channels(prefix: string, limit: number): Promise<ChannelSummary[]> {
    return this.broker.channels(prefix, limit);
  }

  /** Delete a channel on every node: history dropped, subscribers told. */
  deleteChannel(channel: string): Promise<boolean> {
    this.validateChannel(channel);
    return this.broker.deleteChannel(channel);
  }

  /** Send a join/leave event to a channel's subscribers when its policy asks for them. */
  async channelEvent(event: ChannelEvent): Promise<void> {
    if (this.policy(event.channel).joinLeave) await this.broker.broadcastEvent(event);
  }

  /** Counters for stats and health. */
  stats(): { published: number; delivered: number; connections: number; subscriptions: number; channels: number; uptimeMs: number } {
    return {
      published: this.#published,
      delivered: this.#delivered,
      connections: this.hub.connectionCount,
      subscriptions: this.hub.subscriptionCount,
      channels: this.hub.channelCount,
      uptimeMs: Date.now() - this.startedAt,
    };
  }

  /** Tell every connection to go away with `code` (e.g. on shutdown). */
  disconnectAll(code: number, reason: string): void {
    for (const conn of this.hub.connections()) conn.disconnect(code, reason);
  }

  #fanout(pub: Publication): void {
    const delivered = this.hub.broadcast(new Outgoing(pub));
    this.#delivered += delivered;
    if (fanoutEvents.hasSubscribers) fanoutEvents.publish({ node: this.nodeId, channel: pub.channel, delivered, latencyMs: Date.now() - pub.time });
  }
}
