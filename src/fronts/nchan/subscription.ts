/**
 * One Nchan subscription: one or more channels (multiplexed) read from a start position and
 * then followed live, delivered in order to a sink (a subscriber type). History comes from the
 * core; live publications come through the hub, buffered while history is read so that there
 * is no gap and no duplicate.
 */
import type { HeraldCore } from '../../core/core.js';
import type { Subscriber } from '../../core/hub.js';
import type { Outgoing, Publication } from '../../core/publication.js';
import { SubscriptionState } from '../../core/subscription.js';
import type { ChannelRegistry, NchanMessage, PubId } from './channel-state.js';
import { compareIds, formatTags, type NchanMsgId } from './ids.js';

export type { NchanMessage } from './channel-state.js';

/** Why a subscription ended. */
export type EndReason = 'deleted' | 'timeout' | 'closed';

/** What a subscriber type implements. */
export interface Sink {
  /** Deliver one message; return false to stop the subscription (long-poll answers once). */
  message(msg: NchanMessage): boolean;
  /** The subscription ended (not called for `closed` caused by the sink itself). */
  end(reason: EndReason): void;
  /** Send a keep-alive (EventSource `event: ping`, WebSocket ping frame), if the type has one. */
  ping?(): void;
  /**
   * Streaming types: undefined while the transport takes more at once, else a promise that
   * settles once what was written has drained to the operating system, or the connection
   * closed. A backlog goes out at the pace the reader reads instead of all at once.
   */
  drained?(): Promise<void> | undefined;
  /** Streaming types: cut the connection of a reader that fell behind (a slow consumer). */
  cut?(): void;
}

/** Where a subscription starts. */
export type StartFrom =
  | { readonly kind: 'oldest' }
  | { readonly kind: 'newest' }
  /** N > 0: from the N-th oldest buffered message; N < 0: the |N| newest (clamped to the buffer). */
  | { readonly kind: 'nth'; readonly n: number }
  | { readonly kind: 'after'; readonly id: NchanMsgId };

/** A live subscription. */
export class NchanSubscription implements Subscriber {
  readonly channels: readonly string[];
  readonly #core: HeraldCore;
  readonly #ids: ChannelRegistry;
  readonly #sink: Sink;
  readonly #states: SubscriptionState[];
  /** Last delivered (or resumed-from) id per channel; tag -1 = none. */
  readonly #last: PubId[];
  #open = true;
  #started = false;
  /** Live publications accepted before the backlog was delivered, in order of arrival. */
  #early: { pub: Publication; index: number }[] = [];
  /** Payload bytes waiting in #early. */
  #earlyBytes = 0;
  #timer: NodeJS.Timeout | undefined;
  /** Called once when the subscription ends, for any reason. */
  onEnd: ((reason: EndReason) => void) | undefined;

  constructor(core: HeraldCore, ids: ChannelRegistry, channels: readonly string[], sink: Sink) {
    this.#core = core;
    this.#ids = ids;
    this.channels = channels;
    this.#sink = sink;
    this.#states = channels.map((c) => new SubscriptionState(c));
    this.#last = channels.map(() => ({ time: 0, tag: -1 }));
  }

  /** Whether it is still running. */
  get open(): boolean {
    return this.#open;
  }

