/**
 * The hub: this node's connections and which local subscribers hold which channel. It asks the
 * broker to deliver a channel to this node when the first local subscriber arrives and stops
 * when the last one leaves.
 */
import type { Identity } from './auth.js';
import type { Broker, ChannelEvent } from './broker.js';
import type { Outgoing, Publication } from './publication.js';

/** Something that receives a channel's publications on this node (a client session). */
export interface Subscriber {
  /** A publication of a subscribed channel, in offset order. Must not throw. */
  deliver(out: Outgoing): void;
  /** The channel was deleted; the hub has already removed this subscription. Must not throw. */
  channelDeleted(channel: string): void;
  /** A join/leave event on a subscribed channel. Must not throw. */
  event?(event: ChannelEvent): void;
}

/** A client connection as the hub sees it, whatever its transport and protocol. */
export interface Connection {
  /** Unique on this node. */
  readonly id: string;
  /** Transport label for metrics: `websocket`, `sse`, `long-poll`, `http-stream`, … */
  readonly transport: string;
  /** Authenticated user id, if any. */
  readonly user: string | undefined;
  /** The identity, when the front keeps it (token revocation matches `jti` and `iat`). */
  readonly identity?: Identity;
  /** Tell the client why and close. Idempotent. */
  disconnect(code: number, reason: string): void;
}

/**
 * Told when a channel gains its first local subscriber (`active`) or loses its last (`idle`), and
 * (optionally) of each publication delivered to local subscribers (`delivered`),
 * e.g. by the IM to track which users have a live session on this node. Must not throw.
 */
export interface ChannelWatcher {
  active(channel: string): void;
  idle(channel: string): void;
  /** A publication of a watched channel was handed to its local subscribers (at least one). */
  delivered?(pub: Publication): void;
}

/**
 * Told when a user's session opens on this node (`Hub.identified`, once its connection was
 * added and its user is known) and when a connection with a user closes — also one
 * whose opening was never told (it closed while connecting): treat that as a no-op. Must not
 * throw.
 */
export interface SessionWatcher {
  opened(conn: Connection): void;
  closed(conn: Connection): void;
}

/**
 * A channel's local subscribers: the subscriber itself while it is the only one (most personal
 * channels: no `Set` of one, ~150 bytes each), a `Set` from the second on, kept until the
 * channel has none.
 */
type Members = Subscriber | Set<Subscriber>;

/** Local connections and subscriptions. */
export class Hub {
  readonly #broker: Broker;
  readonly #channels = new Map<string, Members>();
  /** Broker subscriptions in flight: later subscribers wait for the first one's. */
  readonly #pending = new Map<string, Promise<void>>();
  readonly #connections = new Set<Connection>();
  readonly #byTransport = new Map<string, number>();
  #subscriptions = 0;
  readonly #watchers: Array<{ prefix: string; watcher: ChannelWatcher }> = [];
  readonly #sessionWatchers: SessionWatcher[] = [];

  constructor(broker: Broker) {
    this.#broker = broker;
  }

  /** Watch channels whose names start with `prefix` for their first and last local subscriber. */
  watch(prefix: string, watcher: ChannelWatcher): void {
    this.#watchers.push({ prefix, watcher });
  }

  #notify(kind: 'active' | 'idle', channel: string): void {
    for (const { prefix, watcher } of this.#watchers) if (channel.startsWith(prefix)) watcher[kind](channel);
  }

  /** Watch user sessions opening and closing on this node. */
  watchSessions(watcher: SessionWatcher): void {
    this.#sessionWatchers.push(watcher);
  }

  /** Register a live connection; its user's session opens with `identified` (core/client-sessions.ts calls both). */
  addConnection(conn: Connection): void {
    this.#connections.add(conn);
    this.#byTransport.set(conn.transport, (this.#byTransport.get(conn.transport) ?? 0) + 1);
  }

