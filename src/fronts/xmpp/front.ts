/**
 * The XMPP front: XMPP client streams over WebSocket (RFC 7395, at `xmpp.path`, default
 * `/xmpp-websocket`, with or without the `xmpp` subprotocol; text or binary messages; the older
 * `<stream:stream>` framing too), over BOSH (XEP-0206, at `xmpp.boshPath`, default `/http-bind`)
 * and over TCP on `xmpp.tcpPort` (off unless set; STARTTLS when TLS is configured), mapped onto
 * the core and the IM. See docs/xmpp.md.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { type AddressInfo, createServer as createTcpServer, type Server as TcpServer, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { type SecureContext, TLSSocket } from 'node:tls';
import type { WebSocket } from 'ws';
import { AdmissionError, type AdmissionTicket } from '../../core/client-sessions.js';
import type { HeraldCore } from '../../core/core.js';
import type { ImService } from '../../core/im/service.js';
import type { ResumptionStore } from '../../core/resumptions.js';
import { isLoopbackHost } from '../../core/config-security.js';
import { TimerWheel } from '../../core/timer-wheel.js';
import { DisconnectCode } from '../../protocol/codes.js';
import { admitSocket, textFrame, WebSocketTransport, writeFrame } from '../../transports/websocket.js';
import { BoshEndpoint } from './bosh.js';
import { streamErrorXml } from './errors.js';
import { type XmppEnv, XmppSession, type XmppWire } from './session.js';
import { el, NS } from './xml.js';

/** The WebSocket subprotocol of RFC 7395. */
export const XMPP_SUBPROTOCOL = 'xmpp';
/** Listen backlog of the TCP port. */
const TCP_BACKLOG = 4096;
/** WebSocket close code after the stream ended normally. */
const NORMAL_CLOSURE = 1000;

function ignoreError(): void {
  // 'error' is always followed by 'close', where the session cleans up.
}

/** A session's WebSocket. */
class WebSocketWire implements XmppWire {
  readonly kind = 'websocket';
  readonly tlsOffer = undefined;
  readonly secure: boolean;
  readonly #ws: WebSocket;
  constructor(ws: WebSocket, secure: boolean) {
    this.#ws = ws;
    this.secure = secure;
  }
  startTls(): boolean {
    return false;
  }
  write(xml: string): number {
    return writeFrame(this.#ws, textFrame(xml));
  }
  end(): void {
    this.#ws.close(NORMAL_CLOSURE);
  }
  destroy(): void {
    this.#ws.terminate();
  }
  pause(): void {
    this.#ws.pause();
  }
  resume(): void {
    this.#ws.resume();
  }
}

/** How the TCP port offers STARTTLS: a context getter (follows certificate reloads) and whether it is required. */
interface TlsOffer {
  readonly context: () => SecureContext | undefined;
  readonly required: boolean;
}

/**
 * A session's TCP socket, upgraded in place to TLS by STARTTLS (RFC 6120 §5): once `<proceed/>`
 * is flushed the plain socket is wrapped in a server `TLSSocket`; whatever the client sent in the
 * clear after `<starttls/>` is dropped unread. A failed handshake closes the connection.
 */
/** Uncork a socket corked for one tick (a shared function: no closure per write). */
function uncork(socket: Socket): void {
  socket.uncork();
}

class TcpWire implements XmppWire {
  readonly kind = 'tcp';
  #socket: Socket;
  readonly #tls: TlsOffer | undefined;
  #secure = false;
  /** A TLS handshake is under way (an `end` then cuts instead of waiting for it). */
  #handshaking = false;
  #session: XmppSession | undefined;
  #closed = false;
  readonly #onData = (data: Buffer): void => this.#session?.input(data);
  readonly #onClose = (): void => {
    if (this.#closed) return;
    this.#closed = true;
    this.#session?.wireClosed(this, NORMAL_CLOSURE);
  };

  constructor(socket: Socket, tls: TlsOffer | undefined) {
    this.#socket = socket;
    this.#tls = tls;
  }

  /** Start reading into `session`. */
  attach(session: XmppSession): void {
    this.#session = session;
    this.#socket.on('data', this.#onData);
    this.#socket.once('close', this.#onClose);
  }

  get secure(): boolean {
    return this.#secure;
  }

