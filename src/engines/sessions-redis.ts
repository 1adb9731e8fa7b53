/**
 * Redis session registry: one hash per user, `<prefix>sessions:{<user>}`, with a field per
 * session (`["<node>","<session>"]`, JSON) whose value is its expiry (ms on the Redis clock).
 * Writes are batched per tick into one script call per 500 users, issued together on an
 * auto-pipelined connection; every third of the TTL the process rewrites all the sessions it
 * added the same way. Reads drop expired fields, so a crashed node's sessions vanish within one
 * TTL; the hash itself expires one TTL after its last write. Scripts use the Redis clock, so
 * nodes' clocks need not agree.
 */
import type { Redis } from 'ioredis';
import { type Logger, SILENT_LOGGER } from '../core/logger.js';
import { DEFAULT_REDIS_PREFIX, DEFAULT_SESSION_TTL_MS } from '../core/config.js';
import { type SessionEntry, type SessionRegistry, sortEntries } from '../core/sessions.js';
import { LazyRedis } from './redis-lazy.js';

/** Users written per script call. */
const WRITE_BATCH = 500;

/** KEYS: user hashes. ARGV: ttl ms, then per key a field count followed by its fields. */
const WRITE = `
local t = redis.call('TIME')
local expires = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[1])
local i = 2
for _, key in ipairs(KEYS) do
  local n = tonumber(ARGV[i])
  for j = 1, n do redis.call('HSET', key, ARGV[i + j], expires) end
  redis.call('PEXPIRE', key, ARGV[1])
  i = i + n + 1
end
return #KEYS
`;

