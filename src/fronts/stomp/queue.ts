/**
 * Work queues for `/queue/<name>`: each message goes to exactly one consumer, round-robin over
 * the consumers that have room (prefetch). Messages a consumer has not acknowledged go back to
 * the head of the queue (marked redelivered) when it NACKs them, unsubscribes or disconnects.
 *
 * In-process and in memory: a queue lives on one node and is lost when the process stops. The
 * registry bounds what a node holds: the number of queues and the bytes of every message not yet
 * done (waiting, or delivered and unacknowledged).
 */
import { HeraldError } from '../../core/errors.js';

/** One queued message. */
export interface QueueMessage {
  /** Unique within the registry (the STOMP `message-id`). */
  readonly id: string;
  readonly body: Buffer;
  readonly contentType: string | undefined;
  /** True once it was handed to a consumer that did not acknowledge it. */
  redelivered: boolean;
}

/** A subscriber of a queue. */
export interface QueueConsumer {
  /** Whether it can take one more message now (prefetch not reached, connection open). */
  canTake(): boolean;
  /** Hand over a message. Must not throw. */
  take(queue: WorkQueue, msg: QueueMessage): void;
}

/** One named queue. */
export class WorkQueue {
  readonly name: string;
  readonly #registry: QueueRegistry;
  #ready: QueueMessage[] = [];
  readonly #consumers: QueueConsumer[] = [];
  #next = 0;
  #dispatching = false;

  constructor(name: string, registry: QueueRegistry) {
    this.name = name;
    this.#registry = registry;
  }

  /** Messages waiting for a consumer. */
  get depth(): number {
    return this.#ready.length;
  }

  /** Consumers attached. */
  get consumers(): number {
    return this.#consumers.length;
  }