  /** A live connection knows its user (after login): its session opens. Call once per connection. */
  identified(conn: Connection): void {
    if (conn.user === undefined || !this.#connections.has(conn)) return;
    for (const w of this.#sessionWatchers) w.opened(conn);
  }

  /** Forget a connection (after it closed). Idempotent. */
  removeConnection(conn: Connection): void {
    if (!this.#connections.delete(conn)) return;
    this.#byTransport.set(conn.transport, (this.#byTransport.get(conn.transport) ?? 1) - 1);
    if (conn.user !== undefined) for (const w of this.#sessionWatchers) w.closed(conn);
  }

  /** Live connections. */
  get connectionCount(): number {
    return this.#connections.size;
  }

  /** Live connections per transport label. */
  connectionsByTransport(): Record<string, number> {
    return Object.fromEntries(this.#byTransport);
  }

  /** Every live connection (snapshot). */
  connections(): Connection[] {
    return [...this.#connections];
  }

  /** Total local subscriptions. */
  get subscriptionCount(): number {
    return this.#subscriptions;
  }

  /** Local subscribers of a channel. */
  subscriberCount(channel: string): number {
    const members = this.#channels.get(channel);
    return members === undefined ? 0 : members instanceof Set ? members.size : 1;
  }

  /** Channels with at least one local subscriber. */
  get channelCount(): number {
    return this.#channels.size;
  }

  /**
   * Add a subscriber to a channel; resolves once the broker delivers the channel to this node.
   * Returns false if it was already subscribed.
   */
  async add(channel: string, sub: Subscriber): Promise<boolean> {
    const members = this.#channels.get(channel);
    if (members === undefined) {
      this.#channels.set(channel, sub);
      this.#subscriptions++;
      if (this.#watchers.length) this.#notify('active', channel);
      const ready = this.#broker.subscribe(channel);
      this.#pending.set(channel, ready);
      try {
        await ready;
      } catch (err) {
        // The broker refused (e.g. Redis down): leave no subscriber behind that would never be fed.
        this.remove(channel, sub);
        throw err;
      } finally {
        if (this.#pending.get(channel) === ready) this.#pending.delete(channel);
      }
      return true;
    }
    if (members === sub || (members instanceof Set && members.has(sub))) return false;
    if (members instanceof Set) members.add(sub);
    else this.#channels.set(channel, new Set([members, sub]));
    this.#subscriptions++;
    try {
      await this.#pending.get(channel);
    } catch (err) {
      this.remove(channel, sub);
      throw err;
    }
    return true;
  }

  /** Remove a subscriber from a channel. Returns false if it was not subscribed. */
  remove(channel: string, sub: Subscriber): boolean {
    const members = this.#channels.get(channel);
    if (members === undefined || (members instanceof Set ? !members.delete(sub) : members !== sub)) return false;
    this.#subscriptions--;
    if (!(members instanceof Set) || members.size === 0) {
      this.#channels.delete(channel);
      // Fire and forget: a failed unsubscribe only costs unneeded deliveries to this node.
      this.#broker.unsubscribe(channel).catch(() => undefined);
      if (this.#watchers.length) this.#notify('idle', channel);
    }
    return true;
  }

  /** Deliver a publication to every local subscriber of its channel; returns how many. */
  broadcast(out: Outgoing): number {
    const members = this.#channels.get(out.pub.channel);
    if (members === undefined) return 0;
    let count = 1;
    if (members instanceof Set) {
      for (const sub of members) sub.deliver(out);
      count = members.size;
    } else members.deliver(out);
    if (this.#watchers.length)
      for (const { prefix, watcher } of this.#watchers) if (watcher.delivered && out.pub.channel.startsWith(prefix)) watcher.delivered(out.pub);
    return count;
  }

  /** Deliver an ephemeral event to local subscribers of its channel. */
  broadcastEvent(event: ChannelEvent): void {
    const members = this.#channels.get(event.channel);
    if (members instanceof Set) for (const sub of members) sub.event?.(event);
    else members?.event?.(event);
  }

  /** Remove every local subscriber of a channel and tell each it was deleted. */
  channelDeleted(channel: string): number {
    const members = this.#channels.get(channel);
    if (members === undefined) return 0;
    const subs = members instanceof Set ? members : [members];
    const count = members instanceof Set ? members.size : 1;
    this.#channels.delete(channel);
    this.#subscriptions -= count;
    this.#broker.unsubscribe(channel).catch(() => undefined);
    if (this.#watchers.length) this.#notify('idle', channel);
    for (const sub of subs) sub.channelDeleted(channel);
    return count;
  }
}
