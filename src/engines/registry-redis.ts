/**
 * Node registry in Redis: a sorted set `<prefix>nodes` of node ids scored by expiry time (ms)
 * and a hash `<prefix>nodes:info` of their announcements. Expired ids are pruned on every read,
 * so a node that died without withdrawing disappears one TTL after its last heartbeat.
 * Expiry uses the Redis server's clock, so nodes' clocks need not agree.
 */
import type { Redis } from 'ioredis';
import { DEFAULT_REDIS_PREFIX } from '../core/config.js';
import { HeraldError } from '../core/errors.js';
import type { NodeInfo, NodeRegistry } from '../core/nodes.js';

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
export interface RedisNodeRegistryOptions {
  readonly url: string;
  readonly prefix?: string;
}

/** The Redis node registry. */
export class RedisNodeRegistry implements NodeRegistry {
  readonly #url: string;
  readonly #prefix: string;
  #redis: Redis | undefined;

  constructor(options: RedisNodeRegistryOptions) {
    this.#url = options.url;
    this.#prefix = options.prefix ?? DEFAULT_REDIS_PREFIX;
  }

  async start(): Promise<void> {
    if (this.#redis) return;
    const { Redis } = await import('ioredis');
    this.#redis = new Redis(this.#url, {
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      retryStrategy: (times) => Math.min(50 * times, 1_000),
      connectionName: 'herald-registry',
    });
    this.#redis.on('error', () => undefined); // reported through rejected calls
    try {
      await this.#redis.connect();
    } catch (err) {
      this.#redis.disconnect();
      throw new HeraldError('HERALD_ERR_UNAVAILABLE', `Cannot connect to Redis: ${(err as Error).message}`, { cause: err });
    }
  }

  async announce(info: NodeInfo, ttlMs: number): Promise<void> {
    await this.#call((r) => r.eval(ANNOUNCE, 2, this.#keys()[0], this.#keys()[1], info.id, ttlMs, JSON.stringify(info)));
  }

  async withdraw(id: string): Promise<void> {
    const [set, hash] = this.#keys();
    await this.#call((r) => r.multi().zrem(set, id).hdel(hash, id).exec());
  }

  async list(): Promise<NodeInfo[]> {
    const [set, hash] = this.#keys();
    const rows = (await this.#call((r) => r.eval(LIST, 2, set, hash))) as Array<string | null>;
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
    const r = this.#redis;
    this.#redis = undefined;
    if (r?.status === 'ready') await r.quit().catch(() => r.disconnect());
    else r?.disconnect();
  }

  #keys(): [string, string] {
    return [`${this.#prefix}nodes`, `${this.#prefix}nodes:info`];
  }

  async #call<T>(fn: (r: Redis) => Promise<T>): Promise<T> {
    const r = this.#redis;
    if (!r || r.status !== 'ready') throw new HeraldError('HERALD_ERR_UNAVAILABLE', 'Redis is unavailable');
    try {
      return await fn(r);
    } catch (err) {
      throw new HeraldError('HERALD_ERR_UNAVAILABLE', 'Redis is unavailable', { cause: err });
    }
  }
}
