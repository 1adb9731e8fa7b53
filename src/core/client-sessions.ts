/**
 * The client-session service: the one place where every front (native WebSocket and HTTP,
 * Nchan, STOMP, and any front added later) admits a client, logs it in, records it as opened,
 * identified and closed, and checks what it may read. Fronts keep their wire protocol; what a
 * client session *is* to the node lives here:
 *
 *  - `admit` decides whether a new client may open a session at all (the process-wide
 *    connection cap today). It runs before any work is spent on the client and returns a ticket
 *    that the session carries until it closes; further checks on where a client comes from
 *    (per-IP caps, Origin) belong in `admit`, checks on who it is (per-user caps, token expiry)
 *    in `login`.
 *  - `opened` / `identified` / `closed` keep the hub's list of connections and publish the
 *    diagnostics events (`herald:connect`, `herald:disconnect`, `herald:slow-consumer`, turned
 *    into metrics by the api layer) and the connect / disconnect webhooks, each exactly once
 *    per session.
 *  - `login` turns presented credentials into an identity (token verification, development
 *    names, the backend's connect hook, the contact list).
 *  - `assertCanRead` is the read check for subscribing to or reading a channel.
 */
import type { Identity } from './auth.js';
import { tokenAllowsChannel } from './auth.js';
import type { Backend, ConnectRequest } from './backend.js';
import type { ChannelPolicy, HeraldConfig } from './config.js';
import { HeraldError, type HeraldErrorCode } from './errors.js';
import { connectEvents, disconnectEvents, slowConsumerEvents } from './events.js';
import type { Connection, Hub } from './hub.js';
import { DisconnectCode } from '../protocol/codes.js';
import { AdmissionLimits } from './admission-limits.js';
import type { NetPolicy } from './net-policy.js';
import { TokenExpiry } from './token-expiry.js';

/** Where a new client comes from: what admission decides on. */
export interface AdmissionRequest {
  /**
   * The client's IP address (IPv4-mapped IPv6 prefix removed): the peer, or the address a
   * trusted proxy reports (NetPolicy.clientAddress).
   */
  readonly ip: string;
  /** The request's Origin header, when it has one (browsers send it). */
  readonly origin?: string;
  /** The request's Host header (an Origin equal to it is the node's own). */
  readonly host?: string;
  /** The front taking the client: `native`, `nchan`, `stomp`, … */
  readonly front: string;
  /** The transport label the connection will have (`websocket`, `sse`, `nchan-longpoll`, …). */
  readonly transport: string;
  /**
   * One request of a polling client (long-poll, interval-poll): it holds a connection slot
   * while it waits, but it is not a session of its own, so it fires no connect / disconnect
   * webhooks (the client's next request is another one).
   */
  readonly poll?: boolean;
}

/** A refused admission: the HTTP status and `{code, message}` come from the error; WebSocket fronts close with `closeCode`. */
export class AdmissionError extends HeraldError {
  override name = 'AdmissionError';
  /** Close code for a client refused after its WebSocket opened (3000–3999, see protocol/codes.ts). */
  readonly closeCode: number;
  constructor(code: HeraldErrorCode, message: string, closeCode: number) {
    super(code, message);
    this.closeCode = closeCode;
  }
}

const ADMITTED = 0;
const OPENED = 1;
const IDENTIFIED = 2;
const CLOSED = 3;

/**
 * An admitted client. The front passes it to `opened`, `identified` and `closed` (or `release`
 * when the session never opened); `closed` and `release` free its slot once, whichever comes
 * first.
 */
export class AdmissionTicket {
  /** The client's IP address. */
  readonly ip: string;
  /** @internal ADMITTED → OPENED → IDENTIFIED → CLOSED. */
  state = ADMITTED;
  /** @internal Whether connect / disconnect webhooks are sent for this session (not a poll). */
  readonly reported: boolean;
  /** @internal The user counted against `limits.maxConnectionsPerUser` for this session. */
  user: string | undefined;

  constructor(ip: string, reported: boolean) {
    this.ip = ip;
    this.reported = reported;
  }

  /** Whether the session has closed (or the ticket was released). */
  get closed(): boolean {
    return this.state === CLOSED;
  }
}

