/** Per-key token buckets for IM rate limits (sends, typing). */

/** Token buckets keyed by user: `rate` tokens per second, holding at most `burst`. */
export class RateLimiter {
  readonly #rate: number;
  readonly #burst: number;
  readonly #buckets = new Map<string, { tokens: number; at: number }>();

  constructor(ratePerSecond: number, burst = ratePerSecond * 2) {
    this.#rate = ratePerSecond;
    this.#burst = burst;
  }

  /** Take one token for `key`; false when the bucket is empty (the caller refuses the request). */
  take(key: string, now = Date.now()): boolean {
    let b = this.#buckets.get(key);
    if (!b) {
      // Bound memory: full buckets carry no information, so drop them all when the map grows.
      if (this.#buckets.size > 100_000) this.#sweep(now);
      b = { tokens: this.#burst, at: now };
      this.#buckets.set(key, b);
    }
    b.tokens = Math.min(this.#burst, b.tokens + ((now - b.at) / 1000) * this.#rate);
    b.at = now;
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }

  #sweep(now: number): void {
    for (const [k, b] of this.#buckets) if (b.tokens + ((now - b.at) / 1000) * this.#rate >= this.#burst) this.#buckets.delete(k);
  }
}
