/**
 * Auth hooks and proxies against the real example backend (examples/backend.ts) on a port:
 * connect allow/deny, subscribe, publish and IM-send proxies (accept / modify / reject), the
 * contacts hook, caching, backend down (fail closed, and fail open when configured) and a slow
 * backend (timeout), plus the hook metrics.
 */
import assert from 'node:assert/strict';
import { createServer as createHttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, test } from 'node:test';
import { startBackend } from '../../examples/backend.js';
import { useBackendServer } from '../helpers/backend-fixture.js';
import { WsClient } from '../helpers/clients.js';
import { connectStomp } from '../helpers/stomp.js';
import { startServer, wsUrl } from '../helpers/server.js';
import { signToken, TEST_SECRET } from '../helpers/tokens.js';

const HOOKS = { connectPath: '/connect', subscribePath: '/subscribe', publishPath: '/publish', imSendPath: '/im.send', contactsPath: '/contacts' };

describe('backend auth hooks and proxies', () => {
  const fx = useBackendServer('backend', { slowMs: 1_500 }, (url) => ({
    auth: { hmacSecret: TEST_SECRET },
    namespaces: [{ name: 'chat', allowPublish: true }],
    backend: { url: `${url}/herald`, ...HOOKS, timeoutMs: 400, cacheTtlMs: 60_000 },
  }));

  test('connect: an opaque token the backend accepts gives the user it names', async () => {
    const c = await fx.open({ token: 'user:ann' });
    const r = await c.ok('ping');
    assert.deepEqual(r, {});
    const again = await WsClient.open(wsUrl(fx.server));
    fx.track(again);
    const reply = await again.command('connect', { token: 'user:ann' });
    assert.equal(reply.result.user, 'ann');
  });

  test('connect: a verified JWT is passed to the backend with its claims and allowed as its sub', async () => {
    const token = await signToken('jwt-user');
    const c = await WsClient.open(wsUrl(fx.server));
    fx.track(c);
    const r = await c.command('connect', { token });
    assert.equal(r.result.user, 'jwt-user');
  });

  test('connect: a bare name is only a claim: the example backend does not vouch for it, so outside development mode the connection stays anonymous', async () => {
    const c = await WsClient.open(wsUrl(fx.server));
    fx.track(c);
    const r = await c.command('connect', { user: 'mallory' });
    assert.equal(r.error, undefined);
    assert.equal(r.result.user, undefined, 'an unverified name never becomes the user id');
    const banned = await WsClient.open(wsUrl(fx.server));
    fx.track(banned);
    assert.equal((await banned.command('connect', { user: 'banned-claim' })).error?.name, 'HERALD_ERR_BACKEND_DENIED');
  });

  test('connect: the hook body carries a verified id in `user` and a bare name only in `claimedUser`', async () => {
    const bodies: Array<Record<string, unknown>> = [];
    const hook = createHttpServer((req, res) => {
      let text = '';
      req.on('data', (c: Buffer) => (text += c.toString()));
      req.on('end', () => {
        bodies.push(JSON.parse(text) as Record<string, unknown>);
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"allow":true}');
      });
    });
    await new Promise<void>((r) => hook.listen(0, '127.0.0.1', r));
    const closeHook = (): Promise<unknown> => new Promise((r) => hook.close(r));
    const s = await startServer({
      dev: true,
      devAllowUnsafe: true,
      auth: { hmacSecret: TEST_SECRET },
      backend: { url: `http://127.0.0.1:${(hook.address() as AddressInfo).port}`, connectPath: '/connect', cacheTtlMs: 0 },
    }).catch(async (e: unknown) => {
      await closeHook();
      throw e;
    });
    const held: WsClient[] = [];
    try {
      const dev = await WsClient.connected(wsUrl(s), { user: 'devname' });
      held.push(dev);
      assert.equal((await dev.ok('ping')) !== undefined, true);
      const jwt = await WsClient.connected(wsUrl(s), { token: await signToken('jwt-sub') });
      held.push(jwt);
      await jwt.ok('ping');
      const [bare, verified] = bodies;
      assert.equal(bare!.user, undefined, 'a development-mode name is not sent as a verified user');
      assert.equal(bare!.claimedUser, 'devname');
      assert.equal(bare!.claims, undefined);
      assert.equal(verified!.user, 'jwt-sub');
      assert.equal(verified!.claimedUser, undefined);
      assert.equal((verified!.claims as { sub: string }).sub, 'jwt-sub');
    } finally {
      for (const c of held) await c.close();
      await s.close();
      await closeHook();
    }
  });

  test('connect: a denied connection gets HERALD_ERR_BACKEND_DENIED and close 3503', async () => {
    const c = await WsClient.open(wsUrl(fx.server));
    fx.track(c);
    const r = await c.command('connect', { token: 'deny' });
    assert.equal(r.error?.name, 'HERALD_ERR_BACKEND_DENIED');
    assert.match(r.error!.message, /banned/);
    assert.equal((await c.closed).code, 3503);
  });

  test('connect: a 403 answer is a denial; a JWT with a bad signature never reaches the backend', async () => {
    const c = await WsClient.open(wsUrl(fx.server));
    fx.track(c);
    const r = await c.command('connect', {});
    assert.equal(r.error?.name, 'HERALD_ERR_BACKEND_DENIED');
    const before = fx.backend.stats.hooks.connect ?? 0;
    const bad = await signToken('mallory', {}, { secret: 'another-secret-0123456789abcdef' });
    const c2 = await WsClient.open(wsUrl(fx.server));
    fx.track(c2);
    const r2 = await c2.command('connect', { token: bad });
    assert.equal(r2.error?.name, 'HERALD_ERR_UNAUTHORIZED');
    assert.equal((await c2.closed).code, 3500);
    assert.equal(fx.backend.stats.hooks.connect ?? 0, before);
  });

  test('connect decisions are cached for the TTL', async () => {
    await fx.open({ token: 'user:cache-me' });
    const calls = fx.backend.stats.hooks.connect ?? 0;
    await fx.open({ token: 'user:cache-me' });
    await fx.open({ token: 'user:cache-me' });
    assert.equal(fx.backend.stats.hooks.connect, calls);
  });

  test('a reconnect storm of one credential makes one connect and one contacts hook call, not one per connection', async () => {
    const connects = fx.backend.stats.hooks.connect ?? 0;
    const contacts = fx.backend.stats.hooks.contacts ?? 0;
    const storm = await Promise.all(Array.from({ length: 20 }, () => fx.open({ token: 'user:storm' })));
    for (const c of storm) assert.deepEqual(await c.ok('ping'), {});
    assert.equal(fx.backend.stats.hooks.connect, connects + 1);
    assert.equal(fx.backend.stats.hooks.contacts, contacts + 1);
  });

  test('subscribe: the backend allows a private channel only to its owner, denies forbidden ones', async () => {
    const bob = await fx.open({ token: 'user:bob' });
    const ok = await bob.command('subscribe', { channel: 'private:bob' });
    assert.equal(ok.error, undefined);
    const no = await bob.command('subscribe', { channel: 'private:carol' });
    assert.equal(no.error?.name, 'HERALD_ERR_BACKEND_DENIED');
    const forbidden = await bob.command('subscribe', { channel: 'forbidden:x' });
    assert.equal(forbidden.error?.name, 'HERALD_ERR_BACKEND_DENIED');
    assert.match(forbidden.error!.message, /forbidden channel/);
    // The session is still usable after a denial.
    assert.deepEqual(await bob.ok('ping'), {});
  });

  test('subscribe: a slow backend times out and the subscription fails closed with a clear, temporary error', async () => {
    const c = await fx.open({ token: 'user:slowpoke' });
    const started = Date.now();
    const r = await c.command('subscribe', { channel: 'slow:one' });
    assert.equal(r.error?.name, 'HERALD_ERR_BACKEND_TIMEOUT');
    assert.equal(r.error?.temporary, true);
    assert.ok(Date.now() - started < 1_400, 'answered at the hook timeout, not when the backend did');
  });

  test('publish proxy: accept unchanged, modify, reject', async () => {
    const pubber = await fx.open({ token: 'user:pub' });
    const reader = await fx.open({ token: 'user:reader' });
    await reader.ok('subscribe', { channel: 'chat:room' });
    await pubber.ok('publish', { channel: 'chat:room', data: { text: 'hello' } });
    assert.deepEqual((await reader.nextPub('chat:room')).data, { text: 'hello' });
    await pubber.ok('publish', { channel: 'chat:room', data: { text: 'oh darn' } });
    assert.deepEqual((await reader.nextPub('chat:room')).data, { text: 'oh ****', moderated: true });
    const r = await pubber.command('publish', { channel: 'chat:room', data: { text: 'buy spam' } });
    assert.equal(r.error?.name, 'HERALD_ERR_BACKEND_DENIED');
    assert.match(r.error!.message, /no spam/);
    await pubber.ok('publish', { channel: 'chat:room', data: { text: 'after' } });
    assert.deepEqual((await reader.nextPub('chat:room')).data, { text: 'after' });
  });

  test('IM send proxy: accept, modify, reject', async () => {
    const a = await fx.open({ token: 'user:im-a' });
    const b = await fx.open({ token: 'user:im-b' });
    await b.ok('subscribe', { channel: 'inbox:im-b' });
    await a.ok('im.send', { to: 'im-b', clientId: 'x1', data: { text: 'hi' } });
    await a.ok('im.send', { to: 'im-b', clientId: 'x2', data: { text: 'darn it' } });
    const r = await a.command('im.send', { to: 'im-b', clientId: 'x3', data: { text: 'spam spam' } });
    assert.equal(r.error?.name, 'HERALD_ERR_BACKEND_DENIED');
    const sync = await b.ok('im.sync', {});
    assert.deepEqual(
      sync.messages.map((m: { message: { data: unknown } }) => m.message.data),
      [{ text: 'hi' }, { text: '**** it', moderated: true }],
    );
  });

  test('contacts hook: the list is fetched at login, stored, and cached', async () => {
    fx.backend.setContacts('kim', ['lee']);
    const c = await fx.open({ token: 'user:kim' });
    const list = await c.ok('im.contacts.list', {});
    assert.deepEqual(list.contacts.map((p: { user: string }) => p.user).sort(), ['kim.friend', 'lee']);
    const calls = fx.backend.stats.hooks.contacts;
    await fx.open({ token: 'user:kim' });
    assert.equal(fx.backend.stats.hooks.contacts, calls);
  });

  test('metrics count hook latency and failures', async () => {
    const res = await fetch(`${fx.server.url()}/metrics`);
    const text = await res.text();
    assert.match(text, /herald_backend_hook_duration_seconds_count\{hook="connect",outcome="allow"\} \d+/);
    assert.match(text, /herald_backend_hook_failures_total\{hook="subscribe",reason="timeout"\} [1-9]/);
  });
});

