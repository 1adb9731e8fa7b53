/**
 * The IM across two node processes that share Redis and one SQLite file, as the workers of one
 * host do: a message appended by one process reaches a session on the other, and the process
 * holding that session re-sends it after the timeout until it is acked; a message acked while
 * Redis is down reaches its recipient once Redis is back.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { ImWs } from '../helpers/im-clients.js';
import { type NodeProcess, useNodes } from './nodes.js';

let n = 0;
const name = (tag: string): string => `${tag}${process.pid}x${++n}`;

void describe('cluster: IM on processes sharing Redis and one SQLite file', { timeout: 600_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'herald-imw-'));
  const args = ['--dev', '--im.store-path', join(dir, 'im.db'), '--im.redelivery-timeout-ms', '400', '--im.sends-per-second', '1000'];
  const cluster = useNodes<ImWs>({ tag: 'imw', args, cleanup: () => rmSync(dir, { recursive: true, force: true }) });
  const { clients } = cluster;

  /** Connect and sync, as the SDK does: the sync registers the user, so other nodes know it at once. */
  const connect = async (node: NodeProcess, user: string): Promise<ImWs> => {
    const c = await ImWs.connect(node.wsUrl, user);
    clients.push(c);
    await c.ok('im.sync', {});
    return c;
  };

  void test('the process holding the session re-sends an unacked message appended by the other one, until acked', async () => {
    const { a, b } = cluster;
    const [alice, bob] = [name('alice'), name('bob')];
    const onB = await connect(b, bob);
    const onA = await connect(a, alice);
    const ack = await onA.ok('im.send', { to: bob, clientId: 'w1', data: { text: 'across' } });
    assert.equal(ack.seq, 1);
    const live = await onB.message(1, 10_000);
    assert.equal(live.redelivered, undefined);
    assert.equal(live.message.id, ack.id);
    const again = await onB.event((e) => e.type === 'message' && e.redelivered === true, 10_000);
    assert.equal(again.seq, 1);
    assert.equal(again.message.id, ack.id);
    assert.equal(onB.view.order.length, 1, 'the application saw it once');
    await onB.ok('im.ack', { seq: 1 });
    // Re-delivery stops once acked (the next attempt would come after 800 ms).
    const extra = await onB.event((e) => e.type === 'message', 2_000).catch(() => undefined);
    assert.equal(extra, undefined, JSON.stringify(extra));
  });

  void test('sequences stay gap-free when both processes append to one conversation at once', async () => {
    const { a, b } = cluster;
    const [alice, bob] = [name('alice'), name('bob')];
    const a1 = await connect(a, alice);
    const a2 = await connect(b, alice);
    await connect(b, bob);
    const acks = await Promise.all(Array.from({ length: 30 }, (_, i) => (i % 2 ? a1 : a2).ok('im.send', { to: bob, clientId: `g${i}`, data: i })));
    assert.deepEqual(
      acks.map((r) => r.seq).sort((x, y) => x - y),
      Array.from({ length: 30 }, (_, i) => i + 1),
    );
    const bobOnA = await connect(a, bob);
    const sync = await bobOnA.ok('im.sync', { after: 0 });
    assert.deepEqual(
      sync.messages.map((m: { seq: number }) => m.seq),
      Array.from({ length: 30 }, (_, i) => i + 1),
    );
  });
});

void describe('cluster: IM while Redis is down', { timeout: 300_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'herald-imr-'));
  const args = ['--dev', '--im.store-path', join(dir, 'im.db'), '--im.redelivery-timeout-ms', '400'];
  const cluster = useNodes<ImWs>({ tag: 'imr', args, privateRedis: true, cleanup: () => rmSync(dir, { recursive: true, force: true }) });
  const { clients } = cluster;

  void test('a message stored and acked while Redis is down reaches the recipient on the other process once Redis is back', async () => {
    const { a, b, redis } = cluster;
    const bob = await ImWs.connect(b.wsUrl, 'bob');
    const alice = await ImWs.connect(a.wsUrl, 'alice');
    clients.push(bob, alice);
    await bob.ok('im.sync', {}); // registers bob before alice (on the other process) writes to him
    await alice.ok('im.send', { to: 'bob', clientId: 'before', data: 'before' });
    await bob.message(1, 10_000);
    await bob.ok('im.ack', { seq: 1 });
    await redis.stop();
    // The store does not need Redis: the send is committed and acked; only its push waits.
    const ack = await alice.ok('im.send', { to: 'bob', clientId: 'during', data: 'during the outage' });
    assert.equal(ack.seq, 2);
    assert.equal(await bob.gets((e) => e.type === 'message', 500), false, 'nothing can be pushed while Redis is down');
    await redis.start();
    const got = await bob.message(2, 30_000);
    assert.equal(got.message.id, ack.id);
    assert.equal(got.message.data, 'during the outage');
    assert.equal(a.child.exitCode, null);
    assert.equal(b.child.exitCode, null);
  });
});
