/**
 * One timer for many items: items are spread over `slots` buckets and one interval visits one
 * bucket per tick, so every item is visited once per `periodMs` without a timer per item.
 */

/** A periodic visitor over a changing set of items. */
export class TimerWheel<T> {
  readonly #slots: Set<T>[];
  readonly #visit: (item: T) => void;
  readonly #timer: NodeJS.Timeout;
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
    this.#timer = setInterval(() => this.#tick(), Math.max(1, Math.floor(periodMs / slots)));
    this.#timer.unref();
  }

  /** Add an item; it is first visited within one period. */
  add(item: T): void {
    this.#slots[this.#next]!.add(item);
    this.#next = (this.#next + 1) % this.#slots.length;
  }

  /** Remove an item (no-op when absent). */
  remove(item: T): void {
    for (const s of this.#slots) if (s.delete(item)) return;
  }

  /** Number of items held. */
  get size(): number {
    let n = 0;
    for (const s of this.#slots) n += s.size;
    return n;
  }

  /** Stop the timer. */
  stop(): void {
    clearInterval(this.#timer);
  }

  #tick(): void {
    const slot = this.#slots[this.#cursor]!;
    this.#cursor = (this.#cursor + 1) % this.#slots.length;
    for (const item of slot) this.#visit(item);
  }
}
