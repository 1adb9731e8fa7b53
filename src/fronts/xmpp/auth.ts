/**
 * Authentication of an XMPP stream before it is bound: SASL (RFC 6120 §6) with PLAIN and, when
 * the backend's scram hook is configured, SCRAM-SHA-1 (scram.ts); and the legacy
 * `jabber:iq:auth` (XEP-0078) that pre-1.0 clients and tsung's classic scenario use.
 *
 * With PLAIN and legacy auth the password is a Herald connection token, checked like the other
 * fronts' (core.clients.login: JWT, development names, the backend's connect hook). With
 * SCRAM-SHA-1 the password is the user's own, checked against the keys the application gives;
 * the login then runs as for a verified token (connect hook, limits, contacts). At most
 * `MAX_AUTH_FAILURES` failed attempts per stream; the last one ends the stream with
 * `policy-violation`.
 */
import type { Identity } from '../../core/auth.js';
import type { ScramCredentials } from '../../core/backend.js';
import type { HeraldCore } from '../../core/core.js';
import { HeraldError, toHeraldError } from '../../core/errors.js';
import type { ImService } from '../../core/im/service.js';
import { USER_ID_RE } from '../../core/user-id.js';
import { stanzaErrorXml, StreamError } from './errors.js';
import { decodePlain } from './sasl.js';
import { decoyKey, parseClientFirst, SCRAM_SHA_1, ScramExchange } from './scram.js';
import { el, esc, NS, type XmlElement } from './xml.js';

/** Failed SASL attempts allowed on one stream (RFC 6120 §6.4.5: at least 2, at most 5). */
const MAX_AUTH_FAILURES = 3;

/** The SASL mechanisms a node offers, in order of preference: SCRAM-SHA-1 only where the application gives keys. */
export function saslMechanisms(core: HeraldCore): readonly string[] {
  return core.backend.has('scram') ? [SCRAM_SHA_1, 'PLAIN'] : ['PLAIN'];
}

/** What authentication needs from its session. */
export interface AuthContext {
  readonly core: HeraldCore;
  readonly im: ImService;
  readonly domain: string;
  /** The session's connection id and transport name (for the login record). */
  readonly id: string;
  readonly transport: string;
  /** The stream has no version (pre-XMPP-1.0: legacy auth only). */
  readonly legacy: boolean;
  readonly closed: boolean;
  /** STARTTLS is required before anything else. */
  readonly tlsRequired: boolean;
  write(xml: string): void;
  /** An element in the TLS namespace. */
  startTls(e: XmlElement): void;
  /** The credentials are good: the session is this identity from now on. */
  identify(identity: Identity): void;
  /** SASL succeeded: the client restarts the stream. */
  saslSucceeded(): void;
  /** Legacy auth binds at once: bind `resource`. */
  bind(resource: string): void;
  streamError(condition: 'policy-violation', text: string): void;
  logInternal(e: HeraldError): void;
}

/** The authentication step of one stream. */
export class XmppAuth {
  readonly #ctx: AuthContext;
  /** Failed attempts on this stream. */
  #failures = 0;
  /** The SCRAM exchange waiting for the client's `<response>`. */
  #scram: ScramExchange | undefined;

  constructor(ctx: AuthContext) {
    this.#ctx = ctx;
  }

  /** Failed attempts so far (STARTTLS is refused after one). */
  get failures(): number {
    return this.#failures;
  }

