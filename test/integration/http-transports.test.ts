/**
 * Native protocol over HTTP: what is specific to EventSource, long-poll and chunked streaming
 * (keep-alives, timeouts, Last-Event-ID on a real EventSource client, request errors).
 */
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { EventSource } from 'eventsource';
import { SignJWT } from 'jose';
import type { HeraldServer } from '../../src/index.js';
import { NdjsonClient, poll, SseClient } from '../helpers/clients.js';
import { chan, publish, startServer, waitFor } from '../helpers/server.js';

const SECRET = 'behaviour-secret-0123456789abcdef';

function token(claims: Record<string, unknown> = {}): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setSubject('alice').setExpirationTime('1h').sign(new TextEncoder().encode(SECRET));
}

describe('native HTTP transports', () => {
  let server: HeraldServer;
  before(async () => {
    server = await startServer({
      auth: { hmacSecret: SECRET },
      timing: { longPollTimeoutMs: 1_000, streamKeepAliveMs: 100 },
      namespaces: [{ name: 'private', requireToken: true }],
    });
  });
  after(async () => {
    await server.close();
  });

  test('a real EventSource reconnects with Last-Event-ID, which wins over the URL since, and misses nothing', async () => {
    const ch = chan();
    await publish(server, ch, 0);
    const start = (await fetch(`${server.url()}/api/channels/${ch}`).then((r) => r.json())) as { epoch: string };
    const requests: Array<Record<string, string>> = [];
    let cut: (() => void) | undefined;
    // A fetch that drops the first response mid-stream, as a proxy timeout would.
    const fetchImpl = async (url: string | URL, init?: RequestInit): Promise<Response> => {
      requests.push({ ...(init?.headers as Record<string, string>) });
      const res = await fetch(url, init);
      if (requests.length > 1 || !res.body) return res;
      const reader = res.body.getReader();
      let done = false;
      const body = new ReadableStream<Uint8Array>({
        async pull(ctrl) {
          const r = await reader.read().catch(() => ({ done: true as const, value: undefined }));
          if (done) return;
          if (r.done) {
            done = true;
            ctrl.close();
          } else ctrl.enqueue(r.value);
        },
        start(ctrl) {
          cut = () => {
            done = true;
            ctrl.close();
            void reader.cancel();
          };
        },
      });
      return new Response(body, { status: res.status, headers: res.headers });
    };
    const data: unknown[] = [];
    const es = new EventSource(`${server.url()}/connection/sse?channel=${ch}&since=${start.epoch}:1`, { fetch: fetchImpl });
    es.onmessage = (e) => {
      const f = JSON.parse(e.data as string) as { type: string; data: unknown };
      if (f.type === 'pub') data.push(f.data);
    };
    try {
      await waitFor(() => server.core.hub.subscriberCount(ch) === 1, 3_000, 'first SSE subscription');
      for (let i = 1; i <= 3; i++) await publish(server, ch, i);
      await waitFor(() => data.length === 3, 3_000, 'three publications');
      cut!();
      await waitFor(() => server.core.hub.subscriberCount(ch) === 0, 3_000, 'server to see the drop');
      await publish(server, ch, 4);
      await publish(server, ch, 5);
      await waitFor(() => data.length >= 5, 6_000, 'reconnect and resume');
      await publish(server, ch, 6);
      await waitFor(() => data.length >= 6, 3_000, 'live publication after resume');
      assert.deepEqual(data, [1, 2, 3, 4, 5, 6]);
      assert.equal(requests.length, 2);
      assert.equal(requests[1]!['Last-Event-ID'], `${start.epoch}:4`);
    } finally {
      es.close();
    }
  });

  test('SSE sends comment keep-alives and event ids holding the position', async () => {
    const ch = chan();
    const sse = await SseClient.open(`${server.url()}/connection/sse?channel=${ch}`);
    try {
      assert.equal(sse.status, 200);
      assert.match(sse.headers!.get('content-type')!, /^text\/event-stream/);
      const sub = await sse.next('subscribed');
      assert.equal(sub.json.channel, ch);
      await publish(server, ch, 'x');
      const ev = await sse.next('pub');
      assert.equal(ev.id, `${ev.json.epoch}:1`);
      await waitFor(() => sse.comments.includes('ping'), 2_000, 'keep-alive comment');
    } finally {
      sse.close();
    }
  });

  test('the NDJSON stream sends one frame per line and empty keep-alive lines', async () => {
    const ch = chan();
    const s = await NdjsonClient.open(`${server.url()}/connection/stream?channel=${ch}`);
    try {
      assert.equal(s.status, 200);
      assert.match(s.headers!.get('content-type')!, /^application\/x-ndjson/);
      assert.equal((await s.frames.take()).type, 'subscribed');
      await publish(server, ch, { n: 1 });
      const f = await s.frames.take();
      assert.equal(f.type, 'pub');
      assert.deepEqual(f.data, { n: 1 });
      await waitFor(() => s.keepAlives > 0, 2_000, 'keep-alive line');
    } finally {
      s.close();
    }
  });

  test('a long-poll with nothing pending answers empty after the timeout with its position unchanged', async () => {
    const ch = chan();
    const [p] = await publish(server, ch, 'a');
    const t0 = Date.now();
    const r = await poll(`${server.url()}/connection/poll?channel=${ch}&since=${p!.position}`);
    const waited = Date.now() - t0;
    assert.equal(r.status, 200);
    assert.deepEqual(r.body.publications, []);
    assert.equal(r.body.position, p!.position);
    assert.equal(r.body.recovered, true);
    assert.ok(waited >= 900 && waited < 5_000, `waited ${waited} ms`);
  });

  test('a long-poll with publications pending answers at once', async () => {
    const ch = chan();
    const [p] = await publish(server, ch, 'a');
    await publish(server, ch, 'b');
    const t0 = Date.now();
    const r = await poll(`${server.url()}/connection/poll?channel=${ch}&since=${p!.epoch}:0`);
    assert.ok(Date.now() - t0 < 800, 'answered before the 1 s timeout');
    assert.deepEqual(
      r.body.publications.map((f: { data: unknown }) => f.data),
      ['a', 'b'],
    );
    assert.equal(r.body.position, `${p!.epoch}:2`);
  });

  for (const path of ['sse', 'poll', 'stream']) {
    test(`${path}: a channel that needs a token is refused with 401 JSON without one, served with one`, async () => {
      const ch = chan('private:x');
      const res = await fetch(`${server.url()}/connection/${path}?channel=${ch}`);
      assert.equal(res.status, 401);
      assert.deepEqual(Object.keys((await res.json()) as object).sort(), ['code', 'message']);
      const ac = new AbortController();
      const ok = await fetch(`${server.url()}/connection/${path}?channel=${ch}&token=${await token()}`, { signal: ac.signal });
      assert.equal(ok.status, 200);
      ac.abort();
    });

    test(`${path}: request errors are JSON with a status: invalid channel 400, invalid since 400, too many channels 429, bad token 401`, async () => {
      const cases: Array<[string, number, string]> = [
        ['channel=bad%20name', 400, 'HERALD_ERR_INVALID_CHANNEL'],
        ['channel=ok&since=nonsense', 400, 'HERALD_ERR_INVALID_POSITION'],
        ['channel=a&channel=b&since=x:1', 400, 'HERALD_ERR_INVALID_POSITION'],
        [`channels=${Array.from({ length: 129 }, (_, i) => `c${i}`).join(',')}`, 429, 'HERALD_ERR_LIMIT_EXCEEDED'],
        ['channel=ok&token=not.a.jwt', 401, 'HERALD_ERR_UNAUTHORIZED'],
        ['', 400, 'HERALD_ERR_BAD_REQUEST'],
      ];
      for (const [q, status, code] of cases) {
        const res = await fetch(`${server.url()}/connection/${path}?${q}`);
        assert.equal(res.status, status, q);
        assert.equal(((await res.json()) as { code: string }).code, code, q);
      }
      assert.equal(server.core.hub.connectionCount, 0, 'refused requests leave no connection behind');
    });
  }

  test('subscribing over HTTP with POST is 405', async () => {
    const res = await fetch(`${server.url()}/connection/sse?channel=x`, { method: 'POST' });
    assert.equal(res.status, 405);
    await res.body?.cancel();
  });
});

