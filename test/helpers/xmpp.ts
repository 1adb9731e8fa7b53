/**
 * XMPP clients for tests: the real `@xmpp/client` over WebSocket (RFC 7395) and TCP, and raw
 * clients (a TCP socket, a WebSocket) that send hand-written XML and collect what comes back,
 * for malformed input and protocol violations a well-behaved client cannot produce on demand.
 */
import { connect as tcpConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { client, type Client } from '@xmpp/client';
import type { Element } from '@xmpp/xml';
import { WebSocket } from 'ws';
import type { HeraldServer } from '../../src/index.js';
import { Inbox } from './clients.js';

// @xmpp/websocket uses the WebSocket global, which Node 20 lacks: ws's class is API-compatible.
(globalThis as { WebSocket?: unknown }).WebSocket ??= WebSocket;

/** URL of the XMPP WebSocket endpoint. */
export function xmppWsUrl(server: HeraldServer): string {
  return `${server.url().replace('http', 'ws')}/xmpp-websocket`;
}

/** The TCP port of plain XMPP streams (`xmpp.tcpPort` must be set, 0 in tests). */
export async function xmppTcpPort(server: HeraldServer): Promise<number> {
  const address = await server.xmpp!.listening;
  if (!address) throw new Error('xmpp.tcpPort is not set');
  return address.port;
}

/** An online @xmpp/client with the stanzas it received. */
export interface XmppHandle {
  readonly xmpp: Client;
  readonly stanzas: Inbox<Element>;
  /** The bound full JID. */
  readonly jid: string;
  stop(): Promise<void>;
}

/** Options of `connectXmpp`. */
export interface XmppOptions {
  readonly transport?: 'websocket' | 'tcp';
  readonly username: string;
  readonly password?: string;
  /** SASL mechanism (default PLAIN). */
  readonly mechanism?: 'PLAIN' | 'SCRAM-SHA-1';
  readonly resource?: string;
  readonly domain?: string;
}

/** Start an @xmpp/client (no reconnect) and resolve once it is online (authenticated and bound). */
export async function connectXmpp(server: HeraldServer, o: XmppOptions): Promise<XmppHandle> {
  const service = o.transport === 'tcp' ? `xmpp://127.0.0.1:${await xmppTcpPort(server)}` : xmppWsUrl(server);
  const credentials = { username: o.username, password: o.password ?? 'x' };
  const xmpp = client({
    service,
    domain: o.domain ?? 'localhost',
    resource: o.resource,
    // The client offers PLAIN only on connections it deems secure (TLS or loopback WebSocket): choose it on loopback TCP too.
    credentials: (authenticate: (c: typeof credentials, mechanism: string) => Promise<void>) => authenticate(credentials, o.mechanism ?? 'PLAIN'),
  });
  xmpp.reconnect.stop();
  const stanzas = new Inbox<Element>();
  xmpp.on('stanza', (s: Element) => stanzas.put(s));
  xmpp.on('error', () => undefined);
  const address = await xmpp.start();
  // @xmpp/client 0.14 resets its handled count when it processes <enabled/>, which can happen
  // after stanzas that followed it were counted: its h then stays behind the server's count for
  // good (and the last stanza is never acknowledged). Send nothing before stream management is on.
  const sm = (xmpp as unknown as { streamManagement: { enabled: boolean } }).streamManagement;
  for (let i = 0; i < 200 && !sm.enabled; i++) await new Promise((r) => setTimeout(r, 10));
  return {
    xmpp,
    stanzas,
    jid: address.toString(),
    stop: async () => {
      await xmpp.stop().catch(() => undefined);
    },
  };
}

/** A raw XMPP connection: write XML, read what the server sends, see it close. */
export interface RawXmpp {
  send(xml: string): void;
  /** Resolves once the received text (whole conversation so far) matches `re` or satisfies it, with that text. */
  until(re: RegExp | ((text: string) => boolean), timeoutMs?: number): Promise<string>;
  /** Everything received so far. */
  readonly received: () => string;
  /** Resolves when the server closed the connection. */
  readonly closed: Promise<void>;
  close(): void;
}

function rawConversation(write: (s: string) => void, close: () => void): { raw: RawXmpp; data: (s: string) => void; ended: () => void } {
  let text = '';
  let onClose!: () => void;
  const closed = new Promise<void>((r) => (onClose = r));
  const waiters = new Set<() => void>();
  const raw: RawXmpp = {
    send: write,
    received: () => text,
    closed,
    close,
    until: (re, timeoutMs = 3_000) =>
      new Promise((resolve, reject) => {
        const check = (): void => {
          if (typeof re === 'function' ? re(text) : re.test(text)) {
            waiters.delete(check);
            clearTimeout(timer);
            resolve(text);
          }
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`timed out waiting for ${String(re)}; received: ${text.slice(-1500)}`));
        }, timeoutMs);
        waiters.add(check);
        check();
      }),
  };
  return {
    raw,
    data: (s) => {
      text += s;
      for (const w of [...waiters]) w();
    },
    ended: onClose,
  };
}