  /**
   * Enqueue a new message and dispatch. Throws HERALD_ERR_LIMIT_EXCEEDED when the queue is full
   * or the node's queues hold `maxBytes` already.
   */
  push(body: Buffer, contentType: string | undefined): QueueMessage {
    if (this.#ready.length >= this.#registry.maxLength) {
      throw new HeraldError('HERALD_ERR_LIMIT_EXCEEDED', `Queue ${this.name} holds ${this.#registry.maxLength} messages already`);
    }
    this.#registry.reserve(body.length);
    const msg: QueueMessage = { id: this.#registry.nextId(), body, contentType, redelivered: false };
    this.#ready.push(msg);
    this.dispatch();
    return msg;
  }

  /** Messages are done (acknowledged, or written to an `ack: auto` consumer): release their bytes. */
  done(msgs: readonly QueueMessage[]): void {
    for (const m of msgs) this.#registry.release(m.body.length);
  }

  /** Put unacknowledged messages back at the head, in their order, and dispatch. */
  requeue(msgs: readonly QueueMessage[]): void {
    if (msgs.length === 0) return;
    for (const m of msgs) m.redelivered = true;
    this.#ready = msgs.concat(this.#ready);
    this.dispatch();
  }

  /** Attach a consumer and dispatch. */
  addConsumer(consumer: QueueConsumer): void {
    this.#consumers.push(consumer);
    this.dispatch();
  }

  /** Detach a consumer; the caller requeues what it held. Drops the queue when idle and empty. */
  removeConsumer(consumer: QueueConsumer): void {
    const i = this.#consumers.indexOf(consumer);
    if (i === -1) return;
    this.#consumers.splice(i, 1);
    if (this.#next > i) this.#next--;
    this.#registry.dropIfIdle(this);
  }

  /** Hand waiting messages to consumers with room, round-robin. */
  dispatch(): void {
    // take() may ack synchronously (auto mode) and call back into dispatch: one loop is enough.
    if (this.#dispatching) return;
    this.#dispatching = true;
    try {
      while (this.#ready.length > 0) {
        const consumer = this.#pick();
        if (!consumer) break;
        consumer.take(this, this.#ready.shift()!);
      }
    } finally {
      this.#dispatching = false;
    }
    this.#registry.dropIfIdle(this);
  }

  #pick(): QueueConsumer | undefined {
    const n = this.#consumers.length;
    for (let k = 0; k < n; k++) {
      const idx = (this.#next + k) % n;
      const c = this.#consumers[idx]!;
      if (c.canTake()) {
        this.#next = (idx + 1) % n;
        return c;
      }
    }
    return undefined;
  }
}

/** Bytes counted for each held message besides its body (ids, headers, bookkeeping). */
export const QUEUE_MESSAGE_OVERHEAD_BYTES = 64;

/** Limits of a node's queues. */
export interface QueueLimits {
  /** Most messages waiting in one queue. */
  readonly maxLength: number;
  /** Most queues at once. */
  readonly maxQueues: number;
  /** Most bytes held by all queues (bodies plus QUEUE_MESSAGE_OVERHEAD_BYTES each). */
  readonly maxBytes: number;
}

/** What a node's queues hold (for `/api/stats` and `/metrics`). */
export interface QueueStats {
  readonly queues: number;
  /** Messages waiting for a consumer. */
  readonly waiting: number;
  /** Messages delivered and not yet acknowledged. */
  readonly unacked: number;
  /** Bytes held (waiting and unacknowledged). */
  readonly bytes: number;
  readonly consumers: number;
}

/** The queues of one node. */
export class QueueRegistry {
  /** Most messages waiting in one queue. */
  readonly maxLength: number;
  readonly #limits: QueueLimits;
  readonly #queues = new Map<string, WorkQueue>();
  #seq = 0;
  readonly #prefix: string;
  #bytes = 0;
  #held = 0;

  constructor(limits: QueueLimits, idPrefix: string) {
    this.#limits = limits;
    this.maxLength = limits.maxLength;
    this.#prefix = idPrefix;
  }

  /**
   * The queue of that name, created on first use. Throws HERALD_ERR_LIMIT_EXCEEDED when it would
   * be one queue more than `maxQueues`.
   */
  get(name: string): WorkQueue {
    let q = this.#queues.get(name);
    if (!q) {
      if (this.#queues.size >= this.#limits.maxQueues)
        throw new HeraldError('HERALD_ERR_LIMIT_EXCEEDED', `This node holds ${this.#limits.maxQueues} queues already`);
      q = new WorkQueue(name, this);
      this.#queues.set(name, q);
    }
    return q;
  }

  /** Bytes held by every queue (waiting and unacknowledged messages). */
  get bytes(): number {
    return this.#bytes;
  }

  /** Counts for monitoring. */
  stats(): QueueStats {
    let waiting = 0;
    let consumers = 0;
    for (const q of this.#queues.values()) {
      waiting += q.depth;
      consumers += q.consumers;
    }
    return { queues: this.#queues.size, waiting, unacked: this.#held - waiting, bytes: this.#bytes, consumers };
  }

  /** @internal Count a new message's bytes; throws HERALD_ERR_LIMIT_EXCEEDED beyond `maxBytes`. */
  reserve(bodyBytes: number): void {
    const bytes = bodyBytes + QUEUE_MESSAGE_OVERHEAD_BYTES;
    if (this.#bytes + bytes > this.#limits.maxBytes)
      throw new HeraldError('HERALD_ERR_LIMIT_EXCEEDED', `The queues of this node hold ${this.#limits.maxBytes} bytes already`);
    this.#bytes += bytes;
    this.#held++;
  }

  /** @internal A message is done. */
  release(bodyBytes: number): void {
    this.#bytes -= bodyBytes + QUEUE_MESSAGE_OVERHEAD_BYTES;
    this.#held--;
  }

  /** An existing queue, if any. */
  peek(name: string): WorkQueue | undefined {
    return this.#queues.get(name);
  }

  /** Number of queues held. */
  get size(): number {
    return this.#queues.size;
  }

  /** @internal A new message id. */
  nextId(): string {
    return `${this.#prefix}${(++this.#seq).toString(36)}`;
  }

  /** @internal Forget a queue with no consumer and no message. */
  dropIfIdle(q: WorkQueue): void {
    if (q.consumers === 0 && q.depth === 0 && this.#queues.get(q.name) === q) this.#queues.delete(q.name);
  }
}
