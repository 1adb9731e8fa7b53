/**
 * Redis broker: channel history in Redis streams, fan-out over Redis pub/sub, for a cluster of
 * Herald nodes (and the workers of one host). A publication goes only to the nodes subscribed
 * to its channel's pub/sub channel; append and publish run in one Lua script, so they are atomic.
 * Epochs live in Redis, so history positions survive node restarts.
 *
 * Two connections: commands (auto-pipelined: commands issued in the same tick travel in one
 * write) and a subscriber. `ioredis` is imported when the broker starts, so processes that do
 * not use Redis never load it. While Redis is unreachable, every operation rejects at once with
 * HERALD_ERR_UNAVAILABLE; both connections reconnect by themselves, the subscriber then
 * subscribes again to every channel this node still needs and catches up from history on what
 * was published meanwhile, so local subscribers see no gap.
 *
 * Cluster control goes over one pub/sub channel, `<prefix>control`, that every node subscribes
 * to (channel deletions and `control` messages). PUBLISH answers how many subscribers got it:
 * that is the node count `control` reports. Retained control messages also go into a sorted
 * set `<prefix>control:retained` scored by their expiry (ms, this node's clock); a node reads
 * the unexpired ones after subscribing at start and after every reconnect, and writers trim the
 * expired ones. The set is as durable as the Redis it lives in.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import {
  type Broker,
  type BrokerHandler,
  type ChannelEvent,
  type ChannelSummary,
  type HistoryQuery,
  type HistoryResult,
  newEpoch,
  type PublishOptions,
} from '../core/broker.js';
import { type ControlMessage, parseControlMessage } from '../core/control-message.js';
import { HeraldError } from '../core/errors.js';
import { type Logger, SILENT_LOGGER } from '../core/logger.js';
import type { ClientInfo, Publication, PublicationInput } from '../core/publication.js';
import type { StreamPosition } from '../protocol/position.js';
import { HISTORY_SCRIPT, PUBLISH_SCRIPT, RETAIN_SCRIPT } from './broker-redis-scripts.js';
import { closeRedis, connectError, createRedis, isTransient, keyPrefix, type RedisEngineOptions, redisUnavailable } from './redis-connection.js';

/** A channel's meta hash (epoch, offset) outlives its last publication by this long, ms. */
export const DEFAULT_META_TTL_MS = 7 * 24 * 3_600_000;
/** How long `start` waits for the first connection, ms. */
const CONNECT_TIMEOUT_MS = 10_000;
/** Channels per SUBSCRIBE / UNSUBSCRIBE command when many change at once. */
const SUBSCRIBE_BATCH = 512;
/** Channels caught up from history at once after a reconnect. */
const CATCH_UP_PARALLEL = 64;

/** Options of `new RedisBroker()`. */
export interface RedisBrokerOptions extends RedisEngineOptions {
  /** Lifetime of a channel's position after its last publication, ms (default 7 days). */
  readonly metaTtlMs?: number;
  readonly logger?: Logger;
}

/** What travels on the control channel: a channel deletion (with the sender's broker id) or a node's control message. */
type ControlWire = { readonly type: 'deleted'; readonly channel: string; readonly from: string } | { readonly type: 'control'; readonly msg: ControlMessage };

/** Optional publication fields as stored and published (short keys). */
interface WireFields {
  c?: string;
  e?: string;
  i?: ClientInfo;
}

/** The Buffer-returning script commands (present at runtime, missing from ioredis' typings). */
interface ScriptCommands {
  evalshaBuffer(sha: string, numkeys: number, ...args: Array<string | number | Buffer>): Promise<unknown>;
  evalBuffer(source: string, numkeys: number, ...args: Array<string | number | Buffer>): Promise<unknown>;
}

interface Script {
  readonly source: string;
  readonly sha: string;
}

const script = (source: string): Script => ({ source, sha: createHash('sha1').update(source).digest('hex') });
const PUBLISH = script(PUBLISH_SCRIPT);
const HISTORY = script(HISTORY_SCRIPT);
const RETAIN = script(RETAIN_SCRIPT);

/** Escape glob characters for SCAN MATCH. */
function globEscape(s: string): string {
  return s.replace(/[*?[\]\\]/g, '\\$&');
}

function fieldsJson(input: PublicationInput): string {
  const f: WireFields = {};
  if (input.contentType !== undefined) f.c = input.contentType;
  if (input.event !== undefined) f.e = input.event;
  if (input.info !== undefined) f.i = input.info;
  return JSON.stringify(f);
}

