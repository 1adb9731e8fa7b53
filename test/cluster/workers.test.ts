/**
 * `herald serve --workers N`: workers share one port and reach each other's subscribers through
 * Redis; a disconnect through the API reaches sessions on every worker; SIGTERM on the primary
 * drains every worker gracefully.
 */
import assert from 'node:assert/strict';
import { get } from 'node:http';
import { describe, test } from 'node:test';
import { ConfigError, type NodesAnswer, resolveConfig } from '../../src/index.js';
import { DisconnectCode } from '../../src/protocol/codes.js';
import { WsClient } from '../helpers/clients.js';
import { signToken, TEST_SECRET } from '../helpers/tokens.js';
import { apiPublish, useNodes } from './nodes.js';

/** GET /health on a fresh connection (so the primary hands it to the next worker). */
function health(port: number): Promise<{ node: string; connections: number }> {
  return new Promise((resolve, reject) => {
    get({ host: '127.0.0.1', port, path: '/health', agent: false }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve(JSON.parse(body) as { node: string; connections: number }));
    }).on('error', reject);
  });
}

void test('more than one worker without Redis is a configuration error that says why', () => {
  assert.throws(
    () => resolveConfig({ workers: 2 }),
    (err: unknown) => err instanceof ConfigError && /workers: .*redis\.url/.test(err.message),
  );
  assert.equal(resolveConfig({ workers: 2, redis: { url: 'redis://127.0.0.1:6379' } }).workers, 2);
});

