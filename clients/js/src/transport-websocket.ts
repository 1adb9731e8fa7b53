/** The native protocol over one WebSocket: connect handshake, commands by id, subscriptions by command. */
import { ClientCode, PROTOCOL_VERSION } from './codes.js';
import { closedError, HeraldClientError, timeoutError, transportError } from './errors.js';
import type { Endpoint, Transport, TransportHooks } from './transport.js';
import { type ConnectInfo, formatPosition, type Publication, type WebSocketCtor, type WebSocketLike } from './types.js';

interface Pending {
  resolve(v: unknown): void;
  reject(e: Error): void;
  timer: ReturnType<typeof setTimeout>;
}

/** Options of the WebSocket transport. */
export interface WebSocketTransportOptions {
  readonly WebSocket: WebSocketCtor;
  readonly openTimeoutMs: number;
  readonly commandTimeoutMs: number;
}

/** Native protocol over WebSocket. */
export class WebSocketTransport implements Transport {
  readonly name = 'websocket' as const;
  readonly #ep: Endpoint;
  readonly #opts: WebSocketTransportOptions;
  readonly #hooks: TransportHooks;
  readonly #pending = new Map<number, Pending>();
  /** Channels subscribed or being subscribed on the server. */
  readonly #active = new Set<string>();
  /**
   * Live publications of channels whose subscribe reply is not handled yet. The server writes the
   * reply before them, but the reply settles a promise: its handler runs as a microtask, after
   * every frame that `ws` (Node, ≥ 8.17) emits synchronously from the same read.
   */
  readonly #early = new Map<string, Publication[]>();
  #ws: WebSocketLike | undefined;
  #nextId = 0;
  #ready = false;
  /**
   * Whether the client has taken this transport as its connection (its first `refresh()`). The
   * subscribes sent behind `connect` may be answered before that; their outcomes wait in `#held`.
   */
  #adopted = false;
  readonly #held: Array<() => void> = [];
  #done = false;
  #refreshQueued = false;
  #liveness: ReturnType<typeof setInterval> | undefined;

  constructor(ep: Endpoint, opts: WebSocketTransportOptions, hooks: TransportHooks) {
    this.#ep = ep;
    this.#opts = opts;
    this.#hooks = hooks;
  }

