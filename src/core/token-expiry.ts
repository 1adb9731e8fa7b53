/**
 * Token expiry of live sessions: a session whose token carries `exp` is closed with 3500
 * (INVALID_TOKEN, "do not reconnect without a new token") once `exp` passes, unless it
 * presented a newer token first (the native `refresh` command). One timer sweeps per-second
 * buckets, so a node with many sessions holds no timer per session; a session closes within
 * about a second after its `exp`.
 */
import { DisconnectCode } from '../protocol/codes.js';
import type { Connection } from './hub.js';
import { OnDemandInterval } from './on-demand-interval.js';

/** Sweep interval, ms. */
const TICK_MS = 1_000;

/** Live sessions by the second their token expires. */
export class TokenExpiry {
  /** Unix second → sessions expiring in it. */
  readonly #buckets = new Map<number, Set<Connection>>();
  /** Session → its bucket. */
  readonly #of = new Map<Connection, number>();
  /** Runs while sessions are watched; a node without expiring tokens never wakes for it. */
  readonly #sweeper = new OnDemandInterval(TICK_MS, () => this.#sweep());
  #swept = Math.floor(Date.now() / 1000);

  /** Close `conn` at `exp` (seconds since the epoch), replacing any earlier expiry of it. */
  watch(conn: Connection, exp: number): void {
    this.unwatch(conn);
    if (!this.#sweeper.running) {
      this.#swept = Math.floor(Date.now() / 1000);
      this.#sweeper.wake();
    }
    // An expiry already past goes into the next bucket swept.
    const second = Math.max(Math.ceil(exp), this.#swept);
    let bucket = this.#buckets.get(second);
    if (!bucket) this.#buckets.set(second, (bucket = new Set()));
    bucket.add(conn);
    this.#of.set(conn, second);
  }

  /** Stop watching `conn` (it closed, or its new token has no `exp`). */
  unwatch(conn: Connection): void {
    const second = this.#of.get(conn);
    if (second === undefined) return;
    this.#of.delete(conn);
    const bucket = this.#buckets.get(second);
    bucket?.delete(conn);
    if (bucket?.size === 0) this.#buckets.delete(second);
  }

  /** Sessions watched. */
  get size(): number {
    return this.#of.size;
  }

  /** Stop the timer (node shutdown). */
  stop(): void {
    this.#sweeper.stop();
  }

  /** Close the sessions whose second has come; returns whether any are still watched. */
  #sweep(): boolean {
    const now = Math.floor(Date.now() / 1000);
    for (let s = this.#swept; s <= now; s++) {
      const bucket = this.#buckets.get(s);
      if (!bucket) continue;
      this.#buckets.delete(s);
      for (const conn of bucket) {
        this.#of.delete(conn);
        conn.disconnect(DisconnectCode.INVALID_TOKEN, 'token expired');
      }
    }
    // Buckets are swept from the last second seen, so a late tick skips nobody.
    this.#swept = now + 1;
    return this.#of.size > 0;
  }
}
