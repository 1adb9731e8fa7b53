/**
 * One XMPP client stream (RFC 6120) over a WebSocket (RFC 7395 framing, or the older
 * `<stream:stream>` framing), a TCP socket or BOSH: the session's state and lifecycle, and the
 * routing of what the client sends to the module whose job it is — the ordered input queue
 * (input.ts), authentication (auth.ts), stream headers and features (stream.ts), stream
 * management and inbox acks (outbox.ts), IQs (iq.ts) and the IM stanzas (im.ts).
 */
import { randomBytes } from 'node:crypto';
import type { Identity } from '../../core/auth.js';
import type { AdmissionTicket } from '../../core/client-sessions.js';
import type { HeraldCore } from '../../core/core.js';
import { type HeraldError, toHeraldError } from '../../core/errors.js';
import type { Connection } from '../../core/hub.js';
import type { ImService } from '../../core/im/service.js';
import type { ResumptionStore } from '../../core/resumptions.js';
import { DisconnectCode } from '../../protocol/codes.js';
import { saslMechanisms, XmppAuth } from './auth.js';
import { StanzaError, stanzaConditionOf, stanzaErrorXml, StreamError, type StreamCondition, streamErrorXml } from './errors.js';
import { XmppIm } from './im.js';
import { type InputEvent, type InputHooks, XmppInput } from './input.js';
import { answerIq } from './iq.js';
import { bareJid, fullJid } from './jid.js';
import { XmppOutbox } from './outbox.js';
import type { XmlLimits } from './parser.js';
import { handoff, type SmData, type SmOwner, SmRecorder } from './resumption.js';
import { NS_SM, parseH } from './stream-management.js';
import { type Phase, streamCloseXml, streamFeaturesXml, streamHeaderXml } from './stream.js';
import { el, esc, NS, XmlElement } from './xml.js';

/** Longest resumption id looked up, characters (ours are 25). */
const MAX_PREVID_LENGTH = 64;
/** Longest resource kept as the client asked, characters. */
const MAX_RESOURCE_LENGTH = 256;
/** WebSocket close code / disconnect code of a session that ended normally. */
const NORMAL_CLOSURE = 1000;
/** Resources with control characters or spaces at the ends are replaced by a generated one. */
const RESOURCE_RE = /^[^\s\p{Cc}](?:[^\p{Cc}]*[^\s\p{Cc}])?$/u;

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
  /** XEP-0199 pings to a TCP client silent this long, ms (0 = none: TCP keepalive judges the connection). */
  readonly tcpPingIntervalMs: number;
  /** Resumable sessions of this node by resumption id. */
  readonly resumable: Map<string, XmppSession>;
  /** Where resumable sessions record their state, so any node can resume them (resumption.ts). */
  readonly resumptions: ResumptionStore;
  /** The session ended (once). */
  readonly onClose: (session: XmppSession) => void;
  /**
   * Visit the session periodically again (the front's timer wheel; a new session is visited from
   * the start). A session asks for it only while a deadline runs: authentication, a TCP ping,
   * a resumption.
   */
  readonly watch: (session: XmppSession) => void;
  /** Stop visiting the session: nothing of it is due (a bound stream kept alive by TCP keepalive or WebSocket pings). */
  readonly unwatch: (session: XmppSession) => void;
}

