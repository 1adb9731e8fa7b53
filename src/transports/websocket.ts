/**
 * WebSocket transport on `ws` over `node:http`: upgrade handling, pre-framed shared writes
 * ("encode once, write many") and heartbeats from one timer wheel.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import * as wsModule from 'ws';
import { WebSocket, WebSocketServer } from 'ws';
import { AdmissionError, type AdmissionTicket, type ClientSessions } from '../core/client-sessions.js';
import { TimerWheel } from '../core/timer-wheel.js';
import type { NetPolicy } from '../core/net-policy.js';
import { admissionRequest } from './http.js';

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

/** Refuse an upgrade before the handshake: an HTTP status line, no body, and the socket closed. */
export function refuseUpgrade(socket: Duplex, status: number, reason: string): void {
  socket.end(`HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
}

/**
 * Liveness kept on the socket object itself (no per-socket closure, listener or map entry): the
 * raw socket's `bytesRead` at the last heartbeat visit. Any byte read since (a pong, or anything
 * else the client sent) proves the peer alive; nothing read for a whole interval after a ping
 * means it is gone.
 */
const SEEN = Symbol('herald.seen');
type Watched = WebSocket & { [SEEN]?: number };

/**
 * Accepts upgrades for one endpoint and keeps its sockets alive or drops them. Heartbeats are
 * RFC 6455 pings, which every client answers without application code: one timer wheel visits
 * each socket once per interval and writes one pre-built ping frame straight to its socket, so an
 * idle connection costs one small write and one small read per interval and nothing else.
 */
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
    const wheel = (this.#wheel = new TimerWheel<WebSocket>(options.pingIntervalMs, (ws) => this.#heartbeat(ws)));
    this.#unwatch = function (this: WebSocket) {
      wheel.remove(this);
    };
  }

  /** Complete an upgrade; `onOpen` receives the socket (the request is not retained). */
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer, onOpen: (ws: WebSocket, req: IncomingMessage) => void): void {
    this.#wss.handleUpgrade(req, socket, head, (ws) => this.#opened(ws, req, onOpen));
  }

  /**
   * Watch a new socket. Kept out of the upgrade callback's scope on purpose: listeners made
   * there would keep the upgrade request alive for the socket's lifetime (~2 KB each).
   */
  #opened(ws: Watched, req: IncomingMessage, onOpen: (ws: WebSocket, req: IncomingMessage) => void): void {
    ws[SEEN] = -1;
    // `on`, not `once`: 'close' comes once, and `once` costs a wrapper object and a bound function per socket.
    ws.on('close', this.#unwatch);
    this.#wheel.add(ws);
    onOpen(ws, req);
  }

  /** Shared close listener (`this` is the socket). */
  readonly #unwatch: (this: WebSocket) => void;

  /** Sockets being watched. */
  get size(): number {
    return this.#wheel.size;
  }

  /** Stop heartbeats (sockets stay open). */
  stop(): void {
    this.#wheel.stop();
  }

  /** One visit: alive if anything was read since the last visit (then ping again), else dead. */
  #heartbeat(ws: Watched): void {
    const sock = rawSocket(ws) as (Duplex & { bytesRead: number }) | undefined;
    if (ws.readyState !== WebSocket.OPEN || !sock) return;
    const read = sock.bytesRead;
    if (read === ws[SEEN]) {
      this.#onDead?.(ws);
      ws.terminate();
      return;
    }
    ws[SEEN] = read;
    sock.write(PING_FRAME);
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

/**
 * An empty unmasked ping, built once and written as is to every socket (permessage-deflate is
 * off, so ws's sender never holds frames of its own that a direct write could overtake).
 */
const PING_FRAME = Buffer.concat(Sender.frame(Buffer.alloc(0), { fin: true, rsv1: false, opcode: 9, mask: false, readOnly: true }));

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

/** Sockets corked during this turn of the event loop, uncorked together in the check phase. */
const corked: Duplex[] = [];
/** Frames `writeFrame` wrote during this turn. */
let framesThisTurn = 0;
/**
 * Whether the last turn that wrote frames was a burst (some socket got more than one): then the
 * first frame of a socket waits for the rest of the turn too, so that all leave in one `writev`.
 */
let bursting = false;

function uncorkAll(): void {
  bursting = framesThisTurn > corked.length;
  framesThisTurn = 0;
  for (let i = 0; i < corked.length; i++) corked[i]!.uncork();
  corked.length = 0;
}

/**
 * Write a pre-built frame straight to the socket. Safe because permessage-deflate is off, so
 * ws's sender never holds queued frames of its own. Frames written to one socket during one
 * turn of the event loop are coalesced: the socket is corked until the check phase, so the
 * frames that follow the first leave together in one `writev`. The first frame itself leaves at
 * once unless the previous turn that wrote frames was a burst (a socket got more than one
 * frame): one publication at a time reaches its first subscribers without waiting for the
 * whole broadcast to be queued, and under a burst of publications each subscriber still costs
 * one system call per turn instead of one per publication.
 * Returns the bytes now waiting in the socket's buffer (for slow-consumer checks), or -1 if
 * the socket is not open.
 */
export function writeFrame(ws: WebSocket, frame: Buffer): number {
  const sock = rawSocket(ws) as (Duplex & { writableCorked: number; writableLength: number }) | undefined;
  if (ws.readyState !== WebSocket.OPEN || !sock) return -1;
  framesThisTurn++;
  if (sock.writableCorked !== 0) sock.write(frame);
  else {
    if (!bursting) sock.write(frame);
    sock.cork();
    if (corked.push(sock) === 1) setImmediate(uncorkAll);
    if (bursting) sock.write(frame);
  }
  return sock.writableLength;
}

/**
 * Write a pre-built frame (writeFrame), or cut a slow consumer: when more than `maxBuffered`
 * bytes wait unsent after the write, the connection is terminated at once (a close frame would
 * wait behind the backlog), so one stuck client cannot hold unbounded memory. Returns false
 * when it cut the connection.
 */
export function writeOrCut(ws: WebSocket, frame: Buffer, maxBuffered: number): boolean {
  if (writeFrame(ws, frame) <= maxBuffered) return true;
  ws.terminate();
  return false;
}

/**
 * Admit the client of a WebSocket that just opened (core/client-sessions.ts). A refused client
 * is closed with the refusal's close code (e.g. 3007, too many connections): a browser sees a
 * close code, never the HTTP answer to a refused upgrade. Returns the ticket, or undefined when
 * refused.
 */
export function admitSocket(
  clients: ClientSessions,
  net: NetPolicy,
  ws: WebSocket,
  req: IncomingMessage,
  front: string,
  transport: string,
): AdmissionTicket | undefined {
  try {
    return clients.admit(admissionRequest(req, net, front, transport));
  } catch (err) {
    if (!(err instanceof AdmissionError)) throw err;
    ws.close(err.closeCode, err.message.slice(0, 100));
    return undefined;
  }
}

/** Bytes written to the socket and not yet handed to the operating system (0 once closed). */
export function bufferedBytes(ws: WebSocket): number {
  const sock = rawSocket(ws) as (Duplex & { writableLength: number }) | undefined;
  return ws.readyState === WebSocket.OPEN && sock ? sock.writableLength : 0;
}

/**
 * Call `fn` once the socket's buffer has drained: on its next `drain` event, or on the next turn
 * when no drain is pending. Never called for a socket that closes first.
 */
export function whenDrained(ws: WebSocket, fn: () => void): void {
  const sock = rawSocket(ws) as (Duplex & { writableNeedDrain: boolean }) | undefined;
  if (ws.readyState !== WebSocket.OPEN || !sock) return;
  if (sock.writableNeedDrain) sock.once('drain', fn);
  else setImmediate(fn);
}
