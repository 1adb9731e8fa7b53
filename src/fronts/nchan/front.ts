/**
 * The Nchan-compatible front: Nchan's HTTP pub/sub wire protocol on Herald's core. Routes
 * (`/pub/<id>`, `/sub/<id>[,<id>…]`, `/pubsub/<id>`, `/nchan_stub_status` by default) map Nchan
 * channel ids onto core channels, so Nchan publishers reach native subscribers and the server
 * API reaches Nchan subscribers. See docs/nchan.md for the route options and the differences.
 */
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { NchanSubscriberType } from '../../core/config-nchan.js';
import type { HeraldCore } from '../../core/core.js';
import { AdmissionTicket } from '../../core/client-sessions.js';
import { HeraldError } from '../../core/errors.js';
import { readBody } from '../../transports/http.js';
import { ChannelRegistry } from './channel-state.js';
import { corsHeaders, originAllowed, preflightHeaders } from './cors.js';
import { FORBIDDEN_PAGE, NchanGate, resumeTags, type Refusal } from './gate.js';
import { infoFormat, renderInfo, type NchanChannelInfo } from './info.js';
import { NchanChannels } from './publisher.js';
import { matchRoute, resolveRoute, coreChannel, type NchanRoute, type RouteMatch } from './routes.js';
import { ChunkedSink, EventSourceSink, LongPollSink, MultipartSink, RawStreamSink } from './sinks.js';
import { stubStatus } from './status.js';
import { NchanSubscribers } from './subscribers.js';
import type { NchanSubscription, Sink } from './subscription.js';
import { NchanWebSockets } from './websocket.js';

/** What the front needs from the server that hosts it. */
export interface NchanHost {
  readonly core: HeraldCore;
  addHttpHandler(handler: (req: IncomingMessage, res: ServerResponse, url: URL) => boolean | Promise<boolean>): void;
  addUpgradeHandler(handler: (req: IncomingMessage, socket: Duplex, head: Buffer, url: URL) => boolean): void;
  onClose(hook: () => void | Promise<void>): void;
}

/** How often idle channel id state is swept, ms. */
const SWEEP_INTERVAL_MS = 60_000;
/** Idle time after which a channel's id state is forgotten when messages never expire, ms. */
const IDLE_FOREVER_MS = 3_600_000;

/**
 * The Nchan front of one node: the router. It matches routes and hands requests to the access
 * gate (gate.ts), the publisher services (publisher.ts), the subscriber registry
 * (subscribers.ts) and the WebSocket handling (websocket.ts).
 */
export class NchanFront {
  readonly core: HeraldCore;
  readonly routes: readonly NchanRoute[];
  readonly ids = new ChannelRegistry();
  readonly channels: NchanChannels;
  readonly gate: NchanGate;
  readonly subscribers: NchanSubscribers;
  readonly #ws: NchanWebSockets;
  readonly #sweeper: NodeJS.Timeout;

  constructor(core: HeraldCore) {
    this.core = core;
    this.routes = core.config.nchan.routes.map(resolveRoute);
    this.channels = new NchanChannels(core, this.ids, core.config.nchan.hookTimeoutMs);
    this.gate = new NchanGate(core, this.channels);
    this.subscribers = new NchanSubscribers(core, this.ids, this.channels);
    this.#ws = new NchanWebSockets(core, this.gate, this.subscribers, this.channels);
    const longest = Math.max(...this.routes.map((r) => r.messageTimeoutMs || IDLE_FOREVER_MS), IDLE_FOREVER_MS);
    this.#sweeper = setInterval(() => this.#sweep(longest), SWEEP_INTERVAL_MS);
    this.#sweeper.unref();
  }

