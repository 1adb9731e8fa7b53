/**
 * BOSH (XEP-0124) carrying XMPP (XEP-0206) at `xmpp.boshPath` (default `/http-bind`) on
 * Herald's HTTP port: each HTTP POST carries a `<body/>` wrapper with the client's elements and
 * is answered with one holding the server's. A BOSH session is one more wire under the same
 * `XmppSession` as the WebSocket and TCP transports; this module only does the HTTP side:
 *
 * - sessions by `sid`, requests strictly in `rid` order (a request whose rid is ahead waits for
 *   the missing ones, within the `requests` window), `hold` (at most `BOSH_MAX_HOLD`) requests
 *   held open for at most `wait` seconds (the client's, capped by `xmpp.boshMaxWaitMs`), the
 *   session dropped after `xmpp.boshInactivityMs` without a request;
 * - a repeated rid within the window is answered with the cached response (XEP-0124, "Broken Connections");
 * - stream restart (`xmpp:restart="true"`), `type="terminate"` from either side, stream errors
 *   as `condition="remote-stream-error"` with the `<stream:error/>` inside (XEP-0206);
 * - every failure is a `<body type="terminate" condition=…/>` with HTTP 200 (XEP-0124 §17.2):
 *   `bad-request`, `host-unknown`, `item-not-found`, `policy-violation`, `system-shutdown`.
 *
 * Bounds: a body is at most `limits.maxMessageBytes`; its elements are parsed by the guarded
 * parser with the stream's limits; sessions are admitted by the core like every other client
 * (connection caps, per-IP caps and rates, Origin); at most `requests` requests per session are
 * open at once; output waiting for a request counts against `limits.maxOutboundBytes`; input
 * waiting to be handled against `limits.commandsPerSecond` elements.
 */
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { AdmissionError, type AdmissionTicket } from '../../core/client-sessions.js';
import type { HeraldCore } from '../../core/core.js';
import { HeraldError } from '../../core/errors.js';
import { answerPreflight, applyCors, clientCors, type CorsVerdict } from '../../transports/cors.js';
import { admissionRequest, readBody } from '../../transports/http.js';
import { type XmlLimits, XmlParser } from './parser.js';
import type { XmppSession, XmppWire } from './session.js';
import { el, NS, type XmlElement } from './xml.js';

/** The BOSH namespace (XEP-0124). */
export const NS_HTTPBIND = 'http://jabber.org/protocol/httpbind';
/** The XMPP-over-BOSH namespace (XEP-0206). */
export const NS_XBOSH = 'urn:xmpp:xbosh';
/** The XEP-0124 version implemented. */
const BOSH_VERSION = '1.11';
/** Most requests the server holds open per session (`hold`). */
export const BOSH_MAX_HOLD = 1;
/** Shortest interval between two empty requests of a polling session (hold 0), s (`polling`). */
export const BOSH_POLLING_S = 2;
/** HTTP methods of the endpoint. */
const METHODS = 'POST, OPTIONS';

/** BOSH terminal binding conditions Herald sends (XEP-0124 §17.2). */
export type BoshCondition =
  'bad-request' | 'host-unknown' | 'item-not-found' | 'policy-violation' | 'remote-stream-error' | 'system-shutdown' | 'other-request';

/** A request body, parsed and checked: the `<body/>` attributes and the elements inside. */
export interface BoshBody {
  readonly attrs: Readonly<Record<string, string>>;
  readonly elements: XmlElement[];
}

/** A body that cannot be used: the condition, and the attributes when the `<body>` tag itself was read. */
export interface BoshBodyError {
  readonly condition: 'bad-request' | 'policy-violation';
  readonly message: string;
  readonly attrs?: Readonly<Record<string, string>>;
}

/**
 * Parse a request body: exactly one `<body/>` in the BOSH namespace, its children parsed with
 * `limits` (each child is a stanza). Never throws. `policy-violation` for a child past the size,
 * depth or attribute bounds; `bad-request` for everything else that is not such a body.
 */
