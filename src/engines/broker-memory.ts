/**
 * In-process broker: history in memory, fan-out by direct call. One process only; history and
 * epochs are lost on restart (each channel gets a new epoch, so clients learn of the gap).
 * Control messages go straight back to this node; there is no other node to retain them for.
 *
 * Expired publications are dropped, and idle unsubscribed channels forgotten, by a once-a-second
 * sweep that visits only the channels due then: each channel with something that can expire is
 * filed under the second of its next check. A node holding many quiet channels (one inbox per
 * user) spends nothing on them per second.
 */
import {
  type Broker,
  type BrokerHandler,
  type ChannelEvent,
  type ChannelSummary,
  type HistoryQuery,
  type HistoryResult,
  newEpoch,
  type PublishOptions,
} from '../core/broker.js';
import type { ControlMessage } from '../core/control-message.js';
import { OnDemandInterval } from '../core/on-demand-interval.js';
import type { Publication, PublicationInput } from '../core/publication.js';

interface Entry {
  readonly pub: Publication;
  /** Expiry time, ms since the Unix epoch (Infinity = never). */
  readonly expires: number;
}

interface ChannelState {
  epoch: string;
  offset: number;
  /** Kept publications, oldest first. */
  buffer: Entry[];
  /** Start index of live entries in `buffer` (amortised trimming). */
  head: number;
  /** Last publish or read, ms since the Unix epoch. */
  touched: number;
}

/** How often expired history is swept, ms. */
const SWEEP_INTERVAL_MS = 1_000;
/** An unsubscribed channel with no kept publications is forgotten after this idle time, ms. */
export const CHANNEL_IDLE_MS = 60_000;

/** Options of `new MemoryBroker()`. */
export interface MemoryBrokerOptions {
  /** Idle time after which an unsubscribed channel with no kept publications is forgotten, ms. */
  readonly channelIdleMs?: number;
}

