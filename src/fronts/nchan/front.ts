/**
 * The Nchan-compatible front: Nchan's HTTP pub/sub wire protocol on Herald's core. Routes
 * (`/pub/<id>`, `/sub/<id>[,<id>…]`, `/pubsub/<id>`, `/nchan_stub_status` by default) map Nchan
 * channel ids onto core channels, so Nchan publishers reach native subscribers and the server
 * API reaches Nchan subscribers. See docs/nchan.md for the route options and the differences.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { NchanSubscriberType } from '../../core/config-nchan.js';
import type { HeraldCore } from '../../core/core.js';
import type { Connection } from '../../core/hub.js';
import { keyEquals } from '../../core/net-policy.js';
import { apiAuthorized, presentedKey } from '../../transports/http.js';
import { ChannelRegistry } from './channel-state.js';
import { corsHeaders, originAllowed, preflightHeaders } from './cors.js';
import { authorize, callback, hookHeaders, type HookReply } from './hooks.js';
import { InvalidMessageIdError, parseCompoundId, parseTags } from './ids.js';
import { infoFormat, renderInfo, type NchanChannelInfo } from './info.js';
import { NchanChannels } from './publisher.js';
import { channelIds, coreChannel, matchRoute, resolveRoute, type NchanRoute, type RouteMatch } from './routes.js';
import { ChunkedSink, EventSourceSink, LongPollSink, MultipartSink, RawStreamSink } from './sinks.js';
import { stubStatus } from './status.js';
import { NchanSubscription, type Sink, type StartFrom } from './subscription.js';
import { NchanWebSockets } from './websocket.js';

/** What the front needs from the server that hosts it. */
export interface NchanHost {
  readonly core: HeraldCore;
  addHttpHandler(handler: (req: IncomingMessage, res: ServerResponse, url: URL) => boolean | Promise<boolean>): void;
  addUpgradeHandler(handler: (req: IncomingMessage, socket: Duplex, head: Buffer, url: URL) => boolean): void;
  onClose(hook: () => void | Promise<void>): void;
}

/** A request refused before any subscription: status, headers, body. */
export interface Refusal {
  readonly status: number;
  readonly headers?: Record<string, string>;
  readonly body?: string | Buffer;
}

/** A subscriber request checked and ready to start. */
export interface SubscribePlan {
  readonly route: NchanRoute;
  readonly ids: string[];
  readonly channels: string[];
  readonly from: StartFrom;
}

/** How often idle channel id state is swept, ms. */
const SWEEP_INTERVAL_MS = 60_000;
/** Idle time after which a channel's id state is forgotten when messages never expire, ms. */
const IDLE_FOREVER_MS = 3_600_000;

/** The Nchan front of one node. */
export class NchanFront {
  readonly core: HeraldCore;
  readonly routes: readonly NchanRoute[];
  readonly ids = new ChannelRegistry();
  readonly channels: NchanChannels;
  readonly #ws: NchanWebSockets;
  readonly #live = new Set<NchanSubscription>();
  readonly #conns = new Map<NchanSubscription, Connection>();
  readonly #sweeper: NodeJS.Timeout;
  /** Keep-alive timers: one per route and type with a ping interval, over that route's sinks. */
  readonly #pingers = new Map<string, { timer: NodeJS.Timeout; sinks: Set<Sink> }>();

  constructor(core: HeraldCore) {
    this.core = core;
    this.routes = core.config.nchan.routes.map(resolveRoute);
    this.channels = new NchanChannels(core, this.ids, core.config.nchan.hookTimeoutMs);
    this.#ws = new NchanWebSockets(this);
    const longest = Math.max(...this.routes.map((r) => r.messageTimeoutMs || IDLE_FOREVER_MS), IDLE_FOREVER_MS);
    this.#sweeper = setInterval(() => this.#sweep(longest), SWEEP_INTERVAL_MS);
    this.#sweeper.unref();
  }

