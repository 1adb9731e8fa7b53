/**
 * The Herald client: one logical connection that picks a node (fixed URL or dispatcher), opens
 * the first transport that works (WebSocket, then SSE + POST, then long-poll + POST), keeps the
 * application's subscriptions on it, and reconnects with exponential backoff and jitter, resuming
 * every channel from the last publication it delivered.
 */
import { ClientCode, DisconnectCode, shouldReconnect } from './codes.js';
import { Emitter } from './emitter.js';
import { closedError, HeraldClientError, isAuthError, timeoutError, transportError } from './errors.js';
import { Subscription, type SubscribedEvent, type SubscribeOptions, type SubscriptionEvents, type SubscriptionOwner } from './subscription.js';
import type { Endpoint, Transport, TransportHooks } from './transport.js';
import { LongPollTransport, SseTransport } from './transport-http.js';
import { WebSocketTransport } from './transport-websocket.js';
import {
  type ConnectInfo,
  type EventSourceCtor,
  type FetchFn,
  parsePosition,
  type Position,
  type Publication,
  tokenExpiry,
  tokenSubject,
  type TransportName,
  type WantedChannel,
  type WebSocketCtor,
} from './types.js';

/** Default time a transport has to open before the next one is tried, ms. */
export const DEFAULT_OPEN_TIMEOUT_MS = 5_000;
/** Default time a command waits for its reply, ms. */
export const DEFAULT_COMMAND_TIMEOUT_MS = 10_000;
/** Default first reconnect delay, ms (doubles per failed attempt, with jitter). */
export const DEFAULT_MIN_RECONNECT_DELAY_MS = 200;
/** Default longest reconnect delay, ms. */
export const DEFAULT_MAX_RECONNECT_DELAY_MS = 20_000;
/** Default lead time of a token refresh before the token's `exp`, ms. */
export const DEFAULT_REFRESH_BEFORE_MS = 10_000;
const ALL_TRANSPORTS: readonly TransportName[] = ['websocket', 'sse', 'long-poll'];

/** Options of `new HeraldClient()`. */
export interface ClientOptions {
  /** Base URL of a Herald node (`http://host:port`). Required unless `dispatcher` is given. */
  readonly url?: string;
  /** Base URL of a dispatcher: `GET <dispatcher>/dispatch?user=` answers `{primary, backups}`. */
  readonly dispatcher?: string;
  /** Development-mode identity (a bare user name). */
  readonly user?: string;
  /** Connection token (JWT). */
  readonly token?: string;
  /** Called for a token when there is none, and again when the server rejects the current one. */
  readonly getToken?: () => Promise<string>;
  /** Transports to try, in order (default websocket, sse, long-poll). Give one to force it. */
  readonly transports?: readonly TransportName[];
  /** WebSocket implementation (default: the global one; in Node pass `ws`). */
  readonly WebSocket?: WebSocketCtor;
  /** EventSource implementation (default: the global one; in Node pass the `eventsource` package's). */
  readonly EventSource?: EventSourceCtor;
  /** fetch implementation (default: the global one). */
  readonly fetch?: FetchFn;
  /** Time a transport has to open before the next is tried, ms (default 5000). */
  readonly openTimeoutMs?: number;
  /** Time a command waits for its reply, ms (default 10000). */
  readonly commandTimeoutMs?: number;
  /** First reconnect delay, ms (default 200). */
  readonly minReconnectDelayMs?: number;
  /** Longest reconnect delay, ms (default 20000). */
  readonly maxReconnectDelayMs?: number;
  /**
   * With `getToken` and a token carrying `exp`: fetch a new token this long before it expires
   * and hand it to the server (the `refresh` command over WebSocket; the next request over
   * HTTP), so the server does not close the session at `exp` (3500). Default 10000 ms.
   */
  readonly refreshBeforeMs?: number;
}

/** Connection state. */
export type ClientState = 'disconnected' | 'connecting' | 'connected' | 'closed';

/** Payload of `disconnected`. */
export interface DisconnectedEvent {
  readonly code: number;
  readonly reason: string;
  /** Whether the client will reconnect by itself. */
  readonly reconnect: boolean;
}

