/**
 * Network trust, replaying the attacks of the exposure review: loopback is no longer trusted
 * unless configured, a same-host proxy does not turn the Internet into loopback, trusted proxies
 * are honoured only from their addresses, the Nchan publisher and status routes are guarded like
 * the API, and the API refuses cross-site requests, rebound Host headers and non-JSON bodies.
 */
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { describe, test } from 'node:test';
import type { HeraldServer } from '../../src/index.js';
import { keyEquals } from '../../src/core/net-policy.js';
import { startServer } from '../helpers/server.js';

const KEY = 'k'.repeat(32);

interface Answer {
  readonly status: number;
  readonly body: string;
  readonly headers: Record<string, string | string[] | undefined>;
}

/** One raw HTTP request (node:http, so Host and every other header go out exactly as given). */
function raw(server: HeraldServer, method: string, path: string, headers: Record<string, string> = {}, body?: string): Promise<Answer> {
  const { port } = server.address();
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, method, path, headers: { ...(body !== undefined ? { 'content-length': String(Buffer.byteLength(body)) } : {}), ...headers } },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text, headers: res.headers }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** Start a server with loopback trust as given (the test helper turns it on by default). */
const start = (config: Record<string, unknown> = {}): Promise<HeraldServer> => startServer({ trustLoopback: false, ...config });

describe('loopback trust', () => {
  test('without trustLoopback a key-less loopback client gets none of the API, /metrics, /admin or the IM send', async () => {
    const server = await start({ trustLoopback: undefined });
    try {
      assert.equal((await raw(server, 'GET', '/api/stats')).status, 401);
      assert.equal((await raw(server, 'GET', '/metrics')).status, 401);
      assert.equal((await raw(server, 'GET', '/admin')).status, 401);
      const send = await raw(server, 'POST', '/api/im/send', { 'content-type': 'application/json' }, JSON.stringify({ from: 'alice', to: 'bob', data: 'hi' }));
      assert.equal(send.status, 401);
      assert.equal(JSON.parse(send.body).code, 'HERALD_ERR_UNAUTHORIZED');
      assert.equal((await raw(server, 'POST', '/api/revoke', { 'content-type': 'application/json' }, JSON.stringify({ user: 'alice' }))).status, 401);
      assert.equal((await raw(server, 'POST', '/api/drain')).status, 401);
    } finally {
      await server.close();
    }
  });

  test('development mode trusts loopback by default and says so in /health and stats', async () => {
    const server = await start({ trustLoopback: undefined, dev: true });
    try {
      const stats = await raw(server, 'GET', '/api/stats');
      assert.equal(stats.status, 200);
      assert.equal(JSON.parse(stats.body).dev, true);
      assert.equal(JSON.parse((await raw(server, 'GET', '/health')).body).dev, true);
    } finally {
      await server.close();
    }
  });

  test('a same-host proxy that is not a trusted proxy gets no loopback trust (its clients are not loopback)', async () => {
    const server = await start({ trustLoopback: true });
    try {
      assert.equal((await raw(server, 'GET', '/api/stats')).status, 200);
      assert.equal((await raw(server, 'GET', '/api/stats', { 'x-forwarded-for': '203.0.113.9' })).status, 401);
      assert.equal((await raw(server, 'GET', '/api/stats', { forwarded: 'for=203.0.113.9' })).status, 401);
      assert.equal((await raw(server, 'GET', '/api/stats', { 'x-real-ip': '203.0.113.9' })).status, 401);
      assert.equal((await raw(server, 'GET', '/metrics', { 'x-forwarded-for': '203.0.113.9' })).status, 401);
    } finally {
      await server.close();
    }
  });

  test('X-Forwarded-For from a trusted proxy names the client; hops a client forged to the left are ignored', async () => {
    const server = await start({ trustLoopback: true, trustedProxies: ['127.0.0.0/8', '10.0.0.0/8'] });
    try {
      assert.equal((await raw(server, 'GET', '/api/stats', { 'x-forwarded-for': '203.0.113.9' })).status, 401);
      assert.equal((await raw(server, 'GET', '/api/stats', { 'x-forwarded-for': '127.0.0.1, 203.0.113.9' })).status, 401);
      assert.equal((await raw(server, 'GET', '/api/stats', { 'x-forwarded-for': '203.0.113.9, 10.1.2.3' })).status, 401);
      // The proxy relays a client that is itself on loopback.
      assert.equal((await raw(server, 'GET', '/api/stats', { 'x-forwarded-for': '127.0.0.1' })).status, 200);
    } finally {
      await server.close();
    }
  });

  test('client addresses: only configured proxies are believed, malformed hops stop the walk', async () => {
    const server = await start({ trustedProxies: ['127.0.0.1', '::1', '10.0.0.0/8'] });
    try {
      const net = server.core.net;
      assert.equal(net.clientAddress('198.51.100.1', '203.0.113.9'), '198.51.100.1');
      assert.equal(net.clientAddress('::ffff:127.0.0.1', '203.0.113.9'), '203.0.113.9');
      assert.equal(net.clientAddress('127.0.0.1', '1.1.1.1, 203.0.113.9, 10.0.0.7'), '203.0.113.9');
      assert.equal(net.clientAddress('127.0.0.1', 'junk, 10.0.0.7'), '10.0.0.7');
      assert.equal(net.clientAddress('127.0.0.1', '10.0.0.8, 10.0.0.7'), '10.0.0.8');
    } finally {
      await server.close();
    }
  });
});