describe('backend down', () => {
  test('fail closed: connect is refused with HERALD_ERR_BACKEND_UNAVAILABLE and a reconnect code (3002)', async () => {
    const down = await startBackend();
    const url = `${down.url}/herald`;
    await down.close();
    const server = await startServer({ backend: { url, connectPath: '/connect', timeoutMs: 500 } });
    try {
      const c = await WsClient.open(wsUrl(server));
      const r = await c.command('connect', { token: 'user:x' });
      assert.equal(r.error?.name, 'HERALD_ERR_BACKEND_UNAVAILABLE');
      assert.equal(r.error?.temporary, true);
      assert.match(r.error!.message, /connect hook/);
      assert.equal((await c.closed).code, 3002);
      const metrics = await (await fetch(`${server.url()}/metrics`)).text();
      assert.match(metrics, /herald_backend_hook_failures_total\{hook="connect",reason="error"\} 1/);
    } finally {
      await server.close();
    }
  });

  test('fail closed on a 500 answer too; fail open lets the client in when configured', async () => {
    const b = await startBackend();
    b.setBroken(true);
    const closed = await startServer({ dev: true, backend: { url: `${b.url}/herald`, connectPath: '/connect', subscribePath: '/subscribe' } });
    const open = await startServer({ dev: true, backend: { url: `${b.url}/herald`, connectPath: '/connect', subscribePath: '/subscribe', failOpen: true } });
    try {
      const c1 = await WsClient.open(wsUrl(closed));
      const r1 = await c1.command('connect', { user: 'zed' });
      assert.equal(r1.error?.name, 'HERALD_ERR_BACKEND_UNAVAILABLE');
      await c1.closed;
      const c2 = await WsClient.connected(wsUrl(open), { user: 'zed' });
      const sub = await c2.command('subscribe', { channel: 'news' });
      assert.equal(sub.error, undefined);
      await c2.close();
      // Recovery: once the backend answers again, decisions come from it.
      b.setBroken(false);
      const c3 = await WsClient.open(wsUrl(closed));
      const r3 = await c3.command('connect', { user: 'banned-zed' });
      assert.equal(r3.error?.name, 'HERALD_ERR_BACKEND_DENIED');
      await c3.closed;
    } finally {
      await closed.close();
      await open.close();
      await b.close();
    }
  });
});

describe('backend connect hook on STOMP', () => {
  test('STOMP CONNECT credentials go to the backend: allowed as the user it names, denied with an ERROR frame', async () => {
    const b = await startBackend();
    const server = await startServer({ backend: { url: `${b.url}/herald`, connectPath: '/connect' } });
    try {
      const ok = await connectStomp(server, { connectHeaders: { passcode: 'user:stomper' } });
      assert.equal(ok.connected.headers['user-name'], 'stomper');
      await ok.client.deactivate();
      await assert.rejects(connectStomp(server, { connectHeaders: { passcode: 'deny' } }), /denied by the backend/);
    } finally {
      await server.close();
      await b.close();
    }
  });
});
