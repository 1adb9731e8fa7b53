/**
 * Redis session registry: one hash per user, `<prefix>sessions:{<user>}`, with a field per
 * session (`["<node>","<session>"]`, JSON) whose value is the node. A node's fields live as long
 * as its lease (engines/redis-lease.ts, set `<prefix>session-leases`): the node renews the lease
 * every third of the TTL with one command, whatever its number of sessions, and reads drop the
 * fields of nodes whose lease ran out, so a crashed node's sessions vanish within one TTL. Writes
 * are batched per tick into one script call per 500 users, issued together on an auto-pipelined
 * connection; each takes or renews the writing node's lease in the same step. A hash has no
 * expiry: it goes with its last field (a removal, or a read after its node died). Scripts use the
 * Redis clock, so nodes' clocks need not agree.
 */
import type { Redis } from 'ioredis';
import { type Logger, SILENT_LOGGER } from '../core/logger.js';
import { DEFAULT_SESSION_TTL_MS } from '../core/config.js';
import { type SessionEntry, type SessionRegistry, sortEntries } from '../core/sessions.js';
import { keyPrefix, LazyRedis, type RedisEngineOptions } from './redis-connection.js';
import { LEASE_LUA, LeaseHolders, NOW_LUA, RENEW_LUA, RENEW_SCRIPT } from './redis-lease.js';

/** Users written per script call. */
const WRITE_BATCH = 500;

/**
 * KEYS: user hashes, then the lease set. ARGV: ttl ms, the number of nodes k, k nodes (their
 * leases are taken or renewed), then per key a field count n followed by n (field, node) pairs.
 * Returns per node 1 if its lease was already running, else 0.
 */
const WRITE = `${NOW_LUA}${RENEW_LUA}
local leases = KEYS[#KEYS]
local ttl = tonumber(ARGV[1])
local k = tonumber(ARGV[2])
local was = {}
for j = 1, k do was[j] = renew(leases, ARGV[2 + j], ttl, now) and 1 or 0 end
local i = 3 + k
for x = 1, #KEYS - 1 do
  local key = KEYS[x]
  local n = tonumber(ARGV[i])
  for j = 1, n do redis.call('HSET', key, ARGV[i + 2 * j - 1], ARGV[i + 2 * j]) end
  redis.call('PERSIST', key)
  i = i + 2 * n + 1
end
return was
`;

/** KEYS[1] user hash, KEYS[2] lease set: drop the fields of nodes whose lease ran out, return the live ones. */
const LIST = `${NOW_LUA}${LEASE_LUA}
local all = redis.call('HGETALL', KEYS[1])
local live = {}
for i = 1, #all, 2 do
  if alive(KEYS[2], all[i + 1], now) then live[#live + 1] = all[i] else redis.call('HDEL', KEYS[1], all[i]) end
end
return live
`;

/** Options of `new RedisSessions()`. */
export interface RedisSessionsOptions extends RedisEngineOptions {
  /** Lifetime of a node's lease without a renewal, ms (default 30 s; renewed every third). */
  readonly ttlMs?: number;
  readonly logger?: Logger;
}

/** The Redis session registry. Connects on first use. */
export class RedisSessions implements SessionRegistry {
  readonly #prefix: string;
  readonly #leases: string;
  readonly #ttlMs: number;
  readonly #logger: Logger;
  readonly #redis: LazyRedis;
  /** Sessions this process added and still refreshes: user → fields (an array: users have few). */
  readonly #mine = new Map<string, string[]>();
  /** Sessions per node in `#mine`: the leases this process renews. */
  readonly #holders = new LeaseHolders();
  /** Nodes whose lease this process has taken once (a later lapse means entries to write again). */
  readonly #leased = new Set<string>();
  /** Every session must be written again (a lease lapsed and the rewrite has not succeeded yet). */
  #unrestored = false;
  /** Writes of this tick: user → fields to add / to delete. */
  readonly #adds = new Map<string, Set<string>>();
  readonly #dels = new Map<string, Set<string>>();
  #flushing: Promise<void> | undefined;
  #timer: NodeJS.Timeout | undefined;
  #failing = false;
  #closed = false;

