/** Nchan long-poll and interval-poll subscribers, buffers and expiry (§5.3 8–14, 19, 22). */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { useTarget } from './target.js';
import { chan, publish, raw, req, sleep, waitSubscribers } from './clients.js';

describe(`nchan long-poll (${process.env.HERALD_CONFORMANCE_TARGET ?? 'herald'})`, () => {
  const t = useTarget('longpoll');

  /** Walk the queue with If-Modified-Since/If-None-Match from `path` until `n` bodies were read. */
  async function walk(path: string, n: number): Promise<string[]> {
    const out: string[] = [];
    let headers: Record<string, string> = {};
    for (let i = 0; i < n; i++) {
      const r = await req(t.base, path, { headers });
      assert.equal(r.status, 200);
      out.push(r.body);
      headers = { 'If-Modified-Since': r.headers.get('last-modified')!, 'If-None-Match': r.headers.get('etag')! };
    }
    return out;
  }

  test('a long-poll without id headers gets the oldest message; Last-Modified + Etag walk the queue', async () => {
    const ch = chan();
    for (const m of ['m1', 'm2', 'm3']) await publish(t.base, `/pub/${ch}`, m);
    const r = await req(t.base, `/lp/${ch}`);
    assert.equal(r.status, 200);
    assert.equal(r.body, 'm1');
    assert.equal(r.headers.get('etag'), '0');
    assert.match(r.headers.get('last-modified')!, /^\w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} GMT$/);
    assert.equal(r.headers.get('vary'), 'If-None-Match, If-Modified-Since');
    assert.equal(r.headers.get('content-length'), '2');
    assert.deepEqual(await walk(`/lp/${ch}`, 3), ['m1', 'm2', 'm3']);
  });

  test('a compound id in If-None-Match alone resumes after that message', async () => {
    const ch = chan();
    const p = await req(t.base, `/pub/${ch}`, { method: 'POST', body: 'a', headers: { Accept: 'text/json' } });
    await publish(t.base, `/pub/${ch}`, 'b');
    const id = JSON.parse(p.body).last_message_id as string;
    const r = await req(t.base, `/lp/${ch}`, { headers: { 'If-None-Match': id } });
    assert.equal(r.body, 'b');
  });

  test('a long-poll at the head is held and every concurrent subscriber gets the next publish', async () => {
    const ch = chan();
    await publish(t.base, `/pub/${ch}`, 'old');
    const first = await req(t.base, `/lp/${ch}`);
    const headers = { 'If-Modified-Since': first.headers.get('last-modified')!, 'If-None-Match': first.headers.get('etag')! };
    const subs = Array.from({ length: 5 }, () => req(t.base, `/lp/${ch}`, { headers }));
    await waitSubscribers(t.base, ch, 5);
    const p = await publish(t.base, `/pub/${ch}`, 'bcast');
    assert.equal(p.status, 201);
    const got = await Promise.all(subs);
    assert.deepEqual(
      got.map((g) => [g.status, g.body]),
      Array(5).fill([200, 'bcast']),
    );
  });

  test('an empty message is delivered to long-poll as a 200 with an empty body', async () => {
    const ch = chan();
    await publish(t.base, `/pub/${ch}`, '');
    const r = await req(t.base, `/lp/${ch}`);
    assert.equal(r.status, 200);
    assert.equal(r.body, '');
    assert.equal(r.headers.get('content-length'), '0');
  });

  test('interval-poll at the head answers 304 with the same Last-Modified and Etag', async () => {
    const ch = chan();
    await publish(t.base, `/pub/${ch}`, 'only');
    const r = await req(t.base, `/poll/${ch}`);
    assert.equal(r.status, 200);
    const lm = r.headers.get('last-modified')!;
    const et = r.headers.get('etag')!;
    const n = await req(t.base, `/poll/${ch}`, { headers: { 'If-Modified-Since': lm, 'If-None-Match': et } });
    assert.equal(n.status, 304);
    assert.equal(n.headers.get('last-modified'), lm);
    assert.equal(n.headers.get('etag'), et);
    assert.equal(n.body, '');
  });

  test('a WebSocket handshake or EventSource request on a subscriber type the route lacks → 403', async () => {
    const ws = raw(t.base, `/poll/${chan()}`, {
      Connection: 'Upgrade',
      Upgrade: 'websocket',
      'Sec-WebSocket-Version': '13',
      'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==',
    });
    assert.equal((await ws.head).status, 403);
    ws.close();
    const es = await req(t.base, `/es/${chan()}`);
    assert.equal(es.status, 403, 'an eventsource-only route refuses a plain GET');
    const lp = await req(t.base, `/lp/${chan()}`, { headers: { Accept: 'text/event-stream' }, timeoutMs: 3000 }).catch(() => null);
    assert.ok(lp === null || lp.status !== 200 || lp.headers.get('content-type') !== 'text/event-stream; charset=utf-8');
  });

  test('a non-GET request on a subscriber route → 403', async () => {
    const r = await req(t.base, `/sub/${chan()}`, { method: 'POST', body: 'x' });
    assert.equal(r.status, 403);
  });

  test('subscriber timeout: a waiting long-poll gets 408 with an empty body', async () => {
    const ch = chan();
    const started = Date.now();
    const r = await req(t.base, `/lpto/${ch}`);
    assert.equal(r.status, 408);
    assert.equal(r.body, '');
    assert.ok(Date.now() - started >= 900);
  });

  test('subscriber timeout: queued messages are delivered first', async () => {
    const ch = chan();
    await publish(t.base, `/pub/${ch}`, 'queued');
    const r = await req(t.base, `/lpto/${ch}`);
    assert.equal(r.status, 200);
    assert.equal(r.body, 'queued');
  });

  test('expired messages are not delivered to later subscribers; later publishes are', async () => {
    const ch = chan();
    await publish(t.base, `/pub_expire/${ch}`, 'stale');
    await sleep(3100);
    const info = await req(t.base, `/pub/${ch}`, { headers: { Accept: 'text/json' } });
    assert.equal(info.status, 200, 'the channel still exists');
    assert.equal(JSON.parse(info.body).messages, 0);
    const waiting = req(t.base, `/lp/${ch}`);
    await waitSubscribers(t.base, ch, 1);
    await publish(t.base, `/pub_expire/${ch}`, 'fresh');
    assert.equal((await waiting).body, 'fresh');
  });

  test('store messages off: earlier publishes are not delivered, later ones reach every subscriber', async () => {
    const ch = chan();
    await publish(t.base, `/pub_nobuf/${ch}`, 'before');
    const subs = Array.from({ length: 10 }, () => req(t.base, `/lp/${ch}`));
    await waitSubscribers(t.base, ch, 10);
    await publish(t.base, `/pub_nobuf/${ch}`, 'after');
    const got = await Promise.all(subs);
    assert.deepEqual(
      got.map((g) => g.body),
      Array(10).fill('after'),
    );
  });

  test('buffer length 5: a new subscriber walks the last 5 messages in order', async () => {
    const ch = chan();
    for (let i = 1; i <= 8; i++) await publish(t.base, `/pub_buf5/${ch}`, `m${i}`);
    const i = await req(t.base, `/pub/${ch}`, { headers: { Accept: 'text/json' } });
    assert.equal(JSON.parse(i.body).messages, 5);
    const first = await req(t.base, `/lp/${ch}`);
    assert.equal(first.body, 'm4');
  });

  test('a 1-message publisher route shrinks the channel to a snapshot', async () => {
    const ch = chan();
    for (let i = 1; i <= 4; i++) await publish(t.base, `/pub/${ch}`, `m${i}`);
    await publish(t.base, `/pub_buf1/${ch}`, 'snapshot');
    const i = await req(t.base, `/pub/${ch}`, { headers: { Accept: 'text/json' } });
    assert.equal(JSON.parse(i.body).messages, 1);
    assert.equal((await req(t.base, `/lp/${ch}`)).body, 'snapshot');
  });

  test('an id older than the oldest buffered message gets the oldest available message', async () => {
    const ch = chan();
    for (let i = 1; i <= 7; i++) await publish(t.base, `/pub_buf5/${ch}`, `m${i}`);
    const r = await req(t.base, `/lp/${ch}`, { headers: { 'If-None-Match': '1000:0' } });
    assert.equal(r.status, 200);
    assert.equal(r.body, 'm3');
  });

  test('first message newest: a subscriber waits for the next publish', async () => {
    const ch = chan();
    await publish(t.base, `/pub/${ch}`, 'old');
    const waiting = req(t.base, `/newest/${ch}`);
    await waitSubscribers(t.base, ch, 1);
    await publish(t.base, `/pub/${ch}`, 'new');
    assert.equal((await waiting).body, 'new');
  });

  test('first message -2: a new subscriber starts with the 2 newest; 2: with the 2nd oldest', async () => {
    const ch = chan();
    for (let i = 1; i <= 5; i++) await publish(t.base, `/pub/${ch}`, `m${i}`);
    assert.equal((await req(t.base, `/first_m2/${ch}`)).body, 'm4');
    assert.equal((await req(t.base, `/first_p2/${ch}`)).body, 'm2');
    const one = chan();
    await publish(t.base, `/pub/${one}`, 'only');
    assert.equal((await req(t.base, `/first_m2/${one}`)).body, 'only', 'clamped to the buffer');
    assert.equal((await req(t.base, `/first_p2/${one}`)).body, 'only', 'clamped to the buffer');
  });

  for (const bad of ['1:[1],[2]', '1:0,13,[9]]', '1:0,1', `1:${Array(256).fill(0).join(',')}`]) {
    test(`a malformed message id (${bad.length > 20 ? '256 tags' : bad}) → 400 "Message ID invalid"`, async () => {
      const ch = chan();
      await publish(t.base, `/pub/${ch}`, 'x');
      const r = await req(t.base, `/sub/${ch}`, { headers: { 'If-None-Match': bad } });
      assert.equal(r.status, 400);
      assert.equal(r.headers.get('content-type'), 'text/plain');
      assert.equal(r.body, 'Message ID invalid');
    });
  }

  test('If-Modified-Since without If-None-Match → 400 "Message ID invalid"', async () => {
    const ch = chan();
    await publish(t.base, `/pub/${ch}`, 'x');
    const r = await req(t.base, `/lp/${ch}`, { headers: { 'If-Modified-Since': new Date(Date.now() + 3_600_000).toUTCString() } });
    assert.equal(r.status, 400);
    assert.equal(r.body, 'Message ID invalid');
  });

  test('Last-Event-ID without a time (e.g. "null") is ignored: the oldest message is delivered', async () => {
    const ch = chan();
    await publish(t.base, `/pub/${ch}`, 'first');
    await publish(t.base, `/pub/${ch}`, 'second');
    assert.equal((await req(t.base, `/sub/${ch}`, { headers: { 'Last-Event-ID': 'null' } })).body, 'first');
  });

  test('subscribe existing channels only: 403 before a publish, messages after', async () => {
    const ch = chan();
    const before = await req(t.base, `/existing/${ch}`);
    assert.equal(before.status, 403);
    await publish(t.base, `/pub/${ch}`, 'now');
    const after = await req(t.base, `/existing/${ch}`);
    assert.equal(after.status, 200);
    assert.equal(after.body, 'now');
  });

  test('a long-poll that goes away is no longer counted as a subscriber', async () => {
    const ch = chan();
    const s = raw(t.base, `/lp/${ch}`);
    await waitSubscribers(t.base, ch, 1);
    s.close();
    const end = Date.now() + 3000;
    for (;;) {
      const r = await req(t.base, `/pub/${ch}`, { headers: { Accept: 'text/json' }, poll: true });
      if (JSON.parse(r.body).subscribers === 0) break;
      assert.ok(Date.now() < end, 'subscriber count drops to 0');
      await sleep(30);
    }
  });
});