/** What the service needs to know about channels (HeraldCore provides it). */
export interface ChannelAccess {
  /** Throw HERALD_ERR_INVALID_CHANNEL unless the name is valid. */
  validateChannel(channel: unknown): asserts channel is string;
  /** The channel's policy. */
  policy(channel: string): ChannelPolicy;
  /** Whether reserved namespaces (e.g. IM inboxes) let `identity` read the channel. */
  reservedAllows(identity: Identity | undefined, channel: string): boolean;
}

/** Options of `new ClientSessions()`. */
export interface ClientSessionsOptions {
  readonly config: HeraldConfig;
  readonly nodeId: string;
  readonly hub: Hub;
  readonly backend: Backend;
  readonly channels: ChannelAccess;
  /** The node's network policy (Origin checks). */
  readonly net: NetPolicy;
}

/** The client sessions of one node. */
export class ClientSessions {
  readonly #config: HeraldConfig;
  readonly #nodeId: string;
  readonly #hub: Hub;
  readonly #backend: Backend;
  readonly #channels: ChannelAccess;
  readonly #net: NetPolicy;
  readonly #limits: AdmissionLimits;
  readonly #expiry = new TokenExpiry();
  /** Tickets not yet closed or released. */
  #admitted = 0;

  constructor(options: ClientSessionsOptions) {
    this.#config = options.config;
    this.#nodeId = options.nodeId;
    this.#hub = options.hub;
    this.#backend = options.backend;
    this.#channels = options.channels;
    this.#net = options.net;
    this.#limits = new AdmissionLimits(options.config.limits);
  }

  /** Clients admitted and not yet closed (sessions, and clients still on their way in). */
  get admitted(): number {
    return this.#admitted;
  }

  /**
   * Admit a new client before any work is spent on it. Throws AdmissionError when it may not
   * open a session: HERALD_ERR_FORBIDDEN (403, close 3503) for a browser Origin outside
   * `allowedOrigins` (and not the node's own); HERALD_ERR_UNAVAILABLE (503, close 3007) past
   * `limits.maxConnections`; HERALD_ERR_LIMIT_EXCEEDED (429, close 3007) past
   * `limits.maxConnectionsPerIp`; HERALD_ERR_TOO_MANY_REQUESTS (429, close 3007) past
   * `limits.connectionsPerIpPerSecond`. The ticket must reach `closed` or `release`.
   */
  admit(req: AdmissionRequest): AdmissionTicket {
    if (!this.#net.originAllowed(req.origin, req.host)) {
      throw new AdmissionError('HERALD_ERR_FORBIDDEN', 'Origin not allowed (see allowedOrigins)', DisconnectCode.FORBIDDEN);
    }
    if (this.#admitted >= this.#config.limits.maxConnections) {
      throw new AdmissionError('HERALD_ERR_UNAVAILABLE', 'Too many connections', DisconnectCode.TOO_MANY_CONNECTIONS);
    }
    const refused = this.#limits.admitIp(req.ip);
    if (refused === 'ip-connections')
      throw new AdmissionError('HERALD_ERR_LIMIT_EXCEEDED', 'Too many connections from this address', DisconnectCode.TOO_MANY_CONNECTIONS);
    if (refused === 'ip-rate')
      throw new AdmissionError('HERALD_ERR_TOO_MANY_REQUESTS', 'Too many new connections from this address', DisconnectCode.TOO_MANY_CONNECTIONS);
    this.#admitted++;
    return new AdmissionTicket(req.ip, req.poll !== true);
  }

  /**
   * Check credentials: a JWT verified locally, a development name, then the backend's connect
   * hook when configured (which may name the user); loads the user's contact list when that hook
   * is on. Resolves with the identity (undefined = anonymous); rejects with UnauthorizedError,
   * HERALD_ERR_TOKEN_REVOKED, HERALD_ERR_BACKEND_DENIED or (fail closed) a backend error.
   */
  async login(credentials: ConnectRequest): Promise<Identity | undefined> {
    const identity = await this.#backend.authenticate(credentials);
    if (identity && !this.#limits.userHasRoom(identity.user)) {
      throw new AdmissionError('HERALD_ERR_LIMIT_EXCEEDED', 'Too many connections of this user', DisconnectCode.TOO_MANY_CONNECTIONS);
    }
    return identity;
  }

