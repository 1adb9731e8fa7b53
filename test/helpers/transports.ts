/**
 * One subscription interface over every native transport, for the behaviour suite: subscribe to
 * channels from a position, collect publications in arrival order and read back the position
 * the transport reports (comma-joined for several channels).
 */
import type { HeraldServer } from '../../src/index.js';
import { type Frame, Inbox, NdjsonClient, type Pub, poll, SseClient, WsClient } from './clients.js';
import { waitFor, wsUrl } from './server.js';

/** Native transports (plus SSE resuming through the Last-Event-ID header). */
export const TRANSPORTS = ['websocket', 'sse', 'sse-last-event-id', 'long-poll', 'http-stream'] as const;
export type TransportName = (typeof TRANSPORTS)[number];

/** Where a subscription starts. */
export interface From {
  /** Comma-joined positions, one per channel. */
  since?: string;
  last?: number;
}

/** A live subscription over some transport. */
export interface Session {
  /** Publications, in arrival order. */
  readonly pubs: Inbox<Pub>;
  /** Other pushes (`unsubscribed`, `disconnect`, …). */
  readonly control: Inbox<Frame>;
  /** Whether the start position was recovered (false if any channel was not). */
  recovered(): boolean;
  /** The position the transport reports now: comma-joined, one per channel, in subscribe order. */
  position(): string;
  close(): Promise<void>;
}

/** Subscribe over `transport`; resolves once the server holds the subscription (or answered). */
export function subscribe(transport: TransportName, server: HeraldServer, channels: string[], from: From = {}): Promise<Session> {
  switch (transport) {
    case 'websocket':
      return wsSession(server, channels, from);
    case 'sse':
    case 'sse-last-event-id':
      return sseSession(server, channels, from, transport === 'sse-last-event-id');
    case 'http-stream':
      return streamSession(server, channels, from);
    case 'long-poll':
      return pollSession(server, channels, from);
  }
}

function query(channels: string[], from: From, withSince = true): string {
  const q = new URLSearchParams({ channels: channels.join(',') });
  if (from.since !== undefined && withSince) q.set('since', from.since);
  if (from.last !== undefined) q.set('last', String(from.last));
  return q.toString();
}

async function wsSession(server: HeraldServer, channels: string[], from: From): Promise<Session> {
  const client = await WsClient.connected(wsUrl(server));
  const pubs = new Inbox<Pub>();
  const control = new Inbox<Frame>();
  const pos = new Map<string, string>();
  let recovered = true;
  // Our own listener sees replies and pushes in wire order (history before live).
  client.ws.on('message', (data) => {
    const f = JSON.parse(data.toString()) as Frame;
    if (f.result && typeof f.result.channel === 'string' && Array.isArray(f.result.publications)) {
      pos.set(f.result.channel, `${f.result.epoch}:${f.result.offset}`);
      if (f.result.recovered === false) recovered = false;
      for (const p of f.result.publications as Pub[]) pubs.put(p);
    } else if (f.type === 'pub') {
      pos.set(f.channel, `${f.epoch}:${f.offset}`);
      pubs.put(f as Pub);
    } else if (typeof f.type === 'string') control.put(f);
  });
  client.ws.on('close', (code) => control.put({ type: 'close', code }));
  const since = from.since?.split(',');
  for (const [i, channel] of channels.entries()) {
    const params: Record<string, unknown> = { channel };
    if (since && since[i]) params.since = since[i];
    if (from.last !== undefined) params.last = from.last;
    await client.ok('subscribe', params);
  }
  return {
    pubs,
    control,
    recovered: () => recovered,
    position: () => channels.map((c) => pos.get(c) ?? '').join(','),
    close: () => client.close(),
  };
}

