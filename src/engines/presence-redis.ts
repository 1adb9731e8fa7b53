/**
 * Redis presence engine (see core/im/presence.ts): one hash per user, `<prefix>presence:{<user>}`,
 * with a field `n:<node>` per node holding a session (value: expiry, ms on the Redis clock), plus
 * `chosen`, `status` and `lastSeen`. Each node refreshes the sessions it reported every third of
 * the TTL; a crashed node stops refreshing, so its users go offline within one TTL without a
 * clean shutdown. Scripts use the Redis clock, so nodes' clocks need not agree.
 */
import type { ChosenState, PresenceRecord, PresenceState, PresenceStore } from '../core/im/presence.js';
import { keyPrefix, LazyRedis, type RedisEngineOptions } from './redis-connection.js';

/** Default lifetime of a node's session entry without a refresh, ms. */
export const DEFAULT_PRESENCE_TTL_MS = 30_000;
/** A user's hash (state, status, lastSeen) lives this long after its last change, ms. */
const USER_KEY_TTL_MS = 30 * 24 * 3_600_000;
/** Sessions refreshed per script call. */
const REFRESH_BATCH = 500;

/** Shared Lua: now, and the aggregated record {live, chosen, status, lastSeen} of a user hash after pruning. */
const COMMON = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function record(key)
  local all = redis.call('HGETALL', key)
  local live, chosen, status, seen = 0, false, false, false
  for i = 1, #all, 2 do
    local f, v = all[i], all[i + 1]
    if string.sub(f, 1, 2) == 'n:' then
      if tonumber(v) > now then live = live + 1 else redis.call('HDEL', key, f) end
    elseif f == 'chosen' then chosen = v
    elseif f == 'status' then status = v
    elseif f == 'lastSeen' then seen = v end
  end
  return {live, chosen, status, seen}
end
`;

/** KEYS[1] user hash. ARGV: node, connected ('1'/'0'), ttl ms, key ttl ms. */
const SET_CONNECTED = `${COMMON}
local key = KEYS[1]
local field = 'n:' .. ARGV[1]
if ARGV[2] == '1' then
  redis.call('HSET', key, field, now + tonumber(ARGV[3]), 'lastSeen', now)
else
  local had = redis.call('HDEL', key, field)
  local r = record(key)
  if had == 1 and r[1] == 0 then redis.call('HSET', key, 'lastSeen', now) end
end
redis.call('PEXPIRE', key, ARGV[4])
return record(key)
`;

/** KEYS[1] user hash. ARGV: chosen, status ('' with ARGV[3]='0' clears), has status, key ttl ms. */
const SET_CHOSEN = `${COMMON}
local key = KEYS[1]
redis.call('HSET', key, 'chosen', ARGV[1])
if ARGV[3] == '1' then redis.call('HSET', key, 'status', ARGV[2]) else redis.call('HDEL', key, 'status') end
redis.call('PEXPIRE', key, ARGV[4])
return record(key)
`;

/** KEYS: user hashes. */
const GET = `${COMMON}
local out = {}
for i, key in ipairs(KEYS) do out[i] = record(key) end
return out
`;

/**
 * KEYS: user hashes. ARGV: node, ttl ms, key ttl ms. Writes the node's sessions again (so they
 * come back after Redis lost them, e.g. a restart without persistence).
 */
const REFRESH = `${COMMON}
local field = 'n:' .. ARGV[1]
for _, key in ipairs(KEYS) do
  redis.call('HSET', key, field, now + tonumber(ARGV[2]))
  redis.call('PEXPIRE', key, ARGV[3])
end
return #KEYS
`;

/** Options of `new RedisPresence()`. */
export interface RedisPresenceOptions extends RedisEngineOptions {
  /** Lifetime of a session entry without a refresh, ms (default 30 s; refreshed every third). */
  readonly ttlMs?: number;
}

type Raw = [number, string | false | null, string | false | null, string | false | null];

/** The Redis presence engine. Connects on first use. */
export class RedisPresence implements PresenceStore {
  readonly #prefix: string;
  readonly #ttlMs: number;
  readonly #redis: LazyRedis;
  /** Sessions this process reported: user → nodes. */
  readonly #mine = new Map<string, Set<string>>();
  #timer: NodeJS.Timeout | undefined;

  constructor(options: RedisPresenceOptions) {
    this.#prefix = keyPrefix(options);
    this.#ttlMs = options.ttlMs ?? DEFAULT_PRESENCE_TTL_MS;
    this.#redis = new LazyRedis(options.url, {
      connectionName: 'herald-presence',
      label: 'Presence engine',
      onConnect: () => {
        this.#timer = setInterval(() => void this.#refresh(), Math.max(50, Math.floor(this.#ttlMs / 3)));
        this.#timer.unref();
      },
    });
  }

  async setConnected(user: string, node: string, connected: boolean): Promise<PresenceRecord> {
    if (connected) {
      let nodes = this.#mine.get(user);
      if (!nodes) this.#mine.set(user, (nodes = new Set()));
      nodes.add(node);
    } else {
      const nodes = this.#mine.get(user);
      nodes?.delete(node);
      if (nodes?.size === 0) this.#mine.delete(user);
    }
    const raw = (await this.#redis.run((r) => r.eval(SET_CONNECTED, 1, this.#key(user), node, connected ? '1' : '0', this.#ttlMs, USER_KEY_TTL_MS))) as Raw;
    return toRecord(user, raw);
  }

  async setChosen(user: string, state: ChosenState, status?: string): Promise<PresenceRecord> {
    const raw = (await this.#redis.run((r) =>
      r.eval(SET_CHOSEN, 1, this.#key(user), state, status ?? '', status === undefined ? '0' : '1', USER_KEY_TTL_MS),
    )) as Raw;
    return toRecord(user, raw);
  }

  async get(users: readonly string[]): Promise<PresenceRecord[]> {
    if (users.length === 0) return [];
    const raws = (await this.#redis.run((r) => r.eval(GET, users.length, ...users.map((u) => this.#key(u))))) as Raw[];
    return users.map((u, i) => toRecord(u, raws[i]!));
  }

  async close(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#mine.clear();
    await this.#redis.close();
  }

  #key(user: string): string {
    return `${this.#prefix}presence:{${user}}`;
  }

  /** Refresh every session this process reported (batched). Failures wait for the next round. */
  async #refresh(): Promise<void> {
    const byNode = new Map<string, string[]>();
    for (const [user, nodes] of this.#mine) {
      for (const node of nodes) {
        let list = byNode.get(node);
        if (!list) byNode.set(node, (list = []));
        list.push(this.#key(user));
      }
    }
    try {
      for (const [node, keys] of byNode) {
        for (let i = 0; i < keys.length; i += REFRESH_BATCH) {
          const batch = keys.slice(i, i + REFRESH_BATCH);
          await this.#redis.run((r) => r.eval(REFRESH, batch.length, ...batch, node, this.#ttlMs, USER_KEY_TTL_MS));
        }
      }
    } catch {
      // Redis down: entries may expire meanwhile; the first refresh after reconnecting restores them.
    }
  }
}

function toRecord(user: string, raw: Raw): PresenceRecord {
  const [live, chosen, status, seen] = raw;
  const state: PresenceState = Number(live) > 0 ? ((chosen || 'online') as ChosenState) : 'offline';
  return {
    user,
    state,
    ...(status ? { status } : {}),
    ...(seen ? { lastSeen: Number(seen) } : {}),
  };
}
