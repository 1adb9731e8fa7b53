/**
 * Node leases across node processes sharing Redis: a user connected to node B is online as seen
 * from node A, and stays online across many lease periods while nobody writes anything for it
 * (node B only renews its lease); when node B is SIGKILLed its users go offline within the lease
 * TTL, its sessions drop out of the listing, and node A's own users stay online.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ImWs } from '../helpers/im-clients.js';
import { type NodeProcess, useNodes } from './nodes.js';

const TTL_MS = 900;

async function presence(node: NodeProcess, user: string): Promise<string> {
  const res = await fetch(`${node.url}/api/presence?users=${user}`);
  return ((await res.json()) as { presence: Array<{ state: string }> }).presence[0]!.state;
}

async function sessions(node: NodeProcess, user: string): Promise<unknown[]> {
  return ((await (await fetch(`${node.url}/api/users/${user}/sessions`)).json()) as { sessions: unknown[] }).sessions;
}

/** Poll `fn` until it returns true; fails after `timeoutMs`. */
async function eventually(fn: () => Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await fn())) {
    assert.ok(Date.now() < deadline, `timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

void describe('cluster: presence and sessions live as long as their node’s lease', { timeout: 300_000 }, () => {
  const cluster = useNodes<ImWs>({ tag: 'lease', args: ['--dev', '--cluster.session-ttl-ms', String(TTL_MS), '--im.presence-grace-ms', '100'] });

  void test('a SIGKILLed node’s users go offline within the lease TTL; the live node’s users stay online', async () => {
    const { a, b, clients } = cluster;
    const onA = await ImWs.connect(a.wsUrl, 'lease-amy');
    const onB = await ImWs.connect(b.wsUrl, 'lease-bea');
    clients.push(onA, onB);
    await onA.ok('im.sync', {});
    await onB.ok('im.sync', {});
    await eventually(async () => (await presence(a, 'lease-bea')) === 'online', 'B’s user online as seen from A');
    await eventually(async () => (await sessions(a, 'lease-bea')).length === 1, 'B’s session listed on A');
    // Several lease periods with nothing written for the users: the leases alone keep them.
    await new Promise((r) => setTimeout(r, 3 * TTL_MS));
    assert.equal(await presence(a, 'lease-bea'), 'online');
    assert.equal((await sessions(a, 'lease-bea')).length, 1);

    await b.stop('SIGKILL');
    const killed = Date.now();
    await eventually(async () => (await presence(a, 'lease-bea')) === 'offline', 'B’s user offline after the kill', 3 * TTL_MS + 5_000);
    assert.ok(Date.now() - killed <= TTL_MS + 1_000, `offline ${Date.now() - killed} ms after the kill`);
    assert.deepEqual(await sessions(a, 'lease-bea'), []);
    assert.equal(await presence(a, 'lease-amy'), 'online');
    assert.equal((await sessions(a, 'lease-amy')).length, 1);
  });
});
