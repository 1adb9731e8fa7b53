/**
 * Fuzzing the HTTP surface of a real server (port 0, real `fetch`): the native HTTP transports
 * and command endpoint, the server and IM APIs, the admin page and its sign-in form, and the Nchan
 * front get mutated paths, queries, headers (forwarding, cookies, fetch metadata included) and
 * bodies. Every answer is a documented one (no 500; Herald's own endpoints answer
 * errors as JSON `{code, message}` with a registered code) and the server keeps serving.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import type { HeraldServer } from '../../../src/index.js';
import { ERRORS } from '../../../src/core/errors.js';
import { startServer } from '../../helpers/server.js';
import { anyText, fuzzParams, mutated, WIRE_WEIGHT } from '../../helpers/fuzz.js';

const PATHS = [
  '/connection/command',
  '/connection/sse?channel=news&since=e1:0',
  '/connection/poll?channels=news,chat&since=a:1,&user=alice',
  '/connection/poll?channel=news&channel=chat&last=3&token=abc.def.ghi',
  '/connection/stream?channel=news&last=5',
  '/connection/websocket',
  '/api/publish',
  '/api/publish?channel=news&event=x',
  '/api/channels?prefix=n&limit=10',
  '/api/channels/news%2Fa',
  '/api/stats',
  '/api/im/send',
  '/api/im/groups/g1/members',
  '/api/presence?users=alice,bob',
  '/api/revoke',
  '/api/disconnect',
  '/api/users/alice/sessions',
  '/admin',
  '/admin/login',
  '/admin/admin.js',
  '/nchan_stub_status',
  '/sub/news',
  '/sub/news,chat?last_event_id=1700000000:[1],-',
  '/pub/news',
  '/ps/room',
  '/health',
  '/ready',
];

const BODIES = [
  '{"id":1,"cmd":"publish","channel":"news","data":{"t":1}}',
  '{"id":2,"cmd":"history","channel":"news","limit":2,"since":"e:0"}',
  '{"id":3,"cmd":"im.send","to":"bob","clientId":"c1","data":"hi"}',
  '{"channel":"news","data":{"a":[1,2,3]}}',
  '{"channels":["a","b"],"data":null,"event":"e"}',
  '{"from":"alice","to":"bob","clientId":"x","data":1}',
  '{"jti":"abc","expiresAt":1}',
  '{"user":"alice","code":3503,"reason":"x"}',
  'key=not-the-key&x=1',
  'plain text body',
  '',
];

const HEADER_VALUES: Record<string, string[]> = {
  'content-type': ['application/json', 'text/plain', 'application/json; charset=utf-8', 'multipart/form-data; boundary=x', 'application/x-www-form-urlencoded'],
  accept: ['text/event-stream', 'multipart/mixed', 'application/json', '*/*'],
  'if-none-match': ['1', '[0],-', '-', '1,[2]'],
  'if-modified-since': ['Thu, 01 Jan 2026 00:00:00 GMT', 'garbage', '0'],
  'last-event-id': ['1700000000:3', 'e:1', ':'],
  origin: ['http://127.0.0.1', 'https://evil.example', 'null'],
  authorization: ['Bearer abc.def.ghi', 'apikey nope', 'Bearer '],
  te: ['chunked', 'trailers, chunked;q=0'],
  cookie: ['herald_admin=1.x', 'herald_admin=99999999999999.AAAA; other=1', 'herald_admin='],
  'x-forwarded-for': ['203.0.113.9', '127.0.0.1, 10.0.0.1', '::1', 'junk, 127.0.0.1'],
  forwarded: ['for=203.0.113.9', 'for="[::1]"'],
  'x-real-ip': ['198.51.100.7'],
  'sec-fetch-site': ['cross-site', 'same-origin', 'same-site', 'none'],
  'sec-fetch-mode': ['navigate', 'cors'],
  'x-eventsource-event': ['ev', ''],
};

/** A header value fetch will send (visible ASCII and spaces only). */
const headerSafe = (s: string): string => s.replace(/[^\x20-\x7e]/g, '').trim();

/**
 * How long a request may go unanswered before it counts as held open, ms. Subscribers here give
 * up within 200 ms (the long-poll and Nchan subscriber timeouts below), so only an overloaded
 * machine or a request that really hangs gets near this.
 */
