/**
 * The two kinds of STOMP subscription: to a channel (`/topic`, `/exchange`, `/user/inbox`), a
 * hub Subscriber of its own that writes shared pre-built MESSAGE frames, and to a work queue
 * (`/queue`), a QueueConsumer that tracks what it has not acknowledged yet.
 */
import { isUtf8 } from 'node:buffer';
import type { Subscriber } from '../../core/hub.js';
import type { Outgoing, Publication } from '../../core/publication.js';
import { SubscriptionState } from '../../core/subscription.js';
import { binaryFrame, textFrame } from '../../transports/websocket.js';
import { encodeFrame } from './codec.js';
import type { QueueConsumer, QueueMessage, WorkQueue } from './queue.js';

/** STOMP `ack` modes of a subscription. */
export type AckMode = 'auto' | 'client' | 'client-individual';

/** Parse an `ack` header; undefined when it is not a STOMP ack mode. */
export function parseAckMode(value: string | undefined): AckMode | undefined {
  if (value === undefined || value === 'auto') return 'auto';
  if (value === 'client' || value === 'client-individual') return value;
  return undefined;
}

/** What a subscription needs from its session. */
export interface SubscriptionOwner {
  /** Whether the connection can still take frames. */
  readonly open: boolean;
  /** Write a pre-built WebSocket frame. */
  write(frame: Buffer): void;
  /** The channel was deleted: subscribe again so later publications still arrive. */
  resubscribe(sub: ChannelSubscription): void;
  /** Acknowledge the user's IM inbox up to `seq` (cumulative). */
  inboxAck(seq: number): void;
  /** Bytes written to the connection and not yet sent. */
  bufferedBytes(): number;
  /** Call `fn` once when what is buffered has been sent (never if the connection closes first). */
  onDrain(fn: () => void): void;
}

/** A STOMP frame in a WebSocket frame: text when it is valid UTF-8, binary otherwise. */
export function wsFrame(stomp: Buffer): Buffer {
  return isUtf8(stomp) ? textFrame(stomp) : binaryFrame(stomp);
}

/** Per-publication cache of MESSAGE frames, keyed by subscription id, destination and ack. */
const frameCache = (_pub: Publication): Map<string, Buffer> => new Map();

/** `message-id` of a channel publication: its position, `<epoch>-<offset>`. */
export function channelMessageId(pub: Publication): string {
  return `${pub.epoch}-${pub.offset}`;
}

/** The MESSAGE frame of a publication for one subscription, with `extra` headers appended. */
function buildMessageFrame(pub: Publication, subId: string, destination: string, ack: boolean, extra: ReadonlyArray<[string, string]>): Buffer {
  const messageId = channelMessageId(pub);
  const headers: Array<[string, string]> = [
    ['subscription', subId],
    ['message-id', messageId],
    ['destination', destination],
  ];
  if (pub.contentType !== undefined) headers.push(['content-type', pub.contentType]);
  if (ack) headers.push(['ack', `${subId}/${messageId}`]);
  headers.push(...extra);
  return wsFrame(encodeFrame('MESSAGE', headers, pub.payload));
}

/**
 * The MESSAGE frame of a publication for one subscription. Built once per node for every
 * subscription with the same id, destination and ack mode (clients mostly use `sub-0`).
 */
function channelMessageFrame(out: Outgoing, subId: string, destination: string, ack: boolean): Buffer {
  const cache = out.encoded(frameCache);
  const key = `${ack ? 'a' : 'n'}${subId}\n${destination}`;
  let frame = cache.get(key);
  if (!frame) {
    frame = buildMessageFrame(out.pub, subId, destination, ack, []);
    cache.set(key, frame);
  }
  return frame;
}

/** Inbox seq of an IM inbox push (`{"type":"message","seq":N,…}`), if it has one. */
const INBOX_SEQ_RE = /^\{"type":"message","seq":(\d{1,15})[,}]/;
function inboxSeq(pub: Publication): number | undefined {
  const m = INBOX_SEQ_RE.exec(pub.payload.toString('latin1', 0, 48));
  return m ? Number(m[1]) : undefined;
}

/**
 * A subscription to a channel or to the user's inbox. It is its own SubscriptionState (one
 * object per subscription, not two: idle connections are what a node holds most of).
 */
export class ChannelSubscription extends SubscriptionState implements Subscriber {
  readonly id: string;
  readonly destination: string;
  readonly ack: AckMode;
  /** True for `/user/inbox`: acks go to the IM. */
  readonly inbox: boolean;
  readonly #owner: SubscriptionOwner;
  /** Inbox only, client ack modes: inbox seq by message-id of messages not yet acked. */
  #pendingSeqs: Map<string, number> | undefined;

  constructor(owner: SubscriptionOwner, id: string, destination: string, channel: string, ack: AckMode, inbox: boolean) {
    super(channel);
    this.#owner = owner;
    this.id = id;
    this.destination = destination;
    this.ack = ack;
    this.inbox = inbox;
  }

