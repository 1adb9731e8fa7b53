/**
 * One STOMP connection over WebSocket: CONNECT handshake and authentication, frame dispatch in
 * arrival order, subscriptions, SEND, ACK/NACK, transactions, receipts, heart-beats, and ERROR
 * followed by close for anything malformed or refused.
 *
 * Like the native session it holds no per-connection closures: the socket's listeners are
 * shared functions that find the session through a symbol on the socket.
 */
import type { WebSocket } from 'ws';
import type { Identity } from '../../core/auth.js';
import { connectCloseCode } from '../../core/backend.js';
import type { AdmissionTicket } from '../../core/client-sessions.js';
import type { HeraldCore } from '../../core/core.js';
import { HeraldError, toHeraldError } from '../../core/errors.js';
import { historyWithin } from '../../core/history-budget.js';
import type { Connection } from '../../core/hub.js';
import { jsonInput, Outgoing } from '../../core/publication.js';
import { MAX_JSON_DEPTH, parsePeerJson } from '../../protocol/json.js';
import { DisconnectCode } from '../../protocol/codes.js';
import { bufferedBytes, textFrame, whenDrained, writeOrCut } from '../../transports/websocket.js';
import { encodeFrame, parseFrames, type ParseLimits, type StompFrame } from './codec.js';
import { type Destination, resolveDestination } from './destinations.js';
import type { QueueRegistry } from './queue.js';
import { type AckMode, ChannelSubscription, parseAckMode, QueueSubscription, type SubscriptionOwner, wsFrame } from './subscriptions.js';

/** STOMP versions spoken, best first. */
export const STOMP_VERSIONS = ['1.2', '1.1', '1.0'] as const;
/** The `server` header of CONNECTED. */
const SERVER_NAME = 'Herald';
/** Frames that may wait behind an async one (CONNECT, SUBSCRIBE, SEND) before the client is cut. */
const MAX_QUEUED_FRAMES = 1_000;
/** Open transactions per connection, and frames per transaction. */
const MAX_TRANSACTIONS = 16;
const MAX_TRANSACTION_FRAMES = 1_000;
/** Most unsent bytes on a connection while it still takes queue messages (see QueueSubscription). */
const QUEUE_WINDOW_BYTES = 65_536;
/** WebSocket close code after DISCONNECT. */
const NORMAL_CLOSURE = 1000;
/** Room kept in a replay's byte budget for the `herald-history-omitted: N` header. */
const OMITTED_HEADER_BYTES = 64;

/** Origin of the session clock. */
const CLOCK_BASE = Date.now();
/** Milliseconds since CLOCK_BASE. */
function clock(): number {
  return Date.now() - CLOCK_BASE;
}

/** A heart-beat: one EOL in a text frame, shared by every session. */
const HEARTBEAT_FRAME = textFrame('\n');

/** What every session shares (one object per front). */
export interface StompEnv {
  readonly core: HeraldCore;
  readonly queues: QueueRegistry;
  readonly limits: ParseLimits;
  /** Heart-beat interval the server offers and asks for, ms (0 = none). */
  readonly heartbeatMs: number;
  /** Acknowledge a user's IM inbox up to a seq; absent = inbox acks are dropped. */
  readonly inboxAck?: (user: string, seq: number) => Promise<unknown>;
  /** The session closed (once). */
  readonly onClose: (session: StompSession) => void;
}

const SESSION = Symbol('herald.stomp.session');
type SessionSocket = WebSocket & { [SESSION]: StompSession };

function onSocketMessage(this: SessionSocket, data: Buffer): void {
  this[SESSION].onMessage(data);
}
function onSocketClose(this: SessionSocket, code: number): void {
  this[SESSION].onClose(code);
}
function ignoreError(): void {
  // 'error' is always followed by 'close', where the session cleans up.
}

type Subscription = ChannelSubscription | QueueSubscription;