  constructor(options: RedisSessionsOptions) {
    this.#redis = new LazyRedis(options.url, { connectionName: 'herald-sessions', label: 'Session registry', autoPipelining: true });
    this.#prefix = keyPrefix(options);
    this.#leases = `${this.#prefix}session-leases`;
    this.#ttlMs = options.ttlMs ?? DEFAULT_SESSION_TTL_MS;
    this.#logger = options.logger ?? SILENT_LOGGER;
  }

  add(user: string, node: string, session: string): void {
    if (this.#closed) return;
    const field = JSON.stringify([node, session]);
    const mine = this.#mine.get(user);
    if (!mine) this.#mine.set(user, [field]);
    else if (!mine.includes(field)) mine.push(field);
    else return;
    this.#holders.add(node);
    if (!this.#timer) {
      this.#timer = setInterval(() => void this.#renew(), Math.max(50, Math.floor(this.#ttlMs / 3)));
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
    this.#holders.remove(node);
    if (mine!.length === 0) this.#mine.delete(user);
    this.#adds.get(user)?.delete(field);
    setOf(this.#dels, user).add(field);
    this.#schedule();
  }

  async list(user: string): Promise<SessionEntry[]> {
    const fields = (await this.#redis.run((r) => r.eval(LIST, 2, this.#key(user), this.#leases))) as string[];
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
    this.#holders.clear();
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
      // Lost adds come back with the rewrite after the lease lapses; lost deletes go when their node's lease does.
      this.#fail(err);
    }
  }

  /** Renew the leases of the nodes this process writes for: one call, O(nodes). */
  async #renew(): Promise<void> {
    const nodes = this.#holders.nodes();
    if (nodes.length === 0) return;
    try {
      const was = (await this.#redis.run((r) => r.eval(RENEW_SCRIPT, 1, this.#leases, this.#ttlMs, ...nodes))) as number[];
      this.#ok();
      this.#leasesSeen(nodes, was, true);
    } catch (err) {
      this.#fail(err);
    }
  }

  /**
   * Leases were renewed (`was[i]`: 1 if node i's was running). A lease found lapsed by a renewal,
   * or by a write after this process had taken it, means entries readers may have dropped or
   * that never reached Redis: write every session again (O(sessions), only then). A write that
   * takes a node's lease for the first time carries its own entries.
   */
  #leasesSeen(nodes: readonly string[], was: readonly number[], renewal: boolean): void {
    nodes.forEach((node, i) => {
      if (was[i] !== 1 && (renewal || this.#leased.has(node))) this.#unrestored = true;
      this.#leased.add(node);
    });
    if (this.#unrestored) void this.#restore();
  }

  /** Write every session this process added again. */
  async #restore(): Promise<void> {
    this.#unrestored = false;
    try {
      await this.#redis.run((r) => Promise.all(this.#writes(r, [...this.#mine])));
      this.#ok();
    } catch (err) {
      this.#unrestored = true;
      this.#fail(err);
    }
  }

  /** WRITE script calls for `entries`, WRITE_BATCH users each; each call's lease answers go to `#leasesSeen`. */
  #writes(r: Redis, entries: Array<[string, readonly string[]]>): Array<Promise<unknown>> {
    const calls: Array<Promise<unknown>> = [];
    for (let i = 0; i < entries.length; i += WRITE_BATCH) {
      const batch = entries.slice(i, i + WRITE_BATCH).filter(([, fields]) => fields.length > 0);
      if (batch.length === 0) continue;
      const nodes = new Set<string>();
      const pairs: Array<string | number> = [];
      for (const [, fields] of batch) {
        pairs.push(fields.length);
        for (const field of fields) {
          const node = nodeOf(field);
          nodes.add(node);
          pairs.push(field, node);
        }
      }
      const leased = [...nodes];
      const keys = [...batch.map(([user]) => this.#key(user)), this.#leases];
      calls.push(
        r.eval(WRITE, keys.length, ...keys, this.#ttlMs, leased.length, ...leased, ...pairs).then((was) => this.#leasesSeen(leased, was as number[], false)),
      );
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

/** The node of a field written by `add` (`["<node>","<session>"]`). */
function nodeOf(field: string): string {
  return (JSON.parse(field) as [string, string])[0];
}

function setOf(map: Map<string, Set<string>>, key: string): Set<string> {
  let set = map.get(key);
  if (!set) map.set(key, (set = new Set()));
  return set;
}
