/**
 * One timer for many items: items are spread over `slots` buckets and one interval visits one
 * bucket per tick, so every item is visited once per `periodMs` without a timer per item. The
 * interval runs only while the wheel holds items: an empty wheel never wakes the process.
 */
import { OnDemandInterval } from './on-demand-interval.js';

/** A periodic visitor over a changing set of items. */
export class TimerWheel<T> {
  readonly #slots: Set<T>[];
  readonly #visit: (item: T) => void;
  readonly #ticker: OnDemandInterval;
  #size = 0;
  #cursor = 0;
  #next = 0;

  /**
   * @param periodMs time between two visits of the same item
   * @param visit called for each item of the current bucket; must not throw
   * @param slots number of buckets (default 16)
   */
  constructor(periodMs: number, visit: (item: T) => void, slots = 16) {
    this.#slots = Array.from({ length: slots }, () => new Set<T>());
    this.#visit = visit;
    this.#ticker = new OnDemandInterval(Math.floor(periodMs / slots), () => this.#tick());
  }

  /** Add an item; it is first visited within one period (never after stop()). */
  add(item: T): void {
    const slot = this.#slots[this.#next]!;
    if (slot.has(item)) return;
    slot.add(item);
    this.#next = (this.#next + 1) % this.#slots.length;
    this.#size++;
    this.#ticker.wake();
  }

  /** Remove an item (no-op when absent). The interval stops at its next tick once the wheel is empty. */
  remove(item: T): void {
    for (const s of this.#slots) {
      if (s.delete(item)) {
        this.#size--;
        return;
      }
    }
  }

  /** Number of items held. */
  get size(): number {
    return this.#size;
  }

  /** Stop the timer for good; items stay but are no longer visited. */
  stop(): void {
    this.#ticker.stop();
  }

  /** Visit the current bucket; returns whether the wheel still holds items. */
  #tick(): boolean {
    const slot = this.#slots[this.#cursor]!;
    this.#cursor = (this.#cursor + 1) % this.#slots.length;
    for (const item of slot) this.#visit(item);
    return this.#size > 0;
  }
}
