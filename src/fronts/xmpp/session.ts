/**
 * One XMPP client stream (RFC 6120) over a WebSocket (RFC 7395 framing, or the older
 * `<stream:stream>` framing) or a TCP socket: stream negotiation, SASL PLAIN (and legacy
 * `jabber:iq:auth`), resource binding, the session IQ, an answer to every IQ, stream errors,
 * and the IM stanzas handed to `XmppIm`.
 *
 * Input is handled strictly in order: raw chunks wait in a bounded queue (the socket is paused
 * past it) while an asynchronous stanza (authentication, a send) is handled, so a stream
 * restart after SASL starts a fresh parser exactly where the new stream begins.
 */
import { StringDecoder } from 'node:string_decoder';
import { randomBytes } from 'node:crypto';
import type { Identity } from '../../core/auth.js';
import type { AdmissionTicket } from '../../core/client-sessions.js';
import type { HeraldCore } from '../../core/core.js';
import { HeraldError, toHeraldError } from '../../core/errors.js';
import type { Connection } from '../../core/hub.js';
import type { ImService } from '../../core/im/service.js';
import { DisconnectCode } from '../../protocol/codes.js';
import { StanzaError, stanzaConditionOf, stanzaErrorXml, StreamError, type StreamCondition, streamErrorXml } from './errors.js';
import { XmppIm } from './im.js';
import { decodePlain } from './sasl.js';
import { HandledCountTooHigh, NS_SM, parseH, StreamManagement } from './stream-management.js';
import { answerIq } from './iq.js';
import { bareJid, fullJid } from './jid.js';
import { type ParseError, parseDocument, type XmlLimits, XmlParser } from './parser.js';
import { el, esc, NS, XmlElement } from './xml.js';

/** Failed SASL attempts allowed on one stream (RFC 6120 §6.4.5: at least 2, at most 5). */
const MAX_AUTH_FAILURES = 3;
/** Longest resource kept as the client asked, characters. */
const MAX_RESOURCE_LENGTH = 256;
/** WebSocket close code / disconnect code of a session that ended normally. */
const NORMAL_CLOSURE = 1000;
/** Resources with control characters or spaces at the ends are replaced by a generated one. */
const RESOURCE_RE = /^[^\s\p{Cc}](?:[^\p{Cc}]*[^\s\p{Cc}])?$/u;
/** The legacy WebSocket framing (tsung, pre-RFC 7395 clients) starts with a stream header. */
const STREAM_HEADER_RE = /^\s*(?:<\?xml[^>]{0,200}\?>\s*)?<stream:stream[\s>]/;

/**
 * What a session writes to: a WebSocket, a TCP socket, or a BOSH session (XEP-0124/0206, whose
 * HTTP requests carry the stream's elements in `<body/>` wrappers).
 */
export interface XmppWire {
  /** `websocket`, `tcp` or `bosh`. */
  readonly kind: 'websocket' | 'tcp' | 'bosh';
  /** Write serialized XML (one WebSocket message). Returns the bytes waiting to be sent. */
  write(xml: string): number;
  /** Close after what was written; `streamError`: what was written ends with a stream error. */
  end(streamError?: boolean): void;
  /** Cut the connection now. */
  destroy(): void;
  /** Stop reading (back-pressure) and start again. */
  pause(): void;
  resume(): void;
  /** The connection is encrypted (wss://, or TCP after STARTTLS). */
  readonly secure: boolean;
  /** Whether STARTTLS is offered now (`required`: nothing else is offered before it), or not at all. */
  readonly tlsOffer: 'optional' | 'required' | undefined;
  /** Write `proceed` in the clear, then switch to TLS; false when STARTTLS is not offered. */
  startTls(proceed: string): boolean;
}

/** What every session of a front shares. */
export interface XmppEnv {
  readonly core: HeraldCore;
  readonly im: ImService;
  readonly domain: string;
  readonly limits: XmlLimits;
  /** How long a resumable session (XEP-0198) waits for its client after the connection dropped, ms. */
  readonly resumeTimeoutMs: number;
  /** Resumable sessions of this node by resumption id. */
  readonly resumable: Map<string, XmppSession>;
  /** Resumption ids of sessions that ended, with the count of stanzas they handled (for `<failed h/>`). */
  readonly ended: Map<string, { readonly user: string; readonly h: number }>;
  /** The session ended (once). */
  readonly onClose: (session: XmppSession) => void;
}

/** Most ended resumption ids remembered per node. */
const MAX_ENDED_IDS = 10_000;

type Phase = 'auth' | 'bind' | 'ready';
type InputEvent = { type: 'open'; element: XmlElement } | { type: 'element'; element: XmlElement } | { type: 'close' } | { type: 'error'; error: ParseError };