describe('native HTTP transports: shutdown and slow consumers', () => {
  test('shutdown sends SSE and stream subscribers a disconnect push with 3001 and reconnect true; a waiting long-poll answers with it', async () => {
    const s = await startServer({ timing: { longPollTimeoutMs: 30_000 } });
    const ch = chan();
    const sse = await SseClient.open(`${s.url()}/connection/sse?channel=${ch}`);
    const stream = await NdjsonClient.open(`${s.url()}/connection/stream?channel=${ch}`);
    await sse.next('subscribed');
    await stream.frames.take((f) => f.type === 'subscribed');
    const waiting = poll(`${s.url()}/connection/poll?channel=${ch}`);
    await waitFor(() => s.core.hub.subscriberCount(ch) === 3, 3_000, 'three subscribers');
    await s.close();
    const d1 = await sse.next('disconnect');
    assert.deepEqual({ code: d1.json.code, reconnect: d1.json.reconnect }, { code: 3001, reconnect: true });
    const d2 = await stream.frames.take((f) => f.type === 'disconnect');
    assert.deepEqual({ code: d2.code, reconnect: d2.reconnect }, { code: 3001, reconnect: true });
    const answer = await waiting;
    assert.equal(answer.status, 200);
    assert.deepEqual(
      answer.body.publications.map((f: { type: string; code: number }) => [f.type, f.code]),
      [['disconnect', 3001]],
    );
    await sse.ended;
    await stream.ended;
  });

  test('an SSE client that stops reading is dropped once its outbound buffer passes the limit, and counted', async () => {
    const s = await startServer({ limits: { maxOutboundBytes: 128 * 1024 } });
    const ch = chan();
    const sock = connect(s.address().port, '127.0.0.1');
    try {
      sock.write(`GET /connection/sse?channel=${ch} HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n`);
      await waitFor(() => s.core.hub.subscriberCount(ch) === 1, 3_000, 'SSE subscription');
      sock.pause();
      const big = 'y'.repeat(60_000);
      let sent = 0;
      while (s.core.hub.connectionCount > 0 && sent < 1_000) {
        await Promise.all(Array.from({ length: 10 }, () => publish(s, ch, big)));
        sent += 10;
      }
      assert.equal(s.core.hub.connectionCount, 0, `SSE client still connected after ${sent} publications`);
      const metrics = await (await fetch(`${s.url()}/metrics`)).text();
      assert.match(metrics, /herald_slow_consumers_dropped_total\{transport="sse"\} 1\b/);
    } finally {
      sock.destroy();
      await s.close();
    }
  });
});
