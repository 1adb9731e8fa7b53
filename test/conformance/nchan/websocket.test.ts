/** Nchan WebSocket subscribers and publishers (§5.3 6, 15, 28–30). */
import { describe, test, before } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import WebSocket from 'ws';
import { useTarget } from './target.js';
import { chan, noteWs, publish, raw, req, waitSubscribers } from './clients.js';

interface Got {
  data: Buffer;
  binary: boolean;
}

/** Open a WebSocket and collect its messages. */
async function openWs(
  url: string,
  protocols?: string | string[],
  headers: Record<string, string> = {},
): Promise<{ ws: WebSocket; got: Got[]; closed: Promise<{ code: number; reason: string }>; next(n: number): Promise<Got[]> }> {
  const ws = new WebSocket(url, protocols, { headers });
  noteWs(ws, url, protocols, headers);
  const got: Got[] = [];
  ws.on('message', (data: Buffer, binary: boolean) => got.push({ data, binary }));
  const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  return {
    ws,
    got,
    closed,
    async next(n) {
      const end = Date.now() + 5000;
      while (got.length < n) {
        if (Date.now() > end) throw new Error(`expected ${n} frames, got ${got.length}`);
        await new Promise((r) => setTimeout(r, 10));
      }
      return got.slice(0, n);
    },
  };
}

