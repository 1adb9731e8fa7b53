/**
 * Admission in the client-session service, replaying the review's attacks: one address taking
 * every connection slot (per-IP cap, separate from the global one), a connection storm from one
 * address (per-IP rate), one user holding many sessions (per-user cap), and a session living on
 * past its token's `exp` (closed with 3500 unless refreshed, on every front; the SDK refreshes on
 * its own).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { HeraldClient } from '../../clients/js/src/index.js';
import type { HeraldServer } from '../../src/index.js';
import { NdjsonClient, SseClient, WsClient } from '../helpers/clients.js';
import { NODE_IMPLS } from '../helpers/sdk.js';
import { chan, sleep, startServer, waitFor, wsUrl } from '../helpers/server.js';
import { RawStomp } from '../helpers/stomp.js';
import { signToken, TEST_SECRET } from '../helpers/tokens.js';

/** A WebSocket from client address `ip`, relayed by the trusted proxy on loopback. */
const from = (server: HeraldServer, ip: string): Promise<WsClient> => WsClient.open(wsUrl(server), { headers: { 'x-forwarded-for': ip } });

const now = (): number => Math.floor(Date.now() / 1000);

describe('admission limits', () => {
  test('one address cannot take every slot: past its cap it gets 3007 and 429, other addresses still get in', async () => {
    const server = await startServer({ trustedProxies: ['127.0.0.1'], limits: { maxConnections: 50, maxConnectionsPerIp: 5, connectionsPerIpPerSecond: 0 } });
    try {
      const mine = [];
      for (let i = 0; i < 5; i++) mine.push(await from(server, '203.0.113.7'));
      const extra = await from(server, '203.0.113.7');
      assert.equal((await extra.closed).code, 3007);
      const poll = await fetch(`${server.url()}/connection/poll?channel=a`, { headers: { 'x-forwarded-for': '203.0.113.7' } });
      assert.equal(poll.status, 429);
      assert.equal(((await poll.json()) as { code: string }).code, 'HERALD_ERR_LIMIT_EXCEEDED');
      const other = await from(server, '198.51.100.2');
      assert.equal((await other.command('connect')).error, undefined, 'another address is admitted');
      // A slot given back is free again.
      await mine.pop()!.close();
      await waitFor(() => server.core.clients.admitted === 5, 3_000, 'slot released');
      const again = await from(server, '203.0.113.7');
      assert.equal((await again.command('connect')).error, undefined);
      for (const c of [...mine, other, again]) c.terminate();
    } finally {
      await server.close();
    }
  });

  test('a connection storm from one address is cut by the per-IP rate; loopback is exempt unless configured', async () => {
    const server = await startServer({ limits: { connectionsPerIpPerSecond: 2, perIpExempt: [] } });
    try {
      // 12 at once against a bucket of 4 (2/s, burst twice that).
      const cs = await Promise.all(Array.from({ length: 12 }, () => WsClient.open(wsUrl(server))));
      const poll = await fetch(`${server.url()}/connection/poll?channel=a`);
      assert.equal(poll.status, 429);
      assert.equal(((await poll.json()) as { code: string }).code, 'HERALD_ERR_TOO_MANY_REQUESTS');
      const codes = await Promise.all(cs.map((c) => Promise.race([c.closed.then((x) => x.code), sleep(1_000).then(() => 0)])));
      const refused = codes.filter((c) => c === 3007).length;
      assert.ok(refused >= 6 && refused <= 8, `refused: ${codes.join(',')}`);
      for (const c of cs) c.terminate();
    } finally {
      await server.close();
    }
    const local = await startServer({ limits: { connectionsPerIpPerSecond: 1, maxConnectionsPerIp: 1 } });
    try {
      const cs = [];
      for (let i = 0; i < 5; i++) cs.push(await WsClient.connected(wsUrl(local)));
      assert.equal(local.core.hub.connectionCount, 5, 'loopback is in limits.perIpExempt by default');
      for (const c of cs) c.terminate();
    } finally {
      await local.close();
    }
  });

  test('one user cannot hold more sessions than maxConnectionsPerUser (3007), other users can', async () => {
    const server = await startServer({ dev: true, limits: { maxConnectionsPerUser: 2 } });
    try {
      const a1 = await WsClient.connected(wsUrl(server), { user: 'alice' });
      const a2 = await WsClient.connected(wsUrl(server), { user: 'alice' });
      const a3 = await WsClient.open(wsUrl(server));
      const r = await a3.command('connect', { user: 'alice' });
      assert.equal(r.error?.name, 'HERALD_ERR_LIMIT_EXCEEDED');
      assert.equal((await a3.closed).code, 3007);
      const b = await WsClient.connected(wsUrl(server), { user: 'bob' });
      await a1.close();
      await waitFor(() => server.core.hub.connectionCount === 2, 3_000, 'alice left');
      const a4 = await WsClient.connected(wsUrl(server), { user: 'alice' });
      for (const c of [a2, b, a4]) c.terminate();
    } finally {
      await server.close();
    }
  });
});

