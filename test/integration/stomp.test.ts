/**
 * STOMP 1.2 over WebSocket with the real @stomp/stompjs client: connect and credentials,
 * topics and exchanges fed by the server API and native clients, SEND to native subscribers,
 * work queues with acks and re-delivery, the IM inbox, receipts, heart-beats, DISCONNECT.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { IMessage } from '@stomp/stompjs';
import type { HeraldServer } from '../../src/index.js';
import { WsClient } from '../helpers/clients.js';
import { chan, sleep, startServer, wsUrl } from '../helpers/server.js';
import { collect, connectStomp, frame, RawStomp, type StompHandle, withReceipt } from '../helpers/stomp.js';
import { signToken, TEST_SECRET } from '../helpers/tokens.js';

async function apiPublish(server: HeraldServer, channel: string, data: unknown): Promise<void> {
  const res = await fetch(`${server.url()}/api/publish`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ channel, data }),
  });
  assert.equal(res.status, 200, await res.text());
}

/** Subscribe with a receipt, so the subscription is live when this resolves. */
async function subscribed(h: StompHandle, destination: string, headers: Record<string, string> = {}) {
  let c: ReturnType<typeof collect> | undefined;
  await withReceipt(h.client, (receipt) => (c = collect(h.client, destination, { ...headers, receipt })));
  return c!;
}