export function parseBoshBody(text: string, limits: XmlLimits): { body: BoshBody } | { error: BoshBodyError } {
  const parser = new XmlParser(limits, 'stream');
  const first = parser.write(text);
  const last = first.error ? first : parser.end();
  const events = [...first.events, ...(last === first ? [] : last.events)];
  const open = events[0]?.type === 'open' ? events[0].element : undefined;
  const attrs = open?.attrs;
  const error = first.error ?? last.error;
  if (error) return { error: { condition: error.condition === 'policy-violation' ? 'policy-violation' : 'bad-request', message: error.message, attrs } };
  if (!open || open.local !== 'body' || open.ns !== NS_HTTPBIND)
    return { error: { condition: 'bad-request', message: 'expected a <body/> in the BOSH namespace' } };
  if (events.at(-1)?.type !== 'close') return { error: { condition: 'bad-request', message: 'unterminated <body/>', attrs } };
  const elements: XmlElement[] = [];
  for (const ev of events) if (ev.type === 'element') elements.push(ev.element);
  return { body: { attrs: open.attrs, elements } };
}

/** A non-negative integer attribute (at most 2^53 - 1), or undefined. */
function intAttr(v: string | undefined): number | undefined {
  if (v === undefined || !/^\d{1,16}$/.test(v)) return undefined;
  const n = Number(v);
  return Number.isSafeInteger(n) ? n : undefined;
}

/** A serialized `<body/>`. */
function bodyXml(attrs: Readonly<Record<string, string | number | undefined>>, content = ''): string {
  return el('body', { xmlns: NS_HTTPBIND, ...attrs }, [content]);
}

/** A terminate body with a condition. */
function terminateXml(condition: BoshCondition | undefined, content = ''): string {
  return bodyXml({ type: 'terminate', condition }, content);
}

/** What the BOSH endpoint needs from its front. */
export interface BoshOptions {
  readonly core: HeraldCore;
  /** The XMPP domain (`to` of a session creation request must name it). */
  readonly domain: string;
  readonly limits: XmlLimits;
  /** Longest `wait`, ms. */
  readonly maxWaitMs: number;
  /** A session without a request this long ends, ms. */
  readonly inactivityMs: number;
  /** Start the XMPP session of a new BOSH session. */
  readonly start: (wire: XmppWire, ticket: AdmissionTicket) => XmppSession;
}

/** A held request. */
interface Held {
  readonly rid: number;
  res: ServerResponse;
  cors: CorsVerdict;
  timer: NodeJS.Timeout | undefined;
  /** The session creation request: its answer carries the session attributes. */
  readonly creation?: Readonly<Record<string, string | number | undefined>>;
}

/** A request that arrived ahead of an earlier rid. */
interface Early {
  readonly body: BoshBody;
  res: ServerResponse;
  cors: CorsVerdict;
}

/** One BOSH session: the wire of an XmppSession. */
class BoshSession implements XmppWire {
  readonly kind = 'bosh';
  readonly tlsOffer = undefined;
  readonly secure: boolean;
  readonly sid = randomBytes(16).toString('base64url');
  readonly #endpoint: BoshEndpoint;
  readonly waitMs: number;
  readonly hold: number;
  readonly requests: number;
  session!: XmppSession;
  /** The last rid handled in order. */
  #lastRid: number;
  readonly #held: Held[] = [];
  readonly #early = new Map<number, Early>();
  /** Answers by rid, for replays (the last `requests` of them). */
  readonly #cache = new Map<number, string>();
  #pending: string[] = [];
  #pendingBytes = 0;
  #flushScheduled = false;
  /** The server ended the session: the final body still to deliver. */
  #ended: { condition: BoshCondition | undefined } | undefined;
  #done = false;
  #inactivity: NodeJS.Timeout | undefined;
  #lastPoll = 0;
  #released = false;

  constructor(endpoint: BoshEndpoint, rid: number, waitMs: number, hold: number, secure: boolean) {
    this.#endpoint = endpoint;
    this.#lastRid = rid - 1;
    this.waitMs = waitMs;
    this.hold = hold;
    this.requests = hold + 1;
    this.secure = secure;
  }

  /** Requests held open now. */
  get heldCount(): number {
    return this.#held.length;
  }

  // ---- XmppWire ------------------------------------------------------------------------------

