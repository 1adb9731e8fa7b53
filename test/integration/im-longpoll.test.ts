/**
 * The IM for clients without WebSocket: receiving by long-poll on the inbox channel, sending and
 * acking by HTTP POST /connection/command. Mixed with WebSocket users.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { useImServer } from '../helpers/im-fixture.js';
import { waitFor } from '../helpers/server.js';

describe('IM over long-poll and HTTP POST', () => {
  const im = useImServer('im-poll', () => ({ dev: true, im: { redeliveryTimeoutMs: 300, presenceGraceMs: 50 } }));
  const { names, connect, poller } = im;

  test('an offline long-poll user syncs what it missed, then receives live messages in order, each once', async () => {
    const [alice, bob] = names('alice', 'bob');
    const b = poller(bob!);
    await b.ok('im.sync'); // registers bob
    const a = await connect(alice!);
    for (let i = 1; i <= 3; i++) await a.ok('im.send', { to: bob, clientId: `o${i}`, data: `offline ${i}` });
    b.start();
    await waitFor(() => b.view.contiguous() === 3, 3_000, 'offline messages');
    for (let i = 4; i <= 8; i++) await a.ok('im.send', { to: bob, clientId: `o${i}`, data: `live ${i}` });
    await waitFor(() => b.view.contiguous() === 8, 5_000, 'live messages');
    assert.deepEqual(b.view.order, [1, 2, 3, 4, 5, 6, 7, 8]);
    assert.deepEqual(
      [...b.view.bySeq.values()].map((e) => e.message.data),
      ['offline 1', 'offline 2', 'offline 3', 'live 4', 'live 5', 'live 6', 'live 7', 'live 8'],
    );
    assert.equal((await b.ok('im.ack', { seq: 8 })).acked, 8);
    assert.equal((await b.ok('im.sync')).messages.length, 0);
  });

  test('a long-poll user that sends by HTTP POST gets acks, and a retried POST returns the original ack', async () => {
    const [alice, bob] = names('alice', 'bob');
    const b = await connect(bob!);
    const a = poller(alice!);
    const first = await a.ok('im.send', { to: bob, clientId: 'p1', data: { text: 'over http' } });
    const retry = await a.ok('im.send', { to: bob, clientId: 'p1', data: { text: 'over http' } });
    assert.equal(retry.id, first.id);
    assert.equal(retry.duplicate, true);
    const got = await b.message(1);
    assert.deepEqual(got.message.data, { text: 'over http' });
    assert.equal(await b.gets((e) => e.type === 'message' && !e.redelivered, 200), false);
  });

  test('messages sent while a long-poll client is between polls are not lost: the gap is reported and synced', async () => {
    const [alice, bob] = names('alice', 'bob');
    const b = poller(bob!);
    b.start();
    const a = await connect(alice!);
    await a.ok('im.send', { to: bob, clientId: 'g1', data: 1 });
    await waitFor(() => b.view.contiguous() === 1, 3_000, 'first');
    await b.stop(); // the client goes away mid-stream, nothing acked
    for (let i = 2; i <= 4; i++) await a.ok('im.send', { to: bob, clientId: `g${i}`, data: i });
    const b2 = poller(bob!);
    b2.start();
    await waitFor(() => b2.view.contiguous() === 4, 3_000, 'all four after resuming');
    assert.deepEqual(b2.view.order, [1, 2, 3, 4]);
  });

  test('a long-poll user and a WebSocket user of the same account both receive, and one ack covers both', async () => {
    const [alice, bob] = names('alice', 'bob');
    const bPoll = poller(bob!);
    bPoll.start();
    const bWs = await connect(bob!);
    const a = await connect(alice!);
    await a.ok('im.send', { to: bob, clientId: 'm1', data: 'multi-device' });
    await bWs.message(1);
    await waitFor(() => bPoll.view.contiguous() === 1, 3_000, 'long-poll device');
    await bWs.ok('im.ack', { seq: 1 });
    assert.deepEqual(await im.server.engines.imStore.cursor(bob!), { head: 1, acked: 1 });
  });
});