/** Events of the client. Channel events are also emitted on each `Subscription`. */
export type ClientEvents = {
  state: { readonly state: ClientState; readonly previous: ClientState };
  connected: ConnectInfo & { readonly node: string };
  disconnected: DisconnectedEvent;
  /** Emitted after `disconnected` when a reconnect is scheduled. */
  reconnecting: { readonly attempt: number; readonly delayMs: number };
  error: { readonly error: HeraldClientError; readonly channel?: string };
} & { [K in Exclude<keyof SubscriptionEvents, 'error'>]: SubscriptionEvents[K] };

/** Options of `history()`. */
export interface HistoryOptions {
  readonly since?: Position | string;
  readonly limit?: number;
  readonly reverse?: boolean;
}

/** Result of `history()`. */
export interface HistoryResult {
  readonly channel: string;
  readonly epoch: string;
  readonly offset: number;
  readonly publications: Publication[];
  /**
   * True when the server left publications out to keep the answer within its
   * `limits.maxOutboundBytes`: read on with `since` set to the last publication's position.
   */
  readonly more?: boolean;
}

function toPosition(p: Position | string | undefined): Position | undefined {
  if (p === undefined) return undefined;
  if (typeof p !== 'string') return p;
  const parsed = parsePosition(p);
  if (!parsed) throw new TypeError(`invalid position: ${p}`);
  return parsed;
}

const trimBase = (u: string): string => u.replace(/\/+$/, '').replace(/^ws(s?):/, 'http$1:');

/** A Herald connection. Call `connect()`; subscribe and send at any time (commands wait for the connection). */
export class HeraldClient extends Emitter<ClientEvents> implements SubscriptionOwner {
  readonly #opts: Required<Pick<ClientOptions, 'openTimeoutMs' | 'commandTimeoutMs' | 'minReconnectDelayMs' | 'maxReconnectDelayMs' | 'refreshBeforeMs'>> &
    ClientOptions;
  readonly #subs = new Map<string, Subscription>();
  readonly #fetch: FetchFn;
  #state: ClientState = 'disconnected';
  #transport: Transport | undefined;
  #info: (ConnectInfo & { node: string }) | undefined;
  #token: string | undefined;
  #attempt = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** Fires the next token refresh (see `refreshBeforeMs`). */
  #refreshTimer: ReturnType<typeof setTimeout> | undefined;
  /** Index in the transport list of the one that worked last (reconnects start there). */
  #preferred = 0;
  #running: Promise<void> | undefined;
  /** The dispatcher's last answer: nodes in its order. */
  #answer: string[] = [];
  /** Where the first reconnect after losing a node goes without asking the dispatcher (see `#connectOnce`). */
  #spare: string[] = [];