  /** Forget the id state of channels idle longer than any message can live and without subscribers. */
  #sweep(idleMs: number): void {
    const cutoff = Date.now() - idleMs;
    this.ids.sweep((ch, st) => st.touchedAt > cutoff || this.core.hub.subscriberCount(ch) > 0);
  }

  /** Subscriptions currently open. */
  get subscriberCount(): number {
    return this.#live.size;
  }

  /** Match a URL to a route. */
  match(url: URL): RouteMatch | undefined {
    return this.routes.length ? matchRoute(this.routes, url) : undefined;
  }

  /**
   * Whether the request may publish, delete or read channel info (publishAccess): `any`;
   * `key` = the API key only; `loopback-or-key` = the server API's rule (the key when one is
   * configured, else loopback trust). Keys are compared in constant time.
   */
  mayPublish(req: IncomingMessage): boolean {
    const access = this.core.config.nchan.publishAccess;
    if (access === 'any') return true;
    if (access === 'key') return keyEquals(presentedKey(req), this.core.config.apiKey);
    return apiAuthorized(req, this.core.config.apiKey, this.core.net);
  }

  /** Handle an HTTP request; false when no route matches. */
  async handleHttp(req: IncomingMessage, res: ServerResponse, url: URL): Promise<boolean> {
    const m = this.match(url);
    if (!m) return false;
    const { route } = m;
    if (route.role === 'status') {
      // Node-wide counters: served with the server API's authority only.
      if (!apiAuthorized(req, this.core.config.apiKey, this.core.net)) return send(res, { status: 403 });
      const body = await stubStatus(this);
      res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': String(Buffer.byteLength(body)) }).end(body);
      return true;
    }
    const publisher = route.role === 'publisher';
    // An Origin outside allowOrigin gets 403, with the CORS headers, for every method (as Nchan).
    if (!originAllowed(route, req)) return send(res, { status: 403, headers: corsHeaders(route, req) as Record<string, string> });
    if (req.method === 'OPTIONS') {
      res.writeHead(200, preflightHeaders(route, req)).end();
      return true;
    }
    const pubMethod = req.method === 'POST' || req.method === 'PUT' || req.method === 'DELETE';
    if (publisher || (route.role === 'pubsub' && pubMethod)) {
      await this.#publisherRequest(route, m.idText, req, res);
      return true;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, { status: 403 });
    await this.#subscriberRequest(route, m.idText, req, res, url);
    return true;
  }

  /** Handle an upgrade; false when no route matches. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, url: URL): boolean {
    const m = this.match(url);
    if (!m || m.route.role === 'status') return false;
    this.#ws.upgrade(m, req, socket, head, url);
    return true;
  }

  /** End every subscription (server shutdown). */
  close(): void {
    clearInterval(this.#sweeper);
    for (const p of this.#pingers.values()) clearInterval(p.timer);
    for (const s of [...this.#live]) s.close();
    this.#ws.close();
  }

  /**
   * Whether Nchan subscribers may read a core channel: never a reserved namespace (IM inboxes),
   * and a channel whose policy needs a token only through a route with an authorize hook.
   */
  readable(route: NchanRoute, channel: string): boolean {
    if (!this.core.reservedAllows(undefined, channel)) return false;
    return !this.core.policy(channel).requireToken || route.authorizeUrl !== undefined;
  }

  /** Whether Nchan publishers may write a core channel: never a reserved namespace. */
  writable(channel: string): boolean {
    return this.core.reservedAllows(undefined, channel);
  }

  /**
   * Run a publisher route's authorize hook. Unlike for subscribers, Nchan answers any refusal
   * with 403 (an unreachable or slow hook keeps its 502 / 504).
   */
  async authorizePublisher(route: NchanRoute, idText: string, req: IncomingMessage, type: 'http' | 'websocket'): Promise<Refusal | undefined> {
    if (!route.authorizeUrl) return undefined;
    const denied = await authorize(route.authorizeUrl, hookHeaders(req, idText, { 'X-Publisher-Type': type }), this.core.config.nchan.hookTimeoutMs);
    if (!denied) return undefined;
    return { status: denied.status === 502 || denied.status === 504 ? denied.status : 403 };
  }

  /** Check ids for a route; a Refusal when unusable. */
  checkIds(route: NchanRoute, idText: string): string[] | Refusal {
    const ids = channelIds(route, idText, this.core.config.limits.maxChannelNameLength);
    if (ids === 'empty' || ids === 'invalid') return { status: 400, headers: { 'Content-Type': 'text/plain' }, body: ids === 'empty' ? 'No channel id provided.' : 'Invalid channel id.' };
    if (typeof ids === 'string') return { status: 403 };
    return ids;
  }

  /**
   * Check a subscriber request (ids, start position, existing-only, authorize hook). Resolves
   * the plan or a refusal to send as is.
   */
  async planSubscribe(route: NchanRoute, idText: string, req: IncomingMessage, url: URL, type: NchanSubscriberType): Promise<SubscribePlan | Refusal> {
    const ids = this.checkIds(route, idText);
    if (!Array.isArray(ids)) return ids;
    let from: StartFrom;
    try {
      from = startFrom(req, url, ids.length, route.firstMessage);
    } catch (err) {
      if (err instanceof InvalidMessageIdError) return { status: 400, headers: { 'Content-Type': 'text/plain' }, body: 'Message ID invalid' };
      throw err;
    }
    const channels = ids.map((id) => coreChannel(route.group, id));
    for (const ch of channels) if (!this.readable(route, ch)) return { status: 403 };
    if (route.existingChannelsOnly) {
      for (const ch of channels) if (!(await this.channels.exists(ch))) return { status: 403 };
    }
    if (route.authorizeUrl) {
      const denied: HookReply | undefined = await authorize(
        route.authorizeUrl,
        hookHeaders(req, idText, { 'X-Subscriber-Type': type }),
        this.core.config.nchan.hookTimeoutMs,
      );
      if (denied) return { status: denied.status, headers: denied.headers, body: denied.body };
    }
    return { route, ids, channels, from };
  }

  /**
   * Start a subscription for a plan with a sink; wires callbacks, channel events, the hub
   * connection and cleanup. `stream` = the type fires subscribe/unsubscribe callbacks.
   */
  async startSubscription(plan: SubscribePlan, sink: Sink, req: IncomingMessage, type: NchanSubscriberType, disconnect: () => void): Promise<NchanSubscription> {
    const { route } = plan;
    const sub = new NchanSubscription(this.core, this.ids, plan.channels, sink);
    const streaming = type !== 'longpoll' && type !== 'intervalpoll';
    const conn: Connection = { id: randomUUID(), transport: `nchan-${type}`, user: undefined, disconnect: () => { sub.close(); disconnect(); } };
    this.#live.add(sub);
    this.#conns.set(sub, conn);
    this.core.hub.addConnection(conn);
    const cbHeaders = (): Record<string, string> => hookHeaders(req, plan.ids.join(route.splitDelimiter ?? ','), { 'X-Subscriber-Type': type });
    if (streaming && route.subscribeUrl) callback(route.subscribeUrl, cbHeaders(), this.core.config.nchan.hookTimeoutMs);
    if (route.channelEvents) for (const id of plan.ids) void this.channels.event(`subscriber_enqueue ${id}`, id);
    sub.onEnd = () => {
      this.#live.delete(sub);
      this.#conns.delete(sub);
      this.core.hub.removeConnection(conn);
      if (streaming && route.unsubscribeUrl) callback(route.unsubscribeUrl, cbHeaders(), this.core.config.nchan.hookTimeoutMs);
      if (route.channelEvents) for (const id of plan.ids) void this.channels.event(`subscriber_dequeue ${id}`, id);
    };
    const pingMs = type === 'eventsource' ? route.eventsourcePingIntervalMs : type === 'websocket' ? route.websocketPingIntervalMs : 0;
    if (pingMs > 0 && sink.ping) {
      const pinger = this.#pinger(`${route.path} ${type}`, pingMs);
      pinger.add(sink);
      const ended = sub.onEnd;
      sub.onEnd = (reason) => {
        pinger.delete(sink);
        ended?.(reason);
      };
    }
    await sub.start(plan.from, route.subscriberTimeoutMs);
    return sub;
  }

  #pinger(key: string, ms: number): Set<Sink> {
    let p = this.#pingers.get(key);
    if (!p) {
      const sinks = new Set<Sink>();
      const timer = setInterval(() => {
        for (const s of sinks) s.ping?.();
      }, ms);
      timer.unref();
      p = { timer, sinks };
      this.#pingers.set(key, p);
    }
    return p.sinks;
  }

  async #publisherRequest(route: NchanRoute, idText: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = req.method ?? 'GET';
    if (method !== 'GET' && method !== 'HEAD' && method !== 'POST' && method !== 'PUT' && method !== 'DELETE') return void send(res, { status: 403 });
    if (!this.mayPublish(req)) return void send(res, { status: 403 });
    const ids = this.checkIds(route, idText);
    if (!Array.isArray(ids)) return void send(res, ids);
    if (!ids.every((id) => this.writable(coreChannel(route.group, id)))) return void send(res, { status: 403 });
    const denied = await this.authorizePublisher(route, idText, req, 'http');
    if (denied) return void send(res, denied);
    const cors = corsHeaders(route, req);
    const format = infoFormat(req.headers.accept);
    const reply = (status: number, info: NchanChannelInfo | undefined): void => {
      if (!info) return void res.writeHead(status, { 'Content-Length': '0', ...cors }).end();
      const { contentType, body } = renderInfo(info, format);
      res.writeHead(status, { 'Content-Type': contentType, 'Content-Length': String(Buffer.byteLength(body)), ...cors }).end(method === 'HEAD' ? undefined : body);
    };
    if (method === 'GET' || method === 'HEAD') {
      const info = await this.channels.info(coreChannel(route.group, ids[ids.length - 1]!));
      return reply(info ? 200 : 404, info);
    }
    if (method === 'DELETE') {
      const info = await this.channels.delete(route, ids);
      return reply(info ? 200 : 404, info);
    }
    const body = await readBody(req, this.core.config.limits.maxMessageBytes);
    if (!body) return void send(res, { status: 413 });
    const ct = req.headers['content-type'];
    const ev = req.headers['x-eventsource-event'];
    const out = await this.channels.publish(route, ids, {
      payload: body,
      ...(ct ? { contentType: ct } : {}),
      ...(typeof ev === 'string' && ev ? { event: ev } : {}),
    }, req);
    reply(out.status, out.info);
  }

  async #subscriberRequest(route: NchanRoute, idText: string, req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const type = detectType(route, req);
    if (!type) return void send(res, { status: 403 });
    const plan = await this.planSubscribe(route, idText, req, url, type);
    if (!('channels' in plan)) return void send(res, plan);
    if (res.destroyed || req.socket.destroyed) return;
    // Only one-message answers expose the id headers (as Nchan); streams carry ids in-band.
    const cors: OutgoingHttpHeaders = corsHeaders(route, req, type === 'longpoll' || type === 'intervalpoll');
    const max = this.core.config.limits.maxOutboundBytes;
    let sink: Sink;
    switch (type) {
      case 'eventsource': sink = new EventSourceSink(res, cors, max); break;
      case 'chunked': sink = new ChunkedSink(res, cors, max); break;
      case 'multipart-mixed': sink = new MultipartSink(res, cors, max); break;
      case 'http-raw-stream': sink = new RawStreamSink(res, cors, max); break;
      default: sink = new LongPollSink(res, cors);
    }
    const started: { sub?: NchanSubscription } = {};
    // Attached before starting: a client may go away while history is being read.
    res.on('close', () => started.sub?.close());
    const sub = (started.sub = await this.startSubscription(plan, sink, req, type, () => res.destroy()));
    if (res.destroyed) sub.close();
    if (!sub.open) return;
    if (type === 'intervalpoll' && !res.headersSent) {
      sub.close();
      const h: OutgoingHttpHeaders = { 'Content-Length': '0', Vary: 'If-None-Match, If-Modified-Since', ...cors };
      const ims = req.headers['if-modified-since'];
      const inm = req.headers['if-none-match'];
      if (ims) h['Last-Modified'] = ims;
      if (inm) h['Etag'] = inm;
      res.writeHead(304, h).end();
    }
  }
}