  /** The session's connection is live: it joins the hub (kicks, stats, shutdown) and is counted as opened. */
  opened(conn: Connection, ticket: AdmissionTicket): void {
    if (ticket.state !== ADMITTED) return;
    ticket.state = OPENED;
    this.#hub.addConnection(conn);
    if (connectEvents.hasSubscribers) connectEvents.publish({ node: this.#nodeId, transport: conn.transport });
  }

  /**
   * The session knows who it is (login done; `conn.user` may be undefined for an anonymous
   * client): its user's session opens in the hub, and the connect webhook is queued (not for a
   * poll). `channels`: what it subscribed to at once (HTTP streams), for the webhook.
   */
  identified(conn: Connection, ticket: AdmissionTicket, channels?: readonly string[]): void {
    if (ticket.state !== OPENED) return;
    ticket.state = IDENTIFIED;
    this.#hub.identified(conn);
    if (ticket.reported && conn.user !== undefined) {
      ticket.user = conn.user;
      this.#limits.addUser(conn.user);
    }
    if (conn.identity?.exp !== undefined) this.#expiry.watch(conn, conn.identity.exp);
    if (ticket.reported) this.#backend.emit('connect', { client: conn.id, user: conn.user, transport: conn.transport, channels });
  }

  /**
   * The session ended: it leaves the hub, the disconnect webhook is queued when the connect one
   * was, `herald:disconnect` is published when it had opened, and its admission slot is freed.
   * Idempotent. `code`: the close code, when the transport has one.
   */
  closed(conn: Connection, ticket: AdmissionTicket, code: number | undefined, channels: readonly string[]): void {
    const state = ticket.state;
    if (state === CLOSED) return;
    ticket.state = CLOSED;
    this.#admitted--;
    this.#limits.releaseIp(ticket.ip);
    if (state === ADMITTED) return;
    this.#expiry.unwatch(conn);
    if (ticket.user !== undefined) this.#limits.removeUser(ticket.user);
    this.#hub.removeConnection(conn);
    // Webhook payloads are JSON: an undefined `code` or `channels` is left out.
    if (state === IDENTIFIED && ticket.reported) {
      this.#backend.emit('disconnect', { client: conn.id, user: conn.user, transport: conn.transport, code, channels });
    }
    if (disconnectEvents.hasSubscribers) disconnectEvents.publish({ node: this.#nodeId, transport: conn.transport, code });
  }

  /** Free the slot of a client that never opened a session (refused or failed on its way in). Idempotent. */
  release(ticket: AdmissionTicket): void {
    if (ticket.state !== ADMITTED) return;
    ticket.state = CLOSED;
    this.#admitted--;
    this.#limits.releaseIp(ticket.ip);
  }

  /**
   * The session presented a newer token (the native `refresh` command) for the same user: its
   * expiry follows the new token's `exp` (none: it no longer expires). `conn.identity` must
   * already be the new identity.
   */
  refreshed(conn: Connection, ticket: AdmissionTicket): void {
    if (ticket.state !== IDENTIFIED) return;
    if (conn.identity?.exp !== undefined) this.#expiry.watch(conn, conn.identity.exp);
    else this.#expiry.unwatch(conn);
  }

  /** Stop the token-expiry timer (node shutdown). */
  close(): void {
    this.#expiry.stop();
  }

  /** A session was cut for not reading fast enough (its transport already dropped it). */
  slowConsumer(conn: Connection): void {
    if (slowConsumerEvents.hasSubscribers) slowConsumerEvents.publish({ node: this.#nodeId, transport: conn.transport });
  }

  /**
   * Throw unless a client with `identity` may read (subscribe to, read the history of) a
   * channel: HERALD_ERR_INVALID_CHANNEL for a bad name, HERALD_ERR_UNAUTHORIZED when the
   * channel's policy needs a token and there is none, HERALD_ERR_FORBIDDEN when the token's
   * `channels` claim does not grant it or it is in a reserved namespace the client may not read.
   */
  assertCanRead(identity: Identity | undefined, channel: string): void {
    const channels: ChannelAccess = this.#channels;
    channels.validateChannel(channel);
    if (channels.policy(channel).requireToken && !identity) throw new HeraldError('HERALD_ERR_UNAUTHORIZED', 'This channel needs an authenticated connection');
    if (!tokenAllowsChannel(identity, channel)) throw new HeraldError('HERALD_ERR_FORBIDDEN', 'The token does not grant this channel');
    if (!channels.reservedAllows(identity, channel)) throw new HeraldError('HERALD_ERR_FORBIDDEN', 'This channel is reserved');
  }
}