void describe('STOMP over WebSocket (stompjs)', () => {
  let server: HeraldServer;
  const open: StompHandle[] = [];
  const connect = async (login: string, config: Parameters<typeof connectStomp>[1] = {}): Promise<StompHandle> => {
    const h = await connectStomp(server, { connectHeaders: { login, passcode: 'ignored' }, ...config });
    open.push(h);
    return h;
  };

  before(async () => {
    server = await startServer({ dev: true, namespaces: [{ name: 'chat', allowPublish: true }], im: { storePath: ':memory:' } });
  });
  after(async () => {
    for (const h of open) await h.client.deactivate();
    await server.close();
  });

  void test('CONNECT in development mode: login is the user; CONNECTED carries version and heart-beat', async () => {
    const h = await connect('alice');
    assert.equal(h.connected.headers.version, '1.2');
    assert.match(h.connected.headers['heart-beat']!, /^\d+,\d+$/);
    assert.equal(h.connected.headers['user-name'], 'alice');
    assert.equal(server.stomp?.sessionCount, 1);
  });

  void test('accepts a handshake without subprotocol and negotiates 1.1 for a 1.1 client', async () => {
    const raw = await RawStomp.open(server, []);
    raw.send(frame('CONNECT', { 'accept-version': '1.0,1.1', login: 'old' }));
    const f = await raw.next();
    assert.equal(f.command, 'CONNECTED');
    assert.equal(f.headers.version, '1.1');
    await raw.close();
  });

  void test('a /topic subscriber receives publications of the server API: body = payload, content-type passed through', async () => {
    const ch = chan('news');
    const h = await connect('reader');
    const { messages, id } = await subscribed(h, `/topic/${ch}`);
    await apiPublish(server, ch, { text: 'hello', n: 1 });
    const m = await messages.take();
    assert.deepEqual(JSON.parse(m.body), { text: 'hello', n: 1 });
    assert.equal(m.headers['content-type'], 'application/json');
    assert.equal(m.headers.destination, `/topic/${ch}`);
    assert.equal(m.headers.subscription, id);
    assert.match(m.headers['message-id']!, /^[0-9A-Za-z_-]+-1$/);
    assert.equal(m.headers.ack, undefined);
  });

  void test('/exchange/<name>/<key> is channel <name>:<key>; a native client publishing there reaches STOMP', async () => {
    const key = chan('room');
    const h = await connect('reader2');
    const { messages } = await subscribed(h, `/exchange/chat/${key}`);
    const native = await WsClient.connected(wsUrl(server), { user: 'writer' });
    try {
      await native.ok('publish', { channel: `chat:${key}`, data: { from: 'native' } });
      const m = await messages.take();
      assert.deepEqual(JSON.parse(m.body), { from: 'native' });
      assert.equal(m.headers.destination, `/exchange/chat/${key}`);
    } finally {
      await native.close();
    }
  });

  void test('SEND reaches native subscribers and other STOMP subscribers of the channel', async () => {
    const ch = `chat:${chan('send')}`;
    const native = await WsClient.connected(wsUrl(server), { user: 'nat' });
    try {
      await native.ok('subscribe', { channel: ch });
      const h = await connect('sender');
      const other = await connect('listener');
      const { messages } = await subscribed(other, `/topic/${ch}`);
      await withReceipt(h.client, (receipt) =>
        h.client.publish({ destination: `/topic/${ch}`, body: '{"hi":1}', headers: { 'content-type': 'application/json', receipt } }),
      );
      const pub = await native.nextPub(ch);
      assert.deepEqual(pub.data, { hi: 1 });
      assert.equal(pub.info?.user, 'sender');
      assert.equal((await messages.take()).body, '{"hi":1}');
      h.client.publish({ destination: `/topic/${ch}`, body: 'plain text', headers: { 'content-type': 'text/plain' } });
      const text = await native.nextPub(ch);
      assert.equal(text.data, 'plain text');
      assert.equal(text.contentType, 'text/plain');
    } finally {
      await native.close();
    }
  });

  void test('SEND to a channel whose policy forbids client publishing gives ERROR and closes', async () => {
    const h = await connect('nopub');
    h.client.publish({ destination: `/topic/${chan('closed')}`, body: 'x', headers: { receipt: 'r1' } });
    const err = await h.errors.take();
    assert.match(err.headers.message!, /may not publish/);
    assert.equal(err.headers['receipt-id'], 'r1');
    assert.ok((await h.closed) > 1000);
  });

  void test('/queue delivers each message to one consumer, round-robin', async () => {
    const q = `/queue/${chan('jobs')}`;
    const a = await connect('qa');
    const b = await connect('qb');
    const ca = await subscribed(a, q);
    const cb = await subscribed(b, q);
    for (let i = 0; i < 6; i++) a.client.publish({ destination: q, body: `job-${i}` });
    const got = [...(await ca.messages.takeN(3)), ...(await cb.messages.takeN(3))].map((m) => m.body).sort();
    assert.deepEqual(got, ['job-0', 'job-1', 'job-2', 'job-3', 'job-4', 'job-5']);
    await sleep(50);
    assert.equal(ca.messages.items.length + cb.messages.items.length, 0);
  });

  void test('client-individual: a NACKed queue message is re-delivered (redelivered:true); ACKed ones are not', async () => {
    const q = `/queue/${chan('work')}`;
    const h = await connect('worker');
    const { messages } = await subscribed(h, q, { ack: 'client-individual' });
    h.client.publish({ destination: q, body: 'one' });
    h.client.publish({ destination: q, body: 'two' });
    const [one, two] = await messages.takeN(2);
    assert.equal(one!.body, 'one');
    assert.ok(one!.headers.ack);
    await withReceipt(h.client, (receipt) => two!.ack({ receipt }));
    one!.nack();
    const again = await messages.take();
    assert.equal(again.body, 'one');
    assert.equal(again.headers.redelivered, 'true');
    assert.equal(again.headers['message-id'], one!.headers['message-id']);
    again.ack();
    await sleep(50);
    assert.equal(messages.items.length, 0);
  });

  void test('unacknowledged queue messages go to another consumer when theirs disconnects', async () => {
    const q = `/queue/${chan('handoff')}`;
    const first = await connectStomp(server, { connectHeaders: { login: 'w1' } });
    const c1 = await subscribed(first, q, { ack: 'client', 'prefetch-count': '2' });
    const producer = await connect('producer');
    for (let i = 0; i < 3; i++) producer.client.publish({ destination: q, body: `m${i}` });
    const held = await c1.messages.takeN(2);
    assert.deepEqual(
      held.map((m) => m.body),
      ['m0', 'm1'],
    );
    const second = await connect('w2');
    const c2 = await subscribed(second, q, { ack: 'client' });
    // m2 waits for room: w1 holds its prefetch of 2, so w2 gets it.
    assert.equal((await c2.messages.take()).body, 'm2');
    await first.client.deactivate();
    const moved = await c2.messages.takeN(2);
    assert.deepEqual(
      moved.map((m) => [m.body, m.headers.redelivered]),
      [
        ['m0', 'true'],
        ['m1', 'true'],
      ],
    );
  });

  void test('client (cumulative) ACK acknowledges the message and every earlier one', async () => {
    const q = `/queue/${chan('cumul')}`;
    const h = await connectStomp(server, { connectHeaders: { login: 'cum' } });
    const c = await subscribed(h, q, { ack: 'client' });
    for (let i = 0; i < 3; i++) h.client.publish({ destination: q, body: `c${i}` });
    const msgs = await c.messages.takeN(3);
    await withReceipt(h.client, (receipt) => msgs[1]!.ack({ receipt }));
    await h.client.deactivate();
    // Only c2 was not covered by the cumulative ACK of c1.
    const next = await connect('cum2');
    const c2 = await subscribed(next, q);
    assert.equal((await c2.messages.take()).body, 'c2');
    await sleep(50);
    assert.equal(c2.messages.items.length, 0);
  });

  void test('/user/inbox delivers the user IM inbox; ACK in client mode advances the IM cursor', async () => {
    const h = await connect('carol');
    const { messages } = await subscribed(h, '/user/inbox', { ack: 'client' });
    const res = await fetch(`${server.url()}/api/im/send`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ from: 'dave', to: 'carol', clientId: 'c-1', data: { text: 'hi carol' } }),
    });
    assert.equal(res.status, 200, await res.text());
    const m: IMessage = await messages.take((x) => JSON.parse(x.body).type === 'message');
    const event = JSON.parse(m.body);
    assert.equal(event.message.from, 'dave');
    assert.deepEqual(event.message.data, { text: 'hi carol' });
    assert.equal(m.headers.destination, '/user/inbox');
    await withReceipt(h.client, (receipt) => m.ack({ receipt }));
    let acked = 0;
    const deadline = Date.now() + 2_000;
    while (Date.now() < deadline && acked < event.seq) {
      acked = (await server.engines.imStore.cursor('carol')).acked;
      await sleep(10);
    }
    assert.equal(acked, event.seq);
  });

  void test('an anonymous connection cannot subscribe to /user/inbox', async () => {
    const h = await connectStomp(server, {});
    open.push(h);
    h.client.subscribe('/user/inbox', () => undefined);
    const err = await h.errors.take();
    assert.match(err.headers.message!, /authenticated/);
  });

  void test('transactions: SENDs wait for COMMIT; ABORT discards them', async () => {
    const q = `/queue/${chan('tx')}`;
    const h = await connect('txer');
    const { messages } = await subscribed(h, q);
    const tx = h.client.begin();
    h.client.publish({ destination: q, body: 'in-tx-1', headers: { transaction: tx.id } });
    h.client.publish({ destination: q, body: 'in-tx-2', headers: { transaction: tx.id } });
    await withReceipt(h.client, (receipt) => h.client.publish({ destination: q, body: 'outside', headers: { receipt } }));
    assert.deepEqual(
      (await messages.takeN(1)).map((m) => m.body),
      ['outside'],
    );
    tx.commit();
    assert.deepEqual(
      (await messages.takeN(2)).map((m) => m.body),
      ['in-tx-1', 'in-tx-2'],
    );
    const aborted = h.client.begin();
    h.client.publish({ destination: q, body: 'never', headers: { transaction: aborted.id } });
    aborted.abort();
    await withReceipt(h.client, (receipt) => h.client.publish({ destination: q, body: 'after', headers: { receipt } }));
    assert.equal((await messages.take()).body, 'after');
    await sleep(30);
    assert.equal(messages.items.length, 0);
  });

  void test('herald-last replays the last N publications of a topic before live ones', async () => {
    const ch = chan('replay');
    for (const n of [1, 2, 3]) await apiPublish(server, ch, { n });
    const h = await connect('late');
    const { messages } = await subscribed(h, `/topic/${ch}`, { 'herald-last': '2' });
    await apiPublish(server, ch, { n: 4 });
    const got = await messages.takeN(3);
    assert.deepEqual(
      got.map((m) => JSON.parse(m.body).n),
      [2, 3, 4],
    );
    assert.deepEqual(
      got.map((m) => m.headers['message-id']!.split('-').pop()),
      ['2', '3', '4'],
    );
  });

  void test('a topic subscription survives the channel being deleted through the API', async () => {
    const ch = chan('deleted');
    const h = await connect('survivor');
    const { messages } = await subscribed(h, `/topic/${ch}`);
    await apiPublish(server, ch, 'before');
    assert.equal((await messages.take()).body, '"before"');
    const del = await fetch(`${server.url()}/api/channels/${ch}`, { method: 'DELETE' });
    assert.ok(del.status < 300, `delete: ${del.status}`);
    await sleep(20);
    await apiPublish(server, ch, 'after');
    assert.equal((await messages.take()).body, '"after"');
  });

  void test('STOMP subscribers announce join and leave on channels with joinLeave', async () => {
    const joinServer = await startServer({ dev: true, namespaces: [{ name: 'room', joinLeave: true }] });
    try {
      const ch = `room:${chan('jl')}`;
      const native = await WsClient.connected(wsUrl(joinServer), { user: 'watcher' });
      await native.ok('subscribe', { channel: ch });
      const h = await connectStomp(joinServer, { connectHeaders: { login: 'joiner' } });
      await subscribed(h, `/topic/${ch}`);
      const join = await native.pushes.take((f) => f.type === 'join' && f.user === 'joiner');
      assert.equal(join.user, 'joiner');
      await h.client.deactivate();
      const leave = await native.pushes.take((f) => f.type === 'leave' && f.user === 'joiner');
      assert.equal(leave.user, 'joiner');
      await native.close();
    } finally {
      await joinServer.close();
    }
  });

  void test('SEND to /user/inbox is refused', async () => {
    const h = await connect('inboxwriter');
    h.client.publish({ destination: '/user/inbox', body: '{}' });
    assert.match((await h.errors.take()).headers.message!, /read-only/);
  });

  void test('RECEIPT for SUBSCRIBE, UNSUBSCRIBE, and DISCONNECT (stompjs waits for it)', async () => {
    const ch = chan('rcpt');
    const h = await connectStomp(server, { connectHeaders: { login: 'rc' } });
    const { messages, id } = await subscribed(h, `/topic/${ch}`);
    await withReceipt(h.client, (receipt) => h.client.unsubscribe(id, { receipt }));
    await apiPublish(server, ch, 1);
    await sleep(50);
    assert.equal(messages.items.length, 0);
    let disconnectReceipt: string | undefined;
    h.client.onDisconnect = (f) => (disconnectReceipt = f.headers['receipt-id']);
    await h.client.deactivate();
    assert.ok(disconnectReceipt, 'DISCONNECT receipt seen by stompjs');
    assert.equal(await h.closed, 1000);
  });

  void test('the server sends heart-beats that keep a stompjs client with heartbeatIncoming alive', async () => {
    const hb = await startServer({ dev: true, stomp: { heartbeatMs: 100 } });
    try {
      // Client and server share this process's event loop: a tolerance of 4 intervals keeps a
      // busy test machine from failing the client's own check.
      const h = await connectStomp(hb, { connectHeaders: { login: 'beat' }, heartbeatIncoming: 100, heartbeatOutgoing: 100, heartbeatToleranceMultiplier: 4 });
      assert.equal(h.connected.headers['heart-beat'], '100,100');
      await sleep(800);
      assert.ok(h.client.connected, `still connected: ${h.debug.slice(-8).join(' | ').replace(/\n/g, ' ')}`);
      assert.ok(h.debug.filter((l) => l.includes('<<< PONG')).length >= 4, 'heart-beats received');
      await h.client.deactivate();
    } finally {
      await hb.close();
    }
  });
});