void describe('herald serve --workers 2', { timeout: 600_000 }, () => {
  const cluster = useNodes<WsClient>({
    tag: 'workers',
    count: 1,
    args: ['--workers', '2', '--cluster.drain-window-ms', '200', '--auth.hmac-secret', TEST_SECRET],
    stopSignal: 'SIGKILL',
    startupMs: 300_000,
  });

  void test('connections to the one port are served by both workers', async () => {
    const { a: node } = cluster;
    const nodes = new Set<string>();
    for (let i = 0; i < 6; i++) nodes.add((await health(node.port)).node);
    assert.equal(nodes.size, 2);
  });

  void test('/metrics answers for the whole host whichever worker takes the scrape, each series labelled by node', async () => {
    const { a: node } = cluster;
    const workers = new Set<string>();
    for (let i = 0; i < 6; i++) workers.add((await health(node.port)).node);
    for (let i = 0; i < 3; i++) {
      const text = await new Promise<string>((resolve, reject) => {
        get({ host: '127.0.0.1', port: node.port, path: '/metrics', agent: false }, (res) => {
          let body = '';
          res.on('data', (d: Buffer) => (body += d.toString()));
          res.on('end', () => (res.statusCode === 200 ? resolve(body) : reject(new Error(`${res.statusCode}: ${body}`))));
        }).on('error', reject);
      });
      for (const id of workers) assert.match(text, new RegExp(`^herald_subscriptions\\{node="${id}"\\} \\d+`, 'm'), `scrape ${i} lacks worker ${id}`);
      assert.match(text, /^process_cpu_user_seconds_total\{node="[^"]+"\} /m);
    }
  });

  void test('/api/nodes lists both workers, whichever takes the request, with their own figures and the host totals', async () => {
    const { a: node } = cluster;
    const workers = new Set<string>();
    for (let i = 0; i < 6; i++) workers.add((await health(node.port)).node);
    const held: WsClient[] = [];
    try {
      // Three connections, spread over the workers by the primary.
      for (let i = 0; i < 3; i++) {
        const c = await WsClient.connected(node.wsUrl);
        held.push(c);
        await c.ok('subscribe', { channel: `nodes-${i}` });
      }
      const answerers = new Set<string>();
      for (let i = 0; i < 4; i++) {
        const body = await new Promise<NodesAnswer>((resolve, reject) => {
          get({ host: '127.0.0.1', port: node.port, path: '/api/nodes', agent: false }, (res) => {
            let text = '';
            res.on('data', (d: Buffer) => (text += d.toString()));
            res.on('end', () => (res.statusCode === 200 ? resolve(JSON.parse(text) as NodesAnswer) : reject(new Error(`${res.statusCode}: ${text}`))));
          }).on('error', reject);
        });
        answerers.add(body.node);
        assert.deepEqual(body.workers, { answered: 2, unanswered: 0 });
        assert.equal(body.registry, 'ok');
        assert.deepEqual(new Set(body.nodes.map((n) => n.id)), workers, 'both workers, whichever answered');
        assert.deepEqual(
          body.nodes.filter((n) => n.self).map((n) => n.id),
          [body.node],
        );
        // Live figures from the workers themselves, not the registry's last heartbeat.
        for (const n of body.nodes) {
          assert.equal(n.source, n.self ? 'self' : 'worker');
          assert.equal(n.ageMs, 0);
          assert.equal(n.url, node.url);
          assert.ok(n.pid! > 0 && n.pid !== node.child.pid);
          assert.match(n.version!, /^\d+\.\d+\.\d+/);
          assert.ok(n.uptimeMs! > 0);
          assert.ok(n.load!.rss > 0);
        }
        assert.equal(new Set(body.nodes.map((n) => n.pid)).size, 2);
        assert.equal(body.totals.nodes, 2);
        assert.equal(body.totals.connections, 3);
        assert.equal(body.totals.subscriptions, 3);
        assert.equal(body.totals.connectionsByTransport.websocket, 3);
        assert.equal(body.totals.connections, body.nodes[0]!.connections + body.nodes[1]!.connections);
      }
      assert.equal(answerers.size, 2, 'both workers answered some of the requests');
    } finally {
      for (const c of held) c.terminate();
    }
  });

  void test('a publication reaches subscribers on every worker', async () => {
    const { a: node, clients } = cluster;
    const ch = `w-${Date.now()}`;
    for (let i = 0; i < 6; i++) {
      const c = await WsClient.connected(node.wsUrl);
      clients.push(c);
      await c.ok('subscribe', { channel: ch });
    }
    assert.equal((await apiPublish(node, ch, 'all')).status, 200);
    for (const c of clients) assert.equal((await c.nextPub(ch, 10_000)).data, 'all');
  });

  void test("a user's sessions on both workers are listed by either and closed by one disconnect", async () => {
    const { a: node } = cluster;
    const token = await signToken('wk-ann');
    const mine: WsClient[] = [];
    const sessions = new Set<string>();
    // The primary hands connections to the workers in turn: four land on both.
    for (let i = 0; i < 4; i++) {
      const c = await WsClient.open(node.wsUrl);
      mine.push(c);
      sessions.add((await c.ok('connect', { token })).client as string);
    }
    let listed: Array<{ node: string; session: string }> = [];
    for (let i = 0; listed.length !== 4; i++) {
      assert.ok(i < 200, `sessions listed: ${JSON.stringify(listed)}`);
      await new Promise((r) => setTimeout(r, 25));
      listed = ((await (await fetch(`${node.url}/api/users/wk-ann/sessions`)).json()) as { sessions: typeof listed }).sessions;
    }
    assert.deepEqual(new Set(listed.map((s) => s.session)), sessions);
    assert.equal(new Set(listed.map((s) => s.node)).size, 2);
    const res = await fetch(`${node.url}/api/disconnect`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ user: 'wk-ann' }),
    });
    const body = (await res.json()) as { disconnected: number; nodes: number };
    assert.equal(body.nodes, 2);
    // Both workers hold some of the four: the one that answered closed its own, the other the rest.
    assert.ok(body.disconnected >= 1 && body.disconnected <= 3, `disconnected ${body.disconnected} here`);
    for (const c of mine) assert.equal((await c.closed).code, DisconnectCode.FORBIDDEN);
  });

  void test('SIGTERM on the primary drains the workers: clients are told to reconnect through the dispatcher, the primary exits 0', async () => {
    const { a: node, clients } = cluster;
    const closes = clients.map((c) => c.closed);
    const exit = await node.stop('SIGTERM');
    assert.deepEqual(exit, { code: 0, signal: null });
    for (const closed of closes) assert.equal((await closed).code, DisconnectCode.RECONNECT);
    assert.match(node.stdout, /shutting down workers/);
    assert.equal((node.stdout.match(/worker listening/g) ?? []).length, 2);
  });
});
