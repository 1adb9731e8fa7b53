/**
 * Client → backend (rpc, send) against the real example backend, and the server API additions:
 * IM send as the system, groups and memberships, contact lists, presence queries, disconnecting
 * a user or one session, token revocation on live connections. Malformed, oversized and
 * unauthorized input to every new command and endpoint.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { useBackendServer } from '../helpers/backend-fixture.js';
import { WsClient } from '../helpers/clients.js';
import { waitFor, wsUrl } from '../helpers/server.js';
import { signToken, TEST_SECRET } from '../helpers/tokens.js';

const KEY = 'backend-api-key-0123456789';

describe('client → backend and the server API additions', () => {
  const fx = useBackendServer('backend-api', {}, (url) => ({
    dev: true,
    // Bare names and tokens side by side, on purpose: the tests use both kinds of identity.
    devAllowUnsafe: true,
    apiKey: KEY,
    auth: { hmacSecret: TEST_SECRET },
    limits: { maxMessageBytes: 4096 },
    im: { presenceGraceMs: 50 },
    backend: { url: `${url}/herald`, rpcTimeoutMs: 700, webhookUrl: `${url}/webhook`, webhookIntervalMs: 10 },
  }));
  const { open } = fx;
  const api = async (method: string, path: string, body?: unknown, key: string | null = KEY): Promise<{ status: number; body: any }> => {
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (key) headers.authorization = `apikey ${key}`;
    const res = await fetch(`${fx.server.url()}/api/${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
    return { status: res.status, body: await res.json() };
  };

  test('rpc: the backend answer comes back to the caller, with its user', async () => {
    const c = await open({ user: 'rpc-ann' });
    assert.deepEqual(await c.ok('rpc', { method: 'echo', data: { x: 1 } }), { data: { echo: { x: 1 }, user: 'rpc-ann' } });
    assert.deepEqual(await c.ok('rpc', { method: 'add', data: { a: 2, b: 3 } }), { data: 5 });
  });

  test('rpc: application errors keep their code; a slow backend times out with a temporary error', async () => {
    const c = await open({ user: 'rpc-bob' });
    const fail = await c.command('rpc', { method: 'fail' });
    assert.equal(fail.error?.code, 1001);
    assert.equal(fail.error?.name, 'HERALD_ERR_RPC_ERROR');
    assert.equal(fail.error?.message, 'it failed on purpose');
    const started = Date.now();
    const slow = await c.command('rpc', { method: 'slow', data: { ms: 1_500 } });
    assert.equal(slow.error?.name, 'HERALD_ERR_BACKEND_TIMEOUT');
    assert.equal(slow.error?.temporary, true);
    assert.ok(Date.now() - started < 1_400);
    // The session is fine afterwards.
    assert.deepEqual(await c.ok('rpc', { method: 'add', data: { a: 1, b: 1 } }), { data: 2 });
  });

  test('rpc and send over HTTP POST /connection/command too', async () => {
    const res = await fetch(`${fx.server.url()}/connection/command?user=rpc-http`, {
      method: 'POST',
      body: JSON.stringify({ id: 1, cmd: 'rpc', method: 'echo', data: 'hi' }),
    });
    assert.deepEqual(await res.json(), { id: 1, result: { data: { echo: 'hi', user: 'rpc-http' } } });
  });

  test('rpc and send: malformed input is refused, the connection survives', async () => {
    const c = await open({ user: 'rpc-bad' });
    for (const params of [{}, { method: '' }, { method: 'x'.repeat(200) }, { method: 'a b' }, { method: 'echo', extra: 1 }, { method: 7 }]) {
      const r = await c.command('rpc', params);
      assert.equal(r.error?.name, 'HERALD_ERR_BAD_REQUEST', JSON.stringify(params));
    }
    assert.equal((await c.command('send', {})).error?.name, 'HERALD_ERR_BAD_REQUEST');
    assert.equal((await c.command('send', { data: 1, to: 'x' })).error?.name, 'HERALD_ERR_BAD_REQUEST');
    c.send({ id: 99, cmd: 'rpc', method: 'echo', data: 'x'.repeat(5000) });
    assert.equal((await c.closed).code, 1009);
    const anon = await WsClient.open(wsUrl(fx.server));
    fx.track(anon);
    assert.equal((await anon.command('rpc', { method: 'echo' })).error?.name, 'HERALD_ERR_NOT_CONNECTED');
  });

  test('send: a fire-and-forget message reaches the backend as a client.message webhook', async () => {
    const c = await open({ user: 'send-ann' });
    assert.deepEqual(await c.ok('send', { data: { hello: 'backend' } }), {});
    await waitFor(() => fx.backend.events.some((e) => e.type === 'client.message' && e.data.user === 'send-ann'), 3_000, 'client.message');
    const ev = fx.backend.events.find((e) => e.type === 'client.message' && e.data.user === 'send-ann')!;
    assert.deepEqual(ev.data.data, { hello: 'backend' });
  });

  test('IM send as the system: to one user, to several, into a group', async () => {
    const u = await open({ user: 'sys-ann' });
    await u.ok('subscribe', { channel: 'inbox:sys-ann' });
    const one = await api('POST', 'im/system', { to: 'sys-ann', clientId: 's1', data: { notice: 'welcome' } });
    assert.equal(one.status, 200);
    assert.equal(one.body.duplicate, false);
    const push = await u.pushes.take((f) => f.type === 'pub' && f.channel === 'inbox:sys-ann');
    assert.equal(push.data.message.from, 'system');
    assert.deepEqual(push.data.message.data, { notice: 'welcome' });
    const again = await api('POST', 'im/system', { to: 'sys-ann', clientId: 's1', data: { notice: 'welcome' } });
    assert.equal(again.body.duplicate, true);
    const many = await api('POST', 'im/system', { users: ['sys-a', 'sys-b', 'sys-c'], data: 'maintenance at 5' });
    assert.equal(many.body.results.length, 3);
    const g = await api('POST', 'im/groups', { owner: 'grp-owner', title: 'ops', members: ['grp-x'] });
    const inGroup = await api('POST', 'im/system', { conversation: g.body.group, data: 'group notice' });
    assert.equal(inGroup.status, 200);
    assert.equal(inGroup.body.conversation, g.body.group);
  });

  test('groups: create, add and remove members, change roles, list', async () => {
    const g = await api('POST', 'im/groups', { owner: 'g-owner', title: 'team', members: ['g-a', 'g-b'] });
    assert.equal(g.status, 200);
    assert.equal(g.body.memberCount, 3);
    const id = encodeURIComponent(g.body.group);
    const changed = await api('POST', `im/groups/${id}/members`, { add: ['g-c'], remove: ['g-a'] });
    assert.deepEqual(changed.body, { added: ['g-c'], removed: ['g-a'] });
    assert.equal((await api('POST', `im/groups/${id}/roles`, { user: 'g-b', role: 'admin' })).status, 200);
    const list = await api('GET', `im/groups/${id}/members`);
    const roles = Object.fromEntries(list.body.members.map((m: { user: string; role: string }) => [m.user, m.role]));
    assert.deepEqual(roles, { 'g-owner': 'owner', 'g-b': 'admin', 'g-c': 'member' });
    assert.equal((await api('POST', `im/groups/${id}/roles`, { user: 'g-b', role: 'owner' })).status, 200);
    const after = await api('GET', `im/groups/${id}/members`);
    assert.equal(after.body.members.find((m: { user: string }) => m.user === 'g-b').role, 'owner');
    assert.equal((await api('GET', 'im/groups/g%3Anope/members')).status, 404);
  });

  test('contacts: set a list, read it back with presence; presence query by POST and GET', async () => {
    const c = await open({ user: 'pres-on' });
    await c.ok('subscribe', { channel: 'inbox:pres-on' });
    const set = await api('PUT', 'im/contacts/pres-me', { contacts: ['pres-on', 'pres-off'] });
    assert.deepEqual(set.body, { added: 2, removed: 0 });
    const reset = await api('PUT', 'im/contacts/pres-me', { contacts: ['pres-on'] });
    assert.deepEqual(reset.body, { added: 0, removed: 1 });
    const got = await api('GET', 'im/contacts/pres-me');
    assert.deepEqual(
      got.body.contacts.map((p: { user: string }) => p.user),
      ['pres-on'],
    );
    await waitFor(() => true);
    const p1 = await api('POST', 'presence', { users: ['pres-on', 'pres-nobody'] });
    const states = Object.fromEntries(p1.body.presence.map((p: { user: string; state: string }) => [p.user, p.state]));
    assert.deepEqual(states, { 'pres-on': 'online', 'pres-nobody': 'offline' });
    const p2 = await api('GET', 'presence?users=pres-on');
    assert.equal(p2.body.presence[0].state, 'online');
  });

  test('disconnect: one session by client id, or every session of a user (3503)', async () => {
    const a1 = await open({ user: 'kick-me' });
    const a2 = await open({ user: 'kick-me' });
    const other = await open({ user: 'kick-not' });
    const hello = await a1.command('ping', {});
    assert.equal(hello.error, undefined);
    const clientId = (await (await WsClient.open(wsUrl(fx.server))).command('connect', { user: 'kick-one' })).result.client as string;
    const one = await api('POST', 'disconnect', { client: clientId });
    assert.deepEqual(one.body, { disconnected: 1, nodes: 1 });
    const all = await api('POST', 'disconnect', { user: 'kick-me', reason: 'bye' });
    assert.deepEqual(all.body, { disconnected: 2, nodes: 1 });
    assert.deepEqual(await a1.closed, { code: 3503, reason: 'bye' });
    assert.equal((await a2.closed).code, 3503);
    assert.deepEqual(await other.ok('ping'), {});
  });

  test("sessions: a user's live sessions with this node's id, gone once closed; long-polls are not sessions", async () => {
    const node = (await api('GET', 'stats')).body.node as string;
    await open({ user: 'sess-ann' });
    await open({ user: 'sess-ann' });
    await open({ user: 'sess-bob' });
    // A long-poll of the same user waits meanwhile.
    const ac = new AbortController();
    const polling = fetch(`${fx.server.url()}/connection/poll?channel=sess-news&user=sess-ann`, { signal: ac.signal }).then(
      (r) => r.body?.cancel(),
      () => undefined,
    );
    await waitFor(() => fx.server.core.hub.connectionsByTransport()['long-poll'] === 1, 3_000, 'the long-poll');
    const listed = await api('GET', 'users/sess-ann/sessions');
    assert.equal(listed.status, 200);
    assert.equal(listed.body.user, 'sess-ann');
    assert.equal(listed.body.sessions.length, 2);
    for (const s of listed.body.sessions) assert.equal(s.node, node);
    const kicked = await api('POST', 'disconnect', { client: listed.body.sessions[0].session });
    assert.deepEqual(kicked.body, { disconnected: 1, nodes: 1 });
    ac.abort();
    await polling;
    for (let i = 0; (await api('GET', 'users/sess-ann/sessions')).body.sessions.length !== 1; i++) {
      assert.ok(i < 100, 'the closed session is still listed');
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.deepEqual((await api('GET', 'users/nobody-here/sessions')).body, { user: 'nobody-here', sessions: [] });
  });

  test('sessions: refuses a missing API key, malformed and oversized user ids', async () => {
    assert.equal((await api('GET', 'users/x/sessions', undefined, null)).status, 401);
    assert.equal((await api('GET', 'users/x/sessions', undefined, 'wrong-key-0123456789abc')).status, 401);
    for (const path of ['users/bad%20user/sessions', 'users/%E0%A4%A/sessions', `users/${'u'.repeat(129)}/sessions`]) {
      const r = await api('GET', path);
      assert.equal(r.status, 400, path);
      assert.equal(r.body.code, 'HERALD_ERR_BAD_REQUEST');
      assert.equal(typeof r.body.message, 'string');
    }
    assert.equal((await api('POST', 'users/x/sessions', {})).status, 405);
  });

  test('revocation by jti and by issued-before closes live connections (3500) and refuses the token after', async () => {
    const t1 = await signToken('rev-ann', { jti: 'tok-1' });
    const t2 = await signToken('rev-ann', { jti: 'tok-2' });
    const c1 = await open({ token: t1 });
    const c2 = await open({ token: t2 });
    const r = await api('POST', 'revoke', { jti: 'tok-1' });
    assert.deepEqual(r.body, { disconnected: 1, nodes: 1 });
    assert.equal((await c1.closed).code, 3500);
    assert.deepEqual(await c2.ok('ping'), {});
    const again = await WsClient.open(wsUrl(fx.server));
    fx.track(again);
    const refused = await again.command('connect', { token: t1 });
    assert.equal(refused.error?.name, 'HERALD_ERR_TOKEN_REVOKED');
    assert.equal((await again.closed).code, 3500);
    // Every token of the user issued before now (tokens carry iat in seconds).
    const cutoff = (Math.floor(Date.now() / 1000) + 1) * 1000;
    const all = await api('POST', 'revoke', { user: 'rev-ann', issuedBefore: cutoff });
    assert.equal(all.body.disconnected, 1);
    assert.equal((await c2.closed).code, 3500);
    const sse = await fetch(`${fx.server.url()}/connection/sse?channel=news&token=${encodeURIComponent(t2)}`);
    assert.equal(sse.status, 401);
    await sse.body?.cancel();
  });

  test('every new endpoint refuses a missing API key, malformed JSON, unknown fields and oversized bodies', async () => {
    const endpoints: Array<[string, string, unknown]> = [
      ['POST', 'im/system', { to: 'x', data: 1 }],
      ['POST', 'im/groups', { owner: 'x', members: [] }],
      ['POST', 'im/groups/g%3Ax/members', { add: ['y'] }],
      ['POST', 'im/groups/g%3Ax/roles', { user: 'y', role: 'admin' }],
      ['PUT', 'im/contacts/x', { contacts: [] }],
      ['POST', 'presence', { users: ['x'] }],
      ['POST', 'disconnect', { user: 'x' }],
      ['POST', 'revoke', { jti: 'x' }],
    ];
    for (const [method, path, body] of endpoints) {
      assert.equal((await api(method, path, body, null)).status, 401, `${path} without key`);
      assert.equal((await api(method, path, body, 'wrong-key-0123456789abc')).status, 401, `${path} wrong key`);
      const bad = await api(method, path, '{"nope":');
      assert.equal(bad.status, 400, `${path} malformed`);
      const extra = await api(method, path, { ...(body as object), surprise: true });
      assert.equal(extra.status, 400, `${path} unknown field`);
      const big = await api(method, path, { ...(body as object), pad: 'x'.repeat(10_000) });
      assert.equal(big.status, 413, `${path} oversized`);
    }
    const invalid: Array<[string, string, unknown]> = [
      ['POST', 'im/system', { to: 'x', users: ['y'], data: 1 }],
      ['POST', 'im/system', { to: 'bad user', data: 1 }],
      ['POST', 'im/groups', { owner: '', members: [] }],
      ['POST', 'im/groups/g%3Ax/members', {}],
      ['POST', 'im/groups/g%3Ax/roles', { user: 'y', role: 'king' }],
      ['PUT', 'im/contacts/bad%20user', { contacts: [] }],
      ['POST', 'presence', { users: [] }],
      ['POST', 'disconnect', { user: 'x', client: 'y' }],
      ['POST', 'disconnect', { user: 'x', code: 1000 }],
      ['POST', 'revoke', { jti: 'x', user: 'y' }],
      ['POST', 'revoke', { user: 'y', expiresAt: 5 }],
      ['POST', 'revoke', {}],
    ];
    for (const [method, path, body] of invalid) assert.equal((await api(method, path, body)).status, 400, `${path} ${JSON.stringify(body)}`);
    assert.equal((await api('GET', 'presence?users=')).status, 400);
    assert.equal((await api('POST', 'im/groups/g%3Anope/members', { add: ['x'] })).status, 404);
  });
});