  get tlsOffer(): 'optional' | 'required' | undefined {
    if (this.#secure || this.#handshaking || !this.#tls?.context()) return undefined;
    return this.#tls.required ? 'required' : 'optional';
  }

  startTls(proceed: string): boolean {
    const context = this.tlsOffer === undefined ? undefined : this.#tls!.context();
    if (!context) return false;
    const plain = this.#socket;
    // Nothing sent in the clear after <starttls/> is read (RFC 6120 §5.4.3.3: no pipelined plaintext).
    plain.off('data', this.#onData);
    plain.pause();
    this.#handshaking = true;
    plain.write(proceed, () => {
      if (this.#closed || plain.destroyed) return;
      const secure = new TLSSocket(plain, { isServer: true, secureContext: context });
      this.#socket = secure;
      secure.on('error', ignoreError);
      secure.once('secure', () => {
        this.#handshaking = false;
        this.#secure = true;
      });
      secure.on('data', this.#onData);
      secure.once('close', this.#onClose);
    });
    return true;
  }

  /**
   * Writes made while handling one input event leave together (the socket is corked until the
   * end of the current tick): a stream header and its features arrive as one segment, so a
   * client that answers the first bytes it gets (tsung's `ack="local"`) does not send its
   * `<auth/>` and then, on the features, a stream restart ahead of `<success/>`.
   */
  write(xml: string): number {
    const socket = this.#socket;
    if (socket.destroyed || !socket.writable) return -1;
    if (socket.writableCorked === 0) {
      socket.cork();
      process.nextTick(uncork, socket);
    }
    socket.write(xml);
    return socket.writableLength;
  }
  end(): void {
    if (this.#handshaking) return this.destroy();
    // Flushed, then closed without waiting for the peer's FIN (a client that never closes cannot hold the socket).
    const socket = this.#socket;
    socket.end(() => socket.destroy());
  }
  destroy(): void {
    this.#socket.destroy();
  }
  pause(): void {
    this.#socket.pause();
  }
  resume(): void {
    this.#socket.resume();
  }
}

/** XMPP over WebSocket and TCP. */
export class XmppFront {
  readonly core: HeraldCore;
  /** Resolves with the TCP address once `xmpp.tcpPort` is listening (undefined when TCP is off). */
  readonly listening: Promise<AddressInfo | undefined>;
  readonly #path: string;
  readonly #ws: WebSocketTransport;
  readonly #tcp: TcpServer | undefined;
  readonly #wheel: TimerWheel<XmppSession>;
  readonly #sessions = new Set<XmppSession>();
  readonly #env: XmppEnv;
  readonly #tls: TlsOffer | undefined;
  /** BOSH at `xmpp.boshPath` (undefined when it is ""). */
  readonly bosh: BoshEndpoint | undefined;
  readonly #boshPath: string;
  #nextId = 0;

  /** `secureContext`: the listen port's TLS context (undefined when TLS is off): STARTTLS on the TCP port uses it. */
  constructor(core: HeraldCore, im: ImService, resumptions: ResumptionStore, secureContext: () => SecureContext | undefined = () => undefined) {
    this.core = core;
    const cfg = core.config.xmpp;
    this.#path = cfg.path;
    this.#ws = new WebSocketTransport({ maxPayload: cfg.maxStanzaSize * 4, pingIntervalMs: core.config.timing.pingIntervalMs, protocols: [XMPP_SUBPROTOCOL] });
    // Each session is visited twice per shortest deadline it keeps: authentication, TCP ping, resumption.
    const deadlines = [core.config.timing.connectTimeoutMs, cfg.tcpPingIntervalMs, cfg.resumeTimeoutMs].filter((ms) => ms > 0);
    const tick = Math.max(10, Math.floor(Math.min(...deadlines) / 2));
    this.#wheel = new TimerWheel<XmppSession>(tick, (s) => s.tick(Date.now()), Math.max(1, Math.min(16, Math.floor(tick / 20))));
    this.#env = {
      core,
      im,
      domain: cfg.domain.toLowerCase(),
      limits: { maxStanzaSize: cfg.maxStanzaSize, maxDepth: cfg.maxDepth, maxAttributes: cfg.maxAttributes },
      resumeTimeoutMs: cfg.resumeTimeoutMs,
      tcpPingIntervalMs: cfg.tcpPingIntervalMs,
      resumable: new Map(),
      resumptions,
      onClose: (s) => {
        this.#sessions.delete(s);
        this.#wheel.remove(s);
      },
      watch: (s) => this.#wheel.add(s),
      unwatch: (s) => this.#wheel.remove(s),
    };
    this.#boshPath = cfg.boshPath;
    this.bosh = cfg.boshPath
      ? new BoshEndpoint({
          core,
          domain: this.#env.domain,
          limits: this.#env.limits,
          maxWaitMs: cfg.boshMaxWaitMs,
          inactivityMs: cfg.boshInactivityMs,
          start: (wire, ticket) => this.#start(wire, ticket),
        })
      : undefined;
    // STARTTLS is required wherever TLS is configured; only development mode on a loopback host also lets clients stay in the clear.
    this.#tls = core.config.tls.certFile ? { context: secureContext, required: !(core.config.dev && isLoopbackHost(core.config.host)) } : undefined;
    if (cfg.tcpPort === undefined) {
      this.listening = Promise.resolve(undefined);
      return;
    }
    const tcp = (this.#tcp = createTcpServer({ noDelay: true }, (socket) => this.#openTcp(socket)));
    this.listening = new Promise((resolve, reject) => {
      tcp.once('error', reject);
      tcp.listen({ port: cfg.tcpPort, host: core.config.host, backlog: TCP_BACKLOG }, () => {
        tcp.off('error', reject);
        resolve(tcp.address() as AddressInfo);
      });
    });
    this.listening.catch((err: unknown) => core.logger.error({ err: String(err), port: cfg.tcpPort }, 'xmpp tcp port failed to listen'));
  }

  /** Live sessions. */
  get sessionCount(): number {
    return this.#sessions.size;
  }

  /** Handle upgrades on `xmpp.path`; returns false for other paths. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, url: URL): boolean {
    if (url.pathname !== this.#path) return false;
    this.#ws.upgrade(req, socket, head, this.#openWs);
    return true;
  }

  /** Handle BOSH requests on `xmpp.boshPath`; returns false for other paths. */
  async handleHttp(req: IncomingMessage, res: ServerResponse, url: URL): Promise<boolean> {
    if (!this.bosh || url.pathname !== this.#boshPath) return false;
    await this.bosh.handle(req, res);
    return true;
  }

  /** Start a session on an upgraded socket once admitted (a refused one is closed with the refusal's code, e.g. 3007). */
  readonly #openWs = (ws: WebSocket, req: IncomingMessage): void => {
    const ticket = admitSocket(this.core.clients, this.core.net, ws, req, 'xmpp', 'xmpp-websocket');
    if (!ticket) return;
    const wire = new WebSocketWire(ws, 'encrypted' in req.socket && req.socket.encrypted === true);
    const session = this.#start(wire, ticket);
    ws.on('message', (data: Buffer) => session.input(data));
    ws.once('close', (code: number) => session.wireClosed(wire, code));
    ws.on('error', ignoreError);
  };

  /** Start a session on a TCP connection once admitted; a refused one gets a stream error (`resource-constraint`). */
  #openTcp(socket: Socket): void {
    socket.on('error', ignoreError);
    let ticket: AdmissionTicket;
    try {
      const ip = socket.remoteAddress ?? '';
      ticket = this.core.clients.admit({ ip: ip.startsWith('::ffff:') ? ip.slice(7) : ip, front: 'xmpp', transport: 'xmpp-tcp' });
    } catch (err) {
      if (!(err instanceof AdmissionError)) throw err;
      const header = el('stream:stream', { xmlns: NS.CLIENT, 'xmlns:stream': NS.STREAM, from: this.#env.domain, version: '1.0' }).replace('/>', '>');
      socket.end(`<?xml version='1.0'?>${header}${streamErrorXml('resource-constraint', err.message, false)}</stream:stream>`);
      return;
    }
    // The heartbeat of a TCP stream: kernel keepalive probes, which cost the process nothing
    // (XEP-0199 pings only with xmpp.tcpPingIntervalMs). By default on the host's schedule, as
    // ejabberd: the kernel sends the probes of every socket whose idle time ends in the same
    // timer-wheel slot at once, and with a short idle time at tens of thousands of connections
    // per core those bursts overflowed the loopback backlog and live users were dropped
    // (docs/benchmarks.md, issue 17, "Scale").
    socket.setKeepAlive(true, this.core.config.xmpp.tcpKeepAliveMs);
    const wire = new TcpWire(socket, this.#tls);
    wire.attach(this.#start(wire, ticket));
  }

  #start(wire: XmppWire, ticket: AdmissionTicket): XmppSession {
    const session = new XmppSession(`${this.core.nodeId.slice(0, 8)}-x${(++this.#nextId).toString(36)}`, wire, this.#env, ticket);
    this.#sessions.add(session);
    this.#wheel.add(session);
    return session;
  }

  /** Close every session with a stream error and stop listening. */
  async close(code: number = DisconnectCode.SHUTDOWN, reason = 'server shutting down'): Promise<void> {
    this.#wheel.stop();
    this.#ws.stop();
    for (const s of [...this.#sessions]) s.disconnect(code, reason);
    this.bosh?.close();
    const tcp = this.#tcp;
    if (tcp?.listening) await new Promise<void>((resolve) => tcp.close(() => resolve()));
  }
}

/** What `attachXmppFront` needs from the server. */
export interface XmppHost {
  readonly core: HeraldCore;
  readonly im: ImService;
  /** The engines: the XMPP front records resumable sessions in `resumptions`. */
  readonly engines: { readonly resumptions: ResumptionStore };
  /** The listen port's TLS context (undefined when TLS is off). */
  secureContext(): SecureContext | undefined;
  addUpgradeHandler(handler: (req: IncomingMessage, socket: Duplex, head: Buffer, url: URL) => boolean): void;
  addHttpHandler(handler: (req: IncomingMessage, res: ServerResponse, url: URL) => boolean | Promise<boolean>): void;
  onClose(hook: () => void | Promise<void>): void;
}

/** Create the XMPP front and mount it on a server. */
export function attachXmppFront(host: XmppHost): XmppFront {
  const front = new XmppFront(host.core, host.im, host.engines.resumptions, () => host.secureContext());
  host.addUpgradeHandler((req, socket, head, url) => front.handleUpgrade(req, socket, head, url));
  host.addHttpHandler((req, res, url) => front.handleHttp(req, res, url));
  host.onClose(() => front.close());
  return front;
}
