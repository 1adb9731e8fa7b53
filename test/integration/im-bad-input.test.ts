/**
 * Bad input to the IM: unknown users and groups, non-members, forged senders, oversized
 * payloads, floods, missing, expired and wrongly signed tokens. Each gets a clear error code and
 * nothing is stored.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { WsClient } from '../helpers/clients.js';
import { ImPoll } from '../helpers/im-clients.js';
import { useImServer } from '../helpers/im-fixture.js';
import { sleep } from '../helpers/server.js';
import { signToken, TEST_SECRET } from '../helpers/tokens.js';

describe('IM bad input', () => {
  const im = useImServer('im-bad-input', () => ({
    dev: true,
    // Bare names and tokens side by side, on purpose: the tests use both kinds of identity.
    devAllowUnsafe: true,
    auth: { hmacSecret: TEST_SECRET },
    channels: { allowPublish: true },
    im: { sendsPerSecond: 5, typingPerSecond: 1, maxPayloadBytes: 1024, maxGroupSize: 3 },
  }));
  const { names, connect, head } = im;

  test('sending to an unknown user is refused and creates no conversation', async () => {
    const [alice] = names('alice');
    const a = await connect(alice!);
    const err = await a.fails('im.send', { to: `ghost${im.n}`, clientId: '1', data: 'x' });
    assert.equal(err.name, 'HERALD_ERR_IM_UNKNOWN_USER');
    assert.equal(await im.server.engines.imStore.conversation(`d:${alice}:ghost${im.n}`), undefined);
    assert.equal(await head(alice!), 0);
  });

  test('sending to an unknown group is refused', async () => {
    const [alice] = names('alice');
    const a = await connect(alice!);
    assert.equal((await a.fails('im.send', { conversation: 'g:doesnotexist', clientId: '1', data: 'x' })).name, 'HERALD_ERR_IM_UNKNOWN_CONVERSATION');
    assert.equal((await a.fails('im.send', { clientId: '1', data: 'x' })).name, 'HERALD_ERR_BAD_REQUEST');
  });

  test('a non-member cannot send to, read or page a conversation', async () => {
    const [alice, bob, mallory] = names('alice', 'bob', 'mallory');
    const a = await connect(alice!);
    await connect(bob!);
    const m = await connect(mallory!);
    const ack = await a.ok('im.send', { to: bob, clientId: '1', data: 'private' });
    const g = await a.ok('im.group.create', { title: 'g', members: [bob] });
    for (const conversation of [ack.conversation, g.group]) {
      assert.equal((await m.fails('im.send', { conversation, clientId: `x${conversation}`, data: 'intrude' })).name, 'HERALD_ERR_IM_NOT_MEMBER');
      assert.equal((await m.fails('im.history', { conversation })).name, 'HERALD_ERR_IM_NOT_MEMBER');
      assert.equal((await m.fails('im.read', { conversation, seq: 1 })).name, 'HERALD_ERR_IM_NOT_MEMBER');
      assert.equal((await m.fails('im.typing', { conversation })).name, 'HERALD_ERR_IM_NOT_MEMBER');
    }
    assert.equal((await im.server.engines.imStore.conversation(ack.conversation))?.seq, 1);
    assert.equal(await head(mallory!), 0);
  });

  test('a forged sender is impossible: `from` is rejected and the sender is always the identity', async () => {
    const [alice, bob, mallory] = names('alice', 'bob', 'mallory');
    await connect(alice!);
    const b = await connect(bob!);
    const m = await connect(mallory!);
    const err = await m.fails('im.send', { to: bob, from: alice, clientId: '1', data: 'I am alice' });
    assert.equal(err.name, 'HERALD_ERR_BAD_REQUEST');
    assert.equal(await head(bob!), 0);
    const ok = await m.ok('im.send', { to: bob, clientId: '2', data: 'hi' });
    const got = await b.message(1);
    assert.equal(got.message.from, mallory);
    assert.equal((await im.server.engines.imStore.message(ok.id))?.sender, mallory);
  });

  test("another user's inbox channel can be neither subscribed, read nor published to", async () => {
    const [alice, bob] = names('alice', 'bob');
    await connect(bob!);
    const a = await connect(alice!);
    for (const [cmd, params] of [
      ['subscribe', { channel: `inbox:${bob}` }],
      ['history', { channel: `inbox:${bob}` }],
      ['publish', { channel: `inbox:${bob}`, data: { type: 'message', seq: 1 } }],
      ['publish', { channel: `inbox:${alice}`, data: { type: 'message', seq: 1 } }],
    ] as const) {
      const r = await a.ws.command(cmd, params);
      assert.equal(r.error?.name, 'HERALD_ERR_FORBIDDEN', `${cmd} ${JSON.stringify(params)}`);
    }
    const anon = await WsClient.connected(im.url, {});
    const r = await anon.command('subscribe', { channel: `inbox:${bob}` });
    assert.equal(r.error?.name, 'HERALD_ERR_UNAUTHORIZED');
    await anon.close();
    const poll = await fetch(`${im.server.url()}/connection/poll?channel=inbox:${bob}&user=${alice}`);
    assert.equal(poll.status, 403);
  });

  test('an oversized payload is refused and nothing is stored', async () => {
    const [alice, bob] = names('alice', 'bob');
    const a = await connect(alice!);
    await connect(bob!);
    const err = await a.fails('im.send', { to: bob, clientId: 'big', data: 'x'.repeat(2000) });
    assert.equal(err.name, 'HERALD_ERR_PAYLOAD_TOO_LARGE');
    assert.equal(await head(bob!), 0);
    assert.equal((await a.ok('im.send', { to: bob, clientId: 'big', data: 'small' })).duplicate, false, 'the refused client id was not consumed');
  });

  test('a send flood is cut by the per-user rate limit; accepted sends are stored, refused ones are not', async () => {
    const [alice, bob] = names('alice', 'bob');
    const a = await connect(alice!);
    await connect(bob!);
    const results = await Promise.all(Array.from({ length: 30 }, (_, i) => a.ws.command('im.send', { to: bob, clientId: `f${i}`, data: i })));
    const ok = results.filter((r) => r.result);
    const refused = results.filter((r) => r.error);
    assert.ok(refused.length >= 15, `refused ${refused.length}`);
    for (const r of refused) assert.equal(r.error!.name, 'HERALD_ERR_TOO_MANY_REQUESTS');
    assert.equal(await head(bob!), ok.length);
  });

  test('typing notifications are rate limited and never stored', async () => {
    const [alice, bob] = names('alice', 'bob');
    const a = await connect(alice!);
    const b = await connect(bob!);
    const ack = await a.ok('im.send', { to: bob, clientId: '1', data: 'x' });
    const results = await Promise.all(Array.from({ length: 5 }, () => a.ws.command('im.typing', { conversation: ack.conversation })));
    assert.ok(results.some((r) => r.error?.name === 'HERALD_ERR_TOO_MANY_REQUESTS'));
    const t = await b.event((e) => e.type === 'typing');
    assert.deepEqual(t, { type: 'typing', conversation: ack.conversation, user: alice });
    assert.equal(await head(bob!), 1);
  });

  test('IM commands need an identity: anonymous WebSocket and HTTP callers are refused', async () => {
    const [bob] = names('bob');
    await connect(bob!);
    const anon = await WsClient.connected(im.url, {});
    const r = await anon.command('im.send', { to: bob, clientId: '1', data: 'x' });
    assert.equal(r.error?.name, 'HERALD_ERR_UNAUTHORIZED');
    await anon.close();
    const res = await fetch(`${im.server.url()}/connection/command`, { method: 'POST', body: JSON.stringify({ cmd: 'im.sync' }) });
    assert.equal(res.status, 401);
    assert.equal(((await res.json()) as any).code, 'HERALD_ERR_UNAUTHORIZED');
  });

  test('expired and wrongly signed tokens are refused with terminal codes', async () => {
    const [alice] = names('alice');
    const expired = await signToken(alice!, {}, { exp: Math.floor(Date.now() / 1000) - 10 });
    const c = await WsClient.open(im.url);
    const r = await c.command('connect', { token: expired });
    assert.equal(r.error?.name, 'HERALD_ERR_TOKEN_EXPIRED');
    assert.equal((await c.closed).code, 3500);
    const forged = await signToken(alice!, {}, { secret: 'another-secret-0123456789abcdef' });
    const c2 = await WsClient.open(im.url);
    assert.equal((await c2.command('connect', { token: forged })).error?.name, 'HERALD_ERR_UNAUTHORIZED');
    assert.equal((await c2.closed).code, 3500);
    const res = await fetch(`${im.server.url()}/connection/command?token=${expired}`, { method: 'POST', body: JSON.stringify({ cmd: 'im.sync' }) });
    assert.equal(res.status, 401);
    assert.equal(((await res.json()) as any).code, 'HERALD_ERR_TOKEN_EXPIRED');
  });

  test('a token that expires during a session stops IM commands', async () => {
    const [alice, bob] = names('alice', 'bob');
    await connect(bob!);
    const token = await signToken(alice!, {}, { exp: Math.floor(Date.now() / 1000) + 2 });
    const a = await connect(alice!, { token });
    await a.ok('im.send', { to: bob, clientId: '1', data: 'while valid' });
    await sleep(Math.max(0, (Math.floor(Date.now() / 1000) + 2) * 1000 - Date.now() + 50));
    // Past exp, a command is refused until the expiry sweep (within about a second) closes the
    // session with 3500; whichever comes first, nothing more is stored.
    const reply = await Promise.race([
      a.ws.command('im.send', { to: bob, clientId: '2', data: 'after expiry' }).catch(() => undefined),
      a.ws.closed.then(() => undefined),
    ]);
    if (reply) assert.equal(reply.error?.name, 'HERALD_ERR_TOKEN_EXPIRED');
    assert.equal((await a.ws.closed).code, 3500);
    assert.equal(await head(bob!), 1);
  });

  test('malformed IM parameters are refused: negative seqs, bad roles, groups over the maximum size', async () => {
    const [alice, bob, carol, dave] = names('alice', 'bob', 'carol', 'dave');
    const a = await connect(alice!);
    for (const u of [bob, carol, dave]) await connect(u!);
    assert.equal((await a.fails('im.ack', { seq: -1 })).name, 'HERALD_ERR_BAD_REQUEST');
    assert.equal((await a.fails('im.sync', { after: 'x' })).name, 'HERALD_ERR_BAD_REQUEST');
    assert.equal((await a.fails('im.group.create', { members: [bob, carol, dave] })).name, 'HERALD_ERR_IM_GROUP_FULL');
    const g = await a.ok('im.group.create', { members: [bob, carol] });
    assert.equal((await a.fails('im.group.add', { group: g.group, members: [dave] })).name, 'HERALD_ERR_IM_GROUP_FULL');
    assert.equal((await a.fails('im.group.role', { group: g.group, user: bob, role: 'god' })).name, 'HERALD_ERR_BAD_REQUEST');
    assert.equal((await a.fails('im.group.add', { group: g.group, members: [`nobody${im.n}`] })).name, 'HERALD_ERR_IM_UNKNOWN_USER');
  });

  test('over HTTP POST, errors come back with their status and code and nothing is stored', async () => {
    const [alice, bob] = names('alice', 'bob');
    await connect(bob!);
    const p = new ImPoll(im.server.url(), alice!);
    let r = await p.post('im.send', { to: `ghost${im.n}`, clientId: '1', data: 'x' });
    assert.equal(r.status, 404);
    assert.equal(r.body.code, 'HERALD_ERR_IM_UNKNOWN_USER');
    r = await p.post('im.send', { to: bob, clientId: '1', data: 'x'.repeat(5000) });
    assert.equal(r.status, 413);
    r = await p.post('im.send', { to: bob, from: 'x', clientId: '1', data: 'x' });
    assert.equal(r.status, 400);
    assert.equal(await head(bob!), 0);
  });
});
