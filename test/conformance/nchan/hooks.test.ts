/** Nchan CORS, authorize / callback / upstream hooks, channel events and stub status (§5.3 23–27, 31). */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { useTarget } from './target.js';
import { chan, noteWs, publish, raw, req, sleep, waitSubscribers } from './clients.js';

describe(`nchan hooks and CORS (${process.env.HERALD_CONFORMANCE_TARGET ?? 'herald'})`, () => {
  const t = useTarget('hooks');

  test('OPTIONS on a subscriber: Allow GET, the subscriber Allow-Headers, Origin echoed, credentials true', async () => {
    const r = await req(t.base, `/sub/${chan()}`, { method: 'OPTIONS', headers: { Origin: 'http://any.example' } });
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('allow'), 'GET');
    assert.equal(r.headers.get('access-control-allow-methods'), 'GET');
    assert.equal(r.headers.get('access-control-allow-headers'), 'If-None-Match, If-Modified-Since, Content-Type, Cache-Control, X-EventSource-Event');
    assert.equal(r.headers.get('access-control-allow-origin'), 'http://any.example');
    assert.equal(r.headers.get('access-control-allow-credentials'), 'true');
  });

  test('OPTIONS on a pubsub route: the publisher methods with the subscriber Allow-Headers', async () => {
    const r = await req(t.base, `/pubsub/${chan()}`, { method: 'OPTIONS', headers: { Origin: 'http://any.example' } });
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('allow'), 'GET, POST, PUT, DELETE');
    assert.equal(r.headers.get('access-control-allow-methods'), 'GET, POST, PUT, DELETE');
    assert.equal(r.headers.get('access-control-allow-headers'), 'If-None-Match, If-Modified-Since, Content-Type, Cache-Control, X-EventSource-Event');
  });

  test('streaming responses to a request with Origin carry the origin but no Expose-Headers', async () => {
    const ch = chan();
    const s = raw(t.base, `/sub/${ch}`, { Accept: 'text/event-stream', Origin: 'http://any.example' });
    const h = await s.head;
    assert.equal(h.status, 200);
    assert.equal(h.headers['access-control-allow-origin'], 'http://any.example');
    assert.equal(h.headers['access-control-allow-credentials'], 'true');
    assert.equal(h.headers['access-control-expose-headers'], undefined);
    s.close();
  });

  test('with credentials off there is no Access-Control-Allow-Credentials', async () => {
    const r = await req(t.base, `/nocred/${chan()}`, { method: 'OPTIONS', headers: { Origin: 'http://any.example' } });
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('access-control-allow-origin'), 'http://any.example');
    assert.equal(r.headers.get('access-control-allow-credentials'), null);
  });

  test('message responses to a request with Origin expose Last-Modified, Etag, Content-Type', async () => {
    const ch = chan();
    await publish(t.base, `/pub/${ch}`, 'x');
    const r = await req(t.base, `/sub/${ch}`, { headers: { Origin: 'http://any.example' } });
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('access-control-expose-headers'), 'Last-Modified, Etag, Content-Type');
    assert.equal(r.headers.get('access-control-allow-origin'), 'http://any.example');
  });

  test('long-polls with and without Origin answered by one message each keep their own CORS headers', async () => {
    const ch = chan();
    await publish(t.base, `/pub/${ch}`, 'old');
    const first = await req(t.base, `/sub/${ch}`);
    const at = { 'If-Modified-Since': first.headers.get('last-modified')!, 'If-None-Match': first.headers.get('etag')! };
    const plain = req(t.base, `/sub/${ch}`, { headers: at });
    const cors = req(t.base, `/sub/${ch}`, { headers: { ...at, Origin: 'http://any.example' } });
    await waitSubscribers(t.base, ch, 2);
    await publish(t.base, `/pub/${ch}`, 'new');
    // A third subscriber reads the same message from the buffer after the two waiting ones got it.
    const late = await req(t.base, `/sub/${ch}`, { headers: at });
    for (const r of [await plain, await cors, late]) {
      assert.equal(r.status, 200);
      assert.equal(r.body, 'new');
    }
    const [p, c] = [await plain, await cors];
    assert.equal(p.headers.get('etag'), c.headers.get('etag'));
    assert.equal(late.headers.get('etag'), c.headers.get('etag'));
    assert.equal(p.headers.get('last-modified'), c.headers.get('last-modified'));
    assert.equal(c.headers.get('access-control-allow-origin'), 'http://any.example');
    assert.equal(c.headers.get('access-control-expose-headers'), 'Last-Modified, Etag, Content-Type');
    for (const r of [p, late]) {
      assert.equal(r.headers.get('access-control-allow-origin'), null);
      assert.equal(r.headers.get('access-control-expose-headers'), null);
    }
  });

  test('an Origin outside allow_origin → 403 for subscribe and publish; a listed one is allowed', async () => {
    const ch = chan();
    const bad = await req(t.base, `/cors/${ch}`, { headers: { Origin: 'http://evil.example' } });
    assert.equal(bad.status, 403);
    assert.equal(bad.headers.get('access-control-allow-origin'), 'http://evil.example', 'Nchan still echoes the Origin');
    assert.equal((await req(t.base, `/cors/${ch}`, { method: 'OPTIONS', headers: { Origin: 'http://evil.example' } })).status, 403);
    assert.equal((await publish(t.base, `/pub_cors/${ch}`, 'x', { Origin: 'http://evil.example' })).status, 403);
    const p = await publish(t.base, `/pub_cors/${ch}`, 'x', { Origin: 'http://good.example' });
    assert.equal(p.status, 202);
    assert.equal(p.headers.get('access-control-allow-origin'), 'http://good.example');
    const s = await req(t.base, `/cors/${ch}`, { headers: { Origin: 'http://good.example' } });
    assert.equal(s.status, 200);
    assert.equal(s.headers.get('access-control-allow-origin'), 'http://good.example');
  });

  describe('authorize hook', () => {
    const types: [string, Record<string, string>][] = [
      ['longpoll', {}],
      ['eventsource', { Accept: 'text/event-stream' }],
      ['chunked', { TE: 'chunked' }],
      ['multipart', { Accept: 'multipart/mixed' }],
      ['websocket', { Connection: 'Upgrade', Upgrade: 'websocket', 'Sec-WebSocket-Version': '13', 'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==' }],
    ];
    for (const [type, headers] of types) {
      test(`${type}: upstream 2xx allows, 403 forbids, 406 with headers and body is passed through`, async () => {
        const okCh = chan('ok');
        await publish(t.base, `/pub/${okCh}`, 'secret');
        const ok = raw(t.base, `/auth/${okCh}`, headers);
        assert.equal((await ok.head).status, type === 'websocket' ? 101 : 200);
        ok.close();
        const call = t.hooks.calls.find((c) => c.path === '/auth' && c.channel === okCh);
        assert.ok(call, 'the hook saw the channel id');
        const deny = raw(t.base, `/auth/${chan('deny')}`, headers);
        assert.equal((await deny.head).status, 403);
        deny.close();
        const weird = raw(t.base, `/auth/${chan('weird')}`, headers);
        const h = await weird.head;
        assert.equal(h.status, 406);
        assert.equal(h.headers['x-banana'], 'yes');
        assert.equal(h.headers['content-type'], 'text/x-beef');
        assert.equal(await weird.waitBody((b) => b.length >= 7), 'no beef');
        weird.close();
      });
    }
    test('publishers are authorized too: 2xx publishes, anything else → 403', async () => {
      const ok = chan('ok');
      assert.equal((await publish(t.base, `/pub_auth/${ok}`, 'allowed')).status, 202);
      assert.equal((await req(t.base, `/sub/${ok}`)).body, 'allowed');
      const deny = chan('deny');
      assert.equal((await publish(t.base, `/pub_auth/${deny}`, 'refused')).status, 403);
      assert.equal((await req(t.base, `/pub/${deny}`)).status, 404, 'nothing was stored');
      // Unlike for subscribers, Nchan does not pass a publisher's failed authorization through.
      const weird = await publish(t.base, `/pub_auth/${chan('weird')}`, 'x');
      assert.equal(weird.status, 403);
      assert.equal(weird.headers.get('x-banana'), null);
    });
    test('hook server down → 502', async () => {
      const r = await req(t.base, `/auth_down/${chan()}`);
      assert.equal(r.status, 502);
    });
    test('hook timeout → 504', async () => {
      const r = await req(t.base, `/auth/${chan('slow')}`);
      assert.equal(r.status, 504);
    });
  });

  describe('subscribe / unsubscribe callbacks', () => {
    const streaming: [string, Record<string, string>][] = [
      ['eventsource', { Accept: 'text/event-stream' }],
      ['chunked', { TE: 'chunked' }],
      ['multipart', { Accept: 'multipart/mixed' }],
    ];
    for (const [type, headers] of streaming) {
      test(`${type}: sub on connect, unsub on client abort`, async () => {
        const ch = chan();
        const s = raw(t.base, `/cb/${ch}`, headers);
        await s.head;
        await t.hooks.waitFor((c) => c.some((x) => x.path === '/sub' && x.channel === ch));
        s.close();
        await t.hooks.waitFor((c) => c.some((x) => x.path === '/unsub' && x.channel === ch));
      });
    }
    test('websocket: sub on connect, unsub on delete', async () => {
      const ch = chan();
      const ws = new WebSocket(`${t.base.replace('http:', 'ws:')}/cb/${ch}`);
      noteWs(ws, ws.url);
      const closed = new Promise((r) => ws.on('close', r));
      await new Promise((r) => ws.once('open', r));
      await t.hooks.waitFor((c) => c.some((x) => x.path === '/sub' && x.channel === ch));
      assert.equal(t.hooks.calls.find((x) => x.path === '/sub' && x.channel === ch)!.subscriberType, 'websocket');
      await req(t.base, `/pub/${ch}`, { method: 'DELETE' });
      await closed;
      await t.hooks.waitFor((c) => c.some((x) => x.path === '/unsub' && x.channel === ch));
    });
    test('long-poll does not fire the callbacks', async () => {
      const ch = chan();
      await publish(t.base, `/pub/${ch}`, 'x');
      assert.equal((await req(t.base, `/cb/${ch}`)).body, 'x');
      await sleep(200);
      assert.equal(t.hooks.calls.filter((x) => x.channel === ch).length, 0);
    });
  });

  describe('publisher upstream hook', () => {
    const cases: [string, number, string | null][] = [
      ['transform me', 202, 'transformed transform me'],
      ['keep me', 202, 'keep me'],
      ['drop me', 204, null],
    ];
    for (const [body, status, stored] of cases) {
      test(`upstream for "${body}" → ${status}${stored ? `, stores "${stored}"` : ', nothing stored'}`, async () => {
        const ch = chan();
        const r = await publish(t.base, `/pub_up/${ch}`, body);
        assert.equal(r.status, status);
        const i = await req(t.base, `/pub/${ch}`);
        if (stored === null) assert.equal(i.status, 404);
        else assert.equal((await req(t.base, `/sub/${ch}`)).body, stored);
      });
    }
    test('upstream 500 → the publish fails with 403 and nothing is stored', async () => {
      const ch = chan();
      const r = await publish(t.base, `/pub_up/${ch}`, 'fail please');
      assert.equal(r.status, 403);
      assert.equal((await req(t.base, `/pub/${ch}`)).status, 404);
    });
    test('a WebSocket publisher on a pubsub route goes through the upstream hook too', async () => {
      const ch = chan();
      const ws = new WebSocket(`${t.base.replace('http:', 'ws:')}/pubsub_up/${ch}`);
      noteWs(ws, ws.url);
      const got: string[] = [];
      ws.on('message', (d: Buffer) => got.push(d.toString()));
      await new Promise((r) => ws.once('open', r));
      ws.send('transform ws');
      const end = Date.now() + 5000;
      while (got.length < 1 && Date.now() < end) await sleep(10);
      assert.deepEqual(got, ['transformed transform ws']);
      ws.close();
    });
  });

  test('channel events: a meta subscriber sees enqueue, publish×N, dequeue in order', async () => {
    const ch = chan();
    const meta = raw(t.base, `/meta/${ch}`, { Accept: 'text/event-stream' });
    await meta.waitBody((b) => b.startsWith(': hi'));
    await sleep(100);
    const sub = raw(t.base, `/sub_ev/${ch}`, { Accept: 'text/event-stream' });
    await sub.waitBody((b) => b.startsWith(': hi'));
    await waitSubscribers(t.base, ch, 1);
    await publish(t.base, `/pub_ev/${ch}`, 'e1');
    await publish(t.base, `/pub_ev/${ch}`, 'e2');
    await sub.waitBody((b) => b.includes('data: e2'));
    sub.close();
    const text = await meta.waitBody((b) => b.includes('subscriber_dequeue'));
    const data = [...text.matchAll(/^data: (.*)$/gm)].map((m) => m[1]);
    assert.deepEqual(data, [`subscriber_enqueue ${ch}`, `channel_publish ${ch}`, `channel_publish ${ch}`, `subscriber_dequeue ${ch}`]);
    meta.close();
  });

  test("stub status: text/plain with Nchan's fields", async () => {
    await publish(t.base, `/pub/${chan()}`, 'count me');
    const r = await req(t.base, '/nchan_stub_status');
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('content-type'), 'text/plain');
    const keys = r.body
      .trim()
      .split('\n')
      .map((l) => l.split(':')[0]);
    for (const k of [
      'total published messages',
      'stored messages',
      'shared memory used',
      'channels',
      'subscribers',
      'redis pending commands',
      'redis connected servers',
      'total interprocess alerts received',
      'interprocess alerts in transit',
      'interprocess queued alerts',
      'total interprocess send delay',
      'total interprocess receive delay',
      'nchan version',
    ]) {
      assert.ok(keys.includes(k), `field ${k}`);
    }
    const published = Number(/^total published messages: (\d+)$/m.exec(r.body)?.[1]);
    assert.ok(published >= 1);
  });
});
