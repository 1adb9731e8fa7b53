/**
 * One native-protocol WebSocket connection: connect handshake, subscriptions with recovery,
 * command dispatch, delivery of shared pre-framed publications, and the disconnect codes.
 */
import { isUtf8 } from 'node:buffer';
import type { WebSocket } from 'ws';
import type { Identity } from '../../core/auth.js';
import { connectCloseCode } from '../../core/backend.js';
import type { ChannelEvent } from '../../core/broker.js';
import type { AdmissionTicket } from '../../core/client-sessions.js';
import type { HeraldCore } from '../../core/core.js';
import { HeraldError, logFailure, toHeraldError } from '../../core/errors.js';
import { type CommandErrorEvent, commandErrorEvents } from '../../core/events.js';
import type { Connection, Subscriber } from '../../core/hub.js';
import type { Outgoing, Publication } from '../../core/publication.js';
import { SubscriptionState } from '../../core/subscription.js';
import { historyWithin } from '../../core/history-budget.js';
import { DisconnectCode, PROTOCOL_VERSION } from '../../protocol/codes.js';
import { COMMAND_SCHEMAS, decodeCommand, encodeError, encodePush, validateParams } from '../../protocol/frames.js';
import { bufferedBytes, textFrame, writeOrCut } from '../../transports/websocket.js';
import { type CommandContext, type CommandSpec, positionParam, RawJson, resultJson } from './commands.js';
import { pubFrame, pubFrameBytes } from './encode.js';

/** The pre-built WebSocket frame of a publication, shared by every native WS subscriber. */
export const wsPubFrame = (pub: Publication): Buffer => textFrame(pubFrame(pub));

/** Where a socket points back to its session, so socket listeners are shared functions. */
const SESSION = Symbol('herald.session');
type SessionSocket = WebSocket & { [SESSION]: WsSession };

function onSocketMessage(this: SessionSocket, data: Buffer, isBinary: boolean): void {
  this[SESSION].onMessage(data, isBinary);
}
function onSocketClose(this: SessionSocket, code: number): void {
  this[SESSION].onClose(code);
}
function ignoreError(): void {
  // 'error' is always followed by 'close', where the session cleans up.
}

/** What `#connecting` holds once connect succeeded: later commands need not wait. */
const CONNECTED: Promise<void> = Promise.resolve();

/** Shared per-front state a session needs. */
export interface SessionEnv {
  readonly core: HeraldCore;
  readonly commands: ReadonlyMap<string, CommandSpec<never>>;
  /** Called once when the session has closed. */
  readonly onClose: (session: WsSession) => void;
  /** Called when the session authenticated (connect succeeded). */
  readonly onConnect: (session: WsSession) => void;
}

/** A native WebSocket session. */
export class WsSession implements Connection, Subscriber, CommandContext {
  readonly id: string;
  readonly transport = 'websocket';
  readonly core: HeraldCore;
  identity: Identity | undefined;
  /** Time the socket opened, ms (for the connect timeout). */
  readonly openedAt = Date.now();
  connected = false;
  readonly #ws: WebSocket;
  readonly #env: SessionEnv;
  readonly #ticket: AdmissionTicket;
  readonly #subs = new Map<string, SubscriptionState>();
  /** Subscribes past the limit check and still waiting for the backend's answer (they count against the limit). */
  #subscribing = 0;
  #closed = false;
  /** The connect command in progress (or done); later commands wait for it. */
  #connecting: Promise<void> | undefined;
  #windowStart = 0;
  #windowCount = 0;

  constructor(id: string, ws: WebSocket, env: SessionEnv, ticket: AdmissionTicket) {
    this.id = id;
    this.#ws = ws;
    this.#env = env;
    this.#ticket = ticket;
    this.core = env.core;
    (ws as SessionSocket)[SESSION] = this;
    ws.on('message', onSocketMessage as (this: WebSocket, data: unknown, isBinary: boolean) => void);
    ws.on('close', onSocketClose as (this: WebSocket, code: number) => void);
    ws.on('error', ignoreError);
    this.core.clients.opened(this, ticket);
  }

  get user(): string | undefined {
    return this.identity?.user;
  }

  get client(): string {
    return this.id;
  }

