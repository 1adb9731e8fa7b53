/**
 * Send timeout for every socket of an HTTP server (plain responses, streams and upgraded
 * WebSockets alike): a socket that holds unsent bytes and has not handed any of them to the
 * operating system for `timeoutMs` belongs to a peer that stopped reading, and is destroyed, so
 * what it pinned is freed. Idle sockets (nothing to send) are never touched: waiting long-polls
 * and quiet streams are not "stuck".
 *
 * One sweep over the server's sockets every quarter of the timeout, so a stuck socket is cut
 * between 1 and 1.25 times the timeout after it last made progress; no timer per socket.
 */
import type { Server } from 'node:http';
import type { Socket } from 'node:net';

/** Sweeps per timeout: the cut comes at most this fraction of the timeout late. */
const SWEEPS_PER_TIMEOUT = 4;

/** Where a socket with unsent bytes stood at the sweep that first saw it stuck. */
interface Stall {
  /** Progress marker (see `progress`). */
  readonly done: number;
  /** When it was first seen with unsent bytes and this count, ms since the epoch. */
  readonly since: number;
}

/**
 * A number that changes whenever the peer takes bytes: bytes whose writes completed, minus what
 * libuv still queues of the write in flight (a single large write completes only at its end,
 * but its queue shrinks as the kernel accepts parts of it).
 */
function progress(socket: Socket, pending: number): number {
  const queued = (socket as unknown as { _handle?: { writeQueueSize?: number } })._handle?.writeQueueSize ?? 0;
  return socket.bytesWritten - pending - queued;
}

/** Watches the sockets of one server. */
export class SendTimeout {
  readonly #timeoutMs: number;
  readonly #sockets = new Set<Socket>();
  readonly #stalls = new Map<Socket, Stall>();
  readonly #timer: NodeJS.Timeout;
  /** Sockets destroyed for not reading, since start. */
  cut = 0;

  constructor(server: Server, timeoutMs: number) {
    this.#timeoutMs = timeoutMs;
    server.on('connection', (socket: Socket) => {
      this.#sockets.add(socket);
      socket.once('close', () => {
        this.#sockets.delete(socket);
        this.#stalls.delete(socket);
      });
    });
    this.#timer = setInterval(() => this.sweep(Date.now()), Math.max(1, Math.floor(timeoutMs / SWEEPS_PER_TIMEOUT)));
    this.#timer.unref();
  }

  /** One pass: note sockets that stopped making progress, destroy those stuck for the timeout. */
  sweep(now: number): void {
    for (const socket of this.#sockets) {
      const pending = socket.writableLength;
      if (pending === 0) {
        this.#stalls.delete(socket);
        continue;
      }
      const done = progress(socket, pending);
      const stall = this.#stalls.get(socket);
      if (!stall || stall.done !== done) this.#stalls.set(socket, { done, since: now });
      else if (now - stall.since >= this.#timeoutMs) {
        this.#stalls.delete(socket);
        this.cut++;
        socket.destroy();
      }
    }
  }

  /** Stop sweeping. */
  stop(): void {
    clearInterval(this.#timer);
  }
}
