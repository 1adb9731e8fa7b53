/**
 * A Redis connection for an engine that talks to Redis only now and then (presence, session
 * registry): `ioredis` is loaded and the connection opened on first use; a failed connect is
 * retried on the next use. Commands are never queued while disconnected: they fail at once
 * with HERALD_ERR_UNAVAILABLE (the cause attached), and the caller decides what that means.
 */
import type { Redis } from 'ioredis';
import { HeraldError } from '../core/errors.js';

/** Options of `new LazyRedis()`. */
export interface LazyRedisOptions {
  /** Redis CLIENT SETNAME, and in "<label> closed" errors after close(). */
  readonly connectionName: string;
  /** Engine name for errors after close() (e.g. "Presence engine"). */
  readonly label: string;
  /** Pipeline the commands of one tick automatically. */
  readonly autoPipelining?: boolean;
  /** Called once, when the connection first opens. */
  readonly onConnect?: () => void;
}

export class LazyRedis {
  readonly #url: string;
  readonly #options: LazyRedisOptions;
  #redis: Promise<Redis> | undefined;
  #closed = false;

  constructor(url: string, options: LazyRedisOptions) {
    this.#url = url;
    this.#options = options;
  }

  /** Run `fn` on the ready connection; any failure becomes HERALD_ERR_UNAVAILABLE. */
  async run<T>(fn: (r: Redis) => Promise<T>): Promise<T> {
    if (this.#closed) throw new HeraldError('HERALD_ERR_UNAVAILABLE', `${this.#options.label} closed`);
    try {
      const r = await this.#connect();
      if (r.status !== 'ready') throw new Error('not connected');
      return await fn(r);
    } catch (err) {
      throw new HeraldError('HERALD_ERR_UNAVAILABLE', 'Redis is unavailable', { cause: err });
    }
  }

  /** Quit (or drop, when not connected) the connection; later runs fail. */
  async close(): Promise<void> {
    this.#closed = true;
    const pending = this.#redis;
    this.#redis = undefined;
    const r = await pending?.catch(() => undefined);
    if (r?.status === 'ready') await r.quit().catch(() => r.disconnect());
    else r?.disconnect();
  }

  #connect(): Promise<Redis> {
    this.#redis ??= (async () => {
      const { Redis } = await import('ioredis');
      const r = new Redis(this.#url, {
        lazyConnect: true,
        enableOfflineQueue: false,
        enableAutoPipelining: this.#options.autoPipelining ?? false,
        maxRetriesPerRequest: 0,
        retryStrategy: (times) => Math.min(50 * times, 1_000),
        connectionName: this.#options.connectionName,
      });
      r.on('error', () => undefined); // reported through rejected calls
      await r.connect();
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
