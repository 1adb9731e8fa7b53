/**
 * Webhooks against the real example backend: connect/subscribe/unsubscribe/disconnect, presence,
 * IM message stored and offline-with-unread events; HMAC signature verified by the receiver;
 * batches retried after 500 answers with no event lost and none duplicated after dedupe by id;
 * the bounded queue drops (and counts) what does not fit.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { type ReceivedEvent, startBackend, verifySignature } from '../../examples/backend.js';
import { useBackendServer } from '../helpers/backend-fixture.js';
import { WsClient } from '../helpers/clients.js';
import { startServer, waitFor, wsUrl } from '../helpers/server.js';

const SECRET = 'webhook-secret-0123456789';

describe('webhooks', () => {
  const fx = useBackendServer('webhooks', { secret: SECRET }, (url) => ({
    dev: true,
    im: { presenceGraceMs: 50 },
    backend: {
      webhookUrl: `${url}/webhook`,
      secret: SECRET,
      webhookIntervalMs: 20,
      webhookBatchSize: 50,
      webhookRetryMinMs: 50,
      webhookRetryMaxMs: 200,
    },
  }));
  const { open } = fx;
  const find = (type: string, pred: (e: ReceivedEvent) => boolean = () => true): ReceivedEvent | undefined =>
    fx.backend.events.find((e) => e.type === type && pred(e));
  const waitEvent = async (type: string, pred: (e: ReceivedEvent) => boolean = () => true): Promise<ReceivedEvent> => {
    await waitFor(() => find(type, pred) !== undefined, 5_000, `webhook ${type}`);
    return find(type, pred)!;
  };

  test('connect, subscribe, unsubscribe and disconnect arrive signed, with unique ids', async () => {
    const c = await open('hook-ann');
    await c.ok('subscribe', { channel: 'news' });
    await c.ok('unsubscribe', { channel: 'news' });
    await c.close();
    const conn = await waitEvent('connect', (e) => e.data.user === 'hook-ann');
    assert.equal(conn.data.transport, 'websocket');
    await waitEvent('subscribe', (e) => e.data.user === 'hook-ann' && e.data.channel === 'news');
    await waitEvent('unsubscribe', (e) => e.data.user === 'hook-ann' && e.data.channel === 'news');
    const disc = await waitEvent('disconnect', (e) => e.data.user === 'hook-ann');
    assert.equal(disc.data.client, conn.data.client);
    assert.equal(new Set(fx.backend.events.map((e) => e.id)).size, fx.backend.events.length);
    assert.equal(fx.backend.stats.badSignatures, 0);
  });

  test('an SSE session reports connect and disconnect with its channels', async () => {
    const ac = new AbortController();
    const res = await fetch(`${fx.server.url()}/connection/sse?user=hook-sse&channel=news`, { signal: ac.signal });
    assert.equal(res.status, 200);
    const conn = await waitEvent('connect', (e) => e.data.user === 'hook-sse');
    assert.equal(conn.data.transport, 'sse');
    assert.deepEqual(conn.data.channels, ['news']);
    ac.abort();
    await res.body?.cancel().catch(() => undefined);
    const disc = await waitEvent('disconnect', (e) => e.data.user === 'hook-sse');
    assert.equal(disc.data.client, conn.data.client);
  });

  test('Nchan subscribers are client sessions: counted as opened and closed, connect and disconnect reported (long-poll requests not)', async () => {
    const opened = async (): Promise<number> => {
      const text = await (await fetch(`${fx.server.url()}/metrics`)).text();
      return Number(/^herald_connections_opened_total\{transport="nchan-eventsource"\} (\d+)/m.exec(text)?.[1] ?? 0);
    };
    const before = await opened();
    const ac = new AbortController();
    const res = await fetch(`${fx.server.url()}/sub/hook-nchan`, { headers: { accept: 'text/event-stream' }, signal: ac.signal });
    assert.equal(res.status, 200);
    const conn = await waitEvent('connect', (e) => e.data.transport === 'nchan-eventsource');
    assert.deepEqual(conn.data.channels, ['hook-nchan']);
    assert.equal(await opened(), before + 1);
    ac.abort();
    await res.body?.cancel().catch(() => undefined);
    const disc = await waitEvent('disconnect', (e) => e.data.client === conn.data.client);
    assert.deepEqual(disc.data.channels, ['hook-nchan']);
    await waitFor(() => fx.server.core.clients.admitted === 0, 3_000, 'the session closed');
    // A long-poll is one request of many: counted as a connection, not reported as a session.
    const poll = new AbortController();
    const pending = fetch(`${fx.server.url()}/sub/hook-nchan-poll`, { signal: poll.signal }).catch(() => undefined);
    await waitFor(() => fx.server.core.hub.connectionsByTransport()['nchan-longpoll'] === 1, 3_000, 'the long-poll waiting');
    poll.abort();
    await pending;
    await waitFor(() => fx.server.core.clients.admitted === 0, 3_000, 'the long-poll closed');
    assert.equal(
      find('connect', (e) => e.data.transport === 'nchan-longpoll'),
      undefined,
    );
  });

  test('IM: message stored, presence changes, and "offline with unread" for an offline recipient', async () => {
    await fetch(`${fx.server.url()}/api/im/users`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ users: [{ id: 'hook-off' }] }),
    });
    const a = await open('hook-sender');
    await a.ok('subscribe', { channel: 'inbox:hook-sender' });
    const ack = await a.ok('im.send', { to: 'hook-off', clientId: 'w1', data: { text: 'ping' } });
    const stored = await waitEvent('im.message', (e) => e.data.id === ack.id);
    assert.deepEqual(stored.data.data, { text: 'ping' });
    assert.equal(stored.data.sender, 'hook-sender');
    const off = await waitEvent('im.offline_unread', (e) => e.data.user === 'hook-off');
    assert.equal(off.data.unread, 1);
    assert.equal(off.data.message, ack.id);
    const pres = await waitEvent('presence', (e) => e.data.user === 'hook-sender' && e.data.state === 'online');
    assert.equal(pres.type, 'presence');
  });

  test('a backend answering 500 gets the same events again later: none lost, duplicates only by id', async () => {
    const before = fx.backend.events.length;
    fx.backend.failWebhooks(3);
    const users = ['r1', 'r2', 'r3', 'r4', 'r5'].map((u) => `hook-retry-${u}`);
    for (const u of users) await (await open(u)).close();
    await waitFor(() => users.every((u) => find('disconnect', (e) => e.data.user === u)), 8_000, 'all retried events');
    const got = fx.backend.events.slice(before).filter((e) => users.includes(String(e.data.user)));
    assert.equal(got.filter((e) => e.type === 'connect').length, users.length);
    assert.equal(got.filter((e) => e.type === 'disconnect').length, users.length);
    const metrics = await (await fetch(`${fx.server.url()}/metrics`)).text();
    assert.match(metrics, /herald_webhook_events_total\{outcome="failed"\} [1-9]/);
    assert.match(metrics, /herald_webhook_events_total\{outcome="delivered"\} [1-9]/);
  });

  test('the receiver rejects a forged or stale signature', () => {
    const body = '{"events":[]}';
    const ts = Math.floor(Date.now() / 1000);
    const good = { 'x-herald-timestamp': String(ts), 'x-herald-signature': 'sha256=' + 'ab'.repeat(32) };
    assert.equal(verifySignature(SECRET, good, body), false);
    assert.equal(verifySignature(SECRET, { 'x-herald-timestamp': String(ts - 3600), 'x-herald-signature': 'sha256=00' }, body), false);
    assert.equal(verifySignature(SECRET, {}, body), false);
  });
});

describe('webhooks: signature mismatch and bounded queue', () => {
  test('a Herald with the wrong secret is refused (401) and retries; the events stay queued', async () => {
    const backend = await startBackend({ secret: SECRET });
    const server = await startServer({
      dev: true,
      backend: {
        webhookUrl: `${backend.url}/webhook`,
        secret: 'not-the-right-secret-0000',
        webhookIntervalMs: 10,
        webhookRetryMinMs: 50,
        webhookRetryMaxMs: 100,
      },
    });
    try {
      const c = await WsClient.connected(wsUrl(server), { user: 'forger' });
      await c.close();
      await waitFor(() => backend.stats.badSignatures >= 2, 5_000, 'refused attempts');
      assert.equal(backend.events.length, 0);
      assert.ok(server.core.backend.webhookBacklog >= 1);
    } finally {
      await server.close();
      await backend.close();
    }
  });

  test('events beyond the queue bound are dropped, counted in metrics', async () => {
    const down = await startBackend();
    const url = `${down.url}/webhook`;
    await down.close();
    const server = await startServer({ dev: true, backend: { webhookUrl: url, webhookQueueMax: 3, webhookRetryMinMs: 5_000, webhookRetryMaxMs: 5_000 } });
    try {
      for (let i = 0; i < 4; i++) await (await WsClient.connected(wsUrl(server), { user: `drop${i}` })).close();
      await waitFor(() => server.core.backend.webhookBacklog === 3, 3_000, 'full queue');
      const metrics = await (await fetch(`${server.url()}/metrics`)).text();
      assert.match(metrics, /herald_webhook_events_total\{outcome="dropped"\} [1-9]/);
      assert.match(metrics, /herald_webhook_queue_length 3/);
    } finally {
      await server.close();
    }
  });
});