/** An XMPP client session. */
export class XmppSession implements Connection {
  readonly id: string;
  readonly transport: string;
  identity: Identity | undefined;
  #wire: XmppWire;
  readonly #env: XmppEnv;
  readonly #core: HeraldCore;
  /** The admission this session holds until it ends (core/client-sessions.ts). */
  readonly #ticket: AdmissionTicket;
  /**
   * `framed` = RFC 7395 (one element per message); `stream` = one XML stream; `bosh` = elements
   * handed over by the BOSH transport (no stream header of its own); undefined until the first
   * WebSocket message.
   */
  #framing: 'framed' | 'stream' | 'bosh' | undefined;
  #parser: XmlParser | undefined;
  #decoder = new StringDecoder('utf8');
  #phase: Phase = 'auth';
  /** A stream header was received on the current stream (reset by a restart). */
  #opened = false;
  /** Our stream header was sent (an error before it is sent after one). */
  #headerSent = false;
  /** The stream is ending with a stream error. */
  #errored = false;
  /** The client's stream had no version: a pre-XMPP-1.0 client (no features, legacy auth only). */
  #legacy = false;
  #closed = false;
  #cleaned = false;
  #chunks: Array<Buffer | string> = [];
  #queuedBytes = 0;
  #paused = false;
  #events: InputEvent[] = [];
  #busy = false;
  #authFailures = 0;
  #resource = '';
  #jid: string | undefined;
  #im: XmppIm | undefined;
  readonly #openedAt = Date.now();
  #read = true;
  #lastIn = Date.now();
  #pinged = false;
  #windowStart = 0;
  #windowCount = 0;
  /** XEP-0198 state, from `<enable/>` on. */
  #sm: StreamManagement | undefined;
  /** When the connection of a resumable session dropped (0 = connected). */
  #detachedAt = 0;
  /** The session this one's connection was handed to by a resumption. */
  #adoptedBy: XmppSession | undefined;
  /** Highest inbox seq to acknowledge to the IM, and whether an ack is on its way. */
  #ackDue = 0;
  #ackScheduled = false;
  #ackRequested = false;

  constructor(id: string, wire: XmppWire, env: XmppEnv, ticket: AdmissionTicket) {
    this.id = id;
    this.#wire = wire;
    this.#env = env;
    this.#core = env.core;
    this.#ticket = ticket;
    this.transport = `xmpp-${wire.kind}`;
    if (wire.kind === 'tcp') this.#framing = 'stream';
    else if (wire.kind === 'bosh') this.#framing = 'bosh';
    this.#core.clients.opened(this, ticket);
  }

  get user(): string | undefined {
    return this.identity?.user;
  }

  /** The bound full JID. */
  get jid(): string | undefined {
    return this.#jid;
  }

  get open(): boolean {
    return !this.#closed;
  }

  // ---- input ---------------------------------------------------------------------------------

  /** Bytes from the socket (a TCP chunk or a whole WebSocket message). */
  input(data: Buffer | string): void {
    if (this.#adoptedBy) return this.#adoptedBy.input(data);
    if (this.#closed) return;
    this.#read = true;
    this.#chunks.push(data);
    this.#queuedBytes += data.length;
    if (!this.#paused && this.#queuedBytes > this.#env.limits.maxStanzaSize * 2) {
      this.#paused = true;
      this.#wire.pause();
    }
    this.#pump();
  }

  /**
   * BOSH: the stream starts, or restarts (`xmpp:restart`), with these attributes of the
   * request's `<body/>` (`to`, and `version` from `xmpp:version`).
   */
  boshOpen(to: string | undefined, version: string | undefined): void {
    this.#boshEvent({
      type: 'open',
      element: new XmlElement('open', 'open', NS.FRAMING, { ...(to === undefined ? {} : { to }), ...(version === undefined ? {} : { version }) }),
    });
  }