describe('API keys', () => {
  test('keys compare by value in constant time, never by a prefix or a different length', () => {
    assert.equal(keyEquals(KEY, KEY), true);
    assert.equal(keyEquals(KEY.slice(0, -1), KEY), false);
    assert.equal(keyEquals(`${KEY}x`, KEY), false);
    assert.equal(keyEquals('', KEY), false);
    assert.equal(keyEquals(undefined, KEY), false);
    assert.equal(keyEquals(KEY, undefined), false);
  });

  test('with a key, Nchan POST and DELETE /pub from loopback need the key (loopback alone no longer publishes)', async () => {
    const server = await start({ trustLoopback: true, apiKey: KEY });
    try {
      assert.equal((await raw(server, 'POST', '/pub/a', { 'content-type': 'text/plain' }, 'x')).status, 403);
      assert.equal((await raw(server, 'DELETE', '/pub/a')).status, 403);
      assert.equal((await raw(server, 'POST', '/pub/a', { 'content-type': 'text/plain', 'x-api-key': KEY.replace(/.$/, 'j') }, 'x')).status, 403);
      const ok = await raw(server, 'POST', '/pub/a', { 'content-type': 'text/plain', authorization: `apikey ${KEY}` }, 'x');
      assert.ok(ok.status === 201 || ok.status === 202, `published: ${ok.status}`);
      assert.equal((await raw(server, 'DELETE', '/pub/a', { 'x-api-key': KEY })).status, 200);
    } finally {
      await server.close();
    }
  });

  test('/nchan_stub_status and Nchan channel info are guarded like the API', async () => {
    const server = await start({ apiKey: KEY });
    try {
      assert.equal((await raw(server, 'POST', '/pub/b', { 'content-type': 'text/plain', 'x-api-key': KEY }, 'x')).status, 202, 'queued, no subscriber');
      assert.equal((await raw(server, 'GET', '/nchan_stub_status')).status, 403);
      assert.equal((await raw(server, 'GET', '/pub/b')).status, 403);
      const status = await raw(server, 'GET', '/nchan_stub_status', { 'x-api-key': KEY });
      assert.equal(status.status, 200);
      assert.match(status.body, /total published messages: 1/);
      assert.equal((await raw(server, 'GET', '/pub/b', { 'x-api-key': KEY, accept: 'application/json' })).status, 200);
    } finally {
      await server.close();
    }
    const open = await start({ trustLoopback: false });
    try {
      assert.equal((await raw(open, 'GET', '/nchan_stub_status')).status, 403, 'no key and no loopback trust: nobody');
      assert.equal((await raw(open, 'POST', '/pub/c', { 'content-type': 'text/plain' }, 'x')).status, 403);
    } finally {
      await open.close();
    }
  });
});

