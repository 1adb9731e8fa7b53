/**
 * Helpers for SDK tests: a HeraldClient for a test server on a forced transport (Node's `ws` and
 * the `eventsource` package as the implementations), and a collector of publications.
 */
import { EventSource } from 'eventsource';
import WebSocket from 'ws';
import { type ClientOptions, HeraldClient, type Publication, type TransportName } from '../../clients/js/src/index.js';
import type { EventSourceCtor, WebSocketCtor } from '../../clients/js/src/types.js';
import type { HeraldServer } from '../../src/index.js';
import { waitFor } from './server.js';

/** Every transport of the SDK, for `for (const t of TRANSPORTS) describe(t, …)`. */
export const TRANSPORTS: readonly TransportName[] = ['websocket', 'sse', 'long-poll'];

/** Node implementations the SDK takes as options. */
export const NODE_IMPLS = { WebSocket: WebSocket as unknown as WebSocketCtor, EventSource: EventSource as unknown as EventSourceCtor };

/** A client for `server` on `transport` (fast reconnects); `over` overrides options. */
export function sdkClient(server: HeraldServer | string, transport: TransportName | undefined, over: Partial<ClientOptions> = {}): HeraldClient {
  return new HeraldClient({
    url: typeof server === 'string' ? server : server.url(),
    ...NODE_IMPLS,
    transports: transport ? [transport] : undefined,
    minReconnectDelayMs: 50,
    maxReconnectDelayMs: 300,
    openTimeoutMs: 1_000,
    commandTimeoutMs: 3_000,
    ...over,
  });
}

/** Collects the publications of a channel's subscription (or of the whole client). */
export class PubLog {
  readonly pubs: Publication[] = [];
  constructor(source: { on(event: 'publication', l: (p: Publication) => void): unknown }) {
    source.on('publication', (p) => this.pubs.push(p));
  }
  /** The `data` values, in arrival order. */
  get data(): unknown[] {
    return this.pubs.map((p) => p.data);
  }
  /** Wait until at least `n` publications arrived. */
  async count(n: number, timeoutMs = 10_000): Promise<void> {
    await waitFor(() => this.pubs.length >= n, timeoutMs, `${n} publications (have ${this.pubs.length})`);
  }
}