  /** Channels this session is subscribed to. */
  get channels(): string[] {
    return [...this.#subs.keys()];
  }

  /** Send one frame to this client. */
  push(frame: string): void {
    if (!this.#closed) this.#write(textFrame(frame));
  }

  deliver(out: Outgoing): void {
    const st = this.#subs.get(out.pub.channel);
    if (!st || this.#closed || !st.accept(out)) return;
    this.#write(out.encoded(wsPubFrame));
  }

  channelDeleted(channel: string): void {
    if (this.#subs.delete(channel)) this.push(encodePush('unsubscribed', { channel, reason: 'deleted' }));
  }

  event(event: ChannelEvent): void {
    if (this.#subs.has(event.channel)) this.push(encodePush(event.type, { channel: event.channel, user: event.user, client: event.client }));
  }

  disconnect(code: number, reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#ws.close(code, reason);
  }

  #write(frame: Buffer): void {
    if (!writeOrCut(this.#ws, frame, this.core.config.limits.maxOutboundBytes)) {
      this.#closed = true;
      this.core.clients.slowConsumer(this);
    }
  }

  /** @internal Inbound frame (called by the shared socket listener). */
  onMessage(data: Buffer, isBinary: boolean): void {
    if (this.#closed) return;
    if (!this.#allowCommand()) {
      this.disconnect(DisconnectCode.TOO_MANY_REQUESTS, 'too many commands');
      return;
    }
    // ws checks text frames (1007); a binary frame's bytes are ours to check, never rewritten.
    if (isBinary && !isUtf8(data)) {
      this.disconnect(DisconnectCode.BAD_REQUEST, 'binary frame is not valid UTF-8');
      return;
    }
    const decoded = decodeCommand(data.toString());
    if ('kind' in decoded) {
      // Too deep is a well-formed command whose data is refused: answer it and keep the session.
      if (decoded.kind === 'depth') this.#replyError(decoded.id, new HeraldError('HERALD_ERR_JSON_TOO_DEEP', decoded.message), 'other');
      else this.disconnect(DisconnectCode.BAD_REQUEST, decoded.message.slice(0, 100));
      return;
    }
    this.#run(decoded.id, decoded.cmd, decoded.params).catch((err) => this.#replyError(decoded.id, err, decoded.cmd));
  }

  /** Fixed one-second window rate limit; cheap and per connection. */
  #allowCommand(): boolean {
    const now = Date.now();
    if (now - this.#windowStart >= 1000) {
      this.#windowStart = now;
      this.#windowCount = 0;
    }
    return ++this.#windowCount <= this.core.config.limits.commandsPerSecond;
  }

  async #run(id: number | undefined, cmd: string, params: Record<string, unknown>): Promise<void> {
    if (cmd === 'connect') {
      if (this.#connecting) throw new HeraldError('HERALD_ERR_BAD_REQUEST', 'Already connected');
      const connecting = this.#connect(id, params).finally(() => {
        // A connected session keeps a shared settled promise, not its own.
        this.#connecting = this.connected ? CONNECTED : undefined;
      });
      this.#connecting = connecting;
      return connecting;
    }
    // Clients may pipeline commands behind connect without waiting for its reply.
    if (!this.connected && this.#connecting) await this.#connecting.catch(() => undefined);
    if (!this.connected) throw new HeraldError('HERALD_ERR_NOT_CONNECTED', 'Send connect first');
    if (cmd === 'subscribe') return this.#subscribe(id, params);
    if (cmd === 'refresh') return this.#refresh(id, params);
    if (cmd === 'unsubscribe') {
      const p = this.#params(COMMAND_SCHEMAS.unsubscribe, params);
      if (!this.#subs.delete(p.channel)) throw new HeraldError('HERALD_ERR_NOT_SUBSCRIBED');
      this.core.unsubscribe(this, p.channel);
      this.#leave(p.channel);
      this.core.backend.emit('unsubscribe', { client: this.id, user: this.user, channel: p.channel });
      return this.#reply(id, {});
    }
    const spec = this.#env.commands.get(cmd);
    if (!spec) throw new HeraldError('HERALD_ERR_UNKNOWN_COMMAND', `Unknown command: ${cmd.slice(0, 64)}`);
    const result = await spec.handler(this, this.#params(spec.schema, params) as never);
    this.#reply(id, result);
  }

  #params<T>(schema: import('zod').ZodType<T>, params: unknown): T {
    const r = validateParams(schema, params);
    if (!r.ok) throw new HeraldError('HERALD_ERR_BAD_REQUEST', r.message);
    return r.value;
  }

  async #connect(id: number | undefined, params: Record<string, unknown>): Promise<void> {
    if (this.connected) throw new HeraldError('HERALD_ERR_BAD_REQUEST', 'Already connected');
    const p = this.#params(COMMAND_SCHEMAS.connect, params);
    if (p.version !== undefined && p.version !== PROTOCOL_VERSION) {
      this.disconnect(DisconnectCode.UNSUPPORTED_PROTOCOL, `protocol version ${PROTOCOL_VERSION} only`);
      return;
    }
    try {
      this.identity = await this.core.clients.login({ token: p.token, user: p.user, client: this.id, transport: this.transport });
    } catch (err) {
      const e = toHeraldError(err);
      this.#replyError(id, e, 'connect');
      this.disconnect(connectCloseCode(e), e.message.slice(0, 100));
      return;
    }
    if (this.#closed) return;
    this.connected = true;
    this.core.clients.identified(this, this.#ticket);
    this.#env.onConnect(this);
    this.#reply(id, {
      client: this.id,
      version: PROTOCOL_VERSION,
      user: this.identity?.user,
      ping: this.core.config.timing.pingIntervalMs,
    });
  }

  /**
   * A newer token for the same user: verified (signature, expiry, revocation) and kept, so the
   * session is closed at the new `exp` instead of the old one. A token of another user, or a
   * anonymous session, gets an error reply and keeps its old expiry.
   */
  async #refresh(id: number | undefined, params: Record<string, unknown>): Promise<void> {
    const p = this.#params(COMMAND_SCHEMAS.refresh, params);
    if (this.identity === undefined) throw new HeraldError('HERALD_ERR_BAD_REQUEST', 'An anonymous session has no token to refresh');
    const identity = await this.core.auth.verify(p.token);
    if (identity.user !== this.identity.user) throw new HeraldError('HERALD_ERR_FORBIDDEN', 'The new token names another user');
    if (this.#closed) return;
    this.identity = identity;
    this.core.clients.refreshed(this, this.#ticket);
    this.#reply(id, { exp: identity.exp });
  }

  async #subscribe(id: number | undefined, params: Record<string, unknown>): Promise<void> {
    const p = this.#params(COMMAND_SCHEMAS.subscribe, params);
    this.core.clients.assertCanRead(this.identity, p.channel);
    if (this.#subs.has(p.channel)) throw new HeraldError('HERALD_ERR_ALREADY_SUBSCRIBED');
    // Pipelined subscribes run concurrently: those still being authorized hold a place too.
    if (this.#subs.size + this.#subscribing >= this.core.config.limits.maxChannelsPerConnection) {
      throw new HeraldError('HERALD_ERR_LIMIT_EXCEEDED', `At most ${this.core.config.limits.maxChannelsPerConnection} subscriptions per connection`);
    }
    this.#subscribing++;
    try {
      await this.core.backend.authorizeSubscribe(this.identity, this.id, p.channel);
    } finally {
      this.#subscribing--;
    }
    if (this.#subs.has(p.channel)) throw new HeraldError('HERALD_ERR_ALREADY_SUBSCRIBED');
    const since = positionParam(p.since);
    const st = new SubscriptionState(p.channel);
    this.#subs.set(p.channel, st);
    let res;
    try {
      res = await this.core.subscribe(this, p.channel, { since, last: p.last });
    } catch (err) {
      this.#subs.delete(p.channel);
      throw err;
    }
    if (this.#closed || this.#subs.get(p.channel) !== st) {
      this.core.unsubscribe(this, p.channel);
      return;
    }
    // The answer fits beside what still waits unsent on the socket (the answers of earlier
    // subscribes, say), so that no run of subscribes cuts its own reader as a slow consumer; the
    // first publication is kept whatever its size only when nothing waits.
    const waiting = bufferedBytes(this.#ws);
    res = historyWithin(res, since !== undefined, this.core.config.limits.maxOutboundBytes - waiting, waiting === 0, pubFrameBytes).result;
    const pubs = res.publications.map(pubFrame).join(',');
    const result =
      `{"channel":${JSON.stringify(p.channel)},"epoch":"${res.position.epoch}","offset":${res.position.offset},` +
      `"recovered":${res.recovered},"publications":[${pubs}]}`;
    this.#write(textFrame(resultJson(id, new RawJson(result))));
    for (const out of st.settle(res.position)) this.#write(out.encoded(wsPubFrame));
    this.core.backend.emit('subscribe', { client: this.id, user: this.user, channel: p.channel });
    if (this.core.policy(p.channel).joinLeave) {
      this.core.channelEvent({ type: 'join', channel: p.channel, user: this.user, client: this.id }).catch(() => undefined);
    }
  }

  #leave(channel: string): void {
    if (this.core.policy(channel).joinLeave) {
      this.core.channelEvent({ type: 'leave', channel, user: this.user, client: this.id }).catch(() => undefined);
    }
  }

  #reply(id: number | undefined, result: unknown): void {
    if (!this.#closed) this.#write(textFrame(resultJson(id, result)));
  }

  #replyError(id: number | undefined, err: unknown, cmd: string): void {
    const e = toHeraldError(err);
    const known = cmd === 'connect' || cmd === 'subscribe' || cmd === 'unsubscribe' || this.#env.commands.has(cmd);
    const command = known ? cmd : 'other';
    logFailure(this.core.logger, e, { command, transport: this.transport, client: this.id });
    if (commandErrorEvents.hasSubscribers) {
      commandErrorEvents.publish({
        node: this.core.nodeId,
        command,
        code: e.code,
        transport: this.transport,
      } satisfies CommandErrorEvent);
    }
    if (!this.#closed) this.#write(textFrame(encodeError(id, { code: e.wire, name: e.code, message: e.message, temporary: e.temporary })));
  }

  /** @internal Socket closed (called by the shared socket listener). */
  onClose(code: number): void {
    this.#closed = true;
    const channels = [...this.#subs.keys()];
    for (const channel of channels) {
      this.core.unsubscribe(this, channel);
      this.#leave(channel);
    }
    this.#subs.clear();
    this.core.clients.closed(this, this.#ticket, code, channels);
    this.#env.onClose(this);
  }
}
