/**
 * Native protocol over HTTP for clients without WebSocket: EventSource (SSE), long-poll and
 * chunked streaming. Every request carries its own position (`since`, or `Last-Event-ID` for
 * SSE), so no server-side session lives between requests.
 *
 * Positions for several channels are one comma-joined list in the order the channels were
 * requested (see protocol/position.ts); SSE event ids and long-poll cursors use that form.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Identity } from '../../core/auth.js';
import type { AdmissionTicket } from '../../core/client-sessions.js';
import type { HeraldCore } from '../../core/core.js';
import { HeraldError } from '../../core/errors.js';
import type { Connection, Subscriber } from '../../core/hub.js';
import type { Outgoing, Publication } from '../../core/publication.js';
import { SubscriptionState } from '../../core/subscription.js';
import { DisconnectCode } from '../../protocol/codes.js';
import { encodePush } from '../../protocol/frames.js';
import { formatPosition, parsePositionList, type StreamPosition } from '../../protocol/position.js';
import { aliveOrCut } from '../../transports/http.js';
import { historyWithin, pubFrame, subscribedFrame } from './encode.js';

/** The HTTP transports of the native protocol. */
export type HttpMode = 'sse' | 'long-poll' | 'http-stream';

/** A parsed subscription request. */
export interface HttpSubscribeRequest {
  readonly channels: string[];
  readonly since: Array<StreamPosition | undefined>;
  readonly last: number | undefined;
}

/** SSE `data:` line of a publication (shared by all SSE subscribers): `data: <pub frame>\n\n`. */
const ssePubData = (pub: Publication): Buffer => Buffer.from(`data: ${pubFrame(pub)}\n\n`);
/** NDJSON line of a publication for the chunked stream. */
const streamPubLine = (pub: Publication): Buffer => Buffer.from(`${pubFrame(pub)}\n`);

/**
 * Parse channels and positions from a request: `channel` (repeatable) or `channels=a,b`;
 * the `Last-Event-ID` header, else `since=<pos>[,<pos>…]`; `last=N`.
 */
export function parseSubscribeRequest(req: IncomingMessage, url: URL, maxChannels: number): HttpSubscribeRequest {
  const channels = [...url.searchParams.getAll('channel'), ...url.searchParams.getAll('channels').flatMap((c) => c.split(','))].filter((c) => c !== '');
  if (channels.length === 0) throw new HeraldError('HERALD_ERR_BAD_REQUEST', 'Name at least one channel (?channel=a&channel=b or ?channels=a,b)');
  if (channels.length > maxChannels) throw new HeraldError('HERALD_ERR_LIMIT_EXCEEDED', `At most ${maxChannels} channels per connection`);
  if (new Set(channels).size !== channels.length) throw new HeraldError('HERALD_ERR_BAD_REQUEST', 'A channel is named twice');
  // Last-Event-ID first: an EventSource reconnects with its original URL (and so its original
  // `since`) plus the header holding where it got to, which is the newer position.
  const sinceText = (req.headers['last-event-id'] as string | undefined) || url.searchParams.get('since') || url.searchParams.get('lastEventId');
  let since: Array<StreamPosition | undefined> = channels.map(() => undefined);
  if (sinceText) {
    const parsed = parsePositionList(sinceText, channels.length);
    if (!parsed) throw new HeraldError('HERALD_ERR_INVALID_POSITION', 'since must list one "<epoch>:<offset>" per channel, comma-separated');
    since = parsed;
  }
  const lastText = url.searchParams.get('last');
  let last: number | undefined;
  if (lastText !== null) {
    last = Number(lastText);
    if (!Number.isSafeInteger(last) || last < 0) throw new HeraldError('HERALD_ERR_BAD_REQUEST', 'last must be a non-negative integer');
  }
  return { channels, since, last };
}

/** One HTTP subscriber connection (one request). */
export class HttpSubscriber implements Connection, Subscriber {
  readonly id: string;
  readonly transport: HttpMode;
  readonly #core: HeraldCore;
  readonly #res: ServerResponse;
  readonly #identity: Identity | undefined;
  readonly #ticket: AdmissionTicket;
  readonly #states: SubscriptionState[] = [];
  readonly #index = new Map<string, number>();
  readonly #onEnd: (sub: HttpSubscriber) => void;
  #closed = false;
  #recovered = true;
  /** Long-poll: frames collected for the answer, and their bytes (with separators). */
  #batch: string[] = [];
  #batchBytes = 0;
  /**
   * Long-poll: where each channel stands in what the answer carries (one position per channel),
   * and whether a publication was left out because the answer reached `limits.maxOutboundBytes`.
   * A cut answer says `"more": true` and gives these positions, so the next poll continues there.
   */
  #pollPositions: string[] = [];
  #more = false;
  #flushScheduled = false;
  #timer: NodeJS.Timeout | undefined;

