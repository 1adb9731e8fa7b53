/**
 * Redis presence engine (see core/im/presence.ts): one hash per user, `<prefix>presence:{<user>}`,
 * with a field `n:<node>` per node holding a session, plus `chosen`, `status` and `lastSeen`.
 * A node's fields live as long as its lease (engines/redis-lease.ts, set `<prefix>presence-leases`):
 * the node renews the lease every third of the TTL with one command, whatever its number of
 * users; readers drop the fields of nodes whose lease ran out, so a crashed node's users go
 * offline within one TTL without a clean shutdown. A user's hash has no expiry while a node
 * holds a session for it, and expires 30 days after it was last seen otherwise. Scripts use the
 * Redis clock, so nodes' clocks need not agree.
 */
import type { ChosenState, PresenceRecord, PresenceState, PresenceStore } from '../core/im/presence.js';
import { keyPrefix, LazyRedis, type RedisEngineOptions } from './redis-connection.js';
import { LEASE_LUA, LeaseHolders, NOW_LUA, RENEW_LUA, RENEW_SCRIPT } from './redis-lease.js';

/** Default lifetime of a node's lease without a renewal, ms. */
export const DEFAULT_PRESENCE_TTL_MS = 30_000;
/** A user's hash (state, status, lastSeen) lives this long after its last session ended, ms. */
const USER_KEY_TTL_MS = 30 * 24 * 3_600_000;
/** Sessions written again per script call after a lapsed lease. */
const RESTORE_BATCH = 500;

/**
 * Shared Lua: now, the lease test, and the aggregated record {live, chosen, status, lastSeen} of
 * a user hash after dropping the fields of nodes whose lease ran out (a hash left with no live
 * node starts its 30-day expiry).
 */
const COMMON = `${NOW_LUA}${LEASE_LUA}${RENEW_LUA}
local function record(key, leases)
  local all = redis.call('HGETALL', key)
  local live, chosen, status, seen, pruned = 0, false, false, false, false
  for i = 1, #all, 2 do
    local f, v = all[i], all[i + 1]
    if string.sub(f, 1, 2) == 'n:' then
      if alive(leases, string.sub(f, 3), now) then live = live + 1 else redis.call('HDEL', key, f); pruned = true end
    elseif f == 'chosen' then chosen = v
    elseif f == 'status' then status = v
    elseif f == 'lastSeen' then seen = v end
  end
  if pruned and live == 0 then redis.call('PEXPIRE', key, ${USER_KEY_TTL_MS}) end
  return {live, chosen, status, seen}
end
`;

/**
 * KEYS[1] user hash, KEYS[2] lease set. ARGV: node, connected ('1'/'0'), ttl ms. Connecting
 * takes or renews the node's lease in the same step, so no reader can see the field without it.
 * Returns the record plus, when connecting, 1 if the lease was already running (else 0).
 */
const SET_CONNECTED = `${COMMON}
local key = KEYS[1]
local field = 'n:' .. ARGV[1]
local was = 1
if ARGV[2] == '1' then
  if not renew(KEYS[2], ARGV[1], tonumber(ARGV[3]), now) then was = 0 end
  redis.call('HSET', key, field, now, 'lastSeen', now)
  redis.call('PERSIST', key)
  local r = record(key, KEYS[2])
  r[5] = was
  return r
end
local had = redis.call('HDEL', key, field)
local r = record(key, KEYS[2])
if r[1] == 0 then
  if had == 1 then
    redis.call('HSET', key, 'lastSeen', now)
    r[4] = now
  end
  redis.call('PEXPIRE', key, ${USER_KEY_TTL_MS})
end
r[5] = was
return r
`;

/** KEYS[1] user hash, KEYS[2] lease set. ARGV: chosen, status ('' with ARGV[3]='0' clears), has status. */
const SET_CHOSEN = `${COMMON}
local key = KEYS[1]
redis.call('HSET', key, 'chosen', ARGV[1])
if ARGV[3] == '1' then redis.call('HSET', key, 'status', ARGV[2]) else redis.call('HDEL', key, 'status') end
local r = record(key, KEYS[2])
if r[1] == 0 then redis.call('PEXPIRE', key, ${USER_KEY_TTL_MS}) end
return r
`;

/** KEYS: user hashes, then the lease set. */
const GET = `${COMMON}
local leases = KEYS[#KEYS]
local out = {}
for i = 1, #KEYS - 1 do out[i] = record(KEYS[i], leases) end
return out
`;

/**
 * KEYS: user hashes, then the lease set. ARGV: node, ttl ms. Writes the node's sessions again
 * after its lease lapsed (readers may have dropped them: Redis lost its data, or the node could
 * not reach it for a whole TTL), and renews the lease.
 */
const RESTORE = `${COMMON}
local leases = KEYS[#KEYS]
renew(leases, ARGV[1], tonumber(ARGV[2]), now)
local field = 'n:' .. ARGV[1]
for i = 1, #KEYS - 1 do
  redis.call('HSET', KEYS[i], field, now)
  redis.call('PERSIST', KEYS[i])
end
return #KEYS - 1
`;