describe('CSRF and DNS rebinding', () => {
  const publishText = (server: HeraldServer, headers: Record<string, string>): Promise<Answer> =>
    raw(server, 'POST', '/api/publish?channel=news', { 'content-type': 'text/plain', ...headers }, 'owned');

  test('a page on another site cannot publish, send IM, revoke or drain through a trusted loopback', async () => {
    const server = await start({ trustLoopback: true });
    try {
      const evil = { origin: 'http://evil.example' };
      const pub = await publishText(server, evil);
      assert.equal(pub.status, 403);
      assert.equal(JSON.parse(pub.body).code, 'HERALD_ERR_FORBIDDEN');
      assert.equal((await publishText(server, { 'sec-fetch-site': 'cross-site' })).status, 403);
      assert.equal((await publishText(server, { 'sec-fetch-site': 'same-site' })).status, 403);
      assert.equal((await publishText(server, { origin: 'null' })).status, 403);
      assert.equal((await raw(server, 'POST', '/api/im/send', { 'content-type': 'text/plain', ...evil }, '{"from":"a","to":"b","data":1}')).status, 403);
      assert.equal((await raw(server, 'POST', '/api/revoke', { 'content-type': 'text/plain', ...evil }, '{"user":"a"}')).status, 403);
      assert.equal((await raw(server, 'POST', '/api/drain', evil)).status, 403);
      assert.equal(server.core.hub.connectionCount, 0);
      // The same requests from the node's own origin (the admin page) or from a backend pass.
      const { port } = server.address();
      assert.equal((await publishText(server, { origin: `http://127.0.0.1:${port}`, 'sec-fetch-site': 'same-origin' })).status, 200);
      assert.equal((await publishText(server, {})).status, 200);
    } finally {
      await server.close();
    }
  });

  test('a rebound Host name is refused on the API, /metrics and /admin; IP literals, localhost and allowedHosts pass', async () => {
    const server = await start({ trustLoopback: true, allowedHosts: ['herald.example', '*.internal.example'] });
    try {
      const { port } = server.address();
      for (const path of ['/api/stats', '/metrics', '/admin']) {
        const r = await raw(server, 'GET', path, { host: `rebind.evil.example:${port}` });
        assert.equal(r.status, 403, path);
      }
      assert.equal((await raw(server, 'GET', '/api/stats', { host: `localhost:${port}` })).status, 200);
      assert.equal((await raw(server, 'GET', '/api/stats', { host: `127.0.0.1:${port}` })).status, 200);
      assert.equal((await raw(server, 'GET', '/api/stats', { host: 'herald.example' })).status, 200);
      assert.equal((await raw(server, 'GET', '/api/stats', { host: 'a.internal.example:443' })).status, 200);
      assert.equal((await raw(server, 'GET', '/api/stats', { host: 'internal.example.evil.example' })).status, 403);
    } finally {
      await server.close();
    }
  });

  test('JSON endpoints refuse other media types with 415; the raw publish keeps taking any body', async () => {
    const server = await start({ apiKey: KEY });
    try {
      const auth = { 'x-api-key': KEY };
      const send = await raw(
        server,
        'POST',
        '/api/im/send',
        { 'content-type': 'text/plain', ...auth },
        JSON.stringify({ from: 'alice', to: 'bob', data: 'hi' }),
      );
      assert.equal(send.status, 415);
      assert.equal(JSON.parse(send.body).code, 'HERALD_ERR_UNSUPPORTED_MEDIA_TYPE');
      assert.equal((await raw(server, 'POST', '/api/revoke', { 'content-type': 'application/x-www-form-urlencoded', ...auth }, 'user=alice')).status, 415);
      assert.equal((await raw(server, 'POST', '/api/publish', { 'content-type': 'text/plain', ...auth }, 'x')).status, 400, 'raw publish without ?channel=');
      assert.equal((await publishText(server, auth)).status, 200);
    } finally {
      await server.close();
    }
  });
});
