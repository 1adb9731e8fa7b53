/**
 * Herald only: Nchan channels are Herald core channels. A publish on /pub/x reaches native
 * subscribers of x; a publish through the server API reaches /sub/x; ids stay consistent.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from '../../../src/index.js';
import { startTarget, IS_HERALD, type Target } from './target.js';
import { chan, publish, raw, req, waitSubscribers } from './clients.js';

describe('nchan routes share channels with the rest of Herald', { skip: !IS_HERALD && 'Herald only' }, () => {
  let t: Target;
  before(async () => {
    t = await startTarget();
  });
  after(async () => {
    await t.stop();
  });

  test('a publish on /pub/x reaches a native SSE subscriber of x', async () => {
    const ch = chan();
    const s = raw(t.base, `/connection/sse?channel=${ch}`, { Accept: 'text/event-stream' });
    assert.equal((await s.head).status, 200);
    await waitSubscribers(t.base, ch, 1);
    const p = await publish(t.base, `/pub/${ch}`, 'from-nchan', { 'Content-Type': 'text/plain' });
    assert.equal(p.status, 201);
    await s.waitBody((b) => b.includes('from-nchan'));
    s.close();
  });

  test('a raw publish through the server API reaches /sub/x long-poll, EventSource and channel info', async () => {
    const ch = chan();
    const es = raw(t.base, `/sub/${ch}`, { Accept: 'text/event-stream' });
    await waitSubscribers(t.base, ch, 1);
    const r = await req(t.base, `/api/publish?channel=${ch}`, {
      method: 'POST',
      body: new Uint8Array(Buffer.from('from-api')),
      headers: { 'Content-Type': 'text/plain' },
    });
    assert.equal(r.status, 200, r.body);
    const lp = await req(t.base, `/sub/${ch}`);
    assert.equal(lp.body, 'from-api');
    assert.equal(lp.headers.get('content-type'), 'text/plain');
    const text = await es.waitBody((b) => b.includes('data: from-api'));
    const id = /id: (\d+:\d+)/.exec(text)![1]!;
    const info = await req(t.base, `/pub/${ch}`, { headers: { Accept: 'text/json' } });
    assert.equal(JSON.parse(info.body).last_message_id, id);
    es.close();
  });

  test('a JSON publish through the server API arrives as its JSON text with application/json', async () => {
    const ch = chan();
    const r = await req(t.base, '/api/publish', {
      method: 'POST',
      body: JSON.stringify({ channel: ch, data: { a: 1 } }),
      headers: { 'Content-Type': 'application/json' },
    });
    assert.equal(r.status, 200, r.body);
    const lp = await req(t.base, `/sub/${ch}`);
    assert.deepEqual(JSON.parse(lp.body), { a: 1 });
    assert.equal(lp.headers.get('content-type'), 'application/json');
  });

  test('reserved namespaces (IM inboxes) can be neither read nor written through Nchan routes', async () => {
    assert.equal((await req(t.base, '/sub/inbox:alice')).status, 403);
    assert.equal((await publish(t.base, '/pub/inbox:alice', 'forged')).status, 403);
    const ws = raw(t.base, '/sub/inbox:alice', {
      Connection: 'Upgrade',
      Upgrade: 'websocket',
      'Sec-WebSocket-Version': '13',
      'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==',
    });
    assert.equal((await ws.head).status, 403);
    ws.close();
  });

  test('with publishAccess "key", publishing and deleting need the API key; subscribing does not', async () => {
    const key = 'k'.repeat(24);
    const server = createServer({ config: { port: 0, apiKey: key, logLevel: 'silent', nchan: { publishAccess: 'key' } }, processMetrics: false });
    await server.listen();
    try {
      const base = server.url();
      const ch = chan();
      assert.equal((await publish(base, `/pub/${ch}`, 'x')).status, 403);
      assert.equal((await publish(base, `/pub/${ch}`, 'x', { Authorization: `apikey ${key}` })).status, 202);
      assert.equal((await publish(base, `/pub/${ch}`, 'y', { 'X-Api-Key': key })).status, 202);
      assert.equal((await req(base, `/pub/${ch}`, { method: 'DELETE' })).status, 403);
      assert.equal((await req(base, `/sub/${ch}`)).body, 'x');
      assert.equal((await req(base, `/pub/${ch}`, { method: 'DELETE', headers: { 'X-Api-Key': key } })).status, 200);
    } finally {
      await server.close();
    }
  });

  test('nchan.enabled false leaves the Nchan routes unserved', async () => {
    const server = createServer({ config: { port: 0, logLevel: 'silent', nchan: { enabled: false } }, processMetrics: false });
    await server.listen();
    try {
      assert.equal(server.nchan, undefined);
      assert.equal((await publish(server.url(), `/pub/${chan()}`, 'x')).status, 404);
    } finally {
      await server.close();
    }
  });
});
