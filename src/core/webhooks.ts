/**
 * The webhook queue: events to the backend, batched, signed, retried with exponential backoff
 * and jitter until the backend answers 2xx (at-least-once; every event has a unique `id` for
 * dedupe). The queue is bounded in events and in bytes, with a separate quota for client events
 * (`client.message`, sent by any client): they may take at most half of `webhookQueueMax` and
 * `webhookClientQueueMaxBytes`, while system events have `webhookQueueMaxBytes` of their own,
 * so a flood of client sends cannot crowd out connect, presence or IM events. Events beyond a
 * bound are dropped, counted on the `herald:webhook` diagnostics channel and logged (at most
 * once per interval).
 */
import { randomUUID } from 'node:crypto';
import diagnostics from 'node:diagnostics_channel';
import { signBody } from './backend-hooks.js';
import type { WebhookEventType } from './config-backend.js';
import type { BackendConfig } from './config.js';
import { HeraldError } from './errors.js';
import type { Logger } from './logger.js';

/** Webhook outcomes: `{ node, outcome, events }` (outcome: delivered, failed, dropped). */
export const webhookEvents = diagnostics.channel('herald:webhook');

/** Payload of `herald:webhook`. */
export interface WebhookOutcomeEvent {
  readonly node: string;
  readonly outcome: 'delivered' | 'failed' | 'dropped';
  readonly events: number;
}

/** One event as sent. */
export interface WebhookEvent {
  /** Unique id: the same on every retry, so the backend can drop duplicates. */
  readonly id: string;
  readonly type: WebhookEventType;
  /** When it happened, ms since the epoch. */
  readonly time: number;
  readonly node: string;
  readonly data: Record<string, unknown>;
}

/** A queued event: its id and its JSON text, serialized when it was queued. */
interface QueuedEvent {
  readonly id: string;
  readonly json: string;
  /** Bytes of `json` (UTF-8). */
  readonly bytes: number;
  /** A client event (counted in the client quota). */
  readonly client: boolean;
}

/** Event types sent by clients rather than by the server itself. */
const CLIENT_EVENTS: ReadonlySet<WebhookEventType> = new Set(['client.message']);

/** What the queue posts with. */
interface Poster {
  post(url: string, body: string, headers: Record<string, string>, timeoutMs: number): Promise<{ readonly status: number }>;
}

const DROP_LOG_INTERVAL_MS = 5_000;
/** Longest wait for a final flush on close. */
const CLOSE_FLUSH_MS = 1_000;

/** Options of `new WebhookQueue()`. */
export interface WebhookQueueOptions {
  readonly config: BackendConfig;
  readonly url: string;
  readonly nodeId: string;
  readonly logger: Logger;
  readonly transport: Poster;
}

/** A bounded, batching, retrying webhook sender. */
export class WebhookQueue {
  readonly #o: WebhookQueueOptions;
  readonly #queue: QueuedEvent[] = [];
  #timer: NodeJS.Timeout | undefined;
  #sending: Promise<void> | undefined;
  #attempt = 0;
  #dropped = 0;
  #lastDropLog = 0;
  /** Bytes queued, all and client events; client events queued. */
  #bytes = 0;
  #clientBytes = 0;
  #clientCount = 0;
  #closed = false;

  constructor(options: WebhookQueueOptions) {
    this.#o = options;
  }

  /** Events waiting (including a batch being retried). */
  get length(): number {
    return this.#queue.length;
  }

  /** Bytes of the events waiting (serialized JSON). */
  get bytes(): number {
    return this.#bytes;
  }

