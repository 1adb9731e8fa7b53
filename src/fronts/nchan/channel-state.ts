/**
 * Per-channel Nchan state kept by the front: the `time:tag` id of each publication (assigned in
 * offset order, so the same publication always has the same id on this node) and when a
 * subscriber last asked for the channel. Message storage itself is the core's.
 */
import type { Publication } from '../../core/publication.js';
import { compareIds } from './ids.js';

/** The Nchan id of one publication. */
export interface PubId {
  readonly time: number;
  readonly tag: number;
}

/** A message ready for a subscriber: the publication and its id as this subscription sees it. */
export interface NchanMessage {
  readonly pub: Publication;
  /** Unix seconds of the id (Last-Modified). */
  readonly time: number;
  /** The tag part of the id (Etag): `5`, or `0,[5],-` when multiplexed. */
  readonly tags: string;
  /** Whether the message has several channels (the encoding cannot be shared). */
  readonly multiplexed: boolean;
}

/** Entries kept per channel beyond which the oldest ids are forgotten. */
const MAX_IDS = 4096;

/** Ids and request time of one channel. */
export class ChannelIds {
  epoch = '';
  lastOffset = 0;
  lastTime = 0;
  lastTag = -1;
  /** Last time a subscriber requested the channel, ms (0 = never). */
  requestedAt = 0;
  /** Last use of this state, ms (for idle sweeping). */
  touchedAt = Date.now();
  readonly #byOffset = new Map<number, PubId>();
  /**
   * The single-channel message of the publication last asked for (`message`): a broadcast
   * asks for the same publication once per subscriber, and they all share one message.
   */
  #last: { readonly id: PubId; readonly msg: NchanMessage } | undefined;

  /**
   * The id of `pub` and its message as a single-channel subscriber sees it (`tags` is the id's
   * tag), shared by every such subscriber: built once per publication.
   */
  message(pub: Publication): { readonly id: PubId; readonly msg: NchanMessage } {
    const last = this.#last;
    if (last !== undefined && last.msg.pub === pub) return last;
    const id = this.idFor(pub);
    return (this.#last = { id, msg: { pub, time: id.time, tags: String(id.tag), multiplexed: false } });
  }

  /** The id of `pub`, assigning the next one if it has none yet. */
  idFor(pub: Publication): PubId {
    this.touchedAt = Date.now();
    if (pub.epoch !== this.epoch) this.reset(pub.epoch);
    const known = this.#byOffset.get(pub.offset);
    if (known) return known;
    const sec = Math.floor(pub.time / 1000);
    let id: PubId;
    if (pub.offset > this.lastOffset) {
      id = sec > this.lastTime ? { time: sec, tag: 0 } : { time: this.lastTime, tag: this.lastTag + 1 };
      this.lastOffset = pub.offset;
      this.lastTime = id.time;
      this.lastTag = id.tag;
    } else {
      // An older publication never seen before (published while nobody here watched and
      // already behind newer ones): give it an id below everything assigned since.
      id = { time: sec, tag: 0 };
    }
    this.#byOffset.set(pub.offset, id);
    if (this.#byOffset.size > MAX_IDS) {
      const first = this.#byOffset.keys().next().value as number;
      this.#byOffset.delete(first);
    }
    return id;
  }

  /** Forget ids of publications older than `oldest` (no longer in history). */
  prune(oldest: number): void {
    if (this.#last !== undefined && this.#last.msg.pub.offset < oldest) this.#last = undefined;
    for (const k of this.#byOffset.keys()) {
      if (k >= oldest) break;
      this.#byOffset.delete(k);
    }
  }

  /** Start over for a new history epoch (channel deleted and created again). */
  reset(epoch: string): void {
    this.epoch = epoch;
    this.lastOffset = 0;
    this.lastTime = 0;
    this.lastTag = -1;
    this.#byOffset.clear();
    this.#last = undefined;
  }

  /** The last assigned id as `time:tag`, `0:0` before any. */
  lastId(): string {
    return this.lastTag < 0 ? '0:0' : `${this.lastTime}:${this.lastTag}`;
  }

  /** Whether `pub` comes after the given (time, tag). */
  isAfter(pub: Publication, time: number, tag: number): boolean {
    const id = this.idFor(pub);
    return compareIds(id.time, id.tag, time, tag) > 0;
  }
}

/** The channel states of the front. */
export class ChannelRegistry {
  readonly #channels = new Map<string, ChannelIds>();

  /** State of a channel, created on first use. */
  get(channel: string): ChannelIds {
    let st = this.#channels.get(channel);
    if (!st) {
      st = new ChannelIds();
      this.#channels.set(channel, st);
    }
    return st;
  }

  /** State of a channel if it has one. */
  peek(channel: string): ChannelIds | undefined {
    return this.#channels.get(channel);
  }

  /** Forget a channel (deleted). */
  delete(channel: string): void {
    this.#channels.delete(channel);
  }

  /** Forget channels for which `keep` is false (idle sweeping). */
  sweep(keep: (channel: string, st: ChannelIds) => boolean): void {
    for (const [ch, st] of this.#channels) if (!keep(ch, st)) this.#channels.delete(ch);
  }
}