function withFields(base: { payload: Buffer; channel: string; epoch: string; offset: number; time: number }, f: WireFields): Publication {
  const pub: { -readonly [K in keyof Publication]: Publication[K] } = base;
  if (f.c !== undefined) pub.contentType = f.c;
  if (f.e !== undefined) pub.event = f.e;
  if (f.i !== undefined) pub.info = f.i;
  return pub;
}

/** The Redis broker. */
export class RedisBroker implements Broker {
  readonly #url: string;
  readonly #prefix: string;
  readonly #metaTtlMs: number;
  readonly #logger: Logger;
  /** Identifies this broker in control messages. */
  readonly #id = randomBytes(6).toString('base64url');
  #handler: BrokerHandler | undefined;
  #cmd: Redis | undefined;
  #sub: Redis | undefined;
  /** Channels this node wants delivered. */
  readonly #wanted = new Set<string>();
  /** Last position delivered per wanted channel (for dedup and catch-up after a reconnect). */
  readonly #last = new Map<string, StreamPosition>();
  /** Position of the first history read of a wanted channel: catch-up starts there when nothing was delivered yet. */
  readonly #mark = new Map<string, StreamPosition>();
  /** Channels being caught up after a reconnect: live publications wait here. */
  readonly #catchingUp = new Map<string, Publication[]>();
  /** Subscription changes not yet sent (flushed once per tick, batched). */
  readonly #pending = new Map<string, Array<{ resolve: () => void; reject: (err: unknown) => void }>>();
  #flushScheduled = false;
  #connectedOnce = false;
  #closed = false;

  constructor(options: RedisBrokerOptions) {
    this.#url = options.url;
    this.#prefix = keyPrefix(options);
    this.#metaTtlMs = options.metaTtlMs ?? DEFAULT_META_TTL_MS;
    this.#logger = options.logger ?? SILENT_LOGGER;
  }

  /** The key prefix in use. */
  get prefix(): string {
    return this.#prefix;
  }