  /** BOSH: the elements of one request's `<body/>`, in order. */
  boshElements(elements: readonly XmlElement[]): void {
    if (this.#adoptedBy) return this.#adoptedBy.boshElements(elements);
    for (const element of elements) this.#events.push({ type: 'element', element });
    this.#pump();
  }

  /** BOSH: the client terminated the session (after the elements it carried). */
  boshClose(): void {
    this.#boshEvent({ type: 'close' });
  }

  /** Input events waiting to be handled (BOSH bounds them). */
  get backlog(): number {
    return this.#events.length;
  }

  #boshEvent(ev: InputEvent): void {
    if (this.#adoptedBy) return this.#adoptedBy.#boshEvent(ev);
    this.#events.push(ev);
    this.#pump();
  }

  #pump(): void {
    while (!this.#busy && !this.#closed && this.#detachedAt === 0) {
      const ev = this.#events.shift();
      if (ev) {
        this.#run(ev);
        continue;
      }
      const chunk = this.#chunks.shift();
      if (chunk === undefined) break;
      this.#queuedBytes -= chunk.length;
      this.#parse(chunk);
    }
    if (this.#paused && this.#queuedBytes <= this.#env.limits.maxStanzaSize) {
      this.#paused = false;
      this.#wire.resume();
    }
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
      const res = parseDocument(text, this.#env.limits);
      if (res.error) this.#events.push({ type: 'error', error: res.error });
      else this.#events.push({ type: 'element', element: res.element! });
      return;
    }
    const parser = (this.#parser ??= new XmlParser(this.#env.limits, 'stream'));
    const res = parser.write(typeof chunk === 'string' ? chunk : this.#decoder.write(chunk));
    for (const ev of res.events) this.#events.push(ev);
    if (res.error) this.#events.push({ type: 'error', error: res.error });
  }

  /** Handle one input event; an asynchronous one holds the rest until it settles. */
  #run(ev: InputEvent): void {
    let pending: Promise<void> | void;
    try {
      pending = this.#handle(ev);
    } catch (err) {
      this.#failed(err, ev);
      return;
    }
    if (!pending) return;
    this.#busy = true;
    pending.then(
      () => {
        this.#busy = false;
        this.#pump();
      },
      (err: unknown) => {
        this.#busy = false;
        this.#failed(err, ev);
        this.#pump();
      },
    );
  }

  #handle(ev: InputEvent): Promise<void> | void {
    switch (ev.type) {
      case 'error':
        throw new StreamError(ev.error.condition, ev.error.message);
      case 'close':
        return this.#endStream();
      case 'open':
        return this.#streamOpen(ev.element);
    }
    const e = ev.element;
    if (this.#framing === 'framed' && e.ns === NS.FRAMING) {
      if (e.local === 'open') return this.#streamOpen(e);
      if (e.local === 'close') return this.#endStream();
      throw new StreamError('unsupported-stanza-type', `Unknown framing element: ${e.local.slice(0, 32)}`);
    }
    if (!this.#opened) throw new StreamError('bad-format', 'Open the stream first');
    if (!this.#allow()) throw new StreamError('policy-violation', `More than ${this.#core.config.limits.commandsPerSecond} stanzas per second`);
    if (this.#phase === 'auth') return this.#preAuth(e);
    if (e.ns === NS_SM) return this.#streamManagement(e);
    if (e.ns === NS.TLS) return this.#startTls(e);
    const stanza = e.ns === NS.CLIENT && (e.local === 'iq' || e.local === 'message' || e.local === 'presence');
    if (!stanza) throw new StreamError('unsupported-stanza-type', `Unsupported element: ${e.local.slice(0, 32)}`);
    const from = e.attr('from');
    if (from !== undefined && from !== this.#jid && from !== bareJid(this.identity!.user, this.#env.domain))
      throw new StreamError('invalid-from', "The from address is not this stream's");
    if (this.#phase === 'bind') return this.#bindPhase(e);
    this.#sm?.handled();
    if (e.local === 'iq') return this.#iq(e);
    if (e.local === 'message') return this.#im!.message(e);
    return this.#im!.presence(e);
  }

  #allow(): boolean {
    const now = Date.now();
    if (now - this.#windowStart >= 1000) {
      this.#windowStart = now;
      this.#windowCount = 0;
    }
    return ++this.#windowCount <= this.#core.config.limits.commandsPerSecond;
  }

  /** An error while handling an input event: a stanza error reply, or a stream error. */
  #failed(err: unknown, ev: InputEvent): void {
    if (this.#closed) return;
    if (err instanceof StreamError) {
      this.#streamError(err.condition, err.message);
      return;
    }
    const stanza = ev.type === 'element' && this.#phase !== 'auth' && ev.element.ns === NS.CLIENT ? ev.element : undefined;
    if (!stanza) {
      const e = toHeraldError(err);
      this.#logInternal(e);
      this.#streamError('internal-server-error', e.code === 'HERALD_ERR_INTERNAL' ? undefined : e.message);
      return;
    }
    // RFC 6120 §8.3.1: an error stanza is never answered with one.
    if (stanza.attr('type') === 'error' || stanza.attr('type') === 'result') return;
    if (err instanceof StanzaError) {
      this.#stanza(
        stanzaErrorXml(stanza, err.condition, err.message === err.condition ? undefined : err.message, { jid: this.#jid, domain: this.#env.domain }),
      );
      return;
    }
    const e = toHeraldError(err);
    this.#logInternal(e);
    this.#stanza(
      stanzaErrorXml(stanza, stanzaConditionOf(e), e.code === 'HERALD_ERR_INTERNAL' ? undefined : e.message, { jid: this.#jid, domain: this.#env.domain }),
    );
  }

  #logInternal(e: HeraldError): void {
    if (e.code === 'HERALD_ERR_INTERNAL') this.#core.logger.error({ err: String((e.cause as Error)?.stack ?? e.cause) }, 'xmpp stanza failed');
  }

  // ---- stream --------------------------------------------------------------------------------

  #streamOpen(e: XmlElement): void {
    // BOSH streams have no header of their own: the features travel in the response <body/>, and
    // like RFC 7395 frames they declare the stream prefix on the element.
    const framed = this.#framing === 'framed' || this.#framing === 'bosh';
    if (framed ? e.local !== 'open' || e.ns !== NS.FRAMING : e.local !== 'stream' || e.ns !== NS.STREAM) {
      throw new StreamError('invalid-namespace', 'Expected a stream header');
    }
    const to = e.attr('to');
    const version = e.attr('version');
    this.#legacy = version === undefined && this.#framing !== 'framed';
    this.#sendHeader();
    if (to !== undefined && to.toLowerCase() !== this.#env.domain) throw new StreamError('host-unknown', `This server is ${this.#env.domain}`);
    if (version !== undefined && !/^1\.\d{1,3}$/.test(version)) throw new StreamError('unsupported-version', 'XMPP 1.0 is supported');
    this.#opened = true;
    if (this.#legacy) return;
    const tls = this.#wire.tlsOffer;
    const starttls = tls === undefined ? undefined : el('starttls', { xmlns: NS.TLS }, tls === 'required' ? [el('required')] : []);
    const features =
      this.#phase !== 'auth'
        ? [el('bind', { xmlns: NS.BIND }), el('session', { xmlns: NS.SESSION }, [el('optional')]), el('sm', { xmlns: NS_SM })]
        : tls === 'required'
          ? [starttls]
          : [starttls, el('mechanisms', { xmlns: NS.SASL }, [el('mechanism', {}, ['PLAIN'])]), el('auth', { xmlns: NS.IQ_AUTH_FEATURE })];
    this.#write(el('stream:features', framed ? { 'xmlns:stream': NS.STREAM } : {}, features));
  }

  /** Our stream header for the current stream (a new id for each). */
  #sendHeader(): void {
    const id = randomBytes(8).toString('hex');
    const common = { from: this.#env.domain, id, version: this.#legacy ? undefined : '1.0', 'xml:lang': 'en' };
    this.#headerSent = true;
    if (this.#framing === 'bosh') return;
    if (this.#framing === 'framed') this.#write(el('open', { xmlns: NS.FRAMING, ...common }));
    else this.#write(`<?xml version='1.0'?>${el('stream:stream', { xmlns: NS.CLIENT, 'xmlns:stream': NS.STREAM, ...common }).replace('/>', '>')}`);
  }

  /** Answer the client's stream close with ours and close the connection. */
  #endStream(): void {
    if (this.#closed) return;
    if (this.#framing !== 'bosh') this.#write(this.#framing === 'framed' ? el('close', { xmlns: NS.FRAMING }) : '</stream:stream>');
    this.#closed = true;
    this.#wire.end(this.#errored);
  }

  /** Send a stream error (after a header, if none was sent yet) and close. */
  #streamError(condition: StreamCondition, text?: string): void {
    if (this.#closed) return;
    if (!this.#headerSent) this.#sendHeader();
    this.#write(streamErrorXml(condition, text, this.#framing === 'framed' || this.#framing === 'bosh'));
    this.#errored = true;
    this.#endStream();
  }

  /** Restart after SASL success (RFC 6120 §6.4.6): a new stream on the same connection. */
  #restart(): void {
    this.#opened = false;
    this.#parser = undefined;
    this.#decoder = new StringDecoder('utf8');
  }

  // ---- authentication ------------------------------------------------------------------------

  #preAuth(e: XmlElement): Promise<void> | void {
    if (e.ns === NS.TLS) return this.#startTls(e);
    // RFC 6120 §5.3.1: where TLS is mandatory-to-negotiate nothing else is negotiated before it.
    if (this.#wire.tlsOffer === 'required') throw new StreamError('policy-violation', 'Use STARTTLS first');
    if (e.ns === NS.SASL && e.local === 'auth') return this.#sasl(e);
    if (e.ns === NS.SASL && e.local === 'abort') {
      this.#write(el('failure', { xmlns: NS.SASL }, [el('aborted')]));
      return;
    }
    if (e.ns === NS.CLIENT && e.local === 'iq' && e.child('query', NS.IQ_AUTH)) return this.#legacyAuth(e);
    throw new StreamError('not-authorized', 'Authenticate first');
  }

  /**
   * `<starttls/>` (RFC 6120 §5.4.2): `<proceed/>`, the switch to TLS and a fresh stream. Anything
   * else in the TLS namespace, or STARTTLS where it is not offered (no TLS configured, already
   * encrypted, a WebSocket, after a failed SASL attempt), gets `<failure/>` and the stream closes
   * (§5.4.2.2).
   */
  #startTls(e: XmlElement): void {
    if (e.local === 'starttls' && this.#phase === 'auth' && this.#authFailures === 0 && this.#wire.startTls(el('proceed', { xmlns: NS.TLS }))) {
      // What the client pipelined in the clear after <starttls/> is dropped; the next stream starts inside TLS.
      this.#events = [];
      this.#chunks = [];
      this.#queuedBytes = 0;
      this.#paused = false;
      this.#headerSent = false;
      this.#restart();
      return;
    }
    this.#write(el('failure', { xmlns: NS.TLS }));
    this.#endStream();
  }

  async #sasl(e: XmlElement): Promise<void> {
    if (this.#legacy) throw new StreamError('unsupported-stanza-type', 'SASL needs an XMPP 1.0 stream');
    if (e.attr('mechanism') !== 'PLAIN') return this.#saslFailure('invalid-mechanism', 'PLAIN is offered');
    const plain = decodePlain(e.text().trim(), this.#env.domain);
    if ('failure' in plain) return this.#saslFailure(plain.failure, plain.text);
    const { user, password } = plain;
    let identity: Identity;
    try {
      identity = await this.#authenticate(user, password);
    } catch (err) {
      const h = toHeraldError(err);
      this.#logInternal(h);
      return this.#saslFailure(h.temporary ? 'temporary-auth-failure' : 'not-authorized', h.code === 'HERALD_ERR_INTERNAL' ? undefined : h.message);
    }
    if (this.#closed) return;
    this.#identify(identity);
    this.#write(el('success', { xmlns: NS.SASL }));
    this.#phase = 'bind';
    this.#restart();
  }

  #saslFailure(condition: string, text?: string): void {
    this.#write(
      el('failure', { xmlns: NS.SASL }, [el(condition), text === undefined ? undefined : el('text', { 'xml:lang': 'en' }, [esc(text.slice(0, 200))])]),
    );
    if (++this.#authFailures >= MAX_AUTH_FAILURES) this.#streamError('policy-violation', 'Too many failed authentication attempts');
  }

  /**
   * Check credentials like the other fronts (core.clients.login: JWT, development names, the
   * backend's connect hook, the contact list): the password is the connection token. In development mode
   * without a connect hook any password is accepted for the user name. The token's user must be
   * the user name the client logs in as.
   */
  async #authenticate(user: string, password: string): Promise<Identity> {
    const backend = this.#core.backend;
    const dev = this.#core.auth.devMode && !backend.has('connect');
    const identity = await this.#core.clients.login({ token: dev ? undefined : password || undefined, user, client: this.id, transport: this.transport });
    if (!identity || identity.user !== user) throw new HeraldError('HERALD_ERR_UNAUTHORIZED', 'The credentials are not those of this user');
    await this.#env.im.authorize(identity);
    return identity;
  }

  #identify(identity: Identity): void {
    this.identity = identity;
    this.#core.clients.identified(this, this.#ticket);
  }

  /** XEP-0078 (legacy, pre-SASL): username, password (the token) and resource in one IQ; no stream restart. */
  async #legacyAuth(iq: XmlElement): Promise<void> {
    const id = iq.attr('id');
    const query = iq.child('query', NS.IQ_AUTH)!;
    if (iq.attr('type') === 'get') {
      this.#write(el('iq', { xmlns: NS.CLIENT, type: 'result', id }, [el('query', { xmlns: NS.IQ_AUTH }, [el('username'), el('password'), el('resource')])]));
      return;
    }
    if (iq.attr('type') !== 'set') throw new StreamError('not-authorized', 'Authenticate first');
    const user = query.childText('username', NS.IQ_AUTH);
    const password = query.childText('password', NS.IQ_AUTH);
    const resource = query.childText('resource', NS.IQ_AUTH);
    const reply = (condition: 'not-acceptable' | 'not-authorized' | 'internal-server-error', text: string): void =>
      this.#write(stanzaErrorXml(iq, condition, text, { jid: undefined, domain: this.#env.domain }));
    if (!user || password === undefined || !resource) return reply('not-acceptable', 'username, password and resource are required');
    let identity: Identity;
    try {
      identity = await this.#authenticate(user, password);
    } catch (err) {
      const h = toHeraldError(err);
      this.#logInternal(h);
      if (++this.#authFailures >= MAX_AUTH_FAILURES) throw new StreamError('policy-violation', 'Too many failed authentication attempts');
      return reply(h.temporary ? 'internal-server-error' : 'not-authorized', h.code === 'HERALD_ERR_INTERNAL' ? 'Internal error' : h.message);
    }
    if (this.#closed) return;
    this.#identify(identity);
    this.#bind(resource);
    this.#write(el('iq', { xmlns: NS.CLIENT, type: 'result', id }));
  }

  // ---- binding and IQs -----------------------------------------------------------------------

  /** Authenticated, not bound: only the bind and session IQs. */
  #bindPhase(e: XmlElement): void {
    const id = e.attr('id');
    if (e.local === 'iq' && e.attr('type') === 'set' && e.child('bind', NS.BIND)) {
      const jid = this.#bind(e.child('bind', NS.BIND)!.childText('resource', NS.BIND));
      this.#write(el('iq', { xmlns: NS.CLIENT, type: 'result', id }, [el('bind', { xmlns: NS.BIND }, [el('jid', {}, [esc(jid)])])]));
      return;
    }
    if (e.local === 'iq' && e.attr('type') === 'set' && e.child('session', NS.SESSION)) {
      this.#write(el('iq', { xmlns: NS.CLIENT, type: 'result', id }));
      return;
    }
    throw new StreamError('not-authorized', 'Bind a resource first');
  }

  /** Bind the session to a resource (the client's, or a generated one) and start its IM side. */
  #bind(asked: string | undefined): string {
    const resource = asked && asked.length <= MAX_RESOURCE_LENGTH && RESOURCE_RE.test(asked) ? asked : `herald-${randomBytes(6).toString('hex')}`;
    const user = this.identity!.user;
    this.#resource = resource;
    const jid = (this.#jid = fullJid(user, this.#env.domain, resource));
    this.#phase = 'ready';
    const isOpen = (): boolean => !this.#closed;
    this.#im = new XmppIm({
      core: this.#core,
      im: this.#env.im,
      domain: this.#env.domain,
      user,
      jid,
      get open() {
        return isOpen();
      },
      write: (xml) => this.#stanza(xml),
      deliver: (xml, seq) => this.#deliver(xml, seq),
      fail: (err) => this.#failed(err, { type: 'close' }),
    });
    return jid;
  }

  async #iq(iq: XmlElement): Promise<void> {
    const type = iq.attr('type');
    // Answers to our pings (and stray ones) need no answer.
    if (type === 'result' || type === 'error') return;
    if (type !== 'get' && type !== 'set') throw new StanzaError('bad-request', 'An IQ type is get, set, result or error');
    const result = await answerIq(iq, type, { domain: this.#env.domain, user: this.identity!.user, resource: this.#resource, im: this.#im! });
    this.#stanza(el('iq', { xmlns: NS.CLIENT, type: 'result', id: iq.attr('id'), from: iq.attr('to'), to: this.#jid }, [result]));
  }

  // ---- output and lifecycle ------------------------------------------------------------------

  #write(xml: string): void {
    if (this.#closed || this.#detachedAt !== 0) return;
    const pending = this.#wire.write(xml);
    if (pending > this.#core.config.limits.maxOutboundBytes) {
      this.#closed = true;
      // The close would wait behind the backlog: cut the connection now.
      this.#wire.destroy();
      this.#core.clients.slowConsumer(this);
    }
  }

  /**
   * Periodic visit (the front's timer wheel): the stream must be bound within
   * `timing.connectTimeoutMs`; on TCP (no WebSocket pings) a silent client is pinged (XEP-0199)
   * after `timing.pingIntervalMs` and dropped after twice that.
   */
  tick(now: number): void {
    if (this.#closed) return;
    if (this.#detachedAt !== 0) {
      if (now - this.#detachedAt > this.#env.resumeTimeoutMs) this.#release(NORMAL_CLOSURE);
      return;
    }
    if (this.#phase !== 'ready') {
      if (now - this.#openedAt > this.#core.config.timing.connectTimeoutMs) this.#streamError('connection-timeout', 'Not authenticated in time');
      return;
    }
    if (this.#wire.kind !== 'tcp') return;
    if (this.#read) {
      this.#read = false;
      this.#pinged = false;
      this.#lastIn = now;
      return;
    }
    const interval = this.#core.config.timing.pingIntervalMs;
    if (now - this.#lastIn > 2 * interval) this.#streamError('connection-timeout', 'No answer to ping');
    else if (now - this.#lastIn > interval && !this.#pinged) {
      this.#pinged = true;
      this.#stanza(
        el('iq', { xmlns: NS.CLIENT, type: 'get', id: `ping-${now.toString(36)}`, from: this.#env.domain, to: this.#jid }, [el('ping', { xmlns: NS.PING })]),
      );
    }
  }

  /** Close from the server side (shutdown, kick, revoked token) with a stream error saying why. */
  disconnect(code: number, reason: string): void {
    if (this.#detachedAt !== 0) {
      this.#release(code);
      return;
    }
    let condition: StreamCondition = 'policy-violation';
    if (code === DisconnectCode.TOO_MANY_CONNECTIONS) condition = 'resource-constraint';
    else if (code < 3500) condition = 'system-shutdown';
    else if (code === DisconnectCode.INVALID_TOKEN) condition = 'not-authorized';
    this.#streamError(condition, reason);
  }

  /**
   * @internal The socket closed (called by the front). A resumable session whose stream did not
   * end waits `xmpp.resumeTimeoutMs` for its client, still receiving into its unacknowledged
   * queue; a socket replaced by a resumption is ignored.
   */
  wireClosed(wire: XmppWire, code: number): void {
    if (this.#adoptedBy) return this.#adoptedBy.wireClosed(wire, code);
    if (wire !== this.#wire || this.#cleaned) return;
    if (this.#sm?.id !== undefined && !this.#closed) {
      this.#detachedAt = Date.now();
      this.#chunks = [];
      this.#events = [];
      this.#busy = false;
      return;
    }
    this.#release(code);
  }

  /** End the session for good: the IM side, the hub, the resumption id. */
  #release(code: number): void {
    if (this.#cleaned) return;
    this.#cleaned = true;
    this.#closed = true;
    this.#im?.close();
    this.#chunks = [];
    this.#events = [];
    const id = this.#sm?.id;
    if (id !== undefined && this.#env.resumable.get(id) === this) {
      this.#env.resumable.delete(id);
      if (this.#env.ended.size >= MAX_ENDED_IDS) this.#env.ended.delete(this.#env.ended.keys().next().value!);
      this.#env.ended.set(id, { user: this.user!, h: this.#sm!.inbound });
    }
    this.#core.clients.closed(this, this.#ticket, code, []);
    this.#env.onClose(this);
  }

  // ---- stream management (XEP-0198) ----------------------------------------------------------

  /** Write a stanza; with stream management it is counted and kept until the client acknowledges it. */
  #stanza(xml: string, seq = 0): void {
    const sm = this.#sm;
    if (sm) {
      if (!sm.sent(xml, seq)) {
        this.#unmanageable();
        return;
      }
      this.#requestAck();
    }
    this.#write(xml);
  }

  /** An inbox entry's stanza (or none): its seq is acknowledged to the IM once the client has it. */
  #deliver(xml: string | undefined, seq: number): void {
    const sm = this.#sm;
    if (!sm) {
      if (xml !== undefined) this.#write(xml);
      this.#ackInbox(seq);
    } else if (xml !== undefined) {
      this.#stanza(xml, seq);
    } else {
      const now = sm.seqOnly(seq);
      if (now !== undefined) this.#ackInbox(now);
    }
  }

  /** The client acknowledges nothing while the queue grows past its bound. */
  #unmanageable(): void {
    if (this.#detachedAt !== 0) this.#release(NORMAL_CLOSURE);
    else this.#streamError('resource-constraint', 'Too many stanzas without an acknowledgement');
  }

  /** One `<r/>` per turn of the event loop after stanzas were sent. */
  #requestAck(): void {
    if (this.#ackRequested || this.#detachedAt !== 0) return;
    this.#ackRequested = true;
    setImmediate(() => {
      this.#ackRequested = false;
      this.#write(el('r', { xmlns: NS_SM }));
    });
  }

  /** Cumulative inbox ack to the IM, one per turn of the event loop. */
  #ackInbox(seq: number): void {
    if (seq <= this.#ackDue) return;
    this.#ackDue = seq;
    if (this.#ackScheduled) return;
    this.#ackScheduled = true;
    setImmediate(() => {
      this.#ackScheduled = false;
      const user = this.identity!.user;
      this.#env.im.ack(user, this.#ackDue).catch((err: unknown) => this.#core.logger.warn({ err: String(err) }, 'xmpp inbox ack failed'));
    });
  }

  #streamManagement(e: XmlElement): void {
    if (e.local === 'resume' && this.#phase === 'bind') return this.#resume(e);
    if (this.#phase !== 'ready') throw new StreamError('unsupported-stanza-type', 'Bind a resource first');
    const sm = this.#sm;
    switch (e.local) {
      case 'enable': {
        if (sm) {
          this.#write(el('failed', { xmlns: NS_SM }, [el('unexpected-request', { xmlns: NS.STANZAS })]));
          return;
        }
        const resume = e.attr('resume') === 'true' || e.attr('resume') === '1';
        const id = resume ? `${this.#core.nodeId.slice(0, 8)}.${randomBytes(12).toString('base64url')}` : undefined;
        this.#sm = new StreamManagement(id, this.#core.config.limits.maxOutboundBytes);
        if (id !== undefined) this.#env.resumable.set(id, this);
        const max = id === undefined ? undefined : Math.ceil(this.#env.resumeTimeoutMs / 1000);
        this.#write(el('enabled', { xmlns: NS_SM, id, resume: id === undefined ? undefined : 'true', max }));
        return;
      }
      case 'r':
        if (!sm) throw new StreamError('unsupported-stanza-type', 'Stream management is not enabled');
        this.#write(el('a', { xmlns: NS_SM, h: sm.inbound }));
        return;
      case 'a': {
        if (!sm) throw new StreamError('unsupported-stanza-type', 'Stream management is not enabled');
        const h = parseH(e.attr('h'));
        if (h === undefined) throw new StreamError('bad-format', 'h must be an unsigned 32-bit integer');
        this.#acknowledge(sm, h);
        return;
      }
      default:
        throw new StreamError('unsupported-stanza-type', `Unsupported stream management element: ${e.local.slice(0, 32)}`);
    }
  }

  #acknowledge(sm: StreamManagement, h: number): void {
    let seq: number;
    try {
      seq = sm.acknowledge(h);
    } catch (err) {
      if (err instanceof HandledCountTooHigh) throw new StreamError('undefined-condition', err.message);
      throw err;
    }
    if (seq > 0) this.#ackInbox(seq);
  }

  /**
   * `<resume previd h/>` on a new, authenticated stream: the detached (or not yet detached)
   * session of the same user on this node takes this connection over, learns what the client
   * got, and sends again what it did not. Unknown ids (expired, or from another node) fail
   * with the count of stanzas handled when it is known; the client then binds anew and gets
   * what it missed by offline delivery.
   */
  #resume(e: XmlElement): void {
    const previd = e.attr('previd') ?? '';
    const h = parseH(e.attr('h'));
    if (h === undefined) throw new StreamError('bad-format', 'h must be an unsigned 32-bit integer');
    const user = this.identity!.user;
    const old = this.#env.resumable.get(previd);
    if (!old || old.user !== user || old.#closed) {
      const ended = this.#env.ended.get(previd);
      const known = ended?.user === user ? ended.h : undefined;
      this.#write(el('failed', { xmlns: NS_SM, h: known }, [el('item-not-found', { xmlns: NS.STANZAS })]));
      return;
    }
    old.#takeOver(this, h);
  }

  /** Take over `fresh`'s connection (its stream is at the `<resume/>` just handled). */
  #takeOver(fresh: XmppSession, h: number): void {
    const sm = this.#sm!;
    const previous = this.#wire;
    this.#wire = fresh.#wire;
    if (this.#detachedAt === 0) previous.destroy();
    this.#detachedAt = 0;
    this.#framing = fresh.#framing;
    this.#parser = fresh.#parser;
    this.#decoder = fresh.#decoder;
    this.#chunks = fresh.#chunks;
    this.#queuedBytes = fresh.#queuedBytes;
    this.#events = fresh.#events;
    this.#paused = fresh.#paused;
    this.#busy = false;
    this.#opened = true;
    this.#headerSent = true;
    this.#read = true;
    fresh.#adoptedBy = this;
    fresh.#chunks = [];
    fresh.#events = [];
    fresh.#paused = false;
    fresh.#release(NORMAL_CLOSURE);
    try {
      this.#acknowledge(sm, h);
    } catch (err) {
      this.#failed(err, { type: 'close' });
      return;
    }
    this.#write(el('resumed', { xmlns: NS_SM, previd: sm.id, h: sm.inbound }));
    for (const xml of sm.pending()) this.#write(xml);
    if (sm.unacked > 0) this.#requestAck();
    setImmediate(() => this.#pump());
  }
}