function streamFrames(
  frames: Inbox<Frame>,
  pubs: Inbox<Pub>,
  control: Inbox<Frame>,
  state: { recovered: boolean; pos: Map<string, string> },
): (f: Frame) => void {
  return (f) => {
    if (f.type === 'pub') {
      state.pos.set(f.channel, `${f.epoch}:${f.offset}`);
      pubs.put(f as Pub);
    } else if (f.type === 'subscribed') {
      if (f.recovered === false) state.recovered = false;
      frames.put(f);
    } else control.put(f);
  };
}

async function sseSession(server: HeraldServer, channels: string[], from: From, viaHeader: boolean): Promise<Session> {
  const headers: Record<string, string> = viaHeader && from.since !== undefined ? { 'last-event-id': from.since } : {};
  const sse = await SseClient.open(`${server.url()}/connection/sse?${query(channels, from, !viaHeader)}`, headers);
  if (sse.status !== 200) throw new Error(`SSE subscribe failed: ${sse.status}`);
  const pubs = new Inbox<Pub>();
  const control = new Inbox<Frame>();
  const subscribed = new Inbox<Frame>();
  const state = { recovered: true, pos: new Map<string, string>() };
  const route = streamFrames(subscribed, pubs, control, state);
  // Drain the client's event inbox into ours, in order.
  const pump = async (): Promise<void> => {
    for (;;) {
      const e = await sse.events.take(() => true, 600_000).catch(() => undefined);
      if (!e) return;
      route(e.json);
    }
  };
  void pump();
  await subscribed.takeN(channels.length);
  return { pubs, control, recovered: () => state.recovered, position: () => sse.lastEventId ?? '', close: async () => sse.close() };
}

async function streamSession(server: HeraldServer, channels: string[], from: From): Promise<Session> {
  const pubs = new Inbox<Pub>();
  const control = new Inbox<Frame>();
  const subscribed = new Inbox<Frame>();
  const state = { recovered: true, pos: new Map<string, string>() };
  const route = streamFrames(subscribed, pubs, control, state);
  const stream = await NdjsonClient.open(`${server.url()}/connection/stream?${query(channels, from)}`);
  if (stream.status !== 200) throw new Error(`stream subscribe failed: ${stream.status}`);
  const pump = async (): Promise<void> => {
    for (;;) {
      const f = await stream.frames.take(() => true, 600_000).catch(() => undefined);
      if (!f) return;
      if (f.type === 'subscribed' && !state.pos.has(f.channel as string)) state.pos.set(f.channel, f.position);
      route(f);
    }
  };
  void pump();
  await subscribed.takeN(channels.length);
  return {
    pubs,
    control,
    recovered: () => state.recovered,
    position: () => channels.map((c) => state.pos.get(c) ?? '').join(','),
    close: async () => stream.close(),
  };
}

async function pollSession(server: HeraldServer, channels: string[], from: From): Promise<Session> {
  const pubs = new Inbox<Pub>();
  const control = new Inbox<Frame>();
  const ac = new AbortController();
  let recovered: boolean | undefined;
  let position = '';
  let answered = false;
  let stopped = false;
  const loop = async (): Promise<void> => {
    let q = query(channels, from);
    while (!stopped) {
      const r = await poll(`${server.url()}/connection/poll?${q}`, {}, ac.signal).catch(() => undefined);
      if (!r || stopped) return;
      if (r.status !== 200) {
        control.put({ type: 'http-error', status: r.status, body: r.body });
        return;
      }
      recovered ??= r.body.recovered as boolean;
      position = r.body.position as string;
      answered = true;
      for (const f of r.body.publications as Frame[]) {
        if (f.type === 'pub') pubs.put(f as Pub);
        else control.put(f);
      }
      q = query(channels, { since: position });
    }
  };
  const done = loop();
  await waitFor(() => answered || channels.every((c) => server.core.hub.subscriberCount(c) > 0), 3_000, 'long-poll subscription');
  return {
    pubs,
    control,
    recovered: () => recovered ?? true,
    position: () => position,
    close: async () => {
      stopped = true;
      ac.abort();
      await done;
    },
  };
}
