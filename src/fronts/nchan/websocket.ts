/**
 * WebSocket for the Nchan front: handshake checks with Nchan's 400 answers, subscribers
 * (optionally `ws+meta.nchan`), publishers on publisher routes (each frame published, channel
 * info sent back) and pubsub routes (frames published, echoed through the subscription).
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { type WebSocket, WebSocketServer } from 'ws';
import type { HeraldCore } from '../../core/core.js';
import { BINARY_CONTENT_TYPE } from '../../core/publication.js';
import { corsHeaders, upgradeOriginAllowed } from './cors.js';
import type { NchanGate, Refusal, SubscribePlan } from './gate.js';
import { infoFormat, renderInfo } from './info.js';
import type { NchanChannels } from './publisher.js';
import type { RouteMatch } from './routes.js';
import { admitSocket } from '../../transports/websocket.js';
import { WebSocketSink } from './sinks.js';
import type { NchanSubscribers } from './subscribers.js';
import type { NchanSubscription } from './subscription.js';

/** The subprotocol that adds ids and content types to frames. */
export const META_SUBPROTOCOL = 'ws+meta.nchan';

const STATUS_TEXT: Record<number, string> = { 400: 'Bad Request', 403: 'Forbidden', 404: 'Not Found', 410: 'Gone', 502: 'Bad Gateway', 504: 'Gateway Timeout' };

/**
 * Answer an upgrade request with a plain HTTP response and close the socket (Nchan keeps the
 * connection; Node has already handed the socket over, so it cannot go back to HTTP).
 */
function refuse(socket: Duplex, r: Refusal): void {
  const body = r.body === undefined ? Buffer.alloc(0) : Buffer.isBuffer(r.body) ? r.body : Buffer.from(r.body);
  let head = `HTTP/1.1 ${r.status} ${STATUS_TEXT[r.status] ?? 'Error'}\r\nDate: ${new Date().toUTCString()}\r\n`;
  for (const [k, v] of Object.entries(r.headers ?? {})) head += `${k}: ${v}\r\n`;
  head += `Content-Length: ${body.length}\r\nConnection: close\r\n\r\n`;
  socket.end(Buffer.concat([Buffer.from(head, 'latin1'), body]));
}

/** Shared socket listeners (`this` is the socket): no closure per connection. */
function terminateSocket(this: WebSocket): void {
  this.terminate();
}
function refusePublishing(this: WebSocket): void {
  this.close(1008, 'Publishing not allowed.');
}

/** A function that terminates `ws`, made outside any scope that holds the upgrade request. */
function terminator(ws: WebSocket): () => void {
  return () => ws.terminate();
}

/** WebSocket handling of one front. */
export class NchanWebSockets {
  readonly #core: HeraldCore;
  readonly #gate: NchanGate;
  readonly #subscribers: NchanSubscribers;
  readonly #channels: NchanChannels;
  readonly #wss: WebSocketServer;
  /** Open sockets, each with its subscription being started (none for a publisher). */
  readonly #sockets = new Map<WebSocket, Promise<NchanSubscription> | undefined>();

