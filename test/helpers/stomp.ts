/**
 * STOMP clients for tests: the real `@stomp/stompjs` client over `ws`, and a raw client that
 * sends hand-written frames and splits what it receives into frames (for malformed input and
 * heart-beat silence, which a well-behaved client cannot produce on demand).
 */
import { Client, type IFrame, type IMessage, type StompConfig } from '@stomp/stompjs';
import { WebSocket } from 'ws';
import type { HeraldServer } from '../../src/index.js';
import { Inbox } from './clients.js';

/** URL of the STOMP endpoint. */
export function stompUrl(server: HeraldServer, path = '/stomp'): string {
  return `${server.url().replace('http', 'ws')}${path}`;
}

/** A stompjs client with its events collected. */
export interface StompHandle {
  readonly client: Client;
  /** The CONNECTED frame. */
  readonly connected: IFrame;
  /** ERROR frames received. */
  readonly errors: Inbox<IFrame>;
  /** Resolves with the WebSocket close code. */
  readonly closed: Promise<number>;
  /** Debug lines (heart-beats show as `<<< PONG`). */
  readonly debug: string[];
}

/**
 * Connect a stompjs client (no reconnect); resolves on CONNECTED, rejects with the ERROR
 * frame's message or on close before CONNECTED.
 */
export function connectStomp(server: HeraldServer, config: StompConfig = {}, protocols: string[] = ['v12.stomp']): Promise<StompHandle> {
  const url = stompUrl(server);
  const errors = new Inbox<IFrame>();
  const debug: string[] = [];
  let onClosed!: (code: number) => void;
  const closed = new Promise<number>((r) => (onClosed = r));
  return new Promise((resolve, reject) => {
    const client = new Client({
      webSocketFactory: () => new WebSocket(url, protocols),
      reconnectDelay: 0,
      heartbeatIncoming: 0,
      heartbeatOutgoing: 0,
      debug: (line) => debug.push(line),
      ...config,
    });
    client.onConnect = (frame) => resolve({ client, connected: frame, errors, closed, debug });
    client.onStompError = (frame) => {
      errors.put(frame);
      reject(new Error(`STOMP ERROR: ${frame.headers.message}`));
    };
    client.onWebSocketClose = (evt: { code: number }) => {
      onClosed(evt.code);
      reject(new Error(`closed before CONNECTED: ${evt.code}`));
    };
    client.activate();
  });
}

/** Subscribe and collect messages in an Inbox. */
export function collect(client: Client, destination: string, headers: Record<string, string> = {}): { messages: Inbox<IMessage>; id: string } {
  const messages = new Inbox<IMessage>();
  const sub = client.subscribe(destination, (m) => messages.put(m), headers);
  return { messages, id: sub.id };
}

/** Send a frame with a receipt and wait for the RECEIPT. */
export function withReceipt(client: Client, send: (receipt: string) => void, timeoutMs = 3_000): Promise<IFrame> {
  const receipt = `r-${Math.random().toString(36).slice(2)}`;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no RECEIPT ${receipt}`)), timeoutMs);
    client.watchForReceipt(receipt, (frame) => {
      clearTimeout(timer);
      resolve(frame);
    });
    send(receipt);
  });
}

/** A received frame, split by the raw client. */
export interface RawFrame {
  command: string;
  headers: Record<string, string>;
  body: string;
}

/** A raw STOMP-over-WebSocket client. */
export class RawStomp {
  readonly ws: WebSocket;
  readonly frames = new Inbox<RawFrame>();
  /** Heart-beat EOLs received. */
  heartbeats = 0;
  readonly closed: Promise<{ code: number; reason: string }>;

  private constructor(ws: WebSocket) {
    this.ws = ws;
    this.closed = new Promise((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
    ws.on('error', () => undefined);
    ws.on('message', (data: Buffer) => {
      let text = data.toString('utf8');
      while (text.length > 0) {
        if (text.startsWith('\n') || text.startsWith('\r\n')) {
          this.heartbeats++;
          text = text.slice(text.startsWith('\n') ? 1 : 2);
          continue;
        }
        const nul = text.indexOf('\0');
        const frame = nul === -1 ? text : text.slice(0, nul);
        text = nul === -1 ? '' : text.slice(nul + 1);
        const split = frame.indexOf('\n\n');
        const head = (split === -1 ? frame : frame.slice(0, split)).split('\n');
        const headers: Record<string, string> = {};
        for (const line of head.slice(1)) {
          const c = line.indexOf(':');
          if (c > 0 && !(line.slice(0, c) in headers)) headers[line.slice(0, c)] = line.slice(c + 1);
        }
        this.frames.put({ command: head[0]!, headers, body: split === -1 ? '' : frame.slice(split + 2) });
      }
    });
  }

  /** Open a socket to the server's STOMP endpoint. */
  static open(server: HeraldServer, protocols: string[] = ['v12.stomp']): Promise<RawStomp> {
    const ws = new WebSocket(stompUrl(server), protocols);
    return new Promise((resolve, reject) => {
      const c = new RawStomp(ws);
      ws.once('open', () => resolve(c));
      ws.once('error', reject);
    });
  }

  /** Open and CONNECT; resolves with the CONNECTED frame. */
  static async connected(server: HeraldServer, headers: Record<string, string> = {}): Promise<{ raw: RawStomp; frame: RawFrame }> {
    const raw = await RawStomp.open(server);
    raw.send(frame('CONNECT', { 'accept-version': '1.2', host: 'localhost', ...headers }));
    const f = await raw.next();
    if (f.command !== 'CONNECTED') throw new Error(`expected CONNECTED, got ${f.command}: ${f.headers.message}`);
    return { raw, frame: f };
  }

  /** Send raw bytes or text as one WebSocket message. */
  send(data: string | Buffer): void {
    this.ws.send(data);
  }

  /** The next frame. */
  next(timeoutMs = 3_000): Promise<RawFrame> {
    return this.frames.take(() => true, timeoutMs);
  }

  /** Close and wait. */
  async close(): Promise<void> {
    if (this.ws.readyState === WebSocket.CLOSED) return;
    this.ws.close();
    await Promise.race([this.closed, new Promise((r) => setTimeout(r, 1_000))]);
    this.ws.terminate();
  }
}

/** Build a frame's text (headers as given, no escaping). */
export function frame(command: string, headers: Record<string, string> = {}, body = ''): string {
  return `${command}\n${Object.entries(headers)
    .map(([k, v]) => `${k}:${v}\n`)
    .join('')}\n${body}\0`;
}
