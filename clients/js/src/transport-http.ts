/**
 * The native protocol for clients without WebSocket: commands by `POST /connection/command`,
 * publications by EventSource (`/connection/sse`) or long-poll (`/connection/poll`). The server
 * keeps no session between requests, so every stream request names all channels with their
 * positions; a new subscription is first checked (and positioned) with `history limit 0`.
 */
import { ClientCode, ErrorCode } from './codes.js';
import { HeraldClientError, timeoutError, transportError } from './errors.js';
import type { Endpoint, Transport, TransportHooks } from './transport.js';
import {
  type ConnectInfo,
  type EventSourceCtor,
  type EventSourceLike,
  type FetchFn,
  formatPosition,
  parsePosition,
  type Position,
  type Publication,
  type TransportName,
  tokenSubject,
} from './types.js';

/** Options of the HTTP transports. */
export interface HttpTransportOptions {
  readonly fetch: FetchFn;
  readonly EventSource?: EventSourceCtor;
  readonly commandTimeoutMs: number;
  readonly openTimeoutMs: number;
}

/** Wire error codes for HTTP statuses of answers that carry only `{code,message}`. */
const STATUS_CODES: Record<number, number> = {
  400: ErrorCode.BAD_REQUEST,
  401: ErrorCode.UNAUTHORIZED,
  403: ErrorCode.PERMISSION_DENIED,
  404: ErrorCode.NOT_FOUND,
  409: ErrorCode.CONFLICT,
  413: ErrorCode.MESSAGE_TOO_LARGE,
  429: ErrorCode.TOO_MANY_REQUESTS,
  503: ErrorCode.UNAVAILABLE,
};

interface StreamChannel {
  readonly channel: string;
  since: Position;
  /** Whether `hooks.subscribed` was called for this channel in this session. */
  announced: boolean;
  /** The client asked to resume (so `recovered` is meaningful). */
  readonly resuming: boolean;
}

/** Shared part: commands over POST, subscription bookkeeping. */
abstract class HttpTransport implements Transport {
  abstract readonly name: TransportName;
  protected ep: Endpoint;
  protected readonly opts: HttpTransportOptions;
  protected readonly hooks: TransportHooks;
  /** Channels of the current stream request, in request order. */
  protected stream: StreamChannel[] = [];
  protected done = false;
  #nextId = 0;
  #reconciling: Promise<void> | undefined;
  #again = false;

  constructor(ep: Endpoint, opts: HttpTransportOptions, hooks: TransportHooks) {
    this.ep = ep;
    this.opts = opts;
    this.hooks = hooks;
  }

  async open(): Promise<ConnectInfo> {
    await this.command('ping', {});
    // No connect reply over HTTP: the server accepted the token, so its subject is the user.
    return { transport: this.name, user: this.ep.user ?? tokenSubject(this.ep.token) };
  }

  /** Query string carrying the identity (`user=` in development mode, `token=` for EventSource). */
  protected identityQuery(withToken: boolean): string {
    if (this.ep.token !== undefined) return withToken ? `token=${encodeURIComponent(this.ep.token)}` : '';
    if (this.ep.user !== undefined) return `user=${encodeURIComponent(this.ep.user)}`;
    return '';
  }

  setToken(token: string): void {
    this.ep = { ...this.ep, token };
  }

  protected headers(): Record<string, string> {
    return this.ep.token !== undefined ? { authorization: `Bearer ${this.ep.token}` } : {};
  }