/** KEYS[1] user hash: drop expired fields, return the live ones. */
const LIST = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local all = redis.call('HGETALL', KEYS[1])
local live = {}
for i = 1, #all, 2 do
  if tonumber(all[i + 1]) > now then live[#live + 1] = all[i] else redis.call('HDEL', KEYS[1], all[i]) end
end
return live
`;

/** Options of `new RedisSessions()`. */
export interface RedisSessionsOptions {
  readonly url: string;
  readonly prefix?: string;
  /** Lifetime of an entry without a refresh, ms (default 30 s; refreshed every third). */
  readonly ttlMs?: number;
  readonly logger?: Logger;
}

/** The Redis session registry. Connects on first use. */
export class RedisSessions implements SessionRegistry {
  readonly #prefix: string;
  readonly #ttlMs: number;
  readonly #logger: Logger;
  readonly #redis: LazyRedis;
  /** Sessions this process added and still refreshes: user → fields (an array: users have few). */
  readonly #mine = new Map<string, string[]>();
  /** Writes of this tick: user → fields to add / to delete. */
  readonly #adds = new Map<string, Set<string>>();
  readonly #dels = new Map<string, Set<string>>();
  #flushing: Promise<void> | undefined;
  #timer: NodeJS.Timeout | undefined;
  #failing = false;
  #closed = false;

  constructor(options: RedisSessionsOptions) {
    this.#redis = new LazyRedis(options.url, { connectionName: 'herald-sessions', label: 'Session registry', autoPipelining: true });
    this.#prefix = options.prefix ?? DEFAULT_REDIS_PREFIX;
    this.#ttlMs = options.ttlMs ?? DEFAULT_SESSION_TTL_MS;
    this.#logger = options.logger ?? SILENT_LOGGER;
  }

  add(user: string, node: string, session: string): void {
    if (this.#closed) return;
    const field = JSON.stringify([node, session]);
    const mine = this.#mine.get(user);
    if (!mine) this.#mine.set(user, [field]);
    else if (!mine.includes(field)) mine.push(field);
    if (!this.#timer) {
      this.#timer = setInterval(() => void this.#refresh(), Math.max(50, Math.floor(this.#ttlMs / 3)));
      this.#timer.unref();
    }
    this.#dels.get(user)?.delete(field);
    setOf(this.#adds, user).add(field);
    this.#schedule();
  }

  remove(user: string, node: string, session: string): void {
    const field = JSON.stringify([node, session]);
    const mine = this.#mine.get(user);
    const i = mine?.indexOf(field) ?? -1;
    if (i < 0) return;
    mine!.splice(i, 1);
    if (mine!.length === 0) this.#mine.delete(user);
    this.#adds.get(user)?.delete(field);
    setOf(this.#dels, user).add(field);
    this.#schedule();
  }

  async list(user: string): Promise<SessionEntry[]> {
    const fields = (await this.#redis.run((r) => r.eval(LIST, 1, this.#key(user)))) as string[];
    const out: SessionEntry[] = [];
    for (const f of fields) {
      try {
        const [node, session] = JSON.parse(f) as [unknown, unknown];
        if (typeof node === 'string' && typeof session === 'string') out.push({ node, session });
      } catch {
        // not ours (a foreign writer under the prefix): skipped, it expires with the hash
      }
    }
    return sortEntries(out);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    if (this.#timer) clearInterval(this.#timer);
    // Connections were closed before the registry: their removals are pending, write them.
    await this.#flushing;
    if (this.#adds.size + this.#dels.size > 0) await this.#flush();
    this.#closed = true;
    this.#mine.clear();
    await this.#redis.close();
  }

  #key(user: string): string {
    return `${this.#prefix}sessions:{${user}}`;
  }

  /** Flush the writes of this tick once it ends. */
  #schedule(): void {
    if (this.#flushing) return;
    this.#flushing = new Promise<void>((resolve) => setImmediate(resolve)).then(() => {
      this.#flushing = undefined;
      return this.#flush();
    });
  }

  /** Write pending adds (script) and deletes (HDEL), pipelined. Failures are logged once per outage. */
  async #flush(): Promise<void> {
    const adds = [...this.#adds].map(([user, fields]): [string, string[]] => [user, [...fields]]);
    const dels = [...this.#dels];
    this.#adds.clear();
    this.#dels.clear();
    try {
      await this.#redis.run((r) => Promise.all([...this.#writes(r, adds), ...dels.map(([user, fields]) => r.hdel(this.#key(user), ...fields))]));
      this.#ok();
    } catch (err) {
      // Lost adds come back with the next refresh; lost deletes expire by TTL.
      this.#fail(err);
    }
  }

  /** Rewrite every session this process added (the TTL refresh). */
  async #refresh(): Promise<void> {
    if (this.#mine.size === 0) return;
    try {
      await this.#redis.run((r) => Promise.all(this.#writes(r, [...this.#mine])));
      this.#ok();
    } catch (err) {
      this.#fail(err);
    }
  }

  /** WRITE script calls for `entries`, WRITE_BATCH users each. */
  #writes(r: Redis, entries: Array<[string, readonly string[]]>): Array<Promise<unknown>> {
    const calls: Array<Promise<unknown>> = [];
    for (let i = 0; i < entries.length; i += WRITE_BATCH) {
      const batch = entries.slice(i, i + WRITE_BATCH).filter(([, fields]) => fields.length > 0);
      if (batch.length === 0) continue;
      const args: Array<string | number> = [this.#ttlMs];
      for (const [, fields] of batch) args.push(fields.length, ...fields);
      calls.push(r.eval(WRITE, batch.length, ...batch.map(([user]) => this.#key(user)), ...args));
    }
    return calls;
  }

  #ok(): void {
    if (this.#failing) this.#logger.info('session registry writes restored');
    this.#failing = false;
  }

  #fail(err: unknown): void {
    if (!this.#failing) this.#logger.warn({ err: (err as Error).message }, 'session registry write failed');
    this.#failing = true;
  }
}

function setOf(map: Map<string, Set<string>>, key: string): Set<string> {
  let set = map.get(key);
  if (!set) map.set(key, (set = new Set()));
  return set;
}
