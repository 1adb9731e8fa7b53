/**
 * The backend's decision cache: connect and subscribe decisions and contact lists, each kept for
 * `backend.cacheTtlMs`, at most MAX_CACHE_ENTRIES (least recently used first out, never a full
 * clear). Concurrent lookups of one key share one load: a reconnect storm of N clients with one
 * credential makes one hook call, not N. A load that resolves undefined (a hook that failed
 * open) or rejects is not cached.
 */
import { LRUCache } from 'lru-cache';

/** Most cached entries; past it the least recently used go. */
export const MAX_CACHE_ENTRIES = 100_000;

type Load = () => Promise<object | undefined>;

/** A TTL + LRU cache with in-flight de-duplication. */
export class DecisionCache {
  readonly #cache: LRUCache<string, object, Load> | undefined;

  /** `ttlMs` 0 = no cache: every lookup loads. */
  constructor(ttlMs: number, max = MAX_CACHE_ENTRIES) {
    this.#cache =
      ttlMs > 0
        ? new LRUCache<string, object, Load>({
            max,
            ttl: ttlMs,
            // A load that an invalidation overtakes still answers its callers (and is kept), as a synchronous cache would.
            ignoreFetchAbort: true,
            fetchMethod: (_key, _stale, { context }) => context(),
          })
        : undefined;
  }

  /**
   * The cached value of `key`, or the result of `load` (shared with every concurrent lookup of
   * `key`, and cached when defined).
   */
  get<T extends object>(key: string, load: () => Promise<T | undefined>): Promise<T | undefined> {
    if (!this.#cache) return load();
    return this.#cache.fetch(key, { context: load }) as Promise<T | undefined>;
  }

  /** Forget every entry whose key `matches` (all when omitted). */
  invalidate(matches?: (key: string) => boolean): void {
    if (!this.#cache) return;
    if (!matches) return this.#cache.clear();
    for (const key of [...this.#cache.keys()]) if (matches(key)) this.#cache.delete(key);
  }

  /** Entries kept (for tests and stats). */
  get size(): number {
    return this.#cache?.size ?? 0;
  }
}
