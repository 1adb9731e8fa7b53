/**
 * The one way Herald's Redis engines (broker, presence, sessions, node registry) and the
 * readiness check connect to Redis: the connection options, `ioredis` loaded only when a
 * connection is made (nodes that do not use Redis never load it), the key prefix, the mapping of
 * failures to HERALD_ERR_UNAVAILABLE, and the URL with its password hidden in messages.
 *
 * Every connection fails fast while disconnected: commands are never queued offline
 * (`enableOfflineQueue: false`) or retried (`maxRetriesPerRequest: 0`), so callers get
 * HERALD_ERR_UNAVAILABLE at once instead of a hang; ioredis reconnects in the background every
 * 50 ms × attempts, at most every RECONNECT_MAX_MS.
 */
import type { Redis, RedisOptions } from 'ioredis';
import { DEFAULT_REDIS_PREFIX } from '../core/config.js';
import { HeraldError } from '../core/errors.js';

/** Longest pause between reconnect attempts, ms. */
export const RECONNECT_MAX_MS = 1_000;

/** Options every Redis engine takes. */
export interface RedisEngineOptions {
  /** Redis URL, e.g. `redis://127.0.0.1:6379/0` (a password in it never appears in messages). */
  readonly url: string;
  /** Key and pub/sub channel prefix (default `herald:`); isolates deployments sharing a Redis. */
  readonly prefix?: string;
}

/** The key prefix of an engine: its `prefix` option, else DEFAULT_REDIS_PREFIX. */
export function keyPrefix(options: { readonly prefix?: string }): string {
  return options.prefix ?? DEFAULT_REDIS_PREFIX;
}

/** The URL without its password, for messages and logs ('(invalid URL)' when it does not parse). */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(invalid URL)';
  }
}

/** HERALD_ERR_UNAVAILABLE with Redis's failure as the cause. */
export function redisUnavailable(cause?: unknown, message = 'Redis is unavailable'): HeraldError {
  return new HeraldError('HERALD_ERR_UNAVAILABLE', message, { cause });
}

/**
 * Whether a Redis failure means "not reachable right now" (connection closed or not writable,
 * timeouts, a server loading, busy or read-only) rather than a bug in the command.
 */
export function isTransient(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  if (err.name !== 'ReplyError') return true;
  return /^(LOADING|BUSY|MASTERDOWN|READONLY|TRYAGAIN|CLUSTERDOWN)/.test(err.message);
}

/** Options of one connection, beyond the common ones. */
export interface RedisConnectionOptions {
  /** Redis CLIENT SETNAME, shown by CLIENT LIST. */
  readonly connectionName: string;
  /** Pipeline the commands of one tick automatically (default false). */
  readonly autoPipelining?: boolean;
  /** Resend commands in flight when the connection broke (default true, ioredis's; false when a command must run at most once). */
  readonly resendUnfulfilled?: boolean;
  /** Let ioredis resubscribe after a reconnect (default true; false when the engine resubscribes itself). */
  readonly autoResubscribe?: boolean;
  /** Longest wait for a connection to open, ms (default ioredis's, 10 s). */
  readonly connectTimeoutMs?: number;
}

/** A new connection with the common options, not yet connected (loads ioredis on first use). */
export async function createRedis(url: string, options: RedisConnectionOptions): Promise<Redis> {
  const { Redis } = await import('ioredis');
  const o: RedisOptions = {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    retryStrategy: (times) => Math.min(50 * times, RECONNECT_MAX_MS),
    enableAutoPipelining: options.autoPipelining ?? false,
    connectionName: options.connectionName,
  };
  if (options.resendUnfulfilled !== undefined) o.autoResendUnfulfilledCommands = options.resendUnfulfilled;
  if (options.autoResubscribe !== undefined) o.autoResubscribe = options.autoResubscribe;
  if (options.connectTimeoutMs !== undefined) o.connectTimeout = options.connectTimeoutMs;
  return new Redis(url, o);
}

/** Quit a connection (drop it when it is not ready). */
export async function closeRedis(r: Redis | undefined): Promise<void> {
  if (r?.status === 'ready') await r.quit().catch(() => r.disconnect());
  else r?.disconnect();
}

/** The error a failed first connection is reported with: the redacted URL and why. */
export function connectError(url: string, err: unknown, detail?: string): HeraldError {
  return redisUnavailable(err, `Cannot connect to Redis at ${redactUrl(url)}: ${detail || (err as Error)?.message || String(err)}`);
}

/** Options of `new LazyRedis()`. */
export interface LazyRedisOptions extends RedisConnectionOptions {
  /** Engine name for errors after close() (e.g. "Presence engine"). */
  readonly label: string;
  /** Called once, when the connection first opens. */
  readonly onConnect?: () => void;
}

/**
 * A Redis connection opened on first use (or by `connect()`); a failed connect is retried on the
 * next use. Commands are never queued while disconnected: they fail at once with
 * HERALD_ERR_UNAVAILABLE (the cause attached), and the caller decides what that means.
 */
export class LazyRedis {
  readonly #url: string;
  readonly #options: LazyRedisOptions;
  #redis: Promise<Redis> | undefined;
  #closed = false;

  constructor(url: string, options: LazyRedisOptions) {
    this.#url = url;
    this.#options = options;
  }

  /** Open the connection now; rejects with HERALD_ERR_UNAVAILABLE naming the (redacted) URL when Redis cannot be reached. */
  async connect(): Promise<void> {
    if (this.#closed) throw redisUnavailable(undefined, `${this.#options.label} closed`);
    try {
      await this.#connect();
    } catch (err) {
      throw connectError(this.#url, err);
    }
  }

  /** Run `fn` on the ready connection (opening it if needed); any failure becomes HERALD_ERR_UNAVAILABLE. */
  async run<T>(fn: (r: Redis) => Promise<T>): Promise<T> {
    if (this.#closed) throw redisUnavailable(undefined, `${this.#options.label} closed`);
    try {
      const r = await this.#connect();
      if (r.status !== 'ready') throw new Error('not connected');
      return await fn(r);
    } catch (err) {
      throw redisUnavailable(err);
    }
  }

  /** Quit (or drop, when not connected) the connection; later runs fail. */
  async close(): Promise<void> {
    this.#closed = true;
    const pending = this.#redis;
    this.#redis = undefined;
    await closeRedis(await pending?.catch(() => undefined));
  }

  #connect(): Promise<Redis> {
    this.#redis ??= (async () => {
      const r = await createRedis(this.#url, this.#options);
      r.on('error', () => undefined); // reported through rejected calls
      try {
        await r.connect();
      } catch (err) {
        r.disconnect();
        throw err;
      }
      this.#options.onConnect?.();
      return r;
    })();
    const p = this.#redis;
    p.catch(() => {
      if (this.#redis === p) this.#redis = undefined; // retry the connection on the next call
    });
    return p;
  }
}
