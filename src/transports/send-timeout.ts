/**
 * Send timeout for every socket of an HTTP server (plain responses, streams and upgraded
 * WebSockets alike): a socket that holds unsent bytes and has not handed any of them to the
 * operating system for `timeoutMs` belongs to a peer that stopped reading, and is destroyed, so
 * what it pinned is freed. Idle sockets (nothing to send) are never touched: waiting long-polls
 * and quiet streams are not "stuck".
 *
 * Only sockets that may hold unsent bytes are looked at: a socket joins the watch list when a
 * write or end leaves bytes in its buffer, and leaves it at the first sweep that finds the
 * buffer empty. One sweep every quarter of the timeout, so a stuck socket is cut between 1 and
 * 1.25 times the timeout after it last made progress; no timer per socket, and a sweep costs
 * O(sockets written to since the last one), nothing per idle connection. The sweep runs only
 * while the list holds sockets: a server whose sockets all drained is never woken by it.
 */
import type { Server } from 'node:http';
import { Socket } from 'node:net';
import { OnDemandInterval } from '../core/on-demand-interval.js';

/** Sweeps per timeout: the cut comes at most this fraction of the timeout late. */
const SWEEPS_PER_TIMEOUT = 4;

/** Where a socket with unsent bytes stood at the sweep that first saw it stuck. */
interface Stall {
  /** Progress marker (see `progress`). */
  done: number;
  /** When it was first seen with unsent bytes and this marker, ms since the epoch. */
  since: number;
}

/** Watch state kept on the socket itself: its stall, or null when it is listed with none yet. */
const WATCH = Symbol('herald.sendWatch');
/** The list a socket joins when bytes wait in its buffer (its server's SendTimeout). */
const OWNER = Symbol('herald.sendOwner');
type Watched = Socket & { [WATCH]?: Stall | null; [OWNER]?: SendTimeout };

/**
 * A number that changes whenever the peer takes bytes: bytes whose writes completed, minus what
 * libuv still queues of the write in flight (a single large write completes only at its end,
 * but its queue shrinks as the kernel accepts parts of it).
 */
function progress(socket: Socket, pending: number): number {
  const queued = (socket as unknown as { _handle?: { writeQueueSize?: number } })._handle?.writeQueueSize ?? 0;
  return socket.bytesWritten - pending - queued;
}

/** List the socket once its buffer holds bytes (shared by every socket: no closure each). */
function note(socket: Watched): void {
  if (socket[WATCH] === undefined && socket.writableLength !== 0) {
    socket[WATCH] = null;
    socket[OWNER]!.list(socket);
  }
}

const plainWrite = Socket.prototype.write;
const plainEnd = Socket.prototype.end;

/** `socket.write` of a watched socket: the plain write, then `note`. */
function watchedWrite(this: Watched, ...args: Parameters<Socket['write']>): boolean {
  const ok = plainWrite.apply(this, args);
  note(this);
  return ok;
}

/** `socket.end` of a watched socket: the plain end (whose bytes bypass `write`), then `note`. */
function watchedEnd(this: Watched, ...args: Parameters<Socket['end']>): Socket {
  plainEnd.apply(this, args);
  note(this);
  return this;
}

/** Shared close listener: a closed socket leaves its list. */
function unlist(this: Watched): void {
  this[OWNER]!.unlist(this);
}

/** Watches the sockets of one server. */
export class SendTimeout {
  readonly #timeoutMs: number;
  /** Sockets that had bytes waiting when last written to, until a sweep finds them empty. */
  readonly #listed = new Set<Socket>();
  readonly #sweeper: OnDemandInterval;
  /** Sockets destroyed for not reading, since start. */
  cut = 0;

  constructor(server: Server, timeoutMs: number) {
    this.#timeoutMs = timeoutMs;
    server.on('connection', (socket: Watched) => {
      socket[OWNER] = this;
      socket.write = watchedWrite as Socket['write'];
      socket.end = watchedEnd as Socket['end'];
      socket.on('close', unlist); // 'close' comes once; `once` would add a wrapper per socket
    });
    this.#sweeper = new OnDemandInterval(Math.floor(timeoutMs / SWEEPS_PER_TIMEOUT), () => {
      this.sweep(Date.now());
      return this.#listed.size > 0;
    });
  }

  /** A socket's buffer holds bytes: watch it until a sweep finds it drained. */
  list(socket: Socket): void {
    this.#listed.add(socket);
    this.#sweeper.wake();
  }

  /** A socket closed: stop watching it. */
  unlist(socket: Socket): void {
    this.#listed.delete(socket);
  }

  /** Sockets currently looked at by the sweep (those written to with bytes left unsent). */
  get watched(): number {
    return this.#listed.size;
  }

  /** One pass over the listed sockets: drop the drained ones, destroy those stuck for the timeout. */
  sweep(now: number): void {
    for (const socket of this.#listed as Set<Watched>) {
      const pending = socket.writableLength;
      if (pending === 0 || socket.destroyed) {
        this.#listed.delete(socket);
        socket[WATCH] = undefined;
        continue;
      }
      const done = progress(socket, pending);
      const stall = socket[WATCH];
      if (!stall || stall.done !== done) socket[WATCH] = { done, since: now };
      else if (now - stall.since >= this.#timeoutMs) {
        this.#listed.delete(socket);
        socket[WATCH] = undefined;
        this.cut++;
        socket.destroy();
      }
    }
  }

  /** Stop sweeping. */
  stop(): void {
    this.#sweeper.stop();
  }
}
