/**
 * Redis resumption store: one hash per resumption id, `<prefix>resume:{<id>}`, with the record's
 * fields (`user`, `node`, `session`, `state`, `data`) and `claimedBy` while a node claims it. A
 * write and a claim are one script each, so the owner check and the change are atomic. Every
 * hash has an expiry: a `live` one is renewed by the process that wrote it (one pipelined
 * PEXPIRE per record, every third of the TTL), so a crashed node's records lapse within one TTL;
 * the others expire `ttlMs` after their last write.
 */
import { type Logger, SILENT_LOGGER } from '../core/logger.js';
import type { ResumptionClaim, ResumptionRecord, ResumptionState, ResumptionStore } from '../core/resumptions.js';
import { keyPrefix, LazyRedis, type RedisEngineOptions } from './redis-connection.js';

/**
 * KEYS[1] record. ARGV: user, node, session, state, data, ttl ms. Refuses (0) when another node
 * owns the record and has not been claimed by this one; a write by the claimer ends the claim.
 */
const PUT = `
local cur = redis.call('HMGET', KEYS[1], 'node', 'claimedBy')
if cur[1] and cur[1] ~= ARGV[2] and cur[2] ~= ARGV[2] then return 0 end
if cur[1] ~= ARGV[2] then redis.call('HDEL', KEYS[1], 'claimedBy') end
redis.call('HSET', KEYS[1], 'user', ARGV[1], 'node', ARGV[2], 'session', ARGV[3], 'state', ARGV[4], 'data', ARGV[5])
redis.call('PEXPIRE', KEYS[1], ARGV[6])
return 1
`;

/** KEYS[1] record. ARGV: user, node. The record's fields when it is the user's (claimed unless ended), else nil. */
const CLAIM = `
local r = redis.call('HMGET', KEYS[1], 'user', 'node', 'session', 'state', 'data')
if not r[1] or r[1] ~= ARGV[1] then return false end
if r[4] ~= 'ended' then redis.call('HSET', KEYS[1], 'claimedBy', ARGV[2]) end
return r
`;

const FIELDS = ['user', 'node', 'session', 'state', 'data'] as const;
const STATES = new Set<string>(['live', 'parked', 'ended']);

/** The Redis resumption store. Connects on first use. */
export class RedisResumptions implements ResumptionStore {
  readonly #prefix: string;
  readonly #logger: Logger;
  readonly #redis: LazyRedis;
  /** Live records this process wrote last, with their TTL: renewed on the timer. */
  readonly #held = new Map<string, number>();
  readonly #inflight = new Set<Promise<boolean>>();
  #timer: NodeJS.Timeout | undefined;
  #renewEveryMs = Infinity;
  #failing = false;
  #closed = false;

  constructor(options: RedisEngineOptions & { readonly logger?: Logger }) {
    this.#redis = new LazyRedis(options.url, { connectionName: 'herald-resumptions', label: 'Resumption store', autoPipelining: true });
    this.#prefix = keyPrefix(options);
    this.#logger = options.logger ?? SILENT_LOGGER;
  }

  put(id: string, record: ResumptionRecord, ttlMs: number): Promise<boolean> {
    if (this.#closed) return Promise.resolve(false);
    const p = this.#put(id, record, ttlMs);
    this.#inflight.add(p);
    void p.finally(() => this.#inflight.delete(p));
    return p;
  }

  async claim(id: string, user: string, node: string): Promise<ResumptionClaim> {
    const r = (await this.#redis.run((c) => c.eval(CLAIM, 1, this.#key(id), user, node))) as Array<string | null> | null;
    const record = r && recordOf(r);
    if (!record) return { type: 'unknown' };
    return record.state === 'ended' ? { type: 'ended', record } : { type: 'claimed', record };
  }

  async get(id: string): Promise<ResumptionRecord | undefined> {
    const r = await this.#redis.run((c) => c.hmget(this.#key(id), ...FIELDS));
    return recordOf(r);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#timer) clearInterval(this.#timer);
    await Promise.all(this.#inflight);
    this.#held.clear();
    await this.#redis.close();
  }

  async #put(id: string, record: ResumptionRecord, ttlMs: number): Promise<boolean> {
    const { user, node, session, state, data } = record;
    let ok: boolean;
    try {
      ok = (await this.#redis.run((c) => c.eval(PUT, 1, this.#key(id), user, node, session, state, data, ttlMs))) === 1;
      this.#ok();
    } catch (err) {
      this.#fail(err);
      return false;
    }
    if (ok && state === 'live') this.#hold(id, ttlMs);
    else this.#held.delete(id);
    return ok;
  }

  #hold(id: string, ttlMs: number): void {
    this.#held.set(id, ttlMs);
    const every = Math.max(50, Math.floor(ttlMs / 3));
    if (every >= this.#renewEveryMs) return;
    this.#renewEveryMs = every;
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = setInterval(() => void this.#renew(), every);
    this.#timer.unref();
  }

  /** Push back the expiry of every live record this process holds (pipelined). */
  async #renew(): Promise<void> {
    if (this.#held.size === 0) return;
    const held = [...this.#held];
    try {
      await this.#redis.run((c) => Promise.all(held.map(([id, ttl]) => c.pexpire(this.#key(id), ttl))));
      this.#ok();
    } catch (err) {
      this.#fail(err);
    }
  }

  #key(id: string): string {
    return `${this.#prefix}resume:{${id}}`;
  }

  #ok(): void {
    if (this.#failing) this.#logger.info('resumption store writes restored');
    this.#failing = false;
  }

  #fail(err: unknown): void {
    if (!this.#failing) this.#logger.warn({ err: (err as Error).message }, 'resumption store write failed');
    this.#failing = true;
  }
}

/** A record from its fields in FIELDS order, or undefined when any is missing or malformed. */
function recordOf(r: ReadonlyArray<string | null>): ResumptionRecord | undefined {
  const [user, node, session, state, data] = r;
  if (user == null || node == null || session == null || state == null || data == null || !STATES.has(state)) return undefined;
  return { user, node, session, state: state as ResumptionState, data };
}