  deliver(out: Outgoing): void {
    if (this.#owner.open && this.accept(out)) this.send(out);
  }

  /** The MESSAGE frame of a publication for this subscription (shared, built once per node). */
  frame(out: Outgoing): Buffer {
    return channelMessageFrame(out, this.id, this.destination, this.ack !== 'auto');
  }

  /**
   * Write a publication the state has accepted (live, or from history / the recovery buffer).
   * `extra` headers make a frame of its own instead of the shared one (the first replayed
   * MESSAGE of a cut history carries `herald-history-omitted`).
   */
  send(out: Outgoing, extra: ReadonlyArray<[string, string]> = []): void {
    this.#owner.write(extra.length === 0 ? this.frame(out) : buildMessageFrame(out.pub, this.id, this.destination, this.ack !== 'auto', extra));
    if (!this.inbox) return;
    const seq = inboxSeq(out.pub);
    if (seq === undefined) return;
    if (this.ack === 'auto') this.#owner.inboxAck(seq);
    else (this.#pendingSeqs ??= new Map()).set(channelMessageId(out.pub), seq);
  }

  channelDeleted(): void {
    this.#owner.resubscribe(this);
  }

  /**
   * ACK (or NACK) of `messageId`. Channels have no re-delivery: only the inbox acts, by
   * acknowledging the IM inbox up to the message's seq (an un-acked or NACKed inbox message is
   * re-sent by the IM after its re-delivery timeout).
   */
  acknowledge(messageId: string, nack: boolean): void {
    const pending = this.#pendingSeqs;
    if (!pending) return;
    const seq = pending.get(messageId);
    if (seq === undefined) return;
    if (this.ack === 'client') {
      for (const [k, s] of pending) if (s <= seq) pending.delete(k);
    } else {
      pending.delete(messageId);
    }
    if (!nack) this.#owner.inboxAck(seq);
  }
}

/**
 * A consumer of a work queue, flow-controlled on its connection: it takes messages only while
 * fewer than `window` bytes wait unsent on the socket, and asks the queue to dispatch again when
 * the socket drains. A backlog therefore reaches a slow reader at the pace it reads, instead of
 * being written in one loop until the connection is cut as a slow consumer (and, with
 * `ack: auto`, lost).
 */
export class QueueSubscription implements QueueConsumer {
  readonly id: string;
  readonly destination: string;
  readonly ack: AckMode;
  /** Most unacknowledged messages held at once (0 = no limit). */
  readonly prefetch: number;
  readonly queue: WorkQueue;
  readonly #owner: SubscriptionOwner;
  /** Unsent bytes on the connection above which no message is taken. */
  readonly #window: number;
  /** Delivered, not yet acknowledged, in delivery order. */
  readonly #unacked = new Map<string, QueueMessage>();
  #closed = false;
  #awaitingDrain = false;

  constructor(owner: SubscriptionOwner, id: string, destination: string, queue: WorkQueue, ack: AckMode, prefetch: number, window: number) {
    this.#owner = owner;
    this.id = id;
    this.destination = destination;
    this.queue = queue;
    this.ack = ack;
    this.prefetch = prefetch;
    this.#window = window;
  }

  /** Messages delivered and not yet acknowledged. */
  get unacked(): number {
    return this.#unacked.size;
  }

  canTake(): boolean {
    if (this.#closed || !this.#owner.open) return false;
    if (this.ack !== 'auto' && this.prefetch !== 0 && this.#unacked.size >= this.prefetch) return false;
    if (this.#owner.bufferedBytes() < this.#window) return true;
    if (!this.#awaitingDrain) {
      this.#awaitingDrain = true;
      this.#owner.onDrain(this.#drained);
    }
    return false;
  }

  readonly #drained = (): void => {
    this.#awaitingDrain = false;
    if (!this.#closed) this.queue.dispatch();
  };

  take(_queue: WorkQueue, msg: QueueMessage): void {
    const headers: Array<[string, string]> = [
      ['subscription', this.id],
      ['message-id', msg.id],
      ['destination', this.destination],
    ];
    if (msg.contentType !== undefined) headers.push(['content-type', msg.contentType]);
    if (msg.redelivered) headers.push(['redelivered', 'true']);
    if (this.ack !== 'auto') {
      headers.push(['ack', `${this.id}/${msg.id}`]);
      this.#unacked.set(msg.id, msg);
    }
    this.#owner.write(wsFrame(encodeFrame('MESSAGE', headers, msg.body)));
    if (this.ack === 'auto') this.queue.done([msg]);
  }

  /**
   * ACK or NACK of `messageId`: one message (`client-individual`) or it and every earlier one
   * (`client`). NACKed messages go back to the head of the queue. Unknown ids are ignored.
   */
  acknowledge(messageId: string, nack: boolean): void {
    if (!this.#unacked.has(messageId)) return;
    const done: QueueMessage[] = [];
    if (this.ack === 'client') {
      for (const [k, m] of this.#unacked) {
        this.#unacked.delete(k);
        done.push(m);
        if (k === messageId) break;
      }
    } else {
      done.push(this.#unacked.get(messageId)!);
      this.#unacked.delete(messageId);
    }
    if (nack) this.queue.requeue(done);
    else {
      this.queue.done(done);
      this.queue.dispatch();
    }
  }

  /** Stop consuming: everything unacknowledged goes back to the queue for other consumers. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const held = [...this.#unacked.values()];
    this.#unacked.clear();
    this.queue.requeue(held);
    this.queue.removeConsumer(this);
  }
}
