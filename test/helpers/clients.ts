/**
 * Real clients for the native protocol: a WebSocket client over `ws` with command/reply
 * correlation and a queue of pushes, an SSE client over fetch (raw event-stream parsing, so ids
 * and comment lines are visible), an NDJSON stream reader, and long-poll requests with fetch.
 */
import { WebSocket, type ClientOptions } from 'ws';

/** A queue of received items that tests wait on by predicate. */
export class Inbox<T> {
  readonly items: T[] = [];
  readonly #waiters: Array<{ pred: (t: T) => boolean; resolve: (t: T) => void; reject: (e: Error) => void }> = [];
  #failure: Error | undefined;

  /** Add an item; hands it to the first waiter that wants it, else keeps it. */
  put(item: T): void {
    const i = this.#waiters.findIndex((w) => w.pred(item));
    if (i >= 0) {
      const [w] = this.#waiters.splice(i, 1);
      w!.resolve(item);
      return;
    }
    this.items.push(item);
  }

  /** The source ended: current and later waiters that find nothing are rejected with `err`. */
  fail(err: Error): void {
    this.#failure = err;
    for (const w of this.#waiters.splice(0)) w.reject(err);
  }

  /** Take the first item matching `pred` (waiting up to `timeoutMs`). */
  take(pred: (t: T) => boolean = () => true, timeoutMs = 3_000): Promise<T> {
    const i = this.items.findIndex(pred);
    if (i >= 0) return Promise.resolve(this.items.splice(i, 1)[0]!);
    if (this.#failure) return Promise.reject(this.#failure);
    return new Promise<T>((resolve, reject) => {
      const waiter = {
        pred,
        resolve: (t: T) => {
          clearTimeout(timer);
          resolve(t);
        },
        reject: (e: Error) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      const timer = setTimeout(() => {
        this.#waiters.splice(this.#waiters.indexOf(waiter), 1);
        reject(
          new Error(
            `timed out after ${timeoutMs} ms waiting for an item${this.#failure ? ` (${this.#failure.message})` : ''}; have ${describe(this.items).slice(0, 500)}`,
          ),
        );
      }, timeoutMs);
      this.#waiters.push(waiter);
    });
  }

  /** Take `n` items matching `pred`, in arrival order. */
  async takeN(n: number, pred: (t: T) => boolean = () => true, timeoutMs = 3_000): Promise<T[]> {
    const out: T[] = [];
    const deadline = Date.now() + timeoutMs;
    while (out.length < n) out.push(await this.take(pred, Math.max(1, deadline - Date.now())));
    return out;
  }
}

/** Items for a timeout message: JSON, or their strings when they do not serialize (XML elements link to their parents). */
function describe(items: readonly unknown[]): string {
  try {
    return JSON.stringify(items);
  } catch {
    return items.map(String).join(', ');
  }
}

/** A JSON frame as received. */
export type Frame = Record<string, any>;

/** A native-protocol publication push. */
export interface Pub {
  type: 'pub';
  channel: string;
  epoch: string;
  offset: number;
  time: number;
  data: unknown;
  contentType?: string;
  encoding?: string;
  event?: string;
  info?: { user?: string; client: string };
}

/** A reply frame: `{id, result}` or `{id, error}`. */
export interface Reply {
  id?: number;
  result?: any;
  error?: { code: number; name: string; message: string; temporary: boolean };
}

/** Native WebSocket client. */
export class WsClient {
  readonly ws: WebSocket;
  /** Push frames (those with a `type`). */
  readonly pushes = new Inbox<Frame>();
  /** Replies without a matching pending command (e.g. id-less errors). */
  readonly stray = new Inbox<Reply>();
  /** Resolves with the close code and reason. */
  readonly closed: Promise<{ code: number; reason: string }>;
  readonly #pending = new Map<number, (r: Reply) => void>();
  #nextId = 1;

  private constructor(ws: WebSocket) {
    this.ws = ws;
    this.closed = new Promise((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
    ws.on('error', () => undefined);
    ws.on('message', (data) => {
      const frame = JSON.parse(data.toString()) as Frame;
      if (typeof frame.type === 'string') this.pushes.put(frame);
      else if (typeof frame.id === 'number' && this.#pending.has(frame.id)) {
        const resolve = this.#pending.get(frame.id)!;
        this.#pending.delete(frame.id);
        resolve(frame as Reply);
      } else this.stray.put(frame as Reply);
    });
  }

  /** Open a socket (resolves once open; rejects if the upgrade fails). */
  static open(url: string, options: ClientOptions = {}): Promise<WsClient> {
    const ws = new WebSocket(url, options);
    return new Promise((resolve, reject) => {
      const client = new WsClient(ws);
      ws.once('open', () => resolve(client));
      ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
      ws.once('error', reject);
    });
  }

  /** Open a socket and send `connect`; rejects with the reply's error if any. */
  static async connected(url: string, params: Record<string, unknown> = {}, options: ClientOptions = {}): Promise<WsClient> {
    const c = await WsClient.open(url, options);
    const r = await c.command('connect', params);
    if (r.error) {
      c.terminate();
      throw new Error(`connect failed: ${JSON.stringify(r.error)}`);
    }
    return c;
  }

  /** Send a raw frame. */
  send(data: string | Buffer | Record<string, unknown>): void {
    this.ws.send(typeof data === 'object' && !Buffer.isBuffer(data) ? JSON.stringify(data) : data);
  }

  /** Send a command and wait for its reply. */
  command(cmd: string, params: Record<string, unknown> = {}, timeoutMs = 3_000): Promise<Reply> {
    const id = this.#nextId++;
    return new Promise<Reply>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new Error(`no reply to ${cmd} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#pending.set(id, (r) => {
        clearTimeout(timer);
        resolve(r);
      });
      this.send({ id, cmd, ...params });
    });
  }

  /** Send a command and return its result; throws on an error reply. */
  async ok(cmd: string, params: Record<string, unknown> = {}): Promise<any> {
    const r = await this.command(cmd, params);
    if (r.error) throw new Error(`${cmd} failed: ${JSON.stringify(r.error)}`);
    return r.result;
  }

  /** Next `pub` push, optionally of one channel. */
  nextPub(channel?: string, timeoutMs = 3_000): Promise<Pub> {
    return this.pushes.take((f) => f.type === 'pub' && (channel === undefined || f.channel === channel), timeoutMs) as Promise<Pub>;
  }

  /** Close normally and wait for the close. */
  async close(): Promise<void> {
    if (this.ws.readyState === WebSocket.CLOSED) return;
    this.ws.close();
    await Promise.race([this.closed, new Promise((r) => setTimeout(r, 1_000))]);
    this.ws.terminate();
  }

  /** Drop the socket at once. */
  terminate(): void {
    this.ws.terminate();
  }
}

/** One server-sent event. */
export interface SseEvent {
  id: string | undefined;
  event: string | undefined;
  data: string;
  /** `data` parsed as JSON. */
  json: Frame;
}

/** Raw body reader over fetch: status, headers and a stream of text chunks. */
abstract class StreamReader {
  status = 0;
  headers: Headers | undefined;
  /** Full body when the response was not a stream (an error answer). */
  body = '';
  /** Resolves when the response body ended (or the request was aborted). */
  ended!: Promise<void>;
  readonly #ac = new AbortController();
  #buffer = '';

  /** Start the request; resolves once the response headers arrived. */
  async start(url: string, headers: Record<string, string> = {}): Promise<this> {
    const res = await fetch(url, { headers, signal: this.#ac.signal });
    this.status = res.status;
    this.headers = res.headers;
    this.ended = this.#read(res)
      .catch(() => undefined)
      .finally(() => this.onEnd());
    return this;
  }

  async #read(res: Response): Promise<void> {
    const decoder = new TextDecoder();
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      const text = decoder.decode(chunk, { stream: true });
      this.body += text;
      this.#buffer += text;
      this.#buffer = this.consume(this.#buffer);
    }
  }

  /** Parse complete units from the buffer; return the unparsed rest. */
  protected abstract consume(buffer: string): string;

  /** The body ended or the request was aborted. */
  protected abstract onEnd(): void;

  /** Abort the request. */
  close(): void {
    this.#ac.abort();
  }
}

/** SSE client over fetch with raw event-stream parsing. */
export class SseClient extends StreamReader {
  readonly events = new Inbox<SseEvent>();
  /** Comment lines (keep-alives), without the leading colon. */
  readonly comments: string[] = [];
  /** Last `id:` seen. */
  lastEventId: string | undefined;

  static open(url: string, headers: Record<string, string> = {}): Promise<SseClient> {
    return new SseClient().start(url, headers);
  }

  protected onEnd(): void {
    this.events.fail(new Error('SSE response ended'));
  }

  protected consume(buffer: string): string {
    let i: number;
    while ((i = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, i);
      buffer = buffer.slice(i + 2);
      let id: string | undefined;
      let event: string | undefined;
      const data: string[] = [];
      for (const line of block.split('\n')) {
        if (line.startsWith(':')) this.comments.push(line.slice(1).trim());
        else if (line.startsWith('id:')) id = line.slice(3).trim();
        else if (line.startsWith('event:')) event = line.slice(6).trim();
        else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
      }
      if (id !== undefined) this.lastEventId = id;
      if (data.length) {
        const text = data.join('\n');
        this.events.put({ id, event, data: text, json: JSON.parse(text) as Frame });
      }
    }
    return buffer;
  }

  /** Next event whose JSON has `type`. */
  next(type: string, pred: (f: Frame) => boolean = () => true, timeoutMs = 3_000): Promise<SseEvent> {
    return this.events.take((e) => e.json.type === type && pred(e.json), timeoutMs);
  }
}

/** NDJSON stream reader (`/connection/stream`). */
export class NdjsonClient extends StreamReader {
  readonly frames = new Inbox<Frame>();
  /** Empty lines received (keep-alives). */
  keepAlives = 0;

  static open(url: string, headers: Record<string, string> = {}): Promise<NdjsonClient> {
    return new NdjsonClient().start(url, headers);
  }

  protected onEnd(): void {
    this.frames.fail(new Error('stream response ended'));
  }

  protected consume(buffer: string): string {
    let i: number;
    while ((i = buffer.indexOf('\n')) >= 0) {
      const line = buffer.slice(0, i);
      buffer = buffer.slice(i + 1);
      if (line === '') this.keepAlives++;
      else this.frames.put(JSON.parse(line) as Frame);
    }
    return buffer;
  }
}

/** A long-poll answer. */
export interface PollAnswer {
  position: string;
  recovered: boolean;
  channels: string[];
  publications: Frame[];
}

/** One long-poll request; returns status and parsed JSON body. */
export async function poll(url: string, headers: Record<string, string> = {}, signal?: AbortSignal): Promise<{ status: number; body: any }> {
  const res = await fetch(url, { headers, signal });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}
