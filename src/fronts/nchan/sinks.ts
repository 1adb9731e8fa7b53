/**
 * Nchan's subscriber types as sinks of a subscription, writing Nchan's exact wire formats:
 * long-poll and interval-poll (one message per response), EventSource, HTTP chunked,
 * multipart/mixed, raw stream and WebSocket (plain or `ws+meta.nchan`).
 */
import { randomBytes } from 'node:crypto';
import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { WebSocket } from 'ws';
import { BINARY_CONTENT_TYPE } from '../../core/publication.js';
import { aliveOrCut } from '../../transports/http.js';
import { binaryFrame, bufferedBytes, textFrame, whenDrained, writeOrCut } from '../../transports/websocket.js';
import { httpDate } from './ids.js';
import type { EndReason, NchanMessage, Sink } from './subscription.js';

/** Headers of a long-poll / interval-poll answer carrying a message. */
export function messageHeaders(msg: NchanMessage, extra: OutgoingHttpHeaders): OutgoingHttpHeaders {
  const h: OutgoingHttpHeaders = {
    'Content-Length': String(msg.pub.payload.length),
    'Last-Modified': httpDate(msg.time),
    Etag: msg.tags,
    Vary: 'If-None-Match, If-Modified-Since',
    ...extra,
  };
  if (msg.pub.contentType) h['Content-Type'] = msg.pub.contentType;
  return h;
}

/**
 * Long-poll and interval-poll: answer with the first message, or with 408 / 410. Like Nchan, a
 * 410 carries the position the subscriber asked to resume from (`resumeTags`) as its Etag.
 */