  /**
   * Subscribe to every channel, deliver what the start position selects from history, then
   * follow live. `timeoutMs` > 0 ends it with `timeout` after that long.
   */
  async start(from: StartFrom, timeoutMs: number): Promise<void> {
    const now = Date.now();
    if (from.kind === 'after') {
      this.channels.forEach((_, i) => {
        this.#last[i] = { time: from.id.time, tag: from.id.tags[i] ?? -1 };
      });
    }
    for (const ch of this.channels) {
      this.#ids.get(ch).requestedAt = now;
      await this.#core.hub.add(ch, this);
      if (!this.#open) return;
    }
    const backlog: { pub: Publication; index: number }[] = [];
    for (let i = 0; i < this.channels.length; i++) {
      const ch = this.channels[i]!;
      const res = await this.#core.history(ch, {});
      if (!this.#open) return;
      const ids = this.#ids.get(ch);
      ids.prune(res.oldest);
      const pending = this.#states[i]!.settle(res.position).map((o) => o.pub);
      let hist = res.publications;
      for (const pub of hist) ids.idFor(pub);
      if (from.kind === 'newest') hist = [];
      else if (from.kind === 'nth' && hist.length > 0) {
        hist = from.n > 0 ? hist.slice(Math.min(from.n - 1, hist.length - 1)) : hist.slice(Math.max(0, hist.length + from.n));
      }
      for (const pub of [...hist, ...pending]) {
        const id = ids.idFor(pub);
        const after = this.#last[i]!;
        if (from.kind === 'after' && compareIds(id.time, id.tag, after.time, after.tag) <= 0) continue;
        backlog.push({ pub, index: i });
      }
    }
    // Live publications of channels settled while later channels were still being read.
    backlog.push(...this.#takeEarly());
    // Across channels, history is merged by publication time (stable: per-channel order kept).
    if (this.channels.length > 1) backlog.sort((a, b) => a.pub.time - b.pub.time);
    if (!(await this.#catchUp(backlog))) return;
    if (timeoutMs > 0 && this.#open) {
      this.#timer = setTimeout(() => this.#finish('timeout', true), timeoutMs);
    }
  }

  /** Hub delivery of a live publication. */
  deliver(out: Outgoing): void {
    if (!this.#open) return;
    const i = this.channels.indexOf(out.pub.channel);
    if (i < 0) return;
    if (!this.#states[i]!.accept(out)) return;
    if (this.#started) {
      this.#emit(i, out.pub);
      return;
    }
    this.#early.push({ pub: out.pub, index: i });
    this.#earlyBytes += out.pub.payload.length;
    // A streaming reader still catching up that falls this far behind is a slow consumer.
    if (this.#sink.cut && this.#earlyBytes > this.#core.config.limits.maxOutboundBytes) {
      this.#sink.cut();
      this.#finish('closed', false);
    }
  }

  /**
   * Deliver the backlog, then what arrived live meanwhile, then follow live. Between messages
   * it waits whenever the sink asks (its transport's buffer is full), so a backlog larger than
   * `limits.maxOutboundBytes` reaches the reader at its pace instead of cutting it; live
   * publications wait in order in #early meanwhile (bounded: see deliver). Returns whether the
   * subscription is still open.
   */
  async #catchUp(queue: { pub: Publication; index: number }[]): Promise<boolean> {
    for (;;) {
      for (const { pub, index } of queue) {
        if (!this.#emit(index, pub)) return false;
        const wait = this.#sink.drained?.();
        if (wait) {
          await wait;
          if (!this.#open) return false;
        }
      }
      if (this.#early.length === 0) break;
      queue = this.#takeEarly();
    }
    this.#started = true;
    return true;
  }

  /** Take the live publications waiting in #early. */
  #takeEarly(): { pub: Publication; index: number }[] {
    const early = this.#early;
    this.#early = [];
    this.#earlyBytes = 0;
    return early;
  }

  /** Hub: one of the channels was deleted; the whole subscription ends (as in Nchan). */
  channelDeleted(channel: string): void {
    this.#ids.delete(channel);
    this.#finish('deleted', true);
  }

  /** End the subscription from the sink's side (client went away or answered). */
  close(): void {
    this.#finish('closed', false);
  }

  #emit(index: number, pub: Publication): boolean {
    const ids = this.#ids.get(this.channels[index]!);
    let msg: NchanMessage;
    if (this.channels.length === 1) {
      // One channel: the message is the same for every subscriber, built once per publication.
      const shared = ids.message(pub);
      this.#last[0] = shared.id;
      msg = shared.msg;
    } else {
      const id = ids.idFor(pub);
      this.#last[index] = id;
      const tags = formatTags(
        this.#last.map((l, j) => (j === index || l.time === id.time ? l.tag : -1)),
        index,
      );
      msg = { pub, time: id.time, tags, multiplexed: true };
    }
    const more = this.#sink.message(msg);
    if (!more) this.#finish('closed', false);
    return more && this.#open;
  }

  #finish(reason: EndReason, tellSink: boolean): void {
    if (!this.#open) return;
    this.#open = false;
    if (this.#timer) clearTimeout(this.#timer);
    for (const ch of this.channels) this.#core.hub.remove(ch, this);
    if (tellSink) this.#sink.end(reason);
    this.onEnd?.(reason);
  }
}