/** A STOMP session. */
export class StompSession implements Connection, SubscriptionOwner {
  readonly id: string;
  readonly transport = 'stomp';
  identity: Identity | undefined;
  /** Negotiated STOMP version (after CONNECT). */
  version: string | undefined;
  readonly #ws: WebSocket;
  readonly #env: StompEnv;
  readonly #core: HeraldCore;
  readonly #ticket: AdmissionTicket;
  readonly #subs = new Map<string, Subscription>();
  #closed = false;
  /** Frames waiting while an async frame is handled (allocated on first need). */
  #queue: StompFrame[] | undefined;
  #busy = false;
  #transactions: Map<string, StompFrame[]> | undefined;
  /**
   * Liveness: writes and reads only raise a flag (no clock read per write on fan-out); the
   * heart-beat wheel turns the flags into times, in ms since CLOCK_BASE (small integers, so
   * V8 stores them unboxed for the first 12 days of a process).
   */
  #read = true;
  #wrote = true;
  #lastIn = clock();
  #lastOut = clock();
  readonly #openedAt = clock();
  /** Negotiated heart-beat intervals, ms (0 = none). */
  #sendEvery = 0;
  #recvEvery = 0;
  #windowStart = 0;
  #windowCount = 0;

  constructor(id: string, ws: WebSocket, env: StompEnv, ticket: AdmissionTicket) {
    this.id = id;
    this.#ws = ws;
    this.#env = env;
    this.#core = env.core;
    this.#ticket = ticket;
    (ws as SessionSocket)[SESSION] = this;
    ws.on('message', onSocketMessage as (this: WebSocket, data: unknown) => void);
    ws.once('close', onSocketClose as (this: WebSocket, code: number) => void);
    ws.on('error', ignoreError);
    this.#core.clients.opened(this, ticket);
  }

  get user(): string | undefined {
    return this.identity?.user;
  }

  get connected(): boolean {
    return this.version !== undefined;
  }

  get open(): boolean {
    return !this.#closed;
  }

  /** Subscriptions held. */
  get subscriptionCount(): number {
    return this.#subs.size;
  }