/** Options of `new RedisPresence()`. */
export interface RedisPresenceOptions extends RedisEngineOptions {
  /** Lifetime of a node's lease without a renewal, ms (default 30 s; renewed every third). */
  readonly ttlMs?: number;
}

type Raw = [number, string | false | null, string | false | null, string | false | null, number?];

/** The Redis presence engine. Connects on first use. */
export class RedisPresence implements PresenceStore {
  readonly #prefix: string;
  readonly #leases: string;
  readonly #ttlMs: number;
  readonly #redis: LazyRedis;
  /** Sessions this process reported: user → nodes. */
  readonly #mine = new Map<string, Set<string>>();
  /** Users per node in `#mine`: the leases this process renews. */
  readonly #holders = new LeaseHolders();
  /** Nodes whose lease this process has taken once (a later lapse means entries to write again). */
  readonly #leased = new Set<string>();
  /** Nodes whose entries are still to be written again (a restore that failed). */
  readonly #unrestored = new Set<string>();
  #timer: NodeJS.Timeout | undefined;

  constructor(options: RedisPresenceOptions) {
    this.#prefix = keyPrefix(options);
    this.#leases = `${this.#prefix}presence-leases`;
    this.#ttlMs = options.ttlMs ?? DEFAULT_PRESENCE_TTL_MS;
    this.#redis = new LazyRedis(options.url, {
      connectionName: 'herald-presence',
      label: 'Presence engine',
      onConnect: () => {
        this.#timer = setInterval(() => void this.#renew(), Math.max(50, Math.floor(this.#ttlMs / 3)));
        this.#timer.unref();
      },
    });
  }

  async setConnected(user: string, node: string, connected: boolean): Promise<PresenceRecord> {
    if (connected) {
      let nodes = this.#mine.get(user);
      if (!nodes) this.#mine.set(user, (nodes = new Set()));
      if (!nodes.has(node)) {
        nodes.add(node);
        this.#holders.add(node);
      }
    } else {
      const nodes = this.#mine.get(user);
      if (nodes?.delete(node)) this.#holders.remove(node);
      if (nodes?.size === 0) this.#mine.delete(user);
    }
    const raw = (await this.#redis.run((r) => r.eval(SET_CONNECTED, 2, this.#key(user), this.#leases, node, connected ? '1' : '0', this.#ttlMs))) as Raw;
    if (connected) this.#leaseSeen(node, raw[4] === 1, false);
    return toRecord(user, raw);
  }

  async setChosen(user: string, state: ChosenState, status?: string): Promise<PresenceRecord> {
    const raw = (await this.#redis.run((r) =>
      r.eval(SET_CHOSEN, 2, this.#key(user), this.#leases, state, status ?? '', status === undefined ? '0' : '1'),
    )) as Raw;
    return toRecord(user, raw);
  }

  async get(users: readonly string[]): Promise<PresenceRecord[]> {
    if (users.length === 0) return [];
    const raws = (await this.#redis.run((r) => r.eval(GET, users.length + 1, ...users.map((u) => this.#key(u)), this.#leases))) as Raw[];
    return users.map((u, i) => toRecord(u, raws[i]!));
  }

  async close(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#mine.clear();
    this.#holders.clear();
    await this.#redis.close();
  }

  #key(user: string): string {
    return `${this.#prefix}presence:{${user}}`;
  }

  /**
   * A lease was renewed. Found lapsed by a renewal, or by a connect after this process had taken
   * it: write the node's sessions again (readers may have dropped them, or they never reached
   * Redis). A connect that takes a node's lease for the first time carries its own entry.
   */
  #leaseSeen(node: string, wasRunning: boolean, renewal: boolean): void {
    if (!wasRunning && (renewal || this.#leased.has(node))) void this.#restore(node);
    this.#leased.add(node);
  }

  /** Renew the leases of the nodes this process reports for: one call, O(nodes). Failures wait for the next round. */
  async #renew(): Promise<void> {
    const nodes = this.#holders.nodes();
    if (nodes.length === 0) return;
    try {
      const was = (await this.#redis.run((r) => r.eval(RENEW_SCRIPT, 1, this.#leases, this.#ttlMs, ...nodes))) as number[];
      nodes.forEach((node, i) => this.#leaseSeen(node, was[i] === 1 && !this.#unrestored.has(node), true));
    } catch {
      // Redis down: the lease may lapse meanwhile; the first renewal after reconnecting restores the entries.
    }
  }

  /** Write every session this process reported on `node` again (only after its lease lapsed). */
  async #restore(node: string): Promise<void> {
    this.#unrestored.delete(node);
    const keys: string[] = [];
    for (const [user, nodes] of this.#mine) if (nodes.has(node)) keys.push(this.#key(user));
    try {
      for (let i = 0; i < keys.length; i += RESTORE_BATCH) {
        const batch = keys.slice(i, i + RESTORE_BATCH);
        await this.#redis.run((r) => r.eval(RESTORE, batch.length + 1, ...batch, this.#leases, node, this.#ttlMs));
      }
    } catch {
      // Redis down again: the next renewal tries again.
      this.#unrestored.add(node);
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