  /** Forget the id state of channels idle longer than any message can live and without subscribers. */
  #sweep(idleMs: number): void {
    const cutoff = Date.now() - idleMs;
    this.ids.sweep((ch, st) => st.touchedAt > cutoff || this.core.hub.subscriberCount(ch) > 0);
  }

  /** Match a URL to a route. */
  match(url: URL): RouteMatch | undefined {
    return this.routes.length ? matchRoute(this.routes, url) : undefined;
  }

  /** Handle an HTTP request; false when no route matches. */
  async handleHttp(req: IncomingMessage, res: ServerResponse, url: URL): Promise<boolean> {
    const m = this.match(url);
    if (!m) return false;
    const { route } = m;
    // Nchan (nginx) says `Connection: keep-alive` on every answer to a keep-alive request, close-
    // delimited streams included; naming it also keeps Node from adding its `Keep-Alive` header.
    if (res.shouldKeepAlive) res.setHeader('Connection', 'keep-alive');
    if (route.role === 'status') {
      if (!this.gate.mayReadStatus(req)) return send(res, { status: 403 });
      const body = await stubStatus(this.core, this.subscribers.count);
      res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': String(Buffer.byteLength(body)) }).end(body);
      return true;
    }
    const publisher = route.role === 'publisher';
    // An Origin outside allowOrigin gets 403, with the CORS headers, for every method (as Nchan).
    if (!originAllowed(route, req)) return send(res, { status: 403, headers: corsHeaders(route, req, this.core.net) as Record<string, string> });
    if (req.method === 'OPTIONS') {
      res.writeHead(200, preflightHeaders(route, req, this.core.net)).end();
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
    this.subscribers.close();
    this.#ws.close();
  }

  async #publisherRequest(route: NchanRoute, idText: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = req.method ?? 'GET';
    if (method !== 'GET' && method !== 'HEAD' && method !== 'POST' && method !== 'PUT' && method !== 'DELETE') return void send(res, { status: 403 });
    const ids = await this.gate.planPublish(route, idText, req, 'http', true);
    if (!Array.isArray(ids)) return void send(res, ids);
    const cors = corsHeaders(route, req, this.core.net);
    const format = infoFormat(req.headers.accept);
    const reply = (status: number, info: NchanChannelInfo | undefined): void => {
      // A publish refused by the upstream hook gets nginx's error page; a dropped one (204) no body at all.
      if (!info && status === 403) return void send(res, { ...FORBIDDEN_PAGE, headers: { ...FORBIDDEN_PAGE.headers, ...(cors as Record<string, string>) } });
      if (!info) return void res.writeHead(status, status === 204 ? cors : { 'Content-Length': '0', ...cors }).end();
      const { contentType, body } = renderInfo(info, format);
      res
        .writeHead(status, { 'Content-Type': contentType, 'Content-Length': String(Buffer.byteLength(body)), ...cors })
        .end(method === 'HEAD' ? undefined : body);
    };
    if (method === 'GET' || method === 'HEAD') {
      const info = await this.channels.info(coreChannel(route.group, ids[ids.length - 1]!));
      return reply(info ? 200 : 404, info);
    }
    if (method === 'DELETE') {
      const info = await this.channels.delete(route, ids);
      return reply(info ? 200 : 404, info);
    }
    let body: Buffer;
    try {
      body = await readBody(req, this.core.config.limits.maxMessageBytes);
    } catch (err) {
      if (err instanceof HeraldError && err.code === 'HERALD_ERR_PAYLOAD_TOO_LARGE') return void send(res, { status: 413 });
      throw err;
    }
    const ct = req.headers['content-type'];
    const ev = req.headers['x-eventsource-event'];
    const out = await this.channels.publish(
      route,
      ids,
      {
        payload: body,
        ...(ct ? { contentType: ct } : {}),
        ...(typeof ev === 'string' && ev ? { event: ev } : {}),
      },
      req,
    );
    reply(out.status, out.info);
  }

  async #subscriberRequest(route: NchanRoute, idText: string, req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const type = detectType(route, req);
    if (!type) return void send(res, { status: 403 });
    const plan = await this.gate.planSubscribe(route, idText, req, url, type);
    if (!('channels' in plan)) return void send(res, plan);
    if (res.destroyed || req.socket.destroyed) return;
    const ticket = this.subscribers.admit(req, type);
    if (!(ticket instanceof AdmissionTicket)) return void send(res, ticket);
    // Only one-message answers expose the id headers (as Nchan); streams carry ids in-band.
    const cors: OutgoingHttpHeaders = corsHeaders(route, req, this.core.net, type === 'longpoll' || type === 'intervalpoll');
    const max = this.core.config.limits.maxOutboundBytes;
    let sink: Sink;
    switch (type) {
      case 'eventsource':
        sink = new EventSourceSink(res, cors, max);
        break;
      case 'chunked':
        sink = new ChunkedSink(res, cors, max);
        break;
      case 'multipart-mixed':
        sink = new MultipartSink(res, cors, max);
        break;
      case 'http-raw-stream':
        sink = new RawStreamSink(res, cors, max);
        break;
      default:
        sink = new LongPollSink(res, cors, plan.from.kind === 'after' ? resumeTags(req, url) : undefined);
    }
    const started: { sub?: NchanSubscription } = {};
    // Attached before starting: a client may go away while history is being read.
    res.on('close', () => started.sub?.close());
    const sub = (started.sub = await this.subscribers.start(plan, sink, req, type, ticket, () => res.destroy()));
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

/** Send a refusal as a complete response. */
export function send(res: ServerResponse, r: Refusal): true {
  const body = r.body === undefined ? Buffer.alloc(0) : Buffer.isBuffer(r.body) ? r.body : Buffer.from(r.body);
  res.writeHead(r.status, { ...r.headers, 'Content-Length': String(body.length) }).end(body);
  return true;
}

/** Create the front for a server and plug it in (routes, upgrades, shutdown). */
export function attachNchanFront(host: NchanHost): NchanFront {
  const front = new NchanFront(host.core);
  host.addHttpHandler((req, res, url) => front.handleHttp(req, res, url));
  host.addUpgradeHandler((req, socket, head, url) => front.handleUpgrade(req, socket, head, url));
  host.onClose(() => front.close());
  return front;
}