  async start(handler: BrokerHandler): Promise<void> {
    this.#handler = handler;
    // A command in flight when the connection broke may or may not have run: never resend it.
    const common = { resendUnfulfilled: false, connectTimeoutMs: CONNECT_TIMEOUT_MS };
    this.#cmd = await createRedis(this.#url, { ...common, autoPipelining: true, connectionName: `herald-cmd-${this.#id}` });
    // Resubscription is ours (see #onSubscriberReady) so that it can be followed by catch-up.
    this.#sub = await createRedis(this.#url, { ...common, autoResubscribe: false, connectionName: `herald-sub-${this.#id}` });
    let lastError = '';
    const onError = (which: string) => (err: Error) => {
      if (err.message === lastError) return; // one log line per distinct failure, not per retry
      lastError = err.message;
      this.#logger.warn({ err: err.message, connection: which }, 'redis connection error');
    };
    this.#cmd.on('error', onError('commands'));
    this.#sub.on('error', onError('subscriber'));
    this.#cmd.on('ready', () => {
      lastError = '';
    });
    this.#sub.on('messageBuffer', (channel: Buffer, message: Buffer) => this.#onMessage(channel, message));
    this.#sub.on('ready', () => void this.#onSubscriberReady());
    try {
      await Promise.all([this.#cmd.connect(), this.#sub.connect()]);
      await this.#sub.subscribe(this.#controlChannel());
      await this.#replayRetained();
    } catch (err) {
      this.#cmd.disconnect();
      this.#sub.disconnect();
      throw connectError(this.#url, err, lastError);
    }
    this.#connectedOnce = true;
  }

  async publish(channel: string, input: PublicationInput, options: PublishOptions): Promise<Publication> {
    const fields = fieldsJson(input);
    const reply = (await this.#eval(
      PUBLISH,
      [this.#metaKey(channel), this.#streamKey(channel)],
      [this.#pubsubChannel(channel), newEpoch(), options.historySize, options.historyTtlMs, this.#metaTtlMs, fields, input.payload],
    )) as [Buffer, number, number];
    return { ...input, channel, epoch: reply[0].toString(), offset: Number(reply[1]), time: Number(reply[2]) };
  }

  subscribe(channel: string): Promise<void> {
    this.#wanted.add(channel);
    if (this.#sub?.status !== 'ready') {
      this.#wanted.delete(channel);
      return Promise.reject(redisUnavailable());
    }
    return this.#queue(channel);
  }

  unsubscribe(channel: string): Promise<void> {
    if (!this.#wanted.delete(channel)) return Promise.resolve();
    this.#last.delete(channel);
    this.#mark.delete(channel);
    this.#catchingUp.delete(channel);
    if (this.#sub?.status !== 'ready') return Promise.resolve(); // nothing to undo: resubscription skips it
    return this.#queue(channel);
  }

  async history(channel: string, query: HistoryQuery): Promise<HistoryResult> {
    const reply = (await this.#eval(
      HISTORY,
      [this.#metaKey(channel), this.#streamKey(channel)],
      [newEpoch(), this.#metaTtlMs, query.since?.epoch ?? '', query.since?.offset ?? 0, query.limit, query.reverse ? '1' : '0'],
    )) as Array<Buffer | number>;
    const epoch = reply[0]!.toString();
    const offset = Number(reply[1]);
    const publications: Publication[] = [];
    for (let i = 4; i + 3 < reply.length; i += 4) {
      const f = JSON.parse(reply[i + 2]!.toString()) as WireFields;
      publications.push(
        withFields({ payload: reply[i + 3] as Buffer, channel, epoch, offset: Number(reply[i]!.toString()), time: Number(reply[i + 1]!.toString()) }, f),
      );
    }
    if (this.#wanted.has(channel) && !this.#mark.has(channel)) this.#mark.set(channel, { epoch, offset });
    return { publications, position: { epoch, offset }, oldest: Number(reply[2]) };
  }

  async broadcastEvent(event: ChannelEvent): Promise<void> {
    const cmd = this.#ready();
    try {
      await cmd.publish(this.#pubsubChannel(event.channel), 'e' + JSON.stringify(event));
    } catch (err) {
      throw this.#wrap(err);
    }
  }

  async deleteChannel(channel: string): Promise<boolean> {
    const cmd = this.#ready();
    const msg: ControlWire = { type: 'deleted', channel, from: this.#id };
    try {
      const [[, deleted]] = (await cmd
        .multi()
        .del(this.#metaKey(channel), this.#streamKey(channel))
        .publish(this.#controlChannel(), JSON.stringify(msg))
        .exec()) as [[unknown, number]];
      return deleted > 0;
    } catch (err) {
      throw this.#wrap(err);
    }
  }

  async control(msg: ControlMessage, retainUntil?: number): Promise<number> {
    const wire = JSON.stringify({ type: 'control', msg } satisfies ControlWire);
    const now = Date.now();
    if (retainUntil !== undefined && retainUntil > now) {
      return Number(await this.#eval(RETAIN, [this.#retainedKey()], [retainUntil, wire, now, this.#controlChannel()]));
    }
    const cmd = this.#ready();
    try {
      return await cmd.publish(this.#controlChannel(), wire);
    } catch (err) {
      throw this.#wrap(err);
    }
  }

  async channels(prefix: string, limit: number): Promise<ChannelSummary[]> {
    const cmd = this.#ready();
    const keyStart = `${this.#prefix}m:{`;
    const names: string[] = [];
    try {
      let cursor = '0';
      do {
        const [next, keys] = await cmd.scan(cursor, 'MATCH', `${globEscape(keyStart + prefix)}*`, 'COUNT', 1000);
        cursor = next;
        for (const k of keys) if (k.endsWith('}')) names.push(k.slice(keyStart.length, -1));
      } while (cursor !== '0');
    } catch (err) {
      throw this.#wrap(err);
    }
    const chosen = [...new Set(names)].sort().slice(0, limit);
    const infos = await Promise.all(
      chosen.map(async (channel) => {
        const reply = (await this.#eval(HISTORY, [this.#metaKey(channel), this.#streamKey(channel)], [newEpoch(), this.#metaTtlMs, '', 0, 0, '0'])) as Array<
          Buffer | number
        >;
        return { channel, position: { epoch: reply[0]!.toString(), offset: Number(reply[1]) }, buffered: Number(reply[3]) };
      }),
    );
    return infos;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const waiters of this.#pending.values()) for (const w of waiters) w.resolve();
    this.#pending.clear();
    this.#wanted.clear();
    this.#last.clear();
    this.#mark.clear();
    this.#catchingUp.clear();
    await Promise.all([closeRedis(this.#cmd), closeRedis(this.#sub)]);
  }

  #metaKey(channel: string): string {
    return `${this.#prefix}m:{${channel}}`;
  }

  #streamKey(channel: string): string {
    return `${this.#prefix}s:{${channel}}`;
  }

  #pubsubChannel(channel: string): string {
    return `${this.#prefix}c:${channel}`;
  }

  #controlChannel(): string {
    return `${this.#prefix}control`;
  }

  #retainedKey(): string {
    return `${this.#prefix}control:retained`;
  }

  /**
   * Hand every unexpired retained control message to the node (called after subscribing to the
   * control channel, so none falls in between). The command connection may come back after the
   * subscriber: then this waits for it. A failed read is logged; the next reconnect reads again.
   */
  async #replayRetained(): Promise<void> {
    const cmd = this.#cmd!;
    if (this.#closed) return;
    if (cmd.status !== 'ready') {
      cmd.once('ready', () => void this.#replayRetained());
      return;
    }
    try {
      const kept = await cmd.zrangebyscore(this.#retainedKey(), Date.now(), '+inf');
      for (const text of kept) this.#onControl(text);
    } catch (err) {
      this.#logger.warn({ err: (err as Error).message }, 'redis retained control read failed');
    }
  }

  /** Both connections up (commands and fan-out) and Redis answering a PING. */
  async ping(): Promise<void> {
    if (this.#sub?.status !== 'ready') throw redisUnavailable(new Error('subscriber connection down'));
    try {
      await this.#ready().ping();
    } catch (err) {
      throw this.#wrap(err);
    }
  }

  #wrap(err: unknown): HeraldError {
    if (err instanceof HeraldError) return err;
    if (this.#closed || isTransient(err)) return redisUnavailable(err);
    this.#logger.error({ err: (err as Error).message }, 'redis command failed');
    return new HeraldError('HERALD_ERR_INTERNAL', undefined, { cause: err });
  }

  #ready(): Redis {
    const cmd = this.#cmd;
    if (!cmd || cmd.status !== 'ready' || this.#closed) throw redisUnavailable();
    return cmd;
  }

  /** Run a script by its SHA, loading it on NOSCRIPT (after a Redis restart or on first use). */
  async #eval(s: Script, keys: string[], args: Array<string | number | Buffer>): Promise<unknown> {
    const cmd = this.#ready();
    try {
      try {
        return await (cmd as unknown as ScriptCommands).evalshaBuffer(s.sha, keys.length, ...keys, ...args);
      } catch (err) {
        if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err;
        return await (cmd as unknown as ScriptCommands).evalBuffer(s.source, keys.length, ...keys, ...args);
      }
    } catch (err) {
      throw this.#wrap(err);
    }
  }

  /** Queue a SUBSCRIBE/UNSUBSCRIBE (decided at flush time by #wanted), batched per tick. */
  #queue(channel: string): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let waiters = this.#pending.get(channel);
      if (!waiters) this.#pending.set(channel, (waiters = []));
      waiters.push({ resolve, reject });
      if (!this.#flushScheduled) {
        this.#flushScheduled = true;
        setImmediate(() => void this.#flush());
      }
    });
  }

  async #flush(): Promise<void> {
    this.#flushScheduled = false;
    const batch = new Map(this.#pending);
    this.#pending.clear();
    const sub = this.#sub;
    if (!sub || this.#closed) {
      for (const ws of batch.values()) for (const w of ws) w.resolve();
      return;
    }
    const on: string[] = [];
    const off: string[] = [];
    for (const channel of batch.keys()) (this.#wanted.has(channel) ? on : off).push(this.#pubsubChannel(channel));
    const settle = (names: string[], err?: unknown): void => {
      for (const name of names) {
        const channel = name.slice(this.#prefix.length + 2);
        for (const w of batch.get(channel) ?? []) {
          if (err === undefined) w.resolve();
          else w.reject(err);
        }
      }
    };
    await Promise.all([
      ...chunks(on).map((names) =>
        sub.subscribe(...names).then(
          () => settle(names),
          (err: unknown) => {
            for (const n of names) this.#wanted.delete(n.slice(this.#prefix.length + 2));
            settle(names, this.#wrap(err));
          },
        ),
      ),
      // An unsubscribe that fails (connection lost) needs no retry: resubscription skips unwanted channels.
      ...chunks(off).map((names) =>
        sub.unsubscribe(...names).then(
          () => settle(names),
          () => settle(names),
        ),
      ),
    ]);
  }

  /** After a reconnect: subscribe again to every wanted channel, then catch up from history. */
  async #onSubscriberReady(): Promise<void> {
    if (!this.#connectedOnce || this.#closed) return;
    const sub = this.#sub!;
    const channels = [...this.#wanted];
    this.#logger.info({ channels: channels.length }, 'redis reconnected; resubscribing');
    for (const c of channels) if (this.#last.has(c) || this.#mark.has(c)) this.#catchingUp.set(c, []);
    try {
      await sub.subscribe(this.#controlChannel());
      for (const names of chunks(channels.map((c) => this.#pubsubChannel(c)))) await sub.subscribe(...names);
    } catch (err) {
      // The connection broke again; the next 'ready' starts over.
      this.#logger.warn({ err: (err as Error).message }, 'redis resubscribe failed');
      return;
    }
    // Control messages sent while this node was cut off are lost, except the retained ones.
    await this.#replayRetained();
    for (let i = 0; i < channels.length; i += CATCH_UP_PARALLEL) {
      await Promise.all(channels.slice(i, i + CATCH_UP_PARALLEL).map((c) => this.#catchUp(c)));
    }
  }

  /** Deliver what was published to `channel` while this node was not subscribed, then the held live ones. */
  async #catchUp(channel: string): Promise<void> {
    const held = this.#catchingUp.get(channel);
    const last = this.#last.get(channel) ?? this.#mark.get(channel);
    if (!held || !last) return;
    let missed: Publication[] = [];
    try {
      missed = (await this.history(channel, { since: last, limit: 10_000 })).publications;
    } catch (err) {
      this.#logger.warn({ err: (err as Error).message, channel }, 'redis catch-up read failed');
    }
    if (this.#catchingUp.get(channel) !== held) return; // unsubscribed meanwhile
    this.#catchingUp.delete(channel);
    for (const pub of missed) this.#deliver(pub);
    for (const pub of held) this.#deliver(pub);
  }

  #onMessage(channelBuf: Buffer, message: Buffer): void {
    const name = channelBuf.toString();
    if (name === this.#controlChannel()) {
      this.#onControl(message.toString());
      return;
    }
    const channel = name.slice(this.#prefix.length + 2);
    if (!this.#wanted.has(channel)) return;
    try {
      if (message[0] === 0x65 /* e */) {
        this.#handler?.onEvent(JSON.parse(message.subarray(1).toString()) as ChannelEvent);
        return;
      }
      const nul = message.indexOf(0, 1);
      const h = JSON.parse(message.subarray(1, nul).toString()) as { e: string; o: number; t: number; f: WireFields };
      const pub = withFields({ payload: message.subarray(nul + 1), channel, epoch: h.e, offset: h.o, time: h.t }, h.f);
      const held = this.#catchingUp.get(channel);
      if (held) held.push(pub);
      else this.#deliver(pub);
    } catch (err) {
      this.#logger.warn({ err: (err as Error).message, channel }, 'malformed broker message dropped');
    }
  }

  /** Hand a publication to the node once, in offset order per epoch. */
  #deliver(pub: Publication): void {
    const last = this.#last.get(pub.channel);
    if (last && last.epoch === pub.epoch && pub.offset <= last.offset) return;
    this.#last.set(pub.channel, { epoch: pub.epoch, offset: pub.offset });
    this.#handler?.onPublication(pub);
  }

  /** A control-channel text (live or retained): a channel deletion, or a node control message. */
  #onControl(text: string): void {
    let wire: unknown;
    try {
      wire = JSON.parse(text);
    } catch {
      wire = undefined;
    }
    if (isObject(wire) && wire.type === 'deleted' && typeof wire.channel === 'string') {
      this.#last.delete(wire.channel);
      this.#mark.delete(wire.channel);
      this.#handler?.onChannelDeleted(wire.channel);
      return;
    }
    const msg = isObject(wire) && wire.type === 'control' ? parseControlMessage(wire.msg) : undefined;
    if (msg) this.#handler?.onControl(msg);
    else this.#logger.warn('malformed control message dropped');
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null;
}

function chunks<T>(list: T[]): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < list.length; i += SUBSCRIBE_BATCH) out.push(list.slice(i, i + SUBSCRIBE_BATCH));
  return out;
}
