/**
 * The input side of one XMPP stream: raw chunks from the connection become input events, handled
 * strictly in order.
 *
 * Guarantees:
 * - raw chunks wait in a queue bounded by twice `maxStanzaSize` characters: past it the
 *   connection is paused, and resumed once the queue is back under `maxStanzaSize`;
 * - an event whose handler returns a promise holds every later event until it settles, so a
 *   stream restart after SASL starts a fresh parser exactly where the new stream begins;
 * - a handler that throws or rejects is reported to `failed` with its event; the queue goes on;
 * - what a chunk carries after a SASL element (`<auth/>`, `<response/>`: a stream restart may
 *   follow them) waits until that element was handled: after a restart it is parsed as the new
 *   stream (a client may pipeline the new stream header right after `<auth/>`), else as the
 *   old one.
 */
import { StringDecoder } from 'node:string_decoder';
import { type ParseError, parseDocument, type XmlLimits, XmlParser } from './parser.js';
import { NS, type XmlElement } from './xml.js';

/** The legacy WebSocket framing (tsung, pre-RFC 7395 clients) starts with a stream header. */
const STREAM_HEADER_RE = /^\s*(?:<\?xml[^>]{0,200}\?>\s*)?<stream:stream[\s>]/;

/** One thing the session handles: a stream header, an element, the stream's end, or a parse error. */
export type InputEvent =
  { type: 'open'; element: XmlElement } | { type: 'element'; element: XmlElement } | { type: 'close' } | { type: 'error'; error: ParseError };

/**
 * `framed` = RFC 7395 (one element per WebSocket message); `stream` = one XML stream (TCP, and
 * the older WebSocket framing); `bosh` = elements handed over by the BOSH transport (no stream
 * header of its own).
 */
export type Framing = 'framed' | 'stream' | 'bosh';

/** What the input queue calls back. */
export interface InputHooks {
  /** Whether events may be handled now (the session is open and has a connection). */
  canRun(): boolean;
  /** Handle one event; a promise holds the queue until it settles. */
  handle(ev: InputEvent): Promise<void> | void;
  /** The handler of `ev` threw or rejected. */
  failed(err: unknown, ev: InputEvent): void;
  /** Stop and restart reading the connection (back-pressure). */
  pause(): void;
  resume(): void;
}

/** The ordered input queue and parser of one session. */
export class XmppInput {
  readonly #limits: XmlLimits;
  #hooks: InputHooks;
  /** Undefined until the first WebSocket message tells which framing the client speaks. */
  #framing: Framing | undefined;
  #parser: XmlParser | undefined;
  #decoder = new StringDecoder('utf8');
  #chunks: Array<Buffer | string> = [];
  #queuedBytes = 0;
  #paused = false;
  #events: InputEvent[] = [];
  #busy = false;
  /** What a chunk went on with after a SASL element, until that element is handled (ParseResult.after). */
  #held: { readonly rest: string; readonly events: InputEvent[]; readonly error?: ParseError; restarted: boolean } | undefined;

  constructor(limits: XmlLimits, framing: Framing | undefined, hooks: InputHooks) {
    this.#limits = limits;
    this.#framing = framing;
    this.#hooks = hooks;
  }

  /** The client's framing, once known. */
  get framing(): Framing | undefined {
    return this.#framing;
  }

  /** Input events waiting to be handled (BOSH bounds them). */
  get backlog(): number {
    return this.#events.length;
  }

  /** Bytes from the connection (a TCP chunk or a whole WebSocket message). */
  chunk(data: Buffer | string): void {
    this.#chunks.push(data);
    this.#queuedBytes += data.length;
    if (!this.#paused && this.#queuedBytes > this.#limits.maxStanzaSize * 2) {
      this.#paused = true;
      this.#hooks.pause();
    }
    this.pump();
  }

  /** Events that did not come through the parser (BOSH), in order. */
  events(...evs: InputEvent[]): void {
    for (const ev of evs) this.#events.push(ev);
    this.pump();
  }

