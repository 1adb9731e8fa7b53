/**
 * The IM across two Herald nodes (separate processes) sharing Redis and the PostgreSQL IM store:
 * 1:1 and group messages between users on different nodes with acks and delivery receipts,
 * offline sync on the other node, and an idempotent retry through the other node.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, test } from 'node:test';
import { ImWs } from '../helpers/im-clients.js';
import { type NodeProcess, useNodes } from './nodes.js';
import { dropSchema, pgQuery, SHARED_PG_URL, testSchema } from './postgres.js';

/** Cross-node pushes go through Redis; allow for a loaded machine. */
const PUSH_MS = 10_000;

void describe('cluster: IM over two nodes sharing Redis and PostgreSQL', { timeout: 600_000 }, () => {
  const schema = testSchema('im');
  const args = ['--dev', '--database', SHARED_PG_URL, '--database.schema', schema, '--database.pool-size', '4', '--im.presence-grace-ms', '100'];
  const cluster = useNodes<ImWs>({ tag: 'im', args, cleanup: () => dropSchema(schema) });
  const { clients } = cluster;
  let n = 0;
  /** Unique user names per test. */
  const names = (...base: string[]): string[] => {
    n++;
    return base.map((x) => `${x}${n}`);
  };
  /** Connect and sync, as the SDK does: the sync registers the user, so other nodes know it at once. */
  const connect = async (node: NodeProcess, user: string): Promise<ImWs> => {
    const c = await ImWs.connect(node.wsUrl, user);
    clients.push(c);
    await c.ok('im.sync', {});
    return c;
  };
  /** A first delivery of a user message (a session coming up also re-sends what it has not acked, flagged `redelivered`). */
  const message = (e: any): boolean => e.type === 'message' && e.message.kind === 'message' && !e.redelivered;

  afterEach(async () => {
    for (const c of clients.splice(0)) await c.close();
  });

  test('a 1:1 message from node A reaches node B; the recipient acks and the sender gets the delivery receipt', async () => {
    const { a, b } = cluster;
    const [alice, bob] = names('alice', 'bob');
    const bo = await connect(b, bob!);
    const al = await connect(a, alice!);
    const ack = await al.ok('im.send', { to: bob, clientId: 'x1', data: { text: 'across' } });
    assert.equal(ack.seq, 1);
    assert.equal(ack.conversation, `d:${alice}:${bob}`);
    assert.equal(ack.duplicate, false);
    const got = await bo.message(1, PUSH_MS);
    assert.equal(got.message.id, ack.id);
    assert.equal(got.message.from, alice);
    assert.deepEqual(got.message.data, { text: 'across' });
    const [row] = await pgQuery<{ seq: string; sender: string }>(`SELECT seq, sender FROM "${schema}".im_messages WHERE id = $1`, [ack.id]);
    assert.deepEqual({ ...row }, { seq: '1', sender: alice }, 'committed to the shared PostgreSQL store');
    assert.equal((await bo.ok('im.ack', { seq: 1 })).acked, 1);
    const receipt = await al.event((e) => e.type === 'receipt' && e.kind === 'delivered', PUSH_MS);
    assert.deepEqual(receipt, { type: 'receipt', kind: 'delivered', conversation: ack.conversation, user: bob, seq: 1 });
    // Replies flow back the other way through the same store.
    const reply = await bo.ok('im.send', { to: alice, clientId: 'y1', data: 'back' });
    assert.equal(reply.seq, 2);
    const back = await al.event((e) => message(e) && e.message.from === bob, PUSH_MS);
    assert.equal(back.message.id, reply.id);
  });

  test('a group message reaches members on both nodes with one conversation seq; an invitation made on one node is accepted on the other', async () => {
    const { a, b } = cluster;
    const [alice, bob, carol, dave] = names('alice', 'bob', 'carol', 'dave');
    const members = [await connect(a, alice!), await connect(b, bob!), await connect(a, carol!), await connect(b, dave!)];
    // Bob and carol are alice's mutual contacts (set on different nodes) and join at once; dave is invited.
    for (const m of [members[1]!, members[2]!]) {
      await members[0]!.ok('im.contacts.add', { user: m.user });
      await m.ok('im.contacts.add', { user: alice });
    }
    const g = await members[0]!.ok('im.group.create', { title: 'Spread', members: [bob, carol, dave] });
    assert.deepEqual([g.memberCount, g.invited], [3, [dave]]);
    assert.equal((await members[3]!.event((e) => e.type === 'invite', PUSH_MS)).group, g.group);
    assert.equal((await members[3]!.ok('im.group.accept', { group: g.group })).memberCount, 4);
    const sent = [];
    for (const [i, sender] of [members[1]!, members[2]!, members[3]!].entries())
      sent.push(await sender.ok('im.send', { conversation: g.group, clientId: `g${i}`, data: i }));
    assert.deepEqual(
      sent.map((s) => s.seq),
      [3, 4, 5],
      'seq 1 is the created event, 2 dave joining',
    );
    for (const m of members) {
      const got = [];
      for (let i = 0; i < 3; i++) got.push(await m.event(message, PUSH_MS));
      assert.deepEqual(
        got.map((e) => e.message.id),
        sent.map((s) => s.id),
        m.user,
      );
    }
  });

  test('a message sent through node A while the recipient is offline is synced when it connects to node B', async () => {
    const { a, b } = cluster;
    const [alice, bob] = names('alice', 'bob');
    await (await connect(b, bob!)).close();
    const al = await connect(a, alice!);
    const acks = [];
    for (let i = 1; i <= 3; i++) acks.push(await al.ok('im.send', { to: bob, clientId: `o${i}`, data: `offline ${i}` }));
    const bo = await connect(b, bob!);
    const sync = await bo.ok('im.sync', {});
    assert.deepEqual(
      sync.messages.map((m: any) => m.seq),
      [1, 2, 3],
    );
    assert.deepEqual(
      sync.messages.map((m: any) => m.message.id),
      acks.map((x) => x.id),
    );
    assert.equal(sync.head, 3);
    assert.equal((await bo.ok('im.ack', { seq: 3 })).acked, 3);
    const receipt = await al.event((e) => e.type === 'receipt' && e.kind === 'delivered', PUSH_MS);
    assert.equal(receipt.seq, 3);
  });

  test('a send retried through the other node returns the original ack and delivers once', async () => {
    const { a, b } = cluster;
    const [alice, bob] = names('alice', 'bob');
    const bo = await connect(b, bob!);
    const onA = await connect(a, alice!);
    const onB = await connect(b, alice!);
    const first = await onA.ok('im.send', { to: bob, clientId: 'retry', data: 'once' });
    const retry = await onB.ok('im.send', { to: bob, clientId: 'retry', data: 'once' });
    assert.deepEqual({ ...retry, duplicate: false }, first);
    assert.equal(retry.duplicate, true);
    await bo.message(1, PUSH_MS);
    assert.equal(await bo.gets(message, 500), false, 'no second delivery');
    const next = await onB.ok('im.send', { to: bob, clientId: 'next', data: 'twice' });
    assert.equal(next.seq, 2);
    assert.equal((await bo.message(2, PUSH_MS)).message.id, next.id);
  });
});