  write(xml: string): number {
    if (this.#done || this.#ended) return -1;
    this.#pending.push(xml);
    this.#pendingBytes += Buffer.byteLength(xml);
    this.#scheduleFlush();
    return this.#pendingBytes;
  }

  end(streamError?: boolean): void {
    this.#serverEnd(streamError ? 'remote-stream-error' : undefined);
  }

  destroy(): void {
    this.#serverEnd('other-request');
  }

  pause(): void {
    // Input arrives one request at a time; the bounds are per request.
  }

  resume(): void {
    // See pause.
  }

  startTls(): boolean {
    return false;
  }

  // ---- requests ------------------------------------------------------------------------------

  /** A request of this session (its body parsed, sid matched). */
  request(body: BoshBody, res: ServerResponse, cors: CorsVerdict): void {
    const rid = intAttr(body.attrs.rid);
    if (rid === undefined) return this.fail('bad-request', res, cors);
    if (rid <= this.#lastRid) return this.#repeat(rid, res, cors);
    if (rid > this.#lastRid + this.requests) return this.fail('item-not-found', res, cors);
    if (rid !== this.#lastRid + 1) {
      const early = this.#early.get(rid);
      if (early) {
        this.#endpoint.answer(early.res, early.cors, bodyXml({}));
        early.res = res;
        early.cors = cors;
        return;
      }
      if (this.#held.length + this.#early.size >= this.requests) return this.fail('policy-violation', res, cors);
      this.#early.set(rid, { body, res, cors });
      this.#stopInactivity();
      return;
    }
    this.#accept(rid, body, res, cors);
    for (let next = this.#early.get(this.#lastRid + 1); next && !this.#done; next = this.#early.get(this.#lastRid + 1)) {
      this.#early.delete(this.#lastRid + 1);
      this.#accept(this.#lastRid + 1, next.body, next.res, next.cors);
    }
  }

  /** The session creation request (rid already checked): the stream opens. */
  create(body: BoshBody, res: ServerResponse, cors: CorsVerdict, creation: Record<string, string | number | undefined>): void {
    this.#lastRid++;
    this.session.boshOpen(body.attrs.to, body.attrs['xmpp:version']);
    this.#hold({ rid: this.#lastRid, res, cors, timer: undefined, creation });
  }

  /** A rid seen before: the cached answer, or the held request's new connection. */
  #repeat(rid: number, res: ServerResponse, cors: CorsVerdict): void {
    const cached = this.#cache.get(rid);
    if (cached !== undefined) return this.#endpoint.answer(res, cors, cached);
    const held = this.#held.find((h) => h.rid === rid);
    if (!held) return this.fail('item-not-found', res, cors);
    // The client gave up on the first connection of this request: the answer goes to the new one.
    this.#endpoint.answer(held.res, held.cors, bodyXml({}));
    held.res = res;
    held.cors = cors;
    this.#watch(held);
  }

  #accept(rid: number, body: BoshBody, res: ServerResponse, cors: CorsVerdict): void {
    this.#lastRid = rid;
    const { attrs, elements } = body;
    if (this.#ended) {
      this.#hold({ rid, res, cors, timer: undefined });
      return;
    }
    if (this.session.backlog + elements.length > this.#endpoint.maxBacklog) return this.fail('policy-violation', res, cors);
    const restart = attrs['xmpp:restart'] === 'true' || attrs['xmpp:restart'] === '1';
    if (this.hold === 0 && elements.length === 0 && !restart && attrs.type === undefined) {
      const now = Date.now();
      if (now - this.#lastPoll < BOSH_POLLING_S * 1000) return this.fail('policy-violation', res, cors);
      this.#lastPoll = now;
    }
    if (elements.length > 0) this.session.boshElements(elements);
    if (attrs.type === 'terminate') this.session.boshClose();
    else if (restart) this.session.boshOpen(attrs.to, '1.0');
    this.#hold({ rid, res, cors, timer: undefined });
  }

  #hold(held: Held): void {
    this.#stopInactivity();
    this.#held.push(held);
    this.#watch(held);
    // More than `hold` waiting: the oldest goes back now, with whatever is pending.
    while (this.#held.length > this.hold && !this.#done) this.#respond(this.#held[0]!);
    this.#scheduleFlush();
  }

  /** Answer a held request when its wait runs out, forget it when its connection closes unanswered. */
  #watch(held: Held): void {
    clearTimeout(held.timer);
    held.timer = setTimeout(() => this.#held.includes(held) && this.#respond(held), this.waitMs);
    const res = held.res;
    res.once('close', () => {
      if (res.writableEnded || held.res !== res || !this.#held.includes(held)) return;
      // Unanswered: what was pending stays for the next request.
      clearTimeout(held.timer);
      this.#held.splice(this.#held.indexOf(held), 1);
      if (this.#held.length === 0) this.#startInactivity();
    });
  }

  #scheduleFlush(): void {
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    setImmediate(() => {
      this.#flushScheduled = false;
      if ((this.#pending.length > 0 || this.#ended) && this.#held.length > 0) this.#respond(this.#held[0]!);
    });
  }

  /** Answer a held request with everything pending (and the end, when the server ended the session). */
  #respond(held: Held): void {
    clearTimeout(held.timer);
    this.#held.splice(this.#held.indexOf(held), 1);
    const content = this.#pending.join('');
    this.#pending = [];
    this.#pendingBytes = 0;
    const ended = this.#ended;
    let text: string;
    if (ended) text = terminateXml(ended.condition, content);
    else if (held.creation) text = bodyXml(held.creation, content);
    else text = bodyXml({}, content);
    this.#cache.set(held.rid, text);
    for (const rid of this.#cache.keys()) if (rid <= this.#lastRid - this.requests) this.#cache.delete(rid);
    this.#endpoint.answer(held.res, held.cors, text);
    if (ended) {
      for (const other of this.#held.splice(0)) {
        clearTimeout(other.timer);
        this.#endpoint.answer(other.res, other.cors, terminateXml(ended.condition));
      }
      this.#finish();
    } else if (this.#held.length === 0 && this.#early.size === 0) {
      this.#startInactivity();
    }
  }

  /** The XMPP session ended (stream close or error, slow consumer, takeover): the final body goes out with the next answer. */
  #serverEnd(condition: BoshCondition | undefined): void {
    if (this.#ended || this.#done) return;
    this.#ended = { condition };
    this.#release();
    if (this.#held.length > 0) this.#scheduleFlush();
    else this.#startInactivity();
  }

  /** A binding error: the request gets a terminate body, the session ends. */
  fail(condition: BoshCondition, res: ServerResponse, cors: CorsVerdict): void {
    this.#endpoint.answer(res, cors, terminateXml(condition));
    this.close(condition);
  }

  /** End the session now: held and early requests get a terminate body. */
  close(condition: BoshCondition | undefined): void {
    if (this.#done) return;
    for (const h of this.#held.splice(0)) {
      clearTimeout(h.timer);
      this.#endpoint.answer(h.res, h.cors, terminateXml(condition));
    }
    for (const e of this.#early.values()) this.#endpoint.answer(e.res, e.cors, terminateXml(condition));
    this.#early.clear();
    this.#finish();
  }

  #finish(): void {
    if (this.#done) return;
    this.#done = true;
    this.#stopInactivity();
    this.#pending = [];
    this.#cache.clear();
    this.#endpoint.forget(this);
    this.#release();
  }

  /** Tell the XMPP session its wire is gone (once; a resumable session then waits for its client). */
  #release(): void {
    if (this.#released) return;
    this.#released = true;
    this.session.wireClosed(this, 1000);
  }

  #startInactivity(): void {
    this.#stopInactivity();
    this.#inactivity = setTimeout(() => this.close(undefined), this.#endpoint.inactivityMs);
  }

  #stopInactivity(): void {
    clearTimeout(this.#inactivity);
    this.#inactivity = undefined;
  }
}

/** The `/http-bind` endpoint: its sessions by sid. */
export class BoshEndpoint {
  readonly #o: BoshOptions;
  readonly #sessions = new Map<string, BoshSession>();
  /** Most input elements waiting in one session before `policy-violation`. */
  readonly maxBacklog: number;
  readonly inactivityMs: number;

  constructor(options: BoshOptions) {
    this.#o = options;
    this.maxBacklog = options.core.config.limits.commandsPerSecond;
    this.inactivityMs = options.inactivityMs;
  }

  /** Live BOSH sessions. */
  get size(): number {
    return this.#sessions.size;
  }

  /** Requests held open, over all sessions. */
  get held(): number {
    let n = 0;
    for (const s of this.#sessions.values()) n += s.heldCount;
    return n;
  }

  /** Handle a request to the endpoint. */
  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const cors = clientCors(req, this.#o.core.net);
    if (!cors.allowed) return this.answer(res, cors, terminateXml('policy-violation'), 403);
    if (req.method === 'OPTIONS') return answerPreflight(res, cors, METHODS);
    if (req.method !== 'POST') return this.answer(res, cors, terminateXml('bad-request'), 405, { allow: METHODS });
    let text: string;
    try {
      text = (await readBody(req, this.#o.core.config.limits.maxMessageBytes)).toString('utf8');
    } catch (err) {
      if (err instanceof HeraldError && err.code === 'HERALD_ERR_PAYLOAD_TOO_LARGE') return this.answer(res, cors, terminateXml('policy-violation'));
      throw err;
    }
    const parsed = parseBoshBody(text, this.#o.limits);
    if ('error' in parsed) {
      const { condition, attrs } = parsed.error;
      const session = attrs?.sid === undefined ? undefined : this.#sessions.get(attrs.sid);
      if (session) return session.fail(condition, res, cors);
      return this.answer(res, cors, terminateXml(condition));
    }
    const { body } = parsed;
    const sid = body.attrs.sid;
    if (sid === undefined) return this.#create(req, body, res, cors);
    const session = this.#sessions.get(sid);
    if (!session) return this.answer(res, cors, terminateXml('item-not-found'));
    session.request(body, res, cors);
  }

  /** A session creation request (XEP-0124 and XEP-0206: the session attributes and the stream start). */
  #create(req: IncomingMessage, body: BoshBody, res: ServerResponse, cors: CorsVerdict): void {
    const { attrs } = body;
    const rid = intAttr(attrs.rid);
    const wait = attrs.wait === undefined ? Math.floor(this.#o.maxWaitMs / 1000) : intAttr(attrs.wait);
    const hold = attrs.hold === undefined ? BOSH_MAX_HOLD : intAttr(attrs.hold);
    if (rid === undefined || wait === undefined || hold === undefined || attrs.to === undefined) return this.answer(res, cors, terminateXml('bad-request'));
    if (attrs.to.toLowerCase() !== this.#o.domain) return this.answer(res, cors, terminateXml('host-unknown'));
    let ticket: AdmissionTicket;
    try {
      ticket = this.#o.core.clients.admit(admissionRequest(req, this.#o.core.net, 'xmpp', 'xmpp-bosh'));
    } catch (err) {
      if (err instanceof AdmissionError) return this.answer(res, cors, terminateXml('policy-violation'));
      throw err;
    }
    const waitMs = Math.min(wait * 1000, this.#o.maxWaitMs);
    const secure = 'encrypted' in req.socket && req.socket.encrypted === true;
    const session = new BoshSession(this, rid, waitMs, Math.min(hold, BOSH_MAX_HOLD), secure);
    session.session = this.#o.start(session, ticket);
    this.#sessions.set(session.sid, session);
    session.create(body, res, cors, {
      sid: session.sid,
      wait: waitMs / 1000,
      hold: session.hold,
      requests: session.requests,
      inactivity: Math.ceil(this.inactivityMs / 1000),
      polling: BOSH_POLLING_S,
      ver: BOSH_VERSION,
      from: this.#o.domain,
      ack: attrs.ack === undefined ? undefined : rid,
      'xmpp:version': '1.0',
      'xmlns:xmpp': NS_XBOSH,
      'xmlns:stream': NS.STREAM,
    });
  }

  /** @internal Send a body (HTTP 200 unless told), with the CORS headers; a response already ended or closed is left alone. */
  answer(res: ServerResponse, cors: CorsVerdict, text: string, status = 200, headers: Record<string, string> = {}): void {
    if (res.writableEnded || res.destroyed) return;
    applyCors(res, cors);
    res.writeHead(status, { 'content-type': 'text/xml; charset=utf-8', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store', ...headers });
    res.end(text);
  }

  /** @internal A session ended. */
  forget(session: BoshSession): void {
    this.#sessions.delete(session.sid);
  }

  /** End every session (the XMPP sessions were told by the front). */
  close(): void {
    for (const s of [...this.#sessions.values()]) s.close('system-shutdown');
  }
}