  /** Handle what waits, in order, until an asynchronous handler holds the queue. */
  pump(): void {
    while (!this.#busy && this.#hooks.canRun()) {
      const ev = this.#events.shift();
      if (ev) {
        this.#run(ev);
        continue;
      }
      if (this.#held) {
        this.#release();
        continue;
      }
      const chunk = this.#chunks.shift();
      if (chunk === undefined) break;
      this.#queuedBytes -= chunk.length;
      this.#parse(chunk);
    }
    if (this.#paused && this.#queuedBytes <= this.#limits.maxStanzaSize) {
      this.#paused = false;
      this.#hooks.resume();
    }
  }

  /** A new stream on the same connection (after SASL success or STARTTLS): a fresh parser. */
  restart(): void {
    this.#parser = undefined;
    if (this.#held) this.#held.restarted = true;
  }

  /** Drop everything waiting (STARTTLS: what was pipelined in the clear, and the text decoder's state; a detached or ended session). */
  clear(): void {
    this.#chunks = [];
    this.#events = [];
    this.#held = undefined;
    this.#decoder = new StringDecoder('utf8');
    this.#queuedBytes = 0;
    this.#paused = false;
  }

  /** The connection dropped: drop what waits and release the hold of a pending handler. */
  detach(): void {
    this.#chunks = [];
    this.#events = [];
    this.#held = undefined;
    this.#busy = false;
  }

  /**
   * A resumption (XEP-0198): a new queue with this one's parser and waiting input, calling
   * `hooks`; this one is left empty (and not paused), so a pump running on it stops.
   */
  transfer(hooks: InputHooks): XmppInput {
    const next = new XmppInput(this.#limits, this.#framing, hooks);
    next.#parser = this.#parser;
    next.#decoder = this.#decoder;
    next.#chunks = this.#chunks;
    next.#queuedBytes = this.#queuedBytes;
    next.#events = this.#events;
    next.#held = this.#held;
    next.#paused = this.#paused;
    this.#chunks = [];
    this.#events = [];
    this.#held = undefined;
    this.#paused = false;
    return next;
  }

  #parse(chunk: Buffer | string): void {
    if (this.#framing === undefined) {
      const text = typeof chunk === 'string' ? chunk : chunk.toString('utf8');
      this.#framing = STREAM_HEADER_RE.test(text) ? 'stream' : 'framed';
    }
    if (this.#framing === 'framed') {
      const text = typeof chunk === 'string' ? chunk : chunk.toString('utf8');
      // Whitespace alone is a keep-alive.
      if (text.trim() === '') return;
      const res = parseDocument(text, this.#limits);
      if (res.error) this.#events.push({ type: 'error', error: res.error });
      else this.#events.push({ type: 'element', element: res.element! });
      return;
    }
    const parser = (this.#parser ??= new XmlParser(this.#limits, 'stream', isSasl));
    const res = parser.write(typeof chunk === 'string' ? chunk : this.#decoder.write(chunk));
    for (const ev of res.events) this.#events.push(ev);
    if (res.error) this.#events.push({ type: 'error', error: res.error });
    if (res.after) this.#held = { ...res.after, restarted: false };
  }

  /** The SASL element before the held input was handled: parse it as the new stream, or take the old parser's reading. */
  #release(): void {
    const held = this.#held!;
    this.#held = undefined;
    if (held.restarted) {
      if (held.rest !== '') this.#parse(held.rest);
      return;
    }
    for (const ev of held.events) this.#events.push(ev);
    if (held.error) this.#events.push({ type: 'error', error: held.error });
  }

  /** Handle one input event; an asynchronous one holds the rest until it settles. */
  #run(ev: InputEvent): void {
    let pending: Promise<void> | void;
    try {
      pending = this.#hooks.handle(ev);
    } catch (err) {
      this.#hooks.failed(err, ev);
      return;
    }
    if (!pending) return;
    this.#busy = true;
    pending.then(
      () => {
        this.#busy = false;
        this.pump();
      },
      (err: unknown) => {
        this.#busy = false;
        this.#hooks.failed(err, ev);
        this.pump();
      },
    );
  }
}

/** Elements after which a stream restart may follow (SASL success). */
function isSasl(e: XmlElement): boolean {
  return e.ns === NS.SASL;
}
