/**
 * The webhook queue is bounded in bytes, and client events (`client.message`, from the `send`
 * command any client may use) have their own quota: replays issue 12's flood of anonymous sends
 * while the backend is down, then checks a system event still gets in and is delivered.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startBackend } from '../../examples/backend.js';
import { WsClient } from '../helpers/clients.js';
import { startServer, waitFor, wsUrl } from '../helpers/server.js';

const CLIENT_QUOTA = 20_000;

test('a flood of client sends fills only the client quota (bytes and half the count); system events still queue and arrive', async () => {
  const backend = await startBackend();
  // The backend fails every webhook until told otherwise: everything stays queued.
  backend.failWebhooks(1_000_000);
  const server = await startServer({
    dev: true,
    backend: {
      webhookUrl: `${backend.url}/webhook`,
      webhookQueueMax: 200,
      webhookClientQueueMaxBytes: CLIENT_QUOTA,
      webhookIntervalMs: 10,
      webhookRetryMinMs: 50,
      webhookRetryMaxMs: 100,
    },
  });
  const clients: WsClient[] = [];
  try {
    const flood = await WsClient.connected(wsUrl(server), {});
    clients.push(flood);
    const data = 'x'.repeat(1_000);
    let accepted = 0;
    let refused = 0;
    for (let i = 0; i < 150; i++) {
      const r = await flood.command('send', { data });
      if (r.error) {
        assert.equal(r.error.message.includes('queue is full'), true, JSON.stringify(r.error));
        refused++;
      } else accepted++;
    }
    const bytes = server.core.backend.webhookBacklogBytes;
    assert.ok(accepted > 0 && refused > 0, `${accepted} accepted, ${refused} refused`);
    // Besides client events only the flood's own connect event is queued.
    assert.ok(bytes <= CLIENT_QUOTA + 1_000, `webhook queue holds ${bytes} bytes (client quota ${CLIENT_QUOTA})`);

    // A system event after the flood is queued, not dropped, and delivered once the backend is back.
    const late = await WsClient.connected(wsUrl(server), { user: 'late-user' });
    clients.push(late);
    backend.failWebhooks(0);
    await waitFor(() => backend.events.some((e) => e.type === 'connect' && e.data.user === 'late-user'), 5_000, 'the connect event of late-user');
    await waitFor(() => server.core.backend.webhookBacklog === 0, 5_000, 'queue drained');
    assert.equal(server.core.backend.webhookBacklogBytes, 0);
    assert.equal(backend.events.filter((e) => e.type === 'client.message').length, accepted, 'every accepted send arrived');
  } finally {
    for (const c of clients) await c.close();
    await server.close();
    await backend.close();
  }
});

test('system events are bounded by backend.webhookQueueMaxBytes', async () => {
  const down = await startBackend();
  const url = `${down.url}/webhook`;
  await down.close();
  const server = await startServer({
    dev: true,
    backend: { webhookUrl: url, webhookQueueMaxBytes: 2_048, webhookRetryMinMs: 5_000, webhookRetryMaxMs: 5_000 },
  });
  try {
    for (let i = 0; i < 20; i++) await (await WsClient.connected(wsUrl(server), { user: `bytes-${i}` })).close();
    await waitFor(() => server.core.backend.webhookBacklog > 0, 3_000, 'queued events');
    assert.ok(server.core.backend.webhookBacklogBytes <= 2_048, `${server.core.backend.webhookBacklogBytes} bytes held`);
    assert.ok(server.core.backend.webhookBacklog < 40, 'connect and disconnect events beyond the bytes were dropped');
    const metrics = await (await fetch(`${server.url()}/metrics`)).text();
    assert.match(metrics, /herald_webhook_events_total\{outcome="dropped"\} [1-9]/);
    assert.match(metrics, /^herald_webhook_queue_bytes [1-9]\d*$/m);
  } finally {
    await server.close();
  }
});