  write(frame: Buffer): void {
    if (this.#closed) return;
    this.#wrote = true;
    if (!writeOrCut(this.#ws, frame, this.#core.config.limits.maxOutboundBytes)) {
      this.#closed = true;
      this.#core.clients.slowConsumer(this);
    }
  }

  bufferedBytes(): number {
    return this.#closed ? 0 : bufferedBytes(this.#ws);
  }

  onDrain(fn: () => void): void {
    if (!this.#closed) whenDrained(this.#ws, fn);
  }

  /**
   * Close from the server side (shutdown, kick, revoked token): a connected client first gets an
   * ERROR frame with the reason, so STOMP libraries report why.
   */
  disconnect(code: number, reason: string): void {
    if (this.#closed) return;
    if (this.connected && code !== NORMAL_CLOSURE)
      this.write(
        wsFrame(
          encodeFrame('ERROR', [
            ['message', reason.slice(0, 200)],
            ['herald-close-code', String(code)],
          ]),
        ),
      );
    this.#close(code, reason);
  }

  #close(code: number, reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#ws.close(code, reason);
  }

  /**
   * Periodic visit by the heart-beat wheel, every `periodMs` (at most half the heart-beat
   * interval): CONNECT timeout, heart-beats out, silence in.
   */
  tick(periodMs: number): void {
    if (this.#closed) return;
    const now = clock();
    if (!this.connected) {
      if (now - this.#openedAt > this.#core.config.timing.connectTimeoutMs) this.#error('CONNECT expected', undefined, DisconnectCode.CONNECT_TIMEOUT);
      return;
    }
    // A flag raised since the last visit means activity within the last period: date it now.
    if (this.#read) this.#lastIn = now;
    if (this.#wrote) this.#lastOut = now;
    this.#read = this.#wrote = false;
    if (this.#recvEvery > 0 && now - this.#lastIn > this.#recvEvery * 2) {
      this.#error('Heart-beat timeout', `Nothing received for ${now - this.#lastIn} ms (heart-beat ${this.#recvEvery} ms)`, DisconnectCode.NO_PONG);
      return;
    }
    // The next visit is one period away: send now if waiting for it could overrun the interval.
    if (this.#sendEvery > 0 && now - this.#lastOut >= this.#sendEvery - periodMs) {
      this.write(HEARTBEAT_FRAME);
      this.#wrote = false;
      this.#lastOut = now;
    }
  }

  /** @internal A WebSocket message (called by the shared socket listener). */
  onMessage(data: Buffer): void {
    if (this.#closed) return;
    this.#read = true;
    const parsed = parseFrames(data, this.#env.limits);
    for (const frame of parsed.frames) {
      if (!this.#allowFrame()) {
        this.#error('Too many frames', `More than ${this.#core.config.limits.commandsPerSecond} frames per second`, DisconnectCode.TOO_MANY_REQUESTS);
        return;
      }
      (this.#queue ??= []).push(frame);
    }
    if (this.#queue && this.#queue.length > MAX_QUEUED_FRAMES) {
      this.#error('Too many frames in flight', undefined, DisconnectCode.TOO_MANY_REQUESTS);
      return;
    }
    this.#drain();
    // Frames before a malformed one are handled; the error comes after them.
    if (parsed.error !== undefined) {
      if (this.#busy) (this.#queue ??= []).push({ command: '', headers: new Map([['message', parsed.error]]), body: Buffer.alloc(0) });
      else this.#error(parsed.error, `Malformed frame: ${parsed.error}`);
    }
  }

  #allowFrame(): boolean {
    const now = clock();
    if (now - this.#windowStart >= 1000) {
      this.#windowStart = now;
      this.#windowCount = 0;
    }
    return ++this.#windowCount <= this.#core.config.limits.commandsPerSecond;
  }

  /** Handle queued frames in order; an async handler holds the rest until it settles. */
  #drain(): void {
    const queue = this.#queue;
    if (!queue) return;
    while (!this.#busy && !this.#closed && queue.length > 0) {
      const frame = queue.shift()!;
      if (frame.command === '') {
        const error = frame.headers.get('message') ?? 'Malformed frame';
        this.#error(error, `Malformed frame: ${error}`);
        return;
      }
      let pending: Promise<void> | void;
      try {
        pending = this.#handle(frame);
      } catch (err) {
        this.#fail(err, frame);
        return;
      }
      if (pending) {
        this.#busy = true;
        pending.then(
          () => {
            this.#busy = false;
            this.#drain();
          },
          (err: unknown) => {
            this.#busy = false;
            this.#fail(err, frame);
          },
        );
      }
    }
    // Idle sessions keep no queue.
    if (queue.length === 0 && this.#queue === queue) this.#queue = undefined;
  }

  #handle(frame: StompFrame): Promise<void> | void {
    const { command } = frame;
    if (command === 'CONNECT' || command === 'STOMP') return this.#connect(frame);
    if (!this.connected) throw new HeraldError('HERALD_ERR_NOT_CONNECTED', 'Send CONNECT first');
    const tx = frame.headers.get('transaction');
    if (tx !== undefined && (command === 'SEND' || command === 'ACK' || command === 'NACK')) {
      const frames = this.#transactions?.get(tx);
      if (!frames) throw new HeraldError('HERALD_ERR_BAD_REQUEST', `Unknown transaction: ${tx.slice(0, 64)}`);
      if (frames.length >= MAX_TRANSACTION_FRAMES) throw new HeraldError('HERALD_ERR_LIMIT_EXCEEDED', 'Transaction too large');
      frames.push(frame);
      return this.#receipt(frame);
    }
    switch (command) {
      case 'SEND':
        return this.#afterReceipt(frame, this.#send(frame));
      case 'SUBSCRIBE':
        return this.#afterReceipt(frame, this.#subscribe(frame));
      case 'UNSUBSCRIBE':
        this.#unsubscribe(frame);
        return this.#receipt(frame);
      case 'ACK':
      case 'NACK':
        this.#acknowledge(frame, command === 'NACK');
        return this.#receipt(frame);
      case 'BEGIN':
        this.#begin(frame);
        return this.#receipt(frame);
      case 'COMMIT':
        return this.#afterReceipt(frame, this.#commit(frame));
      case 'ABORT':
        this.#transactions?.delete(required(frame, 'transaction'));
        return this.#receipt(frame);
      case 'DISCONNECT':
        this.#receipt(frame);
        this.#close(NORMAL_CLOSURE, 'disconnect');
        return;
      default:
        throw new HeraldError('HERALD_ERR_UNKNOWN_COMMAND', `Unexpected command: ${command}`);
    }
  }

  #afterReceipt(frame: StompFrame, work: Promise<void> | void): Promise<void> | void {
    if (!work) return this.#receipt(frame);
    return work.then(() => this.#receipt(frame));
  }

  #receipt(frame: StompFrame): void {
    const id = frame.headers.get('receipt');
    if (id !== undefined) this.write(wsFrame(encodeFrame('RECEIPT', [['receipt-id', id]])));
  }

  // ---- CONNECT -------------------------------------------------------------------------------

  async #connect(frame: StompFrame): Promise<void> {
    if (this.connected) throw new HeraldError('HERALD_ERR_BAD_REQUEST', 'Already connected');
    const h = frame.headers;
    const accepted = (h.get('accept-version') ?? '1.0').split(',').map((v) => v.trim());
    const version = STOMP_VERSIONS.find((v) => accepted.includes(v));
    if (!version) {
      this.#error('Unsupported STOMP version', `Supported protocol versions are ${STOMP_VERSIONS.join(' ')}`, DisconnectCode.UNSUPPORTED_PROTOCOL, [
        ['version', STOMP_VERSIONS.join(',')],
      ]);
      return;
    }
    const hb = /^\s*(\d{1,9})\s*,\s*(\d{1,9})\s*$/.exec(h.get('heart-beat') ?? '0,0');
    if (!hb) throw new HeraldError('HERALD_ERR_BAD_REQUEST', 'Invalid heart-beat header: expected "<cx>,<cy>"');
    const identity = await this.#authenticate(h.get('login'), h.get('passcode'));
    if (this.#closed) return;
    const server = this.#env.heartbeatMs;
    const cx = Number(hb[1]);
    const cy = Number(hb[2]);
    // STOMP 1.2 §Heart-beating: each side uses the larger of what one offers and the other wants.
    this.#sendEvery = server > 0 && cy > 0 ? Math.max(server, cy) : 0;
    this.#recvEvery = server > 0 && cx > 0 ? Math.max(server, cx) : 0;
    this.identity = identity;
    this.version = version;
    this.#read = this.#wrote = true;
    this.#core.clients.identified(this, this.#ticket);
    this.write(
      wsFrame(
        encodeFrame('CONNECTED', [
          ['version', version],
          ['heart-beat', `${server},${server}`],
          ['session', this.id],
          ['server', SERVER_NAME],
          ...(identity ? ([['user-name', identity.user]] as const) : []),
        ]),
      ),
    );
  }

  /**
   * Credentials, checked like native clients (core.clients.login: local JWT verification,
   * development names, then the backend's connect hook when configured): `passcode` is the
   * token, `login` the user name. In development mode without a connect hook `login` is the
   * user name and `passcode` is ignored (stomp.js clients often send `guest`). No credentials at
   * all = an anonymous connection.
   */
  async #authenticate(login: string | undefined, passcode: string | undefined): Promise<Identity | undefined> {
    const backend = this.#core.backend;
    const devLogin = this.#core.auth.devMode && !!login && !backend.has('connect');
    return this.#core.clients.login({
      token: devLogin ? undefined : passcode || undefined,
      user: login || undefined,
      client: this.id,
      transport: this.transport,
    });
  }

  // ---- SEND ----------------------------------------------------------------------------------

  #send(frame: StompFrame): Promise<void> | void {
    const dest = this.#destination(frame);
    const contentType = frame.headers.get('content-type');
    if (dest.kind === 'queue') {
      this.#assertCanUseQueue(dest.queue);
      if (frame.body.length > this.#core.config.limits.maxMessageBytes) {
        throw new HeraldError('HERALD_ERR_PAYLOAD_TOO_LARGE', `Message larger than ${this.#core.config.limits.maxMessageBytes} bytes`);
      }
      this.#env.queues.get(dest.queue).push(frame.body, contentType);
      return;
    }
    if (dest.kind === 'inbox') throw new HeraldError('HERALD_ERR_FORBIDDEN', 'The inbox is read-only over STOMP');
    this.#core.clients.assertCanRead(this.identity, dest.channel);
    if (!this.#core.policy(dest.channel).allowPublish) throw new HeraldError('HERALD_ERR_FORBIDDEN', 'Clients may not publish to this channel');
    const info = { user: this.user, client: this.id };
    if (this.#core.backend.has('publish')) return this.#proxiedSend(dest.channel, frame.body, contentType, info);
    return this.#core.publish(dest.channel, { payload: frame.body, contentType, info }, 'stomp').then(() => undefined);
  }

  /**
   * SEND through the backend's publish proxy, which judges JSON values: a JSON body goes as its
   * value, any other body as its text; the answer's data is published as JSON, or as text with the
   * SEND's content type when the body was text and the answer a string.
   */
  async #proxiedSend(channel: string, body: Buffer, contentType: string | undefined, info: { user?: string; client: string }): Promise<void> {
    const json = contentType !== undefined && /^application\/json\b/.test(contentType);
    let data: unknown;
    if (json) {
      const parsed = parsePeerJson(body.toString('utf8'));
      if (!parsed.ok && parsed.reason === 'depth') throw new HeraldError('HERALD_ERR_JSON_TOO_DEEP', `SEND body nests deeper than ${MAX_JSON_DEPTH} levels`);
      if (!parsed.ok) throw new HeraldError('HERALD_ERR_MALFORMED_JSON', 'SEND body is not valid JSON');
      data = parsed.value;
    } else {
      data = body.toString('utf8');
    }
    const out = await this.#core.backend.proxyPublish(this.identity, this.id, channel, data);
    const input = !json && typeof out === 'string' ? { payload: Buffer.from(out), contentType, info } : { ...jsonInput(out === undefined ? null : out), info };
    await this.#core.publish(channel, input, 'stomp');
  }

  // ---- SUBSCRIBE / UNSUBSCRIBE ---------------------------------------------------------------

  #subscribe(frame: StompFrame): Promise<void> | void {
    const destination = required(frame, 'destination');
    // STOMP 1.0 made `id` optional; the destination then names the subscription.
    const id = frame.headers.get('id') ?? (this.version === '1.0' ? destination : required(frame, 'id'));
    const ack = parseAckMode(frame.headers.get('ack'));
    if (!ack) throw new HeraldError('HERALD_ERR_BAD_REQUEST', 'ack must be auto, client or client-individual');
    if (this.#subs.has(id)) throw new HeraldError('HERALD_ERR_ALREADY_SUBSCRIBED', `Subscription id already in use: ${id.slice(0, 64)}`);
    const max = this.#core.config.limits.maxChannelsPerConnection;
    if (this.#subs.size >= max) throw new HeraldError('HERALD_ERR_LIMIT_EXCEEDED', `At most ${max} subscriptions per connection`);
    const dest = this.#destination(frame);
    if (dest.kind === 'queue') {
      const prefetch = nonNegativeInt(frame.headers.get('prefetch-count'), 'prefetch-count');
      this.#assertCanUseQueue(dest.queue);
      return this.#subscribeQueue(id, destination, dest.queue, ack, prefetch);
    }
    this.#core.clients.assertCanRead(this.identity, dest.channel);
    const last = nonNegativeInt(frame.headers.get('herald-last'), 'herald-last');
    return this.#subscribeChannel(new ChannelSubscription(this, id, destination, dest.channel, ack, dest.kind === 'inbox'), last);
  }

  /** Consume a work queue once the backend's subscribe hook (asked with `queue: true`) allows it. */
  async #subscribeQueue(id: string, destination: string, name: string, ack: AckMode, prefetch: number): Promise<void> {
    await this.#core.backend.authorizeSubscribe(this.identity, this.id, name, true);
    if (this.#closed) return;
    if (this.#subs.has(id)) throw new HeraldError('HERALD_ERR_ALREADY_SUBSCRIBED', `Subscription id already in use: ${id.slice(0, 64)}`);
    // Half the slow-consumer limit at most, so the frame taken below the window still fits.
    const window = Math.min(QUEUE_WINDOW_BYTES, this.#core.config.limits.maxOutboundBytes / 2);
    const sub = new QueueSubscription(this, id, destination, this.#env.queues.get(name), ack, prefetch, window);
    this.#subs.set(id, sub);
    sub.queue.addConsumer(sub);
  }

  async #subscribeChannel(sub: ChannelSubscription, last: number): Promise<void> {
    await this.#core.backend.authorizeSubscribe(this.identity, this.id, sub.channel);
    if (this.#closed) return;
    if (this.#subs.has(sub.id)) throw new HeraldError('HERALD_ERR_ALREADY_SUBSCRIBED', `Subscription id already in use: ${sub.id.slice(0, 64)}`);
    // Registered first: live publications are buffered by the state while history is read.
    this.#subs.set(sub.id, sub);
    let res;
    try {
      res = await this.#core.subscribe(sub, sub.channel, last > 0 ? { last } : {});
    } catch (err) {
      if (this.#subs.get(sub.id) === sub) this.#subs.delete(sub.id);
      throw err;
    }
    if (this.#closed || this.#subs.get(sub.id) !== sub) {
      this.#core.unsubscribe(sub, sub.channel);
      return;
    }
    // The replayed history fits beside what already waits unsent, within limits.maxOutboundBytes
    // (the newest that fit; the first always): a reader is not cut as a slow consumer for its
    // own SUBSCRIBE. The first MESSAGE says how many older ones were left out.
    const outgoing = new Map(res.publications.map((pub) => [pub, new Outgoing(pub)]));
    const budget = this.#core.config.limits.maxOutboundBytes - this.bufferedBytes() - OMITTED_HEADER_BYTES;
    const { result, omitted } = historyWithin(res, false, budget, true, (pub) => sub.frame(outgoing.get(pub)!).length);
    for (const [i, pub] of result.publications.entries()) {
      sub.send(outgoing.get(pub)!, i === 0 && omitted > 0 ? [['herald-history-omitted', String(omitted)]] : []);
    }
    for (const out of sub.settle(res.position)) sub.send(out);
    this.#core.backend.emit('subscribe', { client: this.id, user: this.user, channel: sub.channel });
    this.#presence('join', sub.channel);
  }

  /** Join/leave events for channels whose policy asks for them (STOMP subscribers do not receive them). */
  #presence(type: 'join' | 'leave', channel: string): void {
    if (this.#core.policy(channel).joinLeave) this.#core.channelEvent({ type, channel, user: this.user, client: this.id }).catch(() => undefined);
  }

  #unsubscribe(frame: StompFrame): void {
    const id = frame.headers.get('id') ?? (this.version === '1.0' ? frame.headers.get('destination') : undefined);
    if (id === undefined) throw new HeraldError('HERALD_ERR_BAD_REQUEST', 'UNSUBSCRIBE needs an id header');
    const sub = this.#subs.get(id);
    if (!sub) return;
    this.#subs.delete(id);
    this.#release(sub);
    if (sub instanceof ChannelSubscription) this.#core.backend.emit('unsubscribe', { client: this.id, user: this.user, channel: sub.channel });
  }

  #release(sub: Subscription): void {
    if (sub instanceof QueueSubscription) sub.close();
    else if (this.#core.unsubscribe(sub, sub.channel)) this.#presence('leave', sub.channel);
  }

  resubscribe(sub: ChannelSubscription): void {
    if (this.#closed || this.#subs.get(sub.id) !== sub) return;
    this.#core.subscribe(sub, sub.channel).catch(() => this.disconnect(DisconnectCode.SERVER_ERROR, 'resubscribe failed'));
  }

  // ---- ACK / NACK ----------------------------------------------------------------------------

  #acknowledge(frame: StompFrame, nack: boolean): void {
    const h = frame.headers;
    // 1.2: `id` is the MESSAGE's `ack` header, `<subscription>/<message-id>`. 1.1: message-id + subscription.
    let key = h.get('id');
    if (key === undefined || this.version !== '1.2') {
      const messageId = h.get('message-id');
      const subscription = h.get('subscription');
      if (messageId !== undefined && subscription !== undefined) key = `${subscription}/${messageId}`;
      else if (messageId !== undefined) {
        // 1.0: message-id alone; find the subscription that holds it.
        for (const sub of this.#subs.values()) sub.acknowledge(messageId, nack);
        return;
      }
    }
    if (key === undefined) throw new HeraldError('HERALD_ERR_BAD_REQUEST', `${frame.command} needs an id header`);
    const slash = key.lastIndexOf('/');
    if (slash <= 0) return;
    this.#subs.get(key.slice(0, slash))?.acknowledge(key.slice(slash + 1), nack);
  }

  inboxAck(seq: number): void {
    const user = this.user;
    if (user === undefined || !this.#env.inboxAck) return;
    this.#env.inboxAck(user, seq).catch((err: unknown) => this.#core.logger.warn({ err: String(err) }, 'stomp inbox ack failed'));
  }

  // ---- transactions --------------------------------------------------------------------------

  #begin(frame: StompFrame): void {
    const tx = required(frame, 'transaction');
    const txs = (this.#transactions ??= new Map());
    if (txs.has(tx)) throw new HeraldError('HERALD_ERR_CONFLICT', `Transaction already open: ${tx.slice(0, 64)}`);
    if (txs.size >= MAX_TRANSACTIONS) throw new HeraldError('HERALD_ERR_LIMIT_EXCEEDED', `At most ${MAX_TRANSACTIONS} open transactions`);
    txs.set(tx, []);
  }

  /** Run a transaction's SENDs and ACKs in order (not atomic: a failing SEND ends the connection). */
  async #commit(frame: StompFrame): Promise<void> {
    const tx = required(frame, 'transaction');
    const frames = this.#transactions?.get(tx);
    if (!frames) throw new HeraldError('HERALD_ERR_BAD_REQUEST', `Unknown transaction: ${tx.slice(0, 64)}`);
    this.#transactions!.delete(tx);
    for (const f of frames) {
      if (f.command === 'SEND') await this.#send(f);
      else this.#acknowledge(f, f.command === 'NACK');
    }
  }

  // ---- helpers -------------------------------------------------------------------------------

  #destination(frame: StompFrame): Destination {
    return resolveDestination(required(frame, 'destination'), this.identity, this.#core.config.limits.maxChannelNameLength);
  }

  /**
   * Work queues follow the policy of the channel of the same name (namespace rules, the token's
   * `channels` claim, reserved namespaces) and, unlike channels, always need an authenticated
   * connection: a queue hands each message to one consumer, so an anonymous one could take them.
   */
  #assertCanUseQueue(name: string): void {
    if (!this.identity) throw new HeraldError('HERALD_ERR_UNAUTHORIZED', 'Queues need an authenticated connection');
    this.#core.clients.assertCanRead(this.identity, name);
  }

  /** ERROR for a frame that failed, then close. */
  #fail(err: unknown, frame: StompFrame): void {
    const e = toHeraldError(err);
    if (e.code === 'HERALD_ERR_INTERNAL') this.#core.logger.error({ err: String((e.cause as Error)?.stack ?? e.cause) }, 'stomp frame failed');
    const auth = e.code === 'HERALD_ERR_UNAUTHORIZED' || e.code === 'HERALD_ERR_TOKEN_EXPIRED';
    const connect = frame.command === 'CONNECT' || frame.command === 'STOMP';
    const code = connect ? connectCloseCode(e) : auth ? DisconnectCode.INVALID_TOKEN : e.temporary ? DisconnectCode.SERVER_ERROR : DisconnectCode.BAD_REQUEST;
    const receipt = frame.headers.get('receipt');
    this.#error(e.message, `${frame.command} failed: ${e.code}: ${e.message}`, code, receipt === undefined ? [] : [['receipt-id', receipt]]);
  }

  /** Send ERROR (`message` header, text body) and close the connection. */
  #error(message: string, detail: string | undefined, code: number = DisconnectCode.BAD_REQUEST, extra: ReadonlyArray<readonly [string, string]> = []): void {
    if (this.#closed) return;
    const headers: Array<readonly [string, string]> = [['message', message.slice(0, 200)], ['herald-close-code', String(code)], ...extra];
    if (detail !== undefined) headers.push(['content-type', 'text/plain']);
    this.write(wsFrame(encodeFrame('ERROR', headers, detail)));
    this.#close(code, message.slice(0, 100));
  }

  /** @internal Socket closed (called by the shared socket listener). */
  onClose(code: number): void {
    this.#closed = true;
    const channels: string[] = [];
    for (const sub of this.#subs.values()) if (sub instanceof ChannelSubscription) channels.push(sub.channel);
    for (const sub of this.#subs.values()) this.#release(sub);
    this.#subs.clear();
    this.#queue = undefined;
    this.#transactions = undefined;
    this.#core.clients.closed(this, this.#ticket, code, channels);
    this.#env.onClose(this);
  }
}

/** A header the frame must carry. */
function required(frame: StompFrame, name: string): string {
  const v = frame.headers.get(name);
  if (v === undefined || v === '') throw new HeraldError('HERALD_ERR_BAD_REQUEST', `${frame.command} needs a ${name} header`);
  return v;
}

/** An optional non-negative integer header (absent = 0). */
function nonNegativeInt(value: string | undefined, name: string): number {
  if (value === undefined) return 0;
  if (!/^\d{1,9}$/.test(value)) throw new HeraldError('HERALD_ERR_BAD_REQUEST', `${name} must be a non-negative integer`);
  return Number(value);
}
