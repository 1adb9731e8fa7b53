/**
 * The IM over WebSocket with several real clients: durable 1:1 send with acks, idempotent
 * retries, offline sync, cumulative acks and re-delivery after a killed socket.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { useImServer } from '../helpers/im-fixture.js';
import { sleep } from '../helpers/server.js';

describe('IM over WebSocket: durable 1:1 messaging', () => {
  const im = useImServer('im-ws', () => ({ dev: true, im: { redeliveryTimeoutMs: 300, presenceGraceMs: 50 } }));
  const { names, connect } = im;

  test("a send is acked with id, conversation seq and time, and reaches the recipient and the sender's other sessions", async () => {
    const [alice, bob] = names('alice', 'bob');
    const b = await connect(bob!);
    const a1 = await connect(alice!);
    const a2 = await connect(alice!);
    const ack = await a1.ok('im.send', { to: bob, clientId: 'c1', data: { text: 'hello' } });
    assert.match(ack.id, /^[0-9a-z]+$/);
    assert.equal(ack.conversation, `d:${alice}:${bob}`);
    assert.equal(ack.seq, 1);
    assert.equal(typeof ack.time, 'number');
    assert.equal(ack.duplicate, false);
    const got = await b.message(1);
    assert.deepEqual(got.message.data, { text: 'hello' });
    assert.equal(got.message.id, ack.id);
    assert.equal(got.message.from, alice);
    assert.equal(got.message.seq, 1);
    const echo = await a2.message(1);
    assert.equal(echo.message.id, ack.id);
    // The ack came after the commit: the store has it.
    assert.equal((await im.server.engines.imStore.message(ack.id))?.sender, alice);
  });

  test("a sync given the inbox position its caller read returns that position and the user's entries", async () => {
    const [alice, bob] = names('alice', 'bob');
    await im.server.im.registerUser(alice!);
    await im.server.im.registerUser(bob!);
    await im.server.im.send(alice!, { to: bob, data: { text: 'waiting' } });
    const read = await im.server.im.sync(bob!, undefined, undefined);
    assert.equal(read.position.offset, 1, 'the inbox channel has the one publication');
    const given = { epoch: 'given-epoch', offset: 0 };
    const r = await im.server.im.sync(bob!, undefined, undefined, given);
    assert.deepEqual(r.position, given);
    assert.deepEqual(
      r.entries.map((e) => e.message.payload),
      [JSON.stringify({ text: 'waiting' })],
    );
  });

  test('a user who was offline receives everything missed, in order, at the next connect', async () => {
    const [alice, bob] = names('alice', 'bob');
    await (await connect(bob!)).close();
    const a = await connect(alice!);
    const acks = [];
    for (let i = 1; i <= 5; i++) acks.push(await a.ok('im.send', { to: bob, clientId: `m${i}`, data: `msg ${i}` }));
    const b = await connect(bob!);
    const sync = await b.ok('im.sync', {});
    assert.deepEqual(
      sync.messages.map((m: any) => m.seq),
      [1, 2, 3, 4, 5],
    );
    assert.deepEqual(
      sync.messages.map((m: any) => m.message.data),
      ['msg 1', 'msg 2', 'msg 3', 'msg 4', 'msg 5'],
    );
    assert.deepEqual(
      sync.messages.map((m: any) => m.message.id),
      acks.map((x) => x.id),
    );
    assert.equal(sync.head, 5);
    assert.equal(sync.acked, 0);
    assert.equal(sync.more, false);
    assert.equal((await b.ok('im.ack', { seq: 3 })).acked, 3);
    const rest = await b.ok('im.sync', {});
    assert.deepEqual(
      rest.messages.map((m: any) => m.seq),
      [4, 5],
      'sync without a cursor starts after the ack',
    );
    const page = await b.ok('im.sync', { after: 0, limit: 2 });
    assert.deepEqual(
      page.messages.map((m: any) => m.seq),
      [1, 2],
    );
    assert.equal(page.more, true);
  });

  test('a retried send with the same client message id returns the original ack and stores nothing new', async () => {
    const [alice, bob] = names('alice', 'bob');
    const b = await connect(bob!);
    const a = await connect(alice!);
    const first = await a.ok('im.send', { to: bob, clientId: 'retry-1', data: 'once' });
    const retries = await Promise.all([1, 2, 3].map(() => a.ok('im.send', { to: bob, clientId: 'retry-1', data: 'once' })));
    for (const r of retries) {
      assert.equal(r.id, first.id);
      assert.equal(r.seq, first.seq);
      assert.equal(r.time, first.time);
      assert.equal(r.duplicate, true);
    }
    await b.message(1);
    assert.equal(await b.gets((e) => e.type === 'message' && !e.redelivered, 200), false, 'no second delivery');
    assert.deepEqual(await im.server.engines.imStore.cursor(bob!), { head: 1, acked: 0 });
    const second = await a.ok('im.send', { to: bob, clientId: 'retry-2', data: 'twice' });
    assert.equal(second.seq, 2);
  });

  test('concurrent sends to one user get distinct, gap-free seqs in ack order', async () => {
    const [alice, bob, carol] = names('alice', 'bob', 'carol');
    const b = await connect(bob!);
    const a = await connect(alice!);
    const c = await connect(carol!);
    await Promise.all([
      ...Array.from({ length: 20 }, (_, i) => a.ok('im.send', { to: bob, clientId: `a${i}`, data: i })),
      ...Array.from({ length: 20 }, (_, i) => c.ok('im.send', { to: bob, clientId: `c${i}`, data: i })),
    ]);
    for (let s = 1; s <= 40; s++) await b.message(s);
    assert.equal(b.view.contiguous(), 40);
    const sync = await b.ok('im.sync', {});
    assert.deepEqual(
      sync.messages.map((m: any) => m.seq),
      Array.from({ length: 40 }, (_, i) => i + 1),
    );
  });

  test('an unacked message is re-delivered with the same id and seq after the socket was killed before the ack', async () => {
    const [alice, bob] = names('alice', 'bob');
    const b1 = await connect(bob!);
    const a = await connect(alice!);
    const ack = await a.ok('im.send', { to: bob, clientId: 'x', data: 'important' });
    const first = await b1.message(1);
    assert.equal(first.message.id, ack.id);
    b1.kill(); // received but never acked
    await sleep(20);
    const b2 = await connect(bob!);
    const again = await b2.message(1);
    assert.equal(again.message.id, ack.id);
    assert.equal(again.redelivered, true);
    await b2.ok('im.ack', { seq: 1 });
    assert.equal(await b2.gets((e) => e.type === 'message', 800), false, 'nothing re-sent after the ack');
  });

  test('unacked messages are re-sent after the timeout on a live connection until acked; the app sees each once', async () => {
    const [alice, bob] = names('alice', 'bob');
    const b = await connect(bob!);
    const a = await connect(alice!);
    await a.ok('im.send', { to: bob, clientId: '1', data: 1 });
    await a.ok('im.send', { to: bob, clientId: '2', data: 2 });
    await b.message(1);
    await b.message(2);
    await b.ok('im.ack', { seq: 1 });
    const re = await b.event((e) => e.type === 'message' && e.redelivered === true, 2_000);
    assert.equal(re.seq, 2, 'only what is past the cumulative ack');
    assert.equal(b.view.duplicatesDropped, 1);
    assert.deepEqual(b.view.order, [1, 2]);
    await b.ok('im.ack', { seq: 2 });
  });

  test('history pages a conversation both ways and conversations list unread counts and the last message', async () => {
    const [alice, bob] = names('alice', 'bob');
    const a = await connect(alice!);
    const b = await connect(bob!);
    for (let i = 1; i <= 4; i++) await a.ok('im.send', { to: bob, clientId: `h${i}`, data: `t${i}` });
    const conv = `d:${alice}:${bob}`;
    const back = await b.ok('im.history', { conversation: conv, limit: 2 });
    assert.deepEqual(
      back.messages.map((m: any) => m.seq),
      [4, 3],
    );
    const fwd = await b.ok('im.history', { conversation: conv, after: 1, limit: 2 });
    assert.deepEqual(
      fwd.messages.map((m: any) => m.data),
      ['t2', 't3'],
    );
    let list = await b.ok('im.conversations', {});
    assert.equal(list.conversations[0].id, conv);
    assert.equal(list.conversations[0].unread, 4);
    assert.equal(list.conversations[0].last.data, 't4');
    await b.ok('im.read', { conversation: conv, seq: 3 });
    list = await b.ok('im.conversations', {});
    assert.equal(list.conversations[0].unread, 1);
    const receipt = await a.event((e) => e.type === 'receipt' && e.kind === 'read');
    assert.deepEqual(receipt, { type: 'receipt', kind: 'read', conversation: conv, user: bob, seq: 3 });
  });

  test('acking sends delivery receipts to the sender', async () => {
    const [alice, bob] = names('alice', 'bob');
    const a = await connect(alice!);
    const b = await connect(bob!);
    const ack = await a.ok('im.send', { to: bob, clientId: 'd', data: 'x' });
    await b.message(1);
    await b.ok('im.ack', { seq: 1 });
    const r = await a.event((e) => e.type === 'receipt' && e.kind === 'delivered');
    assert.deepEqual(r, { type: 'receipt', kind: 'delivered', conversation: ack.conversation, user: bob, seq: 1 });
  });

  test("recall and edit of one's own message are events in the conversation", async () => {
    const [alice, bob] = names('alice', 'bob');
    const a = await connect(alice!);
    const b = await connect(bob!);
    const m = await a.ok('im.send', { to: bob, clientId: 'r1', data: 'typo' });
    await b.message(1);
    const e = await a.ok('im.edit', { message: m.id, data: 'fixed' });
    const edit = await b.message(2);
    assert.equal(edit.message.kind, 'edit');
    assert.equal(edit.message.target, m.id);
    assert.equal(edit.message.data, 'fixed');
    assert.equal(e.seq, 2);
    assert.equal((await b.fails('im.recall', { message: m.id })).name, 'HERALD_ERR_IM_NOT_ALLOWED');
    await a.ok('im.recall', { message: m.id });
    const recall = await b.message(3);
    assert.equal(recall.message.kind, 'recall');
    assert.equal(recall.message.target, m.id);
    const hist = await b.ok('im.history', { conversation: m.conversation, after: 0 });
    assert.equal(hist.messages[0].recalled, true);
    assert.equal(hist.messages[0].data, null);
    assert.equal((await a.fails('im.edit', { message: m.id, data: 'again' })).name, 'HERALD_ERR_IM_NOT_ALLOWED');
  });
});

describe('IM re-delivery timer with a client acking as messages stream in', () => {
  const im = useImServer('im-rt', () => ({ dev: true, im: { redeliveryTimeoutMs: 1_000, presenceGraceMs: 50 } }));

  test('counts the timeout from the latest ack progress, then re-sends what is still unacked', async () => {
    const b = await im.connect('bob');
    const a = await im.connect('alice');
    await b.ok('im.sync', {});
    await a.ok('im.send', { to: 'bob', clientId: '1', data: 1 });
    await b.message(1);
    await sleep(600);
    await a.ok('im.send', { to: 'bob', clientId: '2', data: 2 });
    await b.message(2);
    await b.ok('im.ack', { seq: 1 });
    // Counted from the first delivery, the timer would fire ~400 ms from here.
    assert.equal(await b.gets((e) => e.type === 'message' && e.redelivered === true, 700), false);
    const re = await b.event((e) => e.type === 'message' && e.redelivered === true, 3_000);
    assert.equal(re.seq, 2);
  });
});
