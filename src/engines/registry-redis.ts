/**
 * Node registry in Redis: a sorted set `<prefix>nodes` of node ids scored by expiry time (ms)
 * and a hash `<prefix>nodes:info` of their announcements. Expired ids are pruned on every read,
 * so a node that died without withdrawing disappears one TTL after its last heartbeat.
 * Expiry uses the Redis server's clock, so nodes' clocks need not agree.
 */
import type { NodeInfo, NodeRegistry } from '../core/nodes.js';
import { keyPrefix, LazyRedis, type RedisEngineOptions } from './redis-connection.js';

const ANNOUNCE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
return 1
`;

const LIST = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)
if #dead > 0 then
  redis.call('ZREM', KEYS[1], unpack(dead))
  redis.call('HDEL', KEYS[2], unpack(dead))
end
local ids = redis.call('ZRANGE', KEYS[1], 0, -1)
if #ids == 0 then return {} end
return redis.call('HMGET', KEYS[2], unpack(ids))
`;

/** Options of `new RedisNodeRegistry()`. */
export type RedisNodeRegistryOptions = RedisEngineOptions;

/** The Redis node registry. */
export class RedisNodeRegistry implements NodeRegistry {
  readonly #prefix: string;
  readonly #redis: LazyRedis;

  constructor(options: RedisNodeRegistryOptions) {
    this.#prefix = keyPrefix(options);
    this.#redis = new LazyRedis(options.url, { connectionName: 'herald-registry', label: 'Node registry' });
  }

  /** Connect now; rejects with HERALD_ERR_UNAVAILABLE when Redis cannot be reached. */
  async start(): Promise<void> {
    await this.#redis.connect();
  }

  async announce(info: NodeInfo, ttlMs: number): Promise<void> {
    const [set, hash] = this.#keys();
    await this.#redis.run((r) => r.eval(ANNOUNCE, 2, set, hash, info.id, ttlMs, JSON.stringify(info)));
  }

  async withdraw(id: string): Promise<void> {
    const [set, hash] = this.#keys();
    await this.#redis.run((r) => r.multi().zrem(set, id).hdel(hash, id).exec());
  }

  async list(): Promise<NodeInfo[]> {
    const [set, hash] = this.#keys();
    const rows = (await this.#redis.run((r) => r.eval(LIST, 2, set, hash))) as Array<string | null>;
    const out: NodeInfo[] = [];
    for (const row of rows) {
      if (!row) continue;
      try {
        out.push(JSON.parse(row) as NodeInfo);
      } catch {
        // a malformed entry is skipped; it expires with its node
      }
    }
    return out;
  }

  async close(): Promise<void> {
    await this.#redis.close();
  }

  #keys(): [string, string] {
    return [`${this.#prefix}nodes`, `${this.#prefix}nodes:info`];
  }
}