export class LongPollSink implements Sink {
  readonly #res: ServerResponse;
  readonly #cors: OutgoingHttpHeaders;
  readonly #resumeTags: string | undefined;
  /** Whether the answer has no request-specific headers, so it can be shared (no CORS headers). */
  readonly #plain: boolean;
  constructor(res: ServerResponse, cors: OutgoingHttpHeaders, resumeTags?: string) {
    this.#res = res;
    this.#cors = cors;
    this.#resumeTags = resumeTags;
    this.#plain = Object.keys(cors).length === 0;
  }
  message(msg: NchanMessage): boolean {
    if (this.#res.headersSent) return false;
    // Every waiting subscriber of a single channel gets the same answer: its headers are built
    // once per publication and shared (Node only reads them).
    const headers = this.#plain && !msg.multiplexed ? (sharedEntry(msg).poll ??= messageHeaders(msg, NO_HEADERS)) : messageHeaders(msg, this.#cors);
    this.#res.writeHead(200, headers).end(msg.pub.payload);
    return false;
  }
  end(reason: EndReason): void {
    if (this.#res.headersSent) return;
    const h: OutgoingHttpHeaders = { 'Content-Length': '0', Vary: 'If-None-Match, If-Modified-Since', ...this.#cors };
    if (reason === 'deleted' && this.#resumeTags !== undefined) h['Etag'] = this.#resumeTags;
    this.#res.writeHead(reason === 'deleted' ? 410 : 408, h).end();
  }
}

/** Start a close-delimited stream (no Content-Length, no chunked coding). */
function startStream(res: ServerResponse, headers: OutgoingHttpHeaders): void {
  res.useChunkedEncodingByDefault = false;
  res.writeHead(200, headers);
}

/**
 * What the streaming HTTP types share: the response, the slow-consumer bound, and pacing on
 * Node's own backpressure signal (`writableNeedDrain`: the socket's buffer is at its high-water
 * mark).
 */
abstract class HttpStreamSink implements Sink {
  protected readonly res: ServerResponse;
  readonly #max: number;
  constructor(res: ServerResponse, maxBuffered: number) {
    this.res = res;
    this.#max = maxBuffered;
  }
  abstract message(msg: NchanMessage): boolean;
  abstract end(reason: EndReason): void;
  /** After a write: whether the reader keeps up, else it was cut (aliveOrCut). */
  protected alive(): boolean {
    return aliveOrCut(this.res, this.#max);
  }
  drained(): Promise<void> | undefined {
    const res = this.res;
    if (!res.writableNeedDrain) return undefined;
    return new Promise((resolve) => {
      const done = (): void => {
        res.off('drain', done).off('close', done);
        resolve();
      };
      res.on('drain', done).on('close', done);
    });
  }
  cut(): void {
    this.res.destroy();
  }
}

/** EventSource: `: hi`, then `[event: X]\nid: <id>\ndata: <line>…\n\n`; `:410: 410 Gone` on delete. */
export class EventSourceSink extends HttpStreamSink {
  constructor(res: ServerResponse, cors: OutgoingHttpHeaders, maxBuffered: number) {
    super(res, maxBuffered);
    startStream(res, { 'Content-Type': 'text/event-stream; charset=utf-8', ...cors });
    res.write(': hi\n\n');
  }
  message(msg: NchanMessage): boolean {
    this.res.write(msg.multiplexed ? Buffer.from(formatEvent(msg)) : (sharedEntry(msg).es ??= Buffer.from(formatEvent(msg))));
    return this.alive();
  }
  ping(): void {
    this.res.write(ES_PING);
  }
  end(reason: EndReason): void {
    if (reason === 'deleted') this.res.write(':410: 410 Gone\n\n');
    this.res.end();
  }
}

/**
 * Encodings of single-channel messages, shared by every subscriber of the node ("encode once,
 * write many"): a single-channel id depends only on the publication.
 */
const shared = new WeakMap<object, SharedEncodings>();

/** What is built once per single-channel publication. */
interface SharedEncodings {
  es?: Buffer;
  frame?: Buffer;
  metaFrame?: Buffer;
  /** Headers of a long-poll answer without CORS headers. */
  poll?: OutgoingHttpHeaders;
}

/** No extra headers. */
const NO_HEADERS: OutgoingHttpHeaders = Object.freeze({});

/** The shared encodings of a single-channel message's publication. */
function sharedEntry(msg: NchanMessage): SharedEncodings {
  let entry = shared.get(msg.pub);
  if (!entry) shared.set(msg.pub, (entry = {}));
  return entry;
}

/** Nchan's default EventSource ping (event `ping`, no comment, no data). */
const ES_PING = Buffer.from('event: ping\n\n');

/** Every line terminator of the EventSource grammar: CRLF, a bare CR and a bare LF. */
const SSE_LINE_BREAK = /\r\n|\r|\n/;

/**
 * One EventSource event for a message. The payload is split on every line terminator an
 * EventSource parser honours (`\r\n`, `\r`, `\n`), each piece its own `data:` line, so a
 * publisher cannot start a line of its own (`event:`, `id:`, `retry:`); line breaks in the event
 * name are dropped for the same reason.
 */
export function formatEvent(msg: NchanMessage): string {
  const event = msg.pub.event?.replace(/[\r\n]/g, '');
  let s = event ? `event: ${event}\n` : '';
  s += `id: ${msg.time}:${msg.tags}\n`;
  for (const line of msg.pub.payload.toString('utf8').split(SSE_LINE_BREAK)) s += `data: ${line}\n`;
  return s + '\n';
}

/** HTTP chunked: one chunk per message; empty messages are skipped (an empty chunk ends the body). */
export class ChunkedSink extends HttpStreamSink {
  constructor(res: ServerResponse, cors: OutgoingHttpHeaders, maxBuffered: number) {
    super(res, maxBuffered);
    res.writeHead(200, { 'Transfer-Encoding': 'chunked', ...cors });
    res.flushHeaders();
  }
  message(msg: NchanMessage): boolean {
    if (msg.pub.payload.length > 0) this.res.write(msg.pub.payload);
    return this.alive();
  }
  end(): void {
    // Like Nchan, the connection closes after the last chunk.
    const socket = this.res.socket;
    this.res.end(() => socket?.end());
  }
}

const BOUNDARY_CHARS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789./';

/** multipart/mixed: `--B`, then per message `\r\n<headers>\r\n\r\n<body>\r\n--B`; `--\r\n` at the end. */
export class MultipartSink extends HttpStreamSink {
  readonly #boundary: string;
  constructor(res: ServerResponse, cors: OutgoingHttpHeaders, maxBuffered: number) {
    super(res, maxBuffered);
    const bytes = randomBytes(32);
    this.#boundary = Array.from(bytes, (b) => BOUNDARY_CHARS[b & 63]).join('');
    startStream(res, { 'Content-Type': `multipart/mixed; boundary=${this.#boundary}`, ...cors });
    res.write(`--${this.#boundary}`);
  }
  message(msg: NchanMessage): boolean {
    let head = `\r\nLast-Modified: ${httpDate(msg.time)}\r\nEtag: ${msg.tags}\r\n`;
    if (msg.pub.contentType) head += `Content-Type: ${msg.pub.contentType}\r\n`;
    this.res.write(head + '\r\n');
    if (msg.pub.payload.length) this.res.write(msg.pub.payload);
    this.res.write(`\r\n--${this.#boundary}`);
    return this.alive();
  }
  end(): void {
    this.res.end('--\r\n');
  }
}

/** http-raw-stream: each body followed by a newline. */
export class RawStreamSink extends HttpStreamSink {
  constructor(res: ServerResponse, cors: OutgoingHttpHeaders, maxBuffered: number) {
    super(res, maxBuffered);
    startStream(res, { Connection: 'close', ...cors });
    res.flushHeaders();
  }
  message(msg: NchanMessage): boolean {
    this.res.write(Buffer.concat([msg.pub.payload, NL]));
    return this.alive();
  }
  end(): void {
    this.res.end();
  }
}
const NL = Buffer.from('\n');

/** Unsent bytes at which a WebSocket backlog waits for the socket to drain: its high-water mark. */
const WS_PACE_BYTES = 16_384;

/** WebSocket: one frame per message (binary for octet-stream); `ws+meta.nchan` adds id and content-type. */
export class WebSocketSink implements Sink {
  readonly #ws: WebSocket;
  readonly #meta: boolean;
  readonly #max: number;
  constructor(ws: WebSocket, meta: boolean, maxBuffered: number) {
    this.#ws = ws;
    this.#meta = meta;
    this.#max = maxBuffered;
  }
  message(msg: NchanMessage): boolean {
    if (this.#ws.readyState !== 1) return true;
    // Single-channel frames are built once per publication and written to every socket.
    let frame: Buffer;
    if (msg.multiplexed) frame = this.#frame(msg);
    else {
      const entry = sharedEntry(msg);
      frame = this.#meta ? (entry.metaFrame ??= this.#frame(msg)) : (entry.frame ??= this.#frame(msg));
    }
    return writeOrCut(this.#ws, frame, this.#max);
  }
  drained(): Promise<void> | undefined {
    // At the socket's high-water mark (16 KiB) a drain is pending, so it is sure to come.
    if (bufferedBytes(this.#ws) < WS_PACE_BYTES) return undefined;
    const ws = this.#ws;
    return new Promise((resolve) => {
      const done = (): void => {
        ws.off('close', done);
        resolve();
      };
      ws.on('close', done);
      whenDrained(ws, done);
    });
  }
  cut(): void {
    this.#ws.terminate();
  }
  /** The frame of a message for this socket (binary for octet-stream). */
  #frame(msg: NchanMessage): Buffer {
    let body = msg.pub.payload;
    if (this.#meta) {
      let head = `id: ${msg.time}:${msg.tags}\n`;
      if (msg.pub.contentType) head += `content-type: ${msg.pub.contentType}\n`;
      body = Buffer.concat([Buffer.from(head + '\n'), body]);
    }
    return msg.pub.contentType === BINARY_CONTENT_TYPE ? binaryFrame(body) : textFrame(body);
  }
  ping(): void {
    if (this.#ws.readyState === 1) this.#ws.ping();
  }
  end(reason: EndReason): void {
    if (reason === 'deleted') this.#ws.close(1001, '410 Gone');
    else this.#ws.close(1000, 'Timeout');
  }
}