/** The in-memory broker. */
export class MemoryBroker implements Broker {
  #handler: BrokerHandler | undefined;
  readonly #channels = new Map<string, ChannelState>();
  readonly #subscribed = new Set<string>();
  readonly #idleMs: number;
  /** Unix second → channels whose next check is due in it. */
  readonly #due = new Map<number, Set<string>>();
  /** Channel → the second it is filed under in `#due`. */
  readonly #dueAt = new Map<string, number>();
  /** The first second not swept yet. */
  #swept = Math.floor(Date.now() / 1000);
  /** Runs the sweep each second while anything is filed in `#due`; an idle broker never wakes. */
  readonly #sweeper = new OnDemandInterval(SWEEP_INTERVAL_MS, () => {
    this.#sweep(Date.now());
    return this.#due.size > 0;
  });

  constructor(options: MemoryBrokerOptions = {}) {
    this.#idleMs = options.channelIdleMs ?? CHANNEL_IDLE_MS;
  }

  /** Whether the expiry sweep is armed: only while a channel's check is due (an idle broker never wakes). */
  get sweeping(): boolean {
    return this.#sweeper.running;
  }

  async start(handler: BrokerHandler): Promise<void> {
    this.#handler = handler;
  }

  async publish(channel: string, input: PublicationInput, options: PublishOptions): Promise<Publication> {
    const now = Date.now();
    const st = this.#state(channel, now);
    const pub: Publication = { ...input, channel, epoch: st.epoch, offset: ++st.offset, time: now };
    if (options.historySize > 0) {
      st.buffer.push({ pub, expires: options.historyTtlMs > 0 ? now + options.historyTtlMs : Infinity });
      const excess = st.buffer.length - st.head - options.historySize;
      if (excess > 0) st.head += excess;
      this.#compact(st);
    }
    st.touched = now;
    this.#schedule(channel, st);
    if (this.#subscribed.has(channel)) this.#handler?.onPublication(pub);
    return pub;
  }

  async subscribe(channel: string): Promise<void> {
    this.#subscribed.add(channel);
  }

  async unsubscribe(channel: string): Promise<void> {
    this.#subscribed.delete(channel);
    const st = this.#channels.get(channel);
    if (st) this.#schedule(channel, st);
  }

  async history(channel: string, query: HistoryQuery): Promise<HistoryResult> {
    const now = Date.now();
    const st = this.#state(channel, now);
    st.touched = now;
    this.#expire(st, now);
    this.#schedule(channel, st);
    const live = st.buffer.length - st.head;
    const oldest = live > 0 ? st.buffer[st.head]!.pub.offset : st.offset + 1;
    const position = { epoch: st.epoch, offset: st.offset };
    if (query.limit <= 0 || live === 0) return { publications: [], position, oldest };
    let from = st.head;
    if (query.since && query.since.epoch === st.epoch) {
      from = Math.max(st.head, st.head + (query.since.offset + 1 - oldest));
    }
    const entries =
      query.reverse && !query.since ? st.buffer.slice(Math.max(from, st.buffer.length - query.limit)).reverse() : st.buffer.slice(from, from + query.limit);
    const publications = entries.map((e) => e.pub);
    return { publications, position, oldest };
  }

  async broadcastEvent(event: ChannelEvent): Promise<void> {
    if (this.#subscribed.has(event.channel)) this.#handler?.onEvent(event);
  }

  /** Delivers to this node only (the whole cluster); `retainUntil` has no one to serve. */
  async control(msg: ControlMessage): Promise<number> {
    this.#handler?.onControl(msg);
    return 1;
  }

  async deleteChannel(channel: string): Promise<boolean> {
    const existed = this.#channels.delete(channel);
    this.#unschedule(channel);
    this.#handler?.onChannelDeleted(channel);
    return existed;
  }

  async channels(prefix: string, limit: number): Promise<ChannelSummary[]> {
    const now = Date.now();
    const names = [...this.#channels.keys()]
      .filter((c) => c.startsWith(prefix))
      .sort()
      .slice(0, limit);
    return names.map((channel) => {
      const st = this.#channels.get(channel)!;
      this.#expire(st, now);
      return { channel, position: { epoch: st.epoch, offset: st.offset }, buffered: st.buffer.length - st.head };
    });
  }

  async close(): Promise<void> {
    this.#sweeper.stop();
    this.#channels.clear();
    this.#subscribed.clear();
    this.#due.clear();
    this.#dueAt.clear();
  }

  #state(channel: string, now: number): ChannelState {
    let st = this.#channels.get(channel);
    if (!st) {
      st = { epoch: newEpoch(), offset: 0, buffer: [], head: 0, touched: now };
      this.#channels.set(channel, st);
    }
    return st;
  }

  #expire(st: ChannelState, now: number): void {
    while (st.head < st.buffer.length && st.buffer[st.head]!.expires <= now) st.head++;
    this.#compact(st);
  }

  #compact(st: ChannelState): void {
    if (st.head > 64 && st.head * 2 > st.buffer.length) {
      st.buffer = st.buffer.slice(st.head);
      st.head = 0;
    }
  }

  /**
   * Expire old publications, and forget channels that kept nothing, have no subscriber on this
   * node and were idle for CHANNEL_IDLE_MS. A forgotten channel starts a new epoch when used
   * again, so a client resuming from the old one is told its position could not be recovered.
   */
  /** When `channel` next needs a look, ms since the epoch; undefined when nothing can change by itself. */
  #nextCheck(channel: string, st: ChannelState): number | undefined {
    if (st.head < st.buffer.length) {
      const expires = st.buffer[st.head]!.expires;
      return expires === Infinity ? undefined : expires;
    }
    return this.#subscribed.has(channel) ? undefined : st.touched + this.#idleMs;
  }

  /**
   * File `channel` under the second of its next check. A check already filed earlier stays: it
   * finds the channel's current state and files it again, so publications only cost a lookup.
   */
  #schedule(channel: string, st: ChannelState): void {
    const next = this.#nextCheck(channel, st);
    if (next === undefined) return;
    if (!this.#sweeper.running) {
      // The sweep stopped with nothing due: it resumes from now, not from where it stopped.
      this.#swept = Math.max(this.#swept, Math.floor(Date.now() / 1000));
      this.#sweeper.wake();
    }
    const second = Math.max(Math.ceil(next / 1000), this.#swept);
    const filed = this.#dueAt.get(channel);
    if (filed !== undefined && filed <= second) return;
    this.#unschedule(channel);
    let bucket = this.#due.get(second);
    if (!bucket) this.#due.set(second, (bucket = new Set()));
    bucket.add(channel);
    this.#dueAt.set(channel, second);
  }

  #unschedule(channel: string): void {
    const second = this.#dueAt.get(channel);
    if (second === undefined) return;
    this.#dueAt.delete(channel);
    const bucket = this.#due.get(second);
    bucket?.delete(channel);
    if (bucket?.size === 0) this.#due.delete(second);
  }

  /** Check the channels due up to `now`: drop what expired, forget idle channels, file the rest again. */
  #sweep(now: number): void {
    const from = this.#swept;
    const to = Math.floor(now / 1000);
    // Checks filed during this pass land after it.
    this.#swept = to + 1;
    for (let second = from; second <= to; second++) {
      const bucket = this.#due.get(second);
      if (!bucket) continue;
      this.#due.delete(second);
      for (const name of bucket) {
        this.#dueAt.delete(name);
        const st = this.#channels.get(name);
        if (!st) continue;
        this.#expire(st, now);
        if (st.head === st.buffer.length && now - st.touched > this.#idleMs && !this.#subscribed.has(name)) this.#channels.delete(name);
        else this.#schedule(name, st);
      }
    }
  }
}