/** Disconnect codes of the "reconnect" family (3000–3499): a resumable session is let go resumable, not ended. */
const RECONNECT_CODES = { min: 3000, max: 3499 };

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
  #input: XmppInput;
  readonly #auth: XmppAuth;
  readonly #outbox: XmppOutbox;
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
  #resource = '';
  #jid: string | undefined;
  #im: XmppIm | undefined;
  readonly #openedAt = Date.now();
  #read = true;
  #lastIn = Date.now();
  #pinged = false;
  /** The front's timer wheel visits the session (it does from the start). */
  #watched = true;
  #windowStart = 0;
  #windowCount = 0;
  /** When the connection of a resumable session dropped (0 = connected). */
  #detachedAt = 0;
  /** The session this one's connection was handed to by a resumption. */
  #adoptedBy: XmppSession | undefined;
  /** Records the state of a resumable session for the other nodes (from `<enable resume/>` on). */
  #recorder: SmRecorder | undefined;
  /** The server lets the session go resumable (shutdown, drain, a resumption on another node). */
  #park = false;

  constructor(id: string, wire: XmppWire, env: XmppEnv, ticket: AdmissionTicket) {
    this.id = id;
    this.#wire = wire;
    this.#env = env;
    this.#core = env.core;
    this.#ticket = ticket;
    this.transport = `xmpp-${wire.kind}`;
    this.#input = new XmppInput(env.limits, wire.kind === 'tcp' ? 'stream' : wire.kind === 'bosh' ? 'bosh' : undefined, this.#inputHooks());
    this.#auth = new XmppAuth(this.#authContext());
    this.#outbox = this.#outboxOf();
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
    this.#input.chunk(data);
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
    this.#input.events(...elements.map((element): InputEvent => ({ type: 'element', element })));
  }

  /** BOSH: the client terminated the session (after the elements it carried). */
  boshClose(): void {
    this.#boshEvent({ type: 'close' });
  }

  /** Input events waiting to be handled (BOSH bounds them). */
  get backlog(): number {
    return this.#input.backlog;
  }

  #boshEvent(ev: InputEvent): void {
    if (this.#adoptedBy) return this.#adoptedBy.#boshEvent(ev);
    this.#input.events(ev);
  }

  #inputHooks(): InputHooks {
    return {
      canRun: () => !this.#closed && this.#detachedAt === 0,
      handle: (ev) => this.#handle(ev),
      failed: (err, ev) => this.#failed(err, ev),
      pause: () => this.#wire.pause(),
      resume: () => this.#wire.resume(),
    };
  }

  /** Route one input event to the module whose job it is. */
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
    if (this.#input.framing === 'framed' && e.ns === NS.FRAMING) {
      if (e.local === 'open') return this.#streamOpen(e);
      if (e.local === 'close') return this.#endStream();
      throw new StreamError('unsupported-stanza-type', `Unknown framing element: ${e.local.slice(0, 32)}`);
    }
    if (!this.#opened) throw new StreamError('bad-format', 'Open the stream first');
    if (!this.#allow()) throw new StreamError('policy-violation', `More than ${this.#core.config.limits.commandsPerSecond} stanzas per second`);
    if (this.#phase === 'auth') return this.#auth.handle(e);
    if (e.ns === NS_SM) return this.#streamManagement(e);
    if (e.ns === NS.TLS) return this.#startTls(e);
    const stanza = e.ns === NS.CLIENT && (e.local === 'iq' || e.local === 'message' || e.local === 'presence');
    if (!stanza) throw new StreamError('unsupported-stanza-type', `Unsupported element: ${e.local.slice(0, 32)}`);
    const from = e.attr('from');
    if (from !== undefined && from !== this.#jid && from !== bareJid(this.identity!.user, this.#env.domain))
      throw new StreamError('invalid-from', "The from address is not this stream's");
    if (this.#phase === 'bind') return this.#bindPhase(e);
    this.#outbox.sm?.handled();
    this.#recorder?.changed();
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
    const framing = this.#input.framing;
    const framed = framing === 'framed' || framing === 'bosh';
    if (framed ? e.local !== 'open' || e.ns !== NS.FRAMING : e.local !== 'stream' || e.ns !== NS.STREAM) {
      throw new StreamError('invalid-namespace', 'Expected a stream header');
    }
    const to = e.attr('to');
    const version = e.attr('version');
    this.#legacy = version === undefined && framing !== 'framed';
    this.#sendHeader();
    if (to !== undefined && to.toLowerCase() !== this.#env.domain) throw new StreamError('host-unknown', `This server is ${this.#env.domain}`);
    if (version !== undefined && !/^1\.\d{1,3}$/.test(version)) throw new StreamError('unsupported-version', 'XMPP 1.0 is supported');
    this.#opened = true;
    if (this.#legacy) return;
    this.#write(streamFeaturesXml(this.#phase, this.#wire.tlsOffer, framed, saslMechanisms(this.#core)));
  }

  /** Our stream header for the current stream (a new id for each). */
  #sendHeader(): void {
    this.#headerSent = true;
    const header = streamHeaderXml(this.#input.framing, this.#env.domain, this.#legacy);
    if (header !== undefined) this.#write(header);
  }

  /** Answer the client's stream close with ours and close the connection. */
  #endStream(): void {
    if (this.#closed) return;
    const close = streamCloseXml(this.#input.framing);
    if (close !== undefined) this.#write(close);
    this.#closed = true;
    this.#wire.end(this.#errored);
  }

  /** Send a stream error (after a header, if none was sent yet) and close. */
  #streamError(condition: StreamCondition, text?: string): void {
    if (this.#closed) return;
    if (!this.#headerSent) this.#sendHeader();
    const framing = this.#input.framing;
    this.#write(streamErrorXml(condition, text, framing === 'framed' || framing === 'bosh'));
    this.#errored = true;
    this.#endStream();
  }

  /** Restart after SASL success (RFC 6120 §6.4.6): a new stream on the same connection. */
  #restart(): void {
    this.#opened = false;
    this.#input.restart();
  }

  // ---- authentication (auth.ts) --------------------------------------------------------------

  #authContext(): ConstructorParameters<typeof XmppAuth>[0] {
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- the context's getters read the session's live state
    const session = this;
    const env = this.#env;
    return {
      core: env.core,
      im: env.im,
      domain: env.domain,
      id: this.id,
      transport: this.transport,
      get legacy() {
        return session.#legacy;
      },
      get closed() {
        return session.#closed;
      },
      get tlsRequired() {
        return session.#wire.tlsOffer === 'required';
      },
      write: (xml) => this.#write(xml),
      startTls: (e) => this.#startTls(e),
      identify: (identity) => {
        this.identity = identity;
        this.#core.clients.identified(this, this.#ticket);
      },
      saslSucceeded: () => {
        this.#phase = 'bind';
        this.#restart();
      },
      bind: (resource) => void this.#bind(resource),
      streamError: (condition, text) => this.#streamError(condition, text),
      logInternal: (e) => this.#logInternal(e),
    };
  }

  /**
   * `<starttls/>` (RFC 6120 §5.4.2): `<proceed/>`, the switch to TLS and a fresh stream. Anything
   * else in the TLS namespace, or STARTTLS where it is not offered (no TLS configured, already
   * encrypted, a WebSocket, after a failed SASL attempt), gets `<failure/>` and the stream closes
   * (§5.4.2.2).
   */
  #startTls(e: XmlElement): void {
    if (e.local === 'starttls' && this.#phase === 'auth' && this.#auth.failures === 0 && this.#wire.startTls(el('proceed', { xmlns: NS.TLS }))) {
      // What the client pipelined in the clear after <starttls/> is dropped; the next stream starts inside TLS.
      this.#input.clear();
      this.#headerSent = false;
      this.#restart();
      return;
    }
    this.#write(el('failure', { xmlns: NS.TLS }));
    this.#endStream();
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
      deliver: (xml, seq) => this.#outbox.deliver(xml, seq),
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

  /** Write a stanza through the outbox (counted under stream management). */
  #stanza(xml: string): void {
    this.#outbox.stanza(xml);
  }

  /**
   * Periodic visit (the front's timer wheel): the stream must be bound within
   * `timing.connectTimeoutMs`; on TCP (no WebSocket pings), with `xmpp.tcpPingIntervalMs` set, a
   * silent client is pinged (XEP-0199) after that long and dropped after twice that.
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
    const interval = this.#env.tcpPingIntervalMs;
    if (this.#wire.kind !== 'tcp' || interval === 0) {
      // Nothing is due until the connection drops or is taken over: an idle user costs no visits.
      this.#watched = false;
      this.#env.unwatch(this);
      return;
    }
    if (this.#read) {
      this.#read = false;
      this.#pinged = false;
      this.#lastIn = now;
      return;
    }
    if (now - this.#lastIn > 2 * interval) this.#streamError('connection-timeout', 'No answer to ping');
    else if (now - this.#lastIn > interval && !this.#pinged) {
      this.#pinged = true;
      // Single-quoted attributes on purpose: tsung's XMPP client answers server pings only when it
      // finds from='…' and id='…' written that way.
      this.#stanza(
        `<iq xmlns='${NS.CLIENT}' type='get' id='ping-${now.toString(36)}' from='${esc(this.#env.domain)}' to='${esc(this.#jid ?? '')}'><ping xmlns='${NS.PING}'/></iq>`,
      );
    }
  }

  /** Be visited by the front's timer wheel again (once: a session is never in it twice). */
  #watch(): void {
    if (this.#watched) return;
    this.#watched = true;
    this.#env.watch(this);
  }

  /** Close from the server side (shutdown, kick, revoked token) with a stream error saying why. */
  disconnect(code: number, reason: string): void {
    if (code >= RECONNECT_CODES.min && code <= RECONNECT_CODES.max) this.#park = true;
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
    if (this.#outbox.sm?.id !== undefined && !this.#closed) {
      this.#detachedAt = Date.now();
      this.#input.detach();
      this.#watch();
      return;
    }
    this.#release(code);
  }

  /**
   * End the session here for good: the IM side, the hub, the resumption id. A resumable session
   * records its final state: `parked` (resumable on any node) when the server let it go, else
   * `ended` (a resumption then fails with the count of stanzas handled).
   */
  #release(code: number): void {
    if (this.#cleaned) return;
    this.#cleaned = true;
    this.#closed = true;
    const id = this.#outbox.sm?.id;
    if (id !== undefined && this.#env.resumable.get(id) === this) this.#env.resumable.delete(id);
    // Before the IM side closes: the record says whether the client was available.
    void this.#recorder?.finish(this.#park ? 'parked' : 'ended');
    this.#im?.close();
    this.#input.clear();
    this.#core.clients.closed(this, this.#ticket, code, []);
    this.#env.onClose(this);
  }

  // ---- stream management (XEP-0198; outbox.ts keeps the counts) -------------------------------

  #outboxOf(): XmppOutbox {
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- the context's getters read the session's live state
    const session = this;
    const env = this.#env;
    return new XmppOutbox({
      core: env.core,
      im: env.im,
      resumeTimeoutMs: env.resumeTimeoutMs,
      get detached() {
        return session.#detachedAt !== 0;
      },
      get user() {
        return session.identity!.user;
      },
      write: (xml) => this.#write(xml),
      resumable: (id) => {
        env.resumable.set(id, this);
        this.#recorder = new SmRecorder(id, this.#smOwner(), () => this.#smData());
        this.#recorder.changed();
      },
      changed: () => this.#recorder?.changed(),
      unmanageable: () => {
        if (this.#detachedAt !== 0) this.#release(NORMAL_CLOSURE);
        else this.#streamError('resource-constraint', 'Too many stanzas without an acknowledgement');
      },
    });
  }

  #streamManagement(e: XmlElement): Promise<void> | void {
    if (e.local === 'resume' && this.#phase === 'bind') return this.#resume(e);
    if (this.#phase !== 'ready') throw new StreamError('unsupported-stanza-type', 'Bind a resource first');
    this.#outbox.element(e);
  }

  /** Who this session's resumption record belongs to. */
  #smOwner(): SmOwner {
    return { store: this.#env.resumptions, user: this.identity!.user, node: this.#core.nodeId, session: this.id, resumeTimeoutMs: this.#env.resumeTimeoutMs };
  }

  /** The state a resumable session records (resumption.ts). */
  #smData(): SmData {
    const sm = this.#outbox.sm!;
    const im = this.#im;
    return {
      resource: this.#resource,
      in: sm.inbound,
      out: sm.outbound,
      acked: sm.acked,
      sent: sm.sentSeqs(),
      settled: this.#outbox.settled,
      from: im?.deliveredFrom ?? null,
      carbons: im?.chat.carbonsOn ?? false,
      rooms: im?.chat.rooms.joinedRooms() ?? [],
    };
  }

  /**
   * `<resume previd h/>` on a new, authenticated stream: the detached (or not yet detached)
   * session of the same user on this node takes this connection over, learns what the client
   * got, and sends again what it did not. A session another node holds (or held, and let go) is
   * handed over (resumption.ts). Unknown ids, expired ones and another user's fail, with the
   * count of stanzas handled when the session is the user's and is known to have ended; the
   * client then binds anew and gets what it missed by offline delivery.
   */
  async #resume(e: XmlElement): Promise<void> {
    const previd = e.attr('previd') ?? '';
    const h = parseH(e.attr('h'));
    if (h === undefined) throw new StreamError('bad-format', 'h must be an unsigned 32-bit integer');
    const user = this.identity!.user;
    const old = this.#env.resumable.get(previd);
    if (old && old.user === user && !old.#closed) return old.#takeOver(this, h);
    const failed = (known?: number): void => this.#write(el('failed', { xmlns: NS_SM, h: known }, [el('item-not-found', { xmlns: NS.STANZAS })]));
    if ((old && old.user !== user) || previd === '' || previd.length > MAX_PREVID_LENGTH) return failed();
    let outcome;
    try {
      outcome = await handoff(this.#core, this.#smOwner(), previd, h);
    } catch (err) {
      // The store is unreachable: the client binds anew and gets what it missed by offline delivery.
      this.#core.logger.warn({ err: String(err) }, 'xmpp resumption failed');
      return failed();
    }
    if (outcome.type === 'failed') return failed(outcome.h);
    if (outcome.type === 'too-high') throw new StreamError('undefined-condition', `h=${outcome.h} acknowledges more than the ${outcome.sent} stanzas sent`);
    await this.#resumed(previd, outcome.data);
  }

  /** Go on with a session handed over by another node, on this connection (its state recorded as held here already). */
  async #resumed(id: string, data: SmData): Promise<void> {
    if (this.#closed) {
      // The client went away during the handoff: the session stays resumable, as it was.
      await new SmRecorder(id, this.#smOwner(), () => data).finish('parked');
      return;
    }
    this.#bind(data.resource);
    this.#outbox.resumed(id, data.in, data.acked, data.settled);
    this.#recorder = new SmRecorder(id, this.#smOwner(), () => this.#smData());
    this.#env.resumable.set(id, this);
    this.#write(el('resumed', { xmlns: NS_SM, previd: id, h: data.in }));
    const im = this.#im!;
    im.chat.carbons(data.carbons);
    await im.chat.rooms.restore(data.rooms);
    if (data.from !== null) await im.resumeAvailable(data.from);
    this.#recorder.changed();
  }

  /** Take over `fresh`'s connection (its stream is at the `<resume/>` just handled). */
  #takeOver(fresh: XmppSession, h: number): void {
    const sm = this.#outbox.sm!;
    const previous = this.#wire;
    this.#wire = fresh.#wire;
    if (this.#detachedAt === 0) previous.destroy();
    this.#detachedAt = 0;
    // The new connection may need pings (TCP with xmpp.tcpPingIntervalMs): the next visit decides.
    this.#watch();
    this.#input = fresh.#input.transfer(this.#inputHooks());
    this.#opened = true;
    this.#headerSent = true;
    this.#read = true;
    fresh.#adoptedBy = this;
    fresh.#release(NORMAL_CLOSURE);
    try {
      this.#outbox.acknowledge(h);
    } catch (err) {
      this.#failed(err, { type: 'close' });
      return;
    }
    this.#write(el('resumed', { xmlns: NS_SM, previd: sm.id, h: sm.inbound }));
    for (const xml of sm.pending()) this.#write(xml);
    if (sm.unacked > 0) this.#outbox.requestAck();
    setImmediate(() => this.#input.pump());
  }
}