/** A raw TCP connection that can switch to TLS after `<proceed/>` (STARTTLS). */
export interface RawTcpXmpp extends RawXmpp {
  /**
   * Wrap the socket in TLS trusting `ca` (what the server sends from then on is appended to the
   * same conversation, decrypted); resolves once the handshake is done, rejects when it fails.
   */
  startTls(ca: string): Promise<TLSSocket>;
  /** Write raw bytes on the current socket (plain or TLS). */
  writeBytes(bytes: Buffer | string): void;
}

/** A raw TCP connection to the XMPP port. */
export async function rawTcp(server: HeraldServer): Promise<RawTcpXmpp> {
  return rawTcpPort(await xmppTcpPort(server));
}

/** A raw TCP connection to the XMPP port `port` on 127.0.0.1 (a node in another process). */
export async function rawTcpPort(port: number): Promise<RawTcpXmpp> {
  let socket: Socket = tcpConnect(port, '127.0.0.1');
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  const { raw, data, ended } = rawConversation(
    (s) => socket.write(s),
    () => socket.destroy(),
  );
  const onData = (s: Buffer): void => data(s.toString('utf8'));
  socket.on('data', onData);
  socket.on('error', () => undefined);
  socket.once('close', ended);
  const startTls = (ca: string): Promise<TLSSocket> => {
    socket.off('data', onData);
    const secure = tlsConnect({ socket, ca, servername: 'localhost' });
    socket = secure;
    secure.on('data', onData);
    secure.on('error', () => undefined);
    return new Promise((resolve, reject) => secure.once('secureConnect', () => resolve(secure)).once('error', reject));
  };
  return Object.assign(raw, { startTls, writeBytes: (bytes: Buffer | string) => socket.write(bytes) });
}

/** A raw WebSocket to the XMPP endpoint; each `send` is one message (binary when `binary`). */
export async function rawWs(server: HeraldServer, protocols: string[] = ['xmpp'], binary = false): Promise<RawXmpp & { readonly protocol: string }> {
  const ws = new WebSocket(xmppWsUrl(server), protocols);
  await new Promise<void>((resolve, reject) => ws.once('open', () => resolve()).once('error', reject));
  const { raw, data, ended } = rawConversation(
    (s) => ws.send(binary ? Buffer.from(s) : s),
    () => ws.terminate(),
  );
  ws.on('message', (m: Buffer) => data(m.toString('utf8')));
  ws.on('error', () => undefined);
  ws.once('close', ended);
  return Object.assign(raw, { protocol: ws.protocol });
}

/** SASL PLAIN initial response for `user` / `password`. */
export function plain(user: string, password = 'x'): string {
  return Buffer.from(`\0${user}\0${password}`).toString('base64');
}

/** The RFC 6120 stream header a TCP client sends. */
export const STREAM_HEADER =
  "<?xml version='1.0'?><stream:stream to='localhost' version='1.0' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>";

/** A raw TCP stream logged in as `user` (SASL PLAIN, development mode) and bound to resource `raw`. */
export async function rawTcpBound(server: HeraldServer, user: string): Promise<RawTcpXmpp> {
  const c = await rawTcp(server);
  c.send(STREAM_HEADER);
  await c.until(/<\/stream:features>/);
  c.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${plain(user)}</auth>`);
  await c.until(/<success/);
  c.send(STREAM_HEADER);
  await c.until(/<bind xmlns="urn:ietf:params:xml:ns:xmpp-bind"\/>/);
  c.send("<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>raw</resource></bind></iq>");
  await c.until(/<jid>[^<]+\/raw<\/jid>/);
  return c;
}
