/**
 * A publisher cannot forge EventSource fields (`event:`, `id:`, `retry:`) or cut NDJSON lines
 * with bare CR or LF bytes: replays the injection against the Nchan EventSource sink and the
 * native SSE and chunked-stream transports, read by a real EventSource client.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { EventSource } from 'eventsource';
import type { HeraldServer } from '../../src/index.js';
import { NdjsonClient } from '../helpers/clients.js';
import { chan, startServer, waitFor } from '../helpers/server.js';

/** A body whose bare CRs would start `event:`, `id:` and `retry:` lines for an EventSource parser. */
const FORGERY = 'ok\revent: forged\rid: 666\rretry: 1\r\rdata: second';

interface Received {
  type: string;
  data: string;
  lastEventId: string;
}

/** Open a real EventSource on `url`, collecting `message` events and the named events the test publishes. */
async function listen(url: string): Promise<{ es: EventSource; got: Received[] }> {
  const es = new EventSource(url);
  const got: Received[] = [];
  for (const type of ['message', 'forged', 'xretry: 1id: 7'])
    es.addEventListener(type, (e) => got.push({ type, data: e.data as string, lastEventId: e.lastEventId }));
  await new Promise<void>((resolve, reject) => {
    es.onopen = () => resolve();
    es.onerror = (e) => reject(new Error(String(e.message)));
  });
  return { es, got };
}

describe('EventSource line injection', () => {
  let server: HeraldServer;
  before(async () => {
    // Loopback trust (a test default): the test publishes from loopback without a key.
    server = await startServer({
      nchan: {
        routes: [
          { path: '/pub/', role: 'publisher' },
          { path: '/sub/', role: 'subscriber', types: ['eventsource'] },
        ],
      },
    });
  });
  after(async () => {
    await server.close();
  });

  test('Nchan EventSource: bare CRs in a body stay data, and line breaks in an event name are dropped', async () => {
    const ch = chan('es');
    const { es, got } = await listen(`${server.url()}/sub/${ch}`);
    try {
      const r = await fetch(`${server.url()}/pub/${ch}`, { method: 'POST', body: FORGERY, headers: { Accept: 'text/json' } });
      assert.ok(r.ok, `publish answered ${r.status}`);
      const id = ((await r.json()) as { last_message_id: string }).last_message_id;
      const api = await fetch(`${server.url()}/api/publish?channel=${ch}&event=${encodeURIComponent('x\rretry: 1\nid: 7')}`, { method: 'POST', body: 'tail' });
      assert.equal(api.status, 200);
      await waitFor(() => got.length >= 2, 3_000, 'two events');
      assert.deepEqual(got[0], { type: 'message', data: 'ok\nevent: forged\nid: 666\nretry: 1\n\ndata: second', lastEventId: id });
      assert.equal(got.length, 2, 'the body made no second event');
      assert.equal(got[1]!.type, 'xretry: 1id: 7', 'the event name stayed one line');
      assert.match(got[1]!.lastEventId, /^\d+:\d+$/);
    } finally {
      es.close();
    }
  });

  test('native SSE and NDJSON: raw CR/LF whitespace in a JSON payload cannot split a frame', async () => {
    const ch = chan('native');
    const { es, got } = await listen(`${server.url()}/connection/sse?channel=${ch}`);
    const nd = await NdjsonClient.open(`${server.url()}/connection/stream?channel=${ch}`);
    try {
      assert.equal((await nd.frames.take()).type, 'subscribed');
      const body = '{"a":\r"x",\r\n"b":\n[1,\r2]}';
      const r = await fetch(`${server.url()}/api/publish?channel=${ch}`, { method: 'POST', body, headers: { 'content-type': 'application/json' } });
      assert.equal(r.status, 200);
      await waitFor(() => got.some((e) => e.data.includes('"pub"')), 3_000, 'the pub event');
      const pubs = got.filter((e) => e.data.includes('"pub"'));
      assert.equal(pubs.length, 1);
      assert.deepEqual(JSON.parse(pubs[0]!.data).data, { a: 'x', b: [1, 2] });
      const f = await nd.frames.take();
      assert.equal(f.type, 'pub');
      assert.deepEqual(f.data, { a: 'x', b: [1, 2] });
    } finally {
      es.close();
      nd.close();
    }
  });
});
