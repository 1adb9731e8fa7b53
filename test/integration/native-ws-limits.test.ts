/**
 * Limits and liveness of native WebSocket connections: frame size, subscriptions, command rate,
 * connect timeout, heartbeats, slow consumers, the send timeout and the connection cap (shared by every front). Each test runs its own
 * server with the limit shrunk.
 */
import assert from 'node:assert/strict';
import type { Duplex } from 'node:stream';
import { afterEach, describe, test } from 'node:test';
import { ErrorCode, type HeraldServer } from '../../src/index.js';
import { WsClient } from '../helpers/clients.js';
import { chan, publish, startServer, waitFor, wsUrl } from '../helpers/server.js';

describe('native WebSocket limits and liveness', () => {
  let server: HeraldServer | undefined;
  const clients: WsClient[] = [];
  const start = async (config: Record<string, unknown>): Promise<HeraldServer> => {
    server = await startServer(config);
    return server;
  };
  const connected = async (s: HeraldServer, options = {}): Promise<WsClient> => {
    const c = await WsClient.connected(wsUrl(s), {}, options);
    clients.push(c);
    return c;
  };
  afterEach(async () => {
    for (const c of clients.splice(0)) c.terminate();
    await server?.close();
    server = undefined;
  });

  test('a frame larger than maxMessageBytes closes the connection with 1009', async () => {
    const s = await start({ limits: { maxMessageBytes: 1024 } });
    const c = await connected(s);
    c.send({ id: 1, cmd: 'ping', pad: 'x'.repeat(2000) });
    assert.equal((await c.closed).code, 1009);
  });

  test('subscriptions past maxChannelsPerConnection get error 106', async () => {
    const s = await start({ limits: { maxChannelsPerConnection: 2 } });
    const c = await connected(s);
    await c.ok('subscribe', { channel: chan() });
    await c.ok('subscribe', { channel: chan() });
    const r = await c.command('subscribe', { channel: chan() });
    assert.equal(r.error?.code, ErrorCode.LIMIT_EXCEEDED);
    assert.equal(s.core.hub.subscriptionCount, 2);
  });

  test('pipelined subscribes cannot overshoot maxChannelsPerConnection: exactly the limit succeeds', async () => {
    const s = await start({ limits: { maxChannelsPerConnection: 8 } });
    const c = await connected(s);
    // 40 subscribes in one burst, none awaited before the next is sent.
    const replies = await Promise.all(Array.from({ length: 40 }, () => c.command('subscribe', { channel: chan('burst') })));
    assert.equal(replies.filter((r) => !r.error).length, 8);
    assert.ok(replies.filter((r) => r.error).every((r) => r.error!.code === ErrorCode.LIMIT_EXCEEDED));
    assert.equal(s.core.hub.subscriptionCount, 8);
  });

  test('a binary frame that is not valid UTF-8 closes with 3501 instead of being rewritten', async () => {
    const s = await start({});
    const c = await connected(s);
    // {"id":2,"cmd":"publish","params":{"channel":"x","data":"\xff"}} with a raw 0xff byte.
    const head = Buffer.from('{"id":2,"cmd":"publish","params":{"channel":"x","data":"');
    c.send(Buffer.concat([head, Buffer.from([0xff]), Buffer.from('"}}')]));
    const closed = await c.closed;
    assert.equal(closed.code, 3501);
    assert.match(closed.reason, /not valid UTF-8/);
  });

  test('a command flood beyond commandsPerSecond closes with 3505', async () => {
    const s = await start({ limits: { commandsPerSecond: 5 } });
    const c = await connected(s);
    for (let i = 0; i < 10; i++) c.send({ id: 100 + i, cmd: 'ping' });
    assert.equal((await c.closed).code, 3505);
  });

  test('commands within the rate are all answered', async () => {
    const s = await start({ limits: { commandsPerSecond: 20 } });
    const c = await connected(s);
    const replies = await Promise.all(Array.from({ length: 10 }, () => c.command('ping')));
    assert.equal(replies.filter((r) => r.result).length, 10);
  });

  test('a socket that never sends connect is closed with 3006 after connectTimeoutMs', async () => {
    const s = await start({ timing: { connectTimeoutMs: 300 } });
    const c = await WsClient.open(wsUrl(s));
    clients.push(c);
    const t0 = Date.now();
    assert.equal((await c.closed).code, 3006);
    const took = Date.now() - t0;
    assert.ok(took >= 250 && took < 3_000, `closed after ${took} ms`);
  });

  test('a client that does not answer pings is dropped within two ping intervals', async () => {
    const s = await start({ timing: { pingIntervalMs: 300 } });
    // Pings are counted from the moment the socket opens, so none is missed under load.
    const c = await WsClient.open(wsUrl(s), { autoPong: false });
    clients.push(c);
    const t0 = Date.now();
    let pings = 0;
    c.ws.on('ping', () => pings++);
    assert.ok((await c.command('connect', {})).result, 'connected');
    await c.closed;
    const took = Date.now() - t0;
    // Counted in heartbeats (one unanswered ping, then the drop) so a loaded machine cannot
    // make it flaky; the wall-clock bound only catches a missing heartbeat.
    assert.ok(pings >= 1 && pings <= 2, `dropped after ${pings} pings`);
    assert.ok(took <= 3 * 300 + 1_000, `dropped after ${took} ms`);
    await waitFor(() => s.core.hub.connectionCount === 0, 1_000, 'connection to be forgotten');
  });

  test('a client that answers pings stays connected across several intervals', async () => {
    const s = await start({ timing: { pingIntervalMs: 300 } });
    const c = await connected(s);
    let pings = 0;
    c.ws.on('ping', () => pings++);
    await waitFor(() => pings >= 4 || c.ws.readyState !== c.ws.OPEN, 10_000, 'four pings');
    assert.equal(c.ws.readyState, c.ws.OPEN);
    assert.ok(pings >= 4);
    assert.deepEqual(await c.ok('ping'), {});
  });

  test('a slow consumer is disconnected once its outbound buffer passes the limit, and counted in /metrics', async () => {
    // Long ping interval: the paused client cannot answer pings and must not be dropped as dead.
    const s = await start({ limits: { maxOutboundBytes: 1024 * 1024 }, timing: { pingIntervalMs: 60_000 } });
    const ch = chan();
    const slow = await connected(s);
    await slow.ok('subscribe', { channel: ch });
    const fast = await connected(s);
    await fast.ok('subscribe', { channel: ch });
    let fastGot = 0;
    fast.ws.on('message', () => fastGot++);
    // Stop reading: the kernel buffers fill, then the server's user-space buffer grows.
    const sock = (slow.ws as unknown as { _socket: Duplex })._socket;
    sock.pause();
    const big = 'x'.repeat(60_000);
    let sent = 0;
    while (s.core.hub.connectionCount > 1 && sent < 2_000) {
      await Promise.all(Array.from({ length: 5 }, () => publish(s, ch, big)));
      sent += 5;
      // The reading subscriber keeps up (never more than 5 publications behind the limit).
      await waitFor(() => fastGot >= sent, 10_000, 'the reading subscriber to keep up');
    }
    assert.equal(s.core.hub.connectionCount, 1, `slow consumer still connected after ${sent} publications`);
    assert.equal(fast.ws.readyState, fast.ws.OPEN, 'the reading subscriber was not dropped');
    sock.resume();
    const closed = await slow.closed;
    assert.notEqual(closed.code, 1000);
    await waitFor(() => fastGot >= sent, 10_000, 'the fast subscriber to get everything');
    const metrics = await (await fetch(`${s.url()}/metrics`)).text();
    assert.match(metrics, /herald_slow_consumers_dropped_total\{transport="websocket"\} 1\b/);
  });

  test('idle connections are not watched by the send timeout; a WebSocket whose peer stops reading is cut by it', async () => {
    // A large buffer cap and a long ping interval: only the send timeout can cut the stuck reader.
    const s = await start({ limits: { maxOutboundBytes: 64 * 1024 * 1024 }, timing: { sendTimeoutMs: 400, pingIntervalMs: 60_000 } });
    const ch = chan();
    const idle = await Promise.all(Array.from({ length: 20 }, () => connected(s)));
    for (const c of idle) await c.ok('subscribe', { channel: chan() });
    // Their answers are written and drained: after a sweep no idle socket is left on the watch list.
    await waitFor(() => s.sendTimeout.watched === 0, 2_000, 'idle sockets to leave the watch list');
    const stuck = await connected(s);
    await stuck.ok('subscribe', { channel: ch });
    const sock = (stuck.ws as unknown as { _socket: Duplex })._socket;
    sock.pause();
    const big = 'x'.repeat(60_000);
    // More than the kernel's socket buffers take, far below the buffer cap.
    for (let i = 0; i < 100; i++) await publish(s, ch, big);
    assert.ok(s.sendTimeout.watched >= 1, 'the stuck socket is watched');
    await waitFor(() => s.sendTimeout.cut === 1, 5_000, 'the stuck socket to be cut');
    sock.resume();
    assert.notEqual((await stuck.closed).code, 1000);
    for (const c of idle) assert.equal(c.ws.readyState, c.ws.OPEN, 'an idle connection was cut');
    await waitFor(() => s.sendTimeout.watched === 0, 2_000, 'the watch list to empty');
  });

  test('connections past maxConnections are closed with 3007; HTTP subscribers get 503', async () => {
    const s = await start({ limits: { maxConnections: 2 } });
    await connected(s);
    await connected(s);
    const third = await WsClient.open(wsUrl(s));
    clients.push(third);
    assert.equal((await third.closed).code, 3007);
    const res = await fetch(`${s.url()}/connection/sse?channel=x`);
    assert.equal(res.status, 503);
    assert.equal(((await res.json()) as { code: string }).code, 'HERALD_ERR_UNAVAILABLE');
    assert.equal(s.core.hub.connectionCount, 2);
    // The cap is the node's, whatever the front: Nchan and STOMP clients are refused too.
    const nchan = await fetch(`${s.url()}/sub/capped`, { headers: { accept: 'text/event-stream' } });
    assert.equal(nchan.status, 503);
    await nchan.body?.cancel();
    const stomp = await WsClient.open(`${s.url().replace('http', 'ws')}/stomp`);
    clients.push(stomp);
    assert.equal((await stomp.closed).code, 3007);
    // Refused clients leave no slot taken: once one session closes, a new client gets in.
    clients.shift()!.terminate();
    await waitFor(() => s.core.clients.admitted === 1, 3_000, 'a free slot');
    const fourth = await connected(s);
    assert.equal(s.core.hub.connectionCount, 2);
    await fourth.close();
  });
});
