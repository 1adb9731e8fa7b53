/**
 * The server API for backends (/api/*), /health, /metrics and the HTTP command endpoint
 * (/connection/command), over real HTTP with fetch.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ErrorCode, type HeraldServer } from '../../src/index.js';
import { WsClient } from '../helpers/clients.js';
import { chan, publish, startServer, wsUrl } from '../helpers/server.js';
import { signToken, TEST_SECRET } from '../helpers/tokens.js';

interface Answer {
  status: number;
  headers: Headers;
  body: any;
}

async function call(base: string, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Answer> {
  const init: RequestInit = { method, headers: { ...headers } };
  if (body !== undefined) {
    init.body = typeof body === 'string' ? body : Buffer.isBuffer(body) ? new Uint8Array(body) : JSON.stringify(body);
    if (typeof body !== 'string' && !Buffer.isBuffer(body)) (init.headers as Record<string, string>)['content-type'] = 'application/json';
  }
  const res = await fetch(base + path, init);
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON (metrics)
  }
  return { status: res.status, headers: res.headers, body: parsed };
}

describe('server API', () => {
  let server: HeraldServer;
  let base: string;
  const api = (method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<Answer> => call(base, method, path, body, headers);

  before(async () => {
    server = await startServer({
      auth: { hmacSecret: TEST_SECRET },
      limits: { maxMessageBytes: 1024 },
      namespaces: [
        { name: 'chat', allowPublish: true },
        { name: 'private', requireToken: true, allowPublish: true },
      ],
    });
    base = server.url();
  });
  after(async () => {
    await server.close();
  });

  describe('publish', () => {
    test('a JSON publish returns the position and reaches subscribers', async () => {
      const ch = chan();
      const c = await WsClient.connected(wsUrl(server));
      try {
        await c.ok('subscribe', { channel: ch });
        const r = await api('POST', '/api/publish', { channel: ch, data: { hello: 'world' }, event: 'greeting' });
        assert.equal(r.status, 200);
        assert.match(r.headers.get('content-type')!, /^application\/json/);
        const [res] = r.body.results;
        assert.deepEqual(Object.keys(res).sort(), ['channel', 'epoch', 'offset', 'position']);
        assert.equal(res.offset, 1);
        assert.equal(res.position, `${res.epoch}:1`);
        const pub = await c.nextPub(ch);
        assert.deepEqual(pub.data, { hello: 'world' });
        assert.equal(pub.event, 'greeting');
        assert.equal(pub.epoch, res.epoch);
      } finally {
        await c.close();
      }
    });

    test('a raw body is published with its content type passed through', async () => {
      const ch = chan();
      const c = await WsClient.connected(wsUrl(server));
      try {
        await c.ok('subscribe', { channel: ch });
        const r = await api('POST', `/api/publish?channel=${ch}&event=e1`, '<b>hi</b>', { 'content-type': 'text/html; charset=utf-8' });
        assert.equal(r.status, 200);
        const pub = await c.nextPub(ch);
        assert.deepEqual({ data: pub.data, contentType: pub.contentType, event: pub.event }, { data: '<b>hi</b>', contentType: 'text/html', event: 'e1' });
      } finally {
        await c.close();
      }
    });

    test('one publish reaches several channels, as JSON `channels` or repeated ?channel=', async () => {
      const a = chan();
      const b = chan();
      const json = await api('POST', '/api/publish', { channels: [a, b], data: 1 });
      assert.deepEqual(
        json.body.results.map((r: { channel: string; offset: number }) => [r.channel, r.offset]),
        [
          [a, 1],
          [b, 1],
        ],
      );
      const raw = await api('POST', `/api/publish?channel=${a}&channel=${b}`, 'two', { 'content-type': 'text/plain' });
      assert.deepEqual(
        raw.body.results.map((r: { channel: string; offset: number }) => [r.channel, r.offset]),
        [
          [a, 2],
          [b, 2],
        ],
      );
    });

    test('a raw publish declared application/json must be JSON (400 otherwise)', async () => {
      const ch = chan();
      const bad = await api('POST', `/api/publish?channel=${ch}`, '{"a":1', { 'content-type': 'application/json' });
      assert.equal(bad.status, 400);
      assert.equal(bad.body.code, 'HERALD_ERR_MALFORMED_JSON');
      const good = await api('POST', `/api/publish?channel=${ch}`, '{"a":1}', { 'content-type': 'application/json' });
      assert.equal(good.status, 200);
      assert.equal(good.body.results[0].offset, 1);
    });

    test('invalid publish bodies are 400 with every problem named', async () => {
      const both = await api('POST', '/api/publish', { channel: 'a', channels: ['b'], data: 1 });
      assert.equal(both.status, 400);
      assert.equal(both.body.code, 'HERALD_ERR_BAD_REQUEST');
      assert.match(both.body.message, /exactly one/);
      const noData = await api('POST', '/api/publish', { channel: 'a' });
      assert.equal(noData.status, 400);
      assert.match(noData.body.message, /data/);
      const unknownKey = await api('POST', '/api/publish', { channel: 'a', data: 1, colour: 'red' });
      assert.equal(unknownKey.status, 400);
      const rawNoChannel = await api('POST', '/api/publish', 'x', { 'content-type': 'text/plain' });
      assert.equal(rawNoChannel.status, 400);
    });

    test('an invalid channel name is 400 HERALD_ERR_INVALID_CHANNEL and nothing is published', async () => {
      const ok = chan();
      const r = await api('POST', '/api/publish', { channels: [ok, 'bad name'], data: 1 });
      assert.equal(r.status, 400);
      assert.equal(r.body.code, 'HERALD_ERR_INVALID_CHANNEL');
      assert.equal((await api('GET', `/api/channels/${ok}`)).body.offset, 0);
    });
  });

  describe('channels', () => {
    test('channel info reports position, buffered publications and subscribers', async () => {
      const ch = chan();
      await publish(server, ch, 1);
      const [p] = await publish(server, ch, 2);
      const c = await WsClient.connected(wsUrl(server));
      try {
        await c.ok('subscribe', { channel: ch });
        const r = await api('GET', `/api/channels/${ch}`);
        assert.equal(r.status, 200);
        assert.deepEqual(r.body, { channel: ch, position: p!.position, epoch: p!.epoch, offset: 2, buffered: 2, subscribers: 1 });
      } finally {
        await c.close();
      }
    });

    test('channels are listed by prefix, sorted, with a limit', async () => {
      const prefix = `${chan('list')}:`;
      for (const name of ['b', 'a', 'c']) await publish(server, prefix + name, name);
      await publish(server, chan('elsewhere'), 0);
      const r = await api('GET', `/api/channels?prefix=${encodeURIComponent(prefix)}`);
      assert.equal(r.status, 200);
      assert.deepEqual(
        r.body.channels.map((c: { channel: string }) => c.channel),
        [prefix + 'a', prefix + 'b', prefix + 'c'],
      );
      assert.deepEqual(Object.keys(r.body.channels[0]).sort(), ['buffered', 'channel', 'position', 'subscribers']);
      const limited = await api('GET', `/api/channels?prefix=${encodeURIComponent(prefix)}&limit=2`);
      assert.equal(limited.body.channels.length, 2);
      assert.equal((await api('GET', '/api/channels?limit=0')).status, 400);
    });

    test('deleting a channel tells its subscribers and drops its history; an unknown channel is 404', async () => {
      const ch = chan();
      await publish(server, ch, 1);
      const c = await WsClient.connected(wsUrl(server));
      try {
        await c.ok('subscribe', { channel: ch });
        const r = await api('DELETE', `/api/channels/${ch}`);
        assert.deepEqual(r.body, { channel: ch, deleted: true, subscribers: 1 });
        assert.equal((await c.pushes.take((f) => f.type === 'unsubscribed')).channel, ch);
        assert.equal((await api('GET', `/api/channels/${ch}`)).body.buffered, 0);
      } finally {
        await c.close();
      }
      const missing = await api('DELETE', `/api/channels/${chan('never')}`);
      assert.equal(missing.status, 404);
      assert.equal(missing.body.code, 'HERALD_ERR_CHANNEL_NOT_FOUND');
    });

    test('stats report the node, counters and connections by transport', async () => {
      const c = await WsClient.connected(wsUrl(server));
      try {
        const before = (await api('GET', '/api/stats')).body;
        await publish(server, chan(), 1);
        const r = await api('GET', '/api/stats');
        assert.equal(r.status, 200);
        assert.equal(r.body.node, server.core.nodeId);
        assert.equal(r.body.published, before.published + 1);
        assert.ok(r.body.connectionsByTransport.websocket >= 1);
        assert.ok(r.body.memory.rss > 0);
        for (const k of ['delivered', 'connections', 'subscriptions', 'channels', 'uptimeMs']) assert.equal(typeof r.body[k], 'number', k);
      } finally {
        await c.close();
      }
    });
  });

  describe('errors', () => {
    test('errors are JSON {code, message}: malformed JSON 400, oversized 413, unknown endpoint 404, wrong method 405', async () => {
      const cases: Array<[string, string, unknown, Record<string, string>, number, string]> = [
        ['POST', '/api/publish', '{"channel":', { 'content-type': 'application/json' }, 400, 'HERALD_ERR_MALFORMED_JSON'],
        ['POST', `/api/publish?channel=x`, 'x'.repeat(1024 + 4096 + 1), { 'content-type': 'text/plain' }, 413, 'HERALD_ERR_PAYLOAD_TOO_LARGE'],
        ['POST', '/api/publish', { channel: 'x', data: 'y'.repeat(1100) }, {}, 413, 'HERALD_ERR_PAYLOAD_TOO_LARGE'],
        ['GET', '/api/nope', undefined, {}, 404, 'HERALD_ERR_NOT_FOUND'],
        ['GET', '/nope', undefined, {}, 404, 'HERALD_ERR_NOT_FOUND'],
        ['GET', '/api/publish', undefined, {}, 405, 'HERALD_ERR_METHOD_NOT_ALLOWED'],
        ['PUT', '/api/channels/x', undefined, {}, 405, 'HERALD_ERR_METHOD_NOT_ALLOWED'],
        ['GET', '/api/channels/bad%20name', undefined, {}, 400, 'HERALD_ERR_INVALID_CHANNEL'],
        ['GET', '/api/channels/%E0%A4%A', undefined, {}, 400, 'HERALD_ERR_BAD_REQUEST'],
        ['DELETE', '/api/channels/%ZZ', undefined, {}, 400, 'HERALD_ERR_BAD_REQUEST'],
      ];
      for (const [method, path, body, headers, status, code] of cases) {
        const r = await api(method, path, body, headers);
        assert.equal(r.status, status, `${method} ${path}`);
        assert.deepEqual(Object.keys(r.body).sort(), ['code', 'message'], `${method} ${path}`);
        assert.equal(r.body.code, code, `${method} ${path}`);
      }
    });
  });

  describe('health and metrics', () => {
    test('/health answers ok with the node id and connection count', async () => {
      const r = await api('GET', '/health');
      assert.equal(r.status, 200);
      assert.deepEqual(Object.keys(r.body).sort(), ['connections', 'dev', 'node', 'status']);
      assert.equal(r.body.dev, false);
      assert.equal(r.body.status, 'ok');
      assert.equal(r.body.node, server.core.nodeId);
    });

    test('/metrics is Prometheus text with connections, publications, deliveries, latency and slow consumers', async () => {
      const ch = chan();
      const c = await WsClient.connected(wsUrl(server));
      try {
        await c.ok('subscribe', { channel: ch });
        await publish(server, ch, 1);
        await c.nextPub(ch);
        const r = await api('GET', '/metrics');
        assert.equal(r.status, 200);
        assert.match(r.headers.get('content-type')!, /^text\/plain/);
        const text = r.body as string;
        assert.match(text, /^herald_connections\{transport="websocket"\} [1-9]/m);
        assert.match(text, /^herald_messages_published_total\{source="api"\} [1-9]/m);
        assert.match(text, /^herald_messages_delivered_total [1-9]/m);
        assert.match(text, /^herald_delivery_latency_seconds_count [1-9]/m);
        assert.match(text, /^# TYPE herald_delivery_latency_seconds histogram/m);
        assert.match(text, /^# TYPE herald_slow_consumers_dropped_total counter/m);
        assert.match(text, /^herald_subscriptions [1-9]/m);
      } finally {
        await c.close();
      }
    });
  });

  describe('HTTP command endpoint', () => {
    const cmd = (body: unknown, headers: Record<string, string> = {}): Promise<Answer> =>
      api('POST', '/connection/command', body, { 'content-type': 'application/json', ...headers });

    test('publish and history run over POST /connection/command with the id echoed', async () => {
      const ch = chan('chat:http');
      const p = await cmd({ id: 7, cmd: 'publish', channel: ch, data: { n: 1 } });
      assert.equal(p.status, 200);
      assert.equal(p.body.id, 7);
      assert.equal(p.body.result.offset, 1);
      const h = await cmd({ id: 8, cmd: 'history', channel: ch });
      assert.deepEqual(
        h.body.result.publications.map((x: { data: unknown }) => x.data),
        [{ n: 1 }],
      );
      assert.equal(h.body.result.offset, 1);
    });

    test('malformed JSON is 400, an oversized body 413, an unknown command 400 with wire code 104, GET 405', async () => {
      const bad = await cmd('{"cmd":');
      assert.equal(bad.status, 400);
      assert.equal(bad.body.code, 'HERALD_ERR_MALFORMED_JSON');
      const big = await cmd({ cmd: 'publish', channel: 'chat:x', data: 'y'.repeat(2000) });
      assert.equal(big.status, 413);
      const unknown = await cmd({ id: 1, cmd: 'teleport' });
      assert.equal(unknown.status, 400);
      assert.equal(unknown.body.code, 'HERALD_ERR_UNKNOWN_COMMAND');
      const badParams = await cmd({ id: 1, cmd: 'history', channel: 5 });
      assert.equal(badParams.status, 400);
      const get = await api('GET', '/connection/command');
      assert.equal(get.status, 405);
    });

    test('a command on a token-only channel is 401 without a token and runs with a Bearer token', async () => {
      const ch = chan('private:cmd');
      const anon = await cmd({ id: 1, cmd: 'publish', channel: ch, data: 1 });
      assert.equal(anon.status, 401);
      assert.equal(anon.body.error.code, ErrorCode.UNAUTHORIZED);
      const badToken = await cmd({ id: 1, cmd: 'publish', channel: ch, data: 1 }, { authorization: 'Bearer nope' });
      assert.equal(badToken.status, 401);
      const ok = await cmd({ id: 2, cmd: 'publish', channel: ch, data: 1 }, { authorization: `Bearer ${await signToken('erin')}` });
      assert.equal(ok.status, 200);
      assert.equal(ok.body.result.offset, 1);
    });

    test('publishing where clients may not is 403 with wire code 103', async () => {
      const r = await cmd({ id: 3, cmd: 'publish', channel: chan('plain'), data: 1 });
      assert.equal(r.status, 403);
      assert.equal(r.body.error.code, ErrorCode.PERMISSION_DENIED);
    });
  });
});

describe('server API with an API key', () => {
  const KEY = 'k-0123456789abcdef-secret';
  let server: HeraldServer;
  before(async () => {
    server = await startServer({ apiKey: KEY });
  });
  after(async () => {
    await server.close();
  });

  test('requests without the key are 401; `Authorization: apikey` and `X-API-Key` are accepted', async () => {
    const base = server.url();
    const none = await call(base, 'GET', '/api/stats');
    assert.equal(none.status, 401);
    assert.equal(none.body.code, 'HERALD_ERR_UNAUTHORIZED');
    assert.equal((await call(base, 'GET', '/api/stats', undefined, { authorization: 'apikey wrong-key-0123456789' })).status, 401);
    assert.equal((await call(base, 'GET', '/api/stats', undefined, { 'x-api-key': KEY.slice(0, -1) })).status, 401);
    assert.equal((await call(base, 'GET', '/api/stats', undefined, { authorization: `apikey ${KEY}` })).status, 200);
    assert.equal((await call(base, 'GET', '/api/stats', undefined, { 'x-api-key': KEY })).status, 200);
    assert.equal((await call(base, 'POST', '/api/publish', { channel: 'c', data: 1 })).status, 401);
    assert.equal((await call(base, 'POST', '/api/publish', { channel: 'c', data: 1 }, { 'x-api-key': KEY })).status, 200);
  });

  test('/metrics needs the key too; /health does not', async () => {
    const base = server.url();
    assert.equal((await call(base, 'GET', '/metrics')).status, 401);
    assert.equal((await call(base, 'GET', '/metrics', undefined, { 'x-api-key': KEY })).status, 200);
    assert.equal((await call(base, 'GET', '/health')).status, 200);
  });
});
