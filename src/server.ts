/**
 * The HTTP server that carries everything on one port: the native front (WebSocket, SSE,
 * long-poll, streaming), the server API, `/health` and `/metrics`. Other fronts and services
 * plug in through `addHttpHandler` / `addUpgradeHandler`. It receives finished engines
 * (`createServer` in index.ts chooses them, select-engines.ts) and does HTTP and lifecycle only:
 * it names no concrete engine.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { SecureContext } from 'node:tls';
import type { Duplex } from 'node:stream';
import { ServerApi } from './api/api.js';
import { registerBackendApi } from './api/backend-api.js';
import { registerImApi } from './api/im-api.js';
import { Metrics } from './api/metrics.js';
import { NodeReporter } from './api/node-report.js';
import { NodesView } from './api/nodes-api.js';
import { Readiness } from './api/readiness.js';
import { instrumentBroker, instrumentStore } from './api/engine-metrics.js';
import { WebPages } from './api/web.js';
import { type HeraldConfig, isResolvedConfig } from './core/config.js';
import { HeraldCore } from './core/core.js';
import { HeraldError } from './core/errors.js';
import type { BackendTransport } from './core/backend-hooks.js';
import type { Broker } from './core/broker.js';
import type { PresenceStore } from './core/im/presence.js';
import { ImService } from './core/im/service.js';
import type { ImStore } from './core/im/store.js';
import type { Logger } from './core/logger.js';
import type { RevocationStore } from './core/revocation.js';
import { NodeHeartbeat, type NodeRegistry } from './core/nodes.js';
import type { ResumptionStore } from './core/resumptions.js';
import type { SessionRegistry } from './core/sessions.js';
import { registerBackendCommands } from './fronts/native/backend-commands.js';
import { NativeFront } from './fronts/native/front.js';
import { attachNchanFront, type NchanFront } from './fronts/nchan/front.js';
import { attachStompFront, type StompFront } from './fronts/stomp/front.js';
import { attachXmppFront, type XmppFront } from './fronts/xmpp/front.js';
import { registerImCommands } from './fronts/native/im-commands.js';
import { DisconnectCode } from './protocol/codes.js';
import { sendError } from './transports/http.js';
import { createListener, type Listener } from './transports/listener.js';
import { SendTimeout } from './transports/send-timeout.js';

/** Drain steps are at least this far apart, ms. */
const DRAIN_STEP_MS = 50;
/** Longest wait for a request's headers, ms (never longer than the whole request may take). */
const MAX_HEADERS_TIMEOUT_MS = 30_000;
/** Listen backlog (the kernel caps it at net.core.somaxconn). */
const LISTEN_BACKLOG = 4096;

/** Error listener of every upgraded socket (`this` is the socket): one shared function, no closure each. */
function destroySocket(this: Duplex): void {
  this.destroy();
}

/** Handles an HTTP request; resolves true when it answered. */
export type HttpHandler = (req: IncomingMessage, res: ServerResponse, url: URL) => boolean | Promise<boolean>;
/** Handles an upgrade; returns true when it took the socket. */
export type UpgradeHandler = (req: IncomingMessage, socket: Duplex, head: Buffer, url: URL) => boolean;

/** Every engine a node runs on. */
export interface Engines {
  /** Channel fan-out and history. */
  readonly broker: Broker;
  /** Which nodes hold which sessions of a user. */
  readonly sessions: SessionRegistry;
  /** State of sessions resumable on any node (XMPP stream management). */
  readonly resumptions: ResumptionStore;
  /** IM presence. */
  readonly presence: PresenceStore;
  /** IM store, opened on first IM use. */
  readonly imStore: ImStore;
  /** Node registry the dispatcher reads (none without Redis: a single node needs no dispatcher). */
  readonly registry: NodeRegistry | undefined;
  /** HTTP client for backend hooks and webhooks (none when neither is configured). */
  readonly backendTransport: BackendTransport | undefined;
  /** Where a single node keeps token revocations across restarts (none in a cluster: Redis replays them). */
  readonly revocationStore: RevocationStore | undefined;
}

/**
 * What a server is built from: a resolved configuration and every engine, chosen already
 * (`selectEngines`). All are required, so no engine can silently fall back to a default that
 * disagrees with the configuration (e.g. memory while `redis.url` is set).
 */
