/**
 * `GET /api/nodes` on a single node (no Redis, no workers): the node lists itself with its
 * counters, uptime, version and load, the totals equal it, and the endpoint needs the API key.
 * Several workers and a Redis cluster are covered in test/cluster (workers.test.ts, nodes.test.ts).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { after, before, describe, test } from 'node:test';
import type { HeraldServer, NodesAnswer } from '../../src/index.js';
import { WsClient } from '../helpers/clients.js';
import { chan, publish, startServer, wsUrl } from '../helpers/server.js';

const VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

describe('GET /api/nodes on a single node', () => {
  let server: HeraldServer;
  const clients: WsClient[] = [];

  before(async () => {
    server = await startServer();
  });
  after(async () => {
    for (const c of clients) c.terminate();
    await server.close();
  });

  test('lists this node with its connections, subscriptions, uptime, version and load, and totals equal to it', async () => {
    const ch = chan('nodes');
    for (let i = 0; i < 2; i++) {
      const c = await WsClient.connected(wsUrl(server));
      clients.push(c);
      await c.ok('subscribe', { channel: ch });
    }
    await publish(server, ch, 'x');
    const res = await fetch(`${server.url()}/api/nodes`);
    assert.equal(res.status, 200);
    const body = (await res.json()) as NodesAnswer;
    assert.equal(body.node, server.core.nodeId);
    assert.equal(body.registry, 'none');
    assert.equal(body.workers, undefined);
    assert.equal(body.nodes.length, 1);
    const [n] = body.nodes;
    assert.equal(n!.id, server.core.nodeId);
    assert.equal(n!.url, server.url());
    assert.equal(n!.self, true);
    assert.equal(n!.source, 'self');
    assert.equal(n!.draining, false);
    assert.equal(n!.connections, 2);
    assert.equal(n!.subscriptions, 2);
    assert.equal(n!.channels, 1);
    assert.deepEqual(n!.connectionsByTransport, { websocket: 2 });
    assert.equal(n!.published, 1);
    assert.equal(n!.version, VERSION);
    assert.equal(n!.host, hostname());
    assert.equal(n!.pid, process.pid);
    assert.equal(n!.ageMs, 0);
    assert.ok(n!.uptimeMs! >= 0 && n!.uptimeMs! < 600_000);
    assert.equal(n!.startedAt, server.core.startedAt);
    const load = n!.load!;
    for (const k of ['cpu', 'eventLoopDelayMs', 'loadAverage', 'rss', 'heapUsed'] as const) assert.ok(Number.isFinite(load[k]) && load[k] >= 0, k);
    assert.ok(load.rss > 0);
    assert.deepEqual(body.totals, {
      nodes: 1,
      draining: 0,
      connections: 2,
      subscriptions: 2,
      published: 1,
      delivered: 2,
      connectionsByTransport: { websocket: 2 },
      rss: load.rss,
    });
  });

  test('needs the API key when one is configured', async () => {
    const key = 'nodes-api-key-0123456789';
    const locked = await startServer({ apiKey: key });
    try {
      assert.equal((await fetch(`${locked.url()}/api/nodes`)).status, 401);
      const ok = await fetch(`${locked.url()}/api/nodes`, { headers: { authorization: `apikey ${key}` } });
      assert.equal(ok.status, 200);
      assert.equal(((await ok.json()) as NodesAnswer).nodes.length, 1);
      assert.equal((await fetch(`${locked.url()}/api/nodes`, { method: 'POST', headers: { authorization: `apikey ${key}` } })).status, 405);
    } finally {
      await locked.close();
    }
  });
});
