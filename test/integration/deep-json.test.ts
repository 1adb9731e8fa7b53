/**
 * Deeply nested JSON from anonymous peers (issue: one `send` whose `data` was ~20,000 levels deep
 * killed the node when webhooks were on, and `publish`, `im.send` and `/api/publish` answered 500
 * with a stack trace per request). Every front now refuses nesting past MAX_JSON_DEPTH with
 * HERALD_ERR_JSON_TOO_DEEP (400 / an error reply), and the node keeps serving.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { useBackendServer } from '../helpers/backend-fixture.js';
import { MAX_JSON_DEPTH } from '../../src/protocol/json.js';
import { WsClient } from '../helpers/clients.js';
import { chan, waitFor } from '../helpers/server.js';

const API_KEY = 'deep-json-api-key-0123456789';
/** `depth` nested arrays around a number, as text. */
const nested = (depth: number): string => '['.repeat(depth) + '1' + ']'.repeat(depth);
/** A command frame whose `data` is `depth` levels deep (built as text: the test must not overflow either). */
const deepFrame = (id: number, cmd: string, extra: string, depth: number): string => `{"id":${id},"cmd":"${cmd}",${extra}"data":${nested(depth)}}`;

describe('deeply nested JSON', () => {
  const fx = useBackendServer('deep-json', {}, (url) => ({
    dev: true,
    apiKey: API_KEY,
    namespaces: [{ name: 'chat', allowPublish: true }],
    backend: { webhookUrl: `${url}/webhook`, webhookIntervalMs: 20, webhookEvents: ['client.message'] },
  }));
  const { open } = fx;
  /** Send a raw frame and wait for the reply with that id. */
  const raw = (c: WsClient, id: number, text: string): Promise<any> =>
    new Promise((resolve) => {
      const onMessage = (data: Buffer): void => {
        const f = JSON.parse(data.toString());
        if (f.id === id) {
          c.ws.off('message', onMessage);
          resolve(f);
        }
      };
      c.ws.on('message', onMessage);
      c.send(text);
    });

  test('a 20,000-deep `send` over WebSocket is refused and the node keeps delivering webhooks', async () => {
    const c = await open('deep-ws');
    const r = await raw(c, 7, deepFrame(7, 'send', '', 20_000));
    assert.equal(r.error?.name, 'HERALD_ERR_JSON_TOO_DEEP');
    // The session stays usable, and a normal send still reaches the backend.
    await c.ok('send', { data: { hello: 'after' } });
    await waitFor(() => fx.backend.events.some((e) => e.type === 'client.message' && (e.data.data as any)?.hello === 'after'), 5_000, 'webhook');
    assert.ok(!fx.backend.events.some((e) => e.type === 'client.message' && Array.isArray(e.data.data)), 'the deep event never reached the queue');
  });

  test('a 20,000-deep `send` over POST /connection/command answers 400', async () => {
    const res = await fetch(`${fx.server.url()}/connection/command?user=deep-http`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: deepFrame(1, 'send', '', 20_000),
    });
    assert.equal(res.status, 400);
    assert.equal(((await res.json()) as any).code, 'HERALD_ERR_JSON_TOO_DEEP');
    const ok = await fetch(`${fx.server.url()}/health`);
    assert.equal(ok.status, 200);
  });

  test('`publish` and `im.send` with deep data answer a client error, not an internal one', async () => {
    const c = await open('deep-pub');
    const ch = `chat:${chan('deep')}`;
    const pub = await raw(c, 11, deepFrame(11, 'publish', `"channel":"${ch}",`, 20_000));
    assert.equal(pub.error?.name, 'HERALD_ERR_JSON_TOO_DEEP');
    const im = await raw(c, 12, `{"id":12,"cmd":"im.send","to":"deep-other","data":${nested(5_000)}}`);
    assert.equal(im.error?.name, 'HERALD_ERR_JSON_TOO_DEEP');
  });

  test('nesting up to the limit is accepted; one level more is refused', async () => {
    const c = await open('deep-edge');
    const ch = `chat:${chan('edge')}`;
    // `data` sits one level inside the command object.
    const ok = await raw(c, 21, deepFrame(21, 'publish', `"channel":"${ch}",`, MAX_JSON_DEPTH - 1));
    assert.equal(ok.error, undefined);
    const no = await raw(c, 22, deepFrame(22, 'publish', `"channel":"${ch}",`, MAX_JSON_DEPTH));
    assert.equal(no.error?.name, 'HERALD_ERR_JSON_TOO_DEEP');
  });

  test('/api/publish with a deep body answers 400', async () => {
    const headers = { authorization: `apikey ${API_KEY}`, 'content-type': 'application/json' };
    const res = await fetch(`${fx.server.url()}/api/publish`, { method: 'POST', headers, body: `{"channel":"${chan('api')}","data":${nested(20_000)}}` });
    assert.equal(res.status, 400);
    assert.equal(((await res.json()) as any).code, 'HERALD_ERR_JSON_TOO_DEEP');
  });

  test('a deep JSON body published raw on an Nchan route reaches native history as text, not as a 500', async () => {
    const id = chan('nchan-deep');
    const body = nested(20_000);
    const p = await fetch(`${fx.server.url()}/pub/${id}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `apikey ${API_KEY}` },
      body,
    });
    assert.ok(p.status === 201 || p.status === 202, `publish answered ${p.status}`);
    const c = await open('deep-hist');
    const h = await c.command('history', { channel: id, limit: 10 });
    assert.equal(h.error, undefined, JSON.stringify(h.error));
    assert.equal(h.result.publications.length, 1);
    assert.equal(h.result.publications[0].data, body);
  });
});