export interface ServerOptions {
  readonly config: HeraldConfig;
  readonly engines: Engines;
  readonly logger?: Logger;
  /** Collect Node process metrics in /metrics (default true). */
  readonly processMetrics?: boolean;
}

/** A Herald node: core, fronts and API on one HTTP server. */
export class HeraldServer {
  readonly config: HeraldConfig;
  readonly core: HeraldCore;
  readonly native: NativeFront;
  /** The Nchan-compatible front (undefined when `nchan.enabled` is false). */
  readonly nchan: NchanFront | undefined;
  /** The STOMP front (undefined when `stomp.enabled` is false). */
  readonly stomp: StompFront | undefined;
  /** The XMPP front (undefined when `xmpp.enabled` is false). */
  readonly xmpp: XmppFront | undefined;
  readonly api: ServerApi;
  readonly metrics: Metrics;
  /** `GET /ready`: the IM store, broker and Redis checked. */
  readonly readiness: Readiness;
  readonly im: ImService;
  readonly http: Server;
  /** Cuts sockets whose peer stopped reading (`timing.sendTimeoutMs`). */
  readonly sendTimeout: SendTimeout;
  readonly #listener: Listener;
  /** The engines this node runs on (chosen by createServer). */
  readonly engines: Engines;
  readonly #httpHandlers: HttpHandler[] = [];
  readonly #upgradeHandlers: UpgradeHandler[] = [];
  readonly #closeHooks: Array<() => void | Promise<void>> = [];
  #closing: Promise<void> | undefined;
  #heartbeat: NodeHeartbeat | undefined;
  #draining: Promise<void> | undefined;
  readonly #registry: NodeRegistry | undefined;
  readonly #reporter: NodeReporter;
  /** Where clients reach this node, fixed once it listens (the advertised URL, else the bound address). */
  #publicUrl: string | undefined;