  async command(cmd: string, params: Record<string, unknown>): Promise<unknown> {
    const id = ++this.#nextId;
    const q = this.identityQuery(false);
    const ctrl = new AbortController();
    const timer = setTimeout(() => ctrl.abort(), this.opts.commandTimeoutMs);
    let res: Response;
    try {
      res = await this.opts.fetch(`${this.ep.base}/connection/command${q ? `?${q}` : ''}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...this.headers() },
        body: JSON.stringify({ id, cmd, ...params }),
        signal: ctrl.signal,
      });
    } catch (err) {
      throw ctrl.signal.aborted ? timeoutError(cmd) : transportError(`POST ${cmd} failed: ${(err as Error).message}`, err);
    } finally {
      clearTimeout(timer);
    }
    let body: Record<string, unknown>;
    try {
      body = (await res.json()) as Record<string, unknown>;
    } catch (err) {
      throw transportError(`POST ${cmd}: bad response (${res.status})`, err);
    }
    if (res.ok && 'result' in body) return body.result;
    const e = (body.error ?? {}) as Record<string, never>;
    throw HeraldClientError.fromWire({
      code: e.code ?? STATUS_CODES[res.status] ?? ErrorCode.INTERNAL,
      name: e.name ?? (body.code as string),
      message: e.message ?? (body.message as string),
      temporary: e.temporary ?? res.status >= 500,
    });
  }

  refresh(): void {
    if (this.done) return;
    if (this.#reconciling) {
      this.#again = true;
      return;
    }
    this.#reconciling = (async () => {
      do {
        this.#again = false;
        await this.#reconcile();
      } while (this.#again && !this.done);
      this.#reconciling = undefined;
    })();
  }

  async #reconcile(): Promise<void> {
    const wanted = this.hooks.wanted();
    const current = new Map(this.stream.map((s) => [s.channel, s]));
    const next: StreamChannel[] = [];
    let changed = false;
    for (const w of wanted) {
      const cur = current.get(w.channel);
      if (cur) {
        if (w.since) cur.since = w.since;
        next.push(cur);
        continue;
      }
      changed = true;
      if (w.since) {
        next.push({ channel: w.channel, since: w.since, announced: false, resuming: true });
        continue;
      }
      // Check access and learn where the channel stands, so the stream can start from there.
      try {
        const r = (await this.command('history', { channel: w.channel, limit: 0 })) as { epoch: string; offset: number };
        const since = { epoch: r.epoch, offset: Math.max(0, r.offset - (w.last ?? 0)) };
        next.push({ channel: w.channel, since, announced: false, resuming: false });
      } catch (err) {
        if (this.done) return;
        if (err instanceof HeraldClientError && err.errorName !== 'TRANSPORT' && err.errorName !== 'TIMEOUT') this.hooks.subscribeFailed(w.channel, err);
        else this.fail(ClientCode.TRANSPORT_CLOSED, (err as Error).message);
      }
    }
    if (next.length !== this.stream.length) changed = true;
    if (this.done || !changed) return;
    // Positions of kept channels come from the client, which has seen every publication.
    for (const s of next) {
      const w = wanted.find((x) => x.channel === s.channel);
      if (w?.since) s.since = w.since;
    }
    this.stream = next;
    this.restart();
  }

  /** Start (or restart) the stream request for `this.stream`. */
  protected abstract restart(): void;

  /** The `channel=…&since=…` query of the stream. */
  protected streamQuery(withToken: boolean): string {
    const q = this.stream.map((s) => `channel=${encodeURIComponent(s.channel)}`);
    const sinceList = this.stream.map((s) => formatPosition(this.#latest(s))).join(',');
    q.push(`since=${encodeURIComponent(sinceList)}`);
    const id = this.identityQuery(withToken);
    if (id) q.push(id);
    return q.join('&');
  }

  /** The newest known position of a stream channel (the client's, which follows publications). */
  #latest(s: StreamChannel): Position {
    const w = this.hooks.wanted().find((x) => x.channel === s.channel);
    if (w?.since && (w.since.epoch !== s.since.epoch || w.since.offset > s.since.offset)) s.since = w.since;
    return s.since;
  }

  /** Handle one pushed frame; returns false when the session ended. */
  protected frame(f: Record<string, unknown>, recovered: boolean | undefined, positions: Array<Position | undefined>): boolean {
    switch (f.type) {
      case 'pub': {
        this.#announce(recovered, positions);
        this.hooks.publication(f as unknown as Publication);
        return true;
      }
      case 'subscribed': {
        const i = this.stream.findIndex((s) => s.channel === f.channel);
        const s = this.stream[i];
        if (!s) return true;
        const base = positions[i] ?? { epoch: f.epoch as string, offset: f.offset as number };
        s.announced = true;
        this.hooks.subscribed(s.channel, base, s.resuming ? f.recovered !== false : true, []);
        return true;
      }
      case 'unsubscribed':
        this.stream = this.stream.filter((s) => s.channel !== f.channel);
        this.hooks.unsubscribed(f.channel as string, (f.reason as string) ?? 'unsubscribed');
        return true;
      case 'disconnect':
        this.fail(typeof f.code === 'number' ? f.code : ClientCode.TRANSPORT_CLOSED, (f.reason as string) ?? 'disconnected');
        return false;
      default:
        return true;
    }
  }

  /** Long-poll: announce channels not yet announced, with the batch's `recovered` flag. */
  #announce(recovered: boolean | undefined, _positions: Array<Position | undefined>): void {
    if (recovered === undefined) return;
    for (const s of this.stream) {
      if (s.announced) continue;
      s.announced = true;
      this.hooks.subscribed(s.channel, s.since, s.resuming ? recovered : true, []);
    }
  }

  /** Announce pending channels (long-poll, before a batch). */
  protected announcePending(recovered: boolean): void {
    this.#announce(recovered, []);
  }

  /** End the session and tell the client. */
  protected fail(code: number, reason: string): void {
    if (this.done) return;
    this.done = true;
    this.stop();
    this.hooks.closed(code, reason);
  }

  /** Stop the stream request. */
  protected abstract stop(): void;

  close(): void {
    if (this.done) return;
    this.done = true;
    this.stop();
  }
}

/** Parse an SSE id / long-poll cursor: one position per stream channel. */
function positionList(text: string | undefined, count: number): Array<Position | undefined> {
  if (!text) return [];
  const parts = text.split(',');
  if (parts.length !== count) return [];
  return parts.map((p) => (p ? parsePosition(p) : undefined));
}

/** Publications by EventSource, commands by POST. */
export class SseTransport extends HttpTransport {
  readonly name = 'sse' as const;
  #es: EventSourceLike | undefined;

  override async open(): Promise<ConnectInfo> {
    if (!this.opts.EventSource) throw transportError('EventSource is not available');
    return super.open();
  }

  protected restart(): void {
    this.stop();
    if (this.stream.length === 0 || this.done) return;
    const Ctor = this.opts.EventSource!;
    const es = new Ctor(`${this.ep.base}/connection/sse?${this.streamQuery(true)}`);
    this.#es = es;
    const channels = this.stream;
    es.onmessage = (ev) => {
      if (this.#es !== es) return;
      let f: Record<string, unknown>;
      try {
        f = JSON.parse(ev.data) as Record<string, unknown>;
      } catch {
        return;
      }
      this.frame(f, undefined, positionList(ev.lastEventId, channels.length));
    };
    es.onerror = () => {
      if (this.#es !== es) return;
      // The EventSource would retry on its own with a stale channel set; the client reconnects instead.
      this.fail(ClientCode.TRANSPORT_CLOSED, 'event stream failed');
    };
  }

  protected stop(): void {
    const es = this.#es;
    this.#es = undefined;
    es?.close();
  }
}

/** Publications by long-poll, commands by POST. */
export class LongPollTransport extends HttpTransport {
  readonly name = 'long-poll' as const;
  #ctrl: AbortController | undefined;
  #generation = 0;

  protected restart(): void {
    this.stop();
    if (this.stream.length === 0 || this.done) return;
    void this.#loop(++this.#generation);
  }

  async #loop(gen: number): Promise<void> {
    while (!this.done && gen === this.#generation && this.stream.length > 0) {
      const ctrl = new AbortController();
      this.#ctrl = ctrl;
      const channels = this.stream;
      let body: { position?: string; recovered?: boolean; publications?: Array<Record<string, unknown>> };
      const q = this.streamQuery(false);
      // Where each channel stood when the poll was sent, and whether it was announced before it.
      const sent = new Map(channels.map((s) => [s.channel, { at: s.since, announced: s.announced }]));
      try {
        const res = await this.opts.fetch(`${this.ep.base}/connection/poll?${q}`, { headers: this.headers(), signal: ctrl.signal });
        body = (await res.json()) as typeof body;
        if (!res.ok) throw new Error(`long-poll answered ${res.status}`);
      } catch (err) {
        if (ctrl.signal.aborted || gen !== this.#generation || this.done) return;
        this.fail(ClientCode.TRANSPORT_CLOSED, `long-poll failed: ${(err as Error).message}`);
        return;
      }
      if (gen !== this.#generation || this.done) return;
      this.announcePending(body.recovered !== false);
      for (const f of body.publications ?? []) {
        if (f.type === 'pub') {
          const x = sent.get(f.channel as string);
          if (x) x.at = { epoch: f.epoch as string, offset: f.offset as number };
        }
        if (!this.frame(f, true, [])) return;
      }
      const positions = positionList(body.position, channels.length);
      for (const [i, s] of channels.entries()) {
        const p = positions[i];
        if (!p) continue;
        const x = sent.get(s.channel);
        // The channel moved past what this batch delivered (its history no longer covered the
        // time between two polls): report the gap like a failed resume so the app re-syncs.
        if (x?.announced && (p.epoch !== x.at.epoch || p.offset > x.at.offset)) this.hooks.subscribed(s.channel, p, false, []);
        s.since = p;
        this.hooks.position(s.channel, p);
      }
    }
  }

  protected stop(): void {
    this.#generation++;
    this.#ctrl?.abort();
    this.#ctrl = undefined;
  }
}