const HOLD_MS = 5_000;

const request = fc.record({
  method: fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH'),
  path: mutated(PATHS),
  body: mutated(BODIES),
  headers: fc.dictionary(fc.constantFrom(...Object.keys(HEADER_VALUES)), fc.oneof(fc.constantFrom(...Object.values(HEADER_VALUES).flat()), anyText), {
    maxKeys: 4,
  }),
});

type Req = typeof request extends fc.Arbitrary<infer R> ? R : never;

/** Path with only characters a request line can carry (the rest percent-encoded). */
function wirePath(path: string): string {
  const p = path.startsWith('/') ? path : `/${path}`;
  return p.replace(/[^\x21-\x7e]/gu, (c) => encodeURIComponent(c.length === 1 && c >= '\uD800' && c <= '\uDFFF' ? '\uFFFD' : c));
}

/** Herald's own endpoints answer errors as JSON `{code, message}`; the Nchan front answers as Nchan does. */
function heraldPath(path: string): boolean {
  return /^\/(connection|api)\//.test(path);
}

void describe('fuzz: HTTP endpoints of a real server', () => {
  let server: HeraldServer;
  before(async () => {
    server = await startServer({
      dev: true,
      // X-Forwarded-For from loopback is believed, so the client-address walk is fuzzed too.
      trustedProxies: ['127.0.0.1', '::1'],
      limits: { maxMessageBytes: 4096 },
      timing: { longPollTimeoutMs: 200 },
      nchan: {
        enabled: true,
        routes: [
          { path: '/sub/', role: 'subscriber', splitDelimiter: ',', subscriberTimeoutMs: 200 },
          { path: '/pub/', role: 'publisher' },
          { path: '/ps/', role: 'pubsub', subscriberTimeoutMs: 200 },
        ],
      },
    });
  });
  after(() => server.close());

  /** Send `r`; `held` when no answer started within HOLD_MS. */
  async function send(r: Req): Promise<{ status: number; type: string; body: string; path: string; held?: boolean }> {
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(r.headers)) headers[k] = headerSafe(v);
    const path = wirePath(r.path);
    const withBody = r.method !== 'GET' && r.method !== 'OPTIONS' && r.body !== '';
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(), HOLD_MS);
    try {
      let res: Response;
      try {
        res = await fetch(server.url() + path, { method: r.method, headers, body: withBody ? r.body : undefined, signal: ac.signal, redirect: 'manual' });
      } catch (e) {
        if (ac.signal.aborted) return { status: 0, type: '', body: '', path, held: true };
        throw e;
      }
      // Streams (SSE, NDJSON, Nchan streams) stay open: read what came and hang up.
      const cut = setTimeout(() => ac.abort(), 100);
      const body = await res.text().catch(() => '');
      clearTimeout(cut);
      return { status: res.status, type: res.headers.get('content-type') ?? '', body, path };
    } finally {
      clearTimeout(timer);
    }
  }

  void test('any request gets a documented answer and never a 500', async () => {
    await fc.assert(
      fc.asyncProperty(request, async (r) => {
        const a = await send(r);
        assert.ok(!a.held, `${r.method} ${a.path} got no answer within ${HOLD_MS} ms`);
        assert.ok(a.status >= 200 && a.status < 500 && a.status !== 500, `${r.method} ${a.path} → ${a.status} ${a.body.slice(0, 200)}`);
        if (a.status >= 400 && heraldPath(new URL(server.url() + a.path).pathname) && a.type.startsWith('application/json')) {
          const e = JSON.parse(a.body) as { code?: string; message?: string };
          assert.ok(typeof e.code === 'string' && e.code in ERRORS, `${r.method} ${a.path}: ${a.body.slice(0, 200)}`);
          assert.equal(typeof e.message, 'string');
        }
      }),
      fuzzParams(100, WIRE_WEIGHT),
    );
    // Still serving: a valid publish and a read of it.
    const pub = await fetch(`${server.url()}/api/publish`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"channel":"after","data":1}',
    });
    assert.equal(pub.status, 200);
    assert.equal((await fetch(`${server.url()}/api/channels/after`)).status, 200);
  });
});