  constructor(options: ServerOptions) {
    this.config = options.config;
    const { engines } = options;
    if (!engines || !isResolvedConfig(options.config)) {
      throw new TypeError('HeraldServer needs a resolved config and its engines: build it with createServer(), which chooses the engines from the config');
    }
    this.engines = engines;
    this.#registry = engines.registry;
    const nodeId = randomUUID();
    // Redis broker operations are timed for the metrics; the memory broker's cannot fail or wait.
    const broker = options.config.redis.url ? instrumentBroker(engines.broker, nodeId) : engines.broker;
    this.core = new HeraldCore({ config: options.config, nodeId, broker, sessions: engines.sessions, logger: options.logger });
    this.native = new NativeFront(this.core);
    this.api = new ServerApi(this.core);
    this.api.route('POST', /^drain$/, async () => {
      void this.drain();
      return { draining: true, connections: this.core.hub.connectionCount, windowMs: this.config.cluster.drainWindowMs };
    });
    this.#reporter = new NodeReporter(this.core, {
      url: () => this.#publicUrl ?? this.config.cluster.advertiseUrl ?? '',
      draining: () => this.#draining !== undefined || this.#closing !== undefined,
    });
    new NodesView(this.#reporter, engines.registry).register(this.api);
    this.im = new ImService({ core: this.core, store: instrumentStore(engines.imStore, this.core.nodeId), presence: engines.presence });
    registerImCommands(this.native, this.im);
    registerImApi(this.api, this.im, options.config.limits.maxMessageBytes);
    if (engines.backendTransport) this.core.backend.attach(engines.backendTransport);
    if (engines.revocationStore) this.core.backend.revocations.persistTo(engines.revocationStore);
    this.core.backend.onContacts((user, list) => this.im.admin.setContacts(user, list).then(() => undefined));
    registerBackendCommands(this.native, this.core.backend);
    registerBackendApi(this.api, this.core, this.im);
    this.readiness = new Readiness({
      core: this.core,
      im: this.im,
      store: engines.imStore,
      authorized: (req) => this.api.authorized(req),
      closing: () => this.#closing !== undefined,
    });
    this.metrics = new Metrics(this.core, { defaultMetrics: options.processMetrics ?? true, readiness: () => this.readiness.report() });
    // A request (headers and body) must arrive within requestTimeoutMs, else 408 and close; Node
    // checks every connection on one interval, a quarter of the timeout here.
    const requestTimeout = options.config.timing.requestTimeoutMs;
    this.#listener = createListener(
      {
        keepAliveTimeout: 65_000,
        requestTimeout,
        headersTimeout: Math.min(requestTimeout, MAX_HEADERS_TIMEOUT_MS),
        connectionsCheckingInterval: Math.max(50, Math.floor(requestTimeout / 4)),
      },
      options.config.tls,
      this.core.logger,
      (req, res) => void this.#onRequest(req, res),
    );
    this.http = this.#listener.server;
    this.http.on('upgrade', (req, socket, head) => this.#onUpgrade(req, socket, head));
    this.sendTimeout = new SendTimeout(this.http, options.config.timing.sendTimeoutMs);
    this.http.on('clientError', (err: NodeJS.ErrnoException, socket) => {
      const timedOut = err.code === 'ERR_HTTP_REQUEST_TIMEOUT';
      if (socket.writable)
        socket.end(timedOut ? 'HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n\r\n' : 'HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
      else socket.destroy();
    });
    this.#httpHandlers.push((req, res, url) => this.native.handleHttp(req, res, url));
    this.#httpHandlers.push((req, res, url) => this.api.handle(req, res, url));
    this.#httpHandlers.push((req, res, url) => this.readiness.handle(req, res, url));
    this.#upgradeHandlers.push((req, socket, head, url) => this.native.handleUpgrade(req, socket, head, url));
    const web = options.config.web;
    const chat = web.chat ?? options.config.dev;
    if (chat || web.admin) {
      const pages = new WebPages({
        chat,
        admin: web.admin,
        root: web.root,
        apiKey: options.config.apiKey,
        secure: this.#listener.scheme === 'https',
        net: this.core.net,
        authorized: (req) => this.api.authorized(req),
      });
      this.#httpHandlers.push((req, res, url) => pages.handle(req, res, url));
    }
    this.nchan = options.config.nchan.enabled ? attachNchanFront(this) : undefined;
    this.stomp = options.config.stomp.enabled
      ? attachStompFront(this, { inboxAck: (user, seq) => this.im.ready().then(() => this.im.ack(user, seq)) })
      : undefined;
    this.xmpp = options.config.xmpp.enabled ? attachXmppFront(this) : undefined;
    if (this.stomp) {
      const queues = this.stomp.queues;
      this.metrics.stompQueues(() => queues.stats());
      this.api.addStats('stompQueues', () => queues.stats());
    }
  }

  /** Add an HTTP handler, tried after the built-in ones. */
  addHttpHandler(handler: HttpHandler): void {
    this.#httpHandlers.push(handler);
  }

  /** Add an upgrade handler, tried after the built-in ones. */
  addUpgradeHandler(handler: UpgradeHandler): void {
    this.#upgradeHandlers.push(handler);
  }

  /** Run `hook` during close, before the core closes (fronts and services tell their clients). */
  onClose(hook: () => void | Promise<void>): void {
    this.#closeHooks.push(hook);
  }

  /** Start the core and listen on the configured host and port. */
  async listen(): Promise<AddressInfo> {
    await this.core.start();
    await new Promise<void>((resolve, reject) => {
      this.http.once('error', reject);
      // A deep accept queue: reconnect storms (after a node dies) arrive all at once.
      this.http.listen({ port: this.config.port, host: this.config.host, backlog: LISTEN_BACKLOG }, () => {
        this.http.off('error', reject);
        resolve();
      });
    });
    this.#publicUrl = this.config.cluster.advertiseUrl ?? this.url();
    await this.#announce();
    return this.address();
  }

  /** Announce this node in the registry on a heartbeat (after listen; the dispatcher reads it). */
  async #announce(): Promise<void> {
    if (!this.#registry) return;
    this.#heartbeat = new NodeHeartbeat(this.#registry, () => this.#reporter.report(), this.config.cluster.heartbeatMs, this.core.logger);
    await this.#heartbeat.start();
  }

  /**
   * Drain: announce the node as draining (the dispatcher stops assigning it), then tell every
   * client to reconnect through the dispatcher (3005), spread evenly over `windowMs` (default
   * `cluster.drainWindowMs`) so they do not all arrive elsewhere at once. The node keeps
   * serving whoever is still connected; `close()` after it stops the rest. Idempotent.
   */
  drain(windowMs = this.config.cluster.drainWindowMs): Promise<void> {
    this.#draining ??= this.#drain(windowMs);
    return this.#draining;
  }

  async #drain(windowMs: number): Promise<void> {
    await this.#heartbeat?.beat();
    const conns = this.core.hub.connections();
    this.core.logger.info({ connections: conns.length, windowMs }, 'draining');
    const steps = Math.max(1, Math.min(conns.length, Math.ceil(windowMs / DRAIN_STEP_MS)));
    const perStep = Math.ceil(conns.length / steps);
    for (let i = 0; i < conns.length; i += perStep) {
      if (i > 0) await new Promise((r) => setTimeout(r, windowMs / steps));
      for (const c of conns.slice(i, i + perStep)) c.disconnect(DisconnectCode.RECONNECT, 'node draining: reconnect through the dispatcher');
    }
  }

  /** The bound address. */
  address(): AddressInfo {
    return this.http.address() as AddressInfo;
  }

  /** Base URL, e.g. `http://127.0.0.1:8080` (`https://` when TLS is on). */
  url(): string {
    const a = this.address();
    const host = a.family === 'IPv6' ? `[${a.address}]` : a.address;
    return `${this.#listener.scheme}://${host}:${a.port}`;
  }

  /** The TLS context of the listen port's current certificate (undefined when TLS is off); it follows reloads. */
  secureContext(): SecureContext | undefined {
    return this.#listener.secureContext();
  }

  /** Re-read the TLS certificate and key now (as on SIGHUP); false when TLS is off or they did not load. */
  reloadTls(): boolean {
    return this.#listener.reload();
  }

  /**
   * Graceful shutdown: stop accepting, tell every client to reconnect (3001), let buffered
   * bytes flush for up to `timing.shutdownTimeoutMs`, then cut what remains and close engines.
   */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    const stopped = new Promise<void>((resolve) => this.http.close(() => resolve()));
    this.sendTimeout.stop();
    this.#listener.stop();
    // Leave the registry first, so the dispatcher sends no one here while clients drain away.
    await this.#heartbeat?.stop();
    for (const hook of this.#closeHooks) await hook();
    this.native.close(DisconnectCode.SHUTDOWN, 'server shutting down');
    this.core.disconnectAll(DisconnectCode.SHUTDOWN, 'server shutting down');
    this.http.closeIdleConnections();
    const deadline = Date.now() + this.config.timing.shutdownTimeoutMs;
    while (this.core.hub.connectionCount > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    this.http.closeAllConnections();
    await stopped;
    this.metrics.close();
    this.#reporter.close();
    await this.readiness.close();
    await this.core.backend.close();
    await this.im.close();
    await this.engines.resumptions.close();
    await this.core.close();
  }

  async #onRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://localhost');
    } catch {
      sendError(res, new HeraldError('HERALD_ERR_BAD_REQUEST', 'Malformed URL'));
      return;
    }
    try {
      if (url.pathname === '/health') {
        const body = JSON.stringify({
          status: this.#closing ? 'shutting-down' : 'ok',
          node: this.core.nodeId,
          connections: this.core.hub.connectionCount,
          dev: this.config.dev,
        });
        res.writeHead(this.#closing ? 503 : 200, { 'content-type': 'application/json' }).end(body);
        return;
      }
      if (url.pathname === '/metrics') {
        this.api.admit(req);
        const text = await this.metrics.text();
        res.writeHead(200, { 'content-type': this.metrics.registry.contentType }).end(text);
        return;
      }
      for (const handler of this.#httpHandlers) if (await handler(req, res, url)) return;
      throw new HeraldError('HERALD_ERR_NOT_FOUND', 'No such endpoint');
    } catch (err) {
      sendError(res, err, this.core.logger);
    }
  }

  #onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', destroySocket);
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://localhost');
    } catch {
      socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
      return;
    }
    if (this.#closing) {
      socket.end('HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\n\r\n');
      return;
    }
    for (const handler of this.#upgradeHandlers) if (handler(req, socket, head, url)) return;
    socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
  }
}
