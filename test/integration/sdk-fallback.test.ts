/**
 * The SDK picks the next transport when WebSocket is missing or blocked, keeps the same API on
 * the fallback, and finds its node through a dispatcher.
 *
 * "Blocked" is a real TCP listener that accepts and never answers the upgrade (what a proxy that
 * swallows WebSocket looks like to a client); the SDK must give up after `openTimeoutMs`.
 */
import assert from 'node:assert/strict';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import { after, afterEach, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import type { HeraldClient } from '../../clients/js/src/index.js';
import type { WebSocketCtor } from '../../clients/js/src/types.js';
import type { HeraldServer } from '../../src/index.js';
import { PubLog, sdkClient } from '../helpers/sdk.js';
import { chan, publish, startServer, waitFor } from '../helpers/server.js';

void describe('SDK transport fallback and dispatcher', () => {
  let server: HeraldServer;
  let blackhole: NetServer;
  let blackholePort = 0;
  const sockets = new Set<Socket>();
  const clients: HeraldClient[] = [];

  /** A WebSocket class whose connections go to the black hole. */
  const BlockedWebSocket = class extends WebSocket {
    constructor(_url: string) {
      super(`ws://127.0.0.1:${blackholePort}/connection/websocket`);
    }
  } as unknown as WebSocketCtor;

  before(async () => {
    server = await startServer({ dev: true, namespaces: [{ name: 'chat', allowPublish: true }] });
    blackhole = createNetServer((s) => {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => undefined);
    });
    await new Promise<void>((r) => blackhole.listen(0, '127.0.0.1', r));
    blackholePort = (blackhole.address() as { port: number }).port;
  });
  afterEach(() => {
    for (const c of clients.splice(0)) c.disconnect();
  });
  after(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((r) => blackhole.close(r));
    await server.close();
  });

  void it('falls back to SSE when WebSocket does not open in time, with the same API', async () => {
    const c = sdkClient(server, undefined, { user: 'alice', WebSocket: BlockedWebSocket, openTimeoutMs: 300 });
    clients.push(c);
    const ch = `chat:${chan('fb')}`;
    const log = new PubLog(c.subscribe(ch));
    await c.connect();
    assert.equal(c.transport, 'sse');
    await c.getSubscription(ch)!.ready();
    await c.publish(ch, 'from-client');
    await publish(server, ch, 'from-api');
    await log.count(2);
    assert.deepEqual(log.data, ['from-client', 'from-api']);
  });

  void it('falls back to long-poll when neither WebSocket nor EventSource exists', async () => {
    const c = sdkClient(server, undefined, { user: 'alice', WebSocket: undefined, EventSource: undefined });
    clients.push(c);
    const ch = chan('fb');
    const log = new PubLog(c.subscribe(ch));
    await c.connect();
    assert.equal(c.transport, 'long-poll');
    await c.getSubscription(ch)!.ready();
    await publish(server, ch, 1);
    await log.count(1);
  });

  void it('reconnects on the transport that worked instead of waiting for WebSocket again', async () => {
    const c = sdkClient(server, undefined, { user: 'alice', WebSocket: BlockedWebSocket, openTimeoutMs: 300 });
    clients.push(c);
    const ch = chan('fb');
    const sub = c.subscribe(ch);
    const log = new PubLog(sub);
    await c.connect();
    await sub.ready();
    await publish(server, ch, 1);
    await log.count(1);
    const started = Date.now();
    server.core.disconnectAll(3002, 'drop');
    await publish(server, ch, 2);
    await log.count(2);
    assert.equal(c.transport, 'sse');
    assert.ok(Date.now() - started < 2_000);
    assert.deepEqual(log.data, [1, 2]);
  });

  void it('moves to a backup node from the dispatcher when the primary is down', async () => {
    const dead = createNetServer();
    await new Promise<void>((r) => dead.listen(0, '127.0.0.1', r));
    const deadUrl = `http://127.0.0.1:${(dead.address() as { port: number }).port}`;
    await new Promise((r) => dead.close(r)); // nothing listens there any more: connection refused
    const dispatcher: Server = createHttpServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ primary: deadUrl, backups: [server.url()] }));
    });
    await new Promise<void>((r) => dispatcher.listen(0, '127.0.0.1', r));
    try {
      const c = sdkClient(server, undefined, {
        url: undefined,
        dispatcher: `http://127.0.0.1:${(dispatcher.address() as { port: number }).port}`,
        user: 'alice',
      });
      clients.push(c);
      const ch = chan('backup');
      const log = new PubLog(c.subscribe(ch));
      await c.connect();
      assert.equal(c.info?.node, server.url());
      assert.equal(c.transport, 'websocket');
      await c.getSubscription(ch)!.ready();
      await publish(server, ch, 'via backup');
      await log.count(1);
      c.disconnect();
    } finally {
      dispatcher.closeAllConnections();
      await new Promise((r) => dispatcher.close(r));
    }
  });

  void it('asks the dispatcher for a node, and goes back to it on reconnect', async () => {
    const asked: string[] = [];
    const dispatcher: Server = createHttpServer((req, res) => {
      asked.push(req.url ?? '');
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ primary: server.url(), backups: [] }));
    });
    await new Promise<void>((r) => dispatcher.listen(0, '127.0.0.1', r));
    try {
      const url = `http://127.0.0.1:${(dispatcher.address() as { port: number }).port}`;
      const c = sdkClient(server, 'websocket', { url: undefined, dispatcher: url, user: 'alice' });
      clients.push(c);
      await c.connect();
      assert.equal(c.info?.node, server.url());
      assert.deepEqual(asked, ['/dispatch?user=alice']);
      server.core.disconnectAll(3005, 'move');
      await waitFor(() => asked.length === 2 && c.state === 'connected', 3_000, 'second dispatch');
      c.disconnect();
    } finally {
      dispatcher.closeAllConnections();
      await new Promise((r) => dispatcher.close(r));
    }
  });
});