  open(): Promise<ConnectInfo> {
    return new Promise<ConnectInfo>((resolve, reject) => {
      let settled = false;
      const fail = (err: Error): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.#done = true;
        try {
          ws.close();
        } catch {
          /* already closing */
        }
        reject(err);
      };
      const url = `${this.#ep.base.replace(/^http/, 'ws')}/connection/websocket`;
      let ws: WebSocketLike;
      try {
        ws = new this.#opts.WebSocket(url);
      } catch (err) {
        reject(transportError(`WebSocket failed: ${(err as Error).message}`, err));
        return;
      }
      this.#ws = ws;
      const timer = setTimeout(() => fail(transportError('WebSocket did not open in time')), this.#opts.openTimeoutMs);
      ws.onopen = () => {
        const params: Record<string, unknown> = { version: PROTOCOL_VERSION };
        if (this.#ep.token !== undefined) params.token = this.#ep.token;
        else if (this.#ep.user !== undefined) params.user = this.#ep.user;
        const connecting = this.command('connect', params);
        // Subscribes go right behind connect (the server runs them once connect is done): one
        // round trip to a resumed session instead of two.
        this.#reconcile();
        connecting.then(
          (r) => {
            if (settled) return;
            settled = true;
            clearTimeout(timer);
            this.#ready = true;
            const res = r as { client?: string; user?: string; ping?: number };
            this.#startLiveness(res.ping);
            resolve({ transport: 'websocket', client: res.client, user: res.user });
          },
          (err: Error) => fail(err),
        );
      };
      ws.onerror = () => undefined;
      ws.onmessage = (ev) => this.#onMessage(typeof ev.data === 'string' ? ev.data : String(ev.data));
      ws.onclose = (ev) => {
        const code = ev.code >= 3000 ? ev.code : ClientCode.TRANSPORT_CLOSED;
        this.#failPending();
        if (!settled) {
          fail(
            code === ClientCode.TRANSPORT_CLOSED
              ? transportError(`WebSocket closed (${ev.code})`)
              : new HeraldClientError(code, 'DISCONNECT', ev.reason || 'closed', code < 3500),
          );
          return;
        }
        if (this.#done) return;
        this.#done = true;
        this.#hooks.closed(code, ev.reason || 'connection closed');
      };
    });
  }

  command(cmd: string, params: Record<string, unknown>): Promise<unknown> {
    const ws = this.#ws;
    if (!ws || this.#done) return Promise.reject(closedError(cmd));
    const id = ++this.#nextId;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(timeoutError(cmd));
      }, this.#opts.commandTimeoutMs);
      this.#pending.set(id, { resolve, reject, timer });
      try {
        ws.send(JSON.stringify({ id, cmd, ...params }));
      } catch (err) {
        clearTimeout(timer);
        this.#pending.delete(id);
        reject(transportError(`send failed: ${(err as Error).message}`, err));
      }
    });
  }

  refresh(): void {
    if (!this.#ready) return;
    if (!this.#adopted) {
      this.#adopted = true;
      for (const outcome of this.#held.splice(0)) outcome();
    }
    if (this.#refreshQueued) return;
    this.#refreshQueued = true;
    queueMicrotask(() => {
      this.#refreshQueued = false;
      this.#reconcile();
    });
  }

  close(): void {
    if (this.#done) return;
    this.#done = true;
    this.#failPending();
    try {
      this.#ws?.close(1000, 'client closed');
    } catch {
      /* ignore */
    }
  }

  #reconcile(): void {
    if (this.#done) return;
    const wanted = this.#hooks.wanted();
    const names = new Set(wanted.map((w) => w.channel));
    for (const w of wanted) {
      if (this.#active.has(w.channel)) continue;
      this.#active.add(w.channel);
      this.#early.set(w.channel, []);
      const params: Record<string, unknown> = { channel: w.channel };
      if (w.since) params.since = formatPosition(w.since);
      else if (w.last) params.last = w.last;
      this.command('subscribe', params).then(
        (r) =>
          this.#whenAdopted(() => {
            const res = r as { epoch: string; offset: number; recovered: boolean; publications: Publication[] };
            const early = this.#early.get(w.channel) ?? [];
            this.#early.delete(w.channel);
            if (!this.#hooks.wanted().some((x) => x.channel === w.channel)) {
              this.#active.delete(w.channel);
              this.command('unsubscribe', { channel: w.channel }).catch(() => undefined);
              return;
            }
            const first = res.publications[0];
            const base = first ? { epoch: first.epoch, offset: first.offset - 1 } : { epoch: res.epoch, offset: res.offset };
            this.#hooks.subscribed(w.channel, base, res.recovered, res.publications);
            // The client drops what the reply already delivered (same epoch, offset not past it).
            for (const pub of early) this.#hooks.publication(pub);
          }),
        (err: Error) => {
          if (this.#done) return;
          this.#whenAdopted(() => {
            this.#active.delete(w.channel);
            this.#early.delete(w.channel);
            if (this.#done) return;
            if (err instanceof HeraldClientError && err.errorName !== 'CLOSED') this.#hooks.subscribeFailed(w.channel, err);
          });
        },
      );
    }
    for (const ch of [...this.#active]) {
      if (names.has(ch)) continue;
      this.#active.delete(ch);
      this.#early.delete(ch);
      this.command('unsubscribe', { channel: ch }).catch(() => undefined);
    }
  }

  /** Run `outcome` now when the client has taken this transport, else once it does (never if it does not). */
  #whenAdopted(outcome: () => void): void {
    if (this.#adopted) outcome();
    else this.#held.push(outcome);
  }

  #onMessage(text: string): void {
    let f: Record<string, unknown>;
    try {
      f = JSON.parse(text) as Record<string, unknown>;
    } catch {
      return;
    }
    if (typeof f.id === 'number' && ('result' in f || 'error' in f)) {
      const p = this.#pending.get(f.id);
      if (!p) return;
      this.#pending.delete(f.id);
      clearTimeout(p.timer);
      if (f.error) p.reject(HeraldClientError.fromWire(f.error as Record<string, never>));
      else p.resolve(f.result);
      return;
    }
    switch (f.type) {
      case 'pub': {
        const early = this.#early.get(f.channel as string);
        if (early) early.push(f as unknown as Publication);
        else this.#hooks.publication(f as unknown as Publication);
        break;
      }
      case 'join':
      case 'leave':
        this.#hooks.channelEvent(f.type, f.channel as string, f.user as string | undefined, f.client as string | undefined);
        break;
      case 'unsubscribed':
        this.#active.delete(f.channel as string);
        this.#early.delete(f.channel as string);
        this.#hooks.unsubscribed(f.channel as string, (f.reason as string) ?? 'unsubscribed');
        break;
      default:
        break;
    }
  }

  /**
   * Browsers answer the server's pings but never see them, so a silently dead link would go
   * unnoticed: send a `ping` command every server ping interval and drop the session when a reply
   * does not come within the command timeout.
   */
  #startLiveness(intervalMs: number | undefined): void {
    if (!intervalMs || intervalMs <= 0) return;
    this.#liveness = setInterval(
      () => {
        if (this.#done) return;
        this.command('ping', {}).catch((err: HeraldClientError) => {
          if (this.#done || err.errorName !== 'TIMEOUT') return;
          this.#done = true;
          this.#failPending();
          try {
            this.#ws?.close();
          } catch {
            /* ignore */
          }
          this.#hooks.closed(ClientCode.TRANSPORT_CLOSED, 'no reply to ping');
        });
      },
      Math.max(1_000, intervalMs),
    );
    (this.#liveness as { unref?: () => void }).unref?.();
  }

  #failPending(): void {
    if (this.#liveness) clearInterval(this.#liveness);
    this.#liveness = undefined;
    for (const [id, p] of this.#pending) {
      clearTimeout(p.timer);
      p.reject(closedError(`command ${id}`));
    }
    this.#pending.clear();
  }
}