void describe('STOMP credentials with token auth', () => {
  let server: HeraldServer;
  before(async () => {
    server = await startServer({ auth: { hmacSecret: TEST_SECRET }, im: { storePath: ':memory:' } });
  });
  after(() => server.close());

  void test('passcode is the connection token: a valid JWT connects as its sub', async () => {
    const h = await connectStomp(server, { connectHeaders: { login: 'whoever', passcode: await signToken('erin') } });
    assert.equal(h.connected.headers['user-name'], 'erin');
    await h.client.deactivate();
  });

  void test('a bad token gets ERROR and the connection is closed', async () => {
    const errors: string[] = [];
    await assert.rejects(
      connectStomp(server, { connectHeaders: { login: 'x', passcode: 'not-a-jwt' }, onStompError: (f) => errors.push(f.headers.message!) }),
      /STOMP ERROR|closed/,
    );
    await assert.rejects(
      connectStomp(server, { connectHeaders: { passcode: await signToken('erin', {}, { secret: 'another-secret-0123456789abcdef' }) } }),
      /Invalid token/,
    );
  });

  void test('a bare login without development mode is refused', async () => {
    await assert.rejects(connectStomp(server, { connectHeaders: { login: 'mallory' } }), /development mode/);
  });
});

void describe('STOMP heart-beat timeout', () => {
  void test('a client that promised heart-beats and goes silent gets ERROR and is closed', async () => {
    const server = await startServer({ dev: true, stomp: { heartbeatMs: 100 } });
    try {
      const { raw, frame: connected } = await RawStomp.connected(server, { login: 'quiet', 'heart-beat': '100,0' });
      assert.equal(connected.headers['heart-beat'], '100,100');
      const t0 = Date.now();
      const err = await raw.next(2_000);
      assert.equal(err.command, 'ERROR');
      assert.match(err.headers.message!, /Heart-beat timeout/);
      const { code } = await raw.closed;
      assert.equal(code, 3003);
      assert.ok(Date.now() - t0 < 1_000);
      // One that keeps beating stays.
      const { raw: alive } = await RawStomp.connected(server, { login: 'beating', 'heart-beat': '100,0' });
      const beat = setInterval(() => alive.send('\n'), 80);
      await sleep(600);
      clearInterval(beat);
      assert.equal(alive.ws.readyState, alive.ws.OPEN);
      await alive.close();
    } finally {
      await server.close();
    }
  });
});