describe(`nchan websocket (${process.env.HERALD_CONFORMANCE_TARGET ?? 'herald'})`, () => {
  const t = useTarget('websocket');
  let wsBase: string;
  before(() => {
    wsBase = t.base.replace('http:', 'ws:');
  });

  test('a WebSocket subscriber gets buffered then live messages as text frames; octet-stream as binary', async () => {
    const ch = chan();
    await publish(t.base, `/pub/${ch}`, 'buffered');
    const c = await openWs(`${wsBase}/sub/${ch}`);
    await c.next(1);
    await waitSubscribers(t.base, ch, 1);
    await publish(t.base, `/pub/${ch}`, 'live', { 'Content-Type': 'text/plain' });
    await publish(t.base, `/pub/${ch}`, Buffer.from([0, 1, 2, 255]), { 'Content-Type': 'application/octet-stream' });
    const got = await c.next(3);
    assert.deepEqual(
      got.map((g) => [g.data.toString('hex'), g.binary]),
      [
        [Buffer.from('buffered').toString('hex'), false],
        [Buffer.from('live').toString('hex'), false],
        ['000102ff', true],
      ],
    );
    c.ws.close();
    await c.closed;
  });

  test('an empty message reaches a WebSocket subscriber as an empty frame', async () => {
    const ch = chan();
    await publish(t.base, `/pub/${ch}`, '');
    const c = await openWs(`${wsBase}/ws/${ch}`);
    const [g] = await c.next(1);
    assert.equal(g!.data.length, 0);
    c.ws.close();
  });

  test('ws+meta.nchan: the subprotocol is echoed and frames carry id and content-type', async () => {
    const ch = chan();
    const p = await req(t.base, `/pub/${ch}`, { method: 'POST', body: 'hello', headers: { 'Content-Type': 'text/x-meta', Accept: 'text/json' } });
    await publish(t.base, `/pub/${ch}`, 'bare');
    const id = JSON.parse(p.body).last_message_id as string;
    const c = await openWs(`${wsBase}/sub/${ch}`, 'ws+meta.nchan');
    assert.equal(c.ws.protocol, 'ws+meta.nchan');
    const got = await c.next(2);
    assert.equal(got[0]!.data.toString(), `id: ${id}\ncontent-type: text/x-meta\n\nhello`);
    assert.match(got[1]!.data.toString(), /^id: \d+:\d+\n\nbare$/);
    c.ws.close();
  });

  test('DELETE closes a WebSocket subscriber with 1001 "410 Gone"', async () => {
    const ch = chan();
    const c = await openWs(`${wsBase}/ws/${ch}`);
    await waitSubscribers(t.base, ch, 1);
    await req(t.base, `/pub/${ch}`, { method: 'DELETE' });
    assert.deepEqual(await c.closed, { code: 1001, reason: '410 Gone' });
  });

  test('a frame sent on a subscriber-only route closes the socket with 1008', async () => {
    const c = await openWs(`${wsBase}/ws/${chan()}`);
    c.ws.send('not allowed');
    const { code } = await c.closed;
    assert.equal(code, 1008);
  });

  test('WebSocket ping interval: the server sends empty ping frames', async () => {
    const c = await openWs(`${wsBase}/es_ping/${chan()}`);
    const pings: string[] = [];
    await new Promise<void>((resolve) =>
      c.ws.on('ping', (d: Buffer) => {
        pings.push(d.toString());
        if (pings.length === 2) resolve();
      }),
    );
    assert.deepEqual(pings, ['', '']);
    c.ws.close();
  });

  test('ping frames are answered with pongs carrying the same payload; a close frame closes cleanly', async () => {
    const c = await openWs(`${wsBase}/ws/${chan()}`);
    const pong = new Promise<Buffer>((resolve) => c.ws.once('pong', resolve));
    c.ws.ping(Buffer.from('payload-123'));
    assert.equal((await pong).toString(), 'payload-123');
    c.ws.close(1000, 'bye');
    assert.equal((await c.closed).code, 1000);
  });

  test('pubsub: a WebSocket frame is published, echoed to the socket and reaches other subscribers', async () => {
    const ch = chan();
    const lp = req(t.base, `/sub/${ch}`);
    const c = await openWs(`${wsBase}/pubsub/${ch}`);
    await waitSubscribers(t.base, ch, 2);
    c.ws.send('from-ws');
    const [g] = await c.next(1);
    assert.equal(g!.data.toString(), 'from-ws');
    assert.equal((await lp).body, 'from-ws');
    c.ws.close();
  });

  test('pubsub: a binary WebSocket frame is published as application/octet-stream', async () => {
    const ch = chan();
    const c = await openWs(`${wsBase}/pubsub/${ch}`);
    await waitSubscribers(t.base, ch, 1);
    c.ws.send(Buffer.from([9, 8, 7]));
    const [g] = await c.next(1);
    assert.equal(g!.binary, true);
    const r = await req(t.base, `/sub/${ch}`);
    assert.equal(r.headers.get('content-type'), 'application/octet-stream');
    c.ws.close();
  });

  test('pubsub: GET subscribes and POST publishes on the same route', async () => {
    const ch = chan();
    const p = await publish(t.base, `/pubsub/${ch}`, 'via-pubsub');
    assert.equal(p.status, 202);
    const r = await req(t.base, `/pubsub/${ch}`);
    assert.equal(r.body, 'via-pubsub');
  });

  test('a WebSocket publisher on a publisher route gets channel info for each frame', async () => {
    const ch = chan();
    const c = await openWs(`${wsBase}/pub/${ch}`, undefined, { Accept: 'text/json' });
    c.ws.send('over-ws');
    const [g] = await c.next(1);
    const i = JSON.parse(g!.data.toString());
    assert.equal(i.messages, 1);
    assert.match(i.last_message_id, /^\d+:0$/);
    assert.equal((await req(t.base, `/sub/${ch}`)).body, 'over-ws');
    c.ws.close();
  });

  describe('handshake validation', () => {
    const key = 'dGhlIHNhbXBsZSBub25jZQ==';
    const up = { Connection: 'Upgrade', Upgrade: 'websocket' };
    test('no Sec-WebSocket-Version → 400', async () => {
      const s = raw(t.base, `/ws/${chan()}`, { ...up, 'Sec-WebSocket-Key': key });
      const h = await s.head;
      assert.equal(h.status, 400);
      assert.equal(h.headers['content-type'], 'text/plain');
      assert.equal(await s.waitBody((b) => b.length >= 39), 'No Sec-Websocket-Version header present');
      s.close();
    });
    for (const v of ['banana', '14', '8']) {
      test(`Sec-WebSocket-Version ${v} → 400 Unsupported websocket protocol version`, async () => {
        const s = raw(t.base, `/ws/${chan()}`, { ...up, 'Sec-WebSocket-Key': key, 'Sec-WebSocket-Version': v });
        const h = await s.head;
        assert.equal(h.status, 400);
        await s.waitBody((b) => b.includes('Unsupported websocket protocol version'));
        s.close();
      });
    }
    test('no Sec-WebSocket-Key → 400', async () => {
      const s = raw(t.base, `/ws/${chan()}`, { ...up, 'Sec-WebSocket-Version': '13' });
      assert.equal((await s.head).status, 400);
      assert.equal(await s.waitBody((b) => b.length >= 35), 'No Sec-Websocket-Key header present');
      s.close();
    });
    test('Sec-WebSocket-Accept is SHA1(key + GUID), base64', async () => {
      const k = '  x3JJHMbDL1EzLkh9GBhXDw==  ';
      const s = raw(t.base, `/ws/${chan()}`, { ...up, 'Sec-WebSocket-Key': k, 'Sec-WebSocket-Version': '13' });
      const h = await s.head;
      assert.equal(h.status, 101);
      const expect = createHash('sha1')
        .update(k.trim() + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11')
        .digest('base64');
      assert.equal(h.headers['sec-websocket-accept'], expect);
      s.close();
    });
  });
});
