/**
 * The broker engine interface: channel fan-out across nodes and per-channel history.
 * The memory engine serves one process; the Redis engine serves a cluster. A new engine should
 * be writable from these comments alone.
 */
import { randomFillSync } from 'node:crypto';
import type { StreamPosition } from '../protocol/position.js';
import type { ControlMessage } from './control-message.js';
import type { Publication, PublicationInput } from './publication.js';

/** Random bytes of one epoch (8 base64url characters). */
const EPOCH_BYTES = 6;
/** Epochs drawn from one refill of the pool. */
const EPOCHS_PER_POOL = 256;
/**
 * Random bytes for the next epochs, refilled from the CSPRNG in one call: a channel is created
 * for every new personal channel, so a system call per epoch showed in the accept rate.
 */
const epochPool = Buffer.alloc(EPOCH_BYTES * EPOCHS_PER_POOL);
let epochNext = epochPool.length;

/**
 * A new epoch for a channel whose history starts over (engines call it): a short random string
 * (6 fresh bytes from the CSPRNG for each) that fits the epoch of a stream position
 * (protocol/position.ts).
 */
export function newEpoch(): string {
  if (epochNext === epochPool.length) {
    randomFillSync(epochPool);
    epochNext = 0;
  }
  const start = epochNext;
  epochNext += EPOCH_BYTES;
  return epochPool.toString('base64url', start, epochNext);
}

/** History limits applied when publishing. */
export interface PublishOptions {
  /** Publications kept in the channel's history (0 = keep none, only fan out). */
  readonly historySize: number;
  /** How long each kept publication lives, ms (0 = no age limit). */
  readonly historyTtlMs: number;
}

/** A history read. */
export interface HistoryQuery {
  /** Return publications after this position (same epoch). */
  readonly since?: StreamPosition;
  /** Most publications to return; 0 returns only the current position. */
  readonly limit: number;
  /** Newest first (only without `since`). */
  readonly reverse?: boolean;
}

/** The result of a history read. */
export interface HistoryResult {
  /** Publications in offset order (or reverse order when asked). */
  readonly publications: Publication[];
  /** The channel's current position: its epoch and the offset of its newest publication. */
  readonly position: StreamPosition;
  /** Offset of the oldest publication still kept (position.offset + 1 when none is kept). */
  readonly oldest: number;
}

/** Summary of a channel known to the broker. */
export interface ChannelSummary {
  readonly channel: string;
  readonly position: StreamPosition;
  /** Publications currently kept. */
  readonly buffered: number;
}

/** An ephemeral channel event (join/leave): fanned out, never stored, carries no offset. */
export interface ChannelEvent {
  readonly type: 'join' | 'leave';
  readonly channel: string;
  readonly user?: string;
  readonly client: string;
}

/** Events a broker delivers to its node. */
export interface BrokerHandler {
  /**
   * A publication for a channel this node subscribed to. For each channel, publications arrive
   * in offset order; each arrives at most once per node.
   */
  onPublication(pub: Publication): void;
  /** A channel was deleted (its history dropped); local subscribers must be told. */
  onChannelDeleted(channel: string): void;
  /** An ephemeral event for a channel this node subscribed to (at most once, unordered with publications). */
  onEvent(event: ChannelEvent): void;
  /**
   * A cluster control message (core/control.ts), from any node including this one: the handler
   * skips its own by `from`. Also called during `start` (and after a reconnect) with the
   * messages still retained, so it must be idempotent. Must not throw.
   */
  onControl(msg: ControlMessage): void;
}

/** Channel fan-out plus history. */
export interface Broker {
  /** Attach the node's handler and connect. Called once before any other method. */
  start(handler: BrokerHandler): Promise<void>;
  /**
   * Give the publication the next offset of the channel, append it to history (when
   * historySize > 0, trimming to size and age) and deliver it to every node subscribed to the
   * channel. Append and publish are atomic: a subscriber that reads history and then receives
   * live publications sees no gap and no reordering. Resolves once the publication is stored
   * and handed to the transport of the fan-out.
   */
  publish(channel: string, input: PublicationInput, options: PublishOptions): Promise<Publication>;
  /** Start delivering the channel's publications to this node. Idempotent. */
  subscribe(channel: string): Promise<void>;
  /** Stop delivering the channel's publications to this node. Idempotent. */
  unsubscribe(channel: string): Promise<void>;
  /**
   * Read history. A channel never published to has offset 0 and a fresh epoch; the epoch of a
   * channel changes only when its history was lost (deleted, expired entirely, engine restart
   * without persistence).
   */
  history(channel: string, query: HistoryQuery): Promise<HistoryResult>;
  /** Deliver an ephemeral event to every node subscribed to its channel; nothing is stored. */
  broadcastEvent(event: ChannelEvent): Promise<void>;
  /**
   * Fan a control message out to every node of the cluster, this one included (`onControl`);
   * delivery is at most once, in send order per sender, unordered with publications. Resolves
   * with the number of nodes the engine handed it to (this one included), which is how many
   * were reachable at that moment; rejects (HERALD_ERR_UNAVAILABLE) when it could not be sent.
   * With `retainUntil` (ms since the epoch) the engine also keeps the message until then and
   * replays it to every node that starts, or reconnects to the engine, before that time — so a
   * revocation reaches nodes that were down or not yet started. Kept messages are replayed in
   * no particular order.
   */
  control(msg: ControlMessage, retainUntil?: number): Promise<number>;
  /** Drop the channel's history and tell every node (onChannelDeleted). Resolves true if it existed. */
  deleteChannel(channel: string): Promise<boolean>;
  /** Channels with a position, whose names start with `prefix`, at most `limit`, sorted by name. */
  channels(prefix: string, limit: number): Promise<ChannelSummary[]>;
  /**
   * Resolve when the engine can fan out and answer now (a round trip to a remote engine);
   * reject with HERALD_ERR_UNAVAILABLE otherwise. Optional: an in-process engine is always able.
   */
  ping?(): Promise<void>;
  /** Release connections and timers. */
  close(): Promise<void>;
}