  constructor(core: HeraldCore, gate: NchanGate, subscribers: NchanSubscribers, channels: NchanChannels) {
    this.#core = core;
    this.#gate = gate;
    this.#subscribers = subscribers;
    this.#channels = channels;
    const sockets = this.#sockets;
    this.#closed = function (this: WebSocket) {
      const started = sockets.get(this);
      sockets.delete(this);
      started?.then(
        (sub) => sub.close(),
        () => undefined,
      );
    };
    this.#wss = new WebSocketServer({
      noServer: true,
      clientTracking: false,
      perMessageDeflate: false,
      maxPayload: core.config.limits.maxMessageBytes,
      handleProtocols: (offered) => (offered.has(META_SUBPROTOCOL) ? META_SUBPROTOCOL : false),
    });
    // The 101 as nginx writes it: a Date, and `Connection: upgrade`.
    this.#wss.on('headers', (headers) => {
      const i = headers.indexOf('Connection: Upgrade');
      if (i >= 0) headers[i] = 'Connection: upgrade';
      headers.push(`Date: ${new Date().toUTCString()}`);
    });
  }

  /** Take an upgrade request for a matched route. */
  upgrade(m: RouteMatch, req: IncomingMessage, socket: Duplex, head: Buffer, url: URL): void {
    this.#upgrade(m, req, socket, head, url).catch(() => socket.destroy());
  }

  /** Close every socket (shutdown). */
  close(): void {
    for (const ws of this.#sockets.keys()) ws.close(1001, 'Server shutting down');
  }

  async #upgrade(m: RouteMatch, req: IncomingMessage, socket: Duplex, head: Buffer, url: URL): Promise<void> {
    const { route } = m;
    const version = req.headers['sec-websocket-version'];
    const text = { 'Content-Type': 'text/plain' };
    if (!version) return refuse(socket, { status: 400, headers: text, body: 'No Sec-Websocket-Version header present' });
    if (version.trim() !== '13')
      return refuse(socket, { status: 400, headers: text, body: 'Unsupported websocket protocol version (only version 13 is supported)' });
    if (!req.headers['sec-websocket-key']) return refuse(socket, { status: 400, headers: text, body: 'No Sec-Websocket-Key header present' });
    if (!upgradeOriginAllowed(route, req, this.#core.net))
      return refuse(socket, { status: 403, headers: corsHeaders(route, req, this.#core.net) as Record<string, string> });
    const gate = this.#gate;
    const canPublish = route.role !== 'subscriber' && gate.mayPublish(req, route);
    if (route.role === 'publisher') {
      const ids = await gate.planPublish(route, m.idText, req, 'websocket', true);
      if (!Array.isArray(ids)) return refuse(socket, ids);
      return this.#accept(req, socket, head, (ws) => this.#publisher(ws, req, m, ids, true));
    }
    if (!route.types.has('websocket')) return refuse(socket, { status: 403 });
    const plan = await gate.planSubscribe(route, m.idText, req, url, 'websocket');
    if (!('channels' in plan)) return refuse(socket, plan);
    if (socket.destroyed) return;
    this.#accept(req, socket, head, (ws) => this.#subscriber(ws, req, m, plan, canPublish && plan.channels.every((ch) => gate.writable(ch))));
  }

  /**
   * A subscriber's socket just opened: admit it and start its subscription. Nothing made here
   * refers to the upgrade request once the subscription has started (unless the route lets it
   * publish): the socket's listeners are shared functions, so an idle subscriber keeps no
   * request, headers or closures.
   */
  #subscriber(ws: WebSocket, req: IncomingMessage, m: RouteMatch, plan: SubscribePlan, publish: boolean): void {
    const ticket = admitSocket(this.#core.clients, this.#core.net, ws, req, 'nchan', 'nchan-websocket');
    if (!ticket) return;
    const sink = new WebSocketSink(ws, ws.protocol === META_SUBPROTOCOL, this.#core.config.limits.maxOutboundBytes);
    const started = this.#subscribers.start(plan, sink, req, 'websocket', ticket, terminator(ws));
    this.#sockets.set(ws, started);
    if (publish) this.#publisher(ws, req, m, plan.ids, false);
    else ws.on('message', refusePublishing);
    started.catch(terminator(ws));
  }

  #accept(req: IncomingMessage, socket: Duplex, head: Buffer, onOpen: (ws: WebSocket) => void): void {
    this.#wss.handleUpgrade(req, socket, head, (ws) => {
      this.#sockets.set(ws, undefined);
      ws.on('error', terminateSocket);
      ws.on('close', this.#closed);
      onOpen(ws);
    });
  }

  /** Shared close listener (`this` is the socket): forget it and end its subscription. */
  readonly #closed: (this: WebSocket) => void;

  /** Publish each frame; on a publisher route answer with channel info in the handshake's Accept format. */
  #publisher(ws: WebSocket, req: IncomingMessage, m: RouteMatch, ids: string[], reply: boolean): void {
    const format = infoFormat(req.headers.accept);
    let chain = Promise.resolve();
    ws.on('message', (data: Buffer, binary: boolean) => {
      // Frames are published one after another, in the order they arrived.
      chain = chain
        .then(async () => {
          const out = await this.#channels.publish(m.route, ids, { payload: data, ...(binary ? { contentType: BINARY_CONTENT_TYPE } : {}) }, req);
          if (reply && out.info && ws.readyState === 1) ws.send(renderInfo(out.info, format).body);
        })
        .catch(() => undefined);
    });
  }
}
