/**
 * Per-subscriber state of one channel: the last delivered position, and the buffer that holds
 * live publications while the subscription is being recovered from history, so that history
 * followed by live delivery has no gap, no duplicate and no reordering.
 */
import type { StreamPosition } from '../protocol/position.js';
import type { Outgoing } from './publication.js';

/** One channel subscription of one subscriber. */
export class SubscriptionState {
  readonly channel: string;
  epoch = '';
  offset = 0;
  #pending: Outgoing[] | undefined = [];

  constructor(channel: string) {
    this.channel = channel;
  }

  /** True until `settle` was called. */
  get recovering(): boolean {
    return this.#pending !== undefined;
  }

  /**
   * Decide whether a live publication is to be delivered now. While recovering it is buffered
   * (returns false); afterwards duplicates (offset already delivered in the same epoch) are
   * dropped. A publication of a new epoch is always delivered and moves the position.
   */
  accept(out: Outgoing): boolean {
    if (this.#pending) {
      this.#pending.push(out);
      return false;
    }
    const { epoch, offset } = out.pub;
    if (epoch === this.epoch && offset <= this.offset) return false;
    this.epoch = epoch;
    this.offset = offset;
    return true;
  }

  /**
   * End recovery at `position` (the position that history covered, including what it returned).
   * Returns the buffered live publications past that position, in order; the caller delivers them.
   */
  settle(position: StreamPosition): Outgoing[] {
    this.epoch = position.epoch;
    this.offset = position.offset;
    const pending = this.#pending ?? [];
    this.#pending = undefined;
    return pending.filter((out) => this.accept(out));
  }
}
