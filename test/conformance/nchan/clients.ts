/**
 * Real clients for the Nchan conformance suite: fetch for requests, a raw TCP HTTP/1.1 client
 * for streaming responses (so framing, chunking and missing Content-Length are visible byte
 * for byte), and small helpers shared by the test files.
 */
import { connect, type Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import type WebSocket from 'ws';
import { note } from './transcript.js';

/** A fresh channel id (letters, digits, `-`), unique within the run. */
export function chan(prefix = 'c'): string {
  return `${prefix}-${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Wait until early in a wall-clock second, so that a few quick publishes share one id time
 * (Nchan's compound ids differ in shape across a second boundary).
 */
export async function startOfSecond(): Promise<void> {
  const ms = Date.now() % 1000;
  if (ms > 600) await sleep(1000 - ms + 5);
}

/** Response of `req`. */
export interface Res {
  readonly status: number;
  readonly headers: Headers;
  readonly body: string;
}

/**
 * One request with fetch; the body is read fully. Its status and headers are compared with
 * real Nchan's (transcript.ts); `poll` marks a request repeated until some state is reached.
 */
export async function req(base: string, path: string, init: RequestInit & { timeoutMs?: number; poll?: boolean } = {}): Promise<Res> {
  const { timeoutMs, poll, ...rest } = init;
  const signal = AbortSignal.timeout(timeoutMs ?? 10_000);
  const done = note(rest.method ?? 'GET', path, (rest.headers ?? {}) as Record<string, string>, poll);
  try {
    const r = await fetch(base + path, { ...rest, signal });
    done(r.status, r.headers);
    return { status: r.status, headers: r.headers, body: await r.text() };
  } catch (e) {
    done(null);
    throw e;
  }
}

/** Note a `ws` client's handshake (its path on `url`) for the comparison with real Nchan. */
export function noteWs(ws: WebSocket, url: string, protocols?: string | string[], headers: Record<string, string> = {}): void {
  const u = new URL(url);
  const proto: Record<string, string> = protocols === undefined ? {} : { 'Sec-WebSocket-Protocol': [protocols].flat().join(', ') };
  const done = note('GET', u.pathname + u.search, { Upgrade: 'websocket', 'Sec-WebSocket-Version': '13', ...proto, ...headers });
  ws.once('upgrade', (res) => done(res.statusCode ?? 0, res.headers));
  ws.once('error', () => done(null));
  ws.once('close', () => done(null));
}

/** A fetch for the EventSource client that notes each request like req() does. */
export const notingFetch: typeof fetch = async (input, init) => {
  const u = new URL(input instanceof Request ? input.url : String(input));
  const headers = Object.fromEntries(new Headers(init?.headers).entries());
  const done = note(init?.method ?? 'GET', u.pathname + u.search, headers);
  try {
    const r = await fetch(input, init);
    done(r.status, r.headers);
    return r;
  } catch (e) {
    done(null);
    throw e;
  }
};

/**
 * Publish `body` to `path` (POST), optionally with a Content-Type and other headers. The body
 * goes as bytes, so no Content-Type is sent unless given (fetch adds one for strings).
 */
export function publish(base: string, path: string, body: string | Buffer, headers: Record<string, string> = {}): Promise<Res> {
  return req(base, path, { method: 'POST', body: new Uint8Array(typeof body === 'string' ? Buffer.from(body) : body), headers });
}

/** Parse Nchan's plain channel info. */
export function parsePlainInfo(body: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of body.split('\r\n')) {
    const i = line.indexOf(': ');
    if (i > 0) out[line.slice(0, i)] = line.slice(i + 2);
  }
  return out;
}

/** Channel info as JSON via the publisher location (`/pub/<id>`), or null on 404. */
export async function info(
  base: string,
  ch: string,
  pubPrefix = '/pub/',
): Promise<{ messages: number; requested: number; subscribers: number; last_message_id: string } | null> {
  const r = await req(base, pubPrefix + ch, { headers: { Accept: 'text/json' } });
  if (r.status === 404) return null;
  return JSON.parse(r.body);
}

/** Wait until the channel reports at least `n` subscribers. */
export async function waitSubscribers(base: string, ch: string, n: number, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    const r = await req(base, `/pub/${ch}`, { headers: { Accept: 'text/json' }, poll: true });
    const i = r.status === 404 ? null : (JSON.parse(r.body) as { subscribers: number });
    if (i && i.subscribers >= n) return;
    if (Date.now() > end) throw new Error(`channel ${ch}: expected ${n} subscribers, info ${JSON.stringify(i)}`);
    await sleep(25);
  }
}

/** A raw HTTP/1.1 exchange over one TCP connection. */
export interface RawExchange {
  /** Resolves with the status line and headers (lower-case names) once they have arrived. */
  readonly head: Promise<{ status: number; reason: string; headers: Record<string, string>; rawHead: string }>;
  /** Raw body bytes received so far (transfer coding not removed). */
  body(): Buffer;
  /** Resolves when the server closed the connection. */
  readonly ended: Promise<void>;
  /** Wait until the raw body text satisfies `pred`. */
  waitBody(pred: (text: string) => boolean, ms?: number): Promise<string>;
  close(): void;
  readonly socket: Socket;
}

/** Send a raw request (`GET` by default) and expose the raw response. */
export function raw(base: string, path: string, headers: Record<string, string> = {}, opts: { method?: string; body?: string } = {}): RawExchange {
  const u = new URL(base);
  const done = note(opts.method ?? 'GET', path, headers);
  const socket = connect(Number(u.port), u.hostname);
  let buf = Buffer.alloc(0);
  let headEnd = -1;
  let resolveHead!: (h: { status: number; reason: string; headers: Record<string, string>; rawHead: string }) => void;
  let rejectHead!: (e: Error) => void;
  const head = new Promise<{ status: number; reason: string; headers: Record<string, string>; rawHead: string }>((res, rej) => {
    resolveHead = res;
    rejectHead = rej;
  });
  head.catch(() => undefined);
  const ended = new Promise<void>((resolve) => socket.on('close', () => resolve()));
  socket.on('error', (e) => rejectHead(e));
  socket.on('data', (d: Buffer) => {
    buf = Buffer.concat([buf, d]);
    if (headEnd < 0) {
      const i = buf.indexOf('\r\n\r\n');
      if (i >= 0) {
        headEnd = i + 4;
        const rawHead = buf.subarray(0, i).toString('latin1');
        const [statusLine, ...lines] = rawHead.split('\r\n');
        const m = /^HTTP\/1\.[01] (\d{3}) ?(.*)$/.exec(statusLine!);
        const hs: Record<string, string> = {};
        for (const l of lines) {
          const c = l.indexOf(':');
          const k = l.slice(0, c).trim().toLowerCase();
          const v = l.slice(c + 1).trim();
          hs[k] = hs[k] === undefined ? v : `${hs[k]}, ${v}`;
        }
        done(Number(m?.[1] ?? 0), hs);
        resolveHead({ status: Number(m?.[1] ?? 0), reason: m?.[2] ?? '', headers: hs, rawHead });
      }
    }
  });
  socket.on('close', () => {
    if (headEnd < 0) done(null);
  });
  socket.on('close', () => {
    if (headEnd < 0) rejectHead(new Error(`connection closed before headers: ${buf.toString()}`));
  });
  const method = opts.method ?? 'GET';
  const lines = [`${method} ${path} HTTP/1.1`, `Host: ${u.host}`];
  for (const [k, v] of Object.entries(headers)) lines.push(`${k}: ${v}`);
  if (opts.body !== undefined) lines.push(`Content-Length: ${Buffer.byteLength(opts.body)}`);
  socket.write(lines.join('\r\n') + '\r\n\r\n' + (opts.body ?? ''));
  const body = (): Buffer => (headEnd < 0 ? Buffer.alloc(0) : buf.subarray(headEnd));
  return {
    head,
    body,
    ended,
    socket,
    async waitBody(pred, ms = 5000) {
      const end = Date.now() + ms;
      for (;;) {
        const t = body().toString('utf8');
        if (pred(t)) return t;
        if (Date.now() > end) throw new Error(`body did not match in ${ms} ms: ${JSON.stringify(t)}`);
        await sleep(15);
      }
    },
    close() {
      socket.destroy();
    },
  };
}

/** Decode an HTTP/1.1 chunked body into its chunks (stops at an incomplete chunk). */
export function decodeChunks(b: Buffer): { chunks: Buffer[]; last: boolean } {
  const chunks: Buffer[] = [];
  let i = 0;
  for (;;) {
    const nl = b.indexOf('\r\n', i);
    if (nl < 0) return { chunks, last: false };
    const size = parseInt(b.subarray(i, nl).toString('latin1'), 16);
    if (size === 0) return { chunks, last: true };
    if (b.length < nl + 2 + size + 2) return { chunks, last: false };
    chunks.push(b.subarray(nl + 2, nl + 2 + size));
    i = nl + 2 + size + 2;
  }
}

/** One EventSource event parsed from a text/event-stream body. */
export interface SseEvent {
  id?: string;
  event?: string;
  data: string;
  comment?: string;
}

/** Parse an event-stream body into events (comments kept as `comment` entries). */
export function parseSse(text: string): SseEvent[] {
  const out: SseEvent[] = [];
  for (const block of text.split('\n\n')) {
    if (block === '') continue;
    const ev: SseEvent = { data: '' };
    const data: string[] = [];
    let isComment = true;
    for (const line of block.split('\n')) {
      if (line.startsWith(':')) {
        ev.comment = (ev.comment ?? '') + line;
        continue;
      }
      isComment = false;
      const c = line.indexOf(':');
      const k = c < 0 ? line : line.slice(0, c);
      const v = c < 0 ? '' : line.slice(c + 1).replace(/^ /, '');
      if (k === 'data') data.push(v);
      else if (k === 'id') ev.id = v;
      else if (k === 'event') ev.event = v;
    }
    ev.data = data.join('\n');
    if (!isComment || ev.comment) out.push(isComment ? { data: '', comment: ev.comment } : ev);
  }
  return out;
}