  constructor(options: ClientOptions) {
    super();
    if (!options.url && !options.dispatcher) throw new TypeError('HeraldClient needs `url` or `dispatcher`');
    for (const t of options.transports ?? []) if (!ALL_TRANSPORTS.includes(t)) throw new TypeError(`unknown transport: ${t}`);
    if (options.transports && options.transports.length === 0) throw new TypeError('`transports` must name at least one transport');
    this.#opts = {
      openTimeoutMs: DEFAULT_OPEN_TIMEOUT_MS,
      commandTimeoutMs: DEFAULT_COMMAND_TIMEOUT_MS,
      minReconnectDelayMs: DEFAULT_MIN_RECONNECT_DELAY_MS,
      maxReconnectDelayMs: DEFAULT_MAX_RECONNECT_DELAY_MS,
      refreshBeforeMs: DEFAULT_REFRESH_BEFORE_MS,
      ...options,
    };
    const f = options.fetch ?? (globalThis.fetch as FetchFn | undefined);
    if (!f) throw new TypeError('no fetch available; pass `fetch`');
    this.#fetch = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
    this.#token = options.token;
  }

  /** Current state. */
  get state(): ClientState {
    return this.#state;
  }

  /** Transport and node of the current session (undefined while not connected). */
  get info(): (ConnectInfo & { node: string }) | undefined {
    return this.#info;
  }

  /** The transport in use, if connected. */
  get transport(): TransportName | undefined {
    return this.#info?.transport;
  }

  /** Start connecting (idempotent). Resolves when connected the first time, or rejects if the client stopped. */
  connect(): Promise<void> {
    if (this.#state === 'connected') return Promise.resolve();
    if (this.#state !== 'connecting') {
      this.#setState('connecting');
      this.#attempt = 0;
      this.#run();
    }
    return this.#whenConnected(Number.MAX_SAFE_INTEGER).then(() => undefined);
  }

  /** Close the connection and stop reconnecting. Subscriptions are kept and resume on `connect()`. */
  disconnect(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#disarmRefresh();
    const t = this.#transport;
    this.#transport = undefined;
    this.#info = undefined;
    this.#spare = [];
    t?.close();
    this.#resetAnnounced();
    if (this.#state !== 'disconnected') {
      this.#setState('disconnected');
      this.emit('disconnected', { code: ClientCode.CLIENT_DISCONNECT, reason: 'client disconnect', reconnect: false });
    }
  }

  /** Subscribe to a channel. Throws if already subscribed. Resumes automatically after reconnects. */
  subscribe(channel: string, options: SubscribeOptions = {}): Subscription {
    if (typeof channel !== 'string' || channel === '') throw new TypeError('channel must be a non-empty string');
    if (this.#subs.has(channel)) throw new Error(`already subscribed to ${channel}`);
    const sub = new Subscription(this, channel, toPosition(options.since), options.last);
    this.#subs.set(channel, sub);
    this.#transport?.refresh();
    return sub;
  }

  /** The subscription to `channel`, if any. */
  getSubscription(channel: string): Subscription | undefined {
    return this.#subs.get(channel);
  }

  /** @internal Called by `Subscription.unsubscribe()`. */
  removeSubscription(sub: Subscription): void {
    if (this.#subs.get(sub.channel) !== sub) return;
    this.#subs.delete(sub.channel);
    sub.state = 'unsubscribed';
    this.#transport?.refresh();
    this.#fireChannel(sub, 'unsubscribed', { channel: sub.channel, reason: 'client' });
  }

  /** Publish to a channel (the channel's policy must allow client publishing). */
  async publish(channel: string, data: unknown): Promise<{ channel: string; epoch: string; offset: number }> {
    return (await this.command('publish', { channel, data })) as { channel: string; epoch: string; offset: number };
  }

  /** Read a channel's history. */
  async history(channel: string, options: HistoryOptions = {}): Promise<HistoryResult> {
    const params: Record<string, unknown> = { channel };
    const since = toPosition(options.since);
    if (since) params.since = `${since.epoch}:${since.offset}`;
    if (options.limit !== undefined) params.limit = options.limit;
    if (options.reverse !== undefined) params.reverse = options.reverse;
    return (await this.command('history', params)) as HistoryResult;
  }

  /**
   * Call the application backend: the server forwards `method` and `data` to its RPC hook
   * (`backend.rpcPath`) with this connection's user, and this resolves with the backend's
   * answer. Rejects with a HeraldClientError: the backend's own error code when it refused,
   * HERALD_ERR_BACKEND_TIMEOUT (temporary) when it did not answer in time,
   * HERALD_ERR_UNKNOWN_COMMAND when the server has no RPC hook configured.
   */
  async rpc<T = unknown>(method: string, data?: unknown): Promise<T> {
    const reply = (await this.command('rpc', data === undefined ? { method } : { method, data })) as { data: T };
    return reply.data;
  }

  /**
   * Send a fire-and-forget message to the application backend (it arrives as a
   * `client.message` webhook with this connection's user). Resolves once the server queued it;
   * rejects with HERALD_ERR_TOO_MANY_REQUESTS (retry later) when its webhook queue is full, or
   * HERALD_ERR_UNKNOWN_COMMAND when the server sends no `client.message` webhooks.
   */
  async send(data: unknown): Promise<void> {
    await this.command('send', { data });
  }

  /** Run any command of the native protocol (waits for the connection). */
  async command(cmd: string, params: Record<string, unknown> = {}): Promise<unknown> {
    const t = await this.#whenConnected(this.#opts.commandTimeoutMs);
    return t.command(cmd, params);
  }

  // ---- connection loop ----------------------------------------------------------------------

  #setState(state: ClientState): void {
    const previous = this.#state;
    if (previous === state) return;
    this.#state = state;
    this.emit('state', { state, previous });
  }

  #whenConnected(timeoutMs: number): Promise<Transport> {
    if (this.#state === 'connected' && this.#transport) return Promise.resolve(this.#transport);
    if (this.#state === 'closed') return Promise.reject(closedError('connect'));
    return new Promise((resolve, reject) => {
      const done = (): void => {
        clearTimeout(timer);
        offs.forEach((o) => o());
      };
      const offs = [
        this.on('connected', () => {
          done();
          if (this.#transport) resolve(this.#transport);
          else reject(closedError('connect'));
        }),
        this.on('state', ({ state }) => {
          if (state !== 'closed' && state !== 'disconnected') return;
          done();
          reject(closedError('connect'));
        }),
      ];
      const timer = setTimeout(
        () => {
          done();
          reject(timeoutError('waiting for the connection'));
        },
        Math.min(timeoutMs, 2 ** 31 - 1),
      );
    });
  }

  #run(): void {
    if (this.#running) return;
    this.#running = this.#connectOnce()
      .catch((err: unknown) => {
        this.emit('error', { error: err instanceof HeraldClientError ? err : transportError(String(err), err) });
        this.#scheduleReconnect();
      })
      .finally(() => {
        this.#running = undefined;
      });
  }

  /** Nodes to try, in order: the dispatcher's answer (then `url`), or `url`. */
  async #nodes(): Promise<string[]> {
    if (!this.#opts.dispatcher) return [trimBase(this.#opts.url!)];
    const user = this.#opts.user ?? tokenSubject(this.#token);
    const q = user ? `?user=${encodeURIComponent(user)}` : '';
    try {
      const res = await this.#fetch(`${trimBase(this.#opts.dispatcher)}/dispatch${q}`, {
        headers: this.#token ? { authorization: `Bearer ${this.#token}` } : {},
      });
      if (!res.ok) throw new Error(`dispatcher answered ${res.status}`);
      const body = (await res.json()) as { primary?: string; backups?: string[] };
      const list = [body.primary, ...(body.backups ?? [])].filter((x): x is string => typeof x === 'string' && x !== '').map(trimBase);
      if (this.#opts.url) list.push(trimBase(this.#opts.url));
      if (list.length === 0) throw new Error('dispatcher returned no node');
      this.#answer = [...new Set(list)];
      return this.#answer;
    } catch (err) {
      if (this.#opts.url) return [trimBase(this.#opts.url)];
      throw transportError(`dispatch failed: ${(err as Error).message}`, err);
    }
  }

  /** Transports to try, starting with the one that worked last. */
  #order(): TransportName[] {
    const list = (this.#opts.transports ?? ALL_TRANSPORTS).filter((t) => this.#available(t));
    if (list.length === 0) return [];
    const start = Math.min(this.#preferred, list.length - 1);
    return [...list.slice(start), ...list.slice(0, start)];
  }

  #available(t: TransportName): boolean {
    if (t === 'websocket') return !!(this.#opts.WebSocket ?? (globalThis as { WebSocket?: unknown }).WebSocket);
    if (t === 'sse') return !!(this.#opts.EventSource ?? (globalThis as { EventSource?: unknown }).EventSource);
    return true;
  }

  async #connectOnce(): Promise<void> {
    if (this.#token === undefined && this.#opts.getToken && this.#opts.user === undefined) this.#token = await this.#opts.getToken();
    const order = this.#order();
    if (order.length === 0) throw transportError('no transport is available (pass WebSocket or EventSource in Node)');
    let lastErr: unknown;
    let refreshed = false;
    // The first reconnect after losing a node tries the other nodes of the dispatcher's last
    // answer without asking it again: with the `hash` strategy it would answer the same (the
    // rendezvous order without the lost node), and a node's worth of clients reconnecting at once
    // then costs the dispatcher nothing. When none of them takes the client, the dispatcher is asked.
    const spare = this.#spare.splice(0);
    for (const nodes of spare.length > 0 ? [spare, undefined] : [undefined]) {
      for (const node of nodes ?? (await this.#nodes())) {
        for (let i = 0; i < order.length; i++) {
          if (this.#state !== 'connecting') return;
          const name = order[i]!;
          const t = this.#make(name, { base: node, user: this.#token === undefined ? this.#opts.user : undefined, token: this.#token });
          try {
            const info = await t.open();
            if (this.#state !== 'connecting') {
              t.close();
              return;
            }
            this.#onOpen(t, info, node);
            return;
          } catch (err) {
            t.close();
            lastErr = err;
            if (isAuthError(err) || (err instanceof HeraldClientError && err.code === DisconnectCode.INVALID_TOKEN)) {
              if (this.#opts.getToken && !refreshed) {
                refreshed = true;
                this.#token = await this.#opts.getToken();
                i--;
                continue;
              }
              this.#stop(err as HeraldClientError);
              return;
            }
            if (err instanceof HeraldClientError && err.code >= 3500 && err.code < 4000) {
              this.#stop(err);
              return;
            }
            // Unreachable or blocked: try the next transport, then the next node.
          }
        }
      }
    }
    throw lastErr instanceof HeraldClientError ? lastErr : transportError('could not connect', lastErr);
  }

  #stop(err: HeraldClientError): void {
    this.emit('error', { error: err });
    this.#setState('closed');
    this.emit('disconnected', { code: err.code || ClientCode.CONNECT_FAILED, reason: err.message, reconnect: false });
  }

  #make(name: TransportName, ep: Endpoint): Transport {
    const hooks = this.#hooks(() => t);
    const o = this.#opts;
    const ES = o.EventSource ?? (globalThis as { EventSource?: EventSourceCtor }).EventSource;
    let t: Transport;
    if (name === 'websocket') {
      const WS = o.WebSocket ?? (globalThis as { WebSocket?: WebSocketCtor }).WebSocket!;
      t = new WebSocketTransport(ep, { WebSocket: WS, openTimeoutMs: o.openTimeoutMs, commandTimeoutMs: o.commandTimeoutMs }, hooks);
    } else {
      const http = { fetch: this.#fetch, EventSource: ES, openTimeoutMs: o.openTimeoutMs, commandTimeoutMs: o.commandTimeoutMs };
      t = name === 'sse' ? new SseTransport(ep, http, hooks) : new LongPollTransport(ep, http, hooks);
    }
    return t;
  }

  #onOpen(t: Transport, info: ConnectInfo, node: string): void {
    this.#transport = t;
    this.#info = { ...info, node };
    this.#attempt = 0;
    this.#preferred = Math.max(0, (this.#opts.transports ?? ALL_TRANSPORTS).filter((x) => this.#available(x)).indexOf(info.transport));
    this.#setState('connected');
    this.emit('connected', this.#info);
    t.refresh();
    this.#armRefresh();
  }

  /** Schedule the next token refresh, when there is a `getToken` and the token has an `exp`. */
  #armRefresh(): void {
    this.#disarmRefresh();
    const exp = tokenExpiry(this.#token);
    if (exp === undefined || !this.#opts.getToken) return;
    const delay = Math.max(0, exp * 1000 - Date.now() - this.#opts.refreshBeforeMs);
    this.#refreshTimer = setTimeout(() => void this.#refreshToken(), delay);
  }

  #disarmRefresh(): void {
    if (this.#refreshTimer) clearTimeout(this.#refreshTimer);
    this.#refreshTimer = undefined;
  }

  /** Get a new token and give it to the live session (WebSocket: the `refresh` command; HTTP: later requests carry it). */
  async #refreshToken(): Promise<void> {
    this.#refreshTimer = undefined;
    if (this.#state !== 'connected' || !this.#opts.getToken) return;
    try {
      const token = await this.#opts.getToken();
      this.#token = token;
      if (this.#info?.transport === 'websocket') await this.command('refresh', { token });
      else this.#transport?.setToken?.(token);
    } catch (err) {
      this.emit('error', { error: err instanceof HeraldClientError ? err : transportError('token refresh failed', err) });
    }
    if (this.#state === 'connected') this.#armRefresh();
  }

  #scheduleReconnect(): void {
    if (this.#state === 'closed' || this.#state === 'disconnected') return;
    this.#setState('connecting');
    const max = this.#opts.maxReconnectDelayMs;
    const base = Math.min(max, this.#opts.minReconnectDelayMs * 2 ** Math.min(this.#attempt, 30));
    const delayMs = Math.round(base / 2 + (Math.random() * base) / 2);
    this.#attempt++;
    this.emit('reconnecting', { attempt: this.#attempt, delayMs });
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      if (this.#state === 'connecting') this.#run();
    }, delayMs);
  }

  #resetAnnounced(): void {
    for (const s of this.#subs.values()) {
      s.announced = false;
      if (s.state === 'subscribed') s.state = 'subscribing';
    }
  }

  // ---- transport hooks ----------------------------------------------------------------------

  #hooks(self: () => Transport): TransportHooks {
    const live = (): boolean => this.#transport === self();
    return {
      wanted: (): WantedChannel[] => [...this.#subs.values()].map((s) => ({ channel: s.channel, since: s.position, last: s.position ? undefined : s.last })),
      subscribed: (channel, base, recovered, pubs) => {
        if (!live()) return;
        const sub = this.#subs.get(channel);
        if (!sub) return;
        const resumed = sub.position !== undefined;
        const p = sub.position;
        // Same epoch: keep what was already delivered (a re-opened stream may replay it).
        sub.position = p && p.epoch === base.epoch ? { epoch: base.epoch, offset: Math.max(p.offset, base.offset) } : base;
        if (!sub.announced || !recovered) {
          sub.announced = true;
          sub.state = 'subscribed';
          const ev: SubscribedEvent = { channel, resumed, recovered: resumed ? recovered : true, position: sub.position };
          this.#fireChannel(sub, 'subscribed', ev);
        }
        for (const pub of pubs) this.#deliver(pub);
      },
      subscribeFailed: (channel, error) => {
        if (!live()) return;
        const sub = this.#subs.get(channel);
        if (!sub) return;
        this.#subs.delete(channel);
        sub.state = 'unsubscribed';
        this.#fireChannel(sub, 'error', { channel, error });
      },
      publication: (pub) => {
        if (live()) this.#deliver(pub);
      },
      position: (channel, pos) => {
        if (!live()) return;
        const sub = this.#subs.get(channel);
        if (!sub) return;
        const p = sub.position;
        if (!p || p.epoch !== pos.epoch || pos.offset > p.offset) sub.position = pos;
      },
      channelEvent: (type, channel, user, client) => {
        if (!live()) return;
        const sub = this.#subs.get(channel);
        if (sub) this.#fireChannel(sub, type, { channel, user, client });
      },
      unsubscribed: (channel, reason) => {
        if (!live()) return;
        const sub = this.#subs.get(channel);
        if (!sub) return;
        this.#subs.delete(channel);
        sub.state = 'unsubscribed';
        this.#fireChannel(sub, 'unsubscribed', { channel, reason });
      },
      closed: (code, reason) => {
        if (!live()) return;
        this.#disarmRefresh();
        const lost = this.#info?.node;
        this.#spare = this.#answer.filter((n) => n !== lost);
        this.#transport = undefined;
        this.#info = undefined;
        this.#resetAnnounced();
        const reconnect = shouldReconnect(code) || (code === DisconnectCode.INVALID_TOKEN && !!this.#opts.getToken);
        this.emit('disconnected', { code, reason, reconnect });
        if (!reconnect) {
          this.#setState('closed');
          return;
        }
        if (code === DisconnectCode.INVALID_TOKEN) this.#token = undefined;
        this.#setState('connecting');
        this.#scheduleReconnect();
      },
    };
  }

  #deliver(pub: Publication): void {
    const sub = this.#subs.get(pub.channel);
    if (!sub) return;
    const p = sub.position;
    if (p && p.epoch === pub.epoch && pub.offset <= p.offset) return;
    sub.position = { epoch: pub.epoch, offset: pub.offset };
    this.#fireChannel(sub, 'publication', pub);
  }

  #fireChannel<K extends keyof SubscriptionEvents>(sub: Subscription, event: K, payload: SubscriptionEvents[K]): void {
    sub.fire(event, payload);
    (this.emit as (e: string, p: unknown) => void)(event, payload);
  }
}
