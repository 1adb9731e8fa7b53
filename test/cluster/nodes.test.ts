/**
 * Several Herald nodes as separate processes sharing Redis: cross-node fan-out, a long-poll
 * client hopping between nodes, history and epochs across a node restart, and a Redis restart
 * (private redis-server) that nodes ride out by themselves.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { NodesAnswer } from '../../src/index.js';
import { ErrorCode } from '../../src/protocol/codes.js';
import { poll, WsClient } from '../helpers/clients.js';
import { apiPublish, NodeProcess, STARTUP_MS, useNodes } from './nodes.js';

let seq = 0;
const chan = (tag: string): string => `${tag}-${++seq}`;

void describe('cluster: nodes sharing Redis', { timeout: 600_000 }, () => {
  const cluster = useNodes<WsClient>({ tag: 'nodes' });

  void test('a WebSocket subscriber on node A receives what is published through node B, in order', async () => {
    const { a, b, clients } = cluster;
    const ch = chan('fan');
    const onA = await WsClient.connected(a.wsUrl);
    const onB = await WsClient.connected(b.wsUrl);
    clients.push(onA, onB);
    await onA.ok('subscribe', { channel: ch });
    await onB.ok('subscribe', { channel: ch });
    for (let i = 1; i <= 20; i++) assert.equal((await apiPublish(i % 2 ? b : a, ch, { i })).status, 200);
    for (const c of [onA, onB]) {
      const pubs = await c.pushes.takeN(20, (f) => f.type === 'pub' && f.channel === ch, 30_000);
      assert.deepEqual(
        pubs.map((p) => p.offset),
        Array.from({ length: 20 }, (_, i) => i + 1),
      );
      assert.deepEqual(
        pubs.map((p) => (p.data as { i: number }).i),
        Array.from({ length: 20 }, (_, i) => i + 1),
      );
    }
  });

  void test('a long-poll client hops between nodes with its position and misses nothing', async () => {
    const { a, b } = cluster;
    const ch = chan('hop');
    const [first] = (await apiPublish(a, ch, 'm1')).body.results;
    let since = `${first.epoch}:0`;
    const seen: string[] = [];
    for (let round = 0; round < 6; round++) {
      const node = round % 2 ? a : b;
      // Publish through the other node while this poll waits (or before it starts).
      const waiting = poll(`${node.url}/connection/poll?channel=${ch}&since=${since}`);
      const published = new Promise((resolve) => setTimeout(resolve, 50)).then(() => apiPublish(node === a ? b : a, ch, `m${round + 2}`));
      const r = await waiting;
      await published; // publications in order: the next round's comes after this one
      assert.equal(r.status, 200);
      assert.equal(r.body.recovered, true);
      seen.push(...r.body.publications.map((p: { data: string }) => p.data));
      since = r.body.position;
    }
    // Every publication once, in order, whichever node answered.
    const final = await poll(`${a.url}/connection/poll?channel=${ch}&since=${since}`);
    seen.push(...final.body.publications.map((p: { data: string }) => p.data));
    assert.deepEqual(
      seen,
      Array.from({ length: 7 }, (_, i) => `m${i + 1}`),
    );
  });

  void test('/api/nodes on either node lists both: itself live, the other from the registry, with connections, version, uptime and load', async () => {
    const { a, b } = cluster;
    const ch = chan('nodes');
    const held: WsClient[] = [];
    try {
      for (let i = 0; i < 3; i++) {
        const c = await WsClient.connected(a.wsUrl);
        held.push(c);
        await c.ok('subscribe', { channel: ch });
      }
      // Earlier tests of this suite keep clients open too: count what each node says it holds.
      const health = await Promise.all([a, b].map(async (n) => (await (await fetch(`${n.url}/health`)).json()) as { node: string; connections: number }));
      const ids = health.map((h) => h.node);
      const nodes = async (n: NodeProcess): Promise<NodesAnswer> => {
        const res = await fetch(`${n.url}/api/nodes`);
        assert.equal(res.status, 200);
        return (await res.json()) as NodesAnswer;
      };
      // B sees A's new connections once A's next heartbeat lands (every 2 s by default).
      let fromB = await nodes(b);
      for (let i = 0; fromB.nodes.find((n) => n.id === ids[0])?.connections !== health[0]!.connections; i++) {
        assert.ok(i < 200, `B's view: ${JSON.stringify(fromB)}`);
        await new Promise((r) => setTimeout(r, 50));
        fromB = await nodes(b);
      }
      // And A sees B's count as B last announced it (B's clients of earlier tests may be newer).
      let fromA = await nodes(a);
      for (let i = 0; fromA.nodes.find((n) => n.id === ids[1])?.connections !== health[1]!.connections; i++) {
        assert.ok(i < 200, `A's view: ${JSON.stringify(fromA)}`);
        await new Promise((r) => setTimeout(r, 50));
        fromA = await nodes(a);
      }
      assert.ok(health[0]!.connections >= 3);
      for (const [view, self, other, otherUrl] of [
        [fromA, ids[0], ids[1], b.url],
        [fromB, ids[1], ids[0], a.url],
      ] as const) {
        assert.equal(view.node, self);
        assert.equal(view.registry, 'ok');
        assert.equal(view.workers, undefined);
        assert.deepEqual(new Set(view.nodes.map((n) => n.id)), new Set(ids));
        const me = view.nodes.find((n) => n.id === self)!;
        const them = view.nodes.find((n) => n.id === other)!;
        assert.deepEqual([me.self, me.source, me.ageMs], [true, 'self', 0]);
        assert.deepEqual([them.self, them.source, them.url], [false, 'registry', otherUrl]);
        assert.ok(them.ageMs <= 6_000, `the registry entry is at most a TTL old: ${them.ageMs} ms`);
        for (const n of [me, them]) {
          assert.match(n.version!, /^\d+\.\d+\.\d+/);
          assert.ok(n.uptimeMs! > 0 && n.pid! > 0 && n.load!.rss > 0 && n.load!.cpu >= 0);
          assert.equal(n.draining, false);
          assert.equal(n.connections, health[ids.indexOf(n.id)]!.connections);
          assert.ok(n.subscriptions! >= 0);
        }
        assert.equal(view.totals.nodes, 2);
        assert.equal(view.totals.connections, health[0]!.connections + health[1]!.connections);
        assert.equal(view.totals.subscriptions, me.subscriptions! + them.subscriptions!);
      }
      assert.ok(fromA.nodes.find((n) => n.id === ids[0])!.subscriptions! >= 3);
    } finally {
      for (const c of held) c.terminate();
    }
  });

  void test('history and epoch survive a node restart', { timeout: STARTUP_MS }, async () => {
    let { a } = cluster;
    const ch = chan('restart');
    const [p1] = (await apiPublish(a, ch, 'before-1')).body.results;
    await apiPublish(a, ch, 'before-2');
    const port = a.port;
    await a.stop('SIGKILL');
    a = cluster.nodes[0] = await NodeProcess.start({ redis: cluster.redisUrl, prefix: cluster.prefix, port });
    const r = await poll(`${a.url}/connection/poll?channel=${ch}&since=${p1.epoch}:1`);
    assert.equal(r.body.recovered, true);
    assert.deepEqual(
      r.body.publications.map((p: { data: string }) => p.data),
      ['before-2'],
    );
    assert.equal(r.body.position, `${p1.epoch}:2`);
    const [p3] = (await apiPublish(a, ch, 'after')).body.results;
    assert.equal(p3.epoch, p1.epoch);
    assert.equal(p3.offset, 3);
  });
});

void describe('cluster: Redis restart', { timeout: 300_000 }, () => {
  const cluster = useNodes<WsClient>({ tag: 'h', privateRedis: true });

  void test('nodes report 503 / error 117 while Redis is down, then reconnect and resubscribe by themselves', async () => {
    const { a, b, clients, redis } = cluster;
    const ch = chan('outage');
    const sub = await WsClient.connected(a.wsUrl);
    clients.push(sub);
    await sub.ok('subscribe', { channel: ch });
    assert.equal((await apiPublish(b, ch, 'one')).status, 200);
    assert.equal((await sub.nextPub(ch)).data, 'one');

    await redis.stop();
    const down = await apiPublish(b, ch, 'lost');
    assert.equal(down.status, 503);
    assert.equal(down.body.code, 'HERALD_ERR_UNAVAILABLE');
    const refused = await sub.command('subscribe', { channel: chan('other') });
    assert.equal(refused.error?.code, ErrorCode.UNAVAILABLE);
    assert.equal(refused.error?.temporary, true);
    assert.equal(a.child.exitCode, null, 'node A is still running');
    assert.equal(b.child.exitCode, null, 'node B is still running');

    await redis.start();
    const deadline = Date.now() + 10_000;
    let status = 0;
    while (Date.now() < deadline && (status = (await apiPublish(b, ch, 'two')).status) !== 200) await new Promise((r) => setTimeout(r, 50));
    assert.equal(status, 200, 'node B publishes again within 10 s');
    // The subscription made before the outage delivers again without the client doing anything.
    const two = await sub.nextPub(ch, 10_000);
    assert.equal(two.data, 'two');
    assert.equal(two.offset, 1, 'the private Redis kept nothing: a new epoch starts at 1');
    assert.equal((await sub.command('subscribe', { channel: chan('other') })).error, undefined);
    assert.ok(/redis reconnected; resubscribing/.test(a.stdout), 'node A logged its resubscription');
  });
});