/** Pick the subscriber type of a GET (WebSocket upgrades are handled elsewhere); undefined → 403. */
export function detectType(route: NchanRoute, req: IncomingMessage): NchanSubscriberType | undefined {
  const t = route.types;
  const accept = req.headers.accept ?? '';
  if (t.has('eventsource') && accept.includes('text/event-stream')) return 'eventsource';
  const te = String(req.headers.te ?? '');
  if (t.has('chunked') && /(^|,)\s*chunked\b/i.test(te) && !/chunked\s*;\s*q=0(\.0*)?\s*($|,)/i.test(te)) return 'chunked';
  if (t.has('multipart-mixed') && accept.includes('multipart/mixed')) return 'multipart-mixed';
  if (t.has('intervalpoll')) return 'intervalpoll';
  if (t.has('http-raw-stream')) return 'http-raw-stream';
  if (t.has('longpoll')) return 'longpoll';
  return undefined;
}

/**
 * Where a subscriber starts (Nchan's order): If-Modified-Since + If-None-Match; a compound id
 * in If-None-Match; `Last-Event-ID` or `?last_event_id=`; else the route's first message.
 * Throws InvalidMessageIdError for a malformed id.
 */
export function startFrom(req: IncomingMessage, url: URL, count: number, first: 'oldest' | 'newest' | number): StartFrom {
  const ims = req.headers['if-modified-since'];
  const inm = req.headers['if-none-match'];
  if (ims) {
    const t = Math.floor(Date.parse(ims) / 1000);
    // Nchan reads the tags from If-None-Match; a time without them is an invalid id.
    if (t > 0) {
      if (!inm) throw new InvalidMessageIdError();
      return { kind: 'after', id: { time: t, tags: parseTags(inm, count) } };
    }
  }
  if (inm) {
    const id = parseCompoundId(inm, count);
    if (id && id.time > 0) return { kind: 'after', id };
  }
  const lei = headerValue(req.headers['last-event-id']) ?? url.searchParams.get('last_event_id') ?? undefined;
  if (lei) {
    const id = parseCompoundId(lei, count);
    if (id && id.time > 0) return { kind: 'after', id };
  }
  return typeof first === 'number' ? { kind: 'nth', n: first } : { kind: first };
}

function headerValue(v: string | string[] | undefined): string | undefined {
  const s = Array.isArray(v) ? v[0] : v;
  return s === '' ? undefined : s;
}

/** Send a refusal as a complete response. */
export function send(res: ServerResponse, r: Refusal): true {
  const body = r.body === undefined ? Buffer.alloc(0) : Buffer.isBuffer(r.body) ? r.body : Buffer.from(r.body);
  res.writeHead(r.status, { ...r.headers, 'Content-Length': String(body.length) }).end(body);
  return true;
}

/** Read a request body up to `limit` bytes; undefined when larger. */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) over = true;
      else chunks.push(c);
    });
    req.on('end', () => resolve(over ? undefined : Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/** Create the front for a server and plug it in (routes, upgrades, shutdown). */
export function attachNchanFront(host: NchanHost): NchanFront {
  const front = new NchanFront(host.core);
  host.addHttpHandler((req, res, url) => front.handleHttp(req, res, url));
  host.addUpgradeHandler((req, socket, head, url) => front.handleUpgrade(req, socket, head, url));
  host.onClose(() => front.close());
  return front;
}