  /** An element received before authentication. */
  handle(e: XmlElement): Promise<void> | void {
    if (e.ns === NS.TLS) return this.#ctx.startTls(e);
    // RFC 6120 §5.3.1: where TLS is mandatory-to-negotiate nothing else is negotiated before it.
    if (this.#ctx.tlsRequired) throw new StreamError('policy-violation', 'Use STARTTLS first');
    if (e.ns === NS.SASL && e.local === 'auth') return this.#sasl(e);
    if (e.ns === NS.SASL && e.local === 'response') return this.#scramFinish(e);
    if (e.ns === NS.SASL && e.local === 'abort') {
      this.#scram = undefined;
      this.#ctx.write(el('failure', { xmlns: NS.SASL }, [el('aborted')]));
      return;
    }
    if (e.ns === NS.CLIENT && e.local === 'iq' && e.child('query', NS.IQ_AUTH)) return this.#legacyAuth(e);
    throw new StreamError('not-authorized', 'Authenticate first');
  }

  async #sasl(e: XmlElement): Promise<void> {
    if (this.#ctx.legacy) throw new StreamError('unsupported-stanza-type', 'SASL needs an XMPP 1.0 stream');
    this.#scram = undefined;
    const mechanism = e.attr('mechanism');
    if (mechanism === SCRAM_SHA_1 && this.#ctx.core.backend.has('scram')) return this.#scramStart(e);
    if (mechanism !== 'PLAIN') return this.#saslFailure('invalid-mechanism', `Offered: ${saslMechanisms(this.#ctx.core).join(', ')}`);
    const plain = decodePlain(e.text().trim(), this.#ctx.domain);
    if ('failure' in plain) return this.#saslFailure(plain.failure, plain.text);
    return this.#saslLogin(() => this.#authenticate(plain.user, plain.password));
  }

  /** The credentials are checked: log in, then `<success>` (with `data`, SCRAM's server signature) or the SASL failure. */
  async #saslLogin(login: () => Promise<Identity>, data?: string): Promise<void> {
    let identity: Identity;
    try {
      identity = await login();
    } catch (err) {
      const h = toHeraldError(err);
      this.#ctx.logInternal(h);
      return this.#saslFailure(h.temporary ? 'temporary-auth-failure' : 'not-authorized', h.code === 'HERALD_ERR_INTERNAL' ? undefined : h.message);
    }
    if (this.#ctx.closed) return;
    this.#ctx.identify(identity);
    this.#ctx.write(el('success', { xmlns: NS.SASL }, [data]));
    this.#ctx.saslSucceeded();
  }

  /** SCRAM-SHA-1 client-first: fetch the user's keys and send the server-first challenge. */
  async #scramStart(e: XmlElement): Promise<void> {
    const first = parseClientFirst(e.text(), this.#ctx.domain);
    if ('failure' in first) return this.#saslFailure(first.failure, first.text);
    let credentials: ScramCredentials | undefined;
    try {
      // A name that cannot be a user id is unknown: no hook call, the decoy exchange fails at the proof.
      credentials = USER_ID_RE.test(first.user) ? await this.#ctx.core.backend.scramCredentials(first.user) : undefined;
    } catch (err) {
      this.#ctx.logInternal(toHeraldError(err));
      return this.#saslFailure('temporary-auth-failure');
    }
    if (this.#ctx.closed) return;
    this.#scram = new ScramExchange(first, credentials, decoyKey(this.#ctx.core.config.backend.secret));
    this.#ctx.write(el('challenge', { xmlns: NS.SASL }, [this.#scram.challenge()]));
  }

  /** SCRAM-SHA-1 client-final: check the proof, log the user in, answer with the server's signature. */
  async #scramFinish(e: XmlElement): Promise<void> {
    const exchange = this.#scram;
    this.#scram = undefined;
    if (!exchange) return this.#saslFailure('malformed-request', 'No SASL exchange is in progress');
    const outcome = exchange.finish(e.text());
    if ('failure' in outcome) return this.#saslFailure(outcome.failure, outcome.text);
    return this.#saslLogin(() => this.#login({ verifiedUser: exchange.user }, exchange.user), outcome.success);
  }

  #saslFailure(condition: string, text?: string): void {
    this.#ctx.write(
      el('failure', { xmlns: NS.SASL }, [el(condition), text === undefined ? undefined : el('text', { 'xml:lang': 'en' }, [esc(text.slice(0, 200))])]),
    );
    if (++this.#failures >= MAX_AUTH_FAILURES) this.#ctx.streamError('policy-violation', 'Too many failed authentication attempts');
  }

  /**
   * Check credentials like the other fronts (core.clients.login: JWT, development names, the
   * backend's connect hook, the contact list): the password is the connection token. In development mode
   * without a connect hook any password is accepted for the user name. The token's user must be
   * the user name the client logs in as.
   */
  async #authenticate(user: string, password: string): Promise<Identity> {
    const dev = this.#ctx.core.auth.devMode && !this.#ctx.core.backend.has('connect');
    return this.#login({ token: dev ? undefined : password || undefined, user }, user);
  }

  /** Log in with `credentials` (core.clients.login), which must come out as `user`, and open the user's IM. */
  async #login(credentials: { token?: string; user?: string; verifiedUser?: string }, user: string): Promise<Identity> {
    const { core, im } = this.#ctx;
    const identity = await core.clients.login({ ...credentials, client: this.#ctx.id, transport: this.#ctx.transport });
    if (!identity || identity.user !== user) throw new HeraldError('HERALD_ERR_UNAUTHORIZED', 'The credentials are not those of this user');
    await im.authorize(identity);
    return identity;
  }

  /** XEP-0078 (legacy, pre-SASL): username, password (the token) and resource in one IQ; no stream restart. */
  async #legacyAuth(iq: XmlElement): Promise<void> {
    const id = iq.attr('id');
    const query = iq.child('query', NS.IQ_AUTH)!;
    if (iq.attr('type') === 'get') {
      this.#ctx.write(
        el('iq', { xmlns: NS.CLIENT, type: 'result', id }, [el('query', { xmlns: NS.IQ_AUTH }, [el('username'), el('password'), el('resource')])]),
      );
      return;
    }
    if (iq.attr('type') !== 'set') throw new StreamError('not-authorized', 'Authenticate first');
    const user = query.childText('username', NS.IQ_AUTH);
    const password = query.childText('password', NS.IQ_AUTH);
    const resource = query.childText('resource', NS.IQ_AUTH);
    const reply = (condition: 'not-acceptable' | 'not-authorized' | 'internal-server-error', text: string): void =>
      this.#ctx.write(stanzaErrorXml(iq, condition, text, { jid: undefined, domain: this.#ctx.domain }));
    if (!user || password === undefined || !resource) return reply('not-acceptable', 'username, password and resource are required');
    let identity: Identity;
    try {
      identity = await this.#authenticate(user, password);
    } catch (err) {
      const h = toHeraldError(err);
      this.#ctx.logInternal(h);
      if (++this.#failures >= MAX_AUTH_FAILURES) throw new StreamError('policy-violation', 'Too many failed authentication attempts');
      return reply(h.temporary ? 'internal-server-error' : 'not-authorized', h.code === 'HERALD_ERR_INTERNAL' ? 'Internal error' : h.message);
    }
    if (this.#ctx.closed) return;
    this.#ctx.identify(identity);
    this.#ctx.bind(resource);
    this.#ctx.write(el('iq', { xmlns: NS.CLIENT, type: 'result', id }, []));
  }
}
