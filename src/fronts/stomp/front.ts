/**
 * The STOMP front: STOMP 1.0–1.2 over WebSocket on `stomp.path` (default `/stomp`, subprotocols
 * `v12.stomp`, `v11.stomp`, `v10.stomp`, or none), mapped onto the core's channels, the node's
 * work queues and the IM inbox. See docs/stomp.md.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { WebSocket } from 'ws';
import type { HeraldCore } from '../../core/core.js';
import { TimerWheel } from '../../core/timer-wheel.js';
import { DisconnectCode } from '../../protocol/codes.js';
import { admitSocket, refuseUpgrade, WebSocketTransport } from '../../transports/websocket.js';
import { QueueRegistry } from './queue.js';
import { type StompEnv, StompSession } from './session.js';

/** WebSocket subprotocols accepted, in preference order. */
export const STOMP_SUBPROTOCOLS = ['v12.stomp', 'v11.stomp', 'v10.stomp'] as const;
/** A WebSocket message may carry several frames: it may be this many times `stomp.maxFrameBytes`. */
const FRAMES_PER_MESSAGE = 4;
/** Heart-beat wheel period when heart-beats are off (still checks the CONNECT timeout). */
const IDLE_TICK_MS = 1_000;

/** Options of `new StompFront()`. */
export interface StompFrontOptions {
  /** Acknowledge a user's IM inbox up to a seq (the IM service's cumulative ack). */
  readonly inboxAck?: (user: string, seq: number) => Promise<unknown>;
}

/** STOMP over WebSocket. */
export class StompFront {
  readonly core: HeraldCore;
  /** The node's work queues (`/queue/<name>`). */
  readonly queues: QueueRegistry;
  readonly #path: string;
  readonly #ws: WebSocketTransport;
  readonly #wheel: TimerWheel<StompSession>;
  readonly #sessions = new Set<StompSession>();
  readonly #env: StompEnv;
  #nextId = 0;

  constructor(core: HeraldCore, options: StompFrontOptions = {}) {
    this.core = core;
    const cfg = core.config.stomp;
    this.#path = cfg.path;
    this.queues = new QueueRegistry({ maxLength: cfg.queueMaxLength, maxQueues: cfg.maxQueues, maxBytes: cfg.maxQueuedBytes }, `${core.nodeId.slice(0, 8)}-`);
    this.#ws = new WebSocketTransport({
      maxPayload: cfg.maxFrameBytes * FRAMES_PER_MESSAGE,
      pingIntervalMs: core.config.timing.pingIntervalMs,
      protocols: STOMP_SUBPROTOCOLS,
    });
    // Visits every session twice per heart-beat interval: sends are never late, silence is seen within half an interval.
    const tick = Math.max(10, Math.floor(Math.min(cfg.heartbeatMs || IDLE_TICK_MS, core.config.timing.connectTimeoutMs) / 2));
    // Buckets of at least ~20 ms: a wheel of tiny intervals falls behind on a busy event loop.
    const slots = Math.max(1, Math.min(16, Math.floor(tick / 20)));
    this.#wheel = new TimerWheel<StompSession>(tick, (s) => s.tick(tick), slots);
    this.#env = {
      core,
      queues: this.queues,
      limits: { maxFrameBytes: cfg.maxFrameBytes, maxHeaders: cfg.maxHeaders },
      heartbeatMs: cfg.heartbeatMs,
      inboxAck: options.inboxAck,
      onClose: (s) => {
        this.#sessions.delete(s);
        this.#wheel.remove(s);
      },
    };
  }

  /** Live sessions. */
  get sessionCount(): number {
    return this.#sessions.size;
  }

  /** Handle upgrades on `stomp.path`; returns false for other paths. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, url: URL): boolean {
    if (url.pathname !== this.#path) return false;
    // A browser sends its cookies with every upgrade and no CORS guards the answer: only allowed origins.
    if (!this.core.net.originAllowed(req.headers.origin, req.headers.host)) {
      refuseUpgrade(socket, 403, 'Forbidden');
      return true;
    }
    this.#ws.upgrade(req, socket, head, this.#open);
    return true;
  }

  /** Start a session on an upgraded socket (a field, so it captures no request scope). */
  readonly #open = (ws: WebSocket, req: IncomingMessage): void => {
    const ticket = admitSocket(this.core.clients, this.core.net, ws, req, 'stomp', 'stomp');
    if (!ticket) return;
    const session = new StompSession(`${this.core.nodeId.slice(0, 8)}-s${(++this.#nextId).toString(36)}`, ws, this.#env, ticket);
    this.#sessions.add(session);
    this.#wheel.add(session);
  };

  /** Close every session with `code` and stop timers. */
  close(code: number = DisconnectCode.SHUTDOWN, reason = 'server shutting down'): void {
    this.#wheel.stop();
    this.#ws.stop();
    for (const s of [...this.#sessions]) s.disconnect(code, reason);
  }
}

/** What `attachStompFront` needs from the server. */
export interface StompHost {
  readonly core: HeraldCore;
  addUpgradeHandler(handler: (req: IncomingMessage, socket: Duplex, head: Buffer, url: URL) => boolean): void;
  onClose(hook: () => void | Promise<void>): void;
}

/** Create the STOMP front and mount it on a server. */
export function attachStompFront(host: StompHost, options: StompFrontOptions = {}): StompFront {
  const front = new StompFront(host.core, options);
  host.addUpgradeHandler((req, socket, head, url) => front.handleUpgrade(req, socket, head, url));
  host.onClose(() => front.close());
  return front;
}
