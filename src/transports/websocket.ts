/**
 * WebSocket transport on `ws` over `node:http`: upgrade handling, pre-framed shared writes
 * ("encode once, write many") and heartbeats from one timer wheel.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import * as wsModule from 'ws';
import { WebSocket, WebSocketServer } from 'ws';
import { TimerWheel } from '../core/timer-wheel.js';

/** Options of the WebSocket transport. */
export interface WebSocketTransportOptions {
  /** Largest inbound message, bytes. */
  readonly maxPayload: number;
  /** Ping interval; a connection silent for two intervals is terminated. */
  readonly pingIntervalMs: number;
  /** Called when a connection is terminated for missing heartbeats. */
  readonly onDead?: (ws: WebSocket) => void;
  /** Subprotocols this endpoint accepts, in preference order (none = accept without one). */
  readonly protocols?: readonly string[];
}

/** Per-socket liveness flag, set by any inbound traffic. */
const alive = new WeakMap<WebSocket, boolean>();

/** Accepts upgrades for one endpoint and keeps its sockets alive or drops them. */
export class WebSocketTransport {
  readonly #wss: WebSocketServer;
  readonly #wheel: TimerWheel<WebSocket>;
  readonly #onDead: ((ws: WebSocket) => void) | undefined;

  constructor(options: WebSocketTransportOptions) {
    const protocols = options.protocols;
    this.#wss = new WebSocketServer({
      noServer: true,
      clientTracking: false,
      perMessageDeflate: false,
      maxPayload: options.maxPayload,
      handleProtocols: protocols ? (offered) => protocols.find((p) => offered.has(p)) ?? false : undefined,
    });
    this.#onDead = options.onDead;
    this.#wheel = new TimerWheel<WebSocket>(options.pingIntervalMs, (ws) => this.#heartbeat(ws));
  }

  /** Complete an upgrade; `onOpen` receives the socket (the request is not retained). */
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer, onOpen: (ws: WebSocket, req: IncomingMessage) => void): void {
    this.#wss.handleUpgrade(req, socket, head, (ws) => {
      alive.set(ws, true);
      const markAlive = (): void => void alive.set(ws, true);
      ws.on('pong', markAlive);
      ws.on('message', markAlive);
      ws.once('close', () => this.#wheel.remove(ws));
      this.#wheel.add(ws);
      onOpen(ws, req);
    });
  }

  /** Sockets being watched. */
  get size(): number {
    return this.#wheel.size;
  }

  /** Stop heartbeats (sockets stay open). */
  stop(): void {
    this.#wheel.stop();
  }

  #heartbeat(ws: WebSocket): void {
    if (ws.readyState !== WebSocket.OPEN) return;
    if (!alive.get(ws)) {
      this.#onDead?.(ws);
      ws.terminate();
      return;
    }
    alive.set(ws, false);
    ws.ping();
  }
}

interface FrameOptions {
  fin: boolean;
  rsv1: boolean;
  opcode: number;
  mask: boolean;
  readOnly: boolean;
}
/** ws's frame builder (its exported Sender class, which @types/ws does not declare). */
const Sender = (wsModule as unknown as { Sender: { frame(data: Buffer, options: FrameOptions): Buffer[] } }).Sender;

/** Build a complete unmasked text frame once, to be written to many sockets. */
export function textFrame(data: string | Buffer): Buffer {
  const payload = typeof data === 'string' ? Buffer.from(data) : data;
  const parts = Sender.frame(payload, { fin: true, rsv1: false, opcode: 1, mask: false, readOnly: true });
  return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
}

/** Build a complete unmasked binary frame once. */
export function binaryFrame(payload: Buffer): Buffer {
  const parts = Sender.frame(payload, { fin: true, rsv1: false, opcode: 2, mask: false, readOnly: true });
  return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
}

/** The raw TCP socket under a `ws` WebSocket (ws keeps it in `_socket`). */
function rawSocket(ws: WebSocket): Duplex | undefined {
  return (ws as unknown as { _socket?: Duplex })._socket;
}

/**
 * Write a pre-built frame straight to the socket. Safe because permessage-deflate is off, so
 * ws's sender never holds queued frames of its own. Returns the bytes now waiting in the
 * socket's buffer (for slow-consumer checks), or -1 if the socket is not open.
 */
export function writeFrame(ws: WebSocket, frame: Buffer): number {
  const sock = rawSocket(ws);
  if (ws.readyState !== WebSocket.OPEN || !sock) return -1;
  sock.write(frame);
  return (sock as unknown as { writableLength: number }).writableLength;
}