describe('token expiry', () => {
  test('a session is closed with 3500 when its token expires, and kept open by refresh with a newer token', async () => {
    const server = await startServer({ auth: { hmacSecret: TEST_SECRET } });
    try {
      const exp = now() + 2;
      const stale = await WsClient.connected(wsUrl(server), { token: await signToken('alice', {}, { exp }) });
      const kept = await WsClient.connected(wsUrl(server), { token: await signToken('alice', {}, { exp }) });
      const other = await kept.command('refresh', { token: await signToken('mallory', {}, { exp: now() + 60 }) });
      assert.equal(other.error?.name, 'HERALD_ERR_FORBIDDEN', 'a token of another user is refused');
      const bad = await kept.command('refresh', { token: 'not-a-token' });
      assert.equal(bad.error?.name, 'HERALD_ERR_UNAUTHORIZED');
      const refreshed = await kept.ok('refresh', { token: await signToken('alice', {}, { exp: now() + 60 }) });
      assert.equal(typeof refreshed.exp, 'number');
      const closed = await Promise.race([stale.closed, sleep(5_000).then(() => ({ code: -1, reason: 'still open' }))]);
      assert.equal(closed.code, 3500);
      assert.equal(closed.reason, 'token expired');
      // The refreshed session outlived the first token's exp and still works.
      assert.ok(now() >= exp);
      assert.equal((await kept.command('ping')).error, undefined);
      kept.terminate();
    } finally {
      await server.close();
    }
  });

  test("SSE, NDJSON stream and STOMP sessions are ended with 3500 at their token's expiry too", async () => {
    const server = await startServer({ auth: { hmacSecret: TEST_SECRET } });
    const held: Array<{ close(): unknown }> = [];
    try {
      const exp = now() + 2;
      const auth = { authorization: `Bearer ${await signToken('erin', {}, { exp })}` };
      const sse = await SseClient.open(`${server.url()}/connection/sse?channel=${chan('exp')}`, auth);
      const stream = await NdjsonClient.open(`${server.url()}/connection/stream?channel=${chan('exp')}`, auth);
      const { raw: stomp } = await RawStomp.connected(server, { login: 'erin', passcode: await signToken('erin', {}, { exp }) });
      held.push(sse, stream, stomp);
      assert.equal(sse.status, 200);
      assert.equal(stream.status, 200);
      const ended = (await sse.next('disconnect', () => true, 5_000)).json;
      assert.deepEqual([ended.code, ended.reason, ended.reconnect], [3500, 'token expired', false]);
      await sse.ended;
      const streamEnd = await stream.frames.take((f) => f.type === 'disconnect', 5_000);
      assert.deepEqual([streamEnd.code, streamEnd.reason], [3500, 'token expired']);
      await stream.ended;
      const error = await stomp.next(5_000);
      assert.equal(error.command, 'ERROR');
      assert.equal(error.headers['herald-close-code'], '3500');
      assert.equal((await stomp.closed).code, 3500);
      assert.ok(now() >= exp, 'not before the expiry');
      await waitFor(() => server.core.hub.connectionCount === 0, 3_000, 'every session gone from the hub');
    } finally {
      for (const h of held) await h.close();
      await server.close();
    }
  });

  test('the SDK fetches a new token before exp and keeps its WebSocket session across expiries', async () => {
    const server = await startServer({ auth: { hmacSecret: TEST_SECRET } });
    let issued = 0;
    const client = new HeraldClient({
      url: server.url(),
      ...NODE_IMPLS,
      transports: ['websocket'],
      refreshBeforeMs: 1_200,
      getToken: () => {
        issued++;
        return signToken('tess', {}, { exp: now() + 2 });
      },
    });
    const drops: number[] = [];
    client.on('disconnected', (e) => drops.push(e.code));
    try {
      await client.connect();
      await sleep(4_500);
      assert.deepEqual(drops, [], 'never closed for an expired token');
      assert.equal(client.state, 'connected');
      assert.ok(issued >= 3, `tokens fetched: ${issued}`);
      assert.equal(server.core.hub.connectionCount, 1);
    } finally {
      client.disconnect();
      await server.close();
    }
  });
});
