/**
 * IM clients for tests: a WebSocket client (connect + subscribe to the user's inbox channel) and
 * a long-poll client (GET /connection/poll on the inbox channel, commands by HTTP POST). Both
 * keep an application-side view that dedupes inbox messages by inbox seq, as a real client does.
 */
import { type Frame, WsClient } from './clients.js';

/** An inbox event as pushed (`data` of a pub on `inbox:<user>`). */
export type ImEvent = Record<string, any>;

/**
 * What the application sees: inbox messages in inbox-seq order, each exactly once. Messages
 * arriving ahead of a gap wait until the gap is filled (by a re-delivery or a sync).
 */
export class AppView {
  readonly bySeq = new Map<number, ImEvent>();
  /** Seqs in the order they reached the application. */
  readonly order: number[] = [];
  readonly #ahead = new Map<number, ImEvent>();
  duplicatesDropped = 0;

  /** Accept a message event; duplicates (same inbox seq) are dropped. Returns true if new. */
  accept(ev: ImEvent): boolean {
    if (ev.type !== 'message' || typeof ev.seq !== 'number') return false;
    if (this.bySeq.has(ev.seq) || this.#ahead.has(ev.seq)) {
      this.duplicatesDropped++;
      return false;
    }
    this.#ahead.set(ev.seq, ev);
    let next = this.order.length ? this.order.at(-1)! + 1 : 1;
    while (this.#ahead.has(next)) {
      this.bySeq.set(next, this.#ahead.get(next)!);
      this.#ahead.delete(next);
      this.order.push(next++);
    }
    return true;
  }

  /** Whether messages wait behind a gap (the client should sync). */
  get gap(): boolean {
    return this.#ahead.size > 0;
  }

  /** Highest seq with every seq below it delivered (what a client acks and syncs after). */
  contiguous(): number {
    return this.order.at(-1) ?? 0;
  }
}

/** An IM user over WebSocket. */
export class ImWs {
  readonly view = new AppView();
  private constructor(
    readonly ws: WsClient,
    readonly user: string,
  ) {}

  /** Connect as `user` (dev mode) or with `token`, and subscribe to the inbox unless `subscribe` is false. */
  static async connect(url: string, user: string, opts: { token?: string; subscribe?: boolean } = {}): Promise<ImWs> {
    const ws = await WsClient.connected(url, opts.token ? { token: opts.token } : { user });
    const c = new ImWs(ws, user);
    if (opts.subscribe !== false) await ws.ok('subscribe', { channel: `inbox:${user}` });
    return c;
  }

  /** Run a command; returns the result or throws with the error's name in the message. */
  ok(cmd: string, params: Record<string, unknown> = {}): Promise<any> {
    return this.ws.ok(cmd, params);
  }

  /** Run a command expecting an error; resolves with the error. */
  async fails(cmd: string, params: Record<string, unknown> = {}): Promise<{ code: number; name: string; message: string }> {
    const r = await this.ws.command(cmd, params);
    if (!r.error) throw new Error(`${cmd} unexpectedly succeeded: ${JSON.stringify(r.result)}`);
    return r.error;
  }

  /** Next inbox event matching `pred`; message events also go to the app view. */
  async event(pred: (e: ImEvent) => boolean = () => true, timeoutMs = 3_000): Promise<ImEvent> {
    const f = (await this.ws.pushes.take((p: Frame) => p.type === 'pub' && p.channel === `inbox:${this.user}` && pred(p.data), timeoutMs)) as Frame;
    this.view.accept(f.data);
    return f.data;
  }

  /** Next message event (optionally with inbox seq `seq`). */
  message(seq?: number, timeoutMs = 3_000): Promise<ImEvent> {
    return this.event((e) => e.type === 'message' && (seq === undefined || e.seq === seq), timeoutMs);
  }

  /** Whether an event matching `pred` arrives within `ms` (consumes it). */
  async gets(pred: (e: ImEvent) => boolean, ms: number): Promise<boolean> {
    try {
      await this.event(pred, ms);
      return true;
    } catch {
      return false;
    }
  }

  close(): Promise<void> {
    return this.ws.close();
  }

  kill(): void {
    this.ws.terminate();
  }
}

/** An IM user over long-poll (receive) and HTTP POST (commands). */
export class ImPoll {
  readonly view = new AppView();
  #position: string | undefined;
  #stopped = false;
  #loop: Promise<void> | undefined;
  #abort = new AbortController();
  /** Number of times the poll reported a gap and the client re-synced from the store. */
  resyncs = 0;

  constructor(
    readonly base: string,
    readonly user: string,
  ) {}

  /** POST one command; returns `{status, body}`. */
  async post(cmd: string, params: Record<string, unknown> = {}): Promise<{ status: number; body: any }> {
    const res = await fetch(`${this.base}/connection/command?user=${encodeURIComponent(this.user)}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ id: 1, cmd, ...params }),
    });
    return { status: res.status, body: await res.json() };
  }

  /** POST a command and return its result; throws on an error answer. */
  async ok(cmd: string, params: Record<string, unknown> = {}): Promise<any> {
    const r = await this.post(cmd, params);
    if (r.status !== 200) throw new Error(`${cmd} failed: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body.result;
  }

  /** Sync from the highest contiguous seq the app has, remember the inbox position; returns new messages. */
  async sync(): Promise<ImEvent[]> {
    const fresh: ImEvent[] = [];
    for (;;) {
      const r = await this.ok('im.sync', { after: this.view.contiguous() });
      this.#position ??= r.position;
      for (const m of r.messages) if (this.view.accept(m)) fresh.push(m);
      if (!r.more) return fresh;
    }
  }

  /** Start the receive loop: sync, then long-poll the inbox channel from the sync's position. */
  start(): void {
    this.#loop = (async () => {
      await this.sync();
      while (!this.#stopped) {
        let body: any;
        try {
          const res = await fetch(
            `${this.base}/connection/poll?channel=inbox:${encodeURIComponent(this.user)}&user=${encodeURIComponent(this.user)}&since=${this.#position}`,
            { signal: this.#abort.signal },
          );
          body = await res.json();
        } catch {
          return;
        }
        if (body.position) this.#position = body.position;
        for (const p of body.publications ?? []) this.view.accept(p.data);
        // The inbox channel keeps no history: a gap means "read the store".
        if (body.recovered === false || this.view.gap) {
          this.resyncs++;
          await this.sync().catch(() => undefined);
        }
      }
    })();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#abort.abort();
    await this.#loop;
  }
}
