/**
 * Cluster control across node processes sharing Redis: a disconnect or a revocation sent to
 * node A closes the sessions on node B; a revoked token is refused on B, also by a node started
 * after the revocation; the session listing covers every node and drops a SIGKILLed node within
 * the session TTL; the control channel survives a Redis restart (private redis-server).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { DisconnectCode } from '../../src/protocol/codes.js';
import { WsClient } from '../helpers/clients.js';
import { signToken, TEST_SECRET } from '../helpers/tokens.js';
import { NodeProcess, STARTUP_MS, useNodes } from './nodes.js';

const SESSION_TTL_MS = 900;
const ARGS = ['--auth.hmac-secret', TEST_SECRET, '--cluster.session-ttl-ms', String(SESSION_TTL_MS)];

async function api(node: NodeProcess, method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
  const res = await fetch(`${node.url}/api/${path}`, {
    method,
    headers: { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: await res.json() };
}

async function nodeId(node: NodeProcess): Promise<string> {
  return ((await (await fetch(`${node.url}/health`)).json()) as { node: string }).node;
}

/** Poll `fn` until it returns true; fails after `timeoutMs`. */
async function eventually(fn: () => Promise<boolean>, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await fn())) {
    assert.ok(Date.now() < deadline, `timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

void describe('cluster control: disconnect, revoke and sessions across nodes', { timeout: 600_000 }, () => {
  const cluster = useNodes<WsClient>({ tag: 'control', args: ARGS });
  const open = async (node: NodeProcess, params: Record<string, unknown>): Promise<{ c: WsClient; id: string }> => {
    const c = await WsClient.open(node.wsUrl);
    cluster.clients.push(c);
    const r = await c.command('connect', params);
    assert.equal(r.error, undefined, JSON.stringify(r.error));
    return { c, id: r.result.client as string };
  };

  void test("a disconnect sent to node A closes the user's sessions on node B, and one session by its id", async () => {
    const { a, b } = cluster;
    const onA = await open(a, { token: await signToken('kick-ann') });
    const onB = await open(b, { token: await signToken('kick-ann') });
    const other = await open(b, { token: await signToken('kick-bob') });
    const one = await open(b, { token: await signToken('kick-one') });
    const r = await api(a, 'POST', 'disconnect', { user: 'kick-ann', reason: 'bye' });
    assert.equal(r.status, 200);
    assert.deepEqual(r.body, { disconnected: 1, nodes: 2 });
    assert.deepEqual(await onA.c.closed, { code: DisconnectCode.FORBIDDEN, reason: 'bye' });
    assert.deepEqual(await onB.c.closed, { code: DisconnectCode.FORBIDDEN, reason: 'bye' });
    const byId = await api(a, 'POST', 'disconnect', { client: one.id, code: 4001 });
    assert.deepEqual(byId.body, { disconnected: 0, nodes: 2 });
    assert.equal((await one.c.closed).code, 4001);
    assert.deepEqual(await other.c.ok('ping'), {});
  });

  void test('a revocation sent to node A closes the session on node B (3500) and B refuses the token after', async () => {
    const { a, b, clients } = cluster;
    const token = await signToken('rev-ann', { jti: 'cluster-jti-1' });
    const keep = await signToken('rev-ann', { jti: 'cluster-jti-2' });
    const onB = await open(b, { token });
    const kept = await open(b, { token: keep });
    const r = await api(a, 'POST', 'revoke', { jti: 'cluster-jti-1' });
    assert.deepEqual(r.body, { disconnected: 0, nodes: 2 });
    assert.equal((await onB.c.closed).code, DisconnectCode.INVALID_TOKEN);
    assert.deepEqual(await kept.c.ok('ping'), {});
    const again = await WsClient.open(b.wsUrl);
    clients.push(again);
    const refused = await again.command('connect', { token });
    assert.equal(refused.error?.name, 'HERALD_ERR_TOKEN_REVOKED');
    assert.equal((await again.closed).code, DisconnectCode.INVALID_TOKEN);
    // Every token of the user issued up to now (iat is in seconds).
    const cutoff = (Math.floor(Date.now() / 1000) + 1) * 1000;
    assert.deepEqual((await api(a, 'POST', 'revoke', { user: 'rev-ann', issuedBefore: cutoff })).body, { disconnected: 0, nodes: 2 });
    assert.equal((await kept.c.closed).code, DisconnectCode.INVALID_TOKEN);
  });

  void test(
    'the session listing shows both nodes; a SIGKILLed node drops out within the TTL; a node started later knows earlier revocations',
    { timeout: STARTUP_MS + 60_000 },
    async () => {
      const { a, b, clients } = cluster;
      const [idA, idB] = await Promise.all([nodeId(a), nodeId(b)]);
      const onA = await open(a, { token: await signToken('list-ann') });
      const onB = await open(b, { token: await signToken('list-ann') });
      const want = [
        { node: idA, session: onA.id },
        { node: idB, session: onB.id },
      ].sort((x, y) => (x.node < y.node ? -1 : 1));
      let listed: unknown;
      await eventually(
        async () => {
          listed = (await api(b, 'GET', 'users/list-ann/sessions')).body;
          return JSON.stringify(listed) === JSON.stringify({ user: 'list-ann', sessions: want });
        },
        `both sessions listed (last: ${JSON.stringify(listed)})`,
      );
      assert.deepEqual((await api(a, 'GET', 'users/list-ann/sessions')).body, { user: 'list-ann', sessions: want });

      const revoked = await signToken('late-ann', { jti: 'before-restart' });
      assert.equal((await api(a, 'POST', 'revoke', { jti: 'before-restart' })).status, 200);

      const port = b.port;
      await b.stop('SIGKILL');
      const killed = Date.now();
      await eventually(
        async () => (await api(a, 'GET', 'users/list-ann/sessions')).body.sessions.length === 1,
        "the killed node's session to expire",
        3 * SESSION_TTL_MS,
      );
      assert.ok(Date.now() - killed <= SESSION_TTL_MS + 500, `dropped ${Date.now() - killed} ms after the kill`);
      assert.deepEqual((await api(a, 'GET', 'users/list-ann/sessions')).body.sessions, [{ node: idA, session: onA.id }]);

      // The revocation was sent before this node existed: it is retained in Redis and replayed at start.
      const restarted = (cluster.nodes[1] = await NodeProcess.start({ redis: cluster.redisUrl, prefix: cluster.prefix, port, args: ARGS }));
      const late = await WsClient.open(restarted.wsUrl);
      clients.push(late);
      assert.equal((await late.command('connect', { token: revoked })).error?.name, 'HERALD_ERR_TOKEN_REVOKED');
    },
  );
});

void describe('cluster control: Redis restart', { timeout: 300_000 }, () => {
  const cluster = useNodes<WsClient>({ tag: 'h', args: ARGS, privateRedis: true });

  void test('the control channel and the session registry work again after Redis restarts', async () => {
    const { a, b, clients, redis } = cluster;
    const before = await WsClient.connected(b.wsUrl, { token: await signToken('rr-ann') });
    clients.push(before);
    await redis.stop();
    const down = await api(a, 'POST', 'disconnect', { user: 'nobody' });
    assert.equal(down.status, 503);
    assert.equal(down.body.code, 'HERALD_ERR_UNAVAILABLE');
    assert.equal(typeof down.body.message, 'string');
    await redis.start();
    // Both nodes are back once a control message reaches both again.
    await eventually(async () => (await api(a, 'POST', 'disconnect', { user: 'nobody' })).body.nodes === 2, 'both nodes on the control channel', 15_000);
    // The session made before the outage is written again by the next refresh (the private Redis kept nothing).
    await eventually(async () => (await api(a, 'GET', 'users/rr-ann/sessions')).body.sessions?.length === 1, 'the session re-registered', 5_000);
    const r = await api(a, 'POST', 'disconnect', { user: 'rr-ann', reason: 'after restart' });
    assert.deepEqual(r.body, { disconnected: 0, nodes: 2 });
    assert.deepEqual(await before.closed, { code: DisconnectCode.FORBIDDEN, reason: 'after restart' });
  });
});
