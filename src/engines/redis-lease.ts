/**
 * Node leases in Redis: one sorted set per engine, `<prefix><name>`, whose members are node ids
 * scored with the expiry of their lease (ms on the Redis clock). A node renews its lease on a
 * timer, one command per node whatever the number of its users; the entries a node writes for
 * its users (sessions, presence) carry no expiry of their own and live exactly as long as the
 * lease: readers treat an entry whose node's lease is missing or past as gone, and delete it.
 * So a node that dies without a clean shutdown takes its users offline within one TTL, while a
 * live node's idle users cost nothing per refresh.
 */

/**
 * Lua: the lease test, for scripts that get the lease set's key. `alive(leases, node, now)` is
 * true while `node`'s lease runs.
 */
export const LEASE_LUA = `
local function alive(leases, node, now)
  local exp = redis.call('ZSCORE', leases, node)
  return exp ~= false and exp ~= nil and tonumber(exp) > now
end
`;

/**
 * Lua: renew (or take) `node`'s lease until now + ttl: `renew(leases, node, ttl, now)`. Returns
 * true when the lease was running before (false: new, or lapsed, e.g. Redis lost its data or
 * the node could not reach it for a whole TTL, in which case readers may have dropped its
 * entries and the node must write them again). Leases dead for ten TTLs are removed.
 */
export const RENEW_LUA = `
local function renew(leases, node, ttl, now)
  local exp = redis.call('ZSCORE', leases, node)
  local was = exp ~= false and exp ~= nil and tonumber(exp) > now
  redis.call('ZADD', leases, now + ttl, node)
  redis.call('ZREMRANGEBYSCORE', leases, '-inf', now - 10 * ttl)
  return was
end
`;

/** Lua: `now`, ms on the Redis clock. */
export const NOW_LUA = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
`;

/** KEYS[1] lease set. ARGV: ttl ms, then node ids. Returns per node 1 if its lease was running, else 0. */
export const RENEW_SCRIPT = `${NOW_LUA}${RENEW_LUA}
local out = {}
for i = 2, #ARGV do out[i - 1] = renew(KEYS[1], ARGV[i], tonumber(ARGV[1]), now) and 1 or 0 end
return out
`;

/** How many users (or entries) this process holds per node: the nodes whose leases it renews. */
export class LeaseHolders {
  readonly #count = new Map<string, number>();

  /** One more entry on `node`. */
  add(node: string): void {
    this.#count.set(node, (this.#count.get(node) ?? 0) + 1);
  }

  /** One entry fewer on `node`; the node is forgotten at zero. */
  remove(node: string): void {
    const n = (this.#count.get(node) ?? 0) - 1;
    if (n > 0) this.#count.set(node, n);
    else this.#count.delete(node);
  }

  /** Nodes holding at least one entry. */
  nodes(): string[] {
    return [...this.#count.keys()];
  }

  clear(): void {
    this.#count.clear();
  }
}
