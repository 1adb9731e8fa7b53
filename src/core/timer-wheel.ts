/**
 * One timer for many items: items are spread over `slots` buckets and one interval visits one
 * bucket per tick, so every item is visited once per `periodMs` without a timer per item. The
 * interval runs only while the wheel holds items: an empty wheel never wakes the process.
 */

/** A periodic visitor over a changing set of items. */
export class TimerWheel<T> {
  readonly #slots: Set<T>[];
  readonly #visit: (item: T) => void;
  readonly #tickMs: number;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;
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
    this.#tickMs = Math.max(1, Math.floor(periodMs / slots));
  }

  /** Add an item; it is first visited within one period (never after stop()). */
  add(item: T): void {
    const slot = this.#slots[this.#next]!;
    if (slot.has(item)) return;
    slot.add(item);
    this.#next = (this.#next + 1) % this.#slots.length;
    if (++this.#size === 1 && !this.#stopped) {
      this.#timer = setInterval(() => this.#tick(), this.#tickMs);
      this.#timer.unref();
    }
  }

  /** Remove an item (no-op when absent). */
  remove(item: T): void {
    for (const s of this.#slots) {
      if (s.delete(item)) {
        if (--this.#size === 0) this.#idle();
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
    this.#stopped = true;
    this.#idle();
  }

  #idle(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  #tick(): void {
    const slot = this.#slots[this.#cursor]!;
    this.#cursor = (this.#cursor + 1) % this.#slots.length;
    for (const item of slot) this.#visit(item);
  }
}