  /**
   * Queue an event; false when the queue is full and it was dropped. The event is serialized
   * here, so data that cannot be (a cycle, a BigInt) is refused to the caller with 400
   * HERALD_ERR_BAD_REQUEST instead of failing a whole batch later.
   */
  push(type: WebhookEventType, data: Record<string, unknown>): boolean {
    if (this.#closed) return false;
    const c = this.#o.config;
    const client = CLIENT_EVENTS.has(type);
    if (this.#queue.length >= c.webhookQueueMax || (client && this.#clientCount >= Math.floor(c.webhookQueueMax / 2))) return this.#drop();
    const event: WebhookEvent = { id: randomUUID(), type, time: Date.now(), node: this.#o.nodeId, data };
    let json: string;
    try {
      json = JSON.stringify(event);
    } catch {
      throw new HeraldError('HERALD_ERR_BAD_REQUEST', 'Event data cannot be serialized as JSON');
    }
    const bytes = Buffer.byteLength(json);
    if (client ? this.#clientBytes + bytes > c.webhookClientQueueMaxBytes : this.#bytes - this.#clientBytes + bytes > c.webhookQueueMaxBytes)
      return this.#drop();
    this.#bytes += bytes;
    if (client) {
      this.#clientBytes += bytes;
      this.#clientCount++;
    }
    this.#queue.push({ id: event.id, json, bytes, client });
    this.#schedule(this.#queue.length >= this.#o.config.webhookBatchSize ? 0 : this.#o.config.webhookIntervalMs);
    return true;
  }

  /** Count (and now and then log) an event that did not fit; always false. */
  #drop(): false {
    this.#dropped++;
    if (webhookEvents.hasSubscribers) webhookEvents.publish({ node: this.#o.nodeId, outcome: 'dropped', events: 1 } satisfies WebhookOutcomeEvent);
    const now = Date.now();
    if (now - this.#lastDropLog >= DROP_LOG_INTERVAL_MS) {
      this.#lastDropLog = now;
      this.#o.logger.warn({ dropped: this.#dropped, queued: this.#queue.length, bytes: this.#bytes }, 'webhook queue full; events dropped');
    }
    return false;
  }

  /** Stop; try once to deliver what is queued (bounded wait). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#sending;
    if (this.#queue.length && this.#attempt === 0) {
      await Promise.race([this.#send(), new Promise((r) => setTimeout(r, CLOSE_FLUSH_MS).unref())]);
    }
    if (this.#queue.length) this.#o.logger.warn({ events: this.#queue.length }, 'webhook events undelivered at shutdown');
  }

  #schedule(delay: number): void {
    if (this.#timer || this.#sending || this.#closed) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      // #send handles its own failures; the catch only keeps a bug from becoming an unhandled rejection.
      this.#sending = this.#send()
        .catch((err: unknown) => {
          this.#attempt++;
          this.#o.logger.error({ err: String((err as Error)?.stack ?? err) }, 'webhook send failed');
        })
        .finally(() => {
          this.#sending = undefined;
          if (this.#queue.length && !this.#closed) this.#schedule(this.#attempt ? this.#backoff() : 0);
        });
    }, delay);
    this.#timer.unref();
  }

  #backoff(): number {
    const c = this.#o.config;
    const base = Math.min(c.webhookRetryMaxMs, c.webhookRetryMinMs * 2 ** (this.#attempt - 1));
    return Math.round(base / 2 + Math.random() * (base / 2));
  }

  /** Send the head of the queue; on failure the batch stays at the head for the retry. */
  async #send(): Promise<void> {
    const batch = this.#queue.slice(0, this.#o.config.webhookBatchSize);
    if (batch.length === 0) return;
    const body = `{"events":[${batch.map((e) => e.json).join(',')}]}`;
    const ts = Math.floor(Date.now() / 1000);
    const headers: Record<string, string> = { 'content-type': 'application/json', 'x-herald-timestamp': String(ts) };
    if (this.#o.config.secret) headers['x-herald-signature'] = signBody(this.#o.config.secret, ts, body);
    let ok = false;
    let why = '';
    try {
      const res = await this.#o.transport.post(this.#o.url, body, headers, this.#o.config.webhookTimeoutMs);
      ok = res.status >= 200 && res.status <= 299;
      if (!ok) why = `status ${res.status}`;
    } catch (err) {
      why = String((err as Error)?.message ?? err);
    }
    if (ok) {
      this.#queue.splice(0, batch.length);
      for (const e of batch) {
        this.#bytes -= e.bytes;
        if (e.client) {
          this.#clientBytes -= e.bytes;
          this.#clientCount--;
        }
      }
      this.#attempt = 0;
      if (webhookEvents.hasSubscribers)
        webhookEvents.publish({ node: this.#o.nodeId, outcome: 'delivered', events: batch.length } satisfies WebhookOutcomeEvent);
      return;
    }
    this.#attempt++;
    if (webhookEvents.hasSubscribers) webhookEvents.publish({ node: this.#o.nodeId, outcome: 'failed', events: batch.length } satisfies WebhookOutcomeEvent);
    this.#o.logger.warn({ events: batch.length, attempt: this.#attempt, err: why }, 'webhook delivery failed; will retry');
  }
}