  constructor(
    id: string,
    mode: HttpMode,
    core: HeraldCore,
    res: ServerResponse,
    identity: Identity | undefined,
    ticket: AdmissionTicket,
    onEnd: (s: HttpSubscriber) => void,
  ) {
    this.id = id;
    this.transport = mode;
    this.#core = core;
    this.#res = res;
    this.#identity = identity;
    this.#ticket = ticket;
    this.#onEnd = onEnd;
  }

  get user(): string | undefined {
    return this.#identity?.user;
  }

  /** The authenticated identity (token revocation checks it). */
  get identity(): Identity | undefined {
    return this.#identity;
  }

  /** Check permissions, subscribe to every channel, write the start of the response. */
  async start(request: HttpSubscribeRequest): Promise<void> {
    const clients = this.#core.clients;
    for (const channel of request.channels) clients.assertCanRead(this.#identity, channel);
    for (const channel of request.channels) await this.#core.backend.authorizeSubscribe(this.#identity, this.id, channel);
    this.#res.once('close', () => this.#end());
    // The client may have gone while the checks ran: its 'close' has passed.
    if (this.#res.destroyed) return this.#end();
    clients.opened(this, this.#ticket);
    clients.identified(this, this.#ticket, request.channels);
    const results = [];
    // SSE and stream write the history of every channel at once: together it stays within
    // limits.maxOutboundBytes, or a reader would be cut for its own start (long-poll pages instead).
    const max = this.#core.config.limits.maxOutboundBytes;
    let spent = 0;
    for (const [i, channel] of request.channels.entries()) {
      const st = new SubscriptionState(channel);
      this.#states.push(st);
      this.#index.set(channel, i);
      const started = await this.#core.subscribe(this, channel, { since: request.since[i], last: request.last });
      if (this.#closed) return;
      if (this.transport === 'long-poll') results.push(started);
      else {
        const within = historyWithin(started, request.since[i] !== undefined, max - spent, spent === 0);
        spent += within.bytes;
        results.push(within.result);
      }
    }
    this.#writeHead();
    // Each channel's id starts just before its first history publication, so an SSE client that
    // reconnects after only the `subscribed` frames resumes without missing anything.
    for (const [i, res] of results.entries()) {
      const st = this.#states[i]!;
      const first = res.publications[0];
      st.epoch = first ? first.epoch : res.position.epoch;
      st.offset = first ? first.offset - 1 : res.position.offset;
      if (request.since[i] && !res.recovered) this.#recovered = false;
    }
    if (this.transport === 'long-poll') this.#pollPositions = this.#states.map((st) => formatPosition(st));
    else {
      for (const [i, res] of results.entries()) this.#writeControl(subscribedFrame(this.#states[i]!.channel, res.position, res.recovered));
    }
    for (const [i, res] of results.entries()) {
      for (const pub of res.publications) this.#send(pub, undefined);
      for (const out of this.#states[i]!.settle(res.position)) this.#send(out.pub, out);
    }
    if (this.transport === 'long-poll') {
      if (this.#batch.length > 0) this.#flushPoll();
      else this.#timer = setTimeout(() => this.#flushPoll(), this.#core.config.timing.longPollTimeoutMs);
    }
  }

  deliver(out: Outgoing): void {
    const i = this.#index.get(out.pub.channel);
    if (i === undefined || this.#closed) return;
    if (!this.#states[i]!.accept(out)) return;
    this.#send(out.pub, out);
  }

  channelDeleted(channel: string): void {
    const i = this.#index.get(channel);
    if (i === undefined) return;
    this.#index.delete(channel);
    if (this.transport === 'long-poll') {
      this.#batch.push(encodePush('unsubscribed', { channel, reason: 'deleted' }));
      this.#scheduleFlush();
      return;
    }
    this.#writeControl(encodePush('unsubscribed', { channel, reason: 'deleted' }));
    if (this.#index.size === 0) this.disconnect(DisconnectCode.RECONNECT, 'no channels left');
  }

  /** Keep-alive (called from the front's timer wheel). */
  keepAlive(): void {
    if (this.#closed || !this.#res.headersSent) return;
    this.#res.write(this.transport === 'sse' ? ': ping\n\n' : '\n');
  }

  /** Drop a request that failed before its response started; the caller answers with the error. */
  abort(): void {
    this.#end();
  }

  disconnect(code: number, reason: string): void {
    if (this.#closed) return;
    if (this.transport === 'long-poll') {
      this.#batch.push(encodePush('disconnect', { code, reason, reconnect: code < 3500 }));
      this.#flushPoll();
      return;
    }
    if (this.#res.headersSent) this.#writeControl(encodePush('disconnect', { code, reason, reconnect: code < 3500 }));
    this.#res.end();
    this.#end();
  }

  /** The comma-joined positions of every channel (the SSE id / long-poll cursor). */
  positions(): string {
    return this.#states.map((s) => formatPosition(s)).join(',');
  }

  #writeHead(): void {
    if (this.transport === 'sse') {
      this.#res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', 'x-accel-buffering': 'no' });
      this.#res.write(': ok\n\n');
    } else if (this.transport === 'http-stream') {
      this.#res.writeHead(200, { 'content-type': 'application/x-ndjson; charset=utf-8', 'cache-control': 'no-cache', 'x-accel-buffering': 'no' });
    }
  }

  /** Write a publication. `out` is given for live deliveries so the encoding is shared. */
  #send(pub: Publication, out: Outgoing | undefined): void {
    const i = this.#index.get(pub.channel);
    if (i === undefined) return;
    const st = this.#states[i]!;
    if (!out) {
      // History publications advance the position by hand (live ones did so in accept()).
      st.epoch = pub.epoch;
      st.offset = pub.offset;
    }
    if (this.transport === 'long-poll') {
      this.#addToPoll(i, pub);
      return;
    }
    if (this.transport === 'sse') {
      this.#res.write(`id: ${this.positions()}\n`);
      this.#res.write(out ? out.encoded(ssePubData) : ssePubData(pub));
      this.#check();
    } else {
      this.#res.write(out ? out.encoded(streamPubLine) : streamPubLine(pub));
      this.#check();
    }
  }

  /**
   * Add a publication to the long-poll answer unless it would take the answer past
   * `limits.maxOutboundBytes` (the first one always fits): then the answer is cut there and
   * says `more`, and nothing later joins it.
   */
  #addToPoll(channelIndex: number, pub: Publication): void {
    if (this.#more) return;
    const frame = pubFrame(pub);
    const bytes = Buffer.byteLength(frame) + 1;
    if (this.#batch.length > 0 && this.#batchBytes + bytes > this.#core.config.limits.maxOutboundBytes) {
      this.#more = true;
    } else {
      this.#batch.push(frame);
      this.#batchBytes += bytes;
      this.#pollPositions[channelIndex] = formatPosition(pub);
    }
    this.#scheduleFlush();
  }

  #writeControl(frame: string): void {
    if (this.#closed) return;
    if (this.transport === 'sse') this.#res.write(`id: ${this.positions()}\ndata: ${frame}\n\n`);
    else this.#res.write(`${frame}\n`);
  }

  /** Drop a consumer whose unsent bytes exceed the limit. */
  #check(): void {
    if (!aliveOrCut(this.#res, this.#core.config.limits.maxOutboundBytes)) {
      this.#core.clients.slowConsumer(this);
      this.#end();
    }
  }

  #scheduleFlush(): void {
    // Answer on the next tick so publications arriving together go in one response.
    if (this.#flushScheduled || this.#res.headersSent) return;
    this.#flushScheduled = true;
    setImmediate(() => this.#flushPoll());
  }

  #flushPoll(): void {
    if (this.#closed || this.#res.headersSent) return;
    // A cut answer gives the positions of what it carries: the states already moved past the
    // publications left out.
    const position = this.#more ? this.#pollPositions.join(',') : this.positions();
    const more = this.#more ? ',"more":true' : '';
    const body =
      `{"position":"${position}","recovered":${this.#recovered},` +
      `"channels":${JSON.stringify(this.#states.map((s) => s.channel))},"publications":[${this.#batch.join(',')}]${more}}`;
    this.#res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
    this.#res.end(body);
    this.#end();
  }

  #end(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    for (const st of this.#states) this.#core.unsubscribe(this, st.channel);
    this.#core.clients.closed(
      this,
      this.#ticket,
      undefined,
      this.#states.map((st) => st.channel),
    );
    this.#onEnd(this);
  }
}
